"""Shared pieces of the API models."""

from __future__ import annotations

import re
from contextvars import ContextVar
from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any, Generic, Self, TypeVar

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    ModelWrapValidatorHandler,
    StringConstraints,
    model_validator,
)

from hq.schemas.limits import check_text_tree

T = TypeVar("T")

# Each rule is matched whole (``fullmatch``): ``$`` alone would also match before a final "\n".
NAME_RE = re.compile(r"[a-z][a-z0-9-]{1,62}")
NAME_HELP = "names are 2-63 characters: a lowercase letter, then lowercase letters, digits or '-'"
SHA256_RE = re.compile(r"[0-9a-f]{64}")  # a file's content hash, as stored and cached
DIGEST_RE = re.compile(r"sha256:[0-9a-f]{64}")  # an image's content digest
INPUT_NAME_RE = re.compile(r"[a-z][a-z0-9_]{0,62}")  # a manifest's input names


def _check_name(value: str) -> str:
    if not NAME_RE.fullmatch(value):
        raise ValueError(f"invalid name {value!r}: {NAME_HELP}")
    return value


Name = Annotated[str, AfterValidator(_check_name)]


def is_number(text: str) -> bool:
    """``text`` is ASCII digits: what ``int()`` takes for a version or a byte count. (``'²'`` is
    ``isdigit()`` but not a number, and ``int()`` refuses it.)"""
    return text.isascii() and text.isdigit()


MAX_LABEL_CHARS = 128
# A label an agent offers and a job needs (e.g. "gpu", "mem-32g"); the database holds 128 chars.
Label = Annotated[str, StringConstraints(min_length=1, max_length=MAX_LABEL_CHARS)]
QUEUE_PATTERN = r"^[a-z][a-z0-9-]{0,62}$"  # pydantic's (Rust) regex: its "$" is the very end
QueueName = Annotated[str, StringConstraints(pattern=QUEUE_PATTERN)]
Metric = int | float  # a count stays an integer (442, not 442.0) in results, tables and CSV


_CHECKED: ContextVar[bool] = ContextVar("hq_input_checked", default=False)


class Model(BaseModel):
    """Base of all API models: unknown fields are refused, so typos surface as 422s."""

    model_config = ConfigDict(extra="forbid")

    @model_validator(mode="wrap")
    @classmethod
    def _text_and_depth(cls, data: Any, handler: ModelWrapValidatorHandler[Self]) -> Self:
        """No NUL, lone surrogate or nesting past ``MAX_DEPTH`` anywhere in what comes in: the
        outermost model checks the whole body, so the 422 names the full path, and the models
        inside it do not check their part again."""
        if _CHECKED.get():
            return handler(data)
        check_text_tree(data, title=cls.__name__)
        token = _CHECKED.set(True)
        try:
            return handler(data)
        finally:
            _CHECKED.reset(token)


class ReadModel(BaseModel):
    """Base of response models: tolerant of fields added by newer servers.

    The server builds them from its rows: ``JobRead.model_validate(row)`` reads the row's
    attributes (``from_attributes``); ``from_row`` adds the fields a row does not hold.
    """

    model_config = ConfigDict(extra="ignore", from_attributes=True)

    @model_validator(mode="wrap")
    @classmethod
    def _stored(cls, data: Any, handler: ModelWrapValidatorHandler[Self]) -> Self:
        """What HQ stored or answered is read as it is: the ``Model``s inside (a manifest, the
        results) skip the checks of what comes in, so a row stored before a check still reads."""
        token = _CHECKED.set(True)
        try:
            return handler(data)
        finally:
            _CHECKED.reset(token)

    @classmethod
    def from_row(cls, row: object, **derived: Any) -> Self:
        """``model_validate(row)``, with ``derived`` giving (or overriding) the fields the row
        does not hold: values counted in other rows or computed from settings."""
        return cls.model_validate(_RowWith(row, derived))


class _RowWith:
    """A row's attributes, with some added or replaced, for ``from_attributes`` validation."""

    def __init__(self, row: object, derived: dict[str, Any]) -> None:
        self._row = row
        self._derived = derived

    def __getattr__(self, name: str) -> Any:
        if name in self._derived:
            return self._derived[name]
        return getattr(self._row, name)


class Page(ReadModel, Generic[T]):
    """One page of a listing; pass ``next_cursor`` back as ``cursor`` for the next one."""

    items: list[T]
    next_cursor: str | None = None


class Role(StrEnum):
    admin = "admin"
    publisher = "publisher"
    submitter = "submitter"
    viewer = "viewer"
    agent = "agent"


class JobStatus(StrEnum):
    # ``waiting``: a pipeline step's job whose upstream steps have not all succeeded; never
    # claimed (the claim takes only ``queued``), queued or cancelled by the pipeline.
    waiting = "waiting"
    queued = "queued"
    running = "running"
    succeeded = "succeeded"
    failed = "failed"
    cancelled = "cancelled"
    timed_out = "timed_out"

    @property
    def finished(self) -> bool:
        return self in FINISHED_STATUSES


FINISHED_STATUSES = frozenset(
    {JobStatus.succeeded, JobStatus.failed, JobStatus.cancelled, JobStatus.timed_out}
)


class Health(ReadModel):
    status: str
    database: str
    storage: str
    version: str
    time: datetime
