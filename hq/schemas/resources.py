"""A script's resources, their ceilings, and a submission's request to raise or lower them."""

from __future__ import annotations

import re

from pydantic import Field, field_validator, model_validator

from hq.schemas.common import Model

MEMORY_RE = re.compile(r"(\d+)([kmg]?)", re.IGNORECASE)
MIN_MEMORY_BYTES = 6 * 1024**2
MAX_TIMEOUT_S = 7 * 24 * 3600


def parse_memory_bytes(value: str) -> int:
    """'512m' -> bytes. Units: none (bytes), k, m, g."""
    match = MEMORY_RE.fullmatch(value.strip())
    if not match:
        raise ValueError(f"memory {value!r} must look like 512m, 2g or 1048576")
    number, unit = int(match.group(1)), match.group(2).lower()
    return number * {"": 1, "k": 1024, "m": 1024**2, "g": 1024**3}[unit]


def _check_memory(value: str | None) -> str | None:
    if value is not None and parse_memory_bytes(value) < MIN_MEMORY_BYTES:
        raise ValueError("memory must be at least 6m (Docker's minimum)")
    return value


class Resources(Model):
    cpus: float = Field(default=1.0, gt=0, le=256)
    memory: str = "512m"
    gpus: int = Field(default=0, ge=0, le=16)
    timeout_s: int = Field(default=3600, ge=1, le=MAX_TIMEOUT_S)
    pids: int = Field(default=256, ge=16, le=65536)
    # What a submission may raise each to; unset: the base value (no raise allowed).
    max_memory: str | None = None
    max_cpus: float | None = Field(default=None, gt=0, le=256)
    max_timeout_s: int | None = Field(default=None, ge=1, le=MAX_TIMEOUT_S)

    _memory = field_validator("memory", "max_memory")(_check_memory)

    @model_validator(mode="after")
    def _ceilings_above_base(self) -> Resources:
        if self.max_memory is not None and parse_memory_bytes(self.max_memory) < self.memory_bytes:
            raise ValueError(
                f"max_memory {self.max_memory} is below memory {self.memory}: "
                "a ceiling is at least the base value"
            )
        if self.max_cpus is not None and self.max_cpus < self.cpus:
            raise ValueError(f"max_cpus {self.max_cpus:g} is below cpus {self.cpus:g}")
        if self.max_timeout_s is not None and self.max_timeout_s < self.timeout_s:
            raise ValueError(
                f"max_timeout_s {self.max_timeout_s} is below timeout_s {self.timeout_s}"
            )
        return self

    @property
    def memory_bytes(self) -> int:
        return parse_memory_bytes(self.memory)

    def raised(self, request: ResourceRequest) -> Resources:
        """These resources with a submission's request applied; a ValueError naming the field
        and its ceiling when a request is above it. The ceilings stay, resolved."""
        ceiling_memory = self.max_memory or self.memory
        ceiling_cpus = self.max_cpus if self.max_cpus is not None else self.cpus
        ceiling_timeout = self.max_timeout_s if self.max_timeout_s is not None else self.timeout_s
        if request.memory is not None and parse_memory_bytes(request.memory) > parse_memory_bytes(
            ceiling_memory
        ):
            raise ResourceAboveCeiling(
                "memory",
                f"memory {request.memory} is above this script's max_memory {ceiling_memory}",
            )
        if request.cpus is not None and request.cpus > ceiling_cpus:
            raise ResourceAboveCeiling(
                "cpus", f"cpus {request.cpus:g} is above this script's max_cpus {ceiling_cpus:g}"
            )
        if request.timeout_s is not None and request.timeout_s > ceiling_timeout:
            raise ResourceAboveCeiling(
                "timeout_s",
                f"timeout_s {request.timeout_s} is above this script's max_timeout_s "
                f"{ceiling_timeout}",
            )
        return self.model_copy(
            update={
                "memory": request.memory or self.memory,
                "cpus": request.cpus if request.cpus is not None else self.cpus,
                "timeout_s": request.timeout_s or self.timeout_s,
                "max_memory": ceiling_memory,
                "max_cpus": ceiling_cpus,
                "max_timeout_s": ceiling_timeout,
            }
        )


class ResourceAboveCeiling(ValueError):
    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.message = message


class ResourceRequest(Model):
    """``resources`` of a job or sweep request: each at most the manifest's ceiling."""

    memory: str | None = Field(default=None, description="e.g. '4g'; at most max_memory")
    cpus: float | None = Field(default=None, gt=0, le=256, description="at most max_cpus")
    timeout_s: int | None = Field(
        default=None, ge=1, le=MAX_TIMEOUT_S, description="at most max_timeout_s"
    )

    _memory = field_validator("memory")(_check_memory)
