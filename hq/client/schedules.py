"""Schedules: jobs and sweeps submitted on a cron expression or an interval, and their runs."""

from __future__ import annotations

from typing import Any

from hq.client._base import BaseClient, build, query
from hq.schemas.common import Page
from hq.schemas.schedules import ScheduleCreate, ScheduleRead, ScheduleRunRead


class SchedulesClient(BaseClient):
    def create_schedule(
        self, schedule: ScheduleCreate | None = None, **fields: Any
    ) -> ScheduleRead:
        body = schedule if schedule is not None else build(ScheduleCreate, fields)
        return self._json("POST", "/api/v1/schedules", ScheduleRead, body=body)

    def list_schedules(self, *, limit: int = 50, cursor: str | None = None) -> Page[ScheduleRead]:
        """Schedules, newest first, each with its next slot and its last run."""
        params = query(limit=limit, cursor=cursor)
        return self._json("GET", "/api/v1/schedules", Page[ScheduleRead], params=params)

    def get_schedule(self, schedule_id: str) -> ScheduleRead:
        return self._json("GET", f"/api/v1/schedules/{schedule_id}", ScheduleRead)

    def schedule_runs(
        self, schedule_id: str, *, limit: int = 100, cursor: str | None = None
    ) -> Page[ScheduleRunRead]:
        """The slots it fired for, newest first, with the job or sweep each submitted."""
        return self._json(
            "GET",
            f"/api/v1/schedules/{schedule_id}/runs",
            Page[ScheduleRunRead],
            params=query(limit=limit, cursor=cursor),
        )

    def pause_schedule(self, schedule_id: str) -> ScheduleRead:
        return self._json("POST", f"/api/v1/schedules/{schedule_id}/pause", ScheduleRead)

    def resume_schedule(self, schedule_id: str) -> ScheduleRead:
        return self._json("POST", f"/api/v1/schedules/{schedule_id}/resume", ScheduleRead)

    def delete_schedule(self, schedule_id: str) -> None:
        self._request("DELETE", f"/api/v1/schedules/{schedule_id}")
