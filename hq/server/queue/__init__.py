"""The job queue: the only home of the claim, lease and reap SQL.

Claiming is one statement: a CTE picks up to ``capacity`` queued jobs the agent can run (queue,
labels, GPUs, ``run_after``), ordered by priority then age, ``FOR UPDATE SKIP LOCKED`` on
PostgreSQL; the UPDATE turns them into leases. On SQLite the same statement runs inside a
``BEGIN IMMEDIATE`` transaction (see ``db/session.py``), which makes it the only writer.

Lease fencing: every claim writes a fresh random ``lease_token``; heartbeats and ``complete`` must
present it. A completed job remembers the token that completed it, so a retried ``complete`` with
that token gets the first answer instead of a 409.

One module per concept: ``claim`` (the claim statement), ``lease`` (fencing, renewal, the end of
an attempt), ``reap`` (expired leases, timeouts, backoff). Callers import this package
(``from hq.server import queue``); every function flushes and leaves the commit to its caller.
"""

from __future__ import annotations

import uuid

from hq.server.queue import ends
from hq.server.queue.budget import enforce_sweep_budgets
from hq.server.queue.claim import claim_jobs
from hq.server.queue.lease import (
    Finishes,
    Leases,
    check_lease,
    finish,
    get_leased_job,
    load_leases,
    renew_lease,
)
from hq.server.queue.reap import (
    LOST_REASON,
    REAP_BATCH,
    ReapResult,
    due_since,
    extend_running_leases,
    reap,
)
from hq.server.queue.retry import Backoff, end_attempt, retry_class


def new_job_id() -> str:
    return str(uuid.uuid4())


__all__ = [
    "LOST_REASON",
    "REAP_BATCH",
    "Backoff",
    "Finishes",
    "Leases",
    "ReapResult",
    "check_lease",
    "claim_jobs",
    "due_since",
    "end_attempt",
    "ends",
    "enforce_sweep_budgets",
    "extend_running_leases",
    "finish",
    "get_leased_job",
    "load_leases",
    "new_job_id",
    "reap",
    "renew_lease",
    "retry_class",
]
