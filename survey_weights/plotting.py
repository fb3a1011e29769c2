"""Plots (matplotlib is imported lazily, inside each function).

Every function takes ``ax=None`` (a new figure and Axes are created) and returns the Axes it drew on.
"""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["axes_or_new", "figure_png", "new_figure", "plot_intervals", "plot_worth"]


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


def axes_or_new(ax: Any, figsize: tuple[float, float] = (6, 4)) -> Any:
    if ax is None:
        import matplotlib.pyplot as plt

        _, ax = plt.subplots(figsize=figsize)
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
    created = ax is None
    ax = axes_or_new(ax)
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
    if created:
        ax.figure.tight_layout()
    return ax


def plot_intervals(
    frame: Any,
    *,
    key: str | None = None,
    value: str = "weight",
    ax: Any = None,
    labels: dict | None = None,
    reference: float | None = None,
    xlabel: str | None = None,
    title: str | None = None,
) -> Any:
    """Dot plot of one estimate per item with its interval, one dodged series per `key` value.

    Parameters
    ----------
    frame : pandas.DataFrame
        Tidy table with columns ``item`` and `value`, optionally ``ci_low``/``ci_high`` (drawn as error bars
        where finite) and `key` (one series per value, in order of appearance).
    key : str, optional
        Column that names the series (``"group"``, ``"class"``, ``"node"``, ``"term"``); None: one series.
    value : str, default "weight"
        Column plotted on the x axis.
    ax : matplotlib Axes, optional
        Axes to draw on; a new figure when None.
    labels : dict, optional
        Legend label of each key value (default ``str(value)``).
    reference : float, optional
        x of a dashed grey reference line (e.g. ``1 / n_items`` for weights, 0 for effects).
    xlabel, title : str, optional
        Axis label (default `value`, with "95% CI" when intervals are drawn) and title.

    Returns
    -------
    matplotlib.axes.Axes
    """
    items = list(dict.fromkeys(frame["item"]))
    keys = [None] if key is None else list(dict.fromkeys(frame[key]))
    created = ax is None
    ax = axes_or_new(ax, (6.0 if key is None else 9.0, 1.2 + 0.4 * len(items) * max(1.0, min(len(keys), 6) / 2)))
    off = np.linspace(-0.3, 0.3, len(keys)) if len(keys) > 1 else np.zeros(1)
    has_ci = {"ci_low", "ci_high"} <= set(frame.columns)
    pos = {it: k for k, it in enumerate(items)}
    for j, kv in enumerate(keys):
        sub = frame if kv is None else frame[frame[key] == kv]
        y = np.array([pos[it] for it in sub["item"]], dtype=float) + off[j]
        x = sub[value].to_numpy(dtype=float)
        err = None
        if has_ci:
            err = np.vstack([np.nan_to_num(x - sub["ci_low"].to_numpy(dtype=float), nan=0.0),
                             np.nan_to_num(sub["ci_high"].to_numpy(dtype=float) - x, nan=0.0)])
        label = None if kv is None else (labels or {}).get(kv, str(kv))
        ax.errorbar(x, y, xerr=err, fmt="o", capsize=2, color=f"C{j % 10}", label=label)
    if reference is not None:
        ax.axvline(reference, color="grey", lw=0.8, ls="--")
    ax.set_yticks(np.arange(len(items)))
    ax.set_yticklabels([str(i) for i in items])
    ax.invert_yaxis()
    ax.set_xlabel(xlabel or (f"{value} (95% CI)" if has_ci else value))
    if title:
        ax.set_title(title)
    if key is not None and len(keys):
        ax.legend(fontsize="small", loc="center left", bbox_to_anchor=(1.01, 0.5))
    if created:
        ax.figure.tight_layout()
    return ax
