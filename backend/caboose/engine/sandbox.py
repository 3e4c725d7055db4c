"""Who untrusted code runs as, and what it can touch.

When the platform runs as root, every project gets its own system user (``cb-<12 hex of the
project id>``), created on demand. Builds and app processes of that project run as that user, in
directories the user owns with mode 0700, so one project cannot read another's files. The platform's
data dir is 0711 (traversable, not listable) and its keys and database are 0600 root, so app users
can reach their own directories but read nothing of the platform's.

On a developer's laptop (not root) there is nobody else to become: apps run as the current user,
and that is stated in docs/security.md.
"""

from __future__ import annotations

import grp
import os
import pwd
import shutil
import subprocess
import threading
from dataclasses import dataclass
from pathlib import Path

_NOLOGIN = next(
    (p for p in ("/usr/sbin/nologin", "/sbin/nologin", "/bin/false") if Path(p).exists()),
    "/bin/false",
)
_create_lock = threading.Lock()


@dataclass(frozen=True, slots=True)
class AppUser:
    """The identity a project's builds and processes run as."""

    name: str
    uid: int
    gid: int

    @property
    def is_current_user(self) -> bool:
        return self.uid == os.getuid()


def is_privileged() -> bool:
    """True when the platform can create users and drop privileges (it runs as root)."""
    return os.geteuid() == 0


def app_user_name(project_id: str) -> str:
    """The system user name of a project: short enough for useradd (≤ 32 chars), stable."""
    return "cb-" + project_id.replace("-", "")[:12].lower()


def current_user() -> AppUser:
    return AppUser(name=pwd.getpwuid(os.getuid()).pw_name, uid=os.getuid(), gid=os.getgid())


def ensure_app_user(project_id: str) -> AppUser:
    """Return the project's system user, creating it when the platform runs as root.

    Without root this is the current user: there is no one else to run as.
    """
    if not is_privileged():
        return current_user()
    name = app_user_name(project_id)
    with _create_lock:
        try:
            entry = pwd.getpwnam(name)
        except KeyError:
            useradd = shutil.which("useradd") or "/usr/sbin/useradd"
            subprocess.run(
                [useradd, "--system", "--user-group", "--no-create-home",
                 "--home-dir", "/nonexistent", "--shell", _NOLOGIN, name],
                check=True, capture_output=True,
            )  # fmt: skip
            entry = pwd.getpwnam(name)
    return AppUser(name=name, uid=entry.pw_uid, gid=entry.pw_gid)


def remove_app_user(project_id: str) -> None:
    """Delete a project's system user (when its project is deleted). Missing users are fine."""
    if not is_privileged():
        return
    name = app_user_name(project_id)
    try:
        pwd.getpwnam(name)
    except KeyError:
        return
    userdel = shutil.which("userdel") or "/usr/sbin/userdel"
    subprocess.run([userdel, name], check=False, capture_output=True)
    try:
        grp.getgrnam(name)
    except KeyError:
        return
    groupdel = shutil.which("groupdel") or "/usr/sbin/groupdel"
    subprocess.run([groupdel, name], check=False, capture_output=True)


def make_private_dir(path: Path, owner: AppUser) -> Path:
    """Create ``path`` (and parents as needed) owned by ``owner``, mode 0700."""
    path.mkdir(parents=True, exist_ok=True)
    if is_privileged():
        os.chown(path, owner.uid, owner.gid)
    path.chmod(0o700)
    return path


def chown_tree(path: Path, owner: AppUser) -> None:
    """Give a whole tree to ``owner`` (after the platform wrote it, e.g. an extracted upload)."""
    if not is_privileged():
        return
    for root, dirs, files in os.walk(path):
        for name in (*dirs, *files):
            os.lchown(Path(root) / name, owner.uid, owner.gid)
    os.lchown(path, owner.uid, owner.gid)


def secure_platform_dir(data_dir: Path) -> None:
    """Data dir: traversable so app users reach their own subdirectories, but not listable."""
    data_dir.mkdir(parents=True, exist_ok=True)
    data_dir.chmod(0o711)
