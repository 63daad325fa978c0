"""A script's imports -> the distributions of a draft ``requirements.txt``.

Top-level imports are read with ``ast`` (also those inside functions and ``try``). The standard
library (``sys.stdlib_module_names``), relative imports and the script's own modules (a ``.py``
file or a package beside it) are left out. The rest are looked up with
``importlib.metadata.packages_distributions()`` of the interpreter that has the script's packages
(pinned to the version installed there), then in a small table of well-known mismatches (``sklearn``
is ``scikit-learn``; unpinned, since nothing says which version the script wants). What neither
knows is listed as a comment to confirm.
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

from hq import errors

KNOWN = {  # import name -> distribution, where they differ
    "sklearn": "scikit-learn",
    "cv2": "opencv-python",
    "yaml": "PyYAML",
    "PIL": "Pillow",
    "skimage": "scikit-image",
    "bs4": "beautifulsoup4",
    "dateutil": "python-dateutil",
    "Bio": "biopython",
    "dotenv": "python-dotenv",
    "jwt": "PyJWT",
    "attr": "attrs",
    "Crypto": "pycryptodome",
    "serial": "pyserial",
    "docx": "python-docx",
    "magic": "python-magic",
}
# Run in the script's interpreter: which distribution provides each module, and their versions.
LOOKUP = """
import importlib.metadata as m, json, sys
dists = m.packages_distributions()
versions = {}
for d in m.distributions():
    name = d.metadata["Name"]
    if name:
        versions.setdefault(name, d.version)
stdlib = sorted(sys.stdlib_module_names)
print(json.dumps({"modules": dists, "versions": versions, "stdlib": stdlib}))
"""
LOOKUP_TIMEOUT_S = 60.0


@dataclass
class Requirements:
    lines: list[str] = field(default_factory=list)  # "numpy==2.2.6", "scikit-learn"
    unresolved: list[str] = field(default_factory=list)  # import names nobody knows

    def text(self) -> str:
        notes = [f"# HQ: confirm: no distribution found for `import {m}`" for m in self.unresolved]
        return "\n".join([*self.lines, *notes]) + "\n"


def imported_modules(source: str) -> list[str]:
    """Top-level names of the absolute imports of a module, in order of first appearance."""
    found: dict[str, None] = {}
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            for alias in node.names:
                found.setdefault(alias.name.split(".")[0], None)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.setdefault(node.module.split(".")[0], None)
    return list(found)


def is_local(module: str, folder: Path) -> bool:
    return (folder / f"{module}.py").is_file() or (folder / module / "__init__.py").is_file()


def interpreter_packages(python: str | None) -> dict[str, dict[str, object]]:
    """packages_distributions(), versions and stdlib names of ``python`` (default: this one)."""
    python = python or sys.executable
    try:
        done = subprocess.run(
            [python, "-c", LOOKUP],
            capture_output=True,
            text=True,
            timeout=LOOKUP_TIMEOUT_S,
            stdin=subprocess.DEVNULL,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise errors.HQError(f"{python} could not list its packages: {exc}") from exc
    if done.returncode != 0:
        tail = done.stderr.strip()[-300:]
        raise errors.HQError(f"{python} could not list its packages: {tail}")
    data: dict[str, dict[str, object]] = json.loads(done.stdout)
    return data


def resolve(script: Path, *, python: str | None = None) -> Requirements:
    """The distributions the script's imports need, pinned where ``python`` has them."""
    found = interpreter_packages(python)
    modules, versions = found["modules"], found["versions"]
    stdlib = set(found["stdlib"]) | set(sys.stdlib_module_names)
    result = Requirements()
    seen: set[str] = set()
    for module in imported_modules(script.read_text(encoding="utf-8")):
        if module in stdlib or module == "__future__" or is_local(module, script.parent):
            continue
        dists = modules.get(module)
        if isinstance(dists, list) and dists:
            dist = str(dists[0])
            line = f"{dist}=={versions[dist]}" if dist in versions else dist
        elif module in KNOWN:
            dist, line = KNOWN[module], KNOWN[module]
        else:
            result.unresolved.append(module)
            continue
        if dist.lower() not in seen:
            seen.add(dist.lower())
            result.lines.append(line)
    return result
