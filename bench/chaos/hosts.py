"""A second "host" for tests and benches: a network namespace of our own joined to this one by a
veth pair.

Only loopback and the addresses of namespaces a run makes itself are ever a network target.
``netns_host()`` makes a named namespace (``ip netns add``) with a veth pair, a /30 on it
(``LINK_PREFIX``, a subnet no interface here uses yet) and ``lo`` up, and removes both in a
``finally``, also when the run fails. ``VethLink`` alone joins another namespace, e.g. a
container's (by its PID), to this one.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

# Link addresses for a run's own "hosts": /30s out of this /16, one per run, never a target
# outside the namespaces the tests make.
LINK_PREFIX = "10.213"


def run_checked(cmd: list[str], *, timeout: float = 60, check: bool = True) -> str:
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False)
    if check and result.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} exited {result.returncode}: {result.stderr.strip()}")
    return result.stdout


def _used_link_addresses() -> set[str]:
    out = run_checked(["ip", "-o", "-4", "addr", "show"], check=False)
    return {word.split("/")[0] for word in out.split() if word.startswith(f"{LINK_PREFIX}.")}


def free_link_subnet() -> tuple[str, str]:
    """(host end, far end) of a /30 no interface on this host uses yet."""
    used = _used_link_addresses()
    start = os.getpid() % 16000
    for n in range(16000):
        index = (start + n) % 16000
        third, fourth = divmod(index * 4, 256)
        host, far = f"{LINK_PREFIX}.{third}.{fourth + 1}", f"{LINK_PREFIX}.{third}.{fourth + 2}"
        if host not in used and far not in used:
            return host, far
    raise RuntimeError(f"no free /30 in {LINK_PREFIX}.0.0/16")


@dataclass
class VethLink:
    """A veth pair: ``host_if`` with ``host_addr`` here, its peer with ``far_addr`` in the
    namespace of process ``pid`` (a container's) or of the named netns ``netns``."""

    name: str
    host_addr: str
    far_addr: str
    created: bool = False

    @property
    def host_if(self) -> str:
        return f"{self.name}h"

    @property
    def far_if(self) -> str:
        return f"{self.name}f"

    def create(self, *, pid: int | None = None, netns: str | None = None) -> None:
        if pid is not None:
            target, ns_exec = str(pid), ["nsenter", f"--net=/proc/{pid}/ns/net"]
        else:
            assert netns is not None
            target, ns_exec = netns, ["ip", "netns", "exec", netns]
        run_checked(
            ["ip", "link", "add", self.host_if, "type", "veth", "peer", "name", self.far_if]
        )
        self.created = True
        run_checked(["ip", "link", "set", self.far_if, "netns", target])
        run_checked(["ip", "addr", "add", f"{self.host_addr}/30", "dev", self.host_if])
        run_checked(["ip", "link", "set", self.host_if, "up"])
        run_checked([*ns_exec, "ip", "addr", "add", f"{self.far_addr}/30", "dev", self.far_if])
        run_checked([*ns_exec, "ip", "link", "set", self.far_if, "up"])
        run_checked([*ns_exec, "ip", "link", "set", "lo", "up"])

    def remove(self) -> None:
        """Delete the host end (its peer goes with it); a no-op when it is gone already."""
        if self.created:
            run_checked(["ip", "link", "del", self.host_if], check=False)
            self.created = False

    def exists(self) -> bool:
        return run_checked(["ip", "link", "show", self.host_if], check=False) != ""


@dataclass(frozen=True)
class NetnsHost:
    name: str
    link: VethLink

    def exec_prefix(self) -> list[str]:
        """Run a command on this "host": ``[*host.exec_prefix(), "curl", ...]``."""
        return ["ip", "netns", "exec", self.name]


def netns_exists(name: str) -> bool:
    return name in run_checked(["ip", "netns", "list"], check=False).split()


@contextmanager
def netns_host(name: str) -> Iterator[NetnsHost]:
    """A named network namespace linked to this host; removed, with its link, on the way out."""
    host_addr, far_addr = free_link_subnet()
    link = VethLink(name, host_addr, far_addr)
    run_checked(["ip", "netns", "add", name])
    try:
        link.create(netns=name)
        yield NetnsHost(name=name, link=link)
    finally:
        link.remove()
        run_checked(["ip", "netns", "del", name], check=False)
