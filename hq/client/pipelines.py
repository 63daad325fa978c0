"""Pipelines: submit a spec of steps, read one or a page, cancel, wait for the end."""

from __future__ import annotations

import time
from typing import Any

from hq.client._base import BaseClient, build, query
from hq.schemas.common import Page
from hq.schemas.pipelines import PipelineCreate, PipelineRead

PIPELINE_POLL_SECONDS = 0.5


class PipelinesClient:
    """``client.pipelines``: the pipeline calls, on the client's own connection pool."""

    def __init__(self, base: BaseClient) -> None:
        self._base = base

    def submit(self, pipeline: PipelineCreate | None = None, **fields: Any) -> PipelineRead:
        body = pipeline if pipeline is not None else build(PipelineCreate, fields)
        return self._base._json("POST", "/api/v1/pipelines", PipelineRead, body=body)

    def get(self, pipeline_id: str) -> PipelineRead:
        return self._base._json("GET", f"/api/v1/pipelines/{pipeline_id}", PipelineRead)

    def list(self, *, limit: int = 50, cursor: str | None = None) -> Page[PipelineRead]:
        """Pipelines, newest first."""
        params = query(limit=limit, cursor=cursor)
        return self._base._json("GET", "/api/v1/pipelines", Page[PipelineRead], params=params)

    def cancel(self, pipeline_id: str) -> PipelineRead:
        return self._base._json("POST", f"/api/v1/pipelines/{pipeline_id}/cancel", PipelineRead)

    def wait(
        self, pipeline_id: str, *, timeout_s: float, poll_s: float = PIPELINE_POLL_SECONDS
    ) -> PipelineRead:
        """The pipeline once every step is final, or as it stands after ``timeout_s``."""
        deadline = time.monotonic() + timeout_s
        while True:
            pipeline = self.get(pipeline_id)
            left = deadline - time.monotonic()
            if pipeline.finished or left <= 0:
                return pipeline
            time.sleep(min(poll_s, left))
