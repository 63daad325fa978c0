"""The content-addressed input cache: ``<work_dir>/cache/sha256/<hash>``, shared by all jobs.

A dataset version crosses the network once per host: every job that needs the same bytes binds the
same cache file read-only. Downloads go to a temporary name, are verified against the sha256 HQ
gave, and are renamed into place only when they match; an ``flock`` per hash keeps two agents (or
two slots) on one host from fetching the same file twice.
"""

from __future__ import annotations

import fcntl
import logging
import os
import re
import threading
from collections.abc import Callable
from pathlib import Path

from hq.client import sha256_file

log = logging.getLogger(__name__)

SHA256_RE = re.compile(r"^[0-9a-f]{64}$")

Downloader = Callable[[str, Path], None]


class InputUnavailable(Exception):
    """An input could not be fetched or did not match its sha256."""


class InputCache:
    """Files named by their sha256, fetched through presigned URLs, verified before use."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.root.mkdir(parents=True, exist_ok=True)
        self._locks: dict[str, threading.Lock] = {}
        self._guard = threading.Lock()

    def path_for(self, sha256: str) -> Path:
        if not SHA256_RE.match(sha256):
            raise InputUnavailable(f"{sha256!r} is not a sha256 hex digest")
        return self.root / sha256

    def _thread_lock(self, sha256: str) -> threading.Lock:
        with self._guard:
            return self._locks.setdefault(sha256, threading.Lock())

    def ensure(self, *, sha256: str, size: int, url: str, download: Downloader) -> Path:
        """The cache file for ``sha256``, downloading ``url`` only when it is not there yet."""
        path = self.path_for(sha256)
        if self._present(path, size):
            return path
        with self._thread_lock(sha256), (self.root / f".{sha256}.lock").open("w") as lock_fh:
            fcntl.flock(lock_fh, fcntl.LOCK_EX)
            if self._present(path, size):
                return path
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
            return path

    @staticmethod
    def _present(path: Path, size: int) -> bool:
        """A cached file is trusted by name: it was verified before it was renamed into place."""
        try:
            return path.stat().st_size == size
        except FileNotFoundError:
            return False
