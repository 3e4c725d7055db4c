"""Personal API tokens for the CLI and CI: ``cb_…``, shown once, stored as an HMAC."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from fastapi import APIRouter, Response, status

from caboose.api.deps import InteractivePrincipalDep, KeysDep, SessionDep, load_project
from caboose.core.api_tokens import generate_api_token, hash_api_token, token_prefix
from caboose.core.errors import not_found
from caboose.models import ApiToken
from caboose.repositories.base import BaseRepository
from caboose.schemas.common import ListParamsDep, PageOf
from caboose.schemas.identity import ApiTokenCreate, ApiTokenCreated, ApiTokenPublic

router = APIRouter(prefix="/tokens", tags=["tokens"])


class ApiTokenRepository(BaseRepository[ApiToken]):
    model = ApiToken
    noun = "API token"


@router.get("", response_model=PageOf[ApiTokenPublic])
async def list_tokens(
    principal: InteractivePrincipalDep, session: SessionDep, params: ListParamsDep
) -> PageOf[ApiTokenPublic]:
    """Your API tokens (never their secrets), revoked ones included for the record."""
    page = await ApiTokenRepository(session).list(
        filters={"user_id": principal.user_id},
        pagination=params.pagination,
        sorting=params.sorting,
    )
    return PageOf.from_page(page, [ApiTokenPublic.model_validate(t) for t in page.items])


@router.post("", status_code=status.HTTP_201_CREATED, response_model=ApiTokenCreated)
async def create_token(
    body: ApiTokenCreate, principal: InteractivePrincipalDep, session: SessionDep, keys: KeysDep
) -> ApiTokenCreated:
    """Create a token. Its secret is in this response only; store it now."""
    if body.project_id is not None:
        await load_project(session, principal, body.project_id)  # 404 unless you can see it
    secret = generate_api_token()
    token = await ApiTokenRepository(session).create(
        user_id=principal.user_id,
        name=body.name,
        token_hash=hash_api_token(secret, secret=keys.token_hmac_secret),
        prefix=token_prefix(secret),
        project_id=body.project_id,
        expires_at=(
            datetime.now(UTC) + timedelta(days=body.expires_in_days)
            if body.expires_in_days
            else None
        ),
    )
    return ApiTokenCreated.model_validate(
        {**ApiTokenPublic.model_validate(token).model_dump(), "token": secret}
    )


@router.delete("/{token_id}", status_code=status.HTTP_204_NO_CONTENT)
async def revoke_token(
    token_id: uuid.UUID, principal: InteractivePrincipalDep, session: SessionDep
) -> Response:
    """Revoke a token at once. It stays listed, marked revoked."""
    token = await ApiTokenRepository(session).find_one(id=token_id, user_id=principal.user_id)
    if token is None:
        raise not_found("API token", token_id)
    if token.revoked_at is None:
        token.revoked_at = datetime.now(UTC)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
