"""Cloning with real git from a local bare repository: branch, commit, root directory, errors."""

from __future__ import annotations

import subprocess
import threading
from dataclasses import dataclass
from pathlib import Path

import pytest

from caboose.engine.sandbox import AppUser, is_privileged
from caboose.engine.source import clone_repository, normalize_root_directory, redact
from caboose.engine.types import MemoryReporter, OperationCancelledError, SourceError

GIT_ENV = {
    "PATH": "/usr/bin:/bin",
    "HOME": "/nonexistent",
    "GIT_CONFIG_NOSYSTEM": "1",
    "GIT_CONFIG_GLOBAL": "/dev/null",
    "GIT_AUTHOR_NAME": "Ada Lovelace",
    "GIT_AUTHOR_EMAIL": "ada@example.com",
    "GIT_COMMITTER_NAME": "Ada Lovelace",
    "GIT_COMMITTER_EMAIL": "ada@example.com",
}


def git(*args: str, cwd: Path) -> str:
    done = subprocess.run(
        ["git", *args], cwd=cwd, env=GIT_ENV, capture_output=True, text=True, check=True
    )
    return done.stdout.strip()


@dataclass
class Repo:
    url: str
    first: str
    second: str
    feature: str


@pytest.fixture(scope="module")
def repo(work_root: Path) -> Repo:
    """A bare repository: two commits on main (with a backend/ subdirectory), one on feature."""
    base = work_root / "git"
    base.mkdir()
    base.chmod(0o755)
    bare = base / "origin.git"
    work = base / "work"
    git("init", "--quiet", "--bare", "--initial-branch=main", str(bare), cwd=base)
    git("init", "--quiet", "--initial-branch=main", str(work), cwd=base)
    (work / "backend").mkdir()
    (work / "README.md").write_text("v1\n")
    (work / "backend" / "main.py").write_text("print('v1')\n")
    (work / "link-out").symlink_to("/etc")
    git("add", "-A", cwd=work)
    git("commit", "--quiet", "-m", "first commit", cwd=work)
    first = git("rev-parse", "HEAD", cwd=work)
    (work / "README.md").write_text("v2\n")
    git("commit", "--quiet", "-am", "second commit\n\nwith a body", cwd=work)
    second = git("rev-parse", "HEAD", cwd=work)
    git("checkout", "--quiet", "-b", "feature", cwd=work)
    (work / "FEATURE").write_text("feature\n")
    git("add", "-A", cwd=work)
    git("commit", "--quiet", "-m", "feature work", cwd=work)
    feature = git("rev-parse", "HEAD", cwd=work)
    git("push", "--quiet", str(bare), "main", "feature", cwd=work)
    for path in [bare, *bare.rglob("*")]:
        path.chmod(path.stat().st_mode | 0o055)  # readable by the unprivileged clone user
    return Repo(url=f"file://{bare}", first=first, second=second, feature=feature)


def test_clones_the_default_branch_shallow(
    repo: Repo, work_dir: Path, reporter: MemoryReporter
) -> None:
    src = clone_repository(repo.url, work_dir / "src", allow_local=True, reporter=reporter)
    assert (src.path / "README.md").read_text() == "v2\n"
    assert not (src.path / ".git").exists()
    assert src.commit.sha == repo.second
    assert src.commit.subject == "second commit"
    assert src.commit.message == "second commit\n\nwith a body"
    assert src.commit.author == "Ada Lovelace <ada@example.com>"
    assert reporter.stages == [("fetch", "running"), ("fetch", "succeeded")]
    assert list(work_dir.iterdir()) == [work_dir / "src"]  # the temporary clone is gone


def test_clones_a_branch(repo: Repo, work_dir: Path) -> None:
    src = clone_repository(repo.url, work_dir / "src", branch="feature", allow_local=True)
    assert (src.path / "FEATURE").exists()
    assert src.commit.sha == repo.feature


@pytest.mark.parametrize("length", [40, 10])
def test_clones_a_specific_commit(repo: Repo, work_dir: Path, length: int) -> None:
    src = clone_repository(
        repo.url, work_dir / "src", branch="main", commit=repo.first[:length], allow_local=True
    )
    assert (src.path / "README.md").read_text() == "v1\n"
    assert src.commit.sha == repo.first


@pytest.mark.parametrize("root", ["backend", "/backend/", "./backend"])
def test_selects_the_root_directory(repo: Repo, work_dir: Path, root: str) -> None:
    src = clone_repository(repo.url, work_dir / "src", root_directory=root, allow_local=True)
    assert sorted(p.name for p in src.path.iterdir()) == ["main.py"]
    assert src.root_directory == "backend"


@pytest.mark.parametrize(
    ("root", "message"),
    [
        ("missing", "does not exist"),
        ("README.md", "not a directory"),
        ("link-out", "symbolic link"),
        ("../..", "'..'"),
    ],
)
def test_refuses_bad_root_directories(repo: Repo, work_dir: Path, root: str, message: str) -> None:
    with pytest.raises(SourceError, match=message):
        clone_repository(repo.url, work_dir / "src", root_directory=root, allow_local=True)
    assert list(work_dir.iterdir()) == []


def test_unknown_branch_and_commit_are_clear_errors(repo: Repo, work_dir: Path) -> None:
    with pytest.raises(SourceError, match="nope"):
        clone_repository(repo.url, work_dir / "a", branch="nope", allow_local=True)
    with pytest.raises(SourceError, match="not found"):
        clone_repository(repo.url, work_dir / "b", commit="deadbeef" * 5, allow_local=True)
    assert list(work_dir.iterdir()) == []


@pytest.mark.parametrize(
    "url",
    [
        "ext::sh -c touch% /tmp/pwned",
        "-uhelp",
        "file:///etc",
        "/srv/repo.git",
        "ftp://example.com/repo.git",
        "https://",
        "https://host/repo name",
    ],
)
def test_refuses_dangerous_urls(work_dir: Path, url: str) -> None:
    with pytest.raises(SourceError):
        clone_repository(url, work_dir / "src")
    assert not Path("/tmp/pwned").exists()


def test_refuses_bad_branch_and_commit_names(repo: Repo, work_dir: Path) -> None:
    with pytest.raises(SourceError, match="branch"):
        clone_repository(repo.url, work_dir / "a", branch="--upload-pack=evil", allow_local=True)
    with pytest.raises(SourceError, match="commit"):
        clone_repository(repo.url, work_dir / "b", commit="HEAD~1; rm", allow_local=True)


def test_credentials_never_reach_messages(work_dir: Path, reporter: MemoryReporter) -> None:
    url = "https://deploy:s3cr3t-token@127.0.0.1:9/owner/repo.git"  # port 9: refused at once
    with pytest.raises(SourceError) as caught:
        clone_repository(url, work_dir / "src", reporter=reporter, timeout=30)
    assert "s3cr3t" not in caught.value.message
    assert "s3cr3t" not in reporter.text
    assert "127.0.0.1" in reporter.text  # the URL is shown, without its credentials
    assert redact("https://u:p@host/x and https://h/y") == "https://***@host/x and https://h/y"


def test_cancellation(repo: Repo, work_dir: Path) -> None:
    cancel = threading.Event()
    cancel.set()
    with pytest.raises(OperationCancelledError):
        clone_repository(repo.url, work_dir / "src", allow_local=True, cancel=cancel)
    assert list(work_dir.iterdir()) == []


def test_runs_as_and_hands_the_tree_to_the_owner(
    repo: Repo, work_dir: Path, app_user: AppUser
) -> None:
    src = clone_repository(repo.url, work_dir / "src", allow_local=True, owner=app_user)
    if is_privileged():
        assert {p.lstat().st_uid for p in [src.path, *src.path.rglob("*")]} == {app_user.uid}


def test_normalize_root_directory() -> None:
    assert normalize_root_directory(None) == ""
    assert normalize_root_directory("/") == ""
    assert normalize_root_directory("/apps//web/") == "apps/web"
    with pytest.raises(SourceError):
        normalize_root_directory("apps/../../etc")
