"""HQ's matplotlib backend, run inside job containers, not by the agent.

The agent mounts this file read-only as ``hq_figures.py`` into the image's ``/opt/venv``
site-packages and sets ``MPLBACKEND=module://hq_figures`` (agent/figures.py). Then every figure
a script shows (``plt.show()``) or leaves open at exit is saved as
``$HQ_OUTPUTS/figures/figure-<n>.png`` (n counts from 1 in the order they were saved) and so
becomes an artifact; ``show`` then closes them, as a closed window would. Drawing is Agg's, so
nothing else changes. A script without matplotlib never imports this module. A figure that
cannot be saved is reported on stderr and never fails the script. Kept to Python 3.8 syntax and
the classic backend interface (matplotlib 3.x).
"""

from __future__ import annotations

import atexit
import os
import sys
from typing import Any

from matplotlib._pylab_helpers import Gcf
from matplotlib.backend_bases import FigureManagerBase
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

FigureCanvas = FigureCanvasAgg
FigureManager = FigureManagerBase
_count = [0]


def _folder() -> str:
    return os.path.join(os.environ.get("HQ_OUTPUTS", "/hq/outputs"), "figures")


def _next_path(folder: str) -> str:
    while True:
        _count[0] += 1
        path = os.path.join(folder, f"figure-{_count[0]}.png")
        if not os.path.exists(path):  # never overwrite a file the script wrote itself
            return path


def save_open_figures() -> None:
    """Every open figure as the next PNG under ``figures/``, oldest figure first."""
    managers = sorted(Gcf.get_all_fig_managers(), key=lambda m: m.num)
    if not managers:
        return
    folder = _folder()
    try:
        os.makedirs(folder, exist_ok=True)
    except OSError as exc:
        print(f"hq: figures not saved: {exc}", file=sys.stderr)
        return
    for manager in managers:
        try:
            manager.canvas.figure.savefig(_next_path(folder), format="png")
        except Exception as exc:
            print(f"hq: figure {manager.num} not saved: {exc}", file=sys.stderr)


def show(*args: Any, **kwargs: Any) -> None:
    """``plt.show()``: save every open figure, then close them."""
    save_open_figures()
    Gcf.destroy_all()


def new_figure_manager(num: Any, *args: Any, FigureClass: Any = Figure, **kwargs: Any) -> Any:
    return new_figure_manager_given_figure(num, FigureClass(*args, **kwargs))


def new_figure_manager_given_figure(num: Any, figure: Any) -> Any:
    return FigureManagerBase(FigureCanvasAgg(figure), num)


def draw_if_interactive() -> None:
    """Nothing is drawn until a figure is saved."""


atexit.register(save_open_figures)  # runs before matplotlib's own exit hook closes them
