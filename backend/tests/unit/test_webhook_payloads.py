"""Webhook payloads reduced to what Caboose acts on, watch patterns, and signatures."""

from __future__ import annotations

import hashlib
import hmac
import json
from typing import Any

import pytest

from caboose.engine.watch import matching_files
from caboose.webhooks.payloads import (
    PayloadError,
    Ping,
    PullRequest,
    Push,
    Unsupported,
    event_from_dict,
    event_to_dict,
    parse_github,
    parse_gitlab,
)
from caboose.webhooks.signatures import (
    github_signature,
    verify_github_signature,
    verify_gitlab_token,
)

SHA = "a" * 40
BEFORE = "b" * 40
REPO = {"id": 7, "full_name": "acme/shop"}


def body(data: Any) -> bytes:
    return json.dumps(data).encode()


# Watch patterns ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("patterns", "files", "expected"),
    [
        (["backend/**"], ["backend/app/main.py", "docs/a.md"], ["backend/app/main.py"]),
        (["backend/**"], ["frontend/backend/x.py"], []),  # anchored by its slash
        (["*.py"], ["a.py", "deep/er/b.py", "c.pyc"], ["a.py", "deep/er/b.py"]),  # any depth
        (["/*.py"], ["a.py", "deep/b.py"], ["a.py"]),  # leading slash: the root only
        (["src/**", "!src/**/*.md"], ["src/a.md", "src/x/y.md", "src/b.ts"], ["src/b.ts"]),
        (["**/*.md", "!README.md", "README.md"], ["README.md"], ["README.md"]),  # last wins
        (["docs/"], ["docs/a/b.md", "docs"], ["docs/a/b.md"]),  # a directory pattern
        (["src/*.ts"], ["src/a.ts", "src/x/b.ts"], ["src/a.ts"]),  # * stays in one directory
        (["file[0-9].txt"], ["file1.txt", "filea.txt"], ["file1.txt"]),
        (["a?c"], ["abc", "a/c"], ["abc"]),
        (["# a comment", "", "   "], ["x"], ["x"]),  # no pattern at all: everything
        ([], ["x", "y"], ["x", "y"]),
    ],
)
def test_watch_patterns_follow_gitignore_rules(
    patterns: list[str], files: list[str], expected: list[str]
) -> None:
    assert matching_files(patterns, files) == expected


# GitHub ------------------------------------------------------------------------------------------


def github_push(**overrides: Any) -> dict[str, Any]:
    commit = {
        "id": SHA,
        "message": "Second\n\nbody",
        "author": {"name": "Ada", "email": "ada@example.com", "username": "ada"},
        "added": ["new.py"],
        "modified": ["app.py"],
        "removed": ["old.py"],
    }
    first = {**commit, "id": "c" * 40, "added": [], "modified": ["lib/x.py"], "removed": []}
    data = {
        "ref": "refs/heads/main",
        "before": BEFORE,
        "after": SHA,
        "created": False,
        "deleted": False,
        "forced": False,
        "commits": [first, commit],
        "head_commit": commit,
    }
    data.update(overrides)
    return data


def test_a_github_push() -> None:
    event = parse_github("push", body(github_push()))
    assert event == Push(
        ref="refs/heads/main",
        sha=SHA,
        branch="main",
        deleted=False,
        message="Second\n\nbody",
        author="Ada <ada@example.com>",
        changed_files=("app.py", "lib/x.py", "new.py", "old.py"),
    )
    assert event_from_dict(json.loads(json.dumps(event_to_dict(event)))) == event


@pytest.mark.parametrize(
    "overrides",
    [{"created": True}, {"forced": True}, {"commits": []}, {"before": "0" * 40}],
    ids=["new-branch", "forced", "no-commits", "no-before"],
)
def test_changed_files_are_unknown_when_the_payload_may_not_list_them_all(
    overrides: dict[str, Any],
) -> None:
    event = parse_github("push", body(github_push(**overrides)))
    assert isinstance(event, Push) and event.changed_files is None


def test_tags_and_deleted_branches() -> None:
    tag = parse_github("push", body(github_push(ref="refs/tags/v1")))
    assert isinstance(tag, Push) and tag.branch is None
    gone = parse_github("push", body(github_push(deleted=True, after="0" * 40, head_commit=None)))
    assert isinstance(gone, Push) and gone.deleted and gone.message is None


def test_github_pull_requests() -> None:
    data = {
        "action": "synchronize",
        "number": 12,
        "pull_request": {
            "title": "Faster",
            "user": {"login": "grace"},
            "head": {"sha": SHA.upper(), "ref": "feat", "repo": REPO},
            "base": {"ref": "main", "repo": REPO},
        },
    }
    event = parse_github("pull_request", body(data))
    assert event == PullRequest(
        number=12,
        action="update",
        head_sha=SHA,
        head_branch="feat",
        base_branch="main",
        title="Faster",
        author="grace",
    )
    assert event_from_dict(event_to_dict(event)) == event
    for action, mapped in [("opened", "open"), ("reopened", "open"), ("closed", "close")]:
        parsed = parse_github("pull_request", body({**data, "action": action}))
        assert isinstance(parsed, PullRequest) and parsed.action == mapped
    edited = parse_github("pull_request", body({**data, "action": "edited"}))
    assert isinstance(edited, PullRequest) and edited.action == "other"


@pytest.mark.parametrize(
    "head_repo",
    [{"id": 8, "full_name": "mallory/shop"}, None],  # a fork; a fork deleted since
)
def test_github_pull_requests_from_forks_are_marked(head_repo: dict[str, Any] | None) -> None:
    pull = {
        "head": {"sha": SHA, "ref": "main", "repo": head_repo},
        "base": {"ref": "main", "repo": REPO},
    }
    event = parse_github(
        "pull_request", body({"action": "opened", "number": 2, "pull_request": pull})
    )
    assert isinstance(event, PullRequest) and event.from_fork
    assert event_from_dict(event_to_dict(event)) == event


def test_ping_and_other_events() -> None:
    assert parse_github("ping", body({"zen": "x"})) == Ping()
    assert parse_github("issues", body({})) == Unsupported(event="issues")
    assert event_from_dict(event_to_dict(Ping())) == Ping()


@pytest.mark.parametrize(
    ("event", "raw"),
    [
        ("push", b'{"ref": "refs/heads/main", "after": "'),
        ("push", b"\xff"),
        ("push", b'"a string"'),
        ("push", body({"ref": "refs/heads/main"})),
        ("push", body(github_push(after="xyz"))),
        ("push", body(github_push(commits=[1, 2]))),
        ("push", body(github_push(commits=[{"added": "a.py"}]))),
        ("pull_request", body({"action": "opened", "number": 1})),
        ("pull_request", body({"action": "opened", "number": True, "pull_request": {}})),
        ("pull_request", body({"action": "opened", "number": 3, "pull_request": {"head": {}}})),
        ("ping", b"{"),
    ],
)
def test_malformed_github_payloads_are_refused(event: str, raw: bytes) -> None:
    with pytest.raises(PayloadError):
        parse_github(event, raw)


# GitLab ------------------------------------------------------------------------------------------


def gitlab_push(**overrides: Any) -> dict[str, Any]:
    data = {
        "object_kind": "push",
        "ref": "refs/heads/main",
        "before": BEFORE,
        "after": SHA,
        "total_commits_count": 2,
        "commits": [
            {"id": SHA, "message": "Newest", "author": {"name": "Grace"}, "added": ["a"]}
            | {"modified": [], "removed": []},
            {"id": "c" * 40, "message": "Older", "author": {"name": "Ada"}, "added": []}
            | {"modified": ["b"], "removed": []},
        ],
    }
    data.update(overrides)
    return data


def test_a_gitlab_push() -> None:
    event = parse_gitlab("Push Hook", body(gitlab_push()))
    assert event == Push(
        ref="refs/heads/main",
        sha=SHA,
        branch="main",
        deleted=False,
        message="Newest",
        author="Grace",
        changed_files=("a", "b"),
    )
    cut = parse_gitlab("Push Hook", body(gitlab_push(total_commits_count=40)))
    assert isinstance(cut, Push) and cut.changed_files is None  # GitLab lists 20 at most
    deleted = parse_gitlab("Push Hook", body(gitlab_push(after="0" * 40, commits=[])))
    assert isinstance(deleted, Push) and deleted.deleted


def test_gitlab_merge_requests() -> None:
    data = {
        "object_kind": "merge_request",
        "user": {"name": "Ada", "username": "ada"},
        "object_attributes": {
            "iid": 5,
            "action": "open",
            "source_branch": "feat",
            "target_branch": "main",
            "title": "Faster",
            "last_commit": {"id": SHA, "message": "m"},
            "source_project_id": 11,
            "target_project_id": 11,
        },
    }
    event = parse_gitlab("Merge Request Hook", body(data))
    assert event == PullRequest(
        number=5,
        action="open",
        head_sha=SHA,
        head_branch="feat",
        base_branch="main",
        title="Faster",
        author="Ada",
    )
    attributes = data["object_attributes"]
    assert isinstance(attributes, dict)
    cases = [
        ({"action": "update", "oldrev": BEFORE}, "update"),
        ({"action": "update"}, "other"),  # a title edit: nothing to deploy
        ({"action": "merge"}, "close"),
        ({"action": "close"}, "close"),
        ({"action": "approved"}, "other"),
    ]
    for changes, expected in cases:
        parsed = parse_gitlab(
            "Merge Request Hook", body({**data, "object_attributes": attributes | changes})
        )
        assert isinstance(parsed, PullRequest) and parsed.action == expected
    forked = parse_gitlab(
        "Merge Request Hook",
        body({**data, "object_attributes": attributes | {"source_project_id": 12}}),
    )
    assert isinstance(forked, PullRequest) and forked.from_fork
    with pytest.raises(PayloadError):
        parse_gitlab("Merge Request Hook", body({"object_attributes": {"iid": "5"}}))
    assert parse_gitlab("Tag Push Hook", body({})) == Unsupported(event="Tag Push Hook")


# Signatures --------------------------------------------------------------------------------------


def test_github_signatures() -> None:
    raw = b'{"zen": "x"}'
    expected = "sha256=" + hmac.new(b"s3cret", raw, hashlib.sha256).hexdigest()
    assert github_signature("s3cret", raw) == expected
    assert verify_github_signature("s3cret", raw, expected)
    assert verify_github_signature("s3cret", raw, f" {expected} ")
    assert not verify_github_signature("s3cret", raw + b" ", expected)
    assert not verify_github_signature("other", raw, expected)
    assert not verify_github_signature("s3cret", raw, expected.upper())
    assert not verify_github_signature("s3cret", raw, None)
    assert not verify_github_signature("s3cret", raw, "")
    assert not verify_github_signature("s3cret", raw, "sha256=é")


def test_gitlab_tokens() -> None:
    assert verify_gitlab_token("tok", "tok")
    assert not verify_gitlab_token("tok", "tok ")
    assert not verify_gitlab_token("tok", None)
    assert not verify_gitlab_token("tok", "é")
