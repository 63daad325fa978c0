"""Why an attempt failed, and which failures are retried.

Infrastructure failures (the image could not be pulled, the engine failed, the container did not
start, an input could not be fetched, the agent's work folder was full, the agent or its host
was lost) say nothing about the
script: HQ retries them, with backoff, within the job's ``max_attempts``. The script's own
failures (a non-zero exit, an out-of-memory kill, a timeout) would most likely happen again:
they are retried only when the job asks (``retry_on``), at most ``max_retries`` times.
"""

from __future__ import annotations

from typing import Literal, get_args

FailureKind = Literal[
    "image-unavailable",
    "engine-error",
    "start-failed",
    "input-unavailable",
    "disk-full",
    "agent-error",
    "lost",
    "exit",
    "oom",
    "timeout",
]
RetryOn = Literal["oom", "timeout", "exit"]

SCRIPT_KINDS: frozenset[str] = frozenset(get_args(RetryOn))
INFRA_KINDS: frozenset[str] = frozenset(get_args(FailureKind)) - SCRIPT_KINDS
MAX_RETRIES = 20


def is_infrastructure(kind: str | None) -> bool:
    """Whether a failure of this kind says nothing about the script (HQ retries it)."""
    return kind in INFRA_KINDS
