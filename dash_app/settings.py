"""The Dash app's settings (``HQ_`` environment variables), built once and passed to create_app."""

from __future__ import annotations

import logging
import os
import secrets
from functools import lru_cache
from pathlib import Path

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from dash_app.logic.accounts import Account, parse_accounts

logger = logging.getLogger(__name__)

PLACEHOLDER_SECRETS = frozenset(
    {"changeme", "change-me", "changethis", "secret", "placeholder", "dev", "test", "xxx"}
)
MIN_SECRET_CHARS = 16
SECRET_FILE = "dash_secret.key"
ADMIN_TOKEN_FILE = "admin.token"


class DashSettings(BaseSettings):
    """``HQ_URL`` (the API), ``HQ_TOKEN`` (an admin token, to mint tokens for the accounts in
    ``HQ_DASH_USERS``), ``HQ_DASH_SECRET_KEY`` (signs the session cookie), ``HQ_HOME``."""

    model_config = SettingsConfigDict(env_prefix="HQ_", extra="ignore", populate_by_name=True)

    url: str = "http://127.0.0.1:8080"
    token: SecretStr | None = None
    admin_token_value: SecretStr | None = Field(default=None, alias="HQ_ADMIN_TOKEN")
    home: Path = Path("~/.hq")
    dash_secret_key: SecretStr | None = None
    dash_users: str | None = None
    dash_host: str = "127.0.0.1"
    dash_port: int = 8050
    dash_session_hours: float = 12.0

    @field_validator("dash_secret_key")
    @classmethod
    def _real_secret(cls, value: SecretStr | None) -> SecretStr | None:
        if value is None:
            return None
        raw = value.get_secret_value().strip()
        if raw.lower() in PLACEHOLDER_SECRETS or len(raw) < MIN_SECRET_CHARS:
            raise ValueError(
                f"HQ_DASH_SECRET_KEY must be a random string of at least {MIN_SECRET_CHARS} "
                "characters (e.g. from `python -c 'import secrets; print(secrets.token_hex())'`), "
                "or unset to let HQ generate one under HQ_HOME"
            )
        return value

    @field_validator("dash_users")
    @classmethod
    def _accounts(cls, value: str | None) -> str | None:
        parse_accounts(value)
        return value

    @property
    def home_dir(self) -> Path:
        return self.home.expanduser()

    @property
    def accounts(self) -> dict[str, Account]:
        return parse_accounts(self.dash_users)

    def secret_key(self) -> str:
        """The given key, or one generated once and kept in ``$HQ_HOME/dash_secret.key`` (0600)."""
        if self.dash_secret_key is not None:
            return self.dash_secret_key.get_secret_value()
        path = self.home_dir / SECRET_FILE
        if path.exists():
            return path.read_text().strip()
        path.parent.mkdir(parents=True, exist_ok=True)
        key = secrets.token_hex(32)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(key)
        logger.info("generated a session key", extra={"path": str(path)})
        return key

    def admin_token(self) -> str | None:
        """``HQ_ADMIN_TOKEN``, ``HQ_TOKEN``, else the token HQ wrote to ``$HQ_HOME/admin.token``."""
        if self.admin_token_value is not None:
            return self.admin_token_value.get_secret_value()
        if self.token is not None:
            return self.token.get_secret_value()
        path = self.home_dir / ADMIN_TOKEN_FILE
        return path.read_text().strip() if path.exists() else None


@lru_cache(maxsize=1)
def get_settings() -> DashSettings:
    return DashSettings()
