"""How a job ended, as the agent reports it, and the one mapping from a container's end to it."""

from __future__ import annotations

import errno
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hq.schemas.common import JobStatus
from hq.schemas.retries import FailureKind


@dataclass
class Final:
    """How a job ended, as the agent will report it (kept in the job folder's ``final.json``)."""

    status: JobStatus
    exit_code: int | None
    failure_reason: str | None
    kind: FailureKind | None = None  # why it failed: decides whether HQ retries it

    def to_json(self) -> dict[str, Any]:
        return {
            "status": str(self.status),
            "exit_code": self.exit_code,
            "failure_reason": self.failure_reason,
            "kind": self.kind,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Final:
        return cls(
            status=JobStatus(data["status"]),
            exit_code=data.get("exit_code"),
            failure_reason=data.get("failure_reason"),
            kind=data.get("kind"),
        )

    @classmethod
    def infrastructure(cls, kind: FailureKind, message: str) -> Final:
        """A failure that says nothing about the script (HQ retries it): ``kind: message``."""
        return cls(JobStatus.failed, None, f"{kind}: {message}", kind)


def final_from_exit(
    *, exit_code: int, oom_killed: bool, killed_for: JobStatus | None = None
) -> Final:
    """A container's end as a job's: a kill the agent made itself (``killed_for`` cancelled or
    timed_out) comes first, then an out-of-memory kill, then the exit code."""
    if killed_for is JobStatus.cancelled:
        return Final(JobStatus.cancelled, exit_code, "cancelled")
    if killed_for is JobStatus.timed_out:
        return Final(JobStatus.timed_out, exit_code, "timeout", "timeout")
    if oom_killed:
        return Final(JobStatus.failed, exit_code, "out-of-memory", "oom")
    if exit_code != 0:
        return Final(JobStatus.failed, exit_code, f"exit code {exit_code}", "exit")
    return Final(JobStatus.succeeded, 0, None)


# Less free space than this in the work folder when a script fails means the host's disk, not
# the script, is to blame (a script's own small writes need more than this).
LOW_SPACE_BYTES = 1 << 20


def free_bytes(folder: Path) -> int | None:
    """The space left for the agent in ``folder``'s filesystem (None when it cannot be read)."""
    try:
        stats = os.statvfs(folder)
    except OSError:
        return None
    return stats.f_bavail * stats.f_frsize


NO_SPACE = "No space left on device"  # strerror(ENOSPC), as a script's traceback prints it


def blame_full_disk(final: Final, *, work_dir: Path, no_space_seen: bool = False) -> Final:
    """A script that exited non-zero while the agent's work folder was full (now, or briefly
    while it ran: its output said ENOSPC) failed for the host's sake: an infrastructure
    failure, retried within ``max_attempts``."""
    if final.kind != "exit":
        return final
    free = free_bytes(work_dir)
    if not no_space_seen and (free is None or free >= LOW_SPACE_BYTES):
        return final
    return Final.infrastructure(
        "disk-full",
        f"the agent's work folder ran out of space (script output said ENOSPC: {no_space_seen}; "
        f"{free} bytes free when it exited with code {final.exit_code})",
    )


def is_disk_full(exc: BaseException) -> bool:
    """Whether the agent's own error is a full disk (ENOSPC, or EDQUOT past a quota)."""
    return isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT)
