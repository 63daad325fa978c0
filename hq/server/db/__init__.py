"""The database: tables (``models``, ``automation``), sessions, types and errors."""

# Both table modules, so that whatever imports a table sees the whole metadata.
from hq.server.db import automation, models  # noqa: F401
