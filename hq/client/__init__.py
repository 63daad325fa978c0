"""The typed HTTP client for HQ's API, used by the CLI, the agent, the Dash app and the tests.

Sync (httpx). Errors come back as the ``hq.errors`` class the server raised, by its wire code.
One module per resource (``jobs``, ``sweeps``, ``scripts``, ``datasets``, ``results``,
``tokens``, ``agents``, ``leases``) on one transport (``_base``); ``HQClient`` is all of them.
"""

from __future__ import annotations

from hq.client._base import (
    CHUNK_BYTES,
    DEFAULT_TIMEOUT_SECONDS,
    BaseClient,
    build,
    query,
    raise_for_response,
    sha256_file,
    sha256_stream,
)
from hq.client.agents import AgentsClient
from hq.client.datasets import DatasetsClient
from hq.client.jobs import JobsClient
from hq.client.leases import LeaseHandle, LeasesClient
from hq.client.pipelines import PipelinesClient
from hq.client.results import ResultsClient
from hq.client.scripts import ScriptsClient
from hq.client.sweeps import SWEEP_POLL_SECONDS, SweepsClient
from hq.client.tokens import TokensClient

__all__ = [
    "CHUNK_BYTES",
    "DEFAULT_TIMEOUT_SECONDS",
    "SWEEP_POLL_SECONDS",
    "BaseClient",
    "HQClient",
    "LeaseHandle",
    "PipelinesClient",
    "build",
    "query",
    "raise_for_response",
    "sha256_file",
    "sha256_stream",
]


class HQClient(
    TokensClient,
    ScriptsClient,
    DatasetsClient,
    JobsClient,
    SweepsClient,
    ResultsClient,
    AgentsClient,
    LeasesClient,
):
    """One HQ server, one bearer token: every resource's calls on one connection pool."""

    @property
    def pipelines(self) -> PipelinesClient:
        """Pipeline calls: ``client.pipelines.submit(...)``, ``.get``, ``.list``, ``.cancel``."""
        return PipelinesClient(self)
