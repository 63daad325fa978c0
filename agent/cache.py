"""The content-addressed input cache: ``<work_dir>/cache/sha256/<hash>``, shared by all jobs.

A dataset version crosses the network once per host: every job that needs the same bytes binds the
same cache file read-only. Downloads go to a temporary name, are verified against the sha256 HQ
gave, and are renamed into place only when they match; an ``flock`` per hash keeps two agents (or
two slots) on one host from fetching the same file twice.

The cache is bounded (``HQ_AGENT_CACHE_MAX_BYTES``): past the bound, the least recently used
entries go first. A job pins the entries it uses with a shared ``flock`` on the same lock file,
held until its container has started (the bind mount then holds the file), and eviction takes
that lock exclusively without waiting, so an entry in use by any agent on the host stays.
"""

from __future__ import annotations

import fcntl
import logging
import os
import threading
import time
from collections.abc import Callable
from pathlib import Path
from types import TracebackType
from typing import IO

from hq.client import sha256_file
from hq.schemas.common import SHA256_RE

log = logging.getLogger(__name__)

DEFAULT_MAX_BYTES = 20 * 1024**3

Downloader = Callable[[str, Path], None]


class InputUnavailable(Exception):
    """An input could not be fetched or did not match its sha256."""


class CachedInput:
    """A verified cache file, pinned (a shared flock) until ``release``; a context manager."""

    def __init__(self, path: Path, lock_fh: IO[str]) -> None:
        self.path = path
        self._lock_fh: IO[str] | None = lock_fh

    def release(self) -> None:
        if self._lock_fh is not None:
            self._lock_fh.close()  # closing the file drops its flock
            self._lock_fh = None

    def __enter__(self) -> CachedInput:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.release()


class InputCache:
    """Files named by their sha256, fetched through presigned URLs, verified before use."""

    def __init__(self, root: Path, *, max_bytes: int = DEFAULT_MAX_BYTES) -> None:
        self.root = root
        self.max_bytes = max_bytes
        self.root.mkdir(parents=True, exist_ok=True)
        self._locks: dict[str, threading.Lock] = {}
        self._guard = threading.Lock()
        self._evicting = threading.Lock()

    def path_for(self, sha256: str) -> Path:
        if not SHA256_RE.fullmatch(sha256):
            raise InputUnavailable(f"{sha256!r} is not a sha256 hex digest")
        return self.root / sha256

    def _thread_lock(self, sha256: str) -> threading.Lock:
        with self._guard:
            return self._locks.setdefault(sha256, threading.Lock())

    def _lock_path(self, sha256: str) -> Path:
        return self.root / f".{sha256}.lock"

    def ensure(self, *, sha256: str, size: int, url: str, download: Downloader) -> CachedInput:
        """The cache file for ``sha256``, pinned; ``url`` is downloaded only when the file is
        not there yet. Release the pin once the container that mounts it has started."""
        path = self.path_for(sha256)
        lock_fh = self._lock_path(sha256).open("a")
        try:
            fcntl.flock(lock_fh, fcntl.LOCK_SH)
            if not self._present(path, size):
                fcntl.flock(lock_fh, fcntl.LOCK_UN)
                self._fetch(sha256=sha256, size=size, url=url, download=download)
                fcntl.flock(lock_fh, fcntl.LOCK_SH)
                if not self._present(path, size):  # evicted in the moment between the locks
                    raise InputUnavailable(f"{sha256} left the cache while being fetched")
            now_ns = time.time_ns()
            os.utime(path, ns=(now_ns, now_ns))  # the recency eviction goes by
        except BaseException:
            lock_fh.close()
            raise
        pinned = CachedInput(path, lock_fh)
        self.evict()
        return pinned

    def _fetch(self, *, sha256: str, size: int, url: str, download: Downloader) -> None:
        path = self.path_for(sha256)
        with self._thread_lock(sha256), self._lock_path(sha256).open("a") as lock_fh:
            fcntl.flock(lock_fh, fcntl.LOCK_EX)
            if self._present(path, size):
                return
            tmp = self.root / f".{sha256}.{os.getpid()}.{threading.get_ident()}.tmp"
            try:
                download(url, tmp)
                got_size = tmp.stat().st_size
                if got_size != size:
                    raise InputUnavailable(f"expected {size} bytes, got {got_size}")
                got = sha256_file(tmp)
                if got != sha256:
                    raise InputUnavailable(f"sha256 mismatch: expected {sha256}, got {got}")
                tmp.chmod(0o444)
                tmp.replace(path)
            finally:
                tmp.unlink(missing_ok=True)
            log.info("cached input", extra={"sha256": sha256, "size": size})

    def evict(self) -> int:
        """Remove least recently used entries that nobody pins until the cache fits its
        bound; returns the bytes freed. Lock files stay: removing one races its next user."""
        with self._evicting:
            entries = []
            for entry in os.scandir(self.root):
                if not SHA256_RE.fullmatch(entry.name):
                    continue
                try:
                    st = entry.stat()
                except FileNotFoundError:  # another agent on the host evicted it just now
                    continue
                entries.append((st.st_mtime_ns, st.st_size, entry.name))
            total = sum(size for _, size, _ in entries)
            freed = 0
            for _, size, name in sorted(entries):
                if total - freed <= self.max_bytes:
                    break
                with self._lock_path(name).open("a") as lock_fh:
                    try:
                        fcntl.flock(lock_fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    except BlockingIOError:
                        continue  # a job on this host uses it
                    (self.root / name).unlink(missing_ok=True)
                freed += size
                log.info("evicted input", extra={"sha256": name, "size": size})
            return freed

    @staticmethod
    def _present(path: Path, size: int) -> bool:
        """A cached file is trusted by name: it was verified before it was renamed into place."""
        try:
            return path.stat().st_size == size
        except FileNotFoundError:
            return False
