"""Everything the agent asks of the Docker engine; the only module in ``agent/`` importing docker.

A job container is always started from a ``ContainerSpec`` that the agent builds itself, with the
hardened settings of DESIGN.md fixed here: no network, read-only root, a tmpfs ``/tmp`` owned by
the script's user, every capability dropped, no-new-privileges, a non-root user and the memory,
CPU and pids limits of the manifest. Nothing from a job is passed to the engine as a raw argument.
The calls block; the agent runs them in its per-slot threads.
"""

from __future__ import annotations

import io
import logging
import tarfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import docker
import docker.errors
import docker.types

log = logging.getLogger(__name__)

JOB_LABEL = "hq.job"
ATTEMPT_LABEL = "hq.attempt"
LEASE_LABEL = "hq.lease"
AGENT_LABEL = "hq.agent"
KILL_TIMEOUT_SECONDS = 10


class ImageUnavailable(Exception):
    """The job's image is neither present locally nor pullable."""


class ContainerGone(Exception):
    """The container no longer exists."""


@dataclass(frozen=True)
class Mount:
    source: Path
    target: str
    read_only: bool = True


@dataclass(frozen=True)
class ContainerSpec:
    """What a job container is started with: only these fields reach the engine."""

    image_id: str
    command: list[str]
    mounts: list[Mount]
    labels: dict[str, str]
    memory_bytes: int
    cpus: float
    pids: int
    uid: int
    gid: int
    gpus: int = 0
    environment: dict[str, str] = field(default_factory=dict)
    tmpfs_bytes: int = 256 * 1024**2
    name: str | None = None


@dataclass(frozen=True)
class ExitState:
    exit_code: int
    oom_killed: bool


@dataclass(frozen=True)
class ProcessInfo:
    """A container's first process (0 once it ended) and the engine's start and end times."""

    pid: int
    started_at: str
    finished_at: str


@dataclass(frozen=True)
class JobContainer:
    """A container labelled ``hq.job`` found on this engine."""

    id: str
    labels: dict[str, str]
    running: bool
    started_at: str


def split_repository(image: str) -> str:
    """``reg:5000/ns/name:tag@sha256:..`` -> ``reg:5000/ns/name``."""
    ref = image.split("@", 1)[0]
    slash = ref.rfind("/")
    colon = ref.rfind(":")
    return ref[:colon] if colon > slash else ref


class DockerRunner:
    """A thin, typed wrapper over docker-py for the agent's few needs."""

    def __init__(self, *, client: docker.DockerClient | None = None) -> None:
        self.client = client or docker.from_env(timeout=120)
        self.api = self.client.api

    def close(self) -> None:
        self.client.close()

    # -- images ---------------------------------------------------------------------------
    def resolve_image(self, *, image: str, digest: str) -> str:
        """The local image ID for a job's pinned ``digest``, pulling ``repo@digest`` if absent.

        ``digest`` is a registry digest, or for local unpushed images (standalone) the image ID.
        The pull goes through the streaming API so that an error line is seen, not swallowed.
        """
        found = self._local_image(image=image, digest=digest)
        if found:
            return found
        repo = split_repository(image)
        try:
            for line in self.api.pull(repo, tag=digest, stream=True, decode=True):
                if isinstance(line, dict) and line.get("error"):
                    raise ImageUnavailable(f"{repo}@{digest}: {line['error']}")
        except docker.errors.APIError as exc:
            raise ImageUnavailable(f"{repo}@{digest}: {exc.explanation or exc}") from exc
        found = self._local_image(image=image, digest=digest)
        if not found:
            raise ImageUnavailable(f"{repo}@{digest}: pulled, but no image has that digest")
        return found

    def _local_image(self, *, image: str, digest: str) -> str | None:
        repo = split_repository(image)
        for ref in (digest, f"{repo}@{digest}"):
            try:
                found = self.client.images.get(ref)
            except (docker.errors.ImageNotFound, docker.errors.NullResource):
                continue
            except docker.errors.APIError as exc:
                if exc.status_code in (400, 404):
                    continue
                raise
            if found.id == digest or any(
                d.endswith(f"@{digest}") for d in found.attrs.get("RepoDigests") or []
            ):
                return str(found.id)
        return None

    # -- containers -----------------------------------------------------------------------
    def create(self, spec: ContainerSpec) -> str:
        """Create (not start) the hardened container for ``spec``; returns its id."""
        device_requests = (
            [docker.types.DeviceRequest(count=spec.gpus, capabilities=[["gpu"]])]
            if spec.gpus
            else None
        )
        user = f"{spec.uid}:{spec.gid}"
        host_config = self.api.create_host_config(
            network_mode="none",
            read_only=True,
            tmpfs={
                "/tmp": f"rw,nosuid,nodev,size={spec.tmpfs_bytes},"
                f"uid={spec.uid},gid={spec.gid},mode=1777"
            },
            cap_drop=["ALL"],
            security_opt=["no-new-privileges"],
            mem_limit=spec.memory_bytes,
            memswap_limit=spec.memory_bytes,
            nano_cpus=int(spec.cpus * 1e9),
            pids_limit=spec.pids,
            ipc_mode="private",
            init=False,
            privileged=False,
            mounts=[
                docker.types.Mount(
                    target=m.target, source=str(m.source), type="bind", read_only=m.read_only
                )
                for m in spec.mounts
            ],
            device_requests=device_requests,
            log_config=docker.types.LogConfig(
                type="json-file", config={"max-size": "50m", "max-file": "1"}
            ),
        )
        created = self.api.create_container(
            spec.image_id,
            command=spec.command,
            user=user,
            labels=spec.labels,
            environment=spec.environment,
            host_config=host_config,
            network_disabled=True,
            name=spec.name,
        )
        return str(created["Id"])

    def attach(
        self, container_id: str, *, past: bool = True
    ) -> Iterator[tuple[bytes | None, bytes | None]]:
        """(stdout, stderr) chunks from the start (call before ``start`` to miss nothing), or
        with ``past=False`` from now on (a warm container's job, not its preload)."""
        stream: Iterator[tuple[bytes | None, bytes | None]] = self.api.attach(
            container_id, stdout=True, stderr=True, stream=True, logs=past, demux=True
        )
        return stream

    def follow_logs(self, container_id: str) -> Iterator[bytes]:
        """Output from now on, for a container adopted from an earlier life of the agent."""
        stream: Iterator[bytes] = self.api.logs(
            container_id, stdout=True, stderr=True, stream=True, follow=True, tail=0
        )
        return stream

    def start(self, container_id: str) -> None:
        self.api.start(container_id)

    def wait(self, container_id: str) -> int:
        """Block until the container stops; its exit code."""
        try:
            result = self.api.wait(container_id, timeout=None)
        except docker.errors.NotFound as exc:
            raise ContainerGone(container_id) from exc
        return int(result.get("StatusCode", -1))

    def kill(self, container_id: str) -> None:
        """SIGKILL, also to a paused container (thawed first where the engine asks for it)."""
        try:
            self.api.kill(container_id)
        except docker.errors.NotFound:
            pass
        except docker.errors.APIError as exc:  # already stopped, or paused
            if exc.status_code != 409:
                raise
            if "paused" in str(exc.explanation or exc).lower():
                self.unpause(container_id)
                self.kill(container_id)

    def pause(self, container_id: str) -> bool:
        """Freeze the container's processes (``docker pause``); False when it is not running
        (ended, or gone) and so cannot be paused. Already paused counts as paused."""
        try:
            self.api.pause(container_id)
        except docker.errors.NotFound:
            return False
        except docker.errors.APIError as exc:
            if exc.status_code != 409:
                raise
            return "already paused" in str(exc.explanation or exc).lower()
        return True

    def unpause(self, container_id: str) -> None:
        """Thaw a paused container; nothing when it is not paused or gone."""
        try:
            self.api.unpause(container_id)
        except docker.errors.NotFound:
            pass
        except docker.errors.APIError as exc:  # "is not paused" (a 500 on some engines)
            if exc.status_code != 409 and "not paused" not in str(exc.explanation or exc):
                raise

    def is_paused(self, container_id: str) -> bool:
        try:
            state = self.api.inspect_container(container_id)["State"]
        except docker.errors.NotFound:
            return False
        return bool(state.get("Paused"))

    def exit_state(self, container_id: str) -> ExitState:
        try:
            state = self.api.inspect_container(container_id)["State"]
        except docker.errors.NotFound as exc:
            raise ContainerGone(container_id) from exc
        return ExitState(
            exit_code=int(state.get("ExitCode", -1)), oom_killed=bool(state.get("OOMKilled"))
        )

    def remove(self, container_id: str) -> None:
        try:
            self.api.remove_container(container_id, force=True)
        except docker.errors.NotFound:
            pass
        except docker.errors.APIError as exc:  # removal already in progress
            if exc.status_code != 409:
                raise

    def job_containers(self, *, agent_name: str | None = None) -> list[JobContainer]:
        """Containers labelled ``hq.job`` (and ``hq.agent=<name>`` when given), running or not."""
        filters = [JOB_LABEL] + ([f"{AGENT_LABEL}={agent_name}"] if agent_name else [])
        return self.labelled_containers(filters)

    def labelled_containers(self, labels: list[str]) -> list[JobContainer]:
        """Containers with all of ``labels`` (``key`` or ``key=value``), running or not."""
        found = []
        for c in self.api.containers(all=True, filters={"label": labels}):
            info = self.api.inspect_container(c["Id"])
            found.append(
                JobContainer(
                    id=str(c["Id"]),
                    labels=dict(c.get("Labels") or {}),
                    running=bool(info["State"].get("Running")),
                    started_at=str(info["State"].get("StartedAt", "")),
                )
            )
        return found

    # -- measuring (agent/usage.py, agent/figures.py) -------------------------------------
    def process_info(self, container_id: str) -> ProcessInfo:
        try:
            state = self.api.inspect_container(container_id)["State"]
        except docker.errors.NotFound as exc:
            raise ContainerGone(container_id) from exc
        return ProcessInfo(
            pid=int(state.get("Pid") or 0),
            started_at=str(state.get("StartedAt", "")),
            finished_at=str(state.get("FinishedAt", "")),
        )

    def stats_once(self, container_id: str) -> dict[str, Any]:
        """One answer of the stats API, at once (no second sample for a CPU percentage)."""
        try:
            stats: dict[str, Any] = self.api.stats(container_id, stream=False, one_shot=True)
        except docker.errors.NotFound as exc:
            raise ContainerGone(container_id) from exc
        return stats

    def read_image_file(
        self, image_id: str, path: str, *, labels: dict[str, str], max_bytes: int = 65536
    ) -> bytes | None:
        """A small file of an image (None when absent), through a container created for it and
        never started."""
        created = self.api.create_container(
            image_id, command=["true"], labels=labels, network_disabled=True
        )
        try:
            stream, _stat = self.api.get_archive(created["Id"], path)
            raw = b"".join(stream)
        except docker.errors.NotFound:
            return None
        finally:
            self.remove(str(created["Id"]))
        with tarfile.open(fileobj=io.BytesIO(raw)) as tar:
            member = next((m for m in tar.getmembers() if m.isfile()), None)
            if member is None or member.size > max_bytes:
                return None
            handle = tar.extractfile(member)
            return handle.read() if handle is not None else None
