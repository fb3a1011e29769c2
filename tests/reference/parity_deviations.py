"""Print the largest deviation from the R references of the best-worst models (survival::clogit, ../shared/external/bws)
and of the tie readings (../shared/external/ties): estimates (absolute), standard errors (relative), log-likelihoods.

Run: ``.venv/bin/python tests/reference/parity_deviations.py`` (needs ../shared beside the repository). The tests
(tests/test_best_worst.py, tests/test_ties_methods.py) assert the issue's tolerances; this prints the measured values.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pandas as pd

import survey_weights as sw

EXT = Path(__file__).resolve().parents[2].parent / "shared" / "external"


def best_worst() -> pd.DataFrame:
    rows = []
    for ds in ("ricebws1", "synth_a"):
        df = pd.read_csv(EXT / "bws" / f"{ds}_long.csv")
        items = pd.read_csv(EXT / "bws" / f"{ds}_counts.csv")["item"].tolist()
        shown = [c for c in df.columns if c.startswith("shown_")]
        r = sw.Rankings.from_best_worst(df, respondent="respondent", task="task", shown=shown, best="best",
                                        worst="worst", items=items)
        for model in ("maxdiff", "sequential", "marginal"):
            est = pd.read_csv(EXT / "bws" / f"{ds}_estimates.csv").query("model == @model").set_index("item").loc[items]
            summ = pd.read_csv(EXT / "bws" / f"{ds}_fit_summary.csv").query("model == @model").iloc[0]
            fit, rob = sw.fit_best_worst(r, model=model), sw.fit_best_worst(r, model=model, vcov="robust")
            c, cr = fit.coef(ref=items[0]), rob.coef(ref=items[0])
            rows.append({"reference": f"bws/{ds}", "model": model,
                         "estimate_abs": np.abs(c["estimate"].to_numpy() - est["estimate"].to_numpy()).max(),
                         "se_model_rel": np.abs(c["se"].to_numpy()[1:] / est["se_model"].to_numpy()[1:] - 1).max(),
                         "se_cluster_rel": np.abs(cr["se"].to_numpy()[1:] / est["se_cluster"].to_numpy()[1:] - 1).max(),
                         "loglik_abs": abs(fit.loglik - summ["loglik"])})
    return pd.DataFrame(rows)


def ties() -> pd.DataFrame:
    items = ["empathy", "active_listening", "self_motivated_change", "trust_rapport", "patient_autonomy"]
    d = EXT / "ties"
    df = pd.read_csv(d / "survey_importance_ratings.csv")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        r = sw.Rankings.from_ratings(df, items, respondent="respondent_id", scale=(1, 5), all_tied="drop")
    est = pd.read_csv(d / "survey_ties_estimates.csv")
    summ = pd.read_csv(d / "survey_ties_fit_summary.csv").set_index("method")
    rows = []
    for method in ("breslow", "efron", "exact_marginal", "discrete_exact"):
        e = est.query("method == @method").set_index("item").loc[items[1:]]
        fit = sw.fit_plackett_luce(r, ties=method, npseudo=0, tol=1e-10)
        rob = sw.fit_plackett_luce(r, ties=method, npseudo=0, vcov="robust", tol=1e-10)
        c, cr = fit.coef(ref="empathy").loc[items[1:]], rob.coef(ref="empathy").loc[items[1:]]
        rows.append({"reference": "ties/survey", "model": method,
                     "estimate_abs": np.abs(c["estimate"].to_numpy() - e["log_worth"].to_numpy()).max(),
                     "se_model_rel": np.abs(c["se"].to_numpy() / e["se_model"].to_numpy() - 1).max(),
                     "se_cluster_rel": np.abs(cr["se"].to_numpy() / e["se_cluster"].to_numpy() - 1).max(),
                     "loglik_abs": abs(fit.loglik - summ.loc[method, "loglik"])})
    return pd.DataFrame(rows)


if __name__ == "__main__":
    if not EXT.is_dir():
        raise SystemExit(f"{EXT} not found: put ../shared beside the repository.")
    pd.set_option("display.float_format", lambda v: f"{v:.1e}")
    print(pd.concat([best_worst(), ties()], ignore_index=True).to_string(index=False))
