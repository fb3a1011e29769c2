"""The package contract: public names from the issues, import hygiene."""

from __future__ import annotations

import subprocess
import sys

import survey_weights as sw

CONTRACT = [
    "Rankings", "PairedComparisons", "fit_plackett_luce", "fit_bradley_terry", "derive_profile", "WeightProfile",
    "export_profiles", "read_profiles", "load_example_survey", "load_survey", "SURVEY_CRITERIA", "fit_by_group",
    "fit_tree", "fit_mixture", "fit_individual",
]


def test_contract_names_exist():
    missing = [n for n in CONTRACT if not hasattr(sw, n)]
    assert not missing
    for name in ("from_ratings", "from_wide", "from_orderings", "to_pairwise"):
        assert callable(getattr(sw.Rankings, name))
    assert callable(sw.PairedComparisons.from_long)
    from survey_weights.simulate import simulate_survey

    assert callable(simulate_survey)
    assert set(sw.__all__) >= set(CONTRACT)
    assert sw.SURVEY_CRITERIA == (
        "empathy", "active_listening", "self_motivated_change", "trust_rapport", "patient_autonomy"
    )


def test_survey_half_imports_without_torch_or_matplotlib():
    code = (
        "import sys, survey_weights as sw; "
        "bad = [m for m in ('torch', 'transformers', 'peft', 'matplotlib.pyplot') if m in sys.modules]; "
        "print(bad); sys.exit(1 if bad else 0)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stdout + out.stderr


def test_import_leaves_slow_modules_unloaded():
    """Issue 15.7: `import survey_weights` stays fast (under 1 s here; scipy.stats alone took ~0.35 s of 0.7 s):
    scipy.stats, scipy.optimize (and the scipy.spatial it loads), scipy.special and matplotlib load only when a
    function needs them."""
    slow = ("scipy.stats", "scipy.optimize", "scipy.spatial", "scipy.special", "matplotlib")
    code = ("import sys, survey_weights; "
            f"print(','.join(m for m in {slow!r} if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "", f"imported eagerly: {out.stdout.strip()}"


def test_warning_hierarchy():
    for w in (sw.ConvergenceWarning, sw.DataRecodeWarning, sw.SmallGroupWarning):
        assert issubclass(w, sw.SurveyWeightsWarning)
    assert issubclass(sw.SurveyWeightsWarning, UserWarning)
