"""A job's folder on the agent host: ``<work_dir>/jobs/<job>-<attempt>/``.

It holds ``lease.json`` (the lease, so a restarted agent can settle the job), ``params.json``
(bound read-only at ``/hq/params.json``), ``outputs/`` (bound read-write at ``/hq/outputs``) and,
once the container has ended, ``final.json`` (status, exit code and reason). The folder stays until
HQ has acknowledged the result, so a finished job's outputs survive an HQ outage or an agent crash.

Collecting outputs never follows a symlink: only regular files, found with ``lstat`` and opened with
``O_NOFOLLOW``, become artifacts, so a script cannot smuggle a host file out of ``/hq/outputs``.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from agent.final import Final
from hq.client import sha256_stream
from hq.schemas.agents import (
    INLINE_ARTIFACT_BYTES,
    INLINE_TOTAL_BYTES,
    Lease,
    ReportedArtifact,
)
from hq.schemas.command import expand_command, expand_env
from hq.schemas.results import MAX_RESULTS_BYTES, Results

log = logging.getLogger(__name__)

RESULTS_FILE = "results.json"
INPUTS_ROOT = "/hq/inputs"
OUTPUTS_DIR = "/hq/outputs"
PARAMS_FILE = "/hq/params.json"


@dataclass
class Collected:
    artifacts: list[ReportedArtifact]
    skipped: list[str]


def input_target(name: str, filename: str) -> str:
    return f"{INPUTS_ROOT}/{name}/{filename}"


def _input_paths(lease: Lease) -> dict[str, str]:
    return {i.name: input_target(i.name, i.filename) for i in lease.inputs}


def substitute(lease: Lease) -> list[str]:
    """The job's argv: the manifest's command expanded (``hq.schemas.command``, the same
    expansion the server checks at publish). Each item is one argument: no shell is involved."""
    return expand_command(lease.manifest.command, params=lease.params, inputs=_input_paths(lease))


def script_env(lease: Lease) -> dict[str, str]:
    """The manifest's ``env`` for this job: a variable naming an unset param is left out."""
    return expand_env(lease.manifest.env, params=lease.params, inputs=_input_paths(lease))


class Workspace:
    """One attempt's folder."""

    def __init__(self, root: Path) -> None:
        self.root = root

    @classmethod
    def for_lease(cls, jobs_dir: Path, lease: Lease) -> Workspace:
        return cls(jobs_dir / f"{lease.job_id}-{lease.attempt}")

    @property
    def outputs(self) -> Path:
        return self.root / "outputs"

    @property
    def params_file(self) -> Path:
        return self.root / "params.json"

    def prepare(self, lease: Lease, *, uid: int, gid: int) -> None:
        """Write lease and params, and make ``outputs/`` writable by the script's user."""
        if self.root.exists():  # a crashed earlier try of this same attempt
            shutil.rmtree(self.root)
        self.outputs.mkdir(parents=True)
        self.write_text("lease.json", lease.model_dump_json())
        self.params_file.write_text(json.dumps(lease.params, indent=2, sort_keys=True))
        self.params_file.chmod(0o444)
        if os.geteuid() == 0:
            os.chown(self.outputs, uid, gid)
        else:  # a non-root agent cannot chown: let any uid write, as the folder is private
            self.outputs.chmod(0o777)

    def write_json(self, name: str, value: dict[str, Any]) -> None:
        self.write_text(name, json.dumps(value, indent=2, sort_keys=True))

    def write_text(self, name: str, text: str) -> None:
        """``name`` in the folder, whole or not at all (written aside, then renamed)."""
        tmp = self.root / f".{name}.tmp"
        tmp.write_text(text)
        tmp.replace(self.root / name)

    def read_json(self, name: str) -> dict[str, Any] | None:
        try:
            data = json.loads((self.root / name).read_text())
        except (FileNotFoundError, ValueError):
            return None
        return data if isinstance(data, dict) else None

    def lease(self) -> Lease | None:
        data = self.read_json("lease.json")
        return Lease.model_validate(data) if data else None

    def final(self) -> Final | None:
        data = self.read_json("final.json")
        return Final.from_json(data) if data else None

    def save_final(self, final: Final) -> None:
        self.write_json("final.json", final.to_json())

    def remove(self) -> None:
        shutil.rmtree(self.root, ignore_errors=True)

    # -- outputs --------------------------------------------------------------------------
    def collect(self, *, max_files: int, max_file_bytes: int) -> Collected:
        """Regular files under ``outputs/``, hashed; symlinks and special files are skipped.
        Small files come with their bytes (``INLINE_ARTIFACT_BYTES`` each, ``INLINE_TOTAL_BYTES``
        in all, first come), which HQ then takes with ``complete``: no upload."""
        artifacts: list[ReportedArtifact] = []
        inline_left = INLINE_TOTAL_BYTES
        skipped: list[str] = []
        stack = [(self.outputs, "")]
        while stack:
            folder, prefix = stack.pop()
            try:
                entries = sorted(os.scandir(folder), key=lambda e: e.name)
            except OSError as exc:
                skipped.append(f"{prefix or '.'}: {exc.strerror}")
                continue
            for entry in entries:
                rel = f"{prefix}{entry.name}"
                st = os.lstat(entry.path)
                if stat.S_ISDIR(st.st_mode):
                    stack.append((Path(entry.path), rel + "/"))
                    continue
                reason = self._refuse(
                    rel,
                    st,
                    count=len(artifacts),
                    max_files=max_files,
                    max_file_bytes=max_file_bytes,
                )
                if reason:
                    skipped.append(f"{rel}: {reason}")
                    continue
                found = _artifact(Path(entry.path), rel, st.st_size, inline_left=inline_left)
                if found is None:
                    skipped.append(f"{rel}: not a regular file")
                    continue
                artifacts.append(found)
                inline_left -= found.size if found.data is not None else 0
        artifacts.sort(key=lambda a: a.path)
        return Collected(artifacts=artifacts, skipped=skipped)

    @staticmethod
    def _refuse(
        rel: str, st: os.stat_result, *, count: int, max_files: int, max_file_bytes: int
    ) -> str | None:
        if stat.S_ISLNK(st.st_mode):
            return "a symlink (never followed)"
        if not stat.S_ISREG(st.st_mode):
            return "not a regular file"
        try:
            rel.encode("utf-8")
        except UnicodeEncodeError:
            return "the name is not valid UTF-8"
        if len(rel) > 1024:
            return "the path is longer than 1024 characters"
        if st.st_size > max_file_bytes:
            return f"{st.st_size} bytes is over the {max_file_bytes}-byte limit"
        if count >= max_files:
            return f"more than {max_files} files"
        return None

    def read_results(self, artifacts: list[ReportedArtifact]) -> tuple[Results | None, str | None]:
        """``results.json`` checked against the results schema: (results, error)."""
        entry = next((a for a in artifacts if a.path == RESULTS_FILE), None)
        if entry is None:
            return None, None
        if entry.size > MAX_RESULTS_BYTES:
            return None, f"{entry.size} bytes is over the {MAX_RESULTS_BYTES}-byte limit"
        raw = _read_nofollow(self.outputs / RESULTS_FILE, MAX_RESULTS_BYTES)
        if raw is None:
            return None, "not a regular file"
        try:
            results = Results.model_validate_json(raw)
            results.check_tables_referenced()
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first["loc"]) or "(root)"
            return None, f"{where}: {first['msg']}"
        except ValueError as exc:
            return None, str(exc)
        return results, None


def _open_nofollow(path: Path) -> int | None:
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError:
        return None
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        return None
    return fd


def _artifact(path: Path, rel: str, size: int, *, inline_left: int) -> ReportedArtifact | None:
    """The file as an artifact: with its bytes when it is small enough to go inline."""
    limit = min(INLINE_ARTIFACT_BYTES, inline_left)
    if size <= limit:
        content = _read_nofollow(path, limit)
        if content is None:
            return None
        if len(content) <= limit:  # else it grew since its lstat: hashed as a large one
            return ReportedArtifact.inline(path=rel, content=content)
    digest = _hash_nofollow(path)
    return None if digest is None else ReportedArtifact(path=rel, size=size, sha256=digest)


def _hash_nofollow(path: Path) -> str | None:
    fd = _open_nofollow(path)
    if fd is None:
        return None
    with os.fdopen(fd, "rb") as fh:
        return sha256_stream(fh)


def _read_nofollow(path: Path, limit: int) -> bytes | None:
    fd = _open_nofollow(path)
    if fd is None:
        return None
    with os.fdopen(fd, "rb") as fh:
        return fh.read(limit + 1)
