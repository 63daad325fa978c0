"""What every `hq` command shares: settings, the client, output and error handling."""

from __future__ import annotations

import functools
import json
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from functools import lru_cache
from pathlib import Path
from typing import Any, ParamSpec, TypeVar

import click
from pydantic import BaseModel, Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from hq import errors
from hq.client import HQClient

P = ParamSpec("P")
R = TypeVar("R")
F = TypeVar("F", bound=Callable[..., Any])


class CliSettings(BaseSettings):
    """Where the CLI finds HQ: ``HQ_URL`` and ``HQ_TOKEN`` (and ``HQ_HOME`` for standalone)."""

    model_config = SettingsConfigDict(env_prefix="HQ_", extra="ignore")

    url: str = "http://127.0.0.1:8080"
    token: str | None = None
    home: Path = Field(default_factory=lambda: Path.home() / ".hq")


@lru_cache(maxsize=1)
def get_settings() -> CliSettings:
    return CliSettings()


def get_client() -> HQClient:
    settings = get_settings()
    return HQClient(settings.url, settings.token)


TOKEN_HINT = (
    "\n  set HQ_TOKEN to a valid token: `make run` printed an export line for it; the admin "
    "token is in $HQ_HOME/admin.token"
)


def handle_errors(fn: Callable[P, R]) -> Callable[P, R]:
    """Show an HQError as a one-line CLI error (exit 1) instead of a traceback."""

    @functools.wraps(fn)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return fn(*args, **kwargs)
        except errors.HQError as exc:
            named = not exc.field or exc.message.startswith(exc.field)
            hint = TOKEN_HINT if isinstance(exc, errors.NotAuthenticated) else ""
            where = "" if named else f" ({exc.field})"
            raise click.ClickException(f"{exc.message}{where}{hint}") from exc

    return wrapper


def echo_json(value: Any) -> None:
    if isinstance(value, BaseModel):
        value = value.model_dump(mode="json")
    elif isinstance(value, list):
        value = [v.model_dump(mode="json") if isinstance(v, BaseModel) else v for v in value]
    click.echo(json.dumps(value, indent=2, sort_keys=True, default=str))


CREATED = "created (UTC)"  # the heading of every table's time column


def when(at: datetime) -> str:
    """A time as every table shows it: UTC, to the second."""
    return f"{at.astimezone(UTC):%Y-%m-%d %H:%M:%S}"


def echo_table(rows: Sequence[Sequence[Any]], headers: Sequence[str]) -> None:
    """A plain aligned text table."""
    cells = [[str(h) for h in headers]] + [["" if c is None else str(c) for c in r] for r in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    for n, row in enumerate(cells):
        click.echo("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())
        if n == 0:
            click.echo("  ".join("-" * w for w in widths))


json_option = click.option("--json", "as_json", is_flag=True, help="print JSON instead of a table")


def wait_option(ends: str) -> Callable[[F], F]:
    """``--wait S`` of the submit commands: wait up to S seconds for ``ends``; the exit codes
    say how it ended (0 succeeded, 1 not, 3 not ended yet)."""
    return click.option(
        "--wait",
        "wait_s",
        type=click.FloatRange(min=0),
        default=None,
        help=f"wait up to S seconds for {ends}",
    )
