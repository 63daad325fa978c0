"""One warm container: its folder, its hardened spec, and the hand-over of one job to it.

A warm container's folder (``<work_dir>/warm/<id>/``) is laid out as a job's folder will be:
``params.json`` (bound read-only at ``/hq/params.json``, rewritten in place at hand-over),
``outputs/`` (``/hq/outputs``, fresh and empty), ``inputs/`` (bound read-only at
``/hq/inputs``; the job's cached inputs are hardlinked in at hand-over, since no mount can be
added to a started container) and ``warm/`` (``/hq/.warm``, the runner's control folder).
At hand-over the folder is renamed to the job's own folder (a bind mount follows its directory
through a rename), so collecting, reporting, cleaning up and recovery work as for a cold job.
The container has the job's spec with three changes only: its command is the runner, its labels
say it is warm (no ``hq.job``: it belongs to no job yet), and the per-job variables
(``HQ_JOB_ID``, ``HQ_ATTEMPT``) arrive with the hand-over.
"""

from __future__ import annotations

import dataclasses
import errno
import json
import os
import re
import shutil
import uuid
from collections.abc import Generator, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from agent.docker_runner import ContainerSpec, DockerRunner, Mount
from agent.settings import AgentSettings
from agent.usage import container_cpu_s
from agent.warm.endmark import new_marker
from agent.workspace import INPUTS_ROOT, OUTPUTS_DIR, PARAMS_FILE, Workspace
from hq.schemas.agents import Lease

RUNNER_SOURCE = Path(__file__).with_name("runner.py")
RUNNER_DIR = "/hq/.runner"
CONTROL_DIR = "/hq/.warm"
PER_JOB_ENV = ("HQ_JOB_ID", "HQ_ATTEMPT")
WARM_LABEL = "hq.warm"  # the pool key
WARM_AGENT_LABEL = "hq.warm.agent"
WARM_SCRIPT_LABEL = "hq.warm.script"
HANDOVER_FILE = "warm.json"  # in a job's folder: the warm container that runs it
PYTHON_RE = re.compile(r"(.*/)?python(3(\.\d+)?)?")  # matched whole


class NotWarmable(Exception):
    """This version runs cold: the reason says why."""


def check_warmable(lease: Lease) -> None:
    """Raise ``NotWarmable`` unless the command is ``python script.py ...`` with no GPU."""
    manifest = lease.manifest
    command = manifest.command
    if not manifest.warm.enabled:
        raise NotWarmable("the manifest turns warm containers off")
    interpreter, script = [*command, "", ""][:2]
    if len(command) < 2 or not isinstance(interpreter, str):
        raise NotWarmable("the command is not a python interpreter")
    if not PYTHON_RE.fullmatch(interpreter):
        raise NotWarmable("the command is not a python interpreter")
    if not isinstance(script, str) or not script.endswith(".py"):
        raise NotWarmable("the command does not run a Python script file")
    if script.startswith("-") or "{" in script:
        raise NotWarmable("the command does not run a Python script file")
    if manifest.resources.gpus:
        raise NotWarmable("a warm container would hold GPUs while it waits")


Stream = Iterator[tuple[bytes | None, bytes | None]]


@dataclass
class WarmContainer:
    id: str
    folder: Path
    key: str
    memory_bytes: int
    # Its output from the end of the preload on, attached by the pools' thread once it is
    # ready (nothing runs until the hand-over), so a job does not wait for the attach.
    stream: Stream | None = None

    @property
    def control(self) -> Path:
        return self.folder / "warm"

    def ready(self) -> bool:
        return (self.control / "ready").exists()

    def failure(self) -> str | None:
        try:
            return (self.control / "failed").read_text()[:500] or "preload failed"
        except OSError:
            return None


def close_stream(stream: Stream) -> None:
    """Let go of an attach that no job will read (its connection closes with it)."""
    if isinstance(stream, Generator):
        stream.close()


def install_runner(settings: AgentSettings) -> Path:
    """The runner module copied under the work folder (a path the engine can mount, also when
    the agent itself runs in a container); its folder."""
    folder = settings.work_dir / "warm-runner"
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / "runner.py"
    source = RUNNER_SOURCE.read_bytes()
    if not target.exists() or target.read_bytes() != source:
        tmp = folder / ".runner.py.tmp"
        tmp.write_bytes(source)
        tmp.chmod(0o644)
        tmp.replace(target)
    folder.chmod(0o755)
    return folder


def _writable_by_job(path: Path, settings: AgentSettings) -> None:
    if os.geteuid() == 0:
        os.chown(path, settings.job_uid, settings.job_gid)
    else:  # a non-root agent cannot chown: let any uid write, as the folder is private
        path.chmod(0o777 if path.is_dir() else 0o666)


def make_folder(settings: AgentSettings, lease: Lease) -> Path:
    """A fresh warm folder with its config (what to preload) and hand-over FIFO."""
    folder = settings.warm_dir / uuid.uuid4().hex
    (folder / "outputs").mkdir(parents=True)
    (folder / "inputs").mkdir()
    (folder / "warm").mkdir()
    (folder / "params.json").write_text("{}")
    (folder / "params.json").chmod(0o444)
    warm = lease.manifest.warm
    config = {"preload": warm.preload, "script": lease.manifest.command[1]}
    (folder / "warm" / "config.json").write_text(json.dumps(config))
    os.mkfifo(folder / "warm" / "handover", 0o600)
    for path in (folder / "outputs", folder / "warm", folder / "warm" / "handover"):
        _writable_by_job(path, settings)
    return folder


def warm_spec(
    cold: ContainerSpec,
    *,
    folder: Path,
    runner_dir: Path,
    key: str,
    script: str,
    settings: AgentSettings,
) -> ContainerSpec:
    """The cold job's spec as a warm container's: the runner instead of the command, the
    folder's mounts instead of the job's own, warm labels, no per-job variables."""
    own = (PARAMS_FILE, OUTPUTS_DIR)
    kept = [m for m in cold.mounts if m.target not in own and not _is_input(m.target)]
    mounts = [
        *kept,
        Mount(folder / "params.json", PARAMS_FILE, read_only=True),
        Mount(folder / "outputs", OUTPUTS_DIR, read_only=False),
        Mount(folder / "inputs", INPUTS_ROOT, read_only=True),
        Mount(folder / "warm", CONTROL_DIR, read_only=False),
        Mount(runner_dir, RUNNER_DIR, read_only=True),
    ]
    env = {k: v for k, v in cold.environment.items() if k not in PER_JOB_ENV}
    labels = {
        **settings.container_labels,
        WARM_LABEL: key,
        WARM_AGENT_LABEL: settings.agent_name,
        WARM_SCRIPT_LABEL: script,
    }
    return dataclasses.replace(
        cold,
        command=[cold.command[0], f"{RUNNER_DIR}/runner.py"],
        mounts=mounts,
        environment=env,
        labels=labels,
    )


def _docker_time(when: datetime) -> str:
    """As the engine writes a container's start (the agent parses that form on recovery)."""
    return when.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _is_input(target: str) -> bool:
    return target.startswith(INPUTS_ROOT + "/")


def open_handover(wc: WarmContainer) -> int | None:
    """The hand-over FIFO opened for writing; None when no runner waits on it (it died)."""
    try:
        fd = os.open(wc.control / "handover", os.O_WRONLY | os.O_NONBLOCK)
    except OSError as exc:
        if exc.errno in (errno.ENXIO, errno.ENOENT):
            return None
        raise
    os.set_blocking(fd, True)
    return fd


def _place_inputs(folder: Path, spec: ContainerSpec) -> None:
    """Each of the job's cached inputs at its path under ``inputs/``: a hardlink (a copy across
    file systems)."""
    for mount in spec.mounts:
        if not _is_input(mount.target):
            continue
        dest = folder / "inputs" / mount.target[len(INPUTS_ROOT) + 1 :]
        dest.parent.mkdir(parents=True, exist_ok=True)
        dest.parent.chmod(0o755)
        try:
            os.link(mount.source, dest)
        except OSError:
            shutil.copyfile(mount.source, dest)
            dest.chmod(0o444)


@dataclass
class Handed:
    """A job given to a warm container: the container, its output from the hand-over on, and
    the marker its runner writes on both streams once the job is over (``endmark``)."""

    container_id: str
    stream: Stream
    end_marker: bytes
    cpu_before_s: float | None = None  # the container's CPU seconds just before the hand-over


def hand_over(
    wc: WarmContainer, fd: int, *, spec: ContainerSpec, ws: Workspace, runner: DockerRunner
) -> Handed:
    """Give the job of ``spec`` (its cold spec) to the waiting container: folder in place,
    output attached (unless it already is), then argv, per-job variables and the end marker
    through the FIFO."""
    try:
        folder = wc.folder
        (folder / "params.json").chmod(0o644)
        with open(folder / "params.json", "r+b") as fh:  # in place: the bind mount keeps it
            fh.truncate(0)
            fh.write(ws.params_file.read_bytes())
        (folder / "params.json").chmod(0o444)
        shutil.copyfile(ws.root / "lease.json", folder / "lease.json")
        _place_inputs(folder, spec)
        shutil.rmtree(ws.root)
        os.rename(folder, ws.root)
        marker = new_marker()
        ws.write_json(
            HANDOVER_FILE,
            {
                "container_id": wc.id,
                "handed_over_at": _docker_time(datetime.now(UTC)),
                "end_marker": marker.decode(),
            },
        )
        stream = wc.stream if wc.stream is not None else runner.attach(wc.id, past=False)
        job = {
            "argv": spec.command,
            "env": {k: spec.environment[k] for k in PER_JOB_ENV},
            "end": marker.decode(),
        }
        data = memoryview(json.dumps(job).encode())
        cpu_before_s = container_cpu_s(wc.id)  # the job's CPU is counted from here
        while data:
            data = data[os.write(fd, data) :]
    finally:
        os.close(fd)
    return Handed(container_id=wc.id, stream=stream, end_marker=marker, cpu_before_s=cpu_before_s)


def exit_status(ws: Workspace) -> int | None:
    """The status the warm runner wrote when its job ended (None: it wrote none)."""
    try:
        text = (ws.root / "warm" / "exit").read_text().strip()
    except OSError:
        return None
    return int(text) if text.isdigit() else None


def end_marker(ws: Workspace) -> bytes | None:
    """The end marker of the warm job in ``ws`` (None for a cold one)."""
    data = ws.read_json(HANDOVER_FILE) or {}
    marker = data.get("end_marker")
    return marker.encode() if isinstance(marker, str) and marker else None


def warm_job(ws: Workspace) -> bool:
    """Whether the job in ``ws`` was handed to a warm container."""
    return ws.read_json(HANDOVER_FILE) is not None
