"""What the imaging modules share: the Docker client, the error wrapper, and the image labels."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import ParamSpec, TypeVar

import docker
import docker.errors
from docker.models.images import Image

from hq import errors

OnLine = Callable[[str], None]

LABEL_MANIFEST = "hq.manifest"
LABEL_SCRIPT = "hq.script"
LABEL_CONTEXT_SHA = "hq.context-sha256"
LABEL_BASE = "hq.base"


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
