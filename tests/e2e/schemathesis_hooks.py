"""Schemathesis hooks for test_api_schemathesis.py (loaded through SCHEMATHESIS_HOOKS).

Long polls are bounded: a generated ``?wait=`` (a job's end), ``wait_s`` (a claim) or
``?follow=`` (a log stream) would hold a request for up to minutes, and the run must stay short.
A wait over a fraction of a second (or a claim's default wait) is cut to that fraction and a
follow turned off; a value of
the wrong type is left alone, so that its 422 is still tested. The long polls themselves are
tested in test_long_poll.py.
"""

from __future__ import annotations

from typing import Any

import schemathesis

SHORT_WAIT_S = 0.2
TRUE_WORDS = ("1", "true", "yes", "on", "t", "y")


def _long(value: Any) -> bool:
    try:
        return float(value) > SHORT_WAIT_S
    except (TypeError, ValueError):
        return False


@schemathesis.hook
def before_call(context: Any, case: Any, kwargs: dict[str, Any]) -> None:
    query, body = case.query, case.body
    if isinstance(query, dict):
        if _long(query.get("wait")):
            query["wait"] = SHORT_WAIT_S
        if str(query.get("follow", "")).lower() in TRUE_WORDS or query.get("follow") is True:
            query["follow"] = False
    claim = case.operation.path.endswith("/claim")  # its wait_s defaults to 20 s
    if isinstance(body, dict) and (_long(body.get("wait_s")) or (claim and "wait_s" not in body)):
        body["wait_s"] = SHORT_WAIT_S
    # complete-and-claim carries its claim (and its wait_s, default 20 s) in ``claim``, which
    # itself defaults to a claim with the default wait
    if isinstance(body, dict) and case.operation.path.endswith("/complete-and-claim"):
        inner = body.setdefault("claim", {"wait_s": SHORT_WAIT_S})
        if isinstance(inner, dict) and (_long(inner.get("wait_s")) or "wait_s" not in inner):
            inner["wait_s"] = SHORT_WAIT_S
