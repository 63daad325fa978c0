"""`hq token create|list|revoke`."""

from __future__ import annotations

import click

from hq.cli.common import (
    CREATED,
    echo_json,
    echo_table,
    get_client,
    handle_errors,
    json_option,
    when,
)
from hq.schemas.common import Role


@click.group()
def token() -> None:
    """Bearer tokens (admin)."""


@token.command("create")
@click.option("--name", required=True, help="who or what uses the token")
@click.option("--role", type=click.Choice([r.value for r in Role]), required=True)
@click.option("--quiet", "-q", is_flag=True, help="print only the token")
@handle_errors
def create(name: str, role: str, quiet: bool) -> None:
    """Create a token; it is shown once."""
    with get_client() as client:
        created = client.create_token(name=name, role=role)
    if quiet:
        click.echo(created.token)
    else:
        click.echo(f"token for {created.name} ({created.role}), shown once:\n{created.token}")


@token.command("list")
@json_option
@handle_errors
def list_(as_json: bool) -> None:
    """Tokens: who they are for, their role, and whether they are revoked."""
    with get_client() as client:
        rows = client.list_tokens()
    if as_json:
        echo_json(rows)
    else:
        echo_table(
            [
                (
                    t.id,
                    t.name,
                    t.role,
                    when(t.created_at),
                    when(t.revoked_at) if t.revoked_at else "",
                )
                for t in rows
            ],
            ["id", "name", "role", CREATED, "revoked (UTC)"],
        )


@token.command("revoke")
@click.argument("token_id")
@handle_errors
def revoke(token_id: str) -> None:
    """Revoke a token by its id (see `hq token list`); it gets 401 from now on."""
    with get_client() as client:
        revoked = client.revoke_token(token_id)
    click.echo(f"revoked token {revoked.id} ({revoked.name}, {revoked.role})")
