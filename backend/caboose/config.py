"""Settings: one pydantic-settings class, every value overridable by a ``CABOOSE_`` variable.

With no configuration at all, Caboose runs on one laptop: a SQLite file and generated secrets in
the data dir, an embedded Redis. Production is the same code with ``CABOOSE_ENVIRONMENT=production``
and real URLs; in that mode unsafe values are refused at start-up rather than discovered later.
"""

from __future__ import annotations

import os
import secrets
from enum import StrEnum
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Any

from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

# Secrets people paste from tutorials. Refused in production whatever their length.
_KNOWN_WEAK_SECRETS = frozenset(
    {"changeme", "change-me", "secret", "supersecret", "password", "development", "test", "caboose"}
)
_MIN_SECRET_LENGTH = 32


class Environment(StrEnum):
    DEVELOPMENT = "development"
    PRODUCTION = "production"
    TEST = "test"


def default_data_dir() -> Path:
    xdg = os.environ.get("XDG_DATA_HOME")
    base = Path(xdg) if xdg else Path.home() / ".local" / "share"
    return base / "caboose"


def _ensure_secret_file(path: Path) -> str:
    """Read a generated secret, creating it (mode 0600, never overwritten) on first run."""
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return path.read_text().strip()
    with os.fdopen(fd, "w") as handle:
        handle.write(secrets.token_urlsafe(48) + "\n")
    return path.read_text().strip()


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="CABOOSE_",
        env_file=".env",
        env_file_encoding="utf-8",
        extra="ignore",
        case_sensitive=False,
    )

    environment: Environment = Environment.DEVELOPMENT
    data_dir: Path = Field(default_factory=default_data_dir)
    database_url: str | None = Field(
        default=None, description="SQLAlchemy async URL; default: a SQLite file in the data dir."
    )
    redis_url: str | None = Field(
        default=None, description="Redis URL; default: an embedded redis-server in the data dir."
    )
    redis_max_connections: int = Field(
        default=1000,
        ge=10,
        description="Connections each API process opens to Redis at most; past that a command "
        "waits for one (up to 5 s) instead of failing.",
    )

    # Secrets: generated into the data dir on first run unless given.
    secret_key: str | None = Field(default=None, description="Signs JWTs and hashes API tokens.")
    master_key: str | None = Field(
        default=None, description="Base64 or hex 32-byte key for encrypting variables."
    )
    previous_master_keys: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="Comma-separated master keys being retired: still read, never written with "
        "(key rotation; see docs/security.md).",
    )

    # HTTP
    api_host: str = "127.0.0.1"
    api_port: int = Field(default=8000, ge=1, le=65535)
    http_port: int = Field(default=8080, ge=1, le=65535, description="Traefik's web entrypoint.")
    platform_host: str = "localhost"
    base_domain: str = "localhost"
    cors_origins: Annotated[list[str], NoDecode] = Field(default_factory=list)
    max_request_body_bytes: int = Field(default=1_048_576, ge=1024)
    enable_docs: bool | None = Field(
        default=None, description="Serve /docs; default: everywhere but production."
    )

    # Dashboard: the Next.js app of the checkout's frontend/, run by `caboosed up`.
    dashboard_enabled: bool = Field(
        default=True,
        description="`caboosed up` serves the dashboard on the platform host; off: the API only.",
    )
    dashboard_build: bool = Field(
        default=True,
        description="`caboosed up` builds the dashboard when its sources changed since the last "
        "build; off: it serves whatever build there is.",
    )
    dashboard_port: int | None = Field(
        default=None,
        ge=1,
        le=65535,
        description="Loopback port of the dashboard's Next.js server; default: a free one.",
    )

    # Database pool (PostgreSQL only; SQLite uses one file and no pool tuning).
    db_pool_size: int = Field(default=10, ge=1)
    db_max_overflow: int = Field(default=20, ge=0)
    db_pool_timeout: int = Field(default=30, ge=1)
    db_pool_recycle: int = Field(default=3600, ge=60)
    db_echo: bool = False

    # Identity
    registration_open: bool = Field(
        default=True, description="Anyone may register; off: only invitations create accounts."
    )
    access_token_minutes: int = Field(default=15, ge=1, le=24 * 60)
    refresh_token_days: int = Field(default=7, ge=1, le=90)
    invitation_hours: int = Field(default=72, ge=1, le=24 * 30)
    public_url: str | None = Field(
        default=None,
        description="How users reach the dashboard, e.g. https://caboose.example.com "
        "(default http://<platform host>:<http port>). OAuth redirects are built from it.",
    )
    github_client_id: str | None = None
    github_client_secret: str | None = None
    github_url: str = Field(default="https://github.com", description="GitHub's web base URL.")
    github_api_url: str = Field(default="https://api.github.com", description="GitHub's API URL.")

    # Rate limits ("N/second|minute|hour"), per user, or per client address before sign-in.
    rate_limits_enabled: bool = True
    rate_limit_reads: str = "100/minute"
    rate_limit_writes: str = "30/minute"
    rate_limit_auth: str = "10/minute"

    # Pages many requests read kept in memory per API process, checked against Redis on each
    # request (see core/read_cache.py). Off: every read runs its route.
    read_cache_enabled: bool = True

    log_level: str = "INFO"
    log_json: bool | None = Field(default=None, description="JSON log lines; default: production.")

    @field_validator("cors_origins", mode="before")
    @classmethod
    def _split_origins(cls, value: Any) -> Any:
        if isinstance(value, str):
            return [origin.strip() for origin in value.split(",") if origin.strip()]
        return value

    @field_validator("previous_master_keys", mode="before")
    @classmethod
    def _split_previous_master_keys(cls, value: Any) -> Any:
        if isinstance(value, str):
            return [key.strip() for key in value.split(",") if key.strip()]
        return value

    @field_validator("data_dir", mode="after")
    @classmethod
    def _absolute_data_dir(cls, value: Path) -> Path:
        return value.expanduser().resolve()

    @model_validator(mode="after")
    def _refuse_unsafe_production(self) -> Settings:
        if self.environment is not Environment.PRODUCTION:
            return self
        problems: list[str] = []
        if "*" in self.cors_origins:
            problems.append("CABOOSE_CORS_ORIGINS may not contain '*' (cookies are sent)")
        for name in ("secret_key", "master_key"):
            value = getattr(self, name)
            if value is None:
                continue  # generated on first run: random, never a default
            if value.lower() in _KNOWN_WEAK_SECRETS or len(value) < _MIN_SECRET_LENGTH:
                problems.append(
                    f"CABOOSE_{name.upper()} is too weak (use at least "
                    f"{_MIN_SECRET_LENGTH} random characters)"
                )
        if self.enable_docs:
            problems.append("CABOOSE_ENABLE_DOCS must not be on in production")
        if problems:
            raise ValueError("unsafe production settings: " + "; ".join(problems))
        return self

    # Derived values -------------------------------------------------------------------------

    @property
    def is_production(self) -> bool:
        return self.environment is Environment.PRODUCTION

    @property
    def docs_enabled(self) -> bool:
        return self.enable_docs if self.enable_docs is not None else not self.is_production

    @property
    def logs_as_json(self) -> bool:
        return self.log_json if self.log_json is not None else self.is_production

    @property
    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite+aiosqlite:///{self.data_dir / 'caboose.db'}"

    @property
    def secrets_dir(self) -> Path:
        return self.data_dir / "secrets"

    def ensure_data_dir(self) -> Path:
        """Create the data dir: traversable by app users (0711) but not listable, secrets 0700."""
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.data_dir.chmod(0o711)
        self.secrets_dir.mkdir(mode=0o700, exist_ok=True)
        self.secrets_dir.chmod(0o700)
        return self.data_dir

    @property
    def cookies_secure(self) -> bool:
        """Secure cookies everywhere but development (plain http://localhost) and tests."""
        return self.environment is Environment.PRODUCTION

    @property
    def github_oauth_enabled(self) -> bool:
        return bool(self.github_client_id and self.github_client_secret)

    @property
    def resolved_public_url(self) -> str:
        if self.public_url:
            return self.public_url.rstrip("/")
        port = "" if self.http_port == 80 else f":{self.http_port}"
        return f"http://{self.platform_host}{port}"

    def resolved_master_key_file(self) -> Path:
        return self.secrets_dir / "master.key"

    def resolved_secret_key(self) -> str:
        if self.secret_key:
            return self.secret_key
        self.ensure_data_dir()
        return _ensure_secret_file(self.secrets_dir / "jwt.secret")


@lru_cache
def get_settings() -> Settings:
    return Settings()
