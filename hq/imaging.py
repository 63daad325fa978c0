"""Images on the HQ side: the offline base image, script images, push, and digest lookup.

The only HQ module (besides the agent's runner) that imports ``docker``. Its calls block, which is
fine: the CLI that uses them is sync. Progress goes to an ``on_line`` callback (the CLI echoes it),
so a 45-second debootstrap or a pip install is never silent.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import subprocess
import tempfile
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import docker
import docker.errors
import yaml
from docker.models.images import Image
from pydantic import ValidationError

from hq import errors
from hq.schemas.manifest import Manifest

logger = logging.getLogger(__name__)

OnLine = Callable[[str], None]

REPO_ROOT = Path(__file__).resolve().parents[1]
IMAGES_DIR = REPO_ROOT / "images"
BASE_DOCKERFILE = IMAGES_DIR / "base.Dockerfile"
SCRIPT_DOCKERFILE = IMAGES_DIR / "script.Dockerfile"

DEFAULT_BASE_TAG = "hq-base:bookworm"
DEFAULT_SUITE = "bookworm"
DEFAULT_MIRROR = "http://deb.debian.org/debian"
BASE_PACKAGES = ("python3", "python3-venv", "ca-certificates")
HOST_CA_BUNDLE = Path("/etc/ssl/certs/ca-certificates.crt")

LABEL_MANIFEST = "hq.manifest"
LABEL_SCRIPT = "hq.script"
LABEL_CONTEXT_SHA = "hq.context-sha256"
LABEL_BASE = "hq.base"

MANIFEST_FILE = "hq.yaml"
CA_FILE_IN_CONTEXT = "hq-host-ca.crt"
# Never copied into a script image: local data, caches and what a laptop run left behind.
CONTEXT_EXCLUDES = frozenset(
    {"example", "__pycache__", ".pytest_cache", ".venv", "venv", "results.json", ".git"}
)


def _quiet(_: str) -> None:
    return None


def get_docker_client() -> docker.DockerClient:
    """A client for the local engine (DOCKER_HOST and friends are honoured)."""
    try:
        client = docker.from_env(timeout=600)
        client.ping()
    except docker.errors.DockerException as exc:
        raise errors.Unavailable(f"the Docker engine is not reachable: {exc}") from exc
    return client


def find_image(*, client: docker.DockerClient, ref: str) -> Image | None:
    """The local image called ``ref`` (a tag or an ID), or None."""
    try:
        return client.images.get(ref)
    except docker.errors.ImageNotFound:
        return None


def _stream_build(*, client: docker.DockerClient, on_line: OnLine, **kwargs: Any) -> Image:
    """Build through the low-level API so each line of the build is shown as it comes."""
    image_id: str | None = None
    last_lines: list[str] = []
    for chunk in client.api.build(decode=True, rm=True, forcerm=True, **kwargs):
        if "error" in chunk:
            tail = "\n".join(last_lines[-15:])
            raise errors.HQError(f"docker build failed: {chunk['error'].strip()}\n{tail}")
        text = chunk.get("stream")
        if text:
            for line in text.rstrip("\n").splitlines():
                last_lines.append(line)
                on_line(line)
        aux = chunk.get("aux")
        if isinstance(aux, dict) and "ID" in aux:
            image_id = aux["ID"]
    if image_id is None:
        raise errors.HQError("docker build ended without an image ID")
    return client.images.get(image_id)


# -- base image --------------------------------------------------------------------------------


def _run_streaming(cmd: list[str], *, on_line: OnLine) -> None:
    """Run a host command, passing its output through line by line; fail with its last lines."""
    logger.info("running %s", " ".join(cmd))
    tail: list[str] = []
    with subprocess.Popen(
        cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, bufsize=1
    ) as proc:
        assert proc.stdout is not None
        for line in proc.stdout:
            line = line.rstrip("\n")
            tail = [*tail[-19:], line]
            on_line(line)
        code = proc.wait()
    if code != 0:
        raise errors.HQError(f"{cmd[0]} exited with {code}:\n" + "\n".join(tail))


def build_base_image(
    *,
    client: docker.DockerClient,
    tag: str = DEFAULT_BASE_TAG,
    suite: str = DEFAULT_SUITE,
    mirror: str = DEFAULT_MIRROR,
    force: bool = False,
    on_line: OnLine = _quiet,
) -> tuple[Image, bool]:
    """Make the Python base image from Debian packages; returns (image, built).

    An image already carrying ``tag`` is reused unless ``force``. The steps: debootstrap a
    minbase rootfs with python3, python3-venv and ca-certificates, ``docker import`` it, then
    build images/base.Dockerfile on top (adds the non-root user ``hq``, uid/gid 1000). Needs root
    and the debootstrap package. The host's CA bundle is not baked in: script builds bring it into
    their builder stage only (see images/script.Dockerfile), so pip works behind a TLS-inspecting
    proxy while the final images trust only Debian's CAs.
    """
    existing = find_image(client=client, ref=tag)
    if existing is not None and not force:
        on_line(f"base image {tag} exists ({existing.short_id}); reusing it (--force rebuilds)")
        return existing, False
    if shutil.which("debootstrap") is None:
        raise errors.HQError(
            "debootstrap is not installed: apt-get install -y debootstrap "
            "(or use a base image from a registry with --base, e.g. python:3.11-slim)"
        )
    rootfs_tag = f"hq-base-rootfs:{suite}"
    with tempfile.TemporaryDirectory(prefix="hq-base-") as tmp:
        root = Path(tmp) / "rootfs"
        on_line(f"debootstrap {suite} (minbase + {', '.join(BASE_PACKAGES)}) from {mirror}")
        _run_streaming(
            [
                "debootstrap",
                "--variant=minbase",
                f"--include={','.join(BASE_PACKAGES)}",
                suite,
                str(root),
                mirror,
            ],
            on_line=on_line,
        )
        for junk in ("var/cache/apt/archives", "var/lib/apt/lists"):
            for child in (root / junk).glob("*"):
                if child.is_file():
                    child.unlink()
        tarball = Path(tmp) / "rootfs.tar"
        on_line("packing the rootfs")
        _run_streaming(["tar", "-C", str(root), "-cf", str(tarball), "."], on_line=on_line)
        on_line(f"docker import -> {rootfs_tag}")
        repo, _, rootfs_version = rootfs_tag.partition(":")
        client.api.import_image_from_file(str(tarball), repository=repo, tag=rootfs_version)
    on_line(f"adding the user hq (1000:1000) -> {tag}")
    image = _stream_build(
        client=client,
        on_line=on_line,
        path=str(IMAGES_DIR),
        dockerfile=BASE_DOCKERFILE.name,
        buildargs={"ROOTFS": rootfs_tag},
        tag=tag,
        labels={LABEL_BASE: "1", "org.opencontainers.image.description": "HQ Python base"},
        network_mode="none",
        pull=False,
    )
    try:
        client.images.remove(rootfs_tag, noprune=True)  # only the tag: its layer is the base's
    except docker.errors.APIError as exc:
        logger.warning("could not untag %s: %s", rootfs_tag, exc)
    return image, True
