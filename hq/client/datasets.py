"""Datasets: immutable, content-addressed versions, their lineage and their downloads."""

from __future__ import annotations

from pathlib import Path
from typing import BinaryIO

from hq.client._base import BaseClient
from hq.schemas.datasets import DatasetRead, DatasetVersionRead, Lineage, PromoteRequest


class DatasetsClient(BaseClient):
    def upload_dataset(
        self, *, name: str, path: Path, filename: str | None = None
    ) -> DatasetVersionRead:
        with path.open("rb") as fh:
            return self.upload_dataset_stream(name=name, stream=fh, filename=filename or path.name)

    def upload_dataset_stream(
        self, *, name: str, stream: BinaryIO, filename: str
    ) -> DatasetVersionRead:
        files = {"file": (filename, stream, "application/octet-stream")}
        return self._json(
            "POST",
            f"/api/v1/datasets/{name}/versions",
            DatasetVersionRead,
            files=files,
            timeout=None,
        )

    def list_datasets(self) -> list[DatasetRead]:
        return self._list("/api/v1/datasets", DatasetRead)

    def get_dataset(self, name: str) -> DatasetRead:
        return self._json("GET", f"/api/v1/datasets/{name}", DatasetRead)

    def get_dataset_version(self, name: str, version: int) -> DatasetVersionRead:
        return self._json("GET", f"/api/v1/datasets/{name}/versions/{version}", DatasetVersionRead)

    def dataset_lineage(self, name: str, version: int) -> Lineage:
        return self._json("GET", f"/api/v1/datasets/{name}/versions/{version}/lineage", Lineage)

    def dataset_download_url(self, name: str, version: int) -> str:
        return self._location(f"/api/v1/datasets/{name}/versions/{version}/download")

    def download_dataset(
        self, name: str, version: int, dest: Path, *, sha256: str | None = None
    ) -> Path:
        """Download a version to ``dest``, checked against its sha256 (IntegrityError if the
        bytes differ; ``dest`` is then not written)."""
        if sha256 is None:
            sha256 = self.get_dataset_version(name, version).sha256
        self.download_url(self.dataset_download_url(name, version), dest, sha256=sha256)
        return dest

    def promote_artifact(self, *, job_id: str, path: str, dataset: str) -> DatasetVersionRead:
        body = PromoteRequest(job_id=job_id, path=path, dataset=dataset)
        return self._json(
            "POST", f"/api/v1/datasets/{dataset}/promote", DatasetVersionRead, body=body
        )
