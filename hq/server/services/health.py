"""Health: whether the database and the object store answer (the one check with no token)."""

from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from hq.schemas.common import Health
from hq.server.db.types import utcnow
from hq.server.storage import ObjectStore

VERSION = "0.1.0"


async def check(*, sessionmaker: async_sessionmaker[AsyncSession], store: ObjectStore) -> Health:
    """Each part's status, "ok" or the error it raised; it opens its own session, so that a
    database that cannot even be reached is reported, not raised."""
    database = storage = "ok"
    try:
        async with sessionmaker() as session:
            await session.execute(text("SELECT 1"))
    except Exception as exc:
        database = f"error: {type(exc).__name__}"
    try:
        await store.check()
    except Exception as exc:
        storage = f"error: {type(exc).__name__}"
    return Health(
        status="ok" if database == storage == "ok" else "degraded",
        database=database,
        storage=storage,
        version=VERSION,
        time=utcnow(),
    )
