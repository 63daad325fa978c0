"""The job page's figures: every PNG artifact drawn as an image (the figures a script showed
with ``plt.show()`` land under ``figures/``), each linking to its file."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from dash import html

FIGURE_SUFFIXES = (".png",)
MAX_FIGURES = 24  # past that, the artifact list below still links every file


def artifact_href(job_id: str, path: str) -> str:
    """The web app's own link: it redirects to a fresh presigned URL."""
    return f"/download/jobs/{job_id}/artifacts/{quote(path)}"


def figure_paths(artifacts: list[dict[str, Any]]) -> list[str]:
    """PNG artifacts, ``figures/`` first in the order they were saved, then the others."""
    pngs = [a["path"] for a in artifacts if a["path"].lower().endswith(FIGURE_SUFFIXES)]

    def order(path: str) -> tuple[int, int, str]:
        stem = path.rsplit("/", 1)[-1].removesuffix(".png")
        number = stem.removeprefix("figure-")
        shown = path.startswith("figures/") and number.isdigit()
        return (0 if shown else 1, int(number) if shown else 0, path)

    return sorted(pngs, key=order)[:MAX_FIGURES]


def figure_gallery(job_id: str, artifacts: list[dict[str, Any]]) -> html.Div | None:
    paths = figure_paths(artifacts)
    if not paths:
        return None
    return html.Div(
        [html.H3("Figures")]
        + [
            html.Figure(
                [
                    html.A(
                        html.Img(src=artifact_href(job_id, p), alt=p, className="figure"),
                        href=artifact_href(job_id, p),
                        target="_blank",
                    ),
                    html.Figcaption(p, className="muted"),
                ],
                className="job-figure",
            )
            for p in paths
        ],
        id="job-figures",
        className="row",
    )
