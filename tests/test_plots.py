"""Plots an analyst can put in a report (issue 15.6): every result's plot and the profile plots render to PNG with
their criteria and group names, points never joined by lines, legends outside the data and inside the figure,
labels that fit, and no title that claims where the data come from."""
from __future__ import annotations

import warnings

import matplotlib
import numpy as np
import pandas as pd
import pytest

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402

import survey_weights as sw  # noqa: E402
from survey_weights.criteria import SURVEY_CRITERIA  # noqa: E402
from survey_weights.plotting import plot_profiles  # noqa: E402
from survey_weights.profiles import WeightProfile, derive_profile  # noqa: E402

ITEMS = ["cost", "speed", "comfort", "safety_record", "range", "design", "service", "resale"]


@pytest.fixture(scope="module")
def rankings():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", sw.DataRecodeWarning)
        return sw.Rankings.from_ratings(sw.load_example_survey(), SURVEY_CRITERIA, respondent="respondent_id",
                                        scale=(1, 5), covariates=["age_group", "severity"])


@pytest.fixture(scope="module")
def results(rankings):
    return {
        "fit": sw.fit_plackett_luce(rankings),
        "groups": sw.fit_by_group(rankings, "age_group"),
        "tree": sw.fit_tree(rankings, ["age_group", "severity"], minsize=20, alpha=0.5),
        "mixture": sw.fit_mixture(rankings, 2, seed=0, n_starts=2),
        "bootstrap": sw.bootstrap(rankings, n_boot=60, seed=1, progress=False),
        "regression": sw.fit_regression(rankings, ["severity"]),
    }


def _render(ax, path):
    ax.figure.savefig(path)
    data = path.read_bytes()
    assert len(data) > 5000 and data[:4] == b"\x89PNG"
    return ax.figure.canvas.get_renderer()


def _texts(ax):
    legend = [t.get_text() for t in ax.get_legend().get_texts()] if ax.get_legend() else []
    return {t.get_text() for t in ax.get_yticklabels()}, legend


def _check_report_layout(ax, renderer):
    """Nothing joined by lines; the legend right of the data and inside the figure; no text outside the figure."""
    for line in ax.get_lines():
        xs = np.asarray(line.get_xdata(), dtype=float)
        if len(set(xs.tolist())) > 1:  # not the vertical reference line
            assert line.get_linestyle() in ("None", "none", " ", ""), "points joined by a line"
    fig_box = ax.figure.bbox
    tight = ax.figure.get_tightbbox(renderer)  # inches
    width, height = ax.figure.get_size_inches()
    assert tight.x0 >= -0.05 and tight.y0 >= -0.05 and tight.x1 <= width + 0.05 and tight.y1 <= height + 0.05
    leg = ax.get_legend()
    if leg is not None:
        lb, ab = leg.get_window_extent(renderer), ax.get_window_extent(renderer)
        assert lb.x0 >= ab.x1 - 1, "legend over the data"
        assert lb.x1 <= fig_box.x1 + 1, "legend cut off"
        assert all(len(line) <= 40 for t in leg.get_texts() for line in t.get_text().splitlines())


@pytest.mark.parametrize("kind", ["fit", "groups", "tree", "mixture", "bootstrap", "regression"])
def test_every_result_plot_renders_for_a_report(results, kind, tmp_path):
    res = results[kind]
    ax = res.plot()
    renderer = _render(ax, tmp_path / f"{kind}.png")
    ticks, legend = _texts(ax)
    assert set(SURVEY_CRITERIA) <= ticks
    want = {"groups": [f"age_group={g}" for g in res.groups] if kind == "groups" else [],
            "mixture": ["class 1", "class 2"],
            "tree": [f"[{i}]" for i in getattr(res, "leaf_ids", [])]}.get(kind, [])
    assert all(any(lab.startswith(w) for lab in legend) for w in want), (want, legend)
    assert "synthetic" not in ax.get_title().lower()
    _check_report_layout(ax, renderer)
    plt.close(ax.figure)


def test_tree_labels_fit_with_one_condition_per_covariate(results, tmp_path):
    tree = results["tree"]
    short = tree.short_rules()
    for i, rule in tree.rules().items():
        variables = [c.split(" ", 1)[0] for c in rule.split(" & ")] if rule != "root" else []
        assert [c.split(" ", 1)[0] for c in short[i].split(" & ")] == list(dict.fromkeys(variables)) or not variables
    ax = tree.plot()
    renderer = _render(ax, tmp_path / "tree.png")
    legend = " ".join(_texts(ax)[1]).replace("\n", " ")
    assert all(short[i] in legend for i in tree.leaf_ids)
    _check_report_layout(ax, renderer)
    plt.close(ax.figure)


def test_side_by_side_plots_do_not_overlap(results, tmp_path):
    fig, axes = plt.subplots(1, 2, figsize=(12, 4))
    results["groups"].plot(ax=axes[0]).set_title("by age group (synthetic survey)")
    results["mixture"].plot(ax=axes[1])
    fig.savefig(tmp_path / "two.png")
    r = fig.canvas.get_renderer()
    legend0 = axes[0].get_legend().get_window_extent(r)
    right = axes[1].get_tightbbox(r)
    assert legend0.x1 <= right.x0 + 1, "the left legend runs into the right plot"
    assert axes[0].get_title() == "by age group (synthetic survey)"  # the caller's title, kept
    plt.close(fig)


def test_weight_profile_plot(rankings, tmp_path):
    prof = derive_profile(sw.fit_plackett_luce(rankings), name="pooled")
    ax = prof.plot()
    renderer = _render(ax, tmp_path / "profile.png")
    ticks, legend = _texts(ax)
    assert ticks == set(prof.criteria) and not legend
    assert ax.get_title() == "pooled (n=335)" and ax.get_xlabel() == "weight (95% CI)"
    assert len(ax.collections) >= 1  # the whiskers
    _check_report_layout(ax, renderer)
    given = plt.subplots()[1]
    assert prof.plot(ax=given, title="Pooled weights") is given and given.get_title() == "Pooled weights"
    plt.close("all")


def test_plot_profiles_side_by_side_with_any_criteria(tmp_path):
    rng = np.random.default_rng(0)
    df = pd.DataFrame(rng.integers(0, 11, (80, len(ITEMS))), columns=ITEMS)
    df["rid"] = [f"R{i}" for i in range(80)]
    df["region"] = np.where(np.arange(80) < 40, "north", "south")
    r = sw.Rankings.from_ratings(df, ITEMS, respondent="rid", scale=(0, 10), covariates=["region"])
    profs = [derive_profile(sw.fit_plackett_luce(r), safety={"name": "harm_avoidance", "floor": 0.2}),
             *sw.fit_by_group(r, "region").profiles(safety=None)]
    ax = plot_profiles(profs, title="Car survey")
    renderer = _render(ax, tmp_path / "profiles.png")
    ticks, legend = _texts(ax)
    assert ticks == {*ITEMS, "harm_avoidance"}
    assert [lab.split(" (n=")[0] for lab in legend] == ["pooled", "region=north", "region=south"]
    assert ax.get_title() == "Car survey"
    _check_report_layout(ax, renderer)
    # profiles read back from an export plot the same way; without intervals the axis says so
    bare = WeightProfile("manual", {"a": 0.5, "b": 0.5})
    ax2 = plot_profiles(bare)
    assert ax2.get_xlabel() == "weight" and ax2.get_title() == "manual"
    plt.close("all")


def test_plot_profiles_errors():
    with pytest.raises(ValueError, match="`profiles` is empty"):
        plot_profiles([])
    with pytest.raises(TypeError, match="WeightProfile"):
        plot_profiles([{"name": "x"}])
