"""Scripts and their immutable, digest-pinned versions."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import AliasChoices, Field, ValidationError, field_validator
from pydantic_core import InitErrorDetails, PydanticCustomError

from hq.schemas.common import DIGEST_RE, Model, ReadModel
from hq.schemas.manifest import Manifest
from hq.schemas.params_schema import UnusableSchema, check_usable


class ScriptVersionCreate(Model):
    image: str = Field(
        min_length=1, max_length=512, description="image reference, e.g. registry/name:tag"
    )
    digest: str = Field(description="the image's content digest, sha256:<64 hex>")
    manifest: Manifest

    @field_validator("digest")
    @classmethod
    def _digest(cls, value: str) -> str:
        if not DIGEST_RE.fullmatch(value):
            raise ValueError("digest must be 'sha256:' followed by 64 lowercase hex digits")
        return value

    @field_validator("manifest")
    @classmethod
    def _usable_params(cls, value: Manifest) -> Manifest:
        """Refused at publish rather than at every submission: a schema whose ``$ref`` is
        remote or whose regex RE2 cannot run (a stored one still reads fine)."""
        try:
            check_usable(value.params)
        except UnusableSchema as exc:
            error = PydanticCustomError("params_schema_unusable", str(exc))
            loc = ("params", *exc.path)
            raise ValidationError.from_exception_data(
                cls.__name__, [InitErrorDetails(type=error, loc=loc, input=value.params)]
            ) from None
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
