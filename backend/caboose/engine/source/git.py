"""Fetch a service's source from a git repository.

The clone is shallow: ``--depth 1`` of the branch when no commit is asked for; when one is
(a webhook's push, a redeploy of an older commit), that single commit is fetched with depth 1,
and only if the server refuses (or the sha is abbreviated) does the fetch get deeper. Then the
service's root directory is cut out of the checkout and renamed to ``dest``; the rest of the
repository, ``.git`` included, is removed (apps get the commit as ``CABOOSE_GIT_COMMIT_SHA``).

Git runs with an environment built from nothing: no terminal prompts (a private repository
without credentials fails at once instead of hanging), no system or global git config, only the
https/http/ssh/git transports (``ext::`` and friends could run commands; local paths could read
the platform's disk, so ``file`` is only allowed when ``allow_local``). Credentials embedded in
an http(s) URL are taken out of it and handed to git as an ``Authorization`` header through the
environment, so they appear neither in the process list nor in git's messages; every message is
redacted again before it reaches the user anyway.
"""

from __future__ import annotations

import base64
import os
import re
import secrets
import shlex
import shutil
import signal
import stat
import subprocess
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from urllib.parse import unquote, urlsplit, urlunsplit

from caboose.engine.plan.runtimes import network_environment
from caboose.engine.sandbox import AppUser, chown_tree, is_privileged
from caboose.engine.types import (
    CommitInfo,
    OperationCancelledError,
    Reporter,
    SourceError,
    StageStatus,
    StepTimeoutError,
)

_SCP_LIKE = re.compile(r"^(?P<user>[A-Za-z0-9._~-]+)@(?P<host>[A-Za-z0-9.-]+):(?P<path>[^\s]+)$")
_FULL_SHA = re.compile(r"^[0-9a-fA-F]{40}$")
_SHORT_SHA = re.compile(r"^[0-9a-fA-F]{4,40}$")
_BRANCH = re.compile(r"^[A-Za-z0-9._/+@-]{1,250}$")
_USERINFO = re.compile(r"(?P<scheme>[a-zA-Z][a-zA-Z0-9+.-]*://)[^/@\s]+@")
_SAFE_PATH = "/usr/local/bin:/usr/bin:/bin"


@dataclass(frozen=True, slots=True)
class GitSource:
    """A checked-out source tree and the commit it is at."""

    path: Path
    commit: CommitInfo
    branch: str | None
    root_directory: str


@dataclass(frozen=True, slots=True)
class _Remote:
    url: str  # what git is given: no credentials
    display: str  # what the log shows
    header: str | None  # an Authorization header value, when the URL carried credentials
    is_local: bool


def clone_repository(
    url: str,
    dest: Path,
    *,
    branch: str | None = None,
    commit: str | None = None,
    root_directory: str | None = None,
    timeout: float = 600.0,
    ssh_key: Path | None = None,
    known_hosts: Path | None = None,
    allow_local: bool = False,
    network_env: Mapping[str, str] | None = None,
    owner: AppUser | None = None,
    reporter: Reporter | None = None,
    cancel: threading.Event | None = None,
    git: str = "git",
) -> GitSource:
    """Clone ``url`` at ``branch`` (default: the remote's default branch) and ``commit``.

    The tree at ``root_directory`` (relative to the repository; a leading ``/`` is accepted the
    way Railway's settings write it) ends up at ``dest``, which must not exist yet. When the
    platform is root and ``owner`` is given, git itself runs as ``owner`` (a hostile repository
    then meets an unprivileged process) and the tree is owned by it. ``timeout`` bounds the whole
    fetch; ``cancel`` kills git at once. ``network_env`` is how this machine reaches the network
    (proxies, CA bundle; default: ``network_environment()``), the only variables git inherits.
    Failures raise ``SourceError`` with git's message summarised and stripped of credentials.
    """
    remote = _parse_remote(url, allow_local=allow_local)
    if branch is not None and (
        not _BRANCH.match(branch) or branch.startswith("-") or ".." in branch
    ):
        raise SourceError(f"invalid branch name {branch!r}")
    if commit is not None:
        commit = commit.strip().lower()
        if not _SHORT_SHA.match(commit):
            raise SourceError(f"invalid commit sha {commit!r}")
    root = normalize_root_directory(root_directory)
    if dest.exists() or dest.is_symlink():
        raise SourceError(f"clone target {dest} already exists", status=500)

    if reporter is not None:
        reporter.stage("fetch", StageStatus.RUNNING)
        what = f"commit {commit}" if commit else f"branch {branch}" if branch else "default branch"
        reporter.log(f"Cloning {remote.display} ({what})", stream="system")
    runner = _GitRunner(git, remote, owner, ssh_key, known_hosts, timeout, cancel)
    runner.network_env = dict(network_environment() if network_env is None else network_env)
    tmp = dest.parent / f".{dest.name}.clone-{secrets.token_hex(6)}"
    try:
        runner.prepare(tmp)
        repo = tmp / "repo"
        if commit is None:
            args = ["clone", "--quiet", "--depth", "1", "--no-tags", "--single-branch"]
            if branch:
                args += ["--branch", branch]
            runner.run([*args, "--", remote.url, str(repo)], cwd=tmp)
        else:
            _fetch_commit(runner, repo, tmp, branch, commit)
        info = _commit_info(runner, repo)
        if commit is not None and not info.sha.startswith(commit):
            raise SourceError(f"commit {commit} could not be checked out")
        source = _select_root(repo, root)
        shutil.rmtree(repo / ".git", ignore_errors=True)
        source.rename(dest)
    except BaseException as exc:
        if reporter is not None:
            if isinstance(exc, SourceError | StepTimeoutError | OperationCancelledError):
                reporter.log(exc.message, stream="system")
            status = (
                StageStatus.CANCELLED
                if isinstance(exc, OperationCancelledError)
                else StageStatus.FAILED
            )
            reporter.stage("fetch", status)
        raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    dest.chmod(0o700)
    if owner is not None and not runner.runs_as_owner:
        chown_tree(dest, owner)
    if reporter is not None:
        reporter.log(
            f"Checked out {info.sha[:12]} {info.subject!r} by {info.author_name}", stream="system"
        )
        reporter.stage("fetch", StageStatus.SUCCEEDED)
    return GitSource(path=dest, commit=info, branch=branch, root_directory=root)


def normalize_root_directory(root_directory: str | None) -> str:
    """``"/backend/"`` → ``"backend"``; ``None``/``"/"`` → ``""``; ``..`` is refused."""
    if not root_directory:
        return ""
    if "\x00" in root_directory or "\\" in root_directory:
        raise SourceError(f"invalid root directory {root_directory!r}")
    parts = [p for p in root_directory.strip().split("/") if p not in ("", ".")]
    if ".." in parts:
        raise SourceError(f"root directory {root_directory!r} may not contain '..'")
    return str(PurePosixPath(*parts)) if parts else ""


def redact(text: str, *secrets_: str) -> str:
    """Remove URL credentials (``scheme://user:pass@``) and the given secrets from ``text``."""
    text = _USERINFO.sub(r"\g<scheme>***@", text)
    for secret in secrets_:
        if secret:
            text = text.replace(secret, "***")
    return text


def _parse_remote(url: str, *, allow_local: bool) -> _Remote:
    url = url.strip()
    if not url or url.startswith("-") or any(c.isspace() or ord(c) < 32 for c in url):
        raise SourceError("invalid repository URL")
    if _SCP_LIKE.match(url):
        return _Remote(url=url, display=url, header=None, is_local=False)
    if url.startswith("/"):
        if not allow_local:
            raise SourceError("local repository paths are not allowed")
        return _Remote(url=url, display=url, header=None, is_local=True)
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme == "file":
        if not allow_local:
            raise SourceError("file:// repositories are not allowed")
        return _Remote(url=url, display=url, header=None, is_local=True)
    if scheme not in ("https", "http", "ssh", "git") or not parts.hostname:
        raise SourceError(
            f"unsupported repository URL scheme {parts.scheme or url!r}; "
            "use https://, ssh:// or git@host:path"
        )
    header = None
    netloc = parts.hostname
    if parts.port:
        netloc += f":{parts.port}"
    if scheme in ("https", "http") and (parts.username or parts.password):
        user = unquote(parts.username or "")
        password = unquote(parts.password or "")
        token = base64.b64encode(f"{user}:{password}".encode()).decode()
        header = f"Authorization: Basic {token}"
    elif parts.username:
        netloc = f"{parts.username}@{netloc}"  # ssh://git@host: a user name, not a secret
    clean = urlunsplit((scheme, netloc, parts.path, parts.query, ""))
    return _Remote(url=clean, display=clean, header=header, is_local=False)


class _GitRunner:
    """Runs git with the explicit environment, as the owner when possible, within a deadline."""

    def __init__(
        self,
        git: str,
        remote: _Remote,
        owner: AppUser | None,
        ssh_key: Path | None,
        known_hosts: Path | None,
        timeout: float,
        cancel: threading.Event | None,
    ) -> None:
        self.git = shutil.which(git, path=_SAFE_PATH) or git
        self.remote = remote
        self.owner = owner
        self.ssh_key = ssh_key
        self.known_hosts = known_hosts
        self.deadline = time.monotonic() + timeout
        self.timeout = timeout
        self.cancel = cancel
        self.runs_as_owner = bool(owner and is_privileged() and not owner.is_current_user)
        self.env: dict[str, str] = {}
        self.network_env: dict[str, str] = {}

    def prepare(self, tmp: Path) -> None:
        tmp.mkdir(mode=0o700)
        home = tmp / "home"
        home.mkdir(mode=0o700)
        if self.runs_as_owner and self.owner is not None:
            os.chown(tmp, self.owner.uid, self.owner.gid)
            os.chown(home, self.owner.uid, self.owner.gid)
        protocols = "https:http:ssh:git" + (":file" if self.remote.is_local else "")
        ssh = [
            "ssh",
            "-o",
            "BatchMode=yes",
            "-o",
            "StrictHostKeyChecking=accept-new",
            "-o",
            f"UserKnownHostsFile={self.known_hosts or home / 'known_hosts'}",
        ]
        if self.ssh_key is not None:
            ssh += ["-i", str(self.ssh_key), "-o", "IdentitiesOnly=yes"]
        env = {
            **self.network_env,
            "PATH": _SAFE_PATH,
            "HOME": str(home),
            "LC_ALL": "C",
            "LANG": "C",
            "GIT_TERMINAL_PROMPT": "0",
            "GIT_CONFIG_NOSYSTEM": "1",
            "GIT_CONFIG_GLOBAL": os.devnull,
            "GIT_ALLOW_PROTOCOL": protocols,
            "GIT_LFS_SKIP_SMUDGE": "1",
            "GIT_SSH_COMMAND": shlex.join(ssh),
        }
        config = [("advice.detachedHead", "false")]
        if self.remote.header is not None:
            config.append(("http.extraHeader", self.remote.header))
        if self.remote.is_local:
            # A local repository owned by someone else (the platform, a test) read by the
            # project's user: git only accepts safe.directory from a "protected" global config.
            gitconfig = home / "gitconfig"
            gitconfig.write_text("[safe]\n\tdirectory = *\n")
            gitconfig.chmod(0o644)
            env["GIT_CONFIG_GLOBAL"] = str(gitconfig)
        env["GIT_CONFIG_COUNT"] = str(len(config))
        for i, (key, value) in enumerate(config):
            env[f"GIT_CONFIG_KEY_{i}"] = key
            env[f"GIT_CONFIG_VALUE_{i}"] = value
        self.env = env

    def run(self, args: list[str], *, cwd: Path, check: bool = True) -> tuple[int, str, str]:
        """Run ``git args``; raise ``SourceError`` on failure when ``check``."""
        if self.cancel is not None and self.cancel.is_set():
            raise OperationCancelledError("fetch cancelled")
        as_owner = self.runs_as_owner and self.owner is not None
        proc = subprocess.Popen(
            [self.git, *args],
            cwd=cwd,
            env=self.env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            start_new_session=True,
            user=self.owner.uid if as_owner and self.owner else None,
            group=self.owner.gid if as_owner and self.owner else None,
            extra_groups=[] if as_owner else None,
            umask=0o077 if as_owner else -1,
        )
        out, err = b"", b""
        while True:
            slice_ = min(0.25, max(self.deadline - time.monotonic(), 0.01))
            try:
                out, err = proc.communicate(timeout=slice_)
                break
            except subprocess.TimeoutExpired:
                if self.cancel is not None and self.cancel.is_set():
                    _kill_group(proc)
                    raise OperationCancelledError("fetch cancelled") from None
                if time.monotonic() >= self.deadline:
                    _kill_group(proc)
                    raise StepTimeoutError(
                        f"git did not finish within {self.timeout:.0f} s"
                    ) from None
        stdout = out.decode("utf-8", "replace")
        stderr = err.decode("utf-8", "replace")
        if check and proc.returncode != 0:
            raise SourceError(self._summarise(args[0], stderr))
        return proc.returncode, stdout, stderr

    def _summarise(self, verb: str, stderr: str) -> str:
        secrets_ = [self.remote.header or ""]
        text = redact(stderr, *secrets_)
        lowered = text.lower()
        if "remote branch" in lowered and "not found" in lowered:
            return "git clone failed: " + _last_lines(text, "warning:", "fatal:")
        if "repository not found" in lowered or "does not appear to be a git repository" in lowered:
            return "git: repository not found, or no access to it (check the URL and credentials)"
        if (
            "authentication failed" in lowered
            or "could not read username" in lowered
            or "permission denied (publickey" in lowered
        ):
            return "git: authentication failed (the repository is private: give credentials)"
        if "could not resolve host" in lowered:
            return "git: " + _last_lines(text, "fatal:")
        return f"git {verb} failed: " + (_last_lines(text) or "no message")


def _fetch_commit(runner: _GitRunner, repo: Path, tmp: Path, branch: str | None, sha: str) -> None:
    runner.run(["init", "--quiet", str(repo)], cwd=tmp)
    runner.run(["remote", "add", "origin", runner.remote.url], cwd=repo)
    fetched = False
    if _FULL_SHA.match(sha):
        code, _, _ = runner.run(
            ["fetch", "--quiet", "--depth", "1", "--no-tags", "origin", sha], cwd=repo, check=False
        )
        fetched = code == 0
    if not fetched:
        ref = f"refs/heads/{branch}" if branch else "HEAD"
        runner.run(["fetch", "--quiet", "--depth", "50", "--no-tags", "origin", ref], cwd=repo)
        if not _has_commit(runner, repo, sha):
            deepen = ["--unshallow"] if (repo / ".git" / "shallow").exists() else []
            everything = "+refs/heads/*:refs/remotes/origin/*"
            runner.run(["fetch", "--quiet", *deepen, "--no-tags", "origin", everything], cwd=repo)
        if not _has_commit(runner, repo, sha):
            raise SourceError(f"commit {sha} was not found in the repository")
    runner.run(["checkout", "--quiet", "--detach", f"{sha}^{{commit}}"], cwd=repo)


def _has_commit(runner: _GitRunner, repo: Path, sha: str) -> bool:
    code, _, _ = runner.run(["cat-file", "-e", f"{sha}^{{commit}}"], cwd=repo, check=False)
    return code == 0


def _commit_info(runner: _GitRunner, repo: Path) -> CommitInfo:
    _, out, _ = runner.run(["log", "-1", "--format=%H%x00%an%x00%ae%x00%B"], cwd=repo)
    sha, name, email, message = [*out.split("\x00", 3), "", "", ""][:4]
    return CommitInfo(
        sha=sha.strip(), message=message.strip(), author_name=name, author_email=email
    )


def _select_root(repo: Path, root: str) -> Path:
    """The directory to deploy, refusing one that is missing, a file, or reached by a link."""
    current = repo
    for part in PurePosixPath(root).parts if root else ():
        current = current / part
        try:
            st = current.lstat()
        except FileNotFoundError:
            raise SourceError(f"root directory {root!r} does not exist in the repository") from None
        if stat.S_ISLNK(st.st_mode):
            raise SourceError(f"root directory {root!r} is a symbolic link, which is refused")
        if not stat.S_ISDIR(st.st_mode):
            raise SourceError(f"root directory {root!r} is not a directory")
    return current


def _kill_group(proc: subprocess.Popen[bytes]) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        proc.kill()
    proc.communicate()


def _last_lines(text: str, *prefixes: str, count: int = 4) -> str:
    lines = [ln.strip() for ln in text.splitlines() if ln.strip() and not ln.startswith("hint:")]
    if prefixes:
        wanted = [ln for ln in lines if ln.startswith(prefixes)]
        lines = wanted or lines
    return " | ".join(lines[-count:])
