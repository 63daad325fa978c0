"""Job status colours and the "is anything still moving" test that stops live polling."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from hq.schemas.common import FINISHED_STATUSES, JobStatus

STATUS_COLOURS: dict[str, str] = {
    JobStatus.waiting: "#adb5bd",
    JobStatus.queued: "#6c757d",
    JobStatus.running: "#0d6efd",
    JobStatus.succeeded: "#198754",
    JobStatus.failed: "#dc3545",
    JobStatus.cancelled: "#b8860b",
    JobStatus.timed_out: "#8e44ad",
}
UNKNOWN_COLOUR = "#343a40"
FINISHED = frozenset(str(s) for s in FINISHED_STATUSES)


def status_colour(status: str) -> str:
    return STATUS_COLOURS.get(status, UNKNOWN_COLOUR)


def badge_style(status: str) -> dict[str, str]:
    """Inline style for a status badge (white text on the status colour)."""
    return {
        "backgroundColor": status_colour(status),
        "color": "white",
        "padding": "2px 8px",
        "borderRadius": "4px",
        "fontWeight": "600",
    }


def status_cell_style() -> dict[str, Any]:
    """AG Grid ``cellStyle`` that colours a status cell by its value (dash-ag-grid conditions)."""
    return {
        "styleConditions": [
            {
                "condition": f"params.value === '{status}'",
                "style": {"color": colour, "fontWeight": "600"},
            }
            for status, colour in STATUS_COLOURS.items()
        ]
    }


def is_finished(status: str) -> bool:
    return status in FINISHED


def all_finished(statuses: Iterable[str]) -> bool:
    """True when every status given has ended (an empty list counts as ended)."""
    return all(is_finished(s) for s in statuses)
