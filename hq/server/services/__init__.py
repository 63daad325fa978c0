"""The services: what HQ does, between the routes (``hq.server.api``) and the tables.

The rules every module here keeps:

- **Services return schemas to routes.** A function a route calls returns an API schema
  (``JobRead``, ``Page[JobRead]``, ``AgentRead``, ...) or a schema and a flag (``(JobRead,
  created)``), built from rows with ``XRead.model_validate(row)``, or ``XRead.from_row(row,
  field=...)`` where a field is derived (counted in other rows, or computed from settings).
  Functions that hand rows to other services say so in their name or docstring
  (``get_job_row``, ``resolve``, ``prepare``, ``create_job``); routes never see a row.
- **Routes own the transaction; services flush, never commit.** A route opens
  ``session.begin()`` and calls one service in it. The exceptions open short transactions of
  their own, because one transaction must not span a wait (on SQLite a writing transaction
  holds the write lock): the long polls (``claims.claim``, ``jobs.wait_for_end``), the streams
  (``logs.follow_logs``, ``results.csv_download``), ``leases.complete`` (it hashes artifacts
  in storage between the transaction that reads the lease and the one that accepts the
  result) and ``health.check``. They take the sessionmaker instead of a session; those that
  only read take the reader (``hq.server.db.session.create_reader``), as a GET's session is.
- **Errors are ``hq.errors.HQError`` subclasses**, never ``HTTPException``: services know
  nothing of HTTP (no ``fastapi`` import; a long poll asks ``disconnected()`` whether its
  caller went away). The queue's SQL (claims, leases, reaping) lives in ``hq.server.queue``.
- Keyword-only arguments after the session.
"""
