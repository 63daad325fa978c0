"""A pipeline as a left-to-right graph: layers by longest path, node positions, edges, colours.

Input is the pipeline's steps as the API returns them (dicts of StepRead: ``name``, ``status``,
``needs``, ``reused``, ...). A step's layer is the length of the longest chain of steps it
reads from, so every edge points rightwards; within a layer steps are ordered by the mean row
of what they read (fewer crossings), ties kept in the order the pipeline lists them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import plotly.graph_objects as go

from dash_app.logic.status import status_colour

NODE_WIDTH = 0.72  # in layer units (one layer = 1.0 on the x axis)
NODE_HEIGHT = 0.62  # in row units
ROW_PX = 96
MIN_HEIGHT_PX = 220
LABEL_CHARS = 22
EDGE_COLOUR = "#6b7785"
LIGHT_STATUSES = frozenset({"waiting"})
MIN_LAYERS = 3
MIN_ROWS = 2


@dataclass(frozen=True)
class Node:
    name: str
    status: str
    reused: bool
    layer: int
    x: float
    y: float
    colour: str


@dataclass(frozen=True)
class Graph:
    nodes: list[Node]
    edges: list[tuple[str, str]]  # (from, to): ``to`` reads from ``from``
    layers: int
    rows: int  # steps in the widest layer

    def node(self, name: str) -> Node:
        return next(n for n in self.nodes if n.name == name)


def step_layers(steps: Sequence[dict[str, Any]]) -> dict[str, int]:
    """Each step's layer: 0 for a step that reads from no step, else 1 + its deepest need.

    Needs naming no step of the pipeline are ignored; a cycle (which HQ refuses at submit)
    raises ValueError naming the steps in it.
    """
    needs = {s["name"]: [n for n in s.get("needs", []) if n != s["name"]] for s in steps}
    known = set(needs)
    layer: dict[str, int] = {}
    pending = dict(needs)
    while pending:
        ready = [
            name
            for name, wants in pending.items()
            if all(w in layer or w not in known for w in wants)
        ]
        if not ready:
            raise ValueError(f"steps form a cycle: {', '.join(sorted(pending))}")
        for name in ready:
            depths = [layer[w] for w in pending[name] if w in layer]
            layer[name] = 1 + max(depths) if depths else 0
            del pending[name]
    return layer


def _order(steps: Sequence[dict[str, Any]], layer: dict[str, int]) -> list[list[str]]:
    """Step names per layer, each layer sorted by the mean row of the steps it reads from."""
    index = {s["name"]: i for i, s in enumerate(steps)}
    needs = {s["name"]: list(s.get("needs", [])) for s in steps}
    count = 1 + max(layer.values(), default=-1)
    columns: list[list[str]] = [[] for _ in range(count)]
    for step in steps:
        columns[layer[step["name"]]].append(step["name"])
    row: dict[str, int] = {}
    for column in columns:

        def key(name: str) -> tuple[float, int]:
            rows = [row[n] for n in needs[name] if n in row]
            return (sum(rows) / len(rows) if rows else float(index[name]), index[name])

        column.sort(key=key)
        row.update({name: i for i, name in enumerate(column)})
    return columns


def layout(steps: Sequence[dict[str, Any]]) -> Graph:
    """Positions (x = layer, y centred per layer, first row on top), edges and colours."""
    layer = step_layers(steps)
    columns = _order(steps, layer)
    rows = max((len(c) for c in columns), default=0)
    by_name = {s["name"]: s for s in steps}
    nodes: list[Node] = []
    for x, column in enumerate(columns):
        for i, name in enumerate(column):
            step = by_name[name]
            nodes.append(
                Node(
                    name=name,
                    status=str(step["status"]),
                    reused=bool(step.get("reused")),
                    layer=x,
                    x=float(x),
                    y=(len(column) - 1) / 2 - i,
                    colour=status_colour(str(step["status"])),
                )
            )
    order = {n.name: k for k, n in enumerate(nodes)}
    edges = sorted(
        {(need, s["name"]) for s in steps for need in s.get("needs", []) if need in by_name},
        key=lambda e: (order[e[1]], order[e[0]]),
    )
    return Graph(nodes=nodes, edges=edges, layers=len(columns), rows=rows)


def axis_range(count: int, minimum: int, *, centre: float) -> list[float]:
    """An axis range around ``centre`` with room for ``count`` layers (or rows), at least
    ``minimum``: a short pipeline is drawn in the middle, its boxes the size of a longer one's."""
    half = max(count, minimum) / 2
    return [centre - half, centre + half]


def edge_points(graph: Graph) -> tuple[list[float | None], list[float | None]]:
    """One polyline per edge, from the right side of a step to the left side of its reader,
    separated by None (a single Plotly line trace draws them all)."""
    xs: list[float | None] = []
    ys: list[float | None] = []
    for source, target in graph.edges:
        a, b = graph.node(source), graph.node(target)
        xs += [a.x + NODE_WIDTH / 2, b.x - NODE_WIDTH / 2, None]
        ys += [a.y, b.y, None]
    return xs, ys


def text_colour(status: str) -> str:
    """White on the status colour, dark on the light grey of a waiting step."""
    return "#1f2933" if status in LIGHT_STATUSES else "white"


def node_label(node: Node) -> str:
    name = node.name if len(node.name) <= LABEL_CHARS else node.name[: LABEL_CHARS - 1] + "…"
    mark = " · reused" if node.reused else ""
    return f"<b>{name}</b><br>{node.status}{mark}"


def _box(node: Node) -> dict[str, Any]:
    return {
        "type": "rect",
        "x0": node.x - NODE_WIDTH / 2,
        "x1": node.x + NODE_WIDTH / 2,
        "y0": node.y - NODE_HEIGHT / 2,
        "y1": node.y + NODE_HEIGHT / 2,
        "fillcolor": node.colour,
        "line": {
            "color": "#1f2933" if node.reused else node.colour,
            "width": 2,
            "dash": "dot" if node.reused else "solid",
        },
        "layer": "below",
    }


def _arrow(graph: Graph, source: str, target: str) -> dict[str, Any]:
    a, b = graph.node(source), graph.node(target)
    return {
        "x": b.x - NODE_WIDTH / 2,
        "y": b.y,
        "ax": a.x + NODE_WIDTH / 2,
        "ay": a.y,
        "xref": "x",
        "yref": "y",
        "axref": "x",
        "ayref": "y",
        "text": "",
        "showarrow": True,
        "arrowhead": 2,
        "arrowsize": 1.3,
        "arrowwidth": 1.5,
        "arrowcolor": EDGE_COLOUR,
    }


def _edges_trace(graph: Graph) -> go.Scatter:
    """The edge lines; customdata ``[from, to]`` on each of an edge's three points."""
    xs, ys = edge_points(graph)
    return go.Scatter(
        name="edges",
        x=xs,
        y=ys,
        mode="lines",
        line={"color": EDGE_COLOUR, "width": 1.5},
        hoverinfo="skip",
        customdata=[list(e) for e in graph.edges for _ in range(3)],
    )


def _steps_trace(graph: Graph, hrefs: dict[str, str]) -> go.Scatter:
    """A point (invisible, clickable) and a label in the middle of each step's box."""
    return go.Scatter(
        name="steps",
        x=[n.x for n in graph.nodes],
        y=[n.y for n in graph.nodes],
        mode="markers+text",
        text=[node_label(n) for n in graph.nodes],
        textfont={"color": [text_colour(n.status) for n in graph.nodes], "size": 12},
        marker={
            "size": 36,
            "opacity": 0,
            "symbol": "square",
            "color": [n.colour for n in graph.nodes],
        },
        customdata=[[n.name, n.status, n.reused, hrefs.get(n.name, "")] for n in graph.nodes],
        hovertemplate="%{customdata[0]}: %{customdata[1]}<extra></extra>",
    )


def figure(steps: Sequence[dict[str, Any]], *, hrefs: dict[str, str] | None = None) -> go.Figure:
    """The pipeline graph: a box per step in its status colour (dotted border when reused)
    with its name and status, an arrow from each step to the steps that read from it.

    Two traces carry the data: ``edges`` (the lines) and ``steps`` (one point per step, its
    customdata ``[name, status, reused, href]``, so a click can open the step's job).
    """
    graph = layout(steps)
    fig = go.Figure([_edges_trace(graph), _steps_trace(graph, hrefs or {})])
    height = max(MIN_HEIGHT_PX, ROW_PX * max(graph.rows, MIN_ROWS) + 60)
    fig.update_layout(
        shapes=[_box(n) for n in graph.nodes],
        annotations=[_arrow(graph, s, t) for s, t in graph.edges],
        showlegend=False,
        height=height,
        margin={"l": 10, "r": 10, "t": 10, "b": 10},
        plot_bgcolor="white",
        paper_bgcolor="white",
        xaxis={
            "visible": False,
            "range": axis_range(graph.layers, MIN_LAYERS, centre=(graph.layers - 1) / 2),
            "fixedrange": True,
        },
        yaxis={
            "visible": False,
            "range": axis_range(graph.rows, MIN_ROWS, centre=0.0),
            "fixedrange": True,
        },
        dragmode=False,
    )
    return fig
