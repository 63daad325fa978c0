"""The manifest's ``warm:`` section: whether and how an agent keeps warm containers of a script."""

from __future__ import annotations

import re

from pydantic import Field, field_validator

from hq.schemas.common import Model

MODULE_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$")


class Warm(Model):
    """``warm: {preload: [pandas, sklearn.linear_model]}``; ``warm: {enabled: false}`` opts out.

    With no ``preload`` list, a warm container imports what the script imports at its top level
    (modules outside the script's own folder)."""

    enabled: bool = True
    preload: list[str] | None = Field(default=None, max_length=256)

    @field_validator("preload")
    @classmethod
    def _modules(cls, value: list[str] | None) -> list[str] | None:
        for name in value or []:
            if not MODULE_RE.match(name):
                raise ValueError(f"preload entry {name!r} must be a module name like pandas.io")
        return value
