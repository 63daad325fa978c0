"""``metrics_from_logs:`` in the manifest: regular expressions whose named groups turn log lines
into metrics, for scripts that only print their numbers.

Patterns are RE2 (google-re2): matching takes time linear in the line, whatever the pattern, so a
pattern can never stall a job's completion; constructs RE2 refuses (backreferences, lookaround)
are refused at publish with the reason. The agent applies the patterns (``agent/logmetrics.py``).
"""

from __future__ import annotations

import functools
import re
from typing import Any, Literal

import re2
from pydantic import Field, model_validator

from hq.schemas.common import Model

MAX_PATTERNS = 32
MAX_PATTERN_CHARS = 1000
RE2_MAX_MEM = 8 * 1024 * 1024  # per compiled pattern; RE2 refuses patterns that need more
RESERVED_PREFIX = "hq_"  # HQ's own measurements (hq_wall_s, hq_cpu_s, hq_peak_memory_mb)
GROUP_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,127}$")


def re2_options() -> Any:
    """The options every pattern is compiled with, at publish and in the agent."""
    options = re2.Options()
    options.max_mem = RE2_MAX_MEM
    options.log_errors = False  # RE2 would print its error to stderr; HQ reports it instead
    return options


@functools.lru_cache(maxsize=256)
def compile_pattern(pattern: str) -> Any:
    """The compiled RE2 pattern (remembered: every lease carries its manifest); ``ValueError``
    saying what to fix when RE2 refuses it."""
    try:
        return re2.compile(pattern, re2_options())
    except re2.error as exc:
        reason = exc.args[0] if exc.args else ""
        detail = reason.decode("utf-8", "replace") if isinstance(reason, bytes) else str(reason)
        detail = detail or "not a valid RE2 pattern"
        hint = (
            "; RE2 has no backreferences or lookaround (they can take exponential time): "
            "match the text itself, e.g. 'score: (?P<score>[0-9.]+)'"
            if "escape" in detail or "perl operator" in detail
            else ""
        )
        raise ValueError(f"pattern {pattern!r} is refused by RE2 ({detail}){hint}") from exc


class LogMetric(Model):
    """One pattern: each named group is a metric. ``keep: last`` (the default) keeps the last
    value seen; ``keep: all`` also keeps every value as a series (a table and a line chart), with
    the group named by ``x`` (or the match's count, ``step``) along the x axis."""

    pattern: str = Field(min_length=1, max_length=MAX_PATTERN_CHARS)
    keep: Literal["last", "all"] = "last"
    x: str | None = None

    @model_validator(mode="before")
    @classmethod
    def _plain_string(cls, value: Any) -> Any:
        """``- 'score: (?P<score>[0-9.]+)'`` is short for ``- {pattern: ...}``."""
        return {"pattern": value} if isinstance(value, str) else value

    @model_validator(mode="after")
    def _check(self) -> LogMetric:
        groups = self.groups
        if not groups:
            raise ValueError(
                f"pattern {self.pattern!r} has no named group: name the number it captures, "
                "e.g. 'score: (?P<score>[0-9.]+)'"
            )
        for name in groups:
            if not GROUP_NAME_RE.match(name):
                raise ValueError(f"group name {name!r} must be letters, digits and '_'")
            if name.startswith(RESERVED_PREFIX):
                raise ValueError(
                    f"group name {name!r}: names starting with {RESERVED_PREFIX!r} are HQ's "
                    "own measurements; pick another name"
                )
        if self.x is not None:
            if self.keep != "all":
                raise ValueError("x is the x axis of a series: it needs keep: all")
            if self.x not in groups:
                raise ValueError(f"x {self.x!r} is not a named group of {self.pattern!r}")
            if len(groups) < 2:
                raise ValueError(f"x {self.x!r} leaves no group to draw against it")
        return self

    @property
    def groups(self) -> list[str]:
        """The named groups, in the order they appear in the pattern."""
        index: dict[str, int] = compile_pattern(self.pattern).groupindex
        return sorted(index, key=lambda name: index[name])

    @property
    def values(self) -> list[str]:
        """The groups that are metrics (all but the x axis)."""
        return [g for g in self.groups if g != self.x]

    @property
    def table(self) -> str:
        """The name of the series table of ``keep: all``: its value groups joined by '_'."""
        return "_".join(self.values)
