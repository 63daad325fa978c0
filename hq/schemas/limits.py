"""The bounds every value that comes in must keep, so no input reaches the database or the
standard library out of range (a 500): nesting depth, text HQ can store, times and integers.

Each bound is one constant here and its 422 says the range.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, Field, ValidationError
from pydantic_core import InitErrorDetails, PydanticCustomError

MAX_DEPTH = 64  # lists and objects inside each other, counted from the request body
INT32_MIN, INT32_MAX = -(2**31), 2**31 - 1  # what an INTEGER column holds on both databases
TIME_MIN = datetime(1970, 1, 1, tzinfo=UTC)
TIME_MAX = datetime(9999, 1, 1, tzinfo=UTC)
TIME_RANGE = "from 1970-01-01T00:00:00Z to 9999-01-01T00:00:00Z"

Int32 = Annotated[int, Field(ge=INT32_MIN, le=INT32_MAX)]


def text_problem(text: str) -> str | None:
    """Why ``text`` cannot be stored (PostgreSQL refuses NUL; a lone surrogate is not Unicode
    and cannot be encoded), or None."""
    if "\x00" in text:
        return "contains a NUL character (\\u0000), which HQ cannot store; remove it"
    if text.isascii():
        return None
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        code = ord(text[exc.start])
        return (
            f"contains a lone surrogate (\\u{code:04x}) at character {exc.start}, which is not "
            "valid Unicode; send UTF-8, or a \\ud8xx\\udcxx pair for characters beyond U+FFFF"
        )
    return None


def time_in_range(value: datetime) -> datetime:
    """``value`` when it lies in ``TIME_RANGE`` (a time without timezone is read as UTC)."""
    try:
        utc = value.astimezone(UTC) if value.tzinfo is not None else value.replace(tzinfo=UTC)
    except (OverflowError, ValueError):  # 0001-01-01T00:00+01:00 is before year 1 in UTC
        utc = None
    if utc is None or not TIME_MIN <= utc <= TIME_MAX:
        raise ValueError(f"time {value.isoformat()} is out of range: give one {TIME_RANGE}")
    return value


Time = Annotated[datetime, AfterValidator(time_in_range)]


def _clean(value: Any, depth: int) -> bool:
    """No string in ``value`` has a problem and nothing nests past ``MAX_DEPTH`` (the fast
    path: no paths are built unless something is wrong)."""
    if isinstance(value, str):
        return "\x00" not in value and (value.isascii() or text_problem(value) is None)
    if isinstance(value, dict):
        if depth >= MAX_DEPTH:
            return False
        return all(_clean(k, depth) and _clean(v, depth + 1) for k, v in value.items())
    if isinstance(value, list | tuple):
        return depth < MAX_DEPTH and all(_clean(v, depth + 1) for v in value)
    return True


def _first_problem(data: Any) -> tuple[tuple[str | int, ...], str, str] | None:
    """(path, error type, message) of the first value past the bounds in a JSON-like tree."""
    stack: list[tuple[tuple[str | int, ...], Any]] = [((), data)]
    while stack:
        path, value = stack.pop()
        if isinstance(value, str):
            why = text_problem(value)
            if why is not None:
                return path, "text_invalid", why
        elif isinstance(value, dict | list | tuple):
            if len(path) >= MAX_DEPTH:
                why = f"is nested more than {MAX_DEPTH} levels deep; HQ takes at most {MAX_DEPTH}"
                return path[:1], "too_deep", why
            items = value.items() if isinstance(value, dict) else enumerate(value)
            for key, item in reversed(list(items)):
                if isinstance(key, str) and (why := text_problem(key)) is not None:
                    return path, "text_invalid", f"a key {why}"  # the key cannot be echoed
                stack.append(((*path, key), item))
        # numbers, None, models already validated: nothing to check
    return None


def check_text_tree(data: Any, *, title: str) -> None:
    """Raise a ``ValidationError`` at the path of the first string with a NUL or a lone
    surrogate, or of nesting past ``MAX_DEPTH``, in ``data`` (a model's raw input)."""
    if isinstance(data, BaseModel) or not isinstance(data, dict | list) or _clean(data, 0):
        return
    found = _first_problem(data)
    if found is None:
        return
    path, kind, message = found
    error = PydanticCustomError(kind, message)
    raise ValidationError.from_exception_data(
        title, [InitErrorDetails(type=error, loc=path, input=data)]
    )
