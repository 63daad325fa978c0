"""`hq agent`: run the worker agent on this host (claims jobs from HQ, runs them in Docker);
`hq agent list`: the agents HQ knows, and why one takes no work.

The agent builds itself in ``agent.main``; this command only turns its flags into settings.
"""

from __future__ import annotations

import sys
from pathlib import Path

import click

from hq.cli.common import echo_json, echo_table, get_client, handle_errors, json_option, when


@click.group("agent", invoke_without_command=True)
@click.option("--url", help="HQ's URL (HQ_URL)")
@click.option("--token", help="an agent token (HQ_TOKEN)")
@click.option("--name", help="this agent's name (HQ_AGENT_NAME; default: the hostname)")
@click.option("--labels", help="comma-separated labels, e.g. gpu,mem-32g (HQ_AGENT_LABELS)")
@click.option("--queues", help="comma-separated queues to serve (HQ_AGENT_QUEUES)")
@click.option(
    "--capacity", type=click.IntRange(1, 256), help="jobs run at once (HQ_AGENT_CAPACITY)"
)
@click.option("--gpus", type=click.IntRange(0, 64), help="GPUs on this host (HQ_AGENT_GPUS)")
@click.option(
    "--work-dir",
    type=click.Path(path_type=Path),
    help="input cache and job folders (HQ_AGENT_WORK_DIR; default ~/.hq/agent)",
)
@click.option(
    "--log-level",
    default="INFO",
    show_default=True,
    type=click.Choice(["DEBUG", "INFO", "WARNING", "ERROR"]),
)
@click.pass_context
def agent(
    ctx: click.Context,
    url: str | None,
    token: str | None,
    name: str | None,
    labels: str | None,
    queues: str | None,
    capacity: int | None,
    gpus: int | None,
    work_dir: Path | None,
    log_level: str,
) -> None:
    """Claim jobs from HQ and run them as hardened containers.

    SIGTERM (or `POST /api/v1/agents/{id}/drain`) drains: running jobs finish and are reported,
    nothing new is claimed, then the agent exits 0. A second signal stops at once; whatever was
    running is settled with HQ on the next start. `hq agent list` lists the agents instead.
    """
    if ctx.invoked_subcommand is not None:
        return
    from agent.main import AgentError, start  # Docker and the agent load only for this command

    overrides = {
        "url": url,
        "token": token,
        "agent_name": name,
        "agent_labels": labels,
        "agent_queues": queues,
        "agent_capacity": capacity,
        "agent_gpus": gpus,
        "agent_work_dir": work_dir,
    }
    try:
        code = start(overrides=overrides, log_level=log_level)
    except AgentError as exc:
        raise click.ClickException(str(exc)) from exc
    sys.exit(code)


@agent.command("list")
@json_option
@handle_errors
def list_(as_json: bool) -> None:
    """Agents: status, slots in use, and why one takes no work (its host is not free)."""
    with get_client() as client:
        rows = client.list_agents()
    if as_json:
        echo_json(rows)
        return
    echo_table(
        [
            (
                a.id,
                a.name,
                a.status,
                f"{a.running}/{a.capacity}",
                a.paused or "",
                a.not_free or "",
                when(a.last_seen_at),
            )
            for a in rows
        ],
        ["id", "name", "status", "slots", "paused", "not free", "last seen (UTC)"],
    )
