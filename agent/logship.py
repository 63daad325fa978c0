"""Ships a job's output to HQ while it runs: lines are batched and sent every ``flush_s``.

Chunks from the container are split into lines per stream (a partial line waits for its end);
lines longer than a LogLine allows are cut. When HQ is away, unsent lines are kept (up to a cap,
oldest dropped first, with a note) and go out with the next batch; once HQ says the lease is lost,
shipping stops. At the job's end, the last few lines go with ``complete`` (``close_for_complete``).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from datetime import UTC, datetime

from hq import errors
from hq.client import LeaseHandle
from hq.schemas.jobs import LogLine

log = logging.getLogger(__name__)

MAX_LINE_CHARS = 64 * 1024
MAX_BATCH_LINES = 5_000
MAX_BATCH_CHARS = 1024 * 1024  # well under HQ's request body limit
MAX_PENDING_CHARS = 64 * 1024 * 1024
COMPLETE_LINES = 1_000  # the most left to send with complete instead of on their own
COMPLETE_CHARS = 256 * 1024


class LogShipper:
    def __init__(
        self,
        *,
        lease: LeaseHandle,
        flush_s: float,
        on_line: Callable[[str, str], None] | None = None,
    ) -> None:
        self._lease = lease
        self._on_line = on_line  # sees each whole line of the container's (stream, text)
        self._job_id = lease.job_id
        self._flush_s = flush_s
        self._pending: list[LogLine] = []
        self._pending_chars = 0
        self._partial: dict[str, bytes] = {}
        self._dropped = 0
        self._lock = threading.Lock()
        self._send_lock = threading.Lock()
        self._stop = threading.Event()
        self._wake = threading.Event()
        self.lost = False
        self._thread = threading.Thread(target=self._loop, name=f"logs-{lease.job_id}", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def feed(self, stream: str, data: bytes) -> None:
        """A chunk of container output on ``stream`` (stdout or stderr)."""
        buf = self._partial.get(stream, b"") + data
        *lines, rest = buf.split(b"\n")
        self._partial[stream] = rest
        for raw in lines:
            self._line(stream, raw.decode("utf-8", errors="replace").rstrip("\r"))

    def _line(self, stream: str, text: str) -> None:
        if self._on_line is not None:
            try:
                self._on_line(stream, text)
            except Exception:  # an observer never costs a line of the log
                log.exception("a log line observer failed", extra={"job_id": self._job_id})
        self._add(stream, text)

    def note(self, text: str) -> None:
        """A line from the agent itself (image pull, skipped outputs, kill reasons)."""
        self._add("agent", text)

    def _add(self, stream: str, text: str) -> None:
        now = datetime.now(UTC)
        text = text.replace("\x00", "\ufffd")  # HQ stores no NUL (PostgreSQL refuses it)
        with self._lock:
            for start in range(0, max(len(text), 1), MAX_LINE_CHARS):
                piece = text[start : start + MAX_LINE_CHARS]
                self._pending.append(LogLine(at=now, stream=stream, text=piece))
                self._pending_chars += len(piece)
            while self._pending_chars > MAX_PENDING_CHARS:  # HQ away for long: drop the oldest
                self._pending_chars -= len(self._pending.pop(0).text)
                self._dropped += 1

    def _loop(self) -> None:
        while True:
            self._wake.wait(self._flush_s)
            self._wake.clear()
            if self._stop.is_set():  # what is left is for the caller (it may go with complete)
                return
            self.flush()

    def flush(self) -> bool:
        """Send what is pending; False when some lines are still unsent."""
        with self._send_lock:
            while not self.lost:
                with self._lock:
                    if self._dropped:
                        note = f"[{self._dropped} log lines dropped while HQ was away]"
                        self._pending.insert(
                            0, LogLine(at=datetime.now(UTC), stream="agent", text=note)
                        )
                        self._pending_chars += len(note)
                        self._dropped = 0
                    batch: list[LogLine] = []
                    chars = 0
                    for line in self._pending[:MAX_BATCH_LINES]:
                        if batch and chars + len(line.text) > MAX_BATCH_CHARS:
                            break
                        batch.append(line)
                        chars += len(line.text)
                if not batch:
                    return True
                try:
                    self._lease.send_logs(batch)
                except errors.Conflict:
                    self.lost = True
                    log.info("lease lost: log shipping stopped", extra={"job_id": self._job_id})
                    return False
                except errors.HQError as exc:
                    log.warning("could not ship logs: %s", exc, extra={"job_id": self._job_id})
                    return False
                with self._lock:
                    del self._pending[: len(batch)]
                    self._pending_chars -= chars
            return False

    def close(self) -> bool:
        """Flush partial lines and stop; True when everything was sent."""
        self._stop_thread()
        return self.flush()

    def close_for_complete(self) -> list[LogLine]:
        """Stop, and the lines still unsent when they are few enough to go with ``complete``
        (a call fewer at a job's end); else they are sent now and none are returned."""
        self._stop_thread()
        with self._send_lock, self._lock:
            few = len(self._pending) <= COMPLETE_LINES and self._pending_chars <= COMPLETE_CHARS
            if few and not self._dropped and not self.lost:
                last, self._pending, self._pending_chars = self._pending, [], 0
                return last
        self.flush()
        return []

    def _stop_thread(self) -> None:
        for stream, rest in list(self._partial.items()):
            if rest:
                self._line(stream, rest.decode("utf-8", errors="replace"))
        self._partial.clear()
        self._stop.set()
        self._wake.set()
        if self._thread.is_alive():
            self._thread.join(timeout=5)
