"""A throwaway PostgreSQL cluster (``initdb`` in a temp folder, its own loopback port), for
runs that stop and start PostgreSQL: the machine's shared server is never touched.

PostgreSQL refuses to run as root, so under root the cluster runs as ``nobody`` (``runuser``).
Only this cluster's postmaster is ever stopped, through ``pg_ctl -D`` on its own folder.
"""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import psycopg

RUN_AS = "nobody"


def _bin(name: str) -> str:
    found = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    if found:
        return found[-1]
    path = shutil.which(name)
    if path is None:
        raise FileNotFoundError(f"{name} not found: PostgreSQL's server binaries are missing")
    return path


def _as_owner(argv: list[str]) -> list[str]:
    return ["runuser", "-u", RUN_AS, "--", *argv] if os.geteuid() == 0 else argv


@dataclass
class PgCluster:
    data: Path
    port: int
    log: Path

    @property
    def url(self) -> str:
        return f"postgresql+psycopg://hq@127.0.0.1:{self.port}/postgres"

    @property
    def libpq_url(self) -> str:
        return f"postgresql://hq@127.0.0.1:{self.port}/postgres"

    def _ctl(self, *args: str) -> None:
        subprocess.run(
            _as_owner([_bin("pg_ctl"), "-D", str(self.data), *args]),
            check=True,
            timeout=60,
            stdout=subprocess.DEVNULL,
        )

    def start(self) -> None:
        options = f"-p {self.port} -h 127.0.0.1 -k {self.data} -c fsync=off"
        self._ctl("-l", str(self.log), "-o", options, "-w", "start")
        deadline = time.monotonic() + 30
        while True:
            try:
                with psycopg.connect(self.libpq_url, connect_timeout=2):
                    return
            except psycopg.OperationalError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)

    def stop(self) -> None:
        """A fast shutdown: open connections are closed, as in a real outage."""
        self._ctl("-m", "fast", "-w", "stop")

    def running(self) -> bool:
        return (self.data / "postmaster.pid").exists()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def create_cluster() -> tuple[PgCluster, Path]:
    """A new, started cluster and the folder to remove once it is stopped."""
    root = Path(tempfile.mkdtemp(prefix="hq-pgcluster-"))
    data = root / "data"
    data.mkdir()
    log = root / "postgres.log"
    log.touch()
    if os.geteuid() == 0:
        for path in (root, data, log):
            shutil.chown(path, RUN_AS)
    subprocess.run(
        _as_owner([_bin("initdb"), "-D", str(data), "-U", "hq", "--auth=trust", "-E", "UTF8"]),
        check=True,
        timeout=120,
        stdout=subprocess.DEVNULL,
    )
    cluster = PgCluster(data=data, port=_free_port(), log=log)
    cluster.start()
    return cluster, root


def remove_cluster(cluster: PgCluster, root: Path) -> None:
    if cluster.running():
        cluster.stop()
    shutil.rmtree(root, ignore_errors=True)
