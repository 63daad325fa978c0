"""`hq agent`: run the worker agent on this host (claims jobs from HQ, runs them in Docker)."""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import Any

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
    from pydantic import ValidationError

    from agent.abortable import AbortableTransport
    from agent.docker_runner import DockerRunner
    from agent.loop import Agent
    from agent.settings import AgentSettings, get_settings
    from hq import errors
    from hq.client import HQClient

    logging.basicConfig(
        level=log_level, stream=sys.stderr, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    if log_level != "DEBUG":  # a line per heartbeat and log batch is noise
        logging.getLogger("httpx").setLevel(logging.WARNING)
    overrides: dict[str, Any] = {
        key: value
        for key, value in (
            ("url", url),
            ("token", token),
            ("agent_name", name),
            ("agent_labels", labels),
            ("agent_queues", queues),
            ("agent_capacity", capacity),
            ("agent_gpus", gpus),
            ("agent_work_dir", work_dir),
        )
        if value is not None
    }
    try:
        settings = AgentSettings(**overrides) if overrides else get_settings()
    except ValidationError as exc:
        raise click.ClickException(f"invalid agent settings: {exc}") from exc
    if not settings.token:
        raise click.ClickException("an agent token is needed: pass --token or set HQ_TOKEN")
    try:
        runner = DockerRunner()
    except Exception as exc:
        raise click.ClickException(f"cannot reach the Docker engine: {exc}") from exc
    client = HQClient(settings.url, settings.token)
    transport = AbortableTransport()
    claim_client = HQClient(settings.url, settings.token, transport=transport)
    worker = Agent(
        settings=settings,
        client=client,
        runner=runner,
        claim_client=claim_client,
        abort_claims=transport.abort,
    )
    worker.install_signal_handlers()
    try:
        code = worker.run()
    except errors.HQError as exc:  # e.g. a revoked token: say so, not a traceback
        message = f"HQ at {settings.url} refused the agent: {exc.message}"
        raise click.ClickException(message) from exc
    finally:
        client.close()
        claim_client.close()
        runner.close()
    sys.exit(code)
