"""Figures without code changes: HQ's matplotlib backend (``agent/hq_figures.py``) given to a
job's container.

The module is mounted read-only as ``hq_figures.py`` into the image's ``/opt/venv`` site-packages
(a directory already on the venv's ``sys.path``, so no other variable changes and images built
before this feature work unchanged), and ``MPLBACKEND=module://hq_figures`` is set. The
site-packages path depends on the venv's Python version, read once per image from
``/opt/venv/pyvenv.cfg`` (through a container created and never started). An image with no
``/opt/venv`` gets neither the mount nor the variable: a backend matplotlib could not import
would break it. Scripts that do not use matplotlib never import the module.
"""

from __future__ import annotations

import logging
import re
import threading
from pathlib import Path

from agent.docker_runner import DockerRunner, Mount

log = logging.getLogger(__name__)

MODULE_NAME = "hq_figures"
BACKEND = f"module://{MODULE_NAME}"
SOURCE = Path(__file__).with_name("hq_figures.py")
VENV = "/opt/venv"
VERSION_RE = re.compile(r"^version(?:_info)?\s*=\s*(\d+)\.(\d+)", re.MULTILINE)

_site_dirs: dict[str, str | None] = {}
_lock = threading.Lock()


def site_packages(pyvenv_cfg: str) -> str | None:
    """``/opt/venv/lib/pythonX.Y/site-packages`` from the text of the venv's ``pyvenv.cfg``."""
    match = VERSION_RE.search(pyvenv_cfg)
    if match is None:
        return None
    return f"{VENV}/lib/python{match.group(1)}.{match.group(2)}/site-packages"


def image_site_packages(runner: DockerRunner, image_id: str, labels: dict[str, str]) -> str | None:
    """The image's venv site-packages, probed once per image and remembered."""
    with _lock:
        if image_id in _site_dirs:
            return _site_dirs[image_id]
    try:
        raw = runner.read_image_file(image_id, f"{VENV}/pyvenv.cfg", labels=labels)
    except Exception:  # figures must never cost a job its run
        log.exception("could not look into image %s for its venv", image_id)
        return None
    found = site_packages(raw.decode("utf-8", "replace")) if raw is not None else None
    with _lock:
        _site_dirs[image_id] = found
    return found


def backend_file(work_dir: Path) -> Path:
    """The module, copied into the agent's work folder: a path on the host that the engine can
    bind even when the agent itself runs in a container."""
    target = work_dir / "figures" / f"{MODULE_NAME}.py"
    text = SOURCE.read_bytes()
    with _lock:
        if not target.exists() or target.read_bytes() != text:
            target.parent.mkdir(parents=True, exist_ok=True)
            tmp = target.with_suffix(".tmp")
            tmp.write_bytes(text)
            tmp.chmod(0o644)
            tmp.replace(target)
            target.parent.chmod(0o755)
    return target


def container_extras(
    runner: DockerRunner, image_id: str, *, work_dir: Path, labels: dict[str, str]
) -> tuple[list[Mount], dict[str, str]]:
    """The mount and the variable that give a job's container HQ's backend; none for an image
    without a venv."""
    site = image_site_packages(runner, image_id, labels)
    if site is None:
        return [], {}
    source = backend_file(work_dir)
    return [Mount(source, f"{site}/{MODULE_NAME}.py", read_only=True)], {"MPLBACKEND": BACKEND}
