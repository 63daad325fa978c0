"""Caps on what one request can make HQ store: params per job, and per sweep over all its jobs.

A sweep copies its fixed params into every job it expands to, so a small request could grow the
database by a thousand times its size; each job's params are also sent whole in every listing.
Sizes are of the params as canonical JSON (what the database holds). Refusals are 413s that name
the setting and say what to do instead (large values belong in a dataset input).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from hq import errors
from hq.server.services.params import canonical

HINT = "pass large values as a dataset input (inputs=...) instead of params"


def params_bytes(params: dict[str, Any]) -> int:
    return len(canonical(params).encode())


def check_job_params(params: dict[str, Any], *, max_bytes: int, what: str = "params") -> int:
    """The serialized size of ``params``; PayloadTooLarge past ``max_bytes``."""
    size = params_bytes(params)
    if size > max_bytes:
        raise errors.PayloadTooLarge(
            f"{what} are {size} bytes as JSON; a job's may be at most {max_bytes} bytes "
            f"(HQ_MAX_PARAMS_BYTES): {HINT}",
            field="params",
        )
    return size


def check_sweep_params(
    fixed: dict[str, Any], *, jobs: int, max_job_bytes: int, max_total_bytes: int
) -> None:
    """Before expanding: the fixed params alone, times the jobs, must fit the sweep's cap."""
    size = check_job_params(fixed, max_bytes=max_job_bytes, what="the sweep's fixed params")
    _check_total(size * jobs, jobs=jobs, max_total_bytes=max_total_bytes)


def check_sweep_points(
    points: Sequence[dict[str, Any]], *, repeats: int, max_job_bytes: int, max_total_bytes: int
) -> None:
    """After expanding: each point as one job's params, and all the jobs' together."""
    total = 0
    for i, point in enumerate(points):
        total += check_job_params(point, max_bytes=max_job_bytes, what=f"sweep point {i}'s params")
    _check_total(total * repeats, jobs=len(points) * repeats, max_total_bytes=max_total_bytes)


def _check_total(total: int, *, jobs: int, max_total_bytes: int) -> None:
    if total > max_total_bytes:
        raise errors.PayloadTooLarge(
            f"this sweep's {jobs} jobs would store {total} bytes of params; a sweep may store "
            f"at most {max_total_bytes} (HQ_MAX_SWEEP_PARAMS_BYTES): sweep fewer points, or "
            f"{HINT}",
            field="params",
        )
