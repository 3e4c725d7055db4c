"""GitHub and GitLab payloads, reduced to the few facts Caboose acts on.

Parsing happens in the API (so a malformed payload is a 400 to the sender, and the worker gets
a small, checked event instead of a provider's megabyte of JSON). What comes out is one of
:class:`Ping`, :class:`Push`, :class:`PullRequest` or :class:`Unsupported`, each convertible to
and from a JSON-able dict (:func:`event_to_dict`, :func:`event_from_dict`) for the task queue.

Changed files (for ``watchPatterns``) are only trusted when the payload lists *every* commit of
the push: a new branch, a forced push, or a push whose commit list the provider cut short
(GitLab sends 20 commits at most, GitHub 2048) has ``changed_files=None`` — unknown — and
always deploys rather than risk skipping a change.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from typing import Any, Literal

__all__ = [
    "MAX_CHANGED_FILES",
    "HookEvent",
    "PayloadError",
    "Ping",
    "PullRequest",
    "Push",
    "Unsupported",
    "event_from_dict",
    "event_to_dict",
    "parse_github",
    "parse_gitlab",
]

# More changed files than this and the list is treated as unknown (the push deploys).
MAX_CHANGED_FILES = 5000
_GITHUB_MAX_COMMITS = 2048
_ZERO_SHA = "0" * 40
_HEX = frozenset("0123456789abcdef")
_MESSAGE_MAX = 4000


class PayloadError(ValueError):
    """The body is not a payload of the event it claims to be (a 400 to the sender)."""


@dataclass(frozen=True)
class Ping:
    kind: Literal["ping"] = "ping"


@dataclass(frozen=True)
class Unsupported:
    event: str
    kind: Literal["unsupported"] = "unsupported"


@dataclass(frozen=True)
class Push:
    ref: str
    sha: str
    branch: str | None  # None: a tag or another kind of ref
    deleted: bool
    message: str | None
    author: str | None
    changed_files: tuple[str, ...] | None
    kind: Literal["push"] = "push"


@dataclass(frozen=True)
class PullRequest:
    number: int
    action: Literal["open", "update", "close", "other"]
    head_sha: str
    head_branch: str
    base_branch: str
    title: str | None
    author: str | None
    # From another repository (a fork): its author need not be trusted with this project.
    from_fork: bool = False
    kind: Literal["pull_request"] = "pull_request"


HookEvent = Ping | Unsupported | Push | PullRequest


def event_to_dict(event: HookEvent) -> dict[str, Any]:
    return asdict(event)


def event_from_dict(data: dict[str, Any]) -> HookEvent:
    kind = data.get("kind")
    values = {k: v for k, v in data.items() if k != "kind"}
    if kind == "push":
        files = values.get("changed_files")
        values["changed_files"] = tuple(files) if files is not None else None
        return Push(**values)
    if kind == "pull_request":
        return PullRequest(**values)
    if kind == "ping":
        return Ping()
    return Unsupported(event=str(values.get("event", "")))


# Reading JSON safely ---------------------------------------------------------------------------


def load_json(body: bytes) -> dict[str, Any]:
    """The body as a JSON object; anything else (truncated, not UTF-8, an array) is refused."""
    try:
        data = json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise PayloadError("The body is not valid JSON (truncated or malformed)") from None
    if not isinstance(data, dict):
        raise PayloadError("The body is not a JSON object")
    return data


def _obj(data: dict[str, Any], key: str, *, required: bool = True) -> dict[str, Any]:
    value = data.get(key)
    if isinstance(value, dict):
        return value
    if value is None and not required:
        return {}
    raise PayloadError(f"`{key}` is missing or not an object")


def _str(data: dict[str, Any], key: str, *, required: bool = True) -> str | None:
    value = data.get(key)
    if isinstance(value, str):
        return value
    if value is None and not required:
        return None
    raise PayloadError(f"`{key}` is missing or not a string")


def _sha(value: str | None, what: str) -> str:
    sha = (value or "").lower()
    if len(sha) != 40 or not set(sha) <= _HEX:
        raise PayloadError(f"`{what}` is not a commit sha")
    return sha


def _message(value: object) -> str | None:
    if not isinstance(value, str):
        return None
    return value[:_MESSAGE_MAX]


def _person(value: object) -> str | None:
    """``Name <email>`` as git prints an author (what a build records), or what there is."""
    if not isinstance(value, dict):
        return None
    name = next(
        (str(value[k]) for k in ("name", "username", "login") if isinstance(value.get(k), str)),
        "",
    )
    email = str(value["email"]) if isinstance(value.get("email"), str) else ""
    if name and email:
        return f"{name} <{email}>"[:255]
    return (name or email)[:255] or None


def _branch_of(ref: str) -> str | None:
    return ref.removeprefix("refs/heads/") if ref.startswith("refs/heads/") else None


def _changed_files(commits: list[Any]) -> tuple[str, ...] | None:
    files: set[str] = set()
    for commit in commits:
        if not isinstance(commit, dict):
            raise PayloadError("`commits` holds something that is not a commit")
        for key in ("added", "modified", "removed"):
            listed = commit.get(key)
            if listed is None:
                return None  # a provider that does not list files: unknown
            if not isinstance(listed, list) or not all(isinstance(f, str) for f in listed):
                raise PayloadError(f"`commits[].{key}` is not a list of paths")
            files.update(listed)
            if len(files) > MAX_CHANGED_FILES:
                return None
    return tuple(sorted(files))


def _commits(data: dict[str, Any]) -> list[Any]:
    commits = data.get("commits", [])
    if commits is None:
        return []
    if not isinstance(commits, list):
        raise PayloadError("`commits` is not a list")
    return commits


# GitHub ------------------------------------------------------------------------------------------


def parse_github(event: str, body: bytes) -> HookEvent:
    """A GitHub delivery (``X-GitHub-Event`` and the raw body)."""
    data = load_json(body)
    if event == "ping":
        return Ping()
    if event == "push":
        return _github_push(data)
    if event == "pull_request":
        return _github_pull_request(data)
    return Unsupported(event=event[:100])


def _github_push(data: dict[str, Any]) -> Push:
    ref = _str(data, "ref") or ""
    deleted = data.get("deleted") is True
    after = _str(data, "after")
    sha = _ZERO_SHA if deleted else _sha(after, "after")
    head = _obj(data, "head_commit", required=False)
    commits = _commits(data)
    complete = (
        not data.get("created")
        and not data.get("forced")
        and 0 < len(commits) < _GITHUB_MAX_COMMITS
        and _str(data, "before", required=False) not in (None, _ZERO_SHA)
    )
    return Push(
        ref=ref,
        sha=sha,
        branch=_branch_of(ref),
        deleted=deleted,
        message=_message(head.get("message")),
        author=_person(head.get("author")),
        changed_files=_changed_files(commits) if complete else None,
    )


_GITHUB_PR_ACTIONS: dict[str, Literal["open", "update", "close"]] = {
    "opened": "open",
    "reopened": "open",
    "synchronize": "update",
    "closed": "close",
}


def _github_pull_request(data: dict[str, Any]) -> PullRequest:
    action = _str(data, "action") or ""
    number = data.get("number")
    pull = _obj(data, "pull_request")
    if not isinstance(number, int) or isinstance(number, bool) or number <= 0:
        number = pull.get("number")
    if not isinstance(number, int) or isinstance(number, bool) or number <= 0:
        raise PayloadError("`number` is not a pull request number")
    head, base = _obj(pull, "head"), _obj(pull, "base")
    return PullRequest(
        number=number,
        action=_GITHUB_PR_ACTIONS.get(action, "other"),
        head_sha=_sha(_str(head, "sha"), "pull_request.head.sha"),
        head_branch=_str(head, "ref") or "",
        base_branch=_str(base, "ref") or "",
        title=_message(pull.get("title")),
        author=_person(pull.get("user")),
        from_fork=_github_repo_id(head) != _github_repo_id(base),
    )


def _github_repo_id(side: dict[str, Any]) -> object:
    # ``head.repo`` is null when the fork was deleted: that is a fork too (never equal to base).
    repo = side.get("repo")
    return repo.get("id", repo.get("full_name")) if isinstance(repo, dict) else object()


# GitLab ------------------------------------------------------------------------------------------


def parse_gitlab(event: str, body: bytes) -> HookEvent:
    """A GitLab delivery (``X-Gitlab-Event``: ``Push Hook``, ``Merge Request Hook`` …)."""
    data = load_json(body)
    if event == "Push Hook":
        return _gitlab_push(data)
    if event == "Merge Request Hook":
        return _gitlab_merge_request(data)
    return Unsupported(event=event[:100])


def _gitlab_push(data: dict[str, Any]) -> Push:
    ref = _str(data, "ref") or ""
    after = (_str(data, "after") or "").lower()
    deleted = after == _ZERO_SHA
    sha = _ZERO_SHA if deleted else _sha(after, "after")
    commits = _commits(data)
    head = next(
        (c for c in commits if isinstance(c, dict) and str(c.get("id", "")).lower() == sha),
        commits[-1] if commits and isinstance(commits[-1], dict) else {},
    )
    total = data.get("total_commits_count")
    complete = (
        isinstance(total, int)
        and 0 < len(commits) == total
        and _str(data, "before", required=False) not in (None, _ZERO_SHA)
    )
    return Push(
        ref=ref,
        sha=sha,
        branch=_branch_of(ref),
        deleted=deleted,
        message=_message(head.get("message")),
        author=_person(head.get("author")),
        changed_files=_changed_files(commits) if complete else None,
    )


def _gitlab_merge_request(data: dict[str, Any]) -> PullRequest:
    attributes = _obj(data, "object_attributes")
    number = attributes.get("iid")
    if not isinstance(number, int) or isinstance(number, bool) or number <= 0:
        raise PayloadError("`object_attributes.iid` is not a merge request number")
    action = _str(attributes, "action", required=False) or ""
    mapped: Literal["open", "update", "close", "other"]
    if action in {"open", "reopen"}:
        mapped = "open"
    elif action == "update":
        # An update is also a title or label edit; only new commits (oldrev) need a deploy.
        mapped = "update" if attributes.get("oldrev") else "other"
    elif action in {"close", "merge"}:
        mapped = "close"
    else:
        mapped = "other"
    last = _obj(attributes, "last_commit", required=False)
    head_sha = last.get("id") or attributes.get("last_commit_id")
    if mapped == "close" and not head_sha:
        head_sha = _ZERO_SHA
    return PullRequest(
        number=number,
        action=mapped,
        head_sha=_sha(head_sha if isinstance(head_sha, str) else None, "last_commit.id"),
        head_branch=_str(attributes, "source_branch", required=False) or "",
        base_branch=_str(attributes, "target_branch", required=False) or "",
        title=_message(attributes.get("title")),
        author=_person(data.get("user")),
        from_fork=attributes.get("source_project_id") != attributes.get("target_project_id"),
    )
