"""Script manifests: parse and validate hq.yaml, and carry it in the ``hq.manifest`` image label."""

from __future__ import annotations

import json
from pathlib import Path

import yaml
from docker.models.images import Image
from pydantic import ValidationError

from hq import errors
from hq.imaging._common import LABEL_MANIFEST
from hq.schemas.manifest import Manifest

MANIFEST_FILE = "hq.yaml"


def _field_of(message: str) -> str:
    """The key a check across fields is about, from the start of its message."""
    if message.startswith(("command ", "switch ", "list ")):
        return "command"
    return "env" if message.startswith("env") else "(top level)"


def format_validation_error(exc: ValidationError, *, source: str) -> errors.ValidationFailed:
    """A pydantic error as one HQ error listing each problem by its path in the manifest."""
    problems = []
    first_field: str | None = None
    for err in exc.errors():
        message = err["msg"].removeprefix("Value error, ")
        where = ".".join(str(p) for p in err["loc"])
        if not where:  # a check across fields: name the one its message starts with
            where = _field_of(message)
        first_field = first_field or where
        if err["type"] == "extra_forbidden":
            message = "unknown key (check its spelling; docs/manifest.md lists the manifest's keys)"
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
            f"{script_dir} has no {MANIFEST_FILE}: write one (docs/manifest.md in HQ's "
            "repository describes it)",
            field="hq.yaml",
        )
    manifest = parse_manifest(path.read_text(encoding="utf-8"), source=str(path))
    for part in (item for item in manifest.command if isinstance(item, str)):
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
