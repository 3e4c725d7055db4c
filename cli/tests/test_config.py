"""Where credentials and links are kept: mode 0600, atomic writes, XDG_CONFIG_HOME."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest

from caboose_cli import config
from caboose_cli.config import (
    Credentials,
    Link,
    config_dir,
    delete_credentials,
    delete_link,
    find_link,
    load_credentials,
    normalize_host,
    save_credentials,
    save_link,
)
from caboose_cli.errors import CliError


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def make_link(**changes: str) -> Link:
    values = {
        "host": "http://localhost:8080",
        "workspace_id": "w",
        "project_id": "p",
        "environment_id": "e",
    }
    return Link(**{**values, **changes})


def test_xdg_config_home_is_honoured(isolated_config: Path) -> None:
    assert config_dir() == isolated_config
    save_credentials(Credentials(host="http://localhost:8080", api_token="cb_x"))
    assert (isolated_config / "credentials.json").is_file()


def test_a_relative_xdg_config_home_is_ignored(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("XDG_CONFIG_HOME", "relative/dir")
    monkeypatch.setenv("HOME", str(tmp_path))
    assert config_dir() == tmp_path / ".config" / "caboose"


def test_credentials_are_private(isolated_config: Path) -> None:
    save_credentials(
        Credentials(host="http://h", access_token="at", refresh_token="rt", email="a@b.c")
    )
    assert mode(isolated_config / "credentials.json") == 0o600
    assert mode(isolated_config) == 0o700
    assert load_credentials() == Credentials(
        host="http://h", access_token="at", refresh_token="rt", email="a@b.c"
    )


def test_credentials_stay_private_under_a_permissive_umask(isolated_config: Path) -> None:
    import os

    previous = os.umask(0)
    try:
        save_credentials(Credentials(host="http://h", api_token="cb_x"))
        save_credentials(Credentials(host="http://h", api_token="cb_y"))
    finally:
        os.umask(previous)
    assert mode(isolated_config / "credentials.json") == 0o600


def test_a_failed_write_leaves_the_previous_file_whole(
    isolated_config: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    save_credentials(Credentials(host="http://h", api_token="cb_old"))

    def explode(*args: object, **kwargs: object) -> None:
        raise OSError("disk full")

    with monkeypatch.context() as patch, pytest.raises(OSError, match="disk full"):
        patch.setattr(config.json, "dump", explode)
        save_credentials(Credentials(host="http://h", api_token="cb_new"))
    stored = load_credentials()
    assert stored is not None and stored.api_token == "cb_old"
    assert [p.name for p in isolated_config.iterdir() if p.name.endswith(".tmp")] == []


def test_delete_credentials(isolated_config: Path) -> None:
    assert delete_credentials() is False
    save_credentials(Credentials(host="http://h", api_token="cb_x"))
    assert delete_credentials() is True
    assert load_credentials() is None


def test_a_corrupt_file_is_a_clear_error(isolated_config: Path) -> None:
    isolated_config.mkdir(parents=True)
    (isolated_config / "credentials.json").write_text("{not json")
    with pytest.raises(CliError, match=r"credentials\.json is not valid JSON"):
        load_credentials()


def test_links_are_keyed_by_absolute_path_and_found_from_subfolders(
    isolated_config: Path, tmp_path: Path
) -> None:
    project = tmp_path / "shop"
    (project / "src" / "deep").mkdir(parents=True)
    save_link(project, make_link(project_name="shop"))
    links = json.loads((isolated_config / "links.json").read_text())["links"]
    assert list(links) == [str(project.resolve())]
    assert mode(isolated_config / "links.json") == 0o600
    found = find_link(project / "src" / "deep")
    assert found is not None
    assert found[0] == project.resolve()
    assert found[1].project_name == "shop"
    assert find_link(tmp_path) is None
    assert not (project / ".caboose").exists()  # nothing is written into the user's folder


def test_a_nearer_link_wins(tmp_path: Path) -> None:
    (tmp_path / "mono" / "api").mkdir(parents=True)
    save_link(tmp_path / "mono", make_link(service_id="web"))
    save_link(tmp_path / "mono" / "api", make_link(service_id="api"))
    found = find_link(tmp_path / "mono" / "api")
    assert found is not None and found[1].service_id == "api"


def test_a_symlinked_path_finds_the_same_link(tmp_path: Path) -> None:
    (tmp_path / "real").mkdir()
    (tmp_path / "alias").symlink_to(tmp_path / "real", target_is_directory=True)
    save_link(tmp_path / "alias", make_link())
    assert find_link(tmp_path / "real") is not None


def test_unlink_removes_the_nearest_link(tmp_path: Path) -> None:
    (tmp_path / "a" / "b").mkdir(parents=True)
    save_link(tmp_path / "a", make_link())
    assert delete_link(tmp_path / "a" / "b") == (tmp_path / "a").resolve()
    assert find_link(tmp_path / "a") is None
    assert delete_link(tmp_path / "a") is None


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("localhost:8080", "http://localhost:8080"),
        ("https://caboose.example.com/", "https://caboose.example.com"),
        ("  HTTP://h:1  ", "HTTP://h:1"),
    ],
)
def test_normalize_host(given: str, expected: str) -> None:
    assert normalize_host(given) == expected


def test_normalize_host_refuses_other_schemes() -> None:
    with pytest.raises(CliError):
        normalize_host("ftp://h")
