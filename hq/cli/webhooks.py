"""`hq webhook create|list|deliveries|delete`."""

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
from hq.schemas.webhooks import WebhookEvent

EVENTS = [e.value for e in WebhookEvent]


def parse_events(text: str) -> list[str]:
    """``job,sweep,pipeline`` (any of them, comma-separated)."""
    events = [e.strip() for e in text.split(",") if e.strip()]
    unknown = [e for e in events if e not in EVENTS]
    if unknown or not events:
        raise click.BadParameter(
            f"{', '.join(unknown) or 'nothing'}: choose from {', '.join(EVENTS)}",
            param_hint="--events",
        )
    return events


@click.group()
def webhook() -> None:
    """Webhooks: signed POSTs when jobs, sweeps or pipelines end."""


@webhook.command("create")
@click.argument("url")
@click.option("--events", default="job", show_default=True, help="job,sweep,pipeline")
@click.option("--failures-only", is_flag=True, help="only ends that failed or timed out")
@click.option("--script", default=None, help="only jobs and sweeps of this script")
@click.option("--description", default="", help="what the webhook is for")
@click.option("--quiet", "-q", is_flag=True, help="print only the id and the secret")
@handle_errors
def create(
    url: str, events: str, failures_only: bool, script: str | None, description: str, quiet: bool
) -> None:
    """Create a webhook; its signing secret is shown once."""
    with get_client() as client:
        created = client.create_webhook(
            url,
            events=parse_events(events),
            failures_only=failures_only,
            script=script,
            description=description,
        )
    if quiet:
        click.echo(f"{created.id} {created.secret}")
        return
    kinds = ",".join(created.events) + (" (failures only)" if created.failures_only else "")
    click.echo(f"webhook {created.id} -> {created.url} on {kinds}")
    click.echo(f"signing secret, shown once:\n{created.secret}")


@webhook.command("list")
@json_option
@handle_errors
def list_(as_json: bool) -> None:
    """Webhooks: where they point and which ends they are told of."""
    with get_client() as client:
        rows = client.list_webhooks()
    if as_json:
        echo_json(rows)
        return
    echo_table(
        [
            (
                w.id,
                w.url,
                ",".join(w.events),
                "yes" if w.failures_only else "",
                w.script or "",
                when(w.created_at),
            )
            for w in rows
        ],
        ["id", "url", "events", "failures only", "script", CREATED],
    )


@webhook.command("deliveries")
@click.argument("webhook_id")
@click.option("--limit", default=20, show_default=True, type=click.IntRange(1, 200))
@json_option
@handle_errors
def deliveries(webhook_id: str, limit: int, as_json: bool) -> None:
    """A webhook's recent deliveries, newest first: status, tries, last answer, next try."""
    with get_client() as client:
        page = client.list_deliveries(webhook_id, limit=limit)
    if as_json:
        echo_json(page.items)
        return
    echo_table(
        [
            (
                d.id,
                d.event,
                d.subject_id,
                d.status.value,
                d.attempts,
                d.last_status_code or "",
                (d.last_error or "")[:60],
                when(d.next_attempt_at) if d.next_attempt_at else "",
                when(d.created_at),
            )
            for d in page.items
        ],
        ["id", "event", "subject", "status", "tries", "code", "error", "next try (UTC)", CREATED],
    )


@webhook.command("delete")
@click.argument("webhook_id")
@handle_errors
def delete(webhook_id: str) -> None:
    """Delete a webhook and its deliveries (submitters: only their own)."""
    with get_client() as client:
        client.delete_webhook(webhook_id)
    click.echo(f"deleted webhook {webhook_id}")
