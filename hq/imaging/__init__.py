"""Images on the HQ side: the offline base image, script images, push, and digest lookup.

With agent/docker_runner.py, the only code in HQ that imports ``docker``. Its calls block, which is
fine: the CLI that uses them is sync. Modules, each importing only those above it:

- ``_common``: the Docker client, the SDK-error wrapper, image lookup and the label names;
- ``manifest``: parse, load and validate manifests, and the ``hq.manifest`` label;
- ``registry``: retag, push, pull, and the digest a script is published with;
- ``build``: the base image and script images (which may pull a base from a registry).
"""

from hq.imaging._common import (
    LABEL_BASE,
    LABEL_CONTEXT_SHA,
    LABEL_MANIFEST,
    LABEL_SCRIPT,
    OnLine,
    find_image,
    get_docker_client,
)
from hq.imaging.build import (
    BASE_DOCKERFILE,
    BASE_PACKAGES,
    CA_FILE_IN_CONTEXT,
    CONTEXT_EXCLUDES,
    DEFAULT_BASE_TAG,
    DEFAULT_MIRROR,
    DEFAULT_SUITE,
    HOST_CA_BUNDLE,
    IMAGES_DIR,
    REPO_ROOT,
    SCRIPT_DOCKERFILE,
    BuiltImage,
    build_base_image,
    build_script_image,
    context_sha256,
    default_image_ref,
)
from hq.imaging.manifest import (
    MANIFEST_FILE,
    format_validation_error,
    load_manifest,
    manifest_from_image,
    manifest_label,
    parse_manifest,
)
from hq.imaging.registry import (
    _progress_lines as _progress_lines,  # tests/unit/test_manifest.py checks it directly
)
from hq.imaging.registry import (
    find_local_by_digest,
    local_digest,
    pull_by_digest,
    pull_image,
    push_image,
    registry_of,
    retag_for_registry,
)

__all__ = [
    "BASE_DOCKERFILE",
    "BASE_PACKAGES",
    "CA_FILE_IN_CONTEXT",
    "CONTEXT_EXCLUDES",
    "DEFAULT_BASE_TAG",
    "DEFAULT_MIRROR",
    "DEFAULT_SUITE",
    "HOST_CA_BUNDLE",
    "IMAGES_DIR",
    "LABEL_BASE",
    "LABEL_CONTEXT_SHA",
    "LABEL_MANIFEST",
    "LABEL_SCRIPT",
    "MANIFEST_FILE",
    "REPO_ROOT",
    "SCRIPT_DOCKERFILE",
    "BuiltImage",
    "OnLine",
    "build_base_image",
    "build_script_image",
    "context_sha256",
    "default_image_ref",
    "find_image",
    "find_local_by_digest",
    "format_validation_error",
    "get_docker_client",
    "load_manifest",
    "local_digest",
    "manifest_from_image",
    "manifest_label",
    "parse_manifest",
    "pull_by_digest",
    "pull_image",
    "push_image",
    "registry_of",
    "retag_for_registry",
]
