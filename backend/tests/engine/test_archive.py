"""Safe extraction of uploaded tarballs: every refusal, and nothing ever written outside."""

from __future__ import annotations

import gzip
import io
import os
import tarfile
import threading
from collections.abc import Callable
from pathlib import Path

import pytest

from caboose.engine.sandbox import AppUser, is_privileged
from caboose.engine.source import extract_tarball
from caboose.engine.types import MemoryReporter, OperationCancelledError, SourceError

MB = 1024 * 1024
Member = tuple[tarfile.TarInfo, bytes | None]


def file_(name: str, data: bytes = b"x", mode: int = 0o644) -> Member:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.mode = mode
    return info, data


def dir_(name: str) -> Member:
    info = tarfile.TarInfo(name)
    info.type = tarfile.DIRTYPE
    info.mode = 0o755
    return info, None


def link(name: str, target: str, *, hard: bool = False) -> Member:
    info = tarfile.TarInfo(name)
    info.type = tarfile.LNKTYPE if hard else tarfile.SYMTYPE
    info.linkname = target
    return info, None


def special(name: str, kind: bytes) -> Member:
    info = tarfile.TarInfo(name)
    info.type = kind
    return info, None


def tarball(*members: Member, fmt: int = tarfile.PAX_FORMAT) -> bytes:
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=fmt) as archive:
        for info, data in members:
            archive.addfile(info, io.BytesIO(data) if data is not None else None)
    return gzip.compress(raw.getvalue())


def snapshot(root: Path) -> set[str]:
    """Every path under root: compared before and after to prove nothing was left behind."""
    return {str(p.relative_to(root)) for p in root.rglob("*")} | {"."}


@pytest.fixture
def extract(work_dir: Path) -> Callable[..., Path]:
    """Extract into work_dir/upload/app and check that a refusal leaves nothing anywhere."""
    upload = work_dir / "upload"
    upload.mkdir()
    outside = work_dir / "outside"
    outside.mkdir()

    def run(data: bytes, *, max_bytes: int = 10 * MB, max_files: int = 100, **kw: object) -> Path:
        before = snapshot(work_dir)
        dest = upload / "app"
        try:
            extract_tarball(io.BytesIO(data), dest, max_bytes=max_bytes, max_files=max_files, **kw)  # type: ignore[arg-type]
        except BaseException:
            assert snapshot(work_dir) == before, "a refused archive left files behind"
            assert not dest.exists()
            raise
        return dest

    return run


def test_extracts_a_normal_tree(extract: Callable[..., Path]) -> None:
    data = tarball(
        dir_("src"),
        file_("src/app.py", b"print('hi')\n"),
        file_("./run.sh", b"#!/bin/sh\n", mode=0o755),
        link("src/alias.py", "app.py"),
        link("copy.py", "src/app.py", hard=True),
        file_("deep/er/file.txt", b"data"),
    )
    dest = extract(data)
    assert (dest / "src" / "app.py").read_text() == "print('hi')\n"
    assert os.access(dest / "run.sh", os.X_OK)
    assert (dest / "src" / "alias.py").readlink() == Path("app.py")
    assert (dest / "copy.py").stat().st_ino == (dest / "src" / "app.py").stat().st_ino
    assert (dest / "deep" / "er" / "file.txt").read_bytes() == b"data"
    assert (dest.stat().st_mode & 0o777) == 0o700


def test_reports_and_gives_the_tree_to_the_owner(
    work_dir: Path, app_user: AppUser, reporter: MemoryReporter
) -> None:
    dest = work_dir / "owned"
    result = extract_tarball(
        io.BytesIO(tarball(file_("a.txt", b"12345"), dir_("d"), file_("d/b.txt"))),
        dest,
        max_bytes=MB,
        max_files=10,
        owner=app_user,
        reporter=reporter,
    )
    assert (result.files, result.bytes) == (2, 6)
    assert ("fetch", "succeeded") in reporter.stages
    if is_privileged():
        assert {p.stat().st_uid for p in [dest, *dest.rglob("*")]} == {app_user.uid}


@pytest.mark.parametrize(
    ("members", "message"),
    [
        ([file_("/etc/cron.d/evil")], "absolute path"),
        ([file_("../evil.txt")], "'..'"),
        ([file_("a/../../evil.txt")], "'..'"),
        ([link("abs", "/etc/passwd")], "absolute path"),
        ([link("up", "../outside")], "outside the tree"),
        ([dir_("a"), link("a/up", "../../outside")], "outside the tree"),
        # a chain that is only caught by resolving real paths
        ([dir_("d"), link("d/self", ".."), link("d/self2", "self/..")], "resolves outside"),
        ([dir_("sub"), link("via", "sub"), file_("via/file.txt")], "symbolic link"),
        ([link("hard", "../../etc/passwd", hard=True)], "'..'"),
        ([link("hard", "/etc/passwd", hard=True)], "absolute path"),
        ([link("hard", "never-extracted.txt", hard=True)], "not a file extracted"),
        ([special("dev", tarfile.CHRTYPE)], "device or FIFO"),
        ([special("blk", tarfile.BLKTYPE)], "device or FIFO"),
        ([special("fifo", tarfile.FIFOTYPE)], "device or FIFO"),
    ],
)
def test_refuses_dangerous_entries(
    extract: Callable[..., Path], members: list[Member], message: str
) -> None:
    with pytest.raises(SourceError) as caught:
        extract(tarball(file_("ok.txt"), *members))
    assert caught.value.status == 400
    assert message in caught.value.message


def test_refuses_more_bytes_than_the_limit(extract: Callable[..., Path]) -> None:
    data = tarball(file_("a.bin", b"a" * 600_000), file_("b.bin", b"b" * 600_000))
    with pytest.raises(SourceError) as caught:
        extract(data, max_bytes=1_000_000)
    assert caught.value.status == 413


def test_stops_a_gzip_bomb_while_streaming(extract: Callable[..., Path]) -> None:
    bomb = tarball(file_("zeros.bin", bytes(50 * MB)))
    assert len(bomb) < 100_000  # 50 MiB of zeros compress to almost nothing
    with pytest.raises(SourceError) as caught:
        extract(bomb, max_bytes=MB)
    assert caught.value.status == 413


def test_refuses_more_entries_than_the_limit(extract: Callable[..., Path]) -> None:
    data = tarball(*(file_(f"f{i}.txt") for i in range(11)))
    with pytest.raises(SourceError) as caught:
        extract(data, max_files=10)
    assert caught.value.status == 413
    assert "entries" in caught.value.message


def test_refuses_an_oversized_pax_header(extract: Callable[..., Path]) -> None:
    info, data = file_("a.txt")
    info.pax_headers = {"comment": "x" * 400_000}
    with pytest.raises(SourceError) as caught:
        extract(tarball((info, data)))
    assert caught.value.status == 400


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"PK\x03\x04 this is a zip file, not a tarball", "not a gzip"),
        (tarball(file_("a.txt", b"x" * 10_000))[:-20], "truncated or corrupt"),
        (gzip.compress(b"just some text, not a tar archive" * 100), "not a valid tar"),
        (gzip.compress(b""), "not a valid tar"),
        (tarball(), "empty"),
    ],
    ids=["zip", "truncated", "gzip-not-tar", "empty-gzip", "empty-tar"],
)
def test_refuses_malformed_uploads(extract: Callable[..., Path], data: bytes, message: str) -> None:
    with pytest.raises(SourceError) as caught:
        extract(data)
    assert caught.value.status == 400
    assert message in caught.value.message


def test_cancellation_stops_extraction(extract: Callable[..., Path]) -> None:
    cancel = threading.Event()
    cancel.set()
    with pytest.raises(OperationCancelledError):
        extract(tarball(file_("a.txt")), cancel=cancel)


def test_later_duplicates_replace_earlier_entries(extract: Callable[..., Path]) -> None:
    dest = extract(tarball(file_("a.txt", b"first"), link("b", "a.txt"), file_("a.txt", b"last")))
    assert (dest / "a.txt").read_text() == "last"


def test_refuses_an_existing_target(work_dir: Path) -> None:
    (work_dir / "taken").mkdir()
    with pytest.raises(SourceError):
        extract_tarball(
            io.BytesIO(tarball(file_("a"))), work_dir / "taken", max_bytes=MB, max_files=5
        )
    assert not list((work_dir / "taken").iterdir())


def test_reads_from_a_file_path(work_dir: Path) -> None:
    path = work_dir / "upload.tar.gz"
    path.write_bytes(tarball(file_("index.html", b"<h1>hi</h1>")))
    result = extract_tarball(path, work_dir / "site", max_bytes=MB, max_files=5)
    assert (result.path / "index.html").read_text() == "<h1>hi</h1>"
