"""Tokens (admin only): create one for a role, shown once; list them; revoke one."""

from __future__ import annotations

from fastapi import APIRouter, status

from hq.schemas.tokens import TokenCreate, TokenCreated, TokenRead
from hq.server.deps import Admin, AnyRole, SessionDep
from hq.server.services import tokens as token_service

router = APIRouter(prefix="/api/v1/tokens", tags=["tokens"])


@router.post("", status_code=status.HTTP_201_CREATED, response_model=TokenCreated)
async def create_token(body: TokenCreate, session: SessionDep, _: Admin) -> TokenCreated:
    async with session.begin():
        return await token_service.create_token(session, name=body.name, role=body.role)


@router.get("", response_model=list[TokenRead])
async def list_tokens(session: SessionDep, _: Admin) -> list[TokenRead]:
    return await token_service.list_tokens(session)


@router.get("/me", response_model=TokenRead)
async def whoami(session: SessionDep, principal: AnyRole) -> TokenRead:
    """The caller's own token: its name and role (never the secret)."""
    return await token_service.get_token(session, token_id=principal.token_id)


@router.post("/{token_id}/revoke", response_model=TokenRead)
async def revoke_token(token_id: str, session: SessionDep, _: Admin) -> TokenRead:
    """Revoke a token: every request with it gets 401 from now on. Revoking twice is a no-op."""
    async with session.begin():
        return await token_service.revoke_token(session, token_id=token_id)
