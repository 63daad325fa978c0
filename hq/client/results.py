"""The flat table of params and metrics of a script's jobs, as JSON pages or one CSV."""

from __future__ import annotations

from collections.abc import Iterator

from hq.client._base import BaseClient, query
from hq.schemas.sweeps import ResultsTable


class ResultsClient(BaseClient):
    def results(
        self,
        *,
        script: str,
        status: str | None = "succeeded",
        job_ids: list[str] | None = None,
        limit: int = 10_000,
        cursor: str | None = None,
    ) -> ResultsTable:
        """One page of the flat table, oldest job first; ``next_cursor`` is set while more
        rows remain (``iter_results`` follows it). An empty ``status`` means any status."""
        params = query(
            script=script,
            format="json",
            limit=limit,
            status=status or None,
            jobs=job_ids or None,
            cursor=cursor or None,
        )
        return self._json("GET", "/api/v1/results", ResultsTable, params=params)

    def iter_results(
        self, *, script: str, status: str | None = "succeeded", page_rows: int = 10_000
    ) -> Iterator[ResultsTable]:
        """Every page of the flat table, in order."""
        cursor: str | None = None
        while True:
            page = self.results(script=script, status=status, limit=page_rows, cursor=cursor)
            yield page
            if page.next_cursor is None:
                return
            cursor = page.next_cursor

    def results_csv(
        self, *, script: str, status: str | None = "succeeded", limit: int | None = None
    ) -> str:
        """The whole flat table as CSV (or its oldest ``limit`` rows)."""
        params = query(script=script, format="csv", limit=limit, status=status or None)
        return self._request("GET", "/api/v1/results", params=params).text
