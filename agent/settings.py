"""The agent's settings (prefix ``HQ_``), built once by ``get_settings()`` and passed in."""

from __future__ import annotations

import socket
from functools import lru_cache
from pathlib import Path
from typing import Literal
from zoneinfo import ZoneInfo

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from agent.cache import DEFAULT_MAX_BYTES
from agent.freehost import Policy, parse_windows
from hq.schemas.agents import MAX_CLAIM_WAIT_SECONDS
from hq.schemas.resources import parse_memory_bytes


class AgentSettings(BaseSettings):
    """Where HQ is, who this agent is, how much it runs at once and where it keeps its files.

    ``agent_labels`` and ``agent_queues`` are comma-separated in the environment
    (``HQ_AGENT_LABELS=gpu,mem-32g``).
    """

    model_config = SettingsConfigDict(env_prefix="HQ_", extra="ignore")

    url: str = "http://127.0.0.1:8080"
    token: str | None = None
    agent_name: str = Field(default_factory=socket.gethostname, min_length=1, max_length=128)
    agent_labels: str = ""
    agent_queues: str = "default"
    agent_capacity: int = Field(default=1, ge=1, le=256)
    agent_gpus: int = Field(default=0, ge=0, le=64)
    home: Path = Field(default_factory=lambda: Path.home() / ".hq")
    agent_work_dir: Path | None = None  # default: <home>/agent
    claim_wait_s: float = Field(default=20.0, gt=0, le=MAX_CLAIM_WAIT_SECONDS)
    # Cancel requests ride on heartbeats, so this bounds how fast a cancel kills a container.
    heartbeat_interval_s: float = Field(default=1.0, gt=0, le=60)
    log_flush_s: float = Field(default=0.5, gt=0, le=10)
    retry_max_s: float = Field(default=30.0, gt=0, le=600)
    # The uid:gid every script runs as (the base image's ``hq`` user).
    job_uid: int = Field(default=1000, ge=1)
    job_gid: int = Field(default=1000, ge=1)
    # The input cache's bound; past it, the least recently used inputs not in use go.
    agent_cache_max_bytes: int = Field(default=DEFAULT_MAX_BYTES, ge=0)
    max_artifact_bytes: int = Field(default=5 * 1024**3, ge=1)
    max_artifacts: int = Field(default=10_000, ge=1, le=10_000)
    # Extra labels on every job container, set by the operator (tests use hq.test=1), as
    # comma-separated key=value pairs. Jobs themselves can add nothing.
    agent_container_labels: str = ""
    # Warm containers (agent/warm): started containers per script version, waiting for a job.
    # 0 turns them off; the memory budget bounds the sum of their memory limits.
    agent_warm_pool: int = Field(default=1, ge=0, le=16)
    agent_warm_memory_bytes: int = Field(default=2 * 1024**3, ge=0)
    agent_warm_idle_s: float = Field(default=600.0, gt=0)
    # Free-host policy (agent/freehost.py): claim only while every rule set holds. Unset: always.
    agent_free_max_load: float | None = Field(default=None, ge=0)
    agent_free_min_memory: str | None = None  # MemAvailable at least this: 2g, 512m, bytes
    agent_free_windows: str = ""  # "mon-fri 19:00-07:00,sat-sun", in agent_free_timezone
    agent_free_timezone: str | None = None  # an IANA zone (Europe/Paris); unset: local time
    agent_free_idle_minutes: float | None = Field(default=None, ge=0)
    # When the host turns busy: let running jobs finish, or docker-pause them until it is free.
    agent_when_busy: Literal["finish", "pause"] = "finish"
    agent_free_check_s: float = Field(default=5.0, gt=0, le=300)
    # Test and ops hook: a JSON file whose values override the host's readings.
    agent_free_readings: Path | None = None

    @field_validator("agent_name", mode="before")
    @classmethod
    def _name(cls, value: object) -> object:
        return value or socket.gethostname()  # an empty HQ_AGENT_NAME (compose) means default

    @field_validator("url")
    @classmethod
    def _url(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError(f"HQ_URL {value!r} must start with http:// or https://")
        return value.rstrip("/")

    @field_validator(
        "agent_free_max_load", "agent_free_idle_minutes", "agent_free_readings", mode="before"
    )
    @classmethod
    def _empty_is_unset(cls, value: object) -> object:
        return None if value == "" else value  # HQ_AGENT_FREE_MAX_LOAD= (empty) sets no rule

    @field_validator("agent_free_min_memory")
    @classmethod
    def _min_memory(cls, value: str | None) -> str | None:
        if value:
            parse_memory_bytes(value)  # a ValueError names the bad value
        return value or None

    @field_validator("agent_free_windows")
    @classmethod
    def _windows(cls, value: str) -> str:
        parse_windows(value)
        return value.strip()

    @field_validator("agent_free_timezone")
    @classmethod
    def _zone(cls, value: str | None) -> str | None:
        if value:
            try:
                ZoneInfo(value)
            except (KeyError, ValueError) as exc:
                raise ValueError(f"HQ_AGENT_FREE_TIMEZONE {value!r} is not a known zone") from exc
        return value or None

    @property
    def free_policy(self) -> Policy:
        """The free-host policy of these settings (``Policy.active`` is False when unset)."""
        memory = self.agent_free_min_memory
        return Policy(
            max_load=self.agent_free_max_load,
            min_memory_bytes=parse_memory_bytes(memory) if memory else None,
            windows=parse_windows(self.agent_free_windows),
            windows_text=self.agent_free_windows,
            idle_minutes=self.agent_free_idle_minutes,
            zone=ZoneInfo(self.agent_free_timezone) if self.agent_free_timezone else None,
        )

    @property
    def labels(self) -> list[str]:
        return [x.strip() for x in self.agent_labels.split(",") if x.strip()]

    @property
    def queues(self) -> list[str]:
        return [x.strip() for x in self.agent_queues.split(",") if x.strip()] or ["default"]

    @property
    def work_dir(self) -> Path:
        return self.agent_work_dir or self.home / "agent"

    @property
    def cache_dir(self) -> Path:
        return self.work_dir / "cache" / "sha256"

    @property
    def jobs_dir(self) -> Path:
        return self.work_dir / "jobs"

    @property
    def warm_dir(self) -> Path:
        return self.work_dir / "warm"

    @property
    def container_labels(self) -> dict[str, str]:
        pairs = (x.strip().partition("=") for x in self.agent_container_labels.split(","))
        return {k.strip(): v.strip() for k, _, v in pairs if k.strip()}


@lru_cache(maxsize=1)
def get_settings() -> AgentSettings:
    return AgentSettings()
