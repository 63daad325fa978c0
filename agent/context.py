"""What every job on one agent shares."""

from __future__ import annotations

import threading
from dataclasses import dataclass

from agent.cache import InputCache
from agent.docker_runner import DockerRunner
from agent.settings import AgentSettings
from agent.warm.pool import WarmPools
from hq.client import HQClient


@dataclass
class AgentContext:
    settings: AgentSettings
    client: HQClient
    runner: DockerRunner
    cache: InputCache
    stopping: threading.Event  # a hard stop: give up retrying, leave everything for next life
    warm: WarmPools | None = None  # warm containers (agent/warm), None when off
