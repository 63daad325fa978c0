"""A restarted agent and the warm containers of its earlier life.

A container still waiting for a job is removed with its folder. One that was handed a job is
found through the job's folder (``warm.json`` names it) and settled like any job container of
an earlier life: adopted while it runs, reported once it has ended, removed when HQ no longer
leases the job to this agent. One whose runner wrote the job's status (``exit``) has ended its
job and only stays until it is removed: it is killed and reported with that status.
The warm label has no ``hq.job``, so the lease's own fields stand in for the labels a cold
container would carry.
"""

from __future__ import annotations

import dataclasses
import logging
import shutil

from agent.docker_runner import (
    ATTEMPT_LABEL,
    JOB_LABEL,
    LEASE_LABEL,
    DockerRunner,
    JobContainer,
)
from agent.settings import AgentSettings
from agent.warm.container import HANDOVER_FILE, WARM_AGENT_LABEL, exit_status
from agent.workspace import Workspace

log = logging.getLogger(__name__)


def recover_warm(
    *, settings: AgentSettings, runner: DockerRunner
) -> list[tuple[JobContainer, Workspace]]:
    """Remove waiting warm containers and folders; the handed-over ones, as job containers."""
    handed: dict[str, Workspace] = {}
    if settings.jobs_dir.is_dir():
        for folder in settings.jobs_dir.iterdir():
            data = Workspace(folder).read_json(HANDOVER_FILE)
            if data and data.get("container_id"):
                handed[str(data["container_id"])] = Workspace(folder)
    found: list[tuple[JobContainer, Workspace]] = []
    for container in runner.labelled_containers([f"{WARM_AGENT_LABEL}={settings.agent_name}"]):
        ws = handed.get(container.id)
        lease = ws.lease() if ws is not None else None
        if ws is None or lease is None:
            log.info("removing warm container %s of an earlier life", container.id[:12])
            runner.remove(container.id)
            continue
        data = ws.read_json(HANDOVER_FILE) or {}
        labels = {
            **container.labels,
            JOB_LABEL: lease.job_id,
            ATTEMPT_LABEL: str(lease.attempt),
            LEASE_LABEL: lease.lease_token,
        }
        started = str(data.get("handed_over_at") or container.started_at)
        running = container.running
        if running and exit_status(ws) is not None:  # the job is over: the runner only stays
            runner.kill(container.id)
            running = False
        found.append(
            (
                dataclasses.replace(container, labels=labels, started_at=started, running=running),
                ws,
            )
        )
    shutil.rmtree(settings.warm_dir, ignore_errors=True)
    return found
