"""Images on the HQ side: the offline base image, script images, push, and digest lookup.

The only HQ module (besides the agent's runner) that imports ``docker``. Its calls block, which is
fine: the CLI that uses them is sync. Progress goes to an ``on_line`` callback (the CLI echoes it),
so a 45-second debootstrap or a pip install is never silent.
"""

from __future__ import annotations

import functools
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
from typing import Any, ParamSpec, TypeVar

import docker
import docker.errors
import yaml
from docker.models.images import Image
from docker.utils import parse_repository_tag
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


P = ParamSpec("P")
R = TypeVar("R")


def _docker_errors(fn: Callable[P, R]) -> Callable[P, R]:
    """Report the Docker SDK's errors as HQError, so the CLI shows one line, not a traceback."""

    @functools.wraps(fn)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return fn(*args, **kwargs)
        except docker.errors.APIError as exc:
            raise errors.HQError(f"Docker: {exc.explanation or exc}") from exc
        except docker.errors.DockerException as exc:
            raise errors.HQError(f"Docker: {exc}") from exc

    return wrapper


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


# -- manifests ---------------------------------------------------------------------------------


def format_validation_error(exc: ValidationError, *, source: str) -> errors.ValidationFailed:
    """A pydantic error as one HQ error listing each problem by its path in the manifest."""
    problems = []
    first_field: str | None = None
    for err in exc.errors():
        message = err["msg"].removeprefix("Value error, ")
        where = ".".join(str(p) for p in err["loc"])
        if not where:  # a check across fields: name the one its message starts with
            where = "command" if message.startswith("command ") else "(top level)"
        first_field = first_field or where
        if err["type"] == "extra_forbidden":
            message = "unknown key (check its spelling; see DESIGN.md for the manifest's keys)"
        problems.append(f"  - {where}: {message}")
    return errors.ValidationFailed(
        f"{source} is not a valid manifest:\n" + "\n".join(problems),
        field=first_field if len(problems) == 1 else None,
    )


def parse_manifest(text: str, *, source: str = MANIFEST_FILE) -> Manifest:
    """Validate manifest text (YAML, or JSON, which is YAML too) into a Manifest."""
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise errors.ValidationFailed(f"{source} is not valid YAML: {exc}") from exc
    if not isinstance(data, dict):
        raise errors.ValidationFailed(
            f"{source} must be a mapping with at least 'name' and 'command', "
            f"not {type(data).__name__}"
        )
    try:
        return Manifest.model_validate(data)
    except ValidationError as exc:
        raise format_validation_error(exc, source=source) from exc


def load_manifest(script_dir: Path) -> Manifest:
    """Read and validate ``<script_dir>/hq.yaml``; also check that the files it runs exist."""
    path = script_dir / MANIFEST_FILE
    if not script_dir.is_dir():
        raise errors.ValidationFailed(f"{script_dir} is not a directory", field="script_dir")
    if not path.is_file():
        raise errors.ValidationFailed(
            f"{script_dir} has no {MANIFEST_FILE}: write one (see DESIGN.md, "
            "'A script and its manifest')",
            field="hq.yaml",
        )
    manifest = parse_manifest(path.read_text(encoding="utf-8"), source=str(path))
    for part in manifest.command:
        is_local_file = part.endswith(".py") and "{" not in part and not part.startswith("/")
        if is_local_file and not (script_dir / part).is_file():
            raise errors.ValidationFailed(
                f"{path}: command runs {part!r}, but {script_dir} has no such file",
                field="command",
            )
    return manifest


def manifest_label(manifest: Manifest) -> str:
    """The manifest as compact JSON, for the image label ``hq.manifest``."""
    return json.dumps(manifest.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))


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
    existing = find_image(client=client, ref=ref)
    if (
        existing is not None
        and not force
        and existing.labels.get(LABEL_CONTEXT_SHA) == content_hash
        and existing.labels.get(LABEL_MANIFEST) == manifest_label(manifest)
    ):
        on_line(f"{ref} is up to date ({existing.short_id}); reusing it")
        return BuiltImage(ref, str(existing.id), manifest, content_hash, reused=True)
    with tempfile.TemporaryDirectory(prefix="hq-build-") as tmp:
        context = Path(tmp)
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
        on_line(f"building {ref} from {script_dir} on {base_image}")
        image = _stream_build(
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
    return BuiltImage(ref, str(image.id), manifest, content_hash, reused=False)


def manifest_from_image(image: Image) -> Manifest:
    """The contract an image carries in its ``hq.manifest`` label, validated."""
    label = image.labels.get(LABEL_MANIFEST)
    name = image.tags[0] if image.tags else image.short_id
    if not label:
        raise errors.ValidationFailed(
            f"image {name} has no {LABEL_MANIFEST} label: build it with `hq script build`",
            field=LABEL_MANIFEST,
        )
    return parse_manifest(label, source=f"the {LABEL_MANIFEST} label of {name}")


# -- registries and digests --------------------------------------------------------------------


def _progress_lines(chunks: Iterable[Mapping[str, Any]]) -> Iterator[str]:
    """Readable lines from a push/pull stream: one per layer state change, not per byte."""
    seen: dict[str, str] = {}
    for chunk in chunks:
        if "error" in chunk:
            detail = chunk.get("errorDetail", {}).get("message") or chunk["error"]
            raise errors.HQError(f"registry operation failed: {detail}")
        status = str(chunk.get("status", ""))
        layer = str(chunk.get("id", ""))
        if not status:
            continue
        repeated = layer and seen.get(layer) == status
        if repeated and status in ("Pushing", "Downloading", "Extracting"):
            continue
        if layer:
            seen[layer] = status
        yield f"{layer}: {status}" if layer else status


def registry_of(ref: str) -> str | None:
    """The registry host a reference names explicitly (``127.0.0.1:5000/x`` -> that), else None."""
    first, sep, _ = ref.partition("/")
    if sep and ("." in first or ":" in first or first == "localhost"):
        return first
    return None


@_docker_errors
def retag_for_registry(*, client: docker.DockerClient, ref: str, registry: str) -> str:
    """Tag the local image ``ref`` as ``<registry>/<repo>:<tag>``; returns the new reference."""
    image = find_image(client=client, ref=ref)
    if image is None:
        raise errors.NotFound(f"no local image {ref}: build it first with `hq script build`")
    repo, tag = parse_repository_tag(ref)
    if registry_of(repo) is not None:
        repo = repo.partition("/")[2]
    target = f"{registry.rstrip('/')}/{repo}"
    image.tag(target, tag=tag or "latest")
    return f"{target}:{tag or 'latest'}"


@_docker_errors
def push_image(*, client: docker.DockerClient, ref: str, on_line: OnLine = _quiet) -> str:
    """Push ``ref`` (which must name its registry) and return the registry's digest."""
    if registry_of(ref) is None:
        raise errors.ValidationFailed(
            f"{ref} names no registry: pass --registry HOST[:PORT] or tag it as "
            "HOST[:PORT]/name:tag",
            field="ref",
        )
    if find_image(client=client, ref=ref) is None:
        raise errors.NotFound(f"no local image {ref}: build it first with `hq script build`")
    repo, tag = parse_repository_tag(ref)
    digest: str | None = None
    stream = client.api.push(repo, tag=tag or "latest", stream=True, decode=True)
    for chunk in _with_aux(stream, sink=lambda aux: aux.get("Digest")):
        if isinstance(chunk, str):
            digest = chunk
        else:
            for line in _progress_lines([chunk]):
                on_line(line)
    if digest is None:
        digest = str(client.images.get_registry_data(ref).id)
    on_line(f"pushed {ref} as {repo}@{digest}")
    return digest


def _with_aux(
    chunks: Iterable[Mapping[str, Any]], *, sink: Callable[[Mapping[str, Any]], Any]
) -> Iterator[Mapping[str, Any] | str]:
    """Pass chunks through, turning an ``aux`` chunk into what ``sink`` picks from it."""
    for chunk in chunks:
        aux = chunk.get("aux")
        if isinstance(aux, Mapping):
            picked = sink(aux)
            if isinstance(picked, str):
                yield picked
            continue
        yield chunk


@_docker_errors
def local_digest(*, client: docker.DockerClient, ref: str) -> str:
    """The digest to publish for ``ref``: its registry digest once pushed, else its image ID.

    A pushed image has a RepoDigest for its repository, the digest any host can pull by. An image
    that never left this host (``make run``, ``hq standalone``) is pinned by its image ID
    (``sha256:...``), which agents on this host find locally. A reference that names a registry
    but was never pushed is refused: other hosts could not pull it.
    """
    image = find_image(client=client, ref=ref)
    if image is None:
        raise errors.NotFound(f"no local image {ref}: build it (and push it) first")
    repo, _ = parse_repository_tag(ref)
    for repo_digest in image.attrs.get("RepoDigests") or []:
        name, _, digest = str(repo_digest).partition("@")
        if name == repo:
            return digest
    if registry_of(ref) is not None:
        raise errors.ValidationFailed(
            f"{ref} names a registry but was not pushed from this host: "
            f"run `hq script push {ref}` first",
            field="image",
        )
    return str(image.id)


def find_local_by_digest(*, client: docker.DockerClient, image: str, digest: str) -> Image | None:
    """The local image pinned by (image, digest): by image ID, or by ``repo@digest``."""
    found = find_image(client=client, ref=digest)
    if found is not None and found.id == digest:
        return found
    repo = image.split("@", 1)[0]
    repo, _ = parse_repository_tag(repo)
    return find_image(client=client, ref=f"{repo}@{digest}")


@_docker_errors
def pull_by_digest(
    *, client: docker.DockerClient, image: str, digest: str, on_line: OnLine = _quiet
) -> Image:
    """The image pinned by digest: found locally, else pulled as ``repo@digest``."""
    found = find_local_by_digest(client=client, image=image, digest=digest)
    if found is not None:
        return found
    repo, _ = parse_repository_tag(image.split("@", 1)[0])
    ref = f"{repo}@{digest}"
    on_line(f"pulling {ref}")
    try:
        for line in _progress_lines(client.api.pull(ref, stream=True, decode=True)):
            on_line(line)
    except docker.errors.APIError as exc:
        raise errors.NotFound(f"cannot pull {ref}: {exc.explanation or exc}") from exc
    return client.images.get(ref)


@_docker_errors
def pull_image(*, client: docker.DockerClient, ref: str, on_line: OnLine = _quiet) -> Image:
    """Pull ``ref`` from the registry it names, showing progress (never from a default hub)."""
    if registry_of(ref) is None:
        raise errors.NotFound(f"no local image {ref}, and it names no registry to pull it from")
    repo, tag = parse_repository_tag(ref)
    on_line(f"pulling {ref}")
    try:
        for line in _progress_lines(client.api.pull(repo, tag=tag, stream=True, decode=True)):
            on_line(line)
    except docker.errors.APIError as exc:
        raise errors.NotFound(
            f"no local image {ref}, and pulling it failed: {exc.explanation or exc}"
        ) from exc
    return client.images.get(ref)
