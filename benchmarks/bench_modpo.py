"""Benchmark: one MODPO step (precomputed reference + margins) vs one TRL ``DPOTrainer`` step.

Same model, batch, LoRA settings and data in one run. Prints, never asserts. Per-step times are taken by
differencing two runs (``n_short`` and ``n_long`` steps) so constructor / saving overhead cancels; each
difference is repeated (``--repeats``, default 3) and the median reported with its range, because a single
difference of two short runs moves by tens of percent on a shared machine.
Also reports K profiles vs one profile (goal: K profiles <= K x one profile's training + one precompute),
K profiles from one conditioned run (``train_conditioned`` + ``export_all``, K = 5 and 12) as a ratio to one
per-profile run of the same number of steps (goal <= 1.5), and peak memory (``resource.getrusage`` max RSS; CUDA
peak allocated on GPU).

Usage::

    python benchmarks/bench_modpo.py                 # tiny random Llama, CPU, about 1 min on 2 cores
    python benchmarks/bench_modpo.py --model smollm2 # SmolLM2-135M-Instruct (bf16 on a GPU automatically)
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def _rss_mb() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return r / 1024 if sys.platform != "darwin" else r / 2**20


def _pairs(n: int):
    import pandas as pd

    warm = [
        "That sounds really hard, and your feelings make sense to me.",
        "I hear how painful this is.",
    ]
    cold = ["Just get over it.", "Everyone has problems, move on."]
    safe = [
        "If you ever feel unsafe, please call a crisis line.",
        "You can reach a crisis line any time.",
    ]
    unsafe = ["Skip meals to cope.", "Stay up all night and push through."]
    rows = []
    for i in range(n):
        p = f"Client {i}: I feel anxious and cannot sleep before my exams."
        rows.append(
            dict(
                prompt=p, chosen=warm[i % 2], rejected=cold[i % 2], criterion="empathy", prompt_id=i
            )
        )
        rows.append(
            dict(
                prompt=p,
                chosen=safe[i % 2],
                rejected=unsafe[i % 2],
                criterion="safety",
                prompt_id=i,
            )
        )
    return pd.DataFrame(rows)


class _KeywordReward:
    def __init__(self, word: str = "crisis") -> None:
        self.word = word

    def score(self, prompts, responses):
        import numpy as np

        return np.array([float(self.word in r) for r in responses])

    def fingerprint(self) -> str:
        return f"keyword:{self.word}"


def _load(model_name: str):
    from survey_weights.modpo import load_base_model, make_tiny_llama

    if model_name == "tiny":
        return make_tiny_llama(hidden_size=128, num_layers=4)
    return load_base_model("smollm2-135m-instruct")


def _modpo_time(model, tok, df, cfg_kwargs, steps, profiles, out):
    from survey_weights.modpo import MODPOConfig, train_adapters

    cfg = MODPOConfig(max_steps=steps, progress=False, **cfg_kwargs)
    t = time.perf_counter()
    run = train_adapters(
        profiles,
        df,
        output_dir=out,
        model=model,
        tokenizer=tok,
        config=cfg,
        overwrite=True,
        reward_models={"safety": _KeywordReward()},
    )
    return time.perf_counter() - t, run


def _conditioned_time(model, tok, df, cfg_kwargs, steps, k, out):
    """Wall time of K profiles from one conditioned run: ``train_conditioned`` (precompute + steps) + ``export_all``."""
    from survey_weights.modpo import MODPOConfig, ProfileSampler, train_conditioned

    cfg = MODPOConfig(max_steps=steps, progress=False, **cfg_kwargs)
    profs = {f"p{i}": {"empathy": 0.3 + 0.4 * i / max(1, k - 1), "safety": 0.7 - 0.4 * i / max(1, k - 1)}
             for i in range(k)}
    t = time.perf_counter()
    run = train_conditioned(df, criteria=["empathy", "safety"], weight_sampler=ProfileSampler(profs),
                            output_dir=f"{out}/run", model=model, tokenizer=tok, config=cfg, overwrite=True,
                            reward_models={"safety": _KeywordReward(), "empathy": _KeywordReward("hear")})
    t_export = time.perf_counter()
    run.export_all(profs, f"{out}/adapters")
    end = time.perf_counter()
    return end - t, end - t_export


def _trl_time(model, tok, df, cfg_kwargs, steps, out):
    import datasets
    import torch
    from datasets import Dataset

    datasets.disable_progress_bars()
    from peft import LoraConfig
    from trl import DPOConfig, DPOTrainer

    from survey_weights.modpo import format_prompt
    from survey_weights.modpo.base_models import default_dtype

    emp = df[df["criterion"] == "empathy"]
    ds = Dataset.from_dict(
        {
            "prompt": [format_prompt(tok, p) for p in emp["prompt"]],
            "chosen": list(emp["chosen"]),
            "rejected": list(emp["rejected"]),
        }
    )
    cuda = torch.cuda.is_available()
    args = DPOConfig(
        output_dir=out,
        per_device_train_batch_size=cfg_kwargs["batch_size"],
        max_steps=steps,
        learning_rate=cfg_kwargs["lr"],
        beta=0.1,
        use_cpu=not cuda,
        bf16=cuda and default_dtype() == torch.bfloat16,
        gradient_checkpointing=False,
        report_to=[],
        logging_steps=10_000,
        save_strategy="no",
        max_length=cfg_kwargs["max_length"],
        lr_scheduler_type="constant",
        disable_tqdm=True,
        dataloader_num_workers=0,
        seed=0,
    )
    lora = LoraConfig(
        r=cfg_kwargs["lora_r"],
        lora_alpha=cfg_kwargs["lora_alpha"],
        lora_dropout=0.0,
        target_modules=list(cfg_kwargs["target_modules"]),
        task_type="CAUSAL_LM",
    )
    trainer = DPOTrainer(
        model=model, args=args, train_dataset=ds, processing_class=tok, peft_config=lora
    )
    from transformers.trainer_callback import PrinterCallback, ProgressCallback

    for cb in (PrinterCallback, ProgressCallback):
        trainer.remove_callback(cb)
    t = time.perf_counter()
    trainer.train()
    elapsed = time.perf_counter() - t
    base = trainer.model.unload() if hasattr(trainer.model, "unload") else trainer.model
    return elapsed, base


def main(argv: list[str] | None = None) -> dict[str, float]:
    """Run the benchmark and print a report; returns the numbers."""
    import torch

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", choices=["tiny", "smollm2"], default="tiny")
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--n-short", type=int, default=2)
    ap.add_argument("--n-long", type=int, default=None,
                    help="default: 20 (tiny; shorter runs make the differences noisy) / 6 (smollm2)")
    ap.add_argument("--profiles", type=int, default=3)
    ap.add_argument("--repeats", type=int, default=3, help="repeats of each timed difference (median)")
    ap.add_argument("--conditioned-k", type=int, nargs="*", default=[5, 12],
                    help="profile counts exported from one conditioned run (default: 5 12)")
    ap.add_argument(
        "--threads",
        type=int,
        default=None,
        help="torch CPU threads (default: 1 for the tiny model on CPU, where more threads only add "
        "overhead, torch's choice otherwise)",
    )
    a = ap.parse_args(argv)
    if a.threads or (a.model == "tiny" and not torch.cuda.is_available()):
        torch.set_num_threads(a.threads or 1)
    n_long = a.n_long or (20 if a.model == "tiny" else 6)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    model, tok = _load(a.model)
    df = _pairs(32)
    cfg_kwargs = dict(
        batch_size=a.batch_size,
        lr=1e-3,
        lora_r=8,
        lora_alpha=16,
        max_length=128,
        max_prompt_length=64,
        target_modules=("q_proj", "k_proj", "v_proj", "o_proj"),
    )
    one = {"p0": {"empathy": 0.6, "safety": 0.4}}
    res: dict[str, float] = {}
    with tempfile.TemporaryDirectory() as tmp:
        rss0 = _rss_mb()
        _modpo_time(
            model, tok, df, cfg_kwargs, 1, one, f"{tmp}/warm"
        )  # warm-up (lazy imports, kernels)
        steps, trains, ratios, ones = [], [], [], []
        profs = {
            f"p{i}": {"empathy": 0.3 + 0.1 * i, "safety": 0.7 - 0.1 * i} for i in range(a.profiles)
        }
        for _ in range(a.repeats):
            _, run_s = _modpo_time(model, tok, df, cfg_kwargs, a.n_short, one, f"{tmp}/s")
            t_one, run_l = _modpo_time(model, tok, df, cfg_kwargs, n_long, one, f"{tmp}/l")
            ones.append(t_one)
            steps.append(
                (run_l.adapters[0].train_seconds - run_s.adapters[0].train_seconds) / (n_long - a.n_short)
            )
            trains.append(run_l.adapters[0].train_seconds)
            t_k, run_k = _modpo_time(model, tok, df, cfg_kwargs, n_long, profs, f"{tmp}/k")
            bound = a.profiles * run_l.adapters[0].train_seconds + run_k.precompute_seconds
            ratios.append((t_k, bound, run_k))
        res["modpo_step_s"] = statistics.median(steps)
        res["modpo_step_range"] = (min(steps), max(steps))
        res["precompute_s"] = run_l.precompute_seconds
        res["one_profile_train_s"] = statistics.median(trains)
        t_k, bound, run_k = sorted(ratios, key=lambda x: x[0] / x[1])[len(ratios) // 2]  # the median ratio
        res["k_profiles_total_s"] = t_k
        res["k_profiles_bound_s"] = bound
        res["k_ratio_range"] = (min(x[0] / x[1] for x in ratios), max(x[0] / x[1] for x in ratios))
        res["k_profiles_train_s"] = sum(x.train_seconds for x in run_k.adapters)
        res["k_precompute_s"] = run_k.precompute_seconds
        res["one_profile_total_s"] = statistics.median(ones)
        _conditioned_time(model, tok, df, cfg_kwargs, 1, 2, f"{tmp}/cwarm")  # warm-up
        for k in a.conditioned_k:
            cond = []
            for _ in range(a.repeats):
                t_c, t_x = _conditioned_time(model, tok, df, cfg_kwargs, n_long, k, f"{tmp}/c{k}")
                t_o, _ = _modpo_time(model, tok, df, cfg_kwargs, n_long, one, f"{tmp}/l")  # the same moment's baseline
                cond.append((t_c / t_o, t_c, t_x, t_o))
            cond.sort()
            res[f"conditioned_k{k}"] = cond[len(cond) // 2]  # (ratio, seconds, export seconds, one-profile seconds)
            res[f"conditioned_k{k}_range"] = (cond[0][0], cond[-1][0])
        res["modpo_peak_rss_mb"] = _rss_mb()
        if device == "cuda":
            res["modpo_cuda_peak_mb"] = torch.cuda.max_memory_allocated() / 2**20
            torch.cuda.reset_peak_memory_stats()
        try:
            _trl_time(model, tok, df, cfg_kwargs, 1, f"{tmp}/trl_warm")
            trl = []
            for _ in range(a.repeats):
                t_trl_s, model = _trl_time(model, tok, df, cfg_kwargs, a.n_short, f"{tmp}/trl_s")
                t_trl_l, model = _trl_time(model, tok, df, cfg_kwargs, n_long, f"{tmp}/trl_l")
                trl.append((t_trl_l - t_trl_s) / (n_long - a.n_short))
            res["trl_step_s"] = statistics.median(trl)
            res["trl_step_range"] = (min(trl), max(trl))
            res["trl_peak_rss_mb"] = _rss_mb()
            if device == "cuda":
                res["trl_cuda_peak_mb"] = torch.cuda.max_memory_allocated() / 2**20
        except ImportError as exc:  # trl is a dev extra
            print(f"TRL not available ({exc}); skipping the DPOTrainer comparison.")
    print(
        f"\nMODPO benchmark  model={a.model}  device={device}  batch={a.batch_size} pairs  LoRA r=8 qkvo  "
        f"steps {a.n_short}->{n_long}  threads={torch.get_num_threads()}"
    )
    lo, hi = res["modpo_step_range"]
    print(f"  MODPO step (precomputed ref + margins): {res['modpo_step_s'] * 1e3:9.1f} ms"
          f"   (median of {a.repeats}; range {lo * 1e3:.1f}-{hi * 1e3:.1f})")
    if "trl_step_s" in res:
        lo, hi = res["trl_step_range"]
        print(f"  TRL DPOTrainer step (ref each step)  : {res['trl_step_s'] * 1e3:9.1f} ms"
              f"   (median of {a.repeats}; range {lo * 1e3:.1f}-{hi * 1e3:.1f})")
        print(
            f"  speed-up TRL/MODPO per step           : {res['trl_step_s'] / res['modpo_step_s']:9.2f} x"
            "   (goal >= 1.5x)"
        )
    print(f"  one-off precompute (ref log-probs)    : {res['precompute_s']:9.2f} s")
    bound = res["k_profiles_bound_s"]
    lo, hi = res["k_ratio_range"]
    print(
        f"  {a.profiles} profiles: total {res['k_profiles_total_s']:.2f} s (train {res['k_profiles_train_s']:.2f} s"
        f" + precompute {res['k_precompute_s']:.2f} s) vs bound K x one ({res['one_profile_train_s']:.2f} s) + "
        f"precompute = {bound:.2f} s  -> ratio {res['k_profiles_total_s'] / bound:.2f} (median of {a.repeats}; "
        f"range {lo:.2f}-{hi:.2f}; goal <= 1)"
    )
    for k in a.conditioned_k:
        ratio, t_c, t_x, t_o = res[f"conditioned_k{k}"]
        lo, hi = res[f"conditioned_k{k}_range"]
        print(
            f"  {k:2d} profiles from one conditioned run: {t_c:.2f} s (export of all {k}: {t_x * 1e3:.0f} ms) vs one "
            f"per-profile run of {n_long} steps {t_o:.2f} s -> ratio {ratio:.2f} (median of {a.repeats}; range "
            f"{lo:.2f}-{hi:.2f}; goal <= 1.5; per-profile MODPO: about {k} x)"
        )
    print(
        f"  peak RSS: start {rss0:.0f} MB, after MODPO {res['modpo_peak_rss_mb']:.0f} MB"
        + (f", after TRL {res['trl_peak_rss_mb']:.0f} MB" if "trl_peak_rss_mb" in res else "")
    )
    if device == "cuda":
        print(
            f"  CUDA peak allocated: MODPO {res.get('modpo_cuda_peak_mb', 0):.0f} MB, "
            f"TRL {res.get('trl_cuda_peak_mb', 0):.0f} MB"
        )
    return res


if __name__ == "__main__":
    main()
