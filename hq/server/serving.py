"""Running the API server: one process, or several on one port (``hq server --workers N``).

Several workers are for PostgreSQL. The parent binds the socket and forks the workers, each a
whole HQ server (its own event loop, database pool, notifier and background loops, as replicas
behind a load balancer are); the kernel gives each new connection to one of them. The parent
only watches: a worker that dies is replaced, one that dies before it served stops everything
(its fault would repeat), and SIGINT or SIGTERM to the parent stops every worker the way one server
stops. Workers have their own process group, so a terminal's Ctrl-C reaches the parent only, and
a worker whose parent is gone stops by itself. The counters of every worker go to a folder of
per-process files (``hq.server.metrics``) that the parent removes at the end.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import signal
import socket
import sys
import tempfile
from types import FrameType

import uvicorn

from hq.server.settings import METRICS_DIR_ENV, ServerSettings

logger = logging.getLogger(__name__)

SHUTDOWN_GRACE_SECONDS = 3


class Server(uvicorn.Server):
    """uvicorn's server, which answers parked long polls (claims, ?wait, log follows) before it
    waits for requests to end: they would hold the stop for its whole grace period, then be
    cancelled with an error. Agents and followers reconnect. ``parent``: the pid that must stay
    this worker's parent, else it stops."""

    def __init__(
        self, config: uvicorn.Config, *, parent: int | None = None, ready: int | None = None
    ) -> None:
        super().__init__(config)
        self.parent = parent
        self.ready = ready  # a pipe to write one byte to once serving

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets)
        if self.ready is not None and self.started:
            os.write(self.ready, b"1")
            os.close(self.ready)
            self.ready = None

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        app = self.config.app
        notifier = getattr(getattr(app, "state", None), "notifier", None)
        if notifier is not None:
            notifier.close()
        await super().shutdown(sockets)

    async def on_tick(self, counter: int) -> bool:
        if self.parent is not None and os.getppid() != self.parent:
            self.should_exit = True
        return await super().on_tick(counter)


def serve(settings: ServerSettings) -> None:
    """Run the server in this process, or ``settings.workers`` of them; returns once stopped."""
    if settings.workers == 1:
        _serve_one(settings, sockets=None, parent=None)
        return
    if "prometheus_client" in sys.modules:  # too late to choose per-process counter files
        raise RuntimeError("serving.serve with workers must run before prometheus_client loads")
    settings.resolved_secret_key()  # created once here, not by each worker at once
    folder = tempfile.mkdtemp(prefix="hq-metrics-")
    os.environ[METRICS_DIR_ENV] = folder
    sock = _config(settings, app="hq.server.app:app_from_env").bind_socket()
    try:
        sys.exit(_Supervisor(settings, sock).run())
    finally:
        sock.close()
        shutil.rmtree(folder, ignore_errors=True)


def _config(settings: ServerSettings, *, app: object) -> uvicorn.Config:
    return uvicorn.Config(
        app,  # type: ignore[arg-type]  # an app or an import string
        host=settings.host,
        port=settings.port,
        log_level=settings.log_level,
        access_log=False,
        timeout_graceful_shutdown=SHUTDOWN_GRACE_SECONDS,  # a bound for anything else
    )


def _serve_one(
    settings: ServerSettings,
    *,
    sockets: list[socket.socket] | None,
    parent: int | None,
    ready: int | None = None,
) -> None:
    from hq.server.app import create_app

    config = _config(settings, app=create_app(settings))
    Server(config, parent=parent, ready=ready).run(sockets=sockets)


class _Supervisor:
    """The parent of the workers: starts them, replaces one that dies, stops them all."""

    def __init__(self, settings: ServerSettings, sock: socket.socket) -> None:
        self.settings = settings
        self.sock = sock
        self.started: dict[int, int] = {}  # worker pid: the pipe it writes to once serving
        self.stopping = False

    def run(self) -> int:
        """Serve until a signal stops it (0) or a worker fails to start (1)."""
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, self._stop)
        for _ in range(self.settings.workers):
            self._fork()
        logger.info(
            "HQ serves on %s:%s with %d workers (pids %s)",
            self.settings.host,
            self.settings.port,
            len(self.started),
            ", ".join(map(str, self.started)),
        )
        code = 0
        while self.started:
            pid, status = os.wait()
            ready = self.started.pop(pid, None)
            if ready is None:
                continue
            served = _was_ready(ready)
            if self.stopping:
                continue
            how = _how_it_ended(status)
            if not served:
                logger.error("worker %d %s before it served; stopping HQ", pid, how)
                code = 1
                self._stop(signal.SIGTERM, None)
                continue
            logger.warning("worker %d %s; starting another", pid, how)
            self._fork()
        return code

    def _fork(self) -> None:
        parent = os.getpid()
        ready_read, ready_write = os.pipe()
        pid = os.fork()
        if pid:
            os.close(ready_write)
            self.started[pid] = ready_read
            return
        code = 0
        try:  # the worker: never returns into the parent's code
            os.close(ready_read)
            os.setpgid(0, 0)
            for sig in (signal.SIGINT, signal.SIGTERM):
                signal.signal(sig, signal.SIG_DFL)
            _serve_one(self.settings, sockets=[self.sock], parent=parent, ready=ready_write)
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else 1
        except BaseException:
            logger.exception("worker %d failed", os.getpid())
            code = 1
        finally:
            logging.shutdown()
            os._exit(code)

    def _stop(self, signum: int, _frame: FrameType | None) -> None:
        self.stopping = True
        for pid in self.started:
            with contextlib.suppress(ProcessLookupError):  # ended already; os.wait collects it
                os.kill(pid, signal.SIGTERM)


def _was_ready(pipe: int) -> bool:
    """Whether the worker wrote that it served, before it ended (then closes the pipe)."""
    try:
        return os.read(pipe, 1) == b"1"  # the writer is gone: this cannot block
    finally:
        os.close(pipe)


def _how_it_ended(status: int) -> str:
    if os.WIFSIGNALED(status):
        return f"was killed by {signal.Signals(os.WTERMSIG(status)).name}"
    return f"exited with {os.waitstatus_to_exitcode(status)}"
