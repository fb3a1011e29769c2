"""A SYNTHETIC Qualtrics-style export of a survey that is not the study's: eight criteria rated 0-10, for trying the
package on "your own survey" (notebook 06). Nothing here is the study's data.

The export has Qualtrics' three header rows (column ids, question texts, import ids), the endpoints of the 0-10
scale written as words ("0 - Not at all important", "10 - Extremely important"), blank cells, a "select all that
apply" column separated by commas, a recruitment site, an IP-address column and a free-text column (which
:func:`~survey_weights.load_survey` drops). Ratings come from a latent utility per criterion: a common part, a shift
for respondents who use a peer-support service, and noise, cut into 0-10.
"""

from __future__ import annotations

import csv
import io
import json
import os
from pathlib import Path

import numpy as np

from .._util.io import atomic_write_text

__all__ = ["OWN_SURVEY_CRITERIA", "OWN_SURVEY_QUESTION", "simulate_qualtrics_export"]

#: The eight criteria of the example survey, as its question texts name them.
OWN_SURVEY_CRITERIA = ("Clarity", "Warmth", "Accuracy", "Brevity", "Safety planning", "Respect for my choices",
                       "Curiosity", "Humour")
#: The matrix question the criteria belong to (Qualtrics writes "<question> - <criterion>").
OWN_SURVEY_QUESTION = "How important is each aspect of a reply? (0 = not at all, 10 = extremely)"
_BASE = np.array([0.6, 0.9, 1.0, -0.4, 0.5, 0.8, 0.0, -0.9])
_PEER = np.array([-0.2, 0.6, -0.3, 0.0, 0.1, 0.5, 0.2, 0.1])  # users of a peer-support service


def simulate_qualtrics_export(path: str | os.PathLike[str], n: int = 240, *, seed: int = 7,
                              blank_share: float = 0.04) -> Path:
    """Write a synthetic Qualtrics-style CSV export (see the module docstring); returns its path.

    Parameters
    ----------
    path : path
        Where to write the CSV (atomically).
    n : int, default 240
        Respondents.
    seed : int, default 7
    blank_share : float, default 0.04
        Share of rating cells left blank (not answered).
    """
    if isinstance(n, bool) or not isinstance(n, int) or n < 2:
        raise ValueError(f"`n` must be an int >= 2. Got {n!r}.")
    if not 0 <= blank_share < 1:
        raise ValueError(f"`blank_share` must be in [0, 1). Got {blank_share!r}.")
    rng = np.random.default_rng(seed)
    items = [f"Q7_{k}" for k in range(1, 9)]
    ids = ["StartDate", "IPAddress", "ResponseId", "Q1", "Q3", *items, "Q8", "Q8_5_TEXT"]
    texts = ["Start Date", "IP Address", "Response ID", "Which site recruited you?", "How old are you?",
             *[f"{OWN_SURVEY_QUESTION} - {c}" for c in OWN_SURVEY_CRITERIA],
             "Which services have you used? (select all that apply)", "Which services? - Other - Text"]
    imports = [json.dumps({"ImportId": f"QID{k}"}) for k in range(len(ids))]
    services = ["Talk therapy", "Peer support", "Crisis line", "Apps"]
    rows = []
    for i in range(n):
        used = [s for s in services if rng.random() < (0.45 if s != "Crisis line" else 0.2)]
        shift = _PEER if "Peer support" in used else 0.0
        u = _BASE + shift + rng.normal(0.0, 0.8, 8) + rng.normal(0.0, 0.6)  # + a respondent's scale use
        scores = np.clip(np.round(6.0 + 2.2 * u), 0, 10).astype(int)
        cells = [str(v) for v in scores]
        cells = ["0 - Not at all important" if c == "0" else "10 - Extremely important" if c == "10" else c
                 for c in cells]
        cells = ["" if rng.random() < blank_share else c for c in cells]
        rows.append([f"2026-05-{1 + i % 28:02d} 10:{i % 60:02d}", f"10.1.{i // 250}.{i % 250}", f"R_{i:04d}",
                     rng.choice(["North clinic", "South clinic", "Online panel"]),
                     rng.choice(["18-24", "25-34", "35-49", "50+"]), *cells, ",".join(used), ""])
    buf = io.StringIO()
    csv.writer(buf).writerows([ids, texts, imports, *rows])
    return atomic_write_text(Path(path), buf.getvalue())
