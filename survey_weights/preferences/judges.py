"""Judge rankings of candidate replies -> preference pairs.

Pairs from judge rankings
-------------------------
:func:`pairs_from_judge_rankings` aggregates per prompt x criterion the rankings of K candidate replies
by several judges, either with the study's centred Borda scores (``+10, +5, 0, -5, -10`` for K = 5,
see :func:`borda_weights`) or with a Plackett-Luce fit (aggregated log-worths), and returns the
best-vs-worst pair (as the study) or every informative pair.
"""

from __future__ import annotations

import numbers
import warnings
from typing import Any

import numpy as np
import pandas as pd

from .._util.validation import check_columns, check_option, check_scalar
from ..exceptions import ConvergenceWarning

__all__ = ["aggregate_judge_rankings", "borda_weights", "pairs_from_judge_rankings"]


# ------------------------------------------------------------------------------ aggregation of rankings
def borda_weights(k: int) -> np.ndarray:
    """Centred, symmetric Borda weights for ranks 1..k (best first), step 5.

    ``w_r = 5 * ((k + 1) / 2 - r)``: ``(+10, +5, 0, -5, -10)`` for k = 5 as in the study. (The study's
    code also lists a non-linear variant for 10 responses; this linear rule is used for every k.)

    Examples
    --------
    >>> borda_weights(5).tolist()
    [10.0, 5.0, 0.0, -5.0, -10.0]
    """
    k = int(check_scalar(k, "k", kind=numbers.Integral, min_val=2))
    return 5.0 * ((k + 1) / 2.0 - np.arange(1, k + 1, dtype=float))


_RANK_COLS = ("prompt_id", "criterion", "judge_id", "candidate_id", "rank")
_CAND_COLS = ("prompt_id", "candidate_id", "prompt", "text")


def _prepare(rankings: pd.DataFrame, candidates: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    for name, df, cols in (("rankings", rankings, _RANK_COLS), ("candidates", candidates, _CAND_COLS)):
        if not isinstance(df, pd.DataFrame):
            raise TypeError(f"`{name}` must be a pandas DataFrame. Got {type(df).__name__} instead.")
        check_columns(df, cols, name)
        if len(df) == 0:
            raise ValueError(f"`{name}` is empty. Pass at least one row.")
    cand = candidates.loc[:, list(_CAND_COLS)].copy()
    dup = cand.duplicated(["prompt_id", "candidate_id"])
    if dup.any():
        r = cand[dup].iloc[0]
        raise ValueError(f"`candidates` lists (prompt_id, candidate_id) = ({r.prompt_id!r}, {r.candidate_id!r}) twice.")
    rk = rankings.loc[:, list(_RANK_COLS)].copy()
    rank = pd.to_numeric(rk["rank"], errors="coerce")
    if rank.isna().any() or (rank < 1).any() or (rank != np.floor(rank)).any():
        bad = rk.loc[rank.isna() | (rank < 1) | (rank != np.floor(rank)), "rank"].iloc[0]
        raise ValueError(f"`rankings['rank']` must hold integers >= 1 (1 = best). Got {bad!r}.")
    rk["rank"] = rank.astype(np.int64)
    key = ["prompt_id", "criterion", "judge_id", "candidate_id"]
    if rk.duplicated(key).any():
        r = rk[rk.duplicated(key)].iloc[0]
        raise ValueError(
            f"`rankings` ranks candidate {r.candidate_id!r} twice for prompt {r.prompt_id!r}, criterion "
            f"{r.criterion!r}, judge {r.judge_id!r}. Give one row per judge and candidate."
        )
    known = pd.MultiIndex.from_frame(cand[["prompt_id", "candidate_id"]])
    seen = pd.MultiIndex.from_frame(rk[["prompt_id", "candidate_id"]])
    unknown = ~seen.isin(known)
    if unknown.any():
        r = rk[unknown].iloc[0]
        raise ValueError(
            f"`rankings` refers to candidate {r.candidate_id!r} of prompt {r.prompt_id!r}, which is not in "
            "`candidates`. Fix: add it to `candidates` or drop those rows."
        )
    return rk, cand


def _borda_scores(rk: pd.DataFrame, cand: pd.DataFrame) -> pd.DataFrame:
    """Per prompt x criterion x candidate: summed centred Borda score over judges (vectorised)."""
    k_of = cand.groupby("prompt_id", sort=False).size().rename("k")
    g = ["prompt_id", "criterion", "judge_id"]
    lo = rk.groupby(g, sort=False)["rank"].rank(method="min").to_numpy()
    hi = rk.groupby(g, sort=False)["rank"].rank(method="max").to_numpy()
    k = rk["prompt_id"].map(k_of).to_numpy(dtype=float)
    mid = (lo + hi) / 2.0  # 1-based mean position of the tie group; weights are linear in position
    rk = rk.assign(score=5.0 * ((k + 1) / 2.0 - mid))
    # candidates a judge left unranked share the remaining (bottom) positions
    judges = rk[g].drop_duplicates()
    full = judges.merge(cand[["prompt_id", "candidate_id"]], on="prompt_id", how="left")
    full = full.merge(rk[g + ["candidate_id", "score"]], on=g + ["candidate_id"], how="left")
    if full["score"].isna().any():
        nr = full.groupby(g, sort=False)["score"].transform("count").to_numpy(dtype=float)
        kk = full["prompt_id"].map(k_of).to_numpy(dtype=float)
        fill = 5.0 * ((kk + 1) / 2.0 - (nr + 1 + kk) / 2.0)
        full["score"] = full["score"].fillna(pd.Series(fill, index=full.index))
    out = full.groupby(["prompt_id", "criterion", "candidate_id"], sort=False).agg(
        score=("score", "sum"), n_judges=("judge_id", "nunique")).reset_index()
    return out


def _pl_scores(rk: pd.DataFrame, cand: pd.DataFrame, npseudo: float | None) -> pd.DataFrame:
    """Per prompt x criterion: zero-sum Plackett-Luce log-worths of the candidates."""
    try:
        from ..models import fit_plackett_luce
    except ImportError as exc:  # pragma: no cover - depends on the models package being present
        raise ImportError(
            "method='plackett_luce' needs survey_weights.models.fit_plackett_luce, which is not importable "
            f"({exc}). Use method='borda'."
        ) from exc
    from ..data.rankings import Rankings

    kw = {} if npseudo is None else {"npseudo": npseudo}
    items_of = cand.groupby("prompt_id", sort=False)["candidate_id"].agg(list).to_dict()
    rows: list[tuple[Any, Any, Any, float, int]] = []
    # one pass in numpy: sort by (prompt, criterion, judge, rank, candidate), then split into groups
    gkey = pd.factorize(pd.MultiIndex.from_frame(rk[["prompt_id", "criterion"]]))[0]
    jkey = pd.factorize(rk["judge_id"])[0]
    rank = rk["rank"].to_numpy()
    cid = rk["candidate_id"].to_numpy(dtype=object)
    pid, crit, jid = rk["prompt_id"].to_numpy(dtype=object), rk["criterion"].to_numpy(dtype=object), \
        rk["judge_id"].to_numpy(dtype=object)
    idx = np.lexsort((rank, jkey, gkey))
    bounds = np.flatnonzero(np.diff(gkey[idx])) + 1
    for block in np.split(idx, bounds):
        p0, c0 = pid[block[0]], crit[block[0]]
        items = items_of[p0]
        orderings: list[list[Any]] = []
        ids: list[Any] = []
        n_ranked: list[int] = []
        last_j = None
        for i in block:
            if jkey[i] != last_j:
                orderings.append([])
                ids.append(jid[i])
                n_ranked.append(0)
                last_j, last_r = jkey[i], None
            od = orderings[-1]
            if rank[i] == last_r:
                od[-1] = (od[-1] + (cid[i],)) if isinstance(od[-1], tuple) else (od[-1], cid[i])
            else:
                od.append(cid[i])
            last_r = rank[i]
            n_ranked[-1] += 1
        partial = min(n_ranked) < len(items)
        r = Rankings.from_orderings(orderings, items=items, respondent_ids=ids, top_k=partial)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", ConvergenceWarning)
            fit = fit_plackett_luce(r, **kw)
        if any(issubclass(w.category, ConvergenceWarning) for w in caught):
            fit = fit_plackett_luce(r, method="lbfgs", **kw)  # Newton stalled: the quasi-Newton fit as fallback
        lw = pd.Series(fit.log_worth).reindex(items)
        for c, v in lw.items():
            rows.append((p0, c0, c, float(v), len(ids)))
    return pd.DataFrame(rows, columns=["prompt_id", "criterion", "candidate_id", "score", "n_judges"])


def aggregate_judge_rankings(rankings: pd.DataFrame, candidates: pd.DataFrame, *,
                             method: str = "plackett_luce", npseudo: float | None = None) -> pd.DataFrame:
    """Aggregate judges' rankings into one score per prompt x criterion x candidate.

    Parameters
    ----------
    rankings : DataFrame
        Long format: ``prompt_id, criterion, judge_id, candidate_id, rank`` (1 = best; equal ranks are
        ties; a judge may leave candidates unranked: they count as tied below the ranked ones).
    candidates : DataFrame
        ``prompt_id, candidate_id, prompt, text``: every candidate reply of every prompt.
    method : {"plackett_luce", "borda"}, default "plackett_luce"
        ``"borda"``: the study's centred Borda score summed over judges (:func:`borda_weights`; a tie group
        gets the mean weight of the positions it spans). ``"plackett_luce"``: zero-sum log-worths of a
        Plackett-Luce fit with ties (:func:`survey_weights.models.fit_plackett_luce`) per prompt x criterion,
        judges as respondents; when the default Newton fit warns that it did not converge, the group is
        refitted with ``method="lbfgs"`` (a warning then means neither converged).
    npseudo : float, optional
        Passed to the Plackett-Luce fit (default: the fit's default, 0.5).

    Returns
    -------
    DataFrame
        ``prompt_id, criterion, candidate_id, score`` (float; higher = better), ``n_judges`` (int).
    """
    check_option(method, "method", ("plackett_luce", "borda"))
    rk, cand = _prepare(rankings, candidates)
    if method == "borda":
        return _borda_scores(rk, cand)
    return _pl_scores(rk, cand, npseudo)


def pairs_from_judge_rankings(rankings: pd.DataFrame, candidates: pd.DataFrame, *,
                              method: str = "plackett_luce", pairs: str = "best_worst",
                              min_gap: float = 0.0, npseudo: float | None = None) -> pd.DataFrame:
    """Turn judges' rankings of candidate replies into preference pairs (JSONL schema + scores).

    Parameters
    ----------
    rankings, candidates : DataFrame
        See :func:`aggregate_judge_rankings`.
    method : {"plackett_luce", "borda"}, default "plackett_luce"
        How the judges' rankings are aggregated per prompt x criterion.
    pairs : {"best_worst", "all"}, default "best_worst"
        ``"best_worst"``: one pair per prompt x criterion, the aggregated best reply (chosen) vs the
        aggregated worst (rejected), as in the study; ties in the aggregated score go to the candidate
        listed first in `candidates`. ``"all"``: every pair of candidates whose aggregated scores
        differ by more than `min_gap`, the higher-scored one chosen.
    min_gap : float, default 0.0
        A pair is kept only when ``chosen_score - rejected_score > min_gap`` (for ``"best_worst"`` too:
        a prompt x criterion whose best and worst are closer yields no pair). On the scale of `method`:
        summed Borda points or log-worths.
    npseudo : float, optional
        Passed to the Plackett-Luce fit.

    Returns
    -------
    DataFrame
        ``prompt, chosen, rejected, criterion, prompt_id, pair_id`` (``"<prompt_id>:<criterion>:<chosen_id>>
        <rejected_id>"``), then ``chosen_id, rejected_id, chosen_score, rejected_score, score_gap`` (float),
        ``n_judges`` (int) and ``method``. Rows follow the prompts' order in `candidates`, then the criteria's
        first-seen order in `rankings`.

    Examples
    --------
    >>> cands = pd.DataFrame({"prompt_id": "p1", "candidate_id": ["a", "b", "c"], "prompt": "I feel low.",
    ...                       "text": ["That sounds hard.", "Okay.", "Cheer up."]})
    >>> ranks = pd.DataFrame({"prompt_id": "p1", "criterion": "empathy", "judge_id": [1, 1, 1, 2, 2, 2],
    ...                       "candidate_id": ["a", "b", "c"] * 2, "rank": [1, 2, 3, 1, 2, 3]})
    >>> pairs_from_judge_rankings(ranks, cands, method="borda")[["chosen", "rejected", "score_gap"]]
                  chosen   rejected  score_gap
    0  That sounds hard.  Cheer up.       20.0
    """
    check_option(pairs, "pairs", ("best_worst", "all"))
    min_gap = float(check_scalar(min_gap, "min_gap", min_val=0.0))
    scores = aggregate_judge_rankings(rankings, candidates, method=method, npseudo=npseudo)
    cand = candidates.loc[:, list(_CAND_COLS)].copy()
    cand["_order"] = np.arange(len(cand))
    prompt_order = {p: i for i, p in enumerate(pd.unique(cand["prompt_id"]))}
    crit_order = {c: i for i, c in enumerate(pd.unique(rankings["criterion"]))}
    s = scores.merge(cand, on=["prompt_id", "candidate_id"], how="left")
    s["_p"] = s["prompt_id"].map(prompt_order)
    s["_c"] = s["criterion"].map(crit_order)
    if pairs == "best_worst":
        s = s.sort_values(["_p", "_c", "_order"], kind="stable")
        g = s.groupby(["_p", "_c"], sort=True)
        best = s.loc[g["score"].idxmax()].reset_index(drop=True)
        worst = s.loc[g["score"].idxmin()].reset_index(drop=True)
        left, right = best, worst
    else:
        a = s[["_p", "_c", "_order", "prompt_id", "criterion", "candidate_id", "prompt", "text", "score",
               "n_judges"]]
        m = a.merge(a[["_p", "_c", "_order", "candidate_id", "text", "score"]], on=["_p", "_c"], suffixes=("", "_r"))
        m = m[m["score"] > m["score_r"]].sort_values(["_p", "_c", "_order", "_order_r"], kind="stable")
        left = m[["_p", "_c", "prompt_id", "criterion", "candidate_id", "prompt", "text", "score", "n_judges"]]
        left = left.reset_index(drop=True)
        right = m[["candidate_id_r", "text_r", "score_r"]].reset_index(drop=True)
        right.columns = ["candidate_id", "text", "score"]
    out = pd.DataFrame({
        "prompt": left["prompt"].to_numpy(),
        "chosen": left["text"].to_numpy(),
        "rejected": right["text"].to_numpy(),
        "criterion": left["criterion"].to_numpy(),
        "prompt_id": left["prompt_id"].to_numpy(),
        "chosen_id": left["candidate_id"].to_numpy(),
        "rejected_id": right["candidate_id"].to_numpy(),
        "chosen_score": left["score"].to_numpy(dtype=float),
        "rejected_score": right["score"].to_numpy(dtype=float),
        "n_judges": left["n_judges"].to_numpy(dtype=np.int64),
    })
    out["score_gap"] = out["chosen_score"] - out["rejected_score"]
    out = out[(out["score_gap"] > min_gap) & (out["chosen"].str.strip() != out["rejected"].str.strip())]
    out = out.reset_index(drop=True)
    out.insert(5, "pair_id", [f"{p}:{c}:{a}>{b}" for p, c, a, b in
                              zip(out["prompt_id"], out["criterion"], out["chosen_id"], out["rejected_id"])])
    out["method"] = method
    cols = ["prompt", "chosen", "rejected", "criterion", "prompt_id", "pair_id", "chosen_id", "rejected_id",
            "chosen_score", "rejected_score", "score_gap", "n_judges", "method"]
    return out[cols]
