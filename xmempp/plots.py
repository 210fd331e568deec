"""The evaluation's plot: mean J&F against the number of annotated frames, one line per strategy (matplotlib, Agg)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from xmempp.outputs import atomic_path


def plot_j_and_f(summary: pd.DataFrame, path: Path) -> None:
    """Write a PNG of summary's J&F (0..1) against annotated frames per video, one line per strategy."""
    from matplotlib.figure import Figure  # no pyplot: no global figure state, PNG written by the Agg canvas
    from matplotlib.ticker import MaxNLocator

    figure = Figure(figsize=(6, 4), dpi=120)
    axes = figure.subplots()
    for strategy, rows in summary.groupby("strategy", sort=False):
        axes.plot(rows.annotated_frames, rows["J&F"], marker="o", label=strategy)
    axes.xaxis.set_major_locator(MaxNLocator(integer=True))
    axes.set_xlabel("annotated frames per video (mean)")
    axes.set_ylabel("J&F on the other frames")
    axes.set_title("Segmentation quality against annotation effort")
    axes.grid(alpha=0.3)
    axes.legend(title="strategy")
    figure.tight_layout()
    with atomic_path(path) as temporary:
        figure.savefig(temporary, format="png")
