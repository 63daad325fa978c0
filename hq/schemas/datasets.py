"""Datasets: immutable, content-addressed versions."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import AliasChoices, Field

from hq.schemas.common import Model, ReadModel


class DatasetVersionRead(ReadModel):
    dataset: str = Field(validation_alias=AliasChoices("dataset", "dataset_name"))
    version: int
    sha256: str
    size: int
    filename: str
    content_type: str
    rows: int | None = None
    columns: list[str] | None = None
    preview: list[dict[str, Any]] | None = None
    produced_by_job: str | None = Field(
        default=None, validation_alias=AliasChoices("produced_by_job", "produced_by_job_id")
    )
    created_at: datetime


class DatasetRead(ReadModel):
    name: str
    created_at: datetime
    latest_version: int | None = None
    versions: list[DatasetVersionRead] = Field(default_factory=list)


class Lineage(ReadModel):
    dataset: str
    version: int
    produced_by_job: str | None
    read_by_jobs: list[str]


class PromoteRequest(Model):
    job_id: str
    path: str
    dataset: str
