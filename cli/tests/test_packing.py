"""What `caboose up` uploads: gitignore semantics, never-included folders, symlinks, the size
limit, and a deterministic archive."""

from __future__ import annotations

import gzip
import io
import os
import tarfile
from pathlib import Path

import pytest

from caboose_cli.errors import ExitCode
from caboose_cli.packing import (
    IgnoreMatcher,
    PackTooLargeError,
    collect,
    pack,
    parse_ignore_file,
    parse_ignore_line,
    write_tarball,
)


def write(root: Path, relative: str, content: str = "x") -> Path:
    path = root / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(content)
    return path


def packed(root: Path) -> set[str]:
    return {entry.path for entry in collect(root).entries}


def files(root: Path) -> set[str]:
    return {entry.path for entry in collect(root).entries if entry.kind != "dir"}


def ignored(patterns: str, path: str, *, is_dir: bool = False) -> bool:
    return IgnoreMatcher(tuple(parse_ignore_file(patterns))).is_ignored(path, is_dir=is_dir)


# Patterns ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("pattern", "path", "is_dir", "expected"),
    [
        # No slash: a name at any depth.
        ("*.log", "a.log", False, True),
        ("*.log", "deep/er/a.log", False, True),
        ("*.log", "a.log.txt", False, False),
        ("secret.txt", "config/secret.txt", False, True),
        # A leading slash anchors to the ignore file's directory.
        ("/build", "build", True, True),
        ("/build", "src/build", True, False),
        # A slash inside anchors too.
        ("doc/frotz", "doc/frotz", False, True),
        ("doc/frotz", "a/doc/frotz", False, False),
        ("src/*.py", "src/a.py", False, True),
        ("src/*.py", "src/pkg/a.py", False, False),  # * never crosses a /
        # A trailing slash: directories only.
        ("build/", "build", True, True),
        ("build/", "src/build", True, True),
        ("build/", "build", False, False),
        # **
        ("**/foo", "foo", False, True),
        ("**/foo", "a/b/foo", False, True),
        ("**/foo/bar", "x/foo/bar", False, True),
        ("foo/**", "foo/a", False, True),
        ("foo/**", "foo/a/b", False, True),
        ("foo/**", "foo", True, False),
        ("a/**/b", "a/b", False, True),
        ("a/**/b", "a/x/y/b", False, True),
        ("a/**/b", "a/x/c", False, False),
        ("foo**bar", "fooXbar", False, True),  # ** inside a name is a plain *
        ("foo**bar", "foo/bar", False, False),
        # ?, classes, ranges
        ("?.txt", "a.txt", False, True),
        ("?.txt", "ab.txt", False, False),
        ("[abc].py", "b.py", False, True),
        ("[abc].py", "d.py", False, False),
        ("[!abc].py", "d.py", False, True),
        ("[^abc].py", "a.py", False, False),
        ("file[0-9].txt", "file7.txt", False, True),
        ("file[0-9].txt", "filex.txt", False, False),
        ("[[:digit:]]*.csv", "2024.csv", False, True),
        ("[]x].md", "].md", False, True),
        ("unclosed[", "unclosed[", False, True),  # an unclosed [ is literal
        # Escapes
        ("\\#notes", "#notes", False, True),
        ("\\!bang", "!bang", False, True),
        ("a\\*b", "a*b", False, True),
        ("a\\*b", "axb", False, False),
        ("trailing\\ ", "trailing ", False, True),
        ("spaces   ", "spaces", False, True),  # unescaped trailing spaces are dropped
    ],
)
def test_gitignore_patterns(pattern: str, path: str, is_dir: bool, expected: bool) -> None:
    assert ignored(pattern, path, is_dir=is_dir) is expected


def test_comments_and_blank_lines_are_not_rules() -> None:
    assert parse_ignore_line("# a comment") is None
    assert parse_ignore_line("") is None
    assert parse_ignore_line("   ") is None
    assert parse_ignore_line("/") is None
    assert parse_ignore_line("*.pyc\r\n") is not None  # CRLF files


def test_negation_re_includes_and_the_last_match_wins() -> None:
    rules = "*.log\n!keep.log\n"
    assert ignored(rules, "debug.log")
    assert not ignored(rules, "keep.log")
    assert ignored("!keep.log\n*.log\n", "keep.log")  # order matters


def test_a_rule_applies_below_its_ignore_file_only() -> None:
    rules = IgnoreMatcher(tuple(parse_ignore_file("/local\n*.tmp\n", base="sub")))
    assert rules.is_ignored("sub/local", is_dir=False)
    assert rules.is_ignored("sub/x/y.tmp", is_dir=False)
    assert not rules.is_ignored("local", is_dir=False)
    assert not rules.is_ignored("y.tmp", is_dir=False)
    assert not rules.is_ignored("subway/y.tmp", is_dir=False)  # a prefix is not a parent


# The tree ----------------------------------------------------------------------------------


def test_every_ignore_file_kind_is_honoured(tmp_path: Path) -> None:
    write(tmp_path, ".gitignore", "*.log\n")
    write(tmp_path, ".railwayignore", "secrets/\n")
    write(tmp_path, ".cabooseignore", "/notes.md\n")
    for name in ("app.py", "debug.log", "secrets/key.pem", "notes.md", "docs/notes.md"):
        write(tmp_path, name)
    assert files(tmp_path) == {
        ".gitignore",
        ".railwayignore",
        ".cabooseignore",
        "app.py",
        "docs/notes.md",
    }


def test_cabooseignore_can_re_include_what_gitignore_leaves_out(tmp_path: Path) -> None:
    write(tmp_path, ".gitignore", "dist/\n.env\n")
    write(tmp_path, ".cabooseignore", "!dist/\n")
    write(tmp_path, "dist/bundle.js")
    write(tmp_path, ".env", "SECRET=1")
    assert "dist/bundle.js" in files(tmp_path)
    assert ".env" not in files(tmp_path)


def test_nested_ignore_files_apply_to_their_subtree_and_win(tmp_path: Path) -> None:
    write(tmp_path, ".gitignore", "*.tmp\n")
    write(tmp_path, "web/.gitignore", "!keep.tmp\n/cache\n")
    for name in ("a.tmp", "keep.tmp", "web/a.tmp", "web/keep.tmp", "web/cache/x", "cache/x"):
        write(tmp_path, name)
    assert files(tmp_path) == {".gitignore", "web/.gitignore", "web/keep.tmp", "cache/x"}


def test_nothing_inside_an_excluded_directory_comes_back(tmp_path: Path) -> None:
    write(tmp_path, ".gitignore", "build/\n!build/keep.txt\nlogs/*\n!logs/.gitkeep\n")
    write(tmp_path, "build/keep.txt")
    write(tmp_path, "logs/today.log")
    write(tmp_path, "logs/.gitkeep")
    result = packed(tmp_path)
    assert "build" not in result
    assert "build/keep.txt" not in result  # as in git: the directory itself is excluded
    assert "logs/.gitkeep" in result
    assert "logs/today.log" not in result


def test_never_included_directories_even_when_re_included(tmp_path: Path) -> None:
    write(tmp_path, ".cabooseignore", "!node_modules/\n!.venv\n")
    for name in (
        ".git/config",
        "node_modules/left-pad/index.js",
        ".venv/bin/python",
        "__pycache__/app.cpython-311.pyc",
        "pkg/__pycache__/mod.pyc",
        "web/node_modules/x.js",
        "pkg/mod.py",
    ):
        write(tmp_path, name)
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / ".git").write_text("gitdir: ../.git/modules/sub\n")  # a submodule
    assert files(tmp_path) == {".cabooseignore", "pkg/mod.py"}


def test_symlinks_inside_are_stored_as_links_and_escaping_ones_skipped(tmp_path: Path) -> None:
    root = tmp_path / "app"
    outside = write(tmp_path, "outside/secret.txt", "do not upload")
    write(root, "config/settings.toml")
    write(root, "lib/real.py")
    (root / "settings.toml").symlink_to("config/settings.toml")
    (root / "absolute.toml").symlink_to(root / "config" / "settings.toml")
    (root / "libdir").symlink_to("lib", target_is_directory=True)
    (root / "dangling").symlink_to("not-there-yet")
    (root / "escape").symlink_to("../outside/secret.txt")
    (root / "absolute-escape").symlink_to(outside)
    (root / "lib" / "via-chain").symlink_to("../escape")  # inside, but resolves outside
    plan = collect(root)
    links = {e.path: e.link_target for e in plan.entries if e.kind == "symlink"}
    assert links == {
        "settings.toml": "config/settings.toml",
        "absolute.toml": "config/settings.toml",  # made relative: still valid once extracted
        "libdir": "lib",
        "dangling": "not-there-yet",
    }
    assert "libdir/real.py" not in {e.path for e in plan.entries}  # links are never followed
    skipped = "\n".join(plan.warnings)
    for name in ("escape", "absolute-escape", "lib/via-chain"):
        assert f"{name}: skipped symlink" in skipped
    assert "do not upload" not in _archive_bytes(root).decode("latin-1")


def test_a_symlinked_root_is_packed_as_its_target(tmp_path: Path) -> None:
    real = tmp_path / "real"
    write(real, "a.py")
    (tmp_path / "alias").symlink_to(real, target_is_directory=True)
    assert files(tmp_path / "alias") == {"a.py"}


def test_special_files_are_skipped_with_a_warning(tmp_path: Path) -> None:
    write(tmp_path, "a.py")
    os.mkfifo(tmp_path / "pipe")
    plan = collect(tmp_path)
    assert {e.path for e in plan.entries} == {"a.py"}
    assert any("pipe" in warning for warning in plan.warnings)


def test_an_ignored_special_file_is_not_even_mentioned(tmp_path: Path) -> None:
    write(tmp_path, ".gitignore", "pipe\n")
    os.mkfifo(tmp_path / "pipe")
    assert collect(tmp_path).warnings == []


# Size limit ----------------------------------------------------------------------------------


def test_over_the_limit_names_the_largest_files(tmp_path: Path) -> None:
    write(tmp_path, "data/dump.sql", "x" * 5000)
    write(tmp_path, "assets/video.mp4", "x" * 3000)
    write(tmp_path, "app.py", "x" * 10)
    with pytest.raises(PackTooLargeError) as caught:
        pack(tmp_path, io.BytesIO(), max_bytes=4096)
    error = caught.value
    assert error.exit_code == ExitCode.USAGE
    lines = error.message.splitlines()
    assert "over the 4.0 KiB upload limit" in lines[0]
    assert lines[1].split() == ["4.9", "KiB", "data/dump.sql"]
    assert lines[2].split() == ["2.9", "KiB", "assets/video.mp4"]
    assert ".cabooseignore" in (error.hint or "")


def test_ignored_files_do_not_count_towards_the_limit(tmp_path: Path) -> None:
    write(tmp_path, ".cabooseignore", "*.sql\n")
    write(tmp_path, "dump.sql", "x" * 5000)
    write(tmp_path, "app.py", "print(1)\n")
    pack(tmp_path, io.BytesIO(), max_bytes=4096)  # does not raise


# The archive -------------------------------------------------------------------------------


def _archive_bytes(root: Path) -> bytes:
    buffer = io.BytesIO()
    pack(root, buffer)
    return buffer.getvalue()


def test_the_archive_is_a_normalised_gzip_tarball(tmp_path: Path) -> None:
    write(tmp_path, "app.py", "print('hi')\n")
    script = write(tmp_path, "bin/start", "#!/bin/sh\n")
    script.chmod(0o700)
    (tmp_path / "link").symlink_to("app.py")
    data = _archive_bytes(tmp_path)
    assert data[4:8] == b"\0\0\0\0"  # no timestamp in the gzip header
    with tarfile.open(fileobj=io.BytesIO(gzip.decompress(data))) as archive:
        members = {m.name: m for m in archive.getmembers()}
        assert set(members) == {"app.py", "bin", "bin/start", "link"}
        assert members["app.py"].mode == 0o644
        assert members["bin/start"].mode == 0o755
        assert members["bin"].isdir()
        assert members["link"].issym() and members["link"].linkname == "app.py"
        assert {(m.uid, m.gid, m.uname, m.gname) for m in members.values()} == {(0, 0, "", "")}
        extracted = archive.extractfile("app.py")
        assert extracted is not None and extracted.read() == b"print('hi')\n"


def test_the_archive_is_deterministic(tmp_path: Path) -> None:
    first, second = tmp_path / "one" / "app", tmp_path / "two" / "app"
    # The same tree, created in a different order.
    for root, names in (
        (first, ["a.py", "z/b.py", "m.txt"]),
        (second, ["m.txt", "z/b.py", "a.py"]),
    ):
        for name in names:
            write(root, name, f"content of {name}")
    for root in (first, second):
        for path in sorted(root.rglob("*"), reverse=True):
            os.utime(path, (1_700_000_000, 1_700_000_000))
        os.utime(root, (1_700_000_000, 1_700_000_000))
    assert _archive_bytes(first) == _archive_bytes(first)
    assert _archive_bytes(first) == _archive_bytes(second)


def test_a_file_that_vanishes_while_packing_is_a_clear_error(tmp_path: Path) -> None:
    write(tmp_path, "a.py")
    plan = collect(tmp_path)
    (tmp_path / "a.py").unlink()
    with pytest.raises(Exception, match="changed or vanished"):
        write_tarball(plan, io.BytesIO())
