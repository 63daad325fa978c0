"""Bearer tokens: random, shown once, stored as sha256 hashes."""

from __future__ import annotations

import hashlib
import secrets
import uuid

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from hq import errors
from hq.schemas.common import Role
from hq.schemas.tokens import TokenCreated, TokenRead
from hq.server.db.models import Token

TOKEN_PREFIX = "hq_"


def hash_token(token: str) -> str:
    # Tokens are 256-bit random strings, so a fast hash is safe here (no dictionary to attack).
    return hashlib.sha256(token.encode()).hexdigest()


def new_token_value() -> str:
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


async def create_token(
    session: AsyncSession, *, name: str, role: Role, value: str | None = None
) -> TokenCreated:
    value = value or new_token_value()
    row = Token(id=uuid.uuid4().hex, name=name, role=role.value, hash=hash_token(value))
    session.add(row)
    await session.flush()
    return TokenCreated(id=row.id, name=row.name, role=role, created_at=row.created_at, token=value)


async def authenticate(session: AsyncSession, *, value: str) -> Token:
    row = await session.scalar(select(Token).where(Token.hash == hash_token(value)))
    if row is None or row.revoked_at is not None:
        raise errors.NotAuthenticated("invalid or revoked token")
    return row


async def list_tokens(session: AsyncSession) -> list[TokenRead]:
    rows = await session.scalars(select(Token).order_by(Token.created_at))
    return [TokenRead.model_validate(r) for r in rows]


async def has_admin(session: AsyncSession) -> bool:
    found = await session.scalar(select(Token.id).where(Token.role == Role.admin).limit(1))
    return found is not None


async def get_token(session: AsyncSession, *, token_id: str) -> TokenRead:
    row = await session.get(Token, token_id)
    if row is None:
        raise errors.NotFound(f"token {token_id} not found")
    return TokenRead.model_validate(row)
