"""Sweeps: many jobs from one grid and/or random draws, and their results as one table."""

from __future__ import annotations

import time
from typing import Any

from hq.client._base import BaseClient, build, query
from hq.schemas.common import Page
from hq.schemas.sweeps import ResultsTable, SweepCreate, SweepRead

SWEEP_POLL_SECONDS = 0.5  # wait_sweep asks this often; a sweep of jobs takes seconds at least
SWEEP_SUBMIT_TIMEOUT_SECONDS = 120.0  # a big sweep is many jobs written in one request


class SweepsClient(BaseClient):
    def submit_sweep(self, sweep: SweepCreate | None = None, **fields: Any) -> SweepRead:
        body = sweep if sweep is not None else build(SweepCreate, fields)
        return self._json(
            "POST", "/api/v1/sweeps", SweepRead, body=body, timeout=SWEEP_SUBMIT_TIMEOUT_SECONDS
        )

    def list_sweeps(
        self, *, script: str | None = None, limit: int = 50, cursor: str | None = None
    ) -> Page[SweepRead]:
        """Sweeps, newest first, each with its jobs counted by status."""
        params = query(limit=limit, script=script, cursor=cursor)
        return self._json("GET", "/api/v1/sweeps", Page[SweepRead], params=params)

    def get_sweep(self, sweep_id: str) -> SweepRead:
        return self._json("GET", f"/api/v1/sweeps/{sweep_id}", SweepRead)

    def wait_sweep(
        self, sweep_id: str, *, timeout_s: float, poll_s: float = SWEEP_POLL_SECONDS
    ) -> SweepRead:
        """The sweep once every job has ended, or as it stands after ``timeout_s``."""
        deadline = time.monotonic() + timeout_s
        while True:
            sweep = self.get_sweep(sweep_id)
            left = deadline - time.monotonic()
            if sweep.finished or left <= 0:
                return sweep
            time.sleep(min(poll_s, left))

    def sweep_results(self, sweep_id: str) -> ResultsTable:
        return self._json("GET", f"/api/v1/sweeps/{sweep_id}/results", ResultsTable)
