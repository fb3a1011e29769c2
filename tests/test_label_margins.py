"""MODPO margins from the pairs' own labels (``MODPOConfig(margins="labels")``): the margins by hand, what the
run records, the trade-off on conflicting pairs without any reward model, and clear errors."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest
import torch
from modpo_helpers import PROMPTS, one_thread, toy_pairs
from test_soft_labels import _conflicting, _prefers_b

import survey_weights.modpo._precompute as pre
import survey_weights.modpo.reward as reward_mod
from survey_weights.modpo import MODPOConfig, make_tiny_llama, train_adapters, train_conditioned
from survey_weights.preferences import pair_label_margins, subsample_pairs
from survey_weights.preferences.pairs import as_pairs_frame


def _logit(p: float) -> float:
    return math.log(p / (1 - p))


def _shared_pairs() -> pd.DataFrame:
    """Two comparisons labelled on three criteria, oriented per criterion (as the bundled files are)."""
    rows = []
    for pid, (a, b), labels in [("p0", ("Warm.", "Safe."), {"empathy": 0.8, "safety": 0.3, "trust": 0.6}),
                                ("p1", ("Ask.", "Tell."), {"empathy": 0.55, "safety": 0.9, "trust": None})]:
        for c, p in labels.items():
            chosen, rejected, lab = (a, b, p) if p is None or p >= 0.5 else (b, a, 1 - p)
            rows.append({"prompt": f"prompt {pid}", "chosen": chosen, "rejected": rejected, "criterion": c,
                         "prompt_id": pid, "pair_id": f"{pid}:{c}", "label": lab})
    return pd.DataFrame(rows)


def test_pair_label_margins_by_hand():
    df = _shared_pairs()
    z = pair_label_margins(df, ["empathy", "safety", "trust"], label_smoothing=0.1)
    # p0: A = "Warm." (empathy prefers it with 0.8; safety prefers "Safe." with 0.7; trust "Warm." 0.6)
    emp0 = df.index[(df["pair_id"] == "p0:empathy")][0]
    saf0 = df.index[(df["pair_id"] == "p0:safety")][0]
    assert z.loc[emp0].tolist() == pytest.approx([_logit(0.8), _logit(0.3), _logit(0.6)])
    assert z.loc[saf0].tolist() == pytest.approx([_logit(0.2), _logit(0.7), _logit(0.4)])  # seen from "Safe."
    # p1: "Ask." is chosen by all three; the trust pair has no label (hard: 1 - eps = 0.9)
    emp1 = df.index[(df["pair_id"] == "p1:empathy")][0]
    assert z.loc[emp1].tolist() == pytest.approx([_logit(0.55), _logit(0.9), _logit(0.9)])
    # a comparison without a pair of the criterion is NaN; a hard label without smoothing is infinite
    no_trust = df[df["criterion"] != "trust"].reset_index(drop=True)
    assert np.isnan(pair_label_margins(no_trust, ["trust"])["trust"]).all()
    assert np.isinf(pair_label_margins(df, ["trust"]).loc[emp1, "trust"])
    with pytest.raises(ValueError, match="label_smoothing"):
        pair_label_margins(df, ["trust"], label_smoothing=0.7)


def test_subsample_by_comparison_keeps_every_label_of_a_kept_comparison():
    df = toy_pairs(12, criteria=("empathy", "safety", "trust"))
    # toy pairs differ per criterion, so relabel: every criterion of a prompt judges the same two replies
    df["chosen"], df["rejected"] = df.groupby("prompt")["chosen"].transform("first"), \
        df.groupby("prompt")["rejected"].transform("first")
    sub = subsample_pairs(df, per_criterion=5, seed=3, by="comparison")
    assert sub.groupby("criterion").size().to_dict() == {"empathy": 5, "safety": 5, "trust": 5}
    assert sub.groupby("prompt")["criterion"].nunique().eq(3).all()
    assert sub.equals(subsample_pairs(df, per_criterion=5, seed=3, by="comparison"))  # seeded
    assert len(subsample_pairs(df, per_criterion=5, seed=3)) == 15  # by pair: each criterion on its own
    with pytest.raises(ValueError, match="`by`"):
        subsample_pairs(df, per_criterion=5, seed=3, by="prompt")


def test_config_field_and_the_resume_key_of_older_runs():
    assert MODPOConfig().margins == "reward_models"
    assert "margins" not in MODPOConfig().training_key()  # runs from before the field keep their resume key
    assert MODPOConfig(margins="labels").training_key()["margins"] == "labels"
    with pytest.raises(ValueError, match="`margins`.*'reward_models', 'labels'"):
        MODPOConfig(margins="votes")


def test_precomputed_margins_are_the_pairs_own_logits(tmp_path, monkeypatch):
    """The margin table MODPO subtracts is logit p_c of the same comparison, and no reward model is trained."""
    monkeypatch.setattr(reward_mod, "train_reward_models", lambda *a, **k: pytest.fail("trained a reward model"))
    seen = {}
    real = pre.precompute

    def spy(*a, **k):
        seen["shared"] = real(*a, **k)
        return seen["shared"]

    monkeypatch.setattr("survey_weights.modpo.train.precompute", spy)
    df = _shared_pairs()
    cfg = MODPOConfig(max_steps=1, batch_size=2, lora_r=2, lora_alpha=4, progress=False, margins="labels")
    with one_thread():
        model, tok = make_tiny_llama()
        run = train_adapters({"p": {"empathy": 0.6, "safety": 0.4}}, df[df["criterion"] != "trust"],
                             output_dir=tmp_path, model=model, tokenizer=tok, config=cfg, main_objective="empathy")
    shared = seen["shared"]
    frame = shared.frame
    emp = np.flatnonzero((frame["criterion"] == "empathy").to_numpy())
    tab = shared.margins["safety"]
    assert tab[emp, 0].tolist() == pytest.approx([_logit(0.3), _logit(0.9)])  # p0: safety prefers the rejected
    assert tab[emp, 1].tolist() == [0.0, 0.0]
    assert shared.reward_models == {}
    rec = json.loads((run["p"].path / "profile.json").read_text())
    assert rec["reward_sources"] == {"safety": "pair labels"} and rec["reward_models"] == {}
    assert rec["config"]["margins"] == "labels"


def test_a_missing_label_is_named_before_any_long_work(tmp_path, monkeypatch):
    monkeypatch.setattr(pre, "encode_sequences", lambda *a, **k: pytest.fail("tokenised before the check"))
    df = _shared_pairs()
    df = df[df["pair_id"] != "p1:safety"]  # comparison p1 has no safety label now
    cfg = MODPOConfig(max_steps=1, batch_size=2, lora_r=2, lora_alpha=4, progress=False, margins="labels")
    with one_thread():
        model, tok = make_tiny_llama()
        with pytest.raises(ValueError, match=r"'safety'.*pair_id 'p1:empathy'.*margins='reward_models'"):
            train_adapters({"p": {"empathy": 0.6, "safety": 0.4}}, df, output_dir=tmp_path / "a", model=model,
                           tokenizer=tok, config=cfg, main_objective="empathy")
        with pytest.raises(ValueError, match=r"\['safety'\]"):  # no safety pair at all
            train_adapters({"p": {"empathy": 0.6, "safety": 0.4}}, df[df["criterion"] == "empathy"],
                           output_dir=tmp_path / "b", model=model, tokenizer=tok, config=cfg)
    assert not list((tmp_path / "a").glob("*/profile.json"))


def test_label_margins_trade_off_on_conflicting_hard_labels_without_a_reward_model(tmp_path, monkeypatch):
    """Same pairs, A > B for empathy and B > A for safety, hard labels, default smoothing: each profile trains
    on its largest criterion's pairs with the other's label as the margin; the safety-heavy adapter prefers B on
    held-out prompts and the empathy-heavy one A, with no reward model anywhere."""
    monkeypatch.setattr(reward_mod, "train_reward_models", lambda *a, **k: pytest.fail("trained a reward model"))
    train, held = _conflicting(PROMPTS[:14], 0), _conflicting(PROMPTS[14:], 1)
    cfg = MODPOConfig(max_steps=8, batch_size=4, lr=1e-2, lora_r=4, lora_alpha=8, progress=False, margins="labels")
    with one_thread():
        model, tok = make_tiny_llama()
        run = train_adapters({"safety_heavy": {"empathy": 0.2, "safety": 0.8},
                              "empathy_heavy": {"empathy": 0.8, "safety": 0.2}}, train, output_dir=tmp_path,
                             model=model, tokenizer=tok, config=cfg)
        margin = _prefers_b(model, tok, run, held)
    assert margin["safety_heavy"] > 0 > margin["empathy_heavy"]


def test_conditioned_run_with_label_margins(tmp_path, monkeypatch):
    """The conditioned run reads the same margins: recorded as 'pair labels', no reward model, and its exports
    order the two profiles on the conflict as their weights say."""
    monkeypatch.setattr(reward_mod, "train_reward_models", lambda *a, **k: pytest.fail("trained a reward model"))
    train, held = _conflicting(PROMPTS[:14], 0), _conflicting(PROMPTS[14:], 1)
    cfg = MODPOConfig(max_steps=16, batch_size=4, lr=1e-2, lora_r=4, lora_alpha=8, progress=False, margins="labels")
    profiles = {"safety_heavy": {"empathy": 0.2, "safety": 0.8}, "empathy_heavy": {"empathy": 0.8, "safety": 0.2}}
    with one_thread():
        model, tok = make_tiny_llama()
        run = train_conditioned(as_pairs_frame(train), criteria=["empathy", "safety"], profiles=profiles,
                                output_dir=tmp_path / "run", model=model, tokenizer=tok, config=cfg)
        man = json.loads((tmp_path / "run" / "conditioned.json").read_text())
        assert man["reward_sources"] == {"empathy": "pair labels", "safety": "pair labels"}
        assert man["reward_models"] == {}
        ex = [run.export(w, tmp_path / "ex" / n) for n, w in profiles.items()]
        rec = json.loads((ex[0] / "profile.json").read_text())
        assert rec["reward_sources"] == {"empathy": "pair labels"}

        class _Run:
            adapters = [type("A", (), {"name": n, "path": p})() for n, p in zip(profiles, ex)]

        margin = _prefers_b(model, tok, _Run, held)
    assert margin["safety_heavy"] > margin["empathy_heavy"]
    assert torch.isfinite(torch.tensor(list(margin.values()))).all()


# ------------------------------------------------------------------ the jobs: margins="auto"
def test_auto_reads_labels_when_every_comparison_is_labelled_on_every_criterion():
    from survey_weights.modpo.train import resolve_margins
    from survey_weights.pipeline import load_preference_split
    from survey_weights.pipeline._steps import training_pairs
    from survey_weights.preferences import labels_complete

    train = load_preference_split(None, seed=0).train  # the bundled pairs: six labels per comparison
    assert labels_complete(train)
    auto = MODPOConfig(margins="auto")
    sub, cfg, labels = training_pairs(train, auto, per_criterion=32, seed=0)
    assert cfg.margins == "labels" and labels is train
    assert sub.groupby("criterion").size().eq(32).all()  # each criterion subsampled on its own
    crits = set(sub["criterion"])
    on = {c: crits - {c} for c in crits}
    with pytest.raises(ValueError, match="margins='labels' needs"):  # the subsample alone lacks most labels
        pre._label_margin_tables(as_pairs_frame(sub), on, None, 0.1)
    tabs = pre._label_margin_tables(as_pairs_frame(sub), on, None, 0.1, as_pairs_frame(train))  # as the job does
    assert all(np.isfinite(t[:, 0].numpy()).sum() == 32 * 5 for t in tabs.values())
    # the trainer decides "auto" the same way
    frame = as_pairs_frame(sub)
    assert resolve_margins(auto, frame, None, None).margins == "reward_models"
    assert resolve_margins(auto, frame, as_pairs_frame(train), None).margins == "labels"
    assert resolve_margins(auto, frame, as_pairs_frame(train), {"safety": object()}).margins == "reward_models"
    assert resolve_margins(MODPOConfig(), frame, None, None).margins == "reward_models"
    # one label missing: reward models
    gappy = train.drop(index=train.index[train["criterion"] == "trust_rapport"][:1])
    assert not labels_complete(gappy)
    sub2, cfg2, labels2 = training_pairs(gappy, auto, per_criterion=32, seed=0)
    assert cfg2.margins == "reward_models" and labels2 is None and sub2.groupby("criterion").size().eq(32).all()
    assert training_pairs(train, auto, per_criterion=8, seed=0, reward_models={"x": 1})[1].margins == "reward_models"
    with pytest.raises(ValueError, match="only read with"):
        train_adapters({"p": {"empathy": 1.0}}, frame, output_dir="/nonexistent", margin_labels=frame)


def test_schedule_and_cli_margins(capsys):
    from survey_weights.cli import _schedule, build_parser, main
    from survey_weights.pipeline import MainSchedule

    assert MainSchedule().training.margins == "auto"
    with pytest.raises(ValueError, match="`margins`"):
        MODPOConfig(margins="votes")
    assert _schedule(build_parser().parse_args(["run", "--margins", "reward-models"])).training.margins \
        == "reward_models"
    with pytest.raises(SystemExit) as e:
        main(["run", "--margins", "votes"])
    assert e.value.code == 2 and "--margins" in capsys.readouterr().err


@pytest.mark.slow
def test_main_job_on_the_bundled_pairs_uses_their_labels_and_trains_no_reward_model(tmp_path, monkeypatch):
    import survey_weights.pipeline.main as main_mod
    from survey_weights.pipeline import MainSchedule, run_main

    monkeypatch.setattr(main_mod, "margin_reward_models", lambda *a, **k: pytest.fail("trained reward models"))
    tiny = MainSchedule(training=MODPOConfig(max_steps=1, batch_size=2, max_length=96, max_prompt_length=48,
                                             margins="auto"),
                        pairs_per_criterion=4, n_eval_prompts=2, max_new_tokens=4, n_pool_prompts=None)
    with one_thread():
        run_main(out=tmp_path, base_model="tiny-test", n_classes=0, factors=("severity",), schedule=tiny,
                 device="cpu", progress=False)
    man = json.loads((tmp_path / "conditioned" / "conditioned.json").read_text())
    assert set(man["reward_sources"].values()) == {"pair labels"} and man["config"]["margins"] == "labels"
    doc = json.loads((tmp_path / "evaluation.json").read_text())
    assert doc["settings"]["schedule"]["training"]["margins"] == "labels"  # "auto" as decided
