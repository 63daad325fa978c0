"""Keeps a job's lease alive and brings back what HQ asks of it: a cancel, or that it is lost."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from hq import errors
from hq.client import LeaseHandle

log = logging.getLogger(__name__)


class Heartbeater:
    """Heartbeats every ``interval_s`` in its own thread; sets ``wake`` on cancel or loss."""

    def __init__(
        self,
        *,
        lease: LeaseHandle,
        interval_s: float,
        wake: threading.Event,
        paused_s: Callable[[], float] = lambda: 0.0,
    ) -> None:
        """``paused_s``: the attempt's seconds paused so far, sent with every beat."""
        self._lease = lease
        self._paused_s = paused_s
        self._job_id = lease.job_id
        self._interval_s = interval_s
        self._wake = wake
        self._stop = threading.Event()
        self.cancel_requested = False
        self.lost = False
        self._completing = False
        self._thread = threading.Thread(
            target=self._loop, name=f"heartbeat-{lease.job_id}", daemon=True
        )

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()

    def completing(self) -> None:
        """The result is being sent: a beat in flight may now find the lease ended by it, which
        is no news (heartbeats go on until then: an upload can outlast a lease)."""
        self._completing = True

    def beat(self) -> None:
        """One heartbeat, now."""
        try:
            response = self._lease.heartbeat(paused_s=int(self._paused_s()))
        except (errors.Conflict, errors.NotFound) as exc:
            level = logging.DEBUG if self._completing else logging.WARNING
            log.log(level, "lease lost: %s", exc, extra={"job_id": self._job_id})
            self.lost = True
            self._stop.set()
            self._wake.set()
            return
        except errors.HQError as exc:  # HQ away: keep running, keep trying
            log.warning("heartbeat failed: %s", exc, extra={"job_id": self._job_id})
            return
        if response.cancel_requested and not self.cancel_requested:
            log.info("cancel requested", extra={"job_id": self._job_id})
            self.cancel_requested = True
            self._wake.set()

    def _loop(self) -> None:
        while not self._stop.wait(self._interval_s):
            self.beat()
