"""Scripts and their immutable, digest-pinned versions."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

from pydantic import AliasChoices, Field, field_validator

from hq.schemas.common import Model, ReadModel
from hq.schemas.manifest import Manifest

DIGEST_RE = re.compile(r"^sha256:[0-9a-f]{64}$")


class ScriptVersionCreate(Model):
    image: str = Field(
        min_length=1, max_length=512, description="image reference, e.g. registry/name:tag"
    )
    digest: str = Field(description="the image's content digest, sha256:<64 hex>")
    manifest: Manifest

    @field_validator("digest")
    @classmethod
    def _digest(cls, value: str) -> str:
        if not DIGEST_RE.match(value):
            raise ValueError("digest must be 'sha256:' followed by 64 lowercase hex digits")
        return value


class ScriptVersionPublish(Model):
    """``ScriptVersionCreate`` as a client sends it: the manifest as JSON, unchecked, so that a
    hand-written one is judged by HQ (its 422 names the field), never half-checked here."""

    image: str
    digest: str
    manifest: dict[str, Any]


class ScriptVersionRead(ReadModel):
    script: str = Field(validation_alias=AliasChoices("script", "script_name"))
    version: int
    image: str
    digest: str
    manifest: Manifest
    created_at: datetime

    @property
    def image_ref(self) -> str:
        """The image pinned by digest: what an agent pulls and runs."""
        repo = self.image.split("@", 1)[0]
        last = repo.rsplit("/", 1)[-1]
        if ":" in last:
            repo = repo[: len(repo) - len(last)] + last.split(":", 1)[0]
        return f"{repo}@{self.digest}"


class ScriptRead(ReadModel):
    name: str
    description: str
    created_at: datetime
    latest_version: int | None = None
    versions: list[ScriptVersionRead] = Field(default_factory=list)
