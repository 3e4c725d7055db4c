"""Settings: safe defaults with no configuration, refusal of unsafe production values."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest
from pydantic import ValidationError

from caboose.config import Environment, Settings


def make(**values: object) -> Settings:
    return Settings(_env_file=None, **values)  # type: ignore[call-arg]


def test_defaults_need_no_configuration(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path))
    settings = make()
    assert settings.environment is Environment.DEVELOPMENT
    assert settings.data_dir == tmp_path / "caboose"
    assert (
        settings.resolved_database_url
        == f"sqlite+aiosqlite:///{tmp_path / 'caboose' / 'caboose.db'}"
    )
    assert settings.redis_url is None
    assert settings.docs_enabled


def test_environment_variables_use_the_caboose_prefix(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CABOOSE_DATA_DIR", str(tmp_path / "elsewhere"))
    monkeypatch.setenv("CABOOSE_CORS_ORIGINS", "https://a.example, https://b.example")
    monkeypatch.setenv("CABOOSE_HTTP_PORT", "9090")
    settings = make()
    assert settings.data_dir == tmp_path / "elsewhere"
    assert settings.cors_origins == ["https://a.example", "https://b.example"]
    assert settings.http_port == 9090


def test_generated_secret_is_private_and_stable(tmp_path: Path) -> None:
    settings = make(data_dir=tmp_path)
    first = settings.resolved_secret_key()
    assert len(first) >= 48
    assert make(data_dir=tmp_path).resolved_secret_key() == first
    secret_file = tmp_path / "secrets" / "jwt.secret"
    assert stat.S_IMODE(secret_file.stat().st_mode) == 0o600
    assert stat.S_IMODE((tmp_path / "secrets").stat().st_mode) == 0o700
    assert stat.S_IMODE(tmp_path.stat().st_mode) == 0o711


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"cors_origins": ["*"]}, "CORS"),
        ({"secret_key": "changeme"}, "SECRET_KEY"),
        ({"secret_key": "short-but-random"}, "SECRET_KEY"),
        ({"master_key": "secret"}, "MASTER_KEY"),
        ({"enable_docs": True}, "DOCS"),
    ],
)
def test_production_refuses_unsafe_values(values: dict[str, object], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        make(environment="production", **values)


def test_production_accepts_safe_values() -> None:
    settings = make(
        environment="production",
        secret_key="x" * 8 + "a-long-random-secret-0123456789abcdef",
        cors_origins=["https://caboose.example.com"],
    )
    assert settings.is_production
    assert not settings.docs_enabled
    assert settings.logs_as_json


def test_out_of_range_ports_are_refused() -> None:
    with pytest.raises(ValidationError):
        make(http_port=70000)
