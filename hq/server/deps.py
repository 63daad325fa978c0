"""Request dependencies: the session, the principal and its role, and the app's parts.

Routes take these as typed parameters (``store: StoreDep``), never ``request.app.state``: this
module is the one place that knows where the lifespan keeps them. Each is read per request, so
a test may swap one on a running app (``app.state.store = ...``). All are ``async`` on purpose:
FastAPI runs a plain ``def`` dependency in a worker thread, a hop per request.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Coroutine
from typing import Annotated, Any

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from hq import errors
from hq.schemas.common import Role
from hq.schemas.limits import text_problem
from hq.server.auth import Principal, PrincipalCache
from hq.server.metrics import Metrics
from hq.server.notify import Disconnected, Notifier
from hq.server.services import tokens as token_service
from hq.server.settings import ServerSettings
from hq.server.storage import ObjectStore

bearer = HTTPBearer(auto_error=False, description="an HQ token: 'Authorization: Bearer hq_...'")


READS = frozenset({"GET", "HEAD"})


async def get_session(request: Request) -> AsyncIterator[AsyncSession]:
    """The request's session: a reader for a GET or HEAD (``hq.server.db.session``), which
    raises if the route writes."""
    state = request.app.state
    sessionmaker = state.reader if request.method in READS else state.sessionmaker
    async with sessionmaker() as session:
        yield session


SessionDep = Annotated[AsyncSession, Depends(get_session)]


async def get_sessionmaker(request: Request) -> async_sessionmaker[AsyncSession]:
    """For services that open short transactions of their own (long polls, streams)."""
    sessionmaker: async_sessionmaker[AsyncSession] = request.app.state.sessionmaker
    return sessionmaker


SessionmakerDep = Annotated[async_sessionmaker[AsyncSession], Depends(get_sessionmaker)]


async def get_reader(request: Request) -> async_sessionmaker[AsyncSession]:
    """Short read-only sessions, for the looks of a wait or a stream."""
    reader: async_sessionmaker[AsyncSession] = request.app.state.reader
    return reader


ReaderDep = Annotated[async_sessionmaker[AsyncSession], Depends(get_reader)]


async def get_server_settings(request: Request) -> ServerSettings:
    settings: ServerSettings = request.app.state.settings
    return settings


SettingsDep = Annotated[ServerSettings, Depends(get_server_settings)]


async def get_notifier(request: Request) -> Notifier:
    notifier: Notifier = request.app.state.notifier
    return notifier


NotifierDep = Annotated[Notifier, Depends(get_notifier)]


async def get_metrics(request: Request) -> Metrics:
    metrics: Metrics = request.app.state.metrics
    return metrics


MetricsDep = Annotated[Metrics, Depends(get_metrics)]


async def get_disconnected(request: Request) -> Disconnected:
    """How a long poll asks whether its caller went away (nobody would read the answer)."""
    return request.is_disconnected


DisconnectedDep = Annotated[Disconnected, Depends(get_disconnected)]


# Where ``edge.gate.TokenGate`` leaves the principal it found for this request.
PRINCIPAL_KEY = "hq.principal"


async def principal_for(request: Request, token: str) -> Principal:
    """Who ``token`` belongs to: the in-process cache (``hq.server.auth``), the database on a
    miss. Raises NotAuthenticated for an unknown or revoked token."""
    cache: PrincipalCache = request.app.state.principals
    token_hash = token_service.hash_token(token)
    principal = cache.get(token_hash)
    if principal is None:
        generation = cache.generation
        async with request.app.state.reader() as session:
            row = await token_service.authenticate(session, token_hash=token_hash)
        principal = Principal(token_id=row.id, name=row.name, role=Role(row.role))
        cache.put(token_hash, principal, generation=generation)
    return principal


async def get_principal(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
) -> Principal:
    """The principal the gate found before the body was read (no second lookup), else a lookup
    of its own (an app run without the edge)."""
    checked = request.scope.get(PRINCIPAL_KEY)
    if isinstance(checked, Principal):
        return checked
    if credentials is None or not credentials.credentials:
        raise errors.NotAuthenticated()
    return await principal_for(request, credentials.credentials)


def allow(*roles: Role) -> Callable[..., Coroutine[Any, Any, Principal]]:
    """A dependency admitting the given roles (admin is always admitted)."""
    allowed = {Role.admin, *roles}

    async def check(
        request: Request, principal: Annotated[Principal, Depends(get_principal)]
    ) -> Principal:
        if principal.role not in allowed:
            names = ", ".join(sorted(r.value for r in allowed))
            raise errors.Forbidden(f"role '{principal.role}' may not do this; it needs: {names}")
        check_url_text(request)
        return principal

    check.hq_roles = frozenset(allowed)  # type: ignore[attr-defined]  # read by edge.openapi
    return check


def check_url_text(request: Request) -> None:
    """A 422 for a path or query parameter HQ could not store or look up (``%00``: PostgreSQL
    refuses NUL in text), before it reaches a query. Bodies are checked by ``schemas.Model``."""
    params = [*request.path_params.items(), *request.query_params.multi_items()]
    for name, value in params:
        why = text_problem(value) if isinstance(value, str) else None
        if why is not None:
            raise errors.ValidationFailed(f"{name}: {why}", field=name)


READ_ROLES = (Role.viewer, Role.submitter, Role.publisher)
AnyRole = Annotated[Principal, Depends(allow(*Role))]
Viewer = Annotated[Principal, Depends(allow(*READ_ROLES))]
Submitter = Annotated[Principal, Depends(allow(Role.submitter))]
Uploader = Annotated[Principal, Depends(allow(Role.submitter, Role.publisher))]
Publisher = Annotated[Principal, Depends(allow(Role.publisher))]
Admin = Annotated[Principal, Depends(allow())]
AgentPrincipal = Annotated[Principal, Depends(allow(Role.agent))]


async def get_store(request: Request) -> ObjectStore:
    store: ObjectStore = request.app.state.store
    return store


StoreDep = Annotated[ObjectStore, Depends(get_store)]
