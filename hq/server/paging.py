"""Keyset pagination: opaque cursors over (sort value, id)."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any, TypeVar

from sqlalchemy import ColumnElement, and_, or_

from hq import errors
from hq.schemas.limits import INT32_MAX, INT32_MIN, text_problem, time_in_range

T = TypeVar("T")

BAD_CURSOR = "cursor is not valid: pass next_cursor from the previous page unchanged"


def encode_cursor(*, sort: str, value: Any, last_id: str) -> str:
    if isinstance(value, datetime):
        value = {"t": value.isoformat()}
    raw = json.dumps([sort, value, last_id], separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(
    cursor: str, *, sort: str, value_types: tuple[type, ...] | None = None
) -> tuple[Any, str]:
    """The (value, id) a cursor holds; ``value_types`` are the types the sort column allows, so a
    forged cursor gets a 400 instead of reaching the database."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        cursor_sort, value, last_id = json.loads(raw)
        if isinstance(value, dict):
            value = datetime.fromisoformat(value["t"])
            if value.tzinfo is None:  # HQ writes UTC times; a naive one is forged
                raise ValueError(value)
            time_in_range(value)
        if isinstance(value, int) and not INT32_MIN <= value <= INT32_MAX:  # forged: no row has it
            raise ValueError(value)
        if not isinstance(last_id, str):
            raise TypeError(last_id)
        if any(isinstance(v, str) and text_problem(v) for v in (value, last_id)):  # NUL, \ud800
            raise ValueError(last_id)
        if value_types is not None and not isinstance(value, value_types):
            raise TypeError(value)
    except (ValueError, TypeError, KeyError) as exc:
        raise errors.BadRequest(BAD_CURSOR, field="cursor") from exc
    if cursor_sort != sort:
        raise errors.BadRequest(
            f"this cursor belongs to sort={cursor_sort!r}, not {sort!r}", field="cursor"
        )
    return value, last_id


def after(
    column: Any, id_column: Any, *, value: Any, last_id: str, descending: bool
) -> ColumnElement[bool]:
    """Rows strictly after (value, last_id) in the page order."""
    if descending:
        return or_(column < value, and_(column == value, id_column < last_id))
    return or_(column > value, and_(column == value, id_column > last_id))


def cut_page(
    rows: Sequence[T], limit: int, *, sort: str, key: Callable[[T], tuple[Any, str]]
) -> tuple[list[T], str | None]:
    """The first ``limit`` of ``rows`` (fetched with ``limit + 1``), and the cursor after the
    last of them when more remain; ``key`` gives a row's (sort value, id)."""
    page = list(rows[:limit])
    if len(rows) <= limit:
        return page, None
    value, last_id = key(page[-1])
    return page, encode_cursor(sort=sort, value=value, last_id=last_id)
