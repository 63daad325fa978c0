"""The body of every error HQ answers (``hq.errors.HQError.to_body``), as the OpenAPI shows it."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field


class ErrorBody(BaseModel):
    code: str = Field(description="stable and machine-readable: not_found, validation_failed, ...")
    message: str = Field(description="what went wrong and what to do about it")
    field: str | None = Field(default=None, description="the request field at fault, if one is")
    details: dict[str, Any] | None = Field(default=None, description="e.g. every problem found")
    request_id: str | None = Field(
        default=None, description="on a 500: quote it when reporting (also in X-Request-ID)"
    )
