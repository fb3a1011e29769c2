"""Calibrated mixing of a conditioned run (survey_weights.modpo.calibration; issue 10.7): the ridge fit against
a known linear map, its invariances, the distance matching, the oracle it reaches when the basis spans the scores,
storage and errors."""

from __future__ import annotations

import json

import numpy as np
import pytest

from survey_weights.evaluation.pool import CandidatePool, expected_scores, oracle_distribution, pool_distribution
from survey_weights.modpo.calibration import RIDGE_GRID, MixingCalibration, fit_mixing, pool_fingerprint

CRITS = ("a", "b", "c")


def _problem(p=40, k=5, seed=0, noise=0.0):
    """Scores s (P, K, 3); a basis whose criterion columns are s @ A (A invertible) plus noise, shared column
    unrelated noise; base logits random."""
    rng = np.random.default_rng(seed)
    s = rng.normal(size=(p, k, 3))
    a = np.array([[2.0, 0.5, 0.0], [0.3, 1.0, 0.0], [0.0, 0.4, 0.2]])
    x = np.concatenate([rng.normal(size=(p, k, 1)), s @ a + noise * rng.normal(size=(p, k, 3))], axis=2)
    ref = rng.normal(size=(p, k))
    return x, s, ref, a


def test_fit_inverts_a_known_linear_map_and_explains_every_criterion():
    x, s, ref, a = _problem()
    cal = fit_mixing(x, s, ref, criteria=CRITS, ridge=0.0)
    # X[..., 1:] = s A  =>  s = X[..., 1:] A^-1: the shared row is 0, the criterion rows are A^-1
    assert np.allclose(cal.matrix[0], 0.0, atol=1e-10)
    assert np.allclose(cal.matrix[1:], np.linalg.inv(a), atol=1e-10)
    assert all(v == pytest.approx(1.0) for v in cal.r2.values())
    assert cal.n_prompts == 40 and cal.criteria == CRITS and cal.cv_error == {}


def test_per_prompt_constants_do_not_change_the_fit():
    x, s, ref, _ = _problem(noise=0.3)
    rng = np.random.default_rng(1)
    cal = fit_mixing(x, s, ref, criteria=CRITS, ridge=0.01)
    shifted = fit_mixing(x + rng.normal(size=(40, 1, 4)), s + rng.normal(size=(40, 1, 3)),
                         ref + rng.normal(size=(40, 1)), criteria=CRITS, ridge=0.01)
    assert np.allclose(cal.matrix, shifted.matrix, atol=1e-10)


def test_ridge_shrinks_and_cv_picks_the_smallest_held_out_error():
    x, s, ref, _ = _problem(noise=2.0)
    small = fit_mixing(x, s, ref, criteria=CRITS, ridge=0.0)
    big = fit_mixing(x, s, ref, criteria=CRITS, ridge=10.0)
    assert np.linalg.norm(big.matrix) < np.linalg.norm(small.matrix)
    cv = fit_mixing(x, s, ref, criteria=CRITS)
    assert tuple(cv.cv_error) == RIDGE_GRID and cv.ridge in RIDGE_GRID
    assert cv.cv_error[cv.ridge] == min(cv.cv_error.values()) and cv.cv_error[RIDGE_GRID[-1]] == pytest.approx(1.0)
    # held-out check by hand for the chosen lambda: fold i mod 5
    fold = np.arange(40) % 5
    def held_out(lam):
        err = 0.0
        for f in range(5):
            m = fit_mixing(x[fold != f], s[fold != f], ref[fold != f], criteria=CRITS, ridge=lam).matrix
            q = pool_distribution(ref[fold == f])
            xc = x[fold == f] - (x[fold == f] * q[..., None]).sum(1, keepdims=True)
            sc = s[fold == f] - (s[fold == f] * q[..., None]).sum(1, keepdims=True)
            err += float((q[..., None] * (sc - xc @ m) ** 2).sum())
        return err
    top = held_out(RIDGE_GRID[-1])
    assert cv.cv_error[RIDGE_GRID[3]] == pytest.approx(held_out(RIDGE_GRID[3]) / top, rel=1e-8)


def test_scales_keep_the_uncalibrated_distance_and_point_along_m_w():
    x, s, ref, _ = _problem(noise=0.5)
    cal = fit_mixing(0.05 * x, s, ref, criteria=CRITS, ridge=0.01)
    centre = np.array([0.1, 0.0, 0.2])
    for w in ([0.2, 0.3, 0.5], [1.0, 0.0, 0.0], [0.0, 0.1, 0.9]):
        u = cal.scales(w, centre)
        assert cal.distance(u) == pytest.approx(cal.distance(cal.default_scales(w, centre)), rel=1e-9)
        d = cal.matrix @ np.asarray(w)
        assert float(u @ d) / (np.linalg.norm(u) * np.linalg.norm(d)) == pytest.approx(1.0) and u @ d > 0
    assert np.allclose(cal.default_scales([0.2, 0.3, 0.5], centre), [1.0, 0.1, 0.3, 0.3])
    # where the run's own mix does not move, nothing is rescaled
    zero = fit_mixing(np.zeros_like(x), s, ref, criteria=CRITS, ridge=0.1)
    assert np.allclose(zero.scales([0.2, 0.3, 0.5]), zero.default_scales([0.2, 0.3, 0.5]))


def test_a_basis_that_spans_the_scores_reaches_the_oracle_at_the_same_distance():
    """The calibrated mix's pool distribution is the KL-regularised optimum q* ∝ q_ref exp(w's/β) at the
    uncalibrated mix's distance: the best any model can do on w's objective that far from the base."""
    x, s, ref, _ = _problem(p=30)
    cal = fit_mixing(0.1 * x, s, ref, criteria=CRITS, ridge=0.0)
    w = np.array([0.6, 0.1, 0.3])
    u = cal.scales(w)
    q = pool_distribution(ref + cal.basis @ u)
    pool = CandidatePool(tuple(f"p{i}" for i in range(30)), tuple(f"x{i}" for i in range(30)),
                         tuple(tuple(f"c{j}" for j in range(5)) for _ in range(30)),
                         tuple(tuple(f"t{j}" for j in range(5)) for _ in range(30)), s, CRITS)
    qu = pool_distribution(ref + cal.basis @ cal.default_scales(w))
    kl = float((qu * np.log(qu / pool_distribution(ref))).sum(1).mean())
    lo, hi = np.log(1e-4), np.log(1e4)  # the oracle's beta at that KL, by bisection
    for _ in range(100):
        mid = 0.5 * (lo + hi)
        qs = oracle_distribution(ref, pool, dict(zip(CRITS, w)), beta=float(np.exp(mid)))
        lo, hi = (mid, hi) if float((qs * np.log(qs / pool_distribution(ref))).sum(1).mean()) > kl else (lo, mid)
    qs = oracle_distribution(ref, pool, dict(zip(CRITS, w)), beta=float(np.exp(lo)))
    assert np.allclose(q, qs, atol=1e-6)
    own = expected_scores(qu, pool).mean(0) @ w
    best = expected_scores(q, pool).mean(0) @ w
    assert best > own  # the run's own mix (noise in the shared LoRA) falls short of it


def test_padding_round_trip_and_id(tmp_path):
    x, s, ref, _ = _problem(p=12, noise=0.2)
    ref = ref.copy()
    ref[3, 4] = -np.inf
    s = s.copy()
    s[3, 4] = np.nan
    x = x.copy()
    x[3, 4] = np.nan
    cal = fit_mixing(x, s, ref, criteria=CRITS, normalise="mean", source="toy", run_id="r1", pool_hash="h1")
    assert cal.mask.sum() == 59 and np.isfinite(cal.scales([0.3, 0.3, 0.4])).all()
    back = MixingCalibration.load(cal.save(tmp_path / "calibration.json"))
    assert back.id == cal.id and np.array_equal(back.matrix, cal.matrix) and back.cv_error == cal.cv_error
    assert np.array_equal(back.mask, cal.mask) and back.normalise == "mean" and back.run_id == "r1"
    assert back.pool_hash == "h1"
    assert np.allclose(back.scales([0.3, 0.3, 0.4]), cal.scales([0.3, 0.3, 0.4]))
    other = fit_mixing(x, s, ref, criteria=CRITS, ridge=1.0, normalise="mean", source="toy", run_id="r1")
    assert other.id != cal.id
    summ = cal.summary()
    assert json.loads(json.dumps(summ))["rows"] == ["shared", *CRITS] and summ["n_prompts"] == 12


def test_bad_inputs_are_clear_errors(tmp_path):
    x, s, ref, _ = _problem(p=6)
    with pytest.raises(ValueError, match=r"`basis` must have shape \(P, K, 4\)"):
        fit_mixing(x[..., :3], s, ref, criteria=CRITS)
    bad = x.copy()
    bad[2, 1, 0] = np.nan
    with pytest.raises(ValueError, match=r"not finite on real candidates of prompts \[2\]"):
        fit_mixing(bad, s, ref, criteria=CRITS)
    with pytest.raises(ValueError, match="`ridge` must be a number >= 0 or 'cv'. Got -1"):
        fit_mixing(x, s, ref, criteria=CRITS, ridge=-1)
    with pytest.raises(ValueError, match="`ridge` must be a number >= 0 or 'cv'. Got 'auto'"):
        fit_mixing(x, s, ref, criteria=CRITS, ridge="auto")
    with pytest.raises(ValueError, match=">= 2 prompts"):
        fit_mixing(x[:1], s[:1], ref[:1], criteria=CRITS)
    with pytest.raises(ValueError, match="`normalise` must be 'sum' or 'mean'"):
        fit_mixing(x, s, ref, criteria=CRITS, normalise="max")
    cal = fit_mixing(x, s, ref, criteria=CRITS, ridge=0.1)
    with pytest.raises(ValueError, match=r"`w` must be 3 finite weights in the order \['a', 'b', 'c'\]"):
        cal.scales([0.5, 0.5])
    (tmp_path / "x.json").write_text('{"kind": "other"}')
    with pytest.raises(ValueError, match="is not a mixing calibration of schema 1"):
        MixingCalibration.load(tmp_path / "x.json")
    (tmp_path / "y.json").write_text("{")
    with pytest.raises(ValueError, match="is not valid JSON"):
        MixingCalibration.load(tmp_path / "y.json")


# ------------------------------------------------------------------------------------------ a tiny conditioned run
def _tiny_pool(criteria=("empathy", "safety"), n=6):
    import pandas as pd
    from modpo_helpers import COLD, PROMPTS, SAFE, UNSAFE, WARM

    rows = []
    for i, p in enumerate(PROMPTS[10:10 + n]):
        for text, emp, saf in [(WARM[i % 3], 4.0, 2.0), (COLD[i % 3], 1.0, 2.0), (SAFE[i % 2], 2.0, 5.0),
                               (UNSAFE[i % 2], 2.0, 1.0)]:
            rows.append({"prompt_id": f"q{i}", "prompt": p, "text": text, "empathy": emp, "safety": saf})
    return CandidatePool.from_frame(pd.DataFrame(rows), criteria=criteria, name="tiny calibration pool")


def test_calibrated_exports_of_a_tiny_conditioned_run(tmp_path):
    import torch
    from modpo_helpers import KeywordReward, one_thread, toy_pairs
    from peft import PeftModel

    from survey_weights.evaluation.generation import ModelSpec
    from survey_weights.evaluation.pool_scoring import sequence_logps
    from survey_weights.modpo import ConditionedAdapter, MODPOConfig, make_tiny_llama, train_conditioned

    with one_thread():
        model, tok = make_tiny_llama()
        cfg = MODPOConfig(max_steps=6, batch_size=4, lr=1e-3, lora_r=4, lora_alpha=8, progress=False)
        run = train_conditioned(toy_pairs(8), criteria=["empathy", "safety"], output_dir=tmp_path / "run",
                                model=model, tokenizer=tok, config=cfg,
                                reward_models={"safety": KeywordReward("crisis"), "empathy": KeywordReward("sense")},
                                profiles={"a": {"empathy": 0.7, "safety": 0.3}})
        pool = _tiny_pool()
        before = {k: v.clone() for k, v in model.state_dict().items()}
        cal = run.calibrate(pool, model=model, tokenizer=tok, ridge=0.1)
        assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())  # the base is given back
        assert cal.run_id == run.run_id and cal.basis.shape == (6, 4, 3) and cal.matrix.shape == (3, 2)
        assert cal.source == "tiny calibration pool (6 prompts)" and run.calibration is cal
        assert cal.pool_hash == pool_fingerprint(pool) != pool_fingerprint(_tiny_pool(n=5))

        w = {"empathy": 0.7, "safety": 0.3}
        loaded = ConditionedAdapter.load(run.run_dir)
        plain = ConditionedAdapter.load(run.run_dir, calibration=False)
        assert loaded.calibration.id == cal.id and plain.calibration is None
        u = loaded.scales(w)
        assert np.allclose(plain.scales(w), [1.0, 0.7, 0.3])
        assert cal.distance(u) == pytest.approx(cal.distance([1.0, 0.7, 0.3]), rel=1e-8)
        assert not np.allclose(u, [1.0, 0.7, 0.3])

        d_cal, d_plain = loaded.export(w, tmp_path / "cal"), plain.export(w, tmp_path / "plain")
        meta = json.loads((d_cal / "profile.json").read_text())
        assert meta["mixing"]["calibrated"] is True and meta["mixing"]["calibration"]["id"] == cal.id
        assert np.allclose(list(meta["mixing"]["scales"].values()), u)
        assert meta["weights"] == w  # the weights stay the survey's
        pmeta = json.loads((d_plain / "profile.json").read_text())
        assert pmeta["mixing"] == {"calibrated": False, "scales": {"shared": 1.0, "empathy": 0.7, "safety": 0.3}}
        assert meta["resume_key"] != pmeta["resume_key"]

        # the export is the attached model at the calibrated scales
        text = tok("I feel anxious.\nThat makes sense; a crisis line can help.", return_tensors="pt")
        with torch.no_grad():
            le = PeftModel.from_pretrained(make_tiny_llama()[0], str(d_cal))(**text).logits
            lm = loaded.attach(make_tiny_llama()[0], w)(**text).logits
        assert float((le - lm).abs().max()) <= 1e-5

        # the basis describes the export: its pool logits are the base's plus basis @ scales, to first order
        prompts = [pool.prompts[i] for i in range(6) for _ in range(4)]
        texts = [t for ts in pool.texts for t in ts]
        lp, _ = sequence_logps([ModelSpec("base", "base"), ModelSpec("cal", "modpo", adapter=d_cal)], prompts, texts,
                               model=make_tiny_llama()[0], tokenizer=tok)
        shift = (lp["cal"] - lp["base"]).reshape(6, 4)
        pred = cal.basis @ u
        shift, pred = shift - shift.mean(1, keepdims=True), pred - pred.mean(1, keepdims=True)
        assert np.corrcoef(shift.ravel(), pred.ravel())[0, 1] > 0.99  # small steps: the first order holds

        # a calibration written for another run is not used; a pool without a criterion is refused
        rec = json.loads((run.run_dir / "calibration.json").read_text())
        rec["run_id"] = "another run"
        (run.run_dir / "calibration.json").write_text(json.dumps(rec))
        assert ConditionedAdapter.load(run.run_dir).calibration is None
        with pytest.raises(ValueError, match=r"scores \['empathy'\], not the run's criteria \['safety'\]"):
            run.calibrate(_tiny_pool(("empathy",)), model=model, tokenizer=tok)
        with pytest.raises(TypeError, match="`pool` must be a CandidatePool"):
            run.calibrate({"prompts": []}, model=model, tokenizer=tok)


def test_the_main_jobs_calibration_pool_neither_trains_nor_evaluates():
    from survey_weights.pipeline._pool import bundled_calibration_pool, bundled_pool
    from survey_weights.synthetic.preferences import load_preference_data

    data = load_preference_data()
    split = data.prompts.set_index("prompt_id")["split"]
    used = set(split.index[split == "train"][:50])
    pool = bundled_calibration_pool(20, exclude=used)
    assert pool.n_prompts == 20 and pool.scores.shape == (20, 5, 6)
    assert all(split[p] == "train" for p in pool.prompt_ids) and not used & set(pool.prompt_ids)
    assert not set(pool.prompt_ids) & set(bundled_pool(60).prompt_ids)
    assert pool.name == "bundled synthetic calibration pool (training split, no training pair)"
    with pytest.raises(ValueError, match="Only 0 training-split prompts are free of training pairs"):
        bundled_calibration_pool(20, exclude=set(split.index))


@pytest.mark.slow
def test_the_main_job_on_users_pairs_keeps_the_runs_own_mix_and_says_why(tmp_path, capsys):
    from modpo_helpers import KeywordReward, one_thread, toy_pairs

    from survey_weights.criteria import ALL_CRITERIA
    from survey_weights.modpo import MODPOConfig
    from survey_weights.pipeline import MainSchedule, run_main

    prefs = tmp_path / "pairs.jsonl"
    toy_pairs(20, criteria=ALL_CRITERIA).to_json(prefs, orient="records", lines=True)
    tiny = MainSchedule(training=MODPOConfig(max_steps=1, batch_size=2, max_length=96, max_prompt_length=48),
                        pairs_per_criterion=4, n_eval_prompts=2, max_new_tokens=4, n_pool_prompts=None)
    with one_thread():
        run_main(out=tmp_path / "out", preferences=prefs, base_model="tiny-test", n_classes=0, factors=(),
                 schedule=tiny, reward_models={c: KeywordReward("sense") for c in ALL_CRITERIA}, device="cpu",
                 progress=True)
    assert "mixing: the run's own mix (calibration needs scored candidates" in capsys.readouterr().err
    metas = [json.loads(p.read_text()) for p in (tmp_path / "out" / "adapters").glob("*/profile.json")]
    assert metas and all(m["mixing"]["calibrated"] is False for m in metas)
    assert not (tmp_path / "out" / "conditioned" / "calibration.json").exists()
