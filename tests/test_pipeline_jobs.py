"""The single-step jobs the CLI calls: run_fit, run_train_rewards, run_adapters, find_adapters, run_evaluate."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from survey_weights.criteria import SURVEY_CRITERIA
from survey_weights.exceptions import DataRecodeWarning
from survey_weights.pipeline import (
    find_adapters,
    run_adapters,
    run_evaluate,
    run_evaluate_pool,
    run_fit,
    run_train_rewards,
)


def _survey_with_two_unrankable(tmp_path):
    from survey_weights import load_example_survey

    df = load_example_survey()
    df.loc[df["respondent_id"].isin([55, 322]), list(SURVEY_CRITERIA[1:])] = float("nan")
    path = tmp_path / "survey.csv"
    df.to_csv(path, index=False)
    return path


def test_run_fit_pooled_writes_the_tidy_csv(tmp_path):
    with pytest.warns(DataRecodeWarning, match="Dropped 2 respondent"):  # reported, not silenced
        res = run_fit(_survey_with_two_unrankable(tmp_path), csv=tmp_path / "fit.csv", progress=False)
    assert list(res.table["item"]) == list(SURVEY_CRITERIA)
    assert res.table["weight"].sum() == pytest.approx(1.0)
    assert res.csv == tmp_path / "fit.csv" and pd.read_csv(res.csv).shape == res.table.shape
    assert "empathy" in res.text


def test_run_fit_by_level(capsys, tmp_path):
    res = run_fit(_survey_with_two_unrankable(tmp_path), by="age_group")
    levels = list(dict.fromkeys(res.table["age_group"]))
    assert levels == sorted(levels, key=str) and len(levels) > 1
    assert res.table.groupby("age_group")["weight"].sum().to_numpy() == pytest.approx(1.0)
    assert res.table.groupby("age_group")["n"].first().sum() <= 333
    assert res.table.groupby("age_group")["n"].first().min() >= 10  # groups under the minimum cell size withheld
    assert res.csv is None and "Dropped 2 respondent" in capsys.readouterr().err
    with pytest.raises(ValueError, match=r"Unknown covariate\(s\) \['nope'\]"):
        run_fit(by="nope")


def _adapter(root, dirname, weights, **extra):
    d = root / dirname
    d.mkdir(parents=True)
    (d / "profile.json").write_text(json.dumps({"name": dirname.upper(), "weights": weights, **extra}))
    return d


def test_find_adapters_reads_profile_json_and_kind(tmp_path):
    _adapter(tmp_path, "b_mix", {"empathy": 0.6, "safety": 0.4})
    _adapter(tmp_path, "a_dpo", {"empathy": 1.0, "safety": 0.0}, provenance={"source": "manual"})
    (tmp_path / "unfinished").mkdir()  # no profile.json: not an adapter
    found = find_adapters(tmp_path)
    assert [(a.name, a.kind, a.path.name) for a in found] == [("A_DPO", "dpo", "a_dpo"), ("B_MIX", "modpo", "b_mix")]
    assert found[0].profile["provenance"] == {"source": "manual"} and found[1].weights["safety"] == 0.4
    with pytest.raises(FileNotFoundError, match="No adapters"):
        find_adapters(tmp_path / "none")
    (tmp_path / "c_bad").mkdir()
    (tmp_path / "c_bad" / "profile.json").write_text("{")
    with pytest.raises(ValueError, match="not valid JSON"):
        find_adapters(tmp_path)


def test_run_adapters_checks_before_work(tmp_path):
    with pytest.raises(FileNotFoundError, match="Weights file"):
        run_adapters(tmp_path / "w.json", out=tmp_path / "a")
    (tmp_path / "w.json").write_text("{}")
    with pytest.raises(ValueError, match="max_steps"):
        run_adapters(tmp_path / "w.json", out=tmp_path / "a", max_steps=0)
    assert not (tmp_path / "a").exists()


def test_run_evaluate_checks_before_work(tmp_path):
    _adapter(tmp_path, "a", {"empathy": 1.0})
    with pytest.raises(ValueError, match="n_prompts"):
        run_evaluate(tmp_path, n_prompts=0)
    with pytest.raises(ValueError, match="Unknown `pool` 'real'"):
        run_evaluate_pool(tmp_path, pool="real", out=tmp_path / "ev")
    with pytest.raises(ValueError, match="n_prompts"):
        run_evaluate_pool(tmp_path, n_prompts=0, out=tmp_path / "ev")
    with pytest.raises(FileNotFoundError, match="counsel"):  # before any model is loaded
        run_evaluate_pool(tmp_path, pool="counsel-chat", counsel_chat=tmp_path / "absent.csv", out=tmp_path / "ev")
    with pytest.raises(ValueError, match=r"`only` names \['b'\]"):
        run_evaluate_pool(tmp_path, only=["b"], out=tmp_path / "ev")
    assert not (tmp_path / "ev" / "pool_evaluation.json").exists()


@pytest.mark.slow
def test_train_rewards_adapters_evaluate_on_the_tiny_model(tmp_path, monkeypatch, capsys):
    pytest.importorskip("torch")
    from modpo_helpers import one_thread, stub_reward_training

    from survey_weights.modpo import MODPOConfig
    from survey_weights.pipeline import MainSchedule, run_main

    trained = stub_reward_training(monkeypatch)
    rms = run_train_rewards(out=tmp_path / "rm", criteria=["empathy", "safety"], progress=False)
    assert sorted(rms) == ["empathy", "safety"] and sorted(c for c, _ in trained) == ["empathy", "safety"]
    run_main(out=tmp_path, profiles_only=True, n_classes=0, factors=("severity",), progress=False)
    tiny = MainSchedule(training=MODPOConfig(max_steps=1, batch_size=2, max_length=96, max_prompt_length=48),
                        pairs_per_criterion=4, n_eval_prompts=2, max_new_tokens=4)
    with one_thread():
        run = run_adapters(tmp_path / "weights.json", out=tmp_path / "adapters", base_model="tiny-test",
                           device="cpu", schedule=tiny, reward_cache=tmp_path / "rm", progress=False)
        exported = [p["name"] for p in json.loads((tmp_path / "weights.json").read_text())["profiles"]]
        assert [a.name for a in run.adapters] == exported and not any(a.skipped for a in run.adapters)
        assert [c for c, _ in trained].count("empathy") == 1  # reused from run_train_rewards' cache
        found = find_adapters(tmp_path / "adapters")
        assert sorted(a.name for a in found) == sorted(exported)
        assert all(a.profile["provenance"]["n_respondents"] >= 10 for a in found)
        paths = run_evaluate(tmp_path / "adapters", out=tmp_path / "ev", base_model="tiny-test", device="cpu",
                             n_prompts=2, max_new_tokens=4, progress=False)
    doc = json.loads(paths["evaluation"].read_text())
    assert [m["name"] for m in doc["models"]] == ["base", *[a.name for a in found]]
    assert paths["report"].is_file()
    # the pool evaluation of the same adapters: bundled synthetic pool, and counsel-chat when it is present
    from survey_weights.evaluation.counsel_chat import counsel_chat_path

    with one_thread():
        pp = run_evaluate_pool(tmp_path / "adapters", out=tmp_path / "pool", n_prompts=3, base_model="tiny-test",
                               device="cpu", progress=False)
        pool = json.loads(pp["pool_evaluation"].read_text())["pool"]
        assert [m["name"] for m in pool["models"]] == ["base", *[a.name for a in found]] and pool["n_prompts"] == 3
        assert [c["profile"] for c in pool["comparisons_with_pooled"]] == [a.name for a in found if a.name != "pooled"]
        text = pp["pool_report"].read_text()
        assert text.startswith("# Pool evaluation: bundled synthetic test pool (3 prompts)") and "Synthetic pool" in text
        assert pp["pool_front"].is_file() and "respondent_id" not in text
        if counsel_chat_path().is_file():
            cc = run_evaluate_pool(tmp_path / "adapters", pool="counsel-chat", out=tmp_path / "cc", n_prompts=2,
                                   base_model="tiny-test", device="cpu", only=["pooled"], progress=False)
            doc = json.loads(cc["pool_evaluation"].read_text())["pool"]
            assert doc["n_prompts"] == 2 and "counsel_chat" in doc["pool"]
            assert [m["name"] for m in doc["models"]] == ["base", "pooled"]
            assert "licensed therapists' answers from counsel-chat" in cc["pool_report"].read_text()
