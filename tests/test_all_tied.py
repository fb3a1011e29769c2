"""Respondents whose answered items are all rated equal (issue 14, item 2): kept by default, as R PlackettLuce.

References: tests/reference/plackettluce_all_tied/ (R 4.2.2, PlackettLuce 0.4.5; script make_reference.R there).
Tolerances as tests/test_parity_r.py: |d coef| <= 1e-5, |d se| <= 1e-4, |d logLik| <= 1e-6.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import survey_weights as sw
from survey_weights import DataRecodeWarning, Rankings
from survey_weights.models import fit_plackett_luce

REF = Path(__file__).resolve().parent / "reference" / "plackettluce_all_tied"
COEF_TOL, SE_TOL, LL_TOL = 1e-5, 1e-4, 1e-6


def issue_frame() -> pd.DataFrame:
    return pd.DataFrame({"a": [5, 4, 3, 5, 4, 2, 4, None], "b": [4, 4, 3, 5, 2, 3, 4, 2],
                         "c": [1, None, 3, 2, 2, 5, 4, 2], "d": [2, 4, None, 1, 3, 4, 1, 2]})


def survey_frame() -> pd.DataFrame:
    return sw.load_example_survey()[list(sw.SURVEY_CRITERIA)]


def blank_cells(x: pd.DataFrame) -> pd.DataFrame:
    """The rule of make_reference.R: row i loses item (i // 6) % m when i % 6 == 0, items i % m, (i+2) % m when
    i % 10 == 3."""
    x = x.astype(float).copy()
    m = x.shape[1]
    for i in range(len(x)):
        if i % 6 == 0:
            x.iloc[i, (i // 6) % m] = np.nan
        if i % 10 == 3:
            x.iloc[i, [i % m, (i + 2) % m]] = np.nan
    return x


CASES = {"issue_example": issue_frame, "survey335": survey_frame,
         "survey335_blanked": lambda: blank_cells(survey_frame())}


def _reference():
    coef = pd.read_csv(REF / "reference.csv")
    fit = pd.read_csv(REF / "reference_fit.csv")
    return coef, fit


@pytest.mark.parametrize("case, npseudo", [
    ("issue_example", 0.0), ("survey335", 0.0), ("survey335_blanked", 0.0),
    ("survey335", 0.5), ("survey335_blanked", 0.5),  # the pseudo-comparisons enter as two-item rankings with ties
])
def test_from_ratings_keeps_all_tied_as_r_plackettluce(case, npseudo):
    coef, fit = _reference()
    ref = coef[(coef.case == case) & (coef.npseudo == npseudo)].set_index("term")
    ref_fit = fit[(fit.case == case) & (fit.npseudo == npseudo)].iloc[0]
    df = CASES[case]()
    with warnings.catch_warnings():
        warnings.simplefilter("error", DataRecodeWarning)  # nothing is recoded: every row has >= 2 answers
        r = Rankings.from_ratings(df, list(df.columns), scale=(1, 5))
    assert r.n_rankings == ref_fit.n_rankings
    assert r.max_tie_order == ref_fit.max_tie_order
    res = fit_plackett_luce(r, npseudo=npseudo)
    ours = res.coef(ref=df.columns[0]).loc[ref.index]
    np.testing.assert_allclose(ours["estimate"].to_numpy(), ref["estimate"].to_numpy(), atol=COEF_TOL)
    m = ref["se"].to_numpy() != 0  # R reports 0 for the reference item
    np.testing.assert_allclose(ours["se"].to_numpy()[m], ref["se"].to_numpy()[m], atol=SE_TOL)
    assert res.loglik == pytest.approx(ref_fit.loglik, abs=LL_TOL)


def test_issue_example_printed_values():
    """The issue's R values at the printed precision: b = -0.4873, log tie3 = +0.31."""
    res = fit_plackett_luce(Rankings.from_ratings(issue_frame(), list("abcd"), scale=(1, 5)), npseudo=0)
    c = res.coef(ref="a")["estimate"]
    assert round(float(c["b"]), 4) == -0.4873
    assert round(float(c["tie3"]), 2) == 0.31


def test_all_tied_rankings_equal_from_orderings():
    """from_ratings keeps an all-tied respondent as one tie group of their answered items, as from_orderings."""
    df = issue_frame()
    orderings = []
    for _, row in df.iterrows():
        ans = row.dropna()
        orderings.append([tuple(ans.index[ans == v]) for v in sorted(ans.unique(), reverse=True)])
    a = fit_plackett_luce(Rankings.from_ratings(df, list("abcd")), npseudo=0)
    b = fit_plackett_luce(Rankings.from_orderings(orderings, items=list("abcd")), npseudo=0)
    assert orderings[1] == [("a", "b", "d")] and orderings[7] == [("b", "c", "d")]
    pd.testing.assert_frame_equal(a.coef(ref="a"), b.coef(ref="a"), atol=1e-10, rtol=0)
    assert a.loglik == pytest.approx(b.loglik, abs=1e-10)


def test_all_tied_drop_option():
    df = issue_frame()
    with pytest.warns(DataRecodeWarning, match=r"Dropped 3 respondent\(s\).*all ratings equal.*1, 2, 7"):
        r = Rankings.from_ratings(df, list("abcd"), all_tied="drop")
    assert list(r.respondent_ids) == [0, 3, 4, 5, 6]
    kept = Rankings.from_ratings(df, list("abcd"))
    assert kept.n_respondents == 8
    drop_fit = fit_plackett_luce(r, npseudo=0).coef(ref="a")["estimate"]
    keep_fit = fit_plackett_luce(kept, npseudo=0).coef(ref="a")["estimate"]
    assert abs(drop_fit["tie3"] - keep_fit["tie3"]) > 1.0  # dropping changes the tie parameters


def test_all_tied_highest_tie_order_kept():
    """On the bundled survey the only five-way ties are the all-equal respondents: kept, tie5 is estimated."""
    df = survey_frame()
    n_equal = int((df.nunique(axis=1) == 1).sum())
    assert n_equal > 0
    kept = Rankings.from_ratings(df, list(df.columns))
    with pytest.warns(DataRecodeWarning, match=f"Dropped {n_equal} respondent"):
        dropped = Rankings.from_ratings(df, list(df.columns), all_tied="drop")
    assert kept.n_respondents == len(df) and dropped.n_respondents == len(df) - n_equal
    assert kept.max_tie_order == 5 and dropped.max_tie_order <= 4
    assert "tie5" in fit_plackett_luce(kept).tie_params.index
    assert "tie5" not in fit_plackett_luce(dropped).tie_params.index


def test_all_tied_still_needs_two_answers():
    df = pd.DataFrame({"a": [3, 4, np.nan], "b": [3, np.nan, 2], "c": [3, np.nan, np.nan]})
    with pytest.warns(DataRecodeWarning, match=r"fewer than two.*1, 2"):
        r = Rankings.from_ratings(df, ["a", "b", "c"])
    assert r.n_respondents == 1 and r.max_tie_order == 3
    with pytest.raises(ValueError, match=r"No respondent is left.*all_tied='drop'"):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DataRecodeWarning)
            Rankings.from_ratings(df, ["a", "b", "c"], all_tied="drop")


@pytest.mark.parametrize("value, exc, pattern", [
    ("remove", ValueError, r"`all_tied` must be 'keep' or 'drop'. Got 'remove'. Fix"),
    (True, TypeError, r"`all_tied` must be the string 'keep' or 'drop'. Got bool True"),
])
def test_all_tied_bad_value(value, exc, pattern):
    with pytest.raises(exc, match=pattern):
        Rankings.from_ratings(issue_frame(), list("abcd"), all_tied=value)


def test_issp2000_as_r_plackettluce(external_dir):
    """The issue's case: prefmod's ISSP 2000 Likert items (1,595 respondents, 161 rate all six items equally)."""
    path = external_dir / "prefmod" / "issp2000.csv"
    if not path.is_file():
        pytest.skip(f"{path} not found: prefmod's issp2000 (GESIS usage regulations) is not in shared/external; "
                    "the R reference numbers are committed (make_reference.R with ISSP2000_RDATA)")
    items = ["CAR", "IND", "FARM", "WATER", "TEMP", "GENE"]
    coef, fit = _reference()
    ref = coef[coef.case == "issp2000"].set_index("term")
    ref_fit = fit[fit.case == "issp2000"].iloc[0]
    df = pd.read_csv(path)
    r = Rankings.from_ratings(df, items, scale=(1, 5))
    assert r.n_rankings == ref_fit.n_rankings and r.max_tie_order == ref_fit.max_tie_order
    res = fit_plackett_luce(r, npseudo=0)
    ours = res.coef(ref="CAR").loc[ref.index]
    np.testing.assert_allclose(ours["estimate"].to_numpy(), ref["estimate"].to_numpy(), atol=COEF_TOL)
    np.testing.assert_allclose(ours["se"].to_numpy()[1:], ref["se"].to_numpy()[1:], atol=SE_TOL)
    assert res.loglik == pytest.approx(ref_fit.loglik, abs=LL_TOL)
    with pytest.warns(DataRecodeWarning, match=f"Dropped {int(ref_fit.n_all_tied)} respondent"):
        dropped = fit_plackett_luce(Rankings.from_ratings(df, items, scale=(1, 5), all_tied="drop"), npseudo=0)
    assert "tie6" not in dropped.tie_params.index  # the highest tie order disappears when they are dropped
