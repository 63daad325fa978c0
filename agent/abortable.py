"""An HTTP transport whose connections can be cut from another thread, to abandon a long poll.

Closing a socket does not wake a thread blocked reading it (on Linux), but ``shutdown()`` does,
and it tells the server at once. HQ's claim checks the connection before it hands out work, so
a draining agent cuts its long poll in flight, and nothing new is claimed.
"""

from __future__ import annotations

import socket
import threading
import weakref
from collections.abc import Iterable
from contextlib import suppress

import httpcore
import httpx


class _TrackingBackend(httpcore.SyncBackend):
    def __init__(self, owner: AbortableTransport) -> None:
        self._owner = owner

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.NetworkStream:
        stream = super().connect_tcp(
            host, port, timeout=timeout, local_address=local_address, socket_options=socket_options
        )
        sock = stream.get_extra_info("socket")
        if isinstance(sock, socket.socket):
            self._owner.track(sock)
        return stream


class AbortableTransport(httpx.HTTPTransport):
    """httpx's transport, with ``abort()`` to shut down every connection it opened."""

    def __init__(self) -> None:
        super().__init__()
        self._sockets: weakref.WeakSet[socket.socket] = weakref.WeakSet()
        self._lock = threading.Lock()
        # httpx 0.28 takes no network backend: its pool (``_pool``) is replaced by one that
        # records the sockets it opens.
        self._pool = httpcore.ConnectionPool(network_backend=_TrackingBackend(self))

    def track(self, sock: socket.socket) -> None:
        with self._lock:
            self._sockets.add(sock)

    def abort(self) -> None:
        with self._lock:
            sockets = list(self._sockets)
        for sock in sockets:
            with suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
