"""Plots (matplotlib is imported lazily, inside each function).

Every function takes ``ax=None`` (a new figure and Axes are created) and returns the Axes it drew on.
"""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["figure_png", "new_figure", "plot_worth"]


def new_figure(figsize: tuple[float, float] = (6, 4)) -> tuple[Any, Any]:
    """A figure and its Axes that belong to no pyplot state and need no backend choice (for files)."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=figsize)
    return fig, fig.subplots()


def figure_png(fig: Any, *, dpi: int = 110) -> bytes:
    """PNG bytes of a figure (laid out with ``tight_layout``)."""
    import io

    buf = io.BytesIO()
    fig.tight_layout()
    fig.savefig(buf, format="png", dpi=dpi)
    return buf.getvalue()


def _axes(ax: Any) -> Any:
    if ax is None:
        import matplotlib.pyplot as plt

        _, ax = plt.subplots(figsize=(6, 4))
    return ax


def plot_worth(result: Any, *, ax: Any = None, sort: bool = True, color: str = "C0") -> Any:
    """Dot plot of the fitted worths (weights) with 95% intervals.

    Parameters
    ----------
    result : FitResult
        A Plackett-Luce or Bradley-Terry fit.
    ax : matplotlib Axes, optional
        Axes to draw on; a new figure when None.
    sort : bool, default True
        Order items by weight (largest on top).
    color : str, default "C0"
        Matplotlib colour of the points and bars.

    Returns
    -------
    matplotlib.axes.Axes
    """
    ax = _axes(ax)
    df = result.to_frame()
    if sort:
        df = df.sort_values("weight")
    y = np.arange(len(df))
    w = df["weight"].to_numpy()
    lo = np.nan_to_num(w - df["ci_low"].to_numpy(), nan=0.0)
    hi = np.nan_to_num(df["ci_high"].to_numpy() - w, nan=0.0)
    ax.errorbar(w, y, xerr=np.vstack([lo, hi]), fmt="o", color=color, capsize=3)
    ax.set_yticks(y)
    ax.set_yticklabels([str(i) for i in df["item"]])
    ax.axvline(1.0 / len(df), color="grey", lw=0.8, ls="--")
    ax.set_xlabel("worth (probability of being ranked first), 95% CI")
    return ax
