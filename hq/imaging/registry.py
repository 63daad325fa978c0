"""Registries and digests: retag, push, pull, and the digest a published script is pinned by."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any

import docker
import docker.errors
from docker.models.images import Image
from docker.utils import parse_repository_tag

from hq import errors
from hq.imaging._common import OnLine, _docker_errors, _quiet, find_image


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
