"""The end of a warm job without waiting for its container to exit.

After the job's script is done and every file and stdio stream is flushed, the warm runner
writes its exit status to ``exit`` in its control folder and then a marker, a nonce the agent
chose at hand-over, on stdout and on stderr. Once the agent has seen the marker on both
streams, it has all of the job's output and its status: it can report the job while the
container's process is still on its way out (the engine takes tens of milliseconds to notice
an exit). The markers are cut out of the output; a job killed (cancel, timeout, out of memory)
writes none, and its end is the container's, as for a cold job.
"""

from __future__ import annotations

import uuid

STREAMS = ("stdout", "stderr")


def new_marker() -> bytes:
    """A marker no output can hold by chance (record separators around a random nonce)."""
    return f"\x1ehq-end {uuid.uuid4().hex}\x1e".encode()


class EndMarks:
    """Cuts the marker out of each stream's chunks; ``done`` once both streams had it."""

    def __init__(self, marker: bytes) -> None:
        self.marker = marker
        self._held = dict.fromkeys(STREAMS, b"")  # a tail that may be a marker's start
        self._seen: set[str] = set()

    @property
    def done(self) -> bool:
        return len(self._seen) == len(STREAMS)

    def feed(self, stream: str, data: bytes) -> bytes:
        """What of ``data`` is the job's output (a tail that may start the marker is held
        back until the next chunk); nothing once the stream's marker has been seen."""
        if stream in self._seen:
            return b""
        buf = self._held[stream] + data
        at = buf.find(self.marker)
        if at >= 0:
            self._seen.add(stream)
            self._held[stream] = b""
            return buf[:at]
        keep = next(
            (
                k
                for k in range(min(len(buf), len(self.marker) - 1), 0, -1)
                if self.marker.startswith(buf[-k:])
            ),
            0,
        )
        self._held[stream] = buf[len(buf) - keep :]
        return buf[: len(buf) - keep]

    def rest(self, stream: str) -> bytes:
        """What is held back of ``stream`` when it ends without its marker (the job's)."""
        held, self._held[stream] = self._held[stream], b""
        return held
