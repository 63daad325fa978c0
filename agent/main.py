"""The agent process, built in one place: settings -> clients -> Docker runner -> loop.

``hq agent`` (flags) and ``python -m agent`` (the same flags) both call ``start``; ``hq
standalone`` runs ``python -m agent`` as its local agent. SIGTERM or SIGINT drains (running jobs
finish and are reported, nothing new is claimed, exit 0); a second signal stops at once, and
whatever was running is settled with HQ on the next start.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from agent.abortable import AbortableTransport
from agent.docker_runner import DockerRunner
from agent.loop import Agent
from agent.settings import AgentSettings, get_settings
from hq import errors
from hq.client import HQClient

LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")
LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
SWITCH_INTERVAL_SECONDS = 0.0005  # Python's default is 5 ms (see ``start``)


class AgentError(Exception):
    """The agent cannot start, or HQ refused it: the message says why, in one line."""


def configure_logging(level: str) -> None:
    logging.basicConfig(level=level, stream=sys.stderr, format=LOG_FORMAT)
    if level != "DEBUG":  # a line per heartbeat and log batch is noise
        logging.getLogger("httpx").setLevel(logging.WARNING)


def load_settings(*, overrides: Mapping[str, object]) -> AgentSettings:
    """The environment's settings (``HQ_*``) with ``overrides`` (settings fields) on top;
    a None override is no override."""
    given: dict[str, Any] = {key: value for key, value in overrides.items() if value is not None}
    try:
        return AgentSettings(**given) if given else get_settings()
    except ValidationError as exc:
        raise AgentError(f"invalid agent settings: {exc}") from exc


def run(*, settings: AgentSettings) -> int:
    """Build the clients and the runner, run the loop until drained; the exit code."""
    if not settings.token:
        raise AgentError("an agent token is needed: pass --token or set HQ_TOKEN")
    try:
        runner = DockerRunner()
    except Exception as exc:
        raise AgentError(f"cannot reach the Docker engine: {exc}") from exc
    client = HQClient(settings.url, settings.token)
    # Long polls go through their own transport, whose connections a drain cuts in flight.
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
        return worker.run()
    except errors.HQError as exc:  # e.g. a revoked token: say so, not a traceback
        raise AgentError(f"HQ at {settings.url} refused the agent: {exc.message}") from exc
    finally:
        client.close()
        claim_client.close()
        runner.close()


def start(*, overrides: Mapping[str, object], log_level: str = "INFO") -> int:
    """Logging, settings, then ``run``: what both command lines do."""
    configure_logging(log_level)
    # The agent's threads hand each job on to each other (the output reader wakes the watch,
    # the watch the reporter): with Python's default 5 ms switch interval a woken thread can
    # wait that long for the GIL, several times per job (a warm no-op job: 32 -> 23 ms p50).
    sys.setswitchinterval(SWITCH_INTERVAL_SECONDS)
    return run(settings=load_settings(overrides=overrides))


def parser() -> argparse.ArgumentParser:
    """``python -m agent``'s flags: those of ``hq agent``, each named by its settings field."""
    p = argparse.ArgumentParser(
        prog="python -m agent", description="Claim jobs from HQ and run them as containers."
    )
    p.add_argument("--url", dest="url", help="HQ's URL (HQ_URL)")
    p.add_argument("--token", dest="token", help="an agent token (HQ_TOKEN)")
    p.add_argument("--name", dest="agent_name", help="this agent's name (HQ_AGENT_NAME)")
    p.add_argument("--labels", dest="agent_labels", help="comma-separated (HQ_AGENT_LABELS)")
    p.add_argument("--queues", dest="agent_queues", help="comma-separated (HQ_AGENT_QUEUES)")
    p.add_argument("--capacity", dest="agent_capacity", type=int, help="(HQ_AGENT_CAPACITY)")
    p.add_argument("--gpus", dest="agent_gpus", type=int, help="(HQ_AGENT_GPUS)")
    p.add_argument("--work-dir", dest="agent_work_dir", type=Path, help="(HQ_AGENT_WORK_DIR)")
    p.add_argument("--log-level", default="INFO", choices=LOG_LEVELS)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m agent``: an error is one line on stderr and exit 1, as ``hq agent`` does."""
    flags = vars(parser().parse_args(argv))
    log_level = flags.pop("log_level")
    try:
        return start(overrides=flags, log_level=log_level)
    except AgentError as exc:
        print(f"Error: {exc}", file=sys.stderr)
        return 1
