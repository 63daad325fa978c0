"""The server's settings: one class, prefix ``HQ_``, built once and passed into ``create_app``."""

from __future__ import annotations

import secrets
from functools import lru_cache
from pathlib import Path

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from hq.server.services import webhook_targets
from hq.server.storage.describe import PreviewLimits

PLACEHOLDER_SECRETS = frozenset({"changeme", "change-me", "secret", "please-change", "xxx"})


# prometheus_client's own variable: where each server worker keeps its counters (read once, when
# prometheus_client is imported); hq.server.serving sets it, hq.server.metrics reads it.
METRICS_DIR_ENV = "PROMETHEUS_MULTIPROC_DIR"


class ServerSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="HQ_", extra="ignore")

    home: Path = Field(default_factory=lambda: Path.home() / ".hq")
    database_url: str | None = None  # default: sqlite under home
    storage_url: str | None = None  # default: file://<home>/storage
    s3_access_key: str | None = None
    s3_secret_key: str | None = None
    s3_region: str = "us-east-1"
    host: str = "127.0.0.1"
    port: int = 8080
    workers: int = Field(default=1, ge=1, le=64)  # server processes on the port (PostgreSQL)
    public_url: str | None = None  # how agents reach this server; default http://host:port
    secret_key: str | None = None  # HMAC key for the folder store's URLs; generated if absent
    admin_token: str | None = None  # bootstrap admin token; generated on first start if absent
    max_upload_bytes: int = 2 * 1024**3
    max_body_bytes: int = 32 * 1024**2
    max_params_bytes: int = Field(default=64 * 1024, gt=0)  # one job's params, as JSON
    max_sweep_params_bytes: int = Field(default=8 * 1024**2, gt=0)  # a sweep's, all jobs
    preview_max_columns: int = Field(default=100, gt=0)
    preview_max_bytes: int = Field(default=64 * 1024, gt=0)
    lease_ttl_seconds: float = 30.0
    reaper_interval_seconds: float = 1.0
    outage_grace_seconds: float = 60.0
    retry_backoff_seconds: float = 2.0
    retry_backoff_max_seconds: float = 300.0
    timeout_slack_seconds: float = 30.0
    agent_offline_seconds: float = 60.0
    default_timeout_seconds: int = 3600
    # Schedules: a slot fired later than this is missed (its catch_up policy decides), and the
    # firer looks for due schedules at least this often (sooner when one is due sooner).
    schedule_grace_seconds: float = Field(default=30.0, ge=0)
    schedule_tick_seconds: float = Field(default=1.0, gt=0, le=60)
    log_level: str = "info"
    # Where webhooks may point (see hq/server/services/webhook_targets.py); empty: nowhere.
    webhook_allow: str = ""
    webhook_max_attempts: int = Field(default=5, ge=1, le=50)
    webhook_backoff_seconds: float = Field(default=10.0, gt=0)  # doubled after each failed try
    webhook_backoff_max_seconds: float = Field(default=3600.0, gt=0)
    webhook_timeout_seconds: float = Field(default=5.0, gt=0, le=60)
    webhook_poll_seconds: float = Field(default=1.0, gt=0)

    @field_validator("webhook_allow")
    @classmethod
    def _allow_list(cls, value: str) -> str:
        webhook_targets.parse_allow(value)  # a ValueError naming the bad entry, at start-up
        return value

    @property
    def webhook_allow_list(self) -> tuple[webhook_targets.Entry, ...]:
        return webhook_targets.parse_allow(self.webhook_allow)

    @field_validator("secret_key", "admin_token")
    @classmethod
    def _no_placeholder(cls, value: str | None) -> str | None:
        if value is not None and (value.lower() in PLACEHOLDER_SECRETS or len(value) < 16):
            raise ValueError("must be a real secret of 16 characters or more, not a placeholder")
        return value

    @property
    def resolved_database_url(self) -> str:
        if self.database_url:
            url = self.database_url
            if url.startswith("postgresql://") or url.startswith("postgres://"):
                url = "postgresql+psycopg://" + url.split("://", 1)[1]
            elif url.startswith("sqlite:///") and "+aiosqlite" not in url:
                url = "sqlite+aiosqlite:///" + url.split(":///", 1)[1]
            return url
        return f"sqlite+aiosqlite:///{self.home / 'hq.db'}"

    @property
    def resolved_storage_url(self) -> str:
        return self.storage_url or f"file://{self.home / 'storage'}"

    @property
    def preview_limits(self) -> PreviewLimits:
        return PreviewLimits(max_columns=self.preview_max_columns, max_bytes=self.preview_max_bytes)

    @property
    def resolved_public_url(self) -> str:
        return (self.public_url or f"http://{self.host}:{self.port}").rstrip("/")

    def resolved_secret_key(self) -> str:
        """The HMAC key: from settings, else persisted under ``home`` (created once, mode 0600)."""
        if self.secret_key:
            return self.secret_key
        path = self.home / "secret.key"
        if not path.exists():
            self.home.mkdir(parents=True, exist_ok=True)
            write_private(path, secrets.token_urlsafe(32))
        return path.read_text().strip()


def write_private(path: Path, text: str) -> None:
    """Write a file readable by its owner only, without a window where it is world-readable."""
    import os

    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(text + "\n")
    os.chmod(path, 0o600)


@lru_cache(maxsize=1)
def get_settings() -> ServerSettings:
    return ServerSettings()
