"""Health and tokens: is HQ up, and who may do what."""

from __future__ import annotations

from hq.client._base import BaseClient
from hq.schemas.common import Health, Role
from hq.schemas.tokens import TokenCreate, TokenCreated, TokenRead


class TokensClient(BaseClient):
    def health(self) -> Health:
        return self._json("GET", "/api/v1/health", Health)

    def create_token(self, *, name: str, role: str) -> TokenCreated:
        body = TokenCreate(name=name, role=Role(role))
        return self._json("POST", "/api/v1/tokens", TokenCreated, body=body)

    def whoami(self) -> TokenRead:
        """The name and role of this client's own token."""
        return self._json("GET", "/api/v1/tokens/me", TokenRead)

    def list_tokens(self) -> list[TokenRead]:
        return self._list("/api/v1/tokens", TokenRead)

    def revoke_token(self, token_id: str) -> TokenRead:
        """Revoke a token at once; revoking it again is a no-op."""
        return self._json("POST", f"/api/v1/tokens/{token_id}/revoke", TokenRead)
