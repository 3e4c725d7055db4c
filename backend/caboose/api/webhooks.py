"""Routes: webhooks — managing a service's webhooks, and receiving GitHub and GitLab deliveries.

Managing (``GET, POST /services/{id}/webhooks``, ``DELETE /webhooks/{id}``) needs
``webhooks:manage`` (admins and owners) except listing (anyone who sees the project). A webhook's
secret is random (256 bits), shown once in the create answer, and stored only encrypted
(``keys.webhook_secrets``, bound to the webhook's id).

Receiving (``POST /hooks/github/{id}``, ``POST /hooks/gitlab/{id}``) is unauthenticated by
design; the delivery proves itself instead, in this order, and the first failure answers:

1. the webhook exists, is active and is of that provider — else **404**;
2. the body (at most :data:`HOOK_BODY_LIMIT_BYTES`, else 413) is signed: GitHub's
   ``X-Hub-Signature-256`` is the HMAC-SHA256 of the raw body, GitLab's ``X-Gitlab-Token`` is the
   secret, both compared in constant time — else **401**;
3. it names its event and delivery id and the body is a JSON object of that event (a truncated
   or malformed body is refused here) — else **400**;
4. its delivery id (``X-GitHub-Delivery``, ``X-Gitlab-Event-UUID``) has not been accepted before
   (remembered in Redis for 30 days) — else **409**: replays are refused, redeliveries too.

Nothing is stored and nothing deployed for a refused delivery. An accepted one is answered at
once — 200 for ``ping``, 202 otherwise, with ``action`` ``queued`` or ``ignored`` and the
reason (another branch, an unused event, previews off) — and the work goes to the worker
(``webhooks.deliver``, see ``webhooks.processing``).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Request, Response, status
from fastapi import Path as PathParam
from sqlalchemy import select
from starlette.requests import ClientDisconnect

from caboose.api.deployments import TaskSenderDep, environment_of
from caboose.api.deps import (
    KeysDep,
    PrincipalDep,
    RedisDep,
    ServiceAccess,
    SessionDep,
    SettingsDep,
    load_service,
)
from caboose.config import Settings
from caboose.core.api_tokens import generate_secret
from caboose.core.encryption import DecryptionError
from caboose.core.errors import (
    AuthenticationError,
    BadRequestError,
    ConflictError,
    NotFoundError,
    ServiceUnavailableError,
    not_found,
)
from caboose.core.keys import PlatformKeys
from caboose.core.permissions import Permission
from caboose.core.secret_fields import webhook_secret_aad
from caboose.models import Project, Service, Webhook, WebhookProvider
from caboose.models.base import utcnow
from caboose.repositories.projects import WebhookRepository
from caboose.schemas.common import ListParamsDep, PageOf
from caboose.schemas.webhooks import HookAnswer, WebhookCreate, WebhookCreated, WebhookPublic
from caboose.webhooks.payloads import (
    HookEvent,
    PayloadError,
    Ping,
    PullRequest,
    Push,
    event_to_dict,
    parse_github,
    parse_gitlab,
)
from caboose.webhooks.processing import DELIVER_TASK, FORK_REASON
from caboose.webhooks.signatures import verify_github_signature, verify_gitlab_token

router = APIRouter(tags=["webhooks"])

HOOKS_PATH_PATTERN = r"^/api/v1/hooks/"
# GitHub caps payloads at 25 MB, but a push or pull request payload is far smaller; anything
# this large is not worth parsing in the API process.
HOOK_BODY_LIMIT_BYTES = 5 * 1024 * 1024
DELIVERY_TTL_S = 30 * 24 * 3600
_MAX_DELIVERY_ID = 200

ServiceId = Annotated[uuid.UUID, PathParam(description="The service's id.")]
WebhookId = Annotated[uuid.UUID, PathParam(description="The webhook's id.")]
HookId = Annotated[str, PathParam(description="The webhook's id (from its payload URL).")]


# Managing -------------------------------------------------------------------------------------


def hook_url(settings: Settings, webhook: Webhook) -> str:
    return f"{settings.resolved_public_url}/api/v1/hooks/{webhook.provider}/{webhook.id}"


def _public(webhook: Webhook, settings: Settings) -> WebhookPublic:
    out = WebhookPublic.model_validate(webhook)
    environment_id = (webhook.settings or {}).get("environment_id")
    out.environment_id = uuid.UUID(environment_id) if environment_id else None
    out.url = hook_url(settings, webhook)
    return out


@router.get("/services/{service_id}/webhooks", response_model=PageOf[WebhookPublic])
async def list_webhooks(
    service_id: ServiceId,
    session: SessionDep,
    settings: SettingsDep,
    access: ServiceAccess,
    params: ListParamsDep,
) -> PageOf[WebhookPublic]:
    """The service's webhooks (never their secrets)."""
    access.require(Permission.PROJECT_READ)
    page = await WebhookRepository(session, access.tenant_id).list(
        filters={"service_id": access.obj.id}, pagination=params.pagination, sorting=params.sorting
    )
    return PageOf.from_page(page, [_public(w, settings) for w in page.items])


@router.post(
    "/services/{service_id}/webhooks",
    response_model=WebhookCreated,
    status_code=status.HTTP_201_CREATED,
)
async def create_webhook(
    service_id: ServiceId,
    body: WebhookCreate,
    session: SessionDep,
    settings: SettingsDep,
    keys: KeysDep,
    access: ServiceAccess,
) -> WebhookCreated:
    """A new webhook (admin or owner). The answer holds its ``secret``, shown this once, and
    the payload ``url`` to give GitHub or GitLab."""
    access.require(Permission.WEBHOOKS_MANAGE)
    webhook_settings: dict[str, Any] = {}
    if body.environment_id is not None:
        environment = await environment_of(session, access, body.environment_id)
        webhook_settings["environment_id"] = str(environment.id)
    webhook_id = uuid.uuid4()
    secret = generate_secret(32)
    webhook = await WebhookRepository(session, access.tenant_id).create(
        id=webhook_id,
        service_id=access.obj.id,
        provider=body.provider,
        secret_encrypted=keys.webhook_secrets.encrypt(secret, aad=webhook_secret_aad(webhook_id)),
        is_active=True,
        settings=webhook_settings,
    )
    return WebhookCreated(**_public(webhook, settings).model_dump(), secret=secret)


@router.delete(
    "/webhooks/{webhook_id}", status_code=status.HTTP_204_NO_CONTENT, response_class=Response
)
async def delete_webhook(
    webhook_id: WebhookId, session: SessionDep, principal: PrincipalDep
) -> None:
    """Delete a webhook (admin or owner): its deliveries are refused (404) from now on."""
    repository = WebhookRepository(session, principal.tenant_ids)
    webhook = await repository.get(webhook_id)
    if webhook is None:
        raise not_found("Webhook", webhook_id)
    try:
        access = await load_service(session, principal, webhook.service_id)
    except NotFoundError:
        raise not_found("Webhook", webhook_id) from None
    access.require(Permission.WEBHOOKS_MANAGE)
    await WebhookRepository(session, access.tenant_id).delete(webhook)


# Receiving ------------------------------------------------------------------------------------


async def _webhook(session: SessionDep, raw_id: str, provider: WebhookProvider) -> Webhook:
    try:
        webhook_id = uuid.UUID(raw_id)
    except ValueError:
        raise not_found("Webhook", raw_id[:64]) from None
    webhook = await session.get(Webhook, webhook_id)
    if webhook is None or not webhook.is_active or webhook.provider != provider:
        raise not_found("Webhook", webhook_id)
    return webhook


async def _body(request: Request) -> bytes:
    try:
        return await request.body()
    except ClientDisconnect:
        raise BadRequestError("The request body was not received completely") from None


def _secret(keys: PlatformKeys, webhook: Webhook) -> str:
    try:
        return keys.webhook_secrets.decrypt(
            webhook.secret_encrypted, aad=webhook_secret_aad(webhook.id)
        )
    except DecryptionError:
        # Treated as a bad signature: nobody can sign for a secret that cannot be read.
        raise AuthenticationError(
            "This webhook's secret cannot be read: delete it and create a new one", headers={}
        ) from None


def _unsigned(detail: str) -> AuthenticationError:
    return AuthenticationError(detail, headers={})


def _header(request: Request, name: str, what: str) -> str:
    value = (request.headers.get(name) or "").strip()
    if not value:
        raise BadRequestError(f"The {name} header ({what}) is missing")
    if len(value) > _MAX_DELIVERY_ID:
        raise BadRequestError(f"The {name} header is too long")
    return value


def _parse(parser: Any, event_name: str, body: bytes) -> HookEvent:
    try:
        event: HookEvent = parser(event_name, body)
    except PayloadError as exc:
        raise BadRequestError(f"Malformed {event_name} payload: {exc}") from None
    return event


def _delivery_key(keys: PlatformKeys, webhook_id: uuid.UUID, delivery_id: str) -> str:
    digest = hmac.new(keys.token_hmac_secret, delivery_id.encode("utf-8"), hashlib.sha256)
    return f"caboose:webhook:{webhook_id}:delivery:{digest.hexdigest()[:32]}"


async def _decide(session: SessionDep, webhook: Webhook, event: HookEvent) -> str | None:
    """Why this event needs no work (None: it goes to the worker)."""
    if isinstance(event, Ping):
        return None
    if isinstance(event, Push):
        service = await session.get(Service, webhook.service_id)
        assert service is not None
        if event.deleted:
            return f"{event.ref} was deleted"
        if event.branch is None:
            return f"{event.ref} is not a branch"
        if event.branch != service.branch:
            return f"pushes to {event.branch} are ignored: the service deploys {service.branch}"
        return None
    if isinstance(event, PullRequest):
        if event.action == "other":
            return "this pull request action changes nothing deployed"
        if event.action == "close":
            return None  # a preview left from before previews were switched off goes too
        if event.from_fork:
            return FORK_REASON
        preview = await session.scalar(
            select(Project.preview_environments)
            .join(Service, Service.project_id == Project.id)
            .where(Service.id == webhook.service_id)
        )
        if not preview:
            return "preview environments are off for this project"
        return None
    return f"the {event.event} event is not used"


async def _receive(
    *,
    response: Response,
    session: SessionDep,
    redis: RedisDep,
    keys: PlatformKeys,
    sender: Any,
    webhook: Webhook,
    event_name: str,
    delivery_id: str,
    event: HookEvent,
) -> HookAnswer:
    if isinstance(event, Ping):
        answer = HookAnswer(delivery_id=delivery_id, event=event_name, action="pong")
    else:
        reason = await _decide(session, webhook, event)
        action = "ignored" if reason else "queued"
        answer = HookAnswer(delivery_id=delivery_id, event=event_name, action=action, reason=reason)
    # Remembered last, just before it is acted on: a failure before this point leaves the
    # provider free to deliver it again.
    key = _delivery_key(keys, webhook.id, delivery_id)
    if not await redis.set(key, "1", nx=True, ex=DELIVERY_TTL_S):
        raise ConflictError(f"Delivery {delivery_id} was already received: replays are refused")
    if answer.action == "pong":
        response.status_code = status.HTTP_200_OK
    webhook.last_delivery_at = utcnow()
    webhook.last_delivery_status = (
        f"{answer.action}: {answer.reason}" if answer.reason else answer.action
    )[:64]
    try:
        await session.commit()
        if answer.action == "queued":
            payload = json.dumps(event_to_dict(event), separators=(",", ":"))
            sender(DELIVER_TASK, [str(webhook.id), payload], str(uuid.uuid4()))
    except Exception:
        await redis.delete(key)  # not acted on: the provider may deliver it again
        raise ServiceUnavailableError("The delivery could not be queued; retry it") from None
    return answer


_HOOK_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {"description": "A ping, answered", "model": HookAnswer},
    400: {"description": "Missing headers, or a malformed or truncated body"},
    401: {"description": "Missing or wrong signature (GitHub) or token (GitLab)"},
    404: {"description": "No such webhook (or not of this provider)"},
    409: {"description": "A delivery id already received (replay)"},
    413: {"description": "A body over the limit"},
}


@router.post(
    "/hooks/github/{webhook_id}",
    response_model=HookAnswer,
    status_code=status.HTTP_202_ACCEPTED,
    responses=_HOOK_RESPONSES,
)
async def github_hook(
    webhook_id: HookId,
    request: Request,
    response: Response,
    session: SessionDep,
    redis: RedisDep,
    keys: KeysDep,
    sender: TaskSenderDep,
) -> HookAnswer:
    """A GitHub delivery: ``push`` deploys the service's branch, ``pull_request`` drives
    preview environments, ``ping`` is answered 200. Signed with ``X-Hub-Signature-256``."""
    webhook = await _webhook(session, webhook_id, WebhookProvider.GITHUB)
    body = await _body(request)
    secret = _secret(keys, webhook)
    signature = request.headers.get("x-hub-signature-256")
    if not signature:
        raise _unsigned("The delivery is not signed (X-Hub-Signature-256)")
    if not verify_github_signature(secret, body, signature):
        raise _unsigned("The signature (X-Hub-Signature-256) does not match the body")
    event_name = _header(request, "x-github-event", "the event")
    delivery_id = _header(request, "x-github-delivery", "the delivery id")
    event = _parse(parse_github, event_name, body)
    return await _receive(
        response=response,
        session=session,
        redis=redis,
        keys=keys,
        sender=sender,
        webhook=webhook,
        event_name=event_name,
        delivery_id=delivery_id,
        event=event,
    )


@router.post(
    "/hooks/gitlab/{webhook_id}",
    response_model=HookAnswer,
    status_code=status.HTTP_202_ACCEPTED,
    responses=_HOOK_RESPONSES,
)
async def gitlab_hook(
    webhook_id: HookId,
    request: Request,
    response: Response,
    session: SessionDep,
    redis: RedisDep,
    keys: KeysDep,
    sender: TaskSenderDep,
) -> HookAnswer:
    """A GitLab delivery: ``Push Hook`` deploys the service's branch, ``Merge Request Hook``
    drives preview environments. Authenticated by ``X-Gitlab-Token``."""
    webhook = await _webhook(session, webhook_id, WebhookProvider.GITLAB)
    body = await _body(request)
    secret = _secret(keys, webhook)
    token = request.headers.get("x-gitlab-token")
    if not token:
        raise _unsigned("The delivery carries no X-Gitlab-Token")
    if not verify_gitlab_token(secret, token):
        raise _unsigned("The X-Gitlab-Token is not this webhook's secret")
    event_name = _header(request, "x-gitlab-event", "the event")
    # GitLab names each delivery in X-Gitlab-Event-UUID; newer versions also send Idempotency-Key.
    has_uuid = bool(request.headers.get("x-gitlab-event-uuid"))
    has_key = bool(request.headers.get("idempotency-key"))
    delivery_header = "idempotency-key" if has_key and not has_uuid else "x-gitlab-event-uuid"
    delivery_id = _header(request, delivery_header, "the delivery id")
    event = _parse(parse_gitlab, event_name, body)
    return await _receive(
        response=response,
        session=session,
        redis=redis,
        keys=keys,
        sender=sender,
        webhook=webhook,
        event_name=event_name,
        delivery_id=delivery_id,
        event=event,
    )
