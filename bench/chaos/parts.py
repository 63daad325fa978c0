"""Breakable parts of a worker host, for the torture engine's ``Cluster``: a host lost with its
containers and folder, a work folder that fills up, a network link cut. Each is a ``Killable``:
``kill()`` breaks it, ``start()`` mends it (a lost host comes back as a fresh one)."""

from __future__ import annotations

import errno
import shutil
import subprocess
from pathlib import Path
from typing import Protocol

import docker

from bench.chaos.hosts import VethLink, run_checked

FILL_CHUNK = b"\0" * (1 << 20)


class Process(Protocol):
    def kill(self) -> None: ...

    def start(self) -> None: ...


class LostHost:
    """An agent's host lost: the agent SIGKILLed, its containers and its work folder gone; then
    a new host with the same name and an empty folder."""

    def __init__(self, agent: Process, *, name: str, folder: Path) -> None:
        self.agent, self.name, self.folder = agent, name, folder

    def kill(self) -> None:
        self.agent.kill()
        engine = docker.from_env()
        try:
            for c in engine.containers.list(all=True, filters={"label": f"hq.agent={self.name}"}):
                c.remove(force=True)
        finally:
            engine.close()
        for child in self.folder.iterdir():
            if child.is_dir() and not child.is_symlink():
                shutil.rmtree(child, ignore_errors=True)
            else:
                child.unlink(missing_ok=True)

    def start(self) -> None:
        self.agent.start()


class FullDisk:
    """A work folder on a filesystem of its own (a small tmpfs), filled to the last byte."""

    def __init__(self, folder: Path) -> None:
        self.filler = folder / ".torture-filler"

    def kill(self) -> None:
        with self.filler.open("wb", buffering=0) as out:
            try:
                while True:
                    out.write(FILL_CHUNK)
            except OSError as exc:
                if exc.errno != errno.ENOSPC:
                    raise
            for size in (1 << 16, 1 << 12, 1):  # the last pages too
                try:
                    while True:
                        out.write(b"\0" * size)
                except OSError:
                    pass

    def start(self) -> None:
        self.filler.unlink(missing_ok=True)


class CutLink:
    """An agent's host cut off from HQ: its veth link down, then up again."""

    def __init__(self, link: VethLink) -> None:
        self.link = link

    def kill(self) -> None:
        run_checked(["ip", "link", "set", self.link.host_if, "down"])

    def start(self) -> None:
        run_checked(["ip", "link", "set", self.link.host_if, "up"])


def mount_tmpfs(folder: Path, size: str) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(folder)], check=True)


def unmount(folder: Path) -> None:
    subprocess.run(["umount", "-l", str(folder)], check=False, capture_output=True)
