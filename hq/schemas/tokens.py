"""Bearer tokens with roles."""

from __future__ import annotations

from datetime import datetime

from pydantic import Field

from hq.schemas.common import Model, ReadModel, Role


class TokenCreate(Model):
    name: str = Field(min_length=1, max_length=128)
    role: Role


class TokenRead(ReadModel):
    id: str
    name: str
    role: Role
    created_at: datetime
    revoked_at: datetime | None = None


class TokenCreated(TokenRead):
    token: str = Field(description="shown once; HQ keeps only its hash")
