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
from hq.server import notify
from hq.server.auth import TOPIC
from hq.server.db.models import Token
from hq.server.db.types import utcnow

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
    return TokenCreated.from_row(row, token=value)


async def find_by_hash(session: AsyncSession, *, token_hash: str) -> Token | None:
    row: Token | None = await session.scalar(select(Token).where(Token.hash == token_hash))
    return row


async def authenticate(session: AsyncSession, *, token_hash: str) -> Token:
    row = await find_by_hash(session, token_hash=token_hash)
    if row is None or row.revoked_at is not None:
        raise errors.NotAuthenticated("invalid or revoked token")
    return row


async def revoke_token(session: AsyncSession, *, token_id: str) -> TokenRead:
    """Revoke a token at once, on every replica (see ``hq.server.auth``); a second revoke is a
    no-op. The last admin token that is not revoked cannot be revoked: nobody could mint a new
    one."""
    row = await session.get(Token, token_id, with_for_update=True)
    if row is None:
        raise errors.NotFound(f"token {token_id} not found; `hq token list` shows the ids")
    if row.revoked_at is None:
        if row.role == Role.admin.value:
            # Lock every admin token: two revokes at once cannot each leave the other as last.
            admins = await session.scalars(
                select(Token).where(Token.role == Role.admin.value).with_for_update()
            )
            if not any(a.revoked_at is None and a.id != row.id for a in admins):
                raise errors.Conflict(
                    "this is the last admin token that is not revoked; "
                    "create another admin token first (hq token create --role admin)"
                )
        row.revoked_at = utcnow()
        await notify.mark(session, TOPIC)
        await session.flush()
    return TokenRead.model_validate(row)


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
