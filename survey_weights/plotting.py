"""Plots (matplotlib is imported lazily, inside each function).

Every function takes ``ax=None`` (a new figure and Axes are created) and returns the Axes it drew on. Plots are meant
for a report: dot-and-whisker by criterion (points never joined by lines), legends outside the data, long labels
wrapped, ``tight_layout``, and no title that claims where the data come from (the caller passes ``title=``).
"""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["axes_or_new", "figure_png", "new_figure", "plot_intervals", "plot_profiles", "plot_worth"]

_LABEL_WIDTH = 38  # legend labels are wrapped at this many characters


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
    ax = axes_or_new(ax)
    df = result.to_frame()
    if sort:
        df = df.sort_values("weight")
    y = np.arange(len(df))
    w = df["weight"].to_numpy()
    lo = np.nan_to_num(w - df["ci_low"].to_numpy(), nan=0.0)
    hi = np.nan_to_num(df["ci_high"].to_numpy() - w, nan=0.0)
    ax.errorbar(w, y, xerr=np.vstack([lo, hi]), fmt="o", linestyle="none", color=color, capsize=3)
    ax.set_yticks(y)
    ax.set_yticklabels([str(i) for i in df["item"]])
    ax.axvline(1.0 / len(df), color="grey", lw=0.8, ls="--")
    ax.set_xlabel("worth (probability of being ranked first), 95% CI")
    _layout(ax)
    return ax


def _layout(ax: Any) -> None:
    """``tight_layout`` of the Axes' figure (legends outside the Axes included), unless it uses
    ``constrained_layout``, which then does the job."""
    fig = ax.figure
    engine = fig.get_layout_engine() if hasattr(fig, "get_layout_engine") else None
    if type(engine).__name__ != "ConstrainedLayoutEngine":  # None, tight or the placeholder a tight_layout leaves
        import warnings

        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # "not compatible with tight_layout" for odd Axes
            for _ in range(2):  # a legend anchored to its Axes moves with it: a second pass settles the layout
                fig.tight_layout()


def _wrap(label: str, width: int = _LABEL_WIDTH) -> str:
    """A legend label wrapped at `width` characters (at ``" & "`` and spaces) so long rules fit beside the plot."""
    import textwrap

    return "\n".join(textwrap.wrap(label, width=width, break_long_words=False, break_on_hyphens=False)) or label


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
    """Dot-and-whisker plot of one estimate per item with its interval, one dodged series per `key` value.

    Points are never joined by lines (the items are categories, not a scale); the legend sits outside the Axes, on
    the right, with long labels wrapped; the figure is laid out with ``tight_layout`` (unless it uses another layout
    engine).

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
        Axis label (default `value`, with "95% CI" when intervals are drawn) and title (default none: the caller
        says what the data are, e.g. "synthetic survey" for the bundled data).

    Returns
    -------
    matplotlib.axes.Axes
    """
    items = list(dict.fromkeys(frame["item"]))
    keys = [None] if key is None else list(dict.fromkeys(frame[key]))
    shown = {kv: _wrap((labels or {}).get(kv, str(kv))) for kv in keys if kv is not None}
    longest = max((len(line) for lab in shown.values() for line in lab.splitlines()), default=0)
    width = 6.0 if key is None else 5.5 + 0.075 * longest
    height = 1.2 + 0.4 * len(items) * max(1.0, min(len(keys), 6) / 2)
    ax = axes_or_new(ax, (width, height))
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
        label = None if kv is None else shown[kv]
        ax.errorbar(x, y, xerr=err, fmt="o", linestyle="none", capsize=2, color=f"C{j % 10}", label=label)
    if reference is not None:
        ax.axvline(reference, color="grey", lw=0.8, ls="--")
    ax.set_yticks(np.arange(len(items)))
    ax.set_yticklabels([str(i) for i in items])
    ax.invert_yaxis()
    ax.set_xlabel(xlabel or (f"{value} (95% CI)" if has_ci else value))
    if title:
        ax.set_title(title)
    if key is not None and len(keys):
        ax.legend(fontsize="small", loc="center left", bbox_to_anchor=(1.02, 0.5), frameon=False)
    _layout(ax)
    return ax


def plot_profiles(
    profiles: Any,
    *,
    ax: Any = None,
    title: str | None = None,
    xlabel: str | None = None,
    reference: float | None = None,
) -> Any:
    """Dot-and-whisker plot of weight profiles: one row per criterion, the profiles side by side with intervals.

    Parameters
    ----------
    profiles : WeightProfile or iterable of WeightProfile
        Objects with ``name``, ``weights`` (a Series by criterion), ``ci_low``/``ci_high`` (Series or None) and
        ``n_respondents``, e.g. :class:`~survey_weights.profiles.WeightProfile` or ``read_profiles(path)``. Their
        criteria may differ: each criterion of any profile gets a row, in order of first appearance.
    ax : matplotlib Axes, optional
        Axes to draw on; a new figure when None.
    title : str, optional
        Title; default the profile's name for one profile, none for several. Library plots never say where the
        data come from: pass e.g. ``title="Weight profiles (synthetic survey)"`` for the bundled data.
    xlabel : str, optional
        Default ``"weight (95% CI)"`` (the profiles' level, when they share one), ``"weight"`` without intervals.
    reference : float, optional
        x of a dashed reference line (e.g. ``1 / n_criteria``); default none.

    Returns
    -------
    matplotlib.axes.Axes

    Raises
    ------
    TypeError
        If `profiles` holds something without ``name`` and ``weights``.
    ValueError
        If `profiles` is empty.

    Examples
    --------
    >>> from survey_weights.profiles import WeightProfile
    >>> p = WeightProfile("pooled", {"cost": .5, "speed": .3, "comfort": .2}, n_respondents=40)
    >>> ax = plot_profiles([p], title="Weights")
    >>> [t.get_text() for t in ax.get_yticklabels()]
    ['cost', 'speed', 'comfort']
    """
    import pandas as pd

    items = [profiles] if hasattr(profiles, "weights") and hasattr(profiles, "name") else list(profiles)
    if not items:
        raise ValueError("`profiles` is empty. Fix: pass at least one WeightProfile (e.g. result.profiles()).")
    bad = [type(p).__name__ for p in items if not (hasattr(p, "name") and hasattr(p, "weights"))]
    if bad:
        raise TypeError(f"`profiles` must hold WeightProfile objects (with `name` and `weights`). Got {bad[:3]}.")
    rows = []
    for p in items:
        w = pd.Series(p.weights, dtype=float)
        lo, hi = getattr(p, "ci_low", None), getattr(p, "ci_high", None)
        rows.append(pd.DataFrame({
            "profile": p.name, "item": [str(c) for c in w.index], "weight": w.to_numpy(),
            "ci_low": np.nan if lo is None else pd.Series(lo, dtype=float).reindex(w.index).to_numpy(),
            "ci_high": np.nan if hi is None else pd.Series(hi, dtype=float).reindex(w.index).to_numpy()}))
    frame = pd.concat(rows, ignore_index=True)
    has_ci = bool(frame[["ci_low", "ci_high"]].notna().to_numpy().any())
    if not has_ci:
        frame = frame.drop(columns=["ci_low", "ci_high"])
    levels = {(getattr(p, "model", None) or {}).get("level") for p in items}
    level = levels.pop() if len(levels) == 1 else None
    if xlabel is None:
        xlabel = (f"weight ({level:.0%} CI)" if isinstance(level, float) else "weight (CI)") if has_ci else "weight"
    n = {p.name: getattr(p, "n_respondents", None) for p in items}
    labels = {k: f"{k} (n={v})" if v else str(k) for k, v in n.items()}
    if title is None and len(items) == 1:
        title = labels[items[0].name]
    return plot_intervals(frame, key="profile" if len(items) > 1 else None, ax=ax, labels=labels,
                          reference=reference, xlabel=xlabel, title=title)
