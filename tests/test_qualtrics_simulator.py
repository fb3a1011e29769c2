"""The synthetic Qualtrics export loads through load_survey as a real one would."""

import warnings

import survey_weights as sw
from survey_weights.synthetic import OWN_SURVEY_CRITERIA, simulate_qualtrics_export


def test_simulated_export_round_trip(tmp_path):
    path = simulate_qualtrics_export(tmp_path / "export.csv", n=60, seed=3)
    lines = path.read_text().splitlines()
    assert len(lines) == 3 + 60  # three Qualtrics header rows
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", sw.DataRecodeWarning)
        survey = sw.load_survey(path, items=list(OWN_SURVEY_CRITERIA), scale=(0, 10), multiselect={"Q8": ","})
    assert len(survey) == 60
    values = survey[list(OWN_SURVEY_CRITERIA)].stack().dropna().astype(int)
    assert values.between(0, 10).all()
    assert survey[list(OWN_SURVEY_CRITERIA)].isna().any().any()  # blank cells stay missing
    again = simulate_qualtrics_export(tmp_path / "again.csv", n=60, seed=3)
    assert again.read_text() == path.read_text()  # seeded
