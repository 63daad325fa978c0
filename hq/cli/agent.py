"""`hq agent`: run the worker agent on this host (claims jobs from HQ, runs them in Docker).

The agent builds itself in ``agent.main``; this command only turns its flags into settings.
"""

from __future__ import annotations

import sys
from pathlib import Path

import click


@click.command("agent")
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
def agent(
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
    running is settled with HQ on the next start.
    """
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
