"""A job container's output, read into the job's log shipper on a thread of its own.

For a warm job the end markers of its runner (``agent/warm/endmark.py``) are cut out, and the
reader stops at them: ``over`` then says the job has ended, before its container has.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator
from typing import Any

from agent.logship import LogShipper
from agent.warm.endmark import STREAMS, EndMarks

log = logging.getLogger(__name__)


class OutputReader:
    def __init__(self, *, logs: LogShipper, wake: threading.Event, job_id: str) -> None:
        self.logs = logs
        self.wake = wake  # set when the end markers have been seen
        self.job_id = job_id
        self.end_marks: EndMarks | None = None  # a warm job's: over once both streams had it

    @property
    def over(self) -> bool:
        """A warm job whose runner has said on both streams that it is over (its status is
        written): reported without waiting for the container's exit."""
        return self.end_marks is not None and self.end_marks.done

    def follow_demuxed(
        self, stream: Iterator[tuple[bytes | None, bytes | None]]
    ) -> threading.Thread:
        return self._thread(self._read_demuxed, stream)

    def follow_plain(self, stream: Iterator[bytes]) -> threading.Thread:
        """A combined stream (a container adopted after a restart): all of it as stdout."""
        return self._thread(self._read_plain, stream)

    def _thread(self, target: Callable[[Any], None], stream: object) -> threading.Thread:
        reader = threading.Thread(target=target, args=(stream,), daemon=True)
        reader.start()
        return reader

    def _read_demuxed(self, stream: Iterator[tuple[bytes | None, bytes | None]]) -> None:
        try:
            for chunk in stream:
                for name, data in zip(STREAMS, chunk, strict=True):
                    if data:
                        self._feed(name, data)
                if self.over:
                    self.wake.set()
                    return
        except Exception as exc:  # the engine closed the stream: the container is gone
            log.debug("log stream ended: %s", exc, extra={"job_id": self.job_id})
        finally:
            for name in STREAMS:  # a tail held back as a marker's possible start
                if self.end_marks is not None and (rest := self.end_marks.rest(name)):
                    self.logs.feed(name, rest)

    def _read_plain(self, stream: Iterator[bytes]) -> None:
        try:
            for chunk in stream:
                self._feed("stdout", chunk)
        except Exception as exc:
            log.debug("log stream ended: %s", exc, extra={"job_id": self.job_id})

    def _feed(self, name: str, data: bytes) -> None:
        if self.end_marks is not None:
            data = self.end_marks.feed(name, data)
        if data:
            self.logs.feed(name, data)
