"""Agents: register, list, drain, and the long-poll claim that hands out leases."""

from __future__ import annotations

from hq.client._base import DEFAULT_TIMEOUT_SECONDS, BaseClient
from hq.schemas.agents import (
    AgentCreate,
    AgentRead,
    AgentState,
    ClaimRequest,
    ClaimResponse,
    CompleteAndClaim,
    CompleteAndClaimResponse,
    CompleteItem,
    WarmReport,
)


class AgentsClient(BaseClient):
    def register_agent(self, agent: AgentCreate) -> AgentRead:
        return self._json("POST", "/api/v1/agents", AgentRead, body=agent)

    def list_agents(self) -> list[AgentRead]:
        return self._list("/api/v1/agents", AgentRead)

    def drain_agent(self, agent_id: str) -> AgentRead:
        return self._json("POST", f"/api/v1/agents/{agent_id}/drain", AgentRead)

    def report_warm(self, agent_id: str, waiting: dict[str, int]) -> None:
        """The agent's warm containers waiting, per script."""
        self._request("PUT", f"/api/v1/agents/{agent_id}/warm", body=WarmReport(waiting=waiting))

    def report_state(self, agent_id: str, *, not_free: str | None, paused: int = 0) -> None:
        """Why the agent takes no work now (None: its host is free) and the jobs it paused."""
        self._request(
            "PUT",
            f"/api/v1/agents/{agent_id}/state",
            body=AgentState(not_free=not_free, paused=paused),
        )

    def claim(self, agent_id: str, *, capacity: int, wait_s: float) -> ClaimResponse:
        """Leases for up to ``capacity`` jobs, waiting up to ``wait_s`` for the first."""
        return self._json(
            "POST",
            f"/api/v1/agents/{agent_id}/claim",
            ClaimResponse,
            body=ClaimRequest(capacity=capacity, wait_s=wait_s),
            timeout=wait_s + DEFAULT_TIMEOUT_SECONDS,
        )

    def complete_and_claim(
        self, agent_id: str, items: list[CompleteItem], *, capacity: int, wait_s: float
    ) -> CompleteAndClaimResponse:
        """Report finished attempts (each answer's ``accepted`` to check), then claim the next
        leases, in one request: one round trip per batch instead of two. The results are
        committed before the claim runs; a failed request is safe to repeat (a repeated
        result gets its first answer)."""
        return self._json(
            "POST",
            f"/api/v1/agents/{agent_id}/complete-and-claim",
            CompleteAndClaimResponse,
            body=CompleteAndClaim(
                items=items, claim=ClaimRequest(capacity=capacity, wait_s=wait_s)
            ),
            timeout=wait_s + DEFAULT_TIMEOUT_SECONDS,
        )
