"""Small shared widgets: messages, status badges, key/value lists, metric tiles."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from dash import html

from dash_app.logic.status import badge_style
from hq import errors
from hq.schemas.results import metric_text


def message(text: str, *, ok: bool = False) -> html.Div:
    return html.Div(text, className=f"message {'ok' if ok else 'error'}")


def error_message(exc: errors.HQError) -> html.Div:
    """An HQ error as the API said it, with the field it concerns."""
    where = f" ({exc.field})" if exc.field else ""
    return message(f"{exc.message}{where}")


def status_badge(status: str) -> html.Span:
    return html.Span(status, className="badge", style=badge_style(status))


def kv(pairs: Sequence[tuple[str, Any]]) -> html.Dl:
    children: list[Any] = []
    for label, value in pairs:
        children += [html.Dt(label), html.Dd(value)]
    return html.Dl(children, className="kv")


def metric_tiles(metrics: dict[str, int | float]) -> html.Div:
    if not metrics:
        return html.Div("No metrics.", className="muted")
    return html.Div(
        [
            html.Div(
                [
                    html.B(metric_text(v)),
                    html.Span(k, className="muted"),
                ],
                className="metric",
            )
            for k, v in sorted(metrics.items())
        ],
        className="metrics",
    )


def forbidden(action: str) -> html.Div:
    return message(f"Your role may not {action}.")
