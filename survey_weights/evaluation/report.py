"""Markdown report of an :class:`~survey_weights.evaluation.EvaluationResult` (tables + linked PNG plots)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from .._util.io import atomic_write_text

if TYPE_CHECKING:  # pragma: no cover
    from .scoring import EvaluationResult

__all__ = ["markdown_table", "win_rate_markdown", "write_report"]

CAVEAT = ("These numbers come from **synthetic** preference data, a rule-based **rubric scorer** and a small base "
          "model. They are not the study's numbers (arXiv 2602.16053 used Mistral-7B and GPT persona judges) and "
          "must not be presented as such.")


def markdown_table(frame: pd.DataFrame, *, floatfmt: str = "{:.3f}") -> str:
    """Render a DataFrame as a GitHub-flavoured markdown table (index included when named)."""
    df = frame.reset_index() if frame.index.name is not None else frame
    cols = [str(c) for c in df.columns]

    def fmt(v: Any) -> str:
        if isinstance(v, bool):
            return "yes" if v else "no"
        if isinstance(v, float):
            return floatfmt.format(v)
        return str(v).replace("|", "\\|")

    lines = ["| " + " | ".join(cols) + " |", "|" + "|".join("---" for _ in cols) + "|"]
    lines += ["| " + " | ".join(fmt(v) for v in row) + " |" for row in df.itertuples(index=False, name=None)]
    return "\n".join(lines)


def _stars(p: float) -> str:
    return "**" if p < 0.01 else "*" if p < 0.05 else ""


def win_rate_markdown(result: EvaluationResult) -> str:
    """Models x criteria table of ``win% (tie%)`` against the base, starred when McNemar p < 0.05 / 0.01."""
    t = result.table()
    rows = []
    for m in result.models:
        sub = t[t["model"] == m.name].set_index("criterion")
        row = {"model": m.name, "kind": m.kind}
        for c in result.criteria:
            r = sub.loc[c]
            row[c] = f"{100 * r['win_rate']:.1f} ({100 * r['tie_rate']:.0f}){_stars(r['mcnemar_p'])}"
        rows.append(row)
    return markdown_table(pd.DataFrame(rows))


def write_report(result: EvaluationResult, path: str | os.PathLike[str], *, plots: Mapping[str, Path] | None = None,
                 title: str = "Evaluation") -> Path:
    """Write the markdown report next to its plots (linked by file name)."""
    path = Path(path)
    st = result.settings
    parts = [f"# {title}", "", f"> {CAVEAT}", ""]
    parts += ["## Generated replies: protocol", "",
              f"- {st.get('n_prompts', '?')} held-out prompts; greedy decoding, at most "
              f"{st.get('max_new_tokens', '?')} new tokens; base model `{st.get('base_model', '?')}`.",
              "- Every reply scored 0-10 on every criterion by the rubric (`survey_weights.rubric`), never by the "
              "reward models used for training margins.",
              f"- Win = higher rubric score than `{result.base}` on that prompt; **ties stay in the denominator** "
              "(as in the study). Cells: win % (tie %); `*` / `**` = exact McNemar p < 0.05 / 0.01.", ""]
    parts += ["## Win rate against the base model", "", win_rate_markdown(result), ""]
    ms = result.mean_scores()
    ms.index.name = "model"
    parts += ["## Mean rubric score (0-10)", "", markdown_table(ms, floatfmt="{:.2f}"), ""]
    t = result.table()
    pv = t.pivot_table(index="model", columns="criterion", values="mcnemar_p", sort=False)[list(result.criteria)]
    pv.index.name = "model"
    parts += ["## McNemar p-values (exact, two-sided)", "", markdown_table(pv, floatfmt="{:.3g}"), ""]
    if plots:
        parts += ["## Pareto plots (empathy vs safety)", ""]
        for label, p in plots.items():
            parts += [f"![{label}]({Path(p).name})", ""]
    if result.personalisation is not None and len(result.personalisation):
        parts += ["## Personalisation check", "",
                  "Each subgroup adapter vs the pooled-profile adapter, scored by the subgroup's own weighted "
                  "preference Σ_c w_c(subgroup)·score_c on the same prompts: difference = own minus pooled, mean "
                  "over prompts with its 95% bootstrap interval over prompts (ci_low, ci_high); verdict = "
                  "better / worse when that interval is above / below 0, else not resolved; win rate with ties "
                  "in the denominator; p = exact sign test.", "",
                  markdown_table(result.personalisation.drop(columns=["beats_pooled"], errors="ignore")
                                 .set_index("profile").rename_axis("profile")), ""]
        parts += _flat_criteria_note(result)
    extra = {k: v for k, v in st.items() if k not in ("n_prompts", "max_new_tokens")}
    if extra:
        parts += ["## Settings", "", "```", *[f"{k}: {v}" for k, v in extra.items()], "```", ""]
    return atomic_write_text(path, "\n".join(parts))


def _flat_criteria_note(result: Any) -> list[str]:
    """A paragraph naming the criteria the replies hardly vary on, and how much of each checked profile's weight
    sits on them (that part of a profile's gain cannot show in the generation check)."""
    res = result.resolution()
    flat = [c for c in res.index if res.loc[c, "flat"]]
    if not flat:
        return []
    named = "; ".join(f"`{c}` ({int(res.loc[c, 'n_replies'] - res.loc[c, 'n_off_mode'])} of "
                      f"{int(res.loc[c, 'n_replies'])} replies score {res.loc[c, 'modal_score']:g})" for c in flat)
    weights = {m.name: m.weights for m in result.models if m.weights}
    shares = []
    for name in result.personalisation["profile"]:
        w = weights.get(name)
        if w:
            total = sum(float(v) for v in w.values()) or 1.0
            shares.append((name, sum(float(w.get(c, 0.0)) for c in flat) / total))
    lines = [f"Criteria the generated replies hardly vary on (fewer than {res.attrs['flat']:.0%} of all replies "
             f"score away from the most common score): {named}. Whatever a model learned about them cannot show "
             "in this check; the pool evaluation (`evaluate_pool`) scores them on fixed candidates that differ on "
             "them."]
    if shares:
        top = sorted(shares, key=lambda t: -t[1])[:3]
        lines[0] += (" Share of each profile's weight on them, largest: "
                     + ", ".join(f"{n} {v:.2f}" for n, v in top) + ".")
    return lines + [""]
