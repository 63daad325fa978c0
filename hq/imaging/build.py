"""Building images: the offline base image, and script images reused by their context hash.

Progress goes to an ``on_line`` callback (the CLI echoes it), so a 45-second debootstrap or a pip
install is never silent.
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import docker
import docker.errors
from docker.models.images import Image
from docker.utils import parse_repository_tag

from hq import errors
from hq.imaging._common import (
    LABEL_BASE,
    LABEL_CONTEXT_SHA,
    LABEL_MANIFEST,
    LABEL_SCRIPT,
    OnLine,
    _docker_errors,
    _quiet,
    find_image,
)
from hq.imaging.manifest import load_manifest, manifest_label
from hq.imaging.registry import _progress_lines
from hq.schemas.manifest import Manifest

logger = logging.getLogger(__name__)

REPO_ROOT = Path(__file__).resolve().parents[2]
IMAGES_DIR = REPO_ROOT / "images"
BASE_DOCKERFILE = IMAGES_DIR / "base.Dockerfile"
SCRIPT_DOCKERFILE = IMAGES_DIR / "script.Dockerfile"

DEFAULT_BASE_TAG = "hq-base:bookworm"
DEFAULT_SUITE = "bookworm"
DEFAULT_MIRROR = "http://deb.debian.org/debian"
BASE_PACKAGES = ("python3", "python3-venv", "ca-certificates")
HOST_CA_BUNDLE = Path("/etc/ssl/certs/ca-certificates.crt")

CA_FILE_IN_CONTEXT = "hq-host-ca.crt"
# Never copied into a script image: local data, caches and what a laptop run left behind.
CONTEXT_EXCLUDES = frozenset(
    {"example", "__pycache__", ".pytest_cache", ".venv", "venv", "results.json", ".git"}
)


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


def _require_debootstrap() -> None:
    """Refuse early, saying what to do, when debootstrap cannot run here."""
    if os.geteuid() != 0:
        raise errors.HQError(
            "building the base image runs debootstrap, which needs root: run it as root "
            "(or use a base image from a registry with --base, e.g. python:3.11-slim)"
        )
    if shutil.which("debootstrap") is None:
        raise errors.HQError(
            "debootstrap is not installed: apt-get install -y debootstrap "
            "(or use a base image from a registry with --base, e.g. python:3.11-slim)"
        )


def _debootstrap_rootfs(*, root: Path, suite: str, mirror: str, on_line: OnLine) -> None:
    """A minbase rootfs with python3, python3-venv and ca-certificates, without apt's caches."""
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


def _import_rootfs(
    *, client: docker.DockerClient, root: Path, rootfs_tag: str, on_line: OnLine
) -> None:
    """Pack the rootfs into a tarball beside it and ``docker import`` it as ``rootfs_tag``."""
    tarball = root.parent / "rootfs.tar"
    on_line("packing the rootfs")
    _run_streaming(["tar", "-C", str(root), "-cf", str(tarball), "."], on_line=on_line)
    on_line(f"docker import -> {rootfs_tag}")
    repo, _, rootfs_version = rootfs_tag.partition(":")
    client.api.import_image_from_file(str(tarball), repository=repo, tag=rootfs_version)


def _add_base_user(
    *, client: docker.DockerClient, rootfs_tag: str, tag: str, on_line: OnLine
) -> Image:
    """Build images/base.Dockerfile on the imported rootfs: the user hq, uid/gid 1000."""
    on_line(f"adding the user hq (1000:1000) -> {tag}")
    return _stream_build(
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


def _untag_rootfs(*, client: docker.DockerClient, rootfs_tag: str) -> None:
    try:
        client.images.remove(rootfs_tag, noprune=True)  # only the tag: its layer is the base's
    except docker.errors.APIError as exc:
        logger.warning("could not untag %s: %s", rootfs_tag, exc)


@_docker_errors
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
    _require_debootstrap()
    rootfs_tag = f"hq-base-rootfs:{suite}"
    with tempfile.TemporaryDirectory(prefix="hq-base-") as tmp:
        root = Path(tmp) / "rootfs"
        _debootstrap_rootfs(root=root, suite=suite, mirror=mirror, on_line=on_line)
        _import_rootfs(client=client, root=root, rootfs_tag=rootfs_tag, on_line=on_line)
    image = _add_base_user(client=client, rootfs_tag=rootfs_tag, tag=tag, on_line=on_line)
    _untag_rootfs(client=client, rootfs_tag=rootfs_tag)
    return image, True


# -- script images -----------------------------------------------------------------------------


@dataclass(frozen=True)
class BuiltImage:
    ref: str
    image_id: str
    manifest: Manifest
    context_sha256: str
    reused: bool


def _context_files(script_dir: Path) -> Iterator[tuple[str, Path]]:
    """(relative posix path, file) for each file that goes into the image, in a stable order."""
    for dirpath, dirnames, filenames in os.walk(script_dir):
        dirnames[:] = sorted(d for d in dirnames if d not in CONTEXT_EXCLUDES)
        for filename in sorted(filenames):
            path = Path(dirpath) / filename
            if filename in CONTEXT_EXCLUDES or filename.endswith(".pyc") or path.is_symlink():
                continue
            yield path.relative_to(script_dir).as_posix(), path


def context_sha256(*, script_dir: Path, dockerfile_text: str, base_image_id: str) -> str:
    """The hash that decides whether an existing image can be reused: Dockerfile, base, files."""
    digest = hashlib.sha256()
    digest.update(dockerfile_text.encode())
    digest.update(b"\0" + base_image_id.encode() + b"\0")
    for rel, path in _context_files(script_dir):
        digest.update(rel.encode() + b"\0")
        digest.update(hashlib.sha256(path.read_bytes()).digest())
    return digest.hexdigest()


def default_image_ref(name: str) -> str:
    return f"hq/{name}:latest"


def _ensure_base(*, client: docker.DockerClient, base_image: str, on_line: OnLine) -> Image:
    image = find_image(client=client, ref=base_image)
    if image is not None:
        return image
    if base_image == DEFAULT_BASE_TAG:
        raise errors.NotFound(
            f"base image {base_image} is not built yet: run `hq base-image build` first "
            "(or pass --base python:3.11-slim where Docker Hub is reachable)"
        )
    on_line(f"pulling base image {base_image}")
    repo, tag = parse_repository_tag(base_image)
    try:
        for line in _progress_lines(client.api.pull(repo, tag=tag, stream=True, decode=True)):
            on_line(line)
        return client.images.get(base_image)
    except docker.errors.APIError as exc:
        raise errors.NotFound(
            f"base image {base_image} is not local and pulling it failed: {exc.explanation or exc}"
        ) from exc


def _reusable_image(
    *, client: docker.DockerClient, ref: str, content_hash: str, manifest: Manifest
) -> Image | None:
    """The image tagged ``ref`` if it was built from the same context hash and manifest."""
    existing = find_image(client=client, ref=ref)
    if (
        existing is not None
        and existing.labels.get(LABEL_CONTEXT_SHA) == content_hash
        and existing.labels.get(LABEL_MANIFEST) == manifest_label(manifest)
    ):
        return existing
    return None


def _write_context(*, context: Path, script_dir: Path, dockerfile_text: str) -> None:
    """The build context: the script's files under src/, requirements.txt (maybe empty), the
    Dockerfile, and the host CA bundle (maybe empty) for the builder stage's pip."""
    for rel, path in _context_files(script_dir):
        (context / "src" / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(path, context / "src" / rel)
    (context / "src").mkdir(exist_ok=True)
    requirements = script_dir / "requirements.txt"
    (context / "requirements.txt").write_bytes(
        requirements.read_bytes() if requirements.is_file() else b""
    )
    (context / "Dockerfile").write_text(dockerfile_text, encoding="utf-8")
    ca = HOST_CA_BUNDLE.read_bytes() if HOST_CA_BUNDLE.is_file() else b""
    (context / CA_FILE_IN_CONTEXT).write_bytes(ca)


def _build_script_context(
    *,
    client: docker.DockerClient,
    context: Path,
    ref: str,
    base_image: str,
    manifest: Manifest,
    content_hash: str,
    on_line: OnLine,
) -> Image:
    """Build a written context, labelled with the manifest, the script name and the hash."""
    return _stream_build(
        client=client,
        on_line=on_line,
        path=str(context),
        dockerfile="Dockerfile",
        tag=ref,
        buildargs={"BASE_IMAGE": base_image},
        labels={
            LABEL_MANIFEST: manifest_label(manifest),
            LABEL_SCRIPT: manifest.name,
            LABEL_CONTEXT_SHA: content_hash,
        },
        network_mode="host",
        pull=False,
    )


@_docker_errors
def build_script_image(
    *,
    client: docker.DockerClient,
    script_dir: Path,
    ref: str | None = None,
    base_image: str = DEFAULT_BASE_TAG,
    dockerfile: Path = SCRIPT_DOCKERFILE,
    force: bool = False,
    on_line: OnLine = _quiet,
) -> BuiltImage:
    """Validate ``script_dir``'s manifest and build its image, or reuse one with the same hash.

    The image gets the labels hq.manifest (the manifest as JSON), hq.script and
    hq.context-sha256; an image already tagged ``ref`` with the same hash is reused.
    """
    manifest = load_manifest(script_dir)
    ref = ref or default_image_ref(manifest.name)
    dockerfile_text = dockerfile.read_text(encoding="utf-8")
    base = _ensure_base(client=client, base_image=base_image, on_line=on_line)
    content_hash = context_sha256(
        script_dir=script_dir, dockerfile_text=dockerfile_text, base_image_id=str(base.id)
    )
    existing = _reusable_image(client=client, ref=ref, content_hash=content_hash, manifest=manifest)
    if existing is not None and not force:
        on_line(f"{ref} is up to date ({existing.short_id}); reusing it")
        return BuiltImage(ref, str(existing.id), manifest, content_hash, reused=True)
    with tempfile.TemporaryDirectory(prefix="hq-build-") as tmp:
        context = Path(tmp)
        _write_context(context=context, script_dir=script_dir, dockerfile_text=dockerfile_text)
        on_line(f"building {ref} from {script_dir} on {base_image}")
        image = _build_script_context(
            client=client,
            context=context,
            ref=ref,
            base_image=base_image,
            manifest=manifest,
            content_hash=content_hash,
            on_line=on_line,
        )
    return BuiltImage(ref, str(image.id), manifest, content_hash, reused=False)
