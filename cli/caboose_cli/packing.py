"""Pack a folder into the gzip tarball ``caboose up`` uploads.

What goes in follows git's own rules, so a project deploys what its repository holds:

- ``.gitignore``, ``.railwayignore`` and ``.cabooseignore`` in the folder and in any subfolder, with
  gitignore semantics (comments, ``\\`` escapes, ``!`` negation, trailing ``/`` for directories,
  anchoring by a leading or inner ``/``, ``*``, ``?``, ``[...]``, ``**``). A file's patterns apply
  below its own directory; deeper files and later lines win, and in one directory ``.cabooseignore``
  is read last so it can re-include what ``.gitignore`` leaves out (a built ``dist/``, say). As in
  git, nothing inside an excluded directory can be re-included.
- ``.git``, ``node_modules``, ``.venv`` and ``__pycache__`` are never included: the platform
  installs dependencies itself, and they are large.
- Symbolic links are never followed. A link whose target stays inside the folder is stored as a
  link (normalised to a relative target, so it still points at the same file once extracted
  elsewhere); one that leads outside is skipped with a warning, since following it could upload
  anything on the machine (``~/.ssh``) and the server refuses escaping links anyway.
- The total size is capped (200 MiB by default); the error names the largest files so the user
  knows what to add to ``.cabooseignore``.

The archive is deterministic: entries in sorted order, owners and groups blanked, modes reduced to
0644/0755, and no timestamp or file name in the gzip header — the same tree always gives the same
bytes. This module does no I/O beyond reading the tree and writing the given file object, and it
prints nothing: warnings are returned.
"""

from __future__ import annotations

import gzip
import os
import re
import stat
import tarfile
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Literal

from caboose_cli.errors import CliError, ExitCode

IGNORE_FILES = (".gitignore", ".railwayignore", ".cabooseignore")
NEVER_INCLUDED = frozenset({".git", "node_modules", ".venv", "__pycache__"})
DEFAULT_MAX_BYTES = 200 * 1024 * 1024
_LARGEST_SHOWN = 5

# Ignore rules ------------------------------------------------------------------------------

_POSIX_CLASSES = {
    "alnum": "a-zA-Z0-9",
    "alpha": "a-zA-Z",
    "blank": " \\t",
    "digit": "0-9",
    "lower": "a-z",
    "punct": re.escape("!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~"),
    "space": " \\t\\n\\r\\f\\v",
    "upper": "A-Z",
    "xdigit": "0-9A-Fa-f",
}


@dataclass(frozen=True)
class IgnoreRule:
    """One line of an ignore file, compiled.

    ``base`` is the directory (relative, ``/``-separated, ``""`` for the root) holding the ignore
    file: the rule only applies below it, to paths taken relative to it.
    """

    pattern: str
    regex: re.Pattern[str]
    negated: bool = False
    directory_only: bool = False
    anchored: bool = False
    base: str = ""
    source: str = ""

    def matches(self, path: str, *, is_dir: bool) -> bool:
        """Does this rule match ``path`` (relative to the packed root)?"""
        if self.directory_only and not is_dir:
            return False
        if self.base:
            if not path.startswith(self.base + "/"):
                return False
            path = path[len(self.base) + 1 :]
        # Without a slash in it, a pattern matches a name at any depth; with one, the whole path.
        target = path if self.anchored else path.rpartition("/")[2]
        return self.regex.fullmatch(target) is not None


def _bracket(pattern: str, start: int) -> tuple[str, int] | None:
    """Translate the ``[...]`` class starting at ``start``; ``None`` if it never closes (then the
    ``[`` is literal, as in git)."""
    i = start + 1
    negated = i < len(pattern) and pattern[i] in "!^"
    if negated:
        i += 1
    parts: list[str] = []
    first = True
    while i < len(pattern):
        char = pattern[i]
        if char == "]" and not first:
            body = "".join(parts)
            # A class never matches "/", which separates the path's components.
            return (f"[^/{body}]" if negated else f"(?!/)[{body}]"), i + 1
        first = False
        if char == "[" and pattern.startswith("[:", i):
            end = pattern.find(":]", i + 2)
            name = pattern[i + 2 : end] if end != -1 else ""
            if name in _POSIX_CLASSES:
                parts.append(_POSIX_CLASSES[name])
                i = end + 2
                continue
        if char == "\\" and i + 1 < len(pattern):
            parts.append(re.escape(pattern[i + 1]))
            i += 2
            continue
        if char == "-" and parts and i + 1 < len(pattern) and pattern[i + 1] != "]":
            parts.append("-")
        else:
            parts.append(re.escape(char) if char in "\\^[]-" else char)
        i += 1
    return None


def translate(pattern: str) -> str:
    """A gitignore glob (without its ``!``, leading and trailing ``/``) as a regular expression
    for ``re.fullmatch`` against a ``/``-separated path."""
    out: list[str] = []
    i, n = 0, len(pattern)
    while i < n:
        char = pattern[i]
        if char == "*":
            j = i
            while j < n and pattern[j] == "*":
                j += 1
            starts_component = i == 0 or pattern[i - 1] == "/"
            if j - i >= 2 and starts_component and j < n and pattern[j] == "/":
                out.append("(?:.*/)?")  # "**/": zero or more directories
                i = j + 1
            elif j - i >= 2 and starts_component and j == n:
                out.append(".*")  # trailing "/**": everything inside
                i = j
            else:
                out.append("[^/]*")  # "*", or "**" inside a name, which git reads as "*"
                i = j
        elif char == "?":
            out.append("[^/]")
            i += 1
        elif char == "[":
            translated = _bracket(pattern, i)
            if translated is None:
                out.append(re.escape(char))
                i += 1
            else:
                out.append(translated[0])
                i = translated[1]
        elif char == "\\" and i + 1 < n:
            out.append(re.escape(pattern[i + 1]))
            i += 2
        else:
            out.append(re.escape(char))
            i += 1
    return "".join(out)


def _strip_trailing_spaces(line: str) -> str:
    # Trailing spaces are ignored unless escaped with a backslash.
    stripped = line.rstrip(" ")
    if len(stripped) < len(line) and stripped.endswith("\\") and not stripped.endswith("\\\\"):
        return stripped + " "
    return stripped


def parse_ignore_line(line: str, *, base: str = "", source: str = "") -> IgnoreRule | None:
    """Compile one line of an ignore file; ``None`` for blank lines and comments."""
    line = _strip_trailing_spaces(line.rstrip("\r\n"))
    if not line or line.startswith("#"):
        return None
    text = line
    negated = line.startswith("!")
    if negated or line.startswith(("\\!", "\\#")):
        line = line[1:]
    directory_only = line.endswith("/") and not line.endswith("\\/")
    line = line.rstrip("/") if directory_only else line
    anchored = "/" in line
    line = line.removeprefix("/")
    if not line:
        return None
    return IgnoreRule(
        pattern=text,
        regex=re.compile(translate(line), re.DOTALL),
        negated=negated,
        directory_only=directory_only,
        anchored=anchored,
        base=base,
        source=source,
    )


def parse_ignore_file(text: str, *, base: str = "", source: str = "") -> list[IgnoreRule]:
    rules = []
    for number, line in enumerate(text.splitlines(), 1):
        rule = parse_ignore_line(line, base=base, source=f"{source}:{number}")
        if rule is not None:
            rules.append(rule)
    return rules


@dataclass(frozen=True)
class IgnoreMatcher:
    """Rules in precedence order (outer directories first, later lines last): the last one that
    matches a path decides, so a negation can re-include what an earlier rule excluded."""

    rules: tuple[IgnoreRule, ...] = ()

    def extended(self, rules: Iterable[IgnoreRule]) -> IgnoreMatcher:
        more = tuple(rules)
        return self if not more else IgnoreMatcher(self.rules + more)

    def deciding_rule(self, path: str, *, is_dir: bool) -> IgnoreRule | None:
        for rule in reversed(self.rules):
            if rule.matches(path, is_dir=is_dir):
                return rule
        return None

    def is_ignored(self, path: str, *, is_dir: bool) -> bool:
        rule = self.deciding_rule(path, is_dir=is_dir)
        return rule is not None and not rule.negated


# Collecting the tree -----------------------------------------------------------------------

EntryKind = Literal["file", "dir", "symlink"]


@dataclass(frozen=True)
class PackEntry:
    """One archive member: ``path`` relative to the root, ``/``-separated."""

    path: str
    kind: EntryKind
    size: int = 0
    mode: int = 0o644
    mtime: int = 0
    link_target: str | None = None


@dataclass
class PackPlan:
    """What would be uploaded, and what was left out that the user should hear about."""

    root: Path
    entries: list[PackEntry] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    @property
    def total_bytes(self) -> int:
        return sum(entry.size for entry in self.entries if entry.kind == "file")

    @property
    def file_count(self) -> int:
        return sum(1 for entry in self.entries if entry.kind != "dir")

    def largest_files(self, count: int = _LARGEST_SHOWN) -> list[PackEntry]:
        files = [entry for entry in self.entries if entry.kind == "file"]
        return sorted(files, key=lambda entry: (-entry.size, entry.path))[:count]


class PackTooLargeError(CliError):
    def __init__(self, plan: PackPlan, max_bytes: int) -> None:
        lines = [
            f"This folder is {format_size(plan.total_bytes)}, over the "
            f"{format_size(max_bytes)} upload limit. The largest files:",
            *(f"  {format_size(e.size):>10}  {e.path}" for e in plan.largest_files()),
        ]
        super().__init__(
            "\n".join(lines),
            exit_code=ExitCode.USAGE,
            hint="Leave out what the build does not need with a .cabooseignore file "
            "(gitignore syntax), e.g. a line `data/` or `*.sql`.",
        )
        self.total_bytes = plan.total_bytes
        self.max_bytes = max_bytes


def format_size(size: int) -> str:
    value = float(size)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    raise AssertionError("unreachable")


def _is_inside(path: str, root: str) -> bool:
    return path == root or path.startswith(root.rstrip(os.sep) + os.sep)


def _read_ignore_rules(directory: Path, relative: str, plan: PackPlan) -> list[IgnoreRule]:
    rules: list[IgnoreRule] = []
    for name in IGNORE_FILES:
        path = directory / name
        try:
            if not stat.S_ISREG(path.lstat().st_mode):  # a symlinked ignore file is not read
                continue
            text = path.read_text(encoding="utf-8", errors="replace")
        except FileNotFoundError:
            continue
        except OSError as exc:
            plan.warnings.append(f"{_join(relative, name)}: cannot be read ({exc.strerror})")
            continue
        rules.extend(parse_ignore_file(text, base=relative, source=_join(relative, name)))
    return rules


def _join(directory: str, name: str) -> str:
    return f"{directory}/{name}" if directory else name


def collect(root: Path) -> PackPlan:
    """Walk ``root`` (never following symlinks) and decide what goes into the archive."""
    real_root = Path(os.path.realpath(root))
    if not real_root.is_dir():
        raise CliError(f"{root} is not a directory", exit_code=ExitCode.USAGE)
    plan = PackPlan(root=real_root)
    _walk(real_root, "", IgnoreMatcher(), plan)
    return plan


def _walk(directory: Path, relative: str, matcher: IgnoreMatcher, plan: PackPlan) -> None:
    matcher = matcher.extended(_read_ignore_rules(directory, relative, plan))
    try:
        with os.scandir(directory) as scan:
            children = sorted(scan, key=lambda child: child.name)
    except OSError as exc:
        plan.warnings.append(f"{relative or '.'}/: skipped, cannot be listed ({exc.strerror})")
        return
    for child in children:
        if child.name in NEVER_INCLUDED:
            continue
        path = _join(relative, child.name)
        try:
            info = child.stat(follow_symlinks=False)
        except OSError as exc:
            plan.warnings.append(f"{path}: skipped ({exc.strerror})")
            continue
        mtime = int(info.st_mtime)
        if stat.S_ISLNK(info.st_mode):
            if not matcher.is_ignored(path, is_dir=False):
                _add_symlink(Path(child.path), path, mtime, plan)
        elif stat.S_ISDIR(info.st_mode):
            if matcher.is_ignored(path, is_dir=True):
                continue
            plan.entries.append(PackEntry(path, "dir", mode=0o755, mtime=mtime))
            _walk(Path(child.path), path, matcher, plan)
        elif stat.S_ISREG(info.st_mode):
            if matcher.is_ignored(path, is_dir=False):
                continue
            if not os.access(child.path, os.R_OK):
                plan.warnings.append(f"{path}: skipped, not readable")
                continue
            executable = bool(info.st_mode & stat.S_IXUSR)
            mode = 0o755 if executable else 0o644
            plan.entries.append(PackEntry(path, "file", size=info.st_size, mode=mode, mtime=mtime))
        elif not matcher.is_ignored(path, is_dir=False):
            plan.warnings.append(f"{path}: skipped, not a regular file, directory or symlink")


def _add_symlink(link: Path, path: str, mtime: int, plan: PackPlan) -> None:
    root = str(plan.root)
    try:
        target = str(link.readlink())
    except OSError as exc:
        plan.warnings.append(f"{path}: skipped symlink ({exc.strerror})")
        return
    lexical = os.path.normpath(link.parent / target)
    resolved = os.path.realpath(link)  # follows a chain of links, which may leave the tree
    if not (_is_inside(lexical, root) and _is_inside(resolved, root)):
        plan.warnings.append(f"{path}: skipped symlink to {target}, which is outside the folder")
        return
    relative_target = os.path.relpath(lexical, link.parent).replace(os.sep, "/")
    plan.entries.append(
        PackEntry(path, "symlink", mode=0o777, mtime=mtime, link_target=relative_target)
    )


# Writing the archive -----------------------------------------------------------------------


def check_size(plan: PackPlan, max_bytes: int = DEFAULT_MAX_BYTES) -> None:
    if plan.total_bytes > max_bytes:
        raise PackTooLargeError(plan, max_bytes)


def write_tarball(plan: PackPlan, output: IO[bytes]) -> None:
    """Write ``plan`` as a deterministic gzip tarball to ``output``."""
    with (
        gzip.GzipFile(filename="", mode="wb", fileobj=output, mtime=0) as compressed,
        tarfile.open(fileobj=compressed, mode="w", format=tarfile.PAX_FORMAT) as tar,
    ):
        for entry in plan.entries:
            member = tarfile.TarInfo(entry.path)
            member.mtime = entry.mtime
            member.mode = entry.mode
            member.uid = member.gid = 0
            member.uname = member.gname = ""
            if entry.kind == "dir":
                member.type = tarfile.DIRTYPE
                tar.addfile(member)
            elif entry.kind == "symlink":
                member.type = tarfile.SYMTYPE
                member.linkname = entry.link_target or ""
                tar.addfile(member)
            else:
                _add_file(tar, member, plan.root / entry.path, entry.path)


def _add_file(tar: tarfile.TarFile, member: tarfile.TarInfo, source: Path, path: str) -> None:
    try:
        with source.open("rb") as handle:
            member.size = os.fstat(handle.fileno()).st_size  # the size now, not at collect time
            tar.addfile(member, handle)
    except OSError as exc:
        raise CliError(
            f"{path} changed or vanished while it was being packed ({exc})",
            hint="Run `caboose up` again once nothing is writing to the folder.",
        ) from None


def pack(root: Path, output: IO[bytes], *, max_bytes: int = DEFAULT_MAX_BYTES) -> PackPlan:
    """Collect ``root``, refuse it if too large, and write the tarball to ``output``."""
    plan = collect(root)
    check_size(plan, max_bytes)
    write_tarball(plan, output)
    return plan
