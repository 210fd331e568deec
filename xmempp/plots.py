"""The evaluation's plot: mean J&F against the number of annotated frames, one line per strategy (matplotlib, Agg)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO

import pandas as pd

from xmempp.outputs import atomic_path

if TYPE_CHECKING:
    from matplotlib.figure import Figure

ANNOTATED_COLUMN = "mean_annotated_frames_per_video"  # the summary's x: evaluate.py writes it, the plot reads it


def plot_j_and_f(summary: pd.DataFrame, into: Path | BinaryIO) -> Figure:
    """Write a PNG of summary's J&F against annotated frames per video, one line per strategy, to the path or the
    open file `into`; returns the figure.

    The y-axis always runs from 0 to 1, the whole range of J&F: an automatic range would zoom into differences of
    0.00004 and make noise look like a win.
    """
    from matplotlib.figure import Figure  # no pyplot: no global figure state, PNG written by the Agg canvas
    from matplotlib.ticker import MaxNLocator

    figure = Figure(figsize=(6, 4), dpi=120)
    axes = figure.subplots()
    for strategy, rows in summary.groupby("strategy", sort=False):
        axes.plot(rows[ANNOTATED_COLUMN], rows["J&F"], marker="o", label=strategy)
    axes.set_ylim(0, 1)
    axes.xaxis.set_major_locator(MaxNLocator(integer=True))
    axes.set_xlabel("annotated frames per video (mean)")
    axes.set_ylabel("J&F on the other frames (0 to 1)")
    axes.set_title("Segmentation quality against annotation effort")
    axes.grid(alpha=0.3)
    axes.legend(title="strategy")
    figure.tight_layout()
    if isinstance(into, Path):
        with atomic_path(into) as temporary:
            figure.savefig(temporary, format="png")
    else:
        figure.savefig(into, format="png")
    return figure
