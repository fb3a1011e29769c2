"""Train one LoRA adapter per weight profile with MODPO (Zhou et al. 2023) on transformers + peft.

Cost model: reference log-probs (the base with no adapter) and reward-model margins are computed **once** per
data set and shared by every profile, so each profile's step is one forward + backward of the policy.
The loop runs unchanged under ``accelerate launch`` (global batch split across ranks, gradients averaged).
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
import math
import os
import platform
import shutil
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from .._util.io import atomic_write_text
from .._util.progress import tqdm
from ..exceptions import SettingsChangedError
from ..preferences.pairs import as_pairs_frame, data_hash
from ..profiles.training_spec import TrainingSpec, check_coverage, normalize_profiles, profile_dirname
from .config import MODPOConfig, RewardModelConfig
from .logps import Encoded, collate, compute_logps, encode_sequences, sequence_logps
from .losses import joint_dpo_loss, modpo_loss

__all__ = ["AdapterResult", "TrainingRun", "train_adapters", "train_dpo_adapters", "PROFILE_FILE"]

PROFILE_FILE = "profile.json"
SCHEMA_VERSION = 2  # 2: `provenance` (where the profile's weights came from)
_OBJECTIVES = ("modpo", "joint_dpo")


@dataclass(frozen=True)
class AdapterResult:
    """One trained (or resumed) adapter.

    Attributes
    ----------
    name : str
        Profile name; ``path`` is ``output_dir / profile_dirname(name)``.
    criteria, weight_vector : tuple
        Objective order used in training (main objective first) and its weights.
    losses : tuple of float
        Mean training loss per step (empty when ``skipped``).
    skipped : bool
        True when a finished adapter with a matching ``profile.json`` was found and reused.
    """

    name: str
    path: Path
    main_objective: str
    criteria: tuple[str, ...]
    weight_vector: tuple[float, ...]
    losses: tuple[float, ...]
    skipped: bool
    train_seconds: float


@dataclass(frozen=True)
class TrainingRun:
    """Result of :func:`train_adapters`: adapters in profile order plus shared-precompute facts."""

    adapters: tuple[AdapterResult, ...]
    output_dir: Path
    precompute_seconds: float
    reward_accuracy: dict[str, float | None] = field(default_factory=dict)

    def __getitem__(self, name: str) -> AdapterResult:
        for a in self.adapters:
            if a.name == name:
                return a
        raise KeyError(name)


def _versions() -> dict[str, str]:
    out = {"python": platform.python_version()}
    for pkg in ("survey_weights", "torch", "transformers", "peft", "accelerate"):
        try:
            out[pkg] = importlib.metadata.version(pkg)
        except importlib.metadata.PackageNotFoundError:
            out[pkg] = "unknown"
    return out


def _rm_fingerprint(rm: Any) -> str:
    fp = getattr(rm, "fingerprint", None)
    if callable(fp):
        return str(fp())
    return f"{type(rm).__module__}.{getattr(rm, '__qualname__', type(rm).__qualname__)}"


def _rm_score(rm: Any, prompts: list[str], responses: list[str]) -> np.ndarray:
    fn = rm.score if hasattr(rm, "score") else rm
    if not callable(fn):
        raise TypeError(
            f"A reward model must have `.score(prompts, responses)` or be callable. Got {rm!r}."
        )
    out = np.asarray(fn(prompts, responses), dtype=np.float64).reshape(-1)
    if out.shape != (len(prompts),) or not np.isfinite(out).all():
        raise ValueError(f"Reward model {rm!r} must return {len(prompts)} finite scores.")
    return out


def _lr_lambda(cfg: MODPOConfig, total: int) -> Callable[[int], float]:
    def f(step: int) -> float:
        if step < cfg.warmup_steps:
            return (step + 1) / cfg.warmup_steps
        if cfg.lr_scheduler == "constant":
            return 1.0
        frac = (step - cfg.warmup_steps) / max(1, total - cfg.warmup_steps)
        return (
            max(0.0, 1.0 - frac)
            if cfg.lr_scheduler == "linear"
            else 0.5 * (1.0 + math.cos(math.pi * frac))
        )

    return f


def _index_stream(n_items: int, n_needed: int, seed: int) -> np.ndarray:
    """Concatenated seeded permutations of range(n_items) (one per epoch), cut to ``n_needed``."""
    reps = -(-n_needed // n_items)
    return np.concatenate(
        [np.random.default_rng([seed, e]).permutation(n_items) for e in range(reps)]
    )[:n_needed]


def _gather_logps(
    acc: Any,
    model: Any,
    enc: Encoded,
    rows: Sequence[int],
    *,
    pad_id: int,
    cfg: MODPOConfig,
    desc: str,
) -> torch.Tensor:
    """Reference log-probs of ``rows`` of ``enc``, sharded over processes and gathered (float32, CPU)."""
    world, rank = acc.num_processes, acc.process_index
    rows = list(rows)
    mine = rows[rank::world]
    vals = compute_logps(
        model,
        enc,
        mine,
        pad_id=pad_id,
        batch_size=cfg.precompute_batch_size,
        device=acc.device,
        progress=cfg.progress and acc.is_local_main_process,
        desc=desc,
    )
    if world == 1:
        return vals
    m = -(-len(rows) // world)
    padded = torch.zeros(m, dtype=torch.float32)
    padded[: len(vals)] = vals
    gathered = acc.gather(padded.to(acc.device)).cpu().view(world, m)
    out = torch.empty(len(rows), dtype=torch.float32)
    for r in range(world):
        k = len(rows[r::world])
        out[r::world] = gathered[r, :k]
    return out


def _resume_key(record: dict[str, Any], cfg: MODPOConfig) -> str:
    """Hash of what changes the trained adapter; display and speed settings (``progress``, ...) stay out."""
    keys = (
        "objective",
        "weights",
        "criteria_order",
        "weight_vector",
        "main_objective",
        "data_hash",
        "reward_sources",
        "base_model",
    )
    keyed = {k: record.get(k) for k in keys}
    keyed["config"] = cfg.training_key()
    return hashlib.sha256(json.dumps(keyed, sort_keys=True).encode()).hexdigest()


def _finish_dir(tmp: Path, final: Path) -> None:
    """Move a fully written adapter dir into place (atomic rename; an old one is moved aside first)."""
    if final.exists():
        trash = Path(tempfile.mkdtemp(prefix=".partial-old-", dir=final.parent))
        os.replace(final, trash / "old")
        os.replace(tmp, final)
        shutil.rmtree(trash, ignore_errors=True)
    else:
        os.replace(tmp, final)


def train_adapters(
    profiles: Any,
    data: Any,
    *,
    output_dir: str | os.PathLike[str],
    model: Any = "smollm2-135m-instruct",
    tokenizer: Any = None,
    config: MODPOConfig | None = None,
    main_objective: str | Mapping[str, str] | None = None,
    reward_models: Mapping[str, Any] | None = None,
    reward_config: RewardModelConfig | None = None,
    objective: str = "modpo",
    overwrite: bool = False,
    base_model_id: str | None = None,
    accelerator: Any = None,
) -> TrainingRun:
    """Train one LoRA adapter per weight profile and save each in PEFT format with a ``profile.json``.

    For a profile with weights ``w`` and main objective ``k``, the training pairs are ``k``'s pairs and every
    other criterion with ``w_c > 0`` enters as a reward-model margin (:func:`~survey_weights.modpo.modpo_loss`
    with weights ``(w_k, w_-k)``). A profile ``{c: 1}`` is plain DPO.

    Parameters
    ----------
    profiles : WeightProfile(s), mapping name -> {criterion: weight}, TrainingSpecs, or a list of them
        Turned into one :class:`~survey_weights.profiles.training_spec.TrainingSpec` each
        (:func:`~survey_weights.profiles.training_spec.normalize_profiles`); names must stay distinct as directory
        names. A WeightProfile's provenance (survey data hash, respondents, intervals, safety rule, source,
        group) is written to ``profile.json``.
    data : DataFrame, mapping criterion -> DataFrame, or JSONL path
        Preference pairs with columns ``prompt, chosen, rejected, criterion`` (+ optional ``prompt_id``).
    output_dir : path
        Adapters go to ``output_dir / profile_dirname(name)``; reward models trained here go to
        ``output_dir / "reward_models" / criterion``.
    model : str or transformers.PreTrainedModel, default "smollm2-135m-instruct"
        A base causal LM (not a PeftModel) or a name/path for :func:`~survey_weights.modpo.load_base_model`.
        The model is modified in place while training and restored (LoRA unloaded) afterwards.
    tokenizer : tokenizer, optional
        Required when ``model`` is a model object.
    config : MODPOConfig, optional
    main_objective : str or mapping profile name -> str, optional
        Default: each profile's largest survey criterion.
    reward_models : mapping criterion -> reward model, optional
        Objects with ``.score(prompts, responses)`` or callables ``f(prompts, responses) -> scores``. Margin
        criteria without one get a :class:`~survey_weights.modpo.RewardModel` trained on ``data``.
    reward_config : RewardModelConfig, optional
    objective : {"modpo", "joint_dpo"}, default "modpo"
        ``"joint_dpo"`` is the study's joint-loss baseline (needs pairs for every weighted criterion, aligned
        by ``prompt_id``, or by prompt text when there is no ``prompt_id``).
    overwrite : bool, default False
        Retrain profiles whose finished adapter exists. Otherwise finished adapters with a matching
        ``profile.json`` are skipped (resume) and mismatching ones raise.
    base_model_id : str, optional
        Recorded in ``profile.json`` (default: the name/path passed or ``model.config.name_or_path``).
    accelerator : accelerate.Accelerator, optional
        Created when omitted (works under ``accelerate launch`` and ``torchrun``).

    Returns
    -------
    TrainingRun

    Raises
    ------
    ValueError
        Bad profiles (see ``normalize_profiles``), main objective with zero weight, criteria missing from the
        data / reward models, ``batch_size`` not divisible by the number of processes.
    SettingsChangedError
        A finished adapter in ``output_dir`` was trained with other settings or data (without ``overwrite``);
        a subclass of ValueError.
    TypeError
        ``model`` is a PeftModel or no tokenizer was given with a model object.
    """
    from accelerate import Accelerator
    from peft import LoraConfig, PeftModel, get_peft_model

    cfg = config or MODPOConfig()
    if not isinstance(cfg, MODPOConfig):
        raise TypeError(f"`config` must be a MODPOConfig. Got {type(cfg).__name__} instead.")
    if objective not in _OBJECTIVES:
        raise ValueError(f"Unknown `objective` {objective!r}. Choose one of {_OBJECTIVES}.")
    rcfg = reward_config or RewardModelConfig()
    profs: list[TrainingSpec] = normalize_profiles(profiles, main_objective=main_objective)
    frame = as_pairs_frame(data)
    d_hash = data_hash(frame)
    present = set(frame["criterion"])
    plan = [(p, p.main_objective, list(p.criteria), list(p.weight_vector)) for p in profs]
    if objective == "modpo":
        check_coverage(
            {p.name: [m] for p, m, _, _ in plan},
            present,
            what="the preference data",
            fix="Fix: add pairs for the main objective or choose another `main_objective`.",
        )
        given = dict(reward_models or {})
        check_coverage(
            {p.name: c[1:] for p, _, c, _ in plan},
            set(given) | present,
            what="the preference data and `reward_models`",
            fix="Fix: add pairs for them (a reward model is then trained) or pass `reward_models`.",
        )
    else:
        given = {}
        check_coverage(
            {p.name: c for p, _, c, _ in plan},
            present,
            what="the preference data",
            fix="Fix: joint-loss DPO needs pairs for every criterion with a positive weight.",
        )

    # On CPU, Accelerator only joins a torchrun/gloo group when told to use the CPU.
    acc = accelerator or Accelerator(cpu=not torch.cuda.is_available())
    if cfg.batch_size % acc.num_processes:
        raise ValueError(
            f"`batch_size` ({cfg.batch_size}) must be divisible by the number of processes "
            f"({acc.num_processes}). Fix: use a multiple of {acc.num_processes}."
        )
    if isinstance(model, (str, os.PathLike)):
        from .base_models import load_base_model

        base_model_id = base_model_id or str(model)
        model, tokenizer = load_base_model(model, device=acc.device)
    if isinstance(model, PeftModel):
        raise TypeError(
            "`model` must be the base model, not a PeftModel. Fix: pass `peft_model.unload()` or load "
            "the base again."
        )
    if not hasattr(model, "config") or not callable(model):
        raise TypeError(
            f"`model` must be a transformers causal LM or a name/path. Got {type(model).__name__}."
        )
    if tokenizer is None:
        raise TypeError("`tokenizer` is required when `model` is a model object.")
    base_model_id = (
        base_model_id or getattr(model.config, "name_or_path", "") or type(model).__name__
    )
    if not getattr(model, "is_loaded_in_4bit", False):
        model.to(acc.device)
    pad_id = (
        tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    )

    out = Path(output_dir)
    if acc.is_main_process:
        out.mkdir(parents=True, exist_ok=True)
        for stale in out.glob(".partial-*"):  # a crashed run's half-written adapter: never reused
            shutil.rmtree(stale, ignore_errors=True)
    acc.wait_for_everyone()

    # ---- which profiles are already finished (resume) ----
    records, todo, results = {}, [], {}
    for p, main, crits, ws in plan:
        sources = (
            {
                c: (_rm_fingerprint(given[c]) if c in given else {"trained": rcfg.training_key()})
                for c in crits[1:]
            }
            if objective == "modpo"
            else {}
        )
        rec = {
            "schema_version": SCHEMA_VERSION,
            **p.to_record(objective),
            "objective": objective,
            "beta": cfg.beta,
            "seed": cfg.seed,
            "config": cfg.to_dict(),
            "data_hash": d_hash,
            "reward_sources": sources,
            "base_model": base_model_id,
        }
        rec["resume_key"] = _resume_key(rec, cfg)
        records[p.name] = rec
        final = out / rec["dirname"]
        pj = final / PROFILE_FILE
        if pj.exists() and not overwrite:
            old = json.loads(pj.read_text())
            if old.get("resume_key") != rec["resume_key"]:
                raise SettingsChangedError(
                    f"{final} holds an adapter trained with other settings or data. Fix: pass "
                    "overwrite=True or another `output_dir`."
                )
            new_prov = rec["provenance"]
            if any(v is not None for v in new_prov.values()) and old.get("provenance") != new_prov \
                    and acc.is_main_process:  # same trained weights, now with (other) provenance: record it
                atomic_write_text(pj, json.dumps(dict(old, provenance=new_prov), indent=2))
            results[p.name] = AdapterResult(
                p.name, final, main, tuple(crits), tuple(ws), (), True, 0.0
            )
        else:
            todo.append((p, main, crits, ws))

    t0 = time.perf_counter()
    rm_acc: dict[str, float | None] = {}
    enc = None
    if todo:
        # ---- reward models for margins (trained once, shared) ----
        rms = dict(given)
        need_rm = (
            sorted({c for _, _, crits, _ in todo for c in crits[1:]} - set(rms))
            if objective == "modpo"
            else []
        )
        if need_rm:
            from .reward import train_reward_models

            trained = train_reward_models(frame, criteria=need_rm, config=rcfg)
            rms.update(trained)
            if acc.is_main_process:
                for c, rm in trained.items():
                    rm.save(out / "reward_models" / profile_dirname(c))
        rm_acc = {c: getattr(rms[c], "val_accuracy", None) for c in rms}
        # ---- tokenise once: chosen rows 0..n-1, rejected rows n..2n-1 ----
        n = len(frame)
        enc = encode_sequences(
            tokenizer,
            list(frame["prompt"]) * 2,
            list(frame["chosen"]) + list(frame["rejected"]),
            max_length=cfg.max_length,
            max_prompt_length=cfg.max_prompt_length,
            use_chat_template=cfg.use_chat_template,
        )
        train_crits = (
            {m for _, m, _, _ in todo}
            if objective == "modpo"
            else {c for _, _, crits, _ in todo for c in crits}
        )
        rows = np.flatnonzero(frame["criterion"].isin(train_crits).to_numpy())
        seq_rows = np.concatenate([rows, rows + n]).tolist()
        ref = torch.full((2 * n,), float("nan"))
        ref[seq_rows] = _gather_logps(
            acc, model, enc, seq_rows, pad_id=pad_id, cfg=cfg, desc="reference log-probs"
        )
        # ---- margins r_c(x, y) for every (training row, margin criterion), once ----
        margins: dict[str, torch.Tensor] = {}
        for c in (
            sorted({c for _, _, crits, _ in todo for c in crits[1:]})
            if objective == "modpo"
            else []
        ):
            m_rows = np.flatnonzero(
                frame["criterion"].isin({m for _, m, cr, _ in todo if c in cr[1:]}).to_numpy()
            )
            tab = torch.full((n, 2), float("nan"), dtype=torch.float64)
            prompts = frame["prompt"].iloc[m_rows].tolist()
            tab[m_rows, 0] = torch.from_numpy(
                _rm_score(rms[c], prompts, frame["chosen"].iloc[m_rows].tolist())
            )
            tab[m_rows, 1] = torch.from_numpy(
                _rm_score(rms[c], prompts, frame["rejected"].iloc[m_rows].tolist())
            )
            margins[c] = tab
    precompute_s = time.perf_counter() - t0

    for p, main, crits, ws in todo:
        t1 = time.perf_counter()
        if objective == "modpo":
            items = np.flatnonzero((frame["criterion"] == main).to_numpy())[:, None]
        else:
            items = _aligned_rows(frame, crits)
        final = out / records[p.name]["dirname"]
        torch.manual_seed(cfg.seed)
        lora = LoraConfig(
            r=cfg.lora_r,
            lora_alpha=cfg.lora_alpha,
            lora_dropout=cfg.lora_dropout,
            target_modules=list(cfg.target_modules),
            bias="none",
            task_type="CAUSAL_LM",
        )
        peft_model = get_peft_model(model, lora)
        try:
            losses, total = _fit_one(
                acc,
                peft_model,
                cfg,
                enc,
                ref,
                items,
                crits,
                ws,
                margins,
                objective,
                n,
                pad_id,
                p.name,
            )
        except BaseException:
            peft_model.unload()  # leave the caller's model as it was
            _release(acc)
            raise
        unwrapped = peft_model
        if acc.is_main_process:
            tmp = Path(tempfile.mkdtemp(prefix=f".partial-{records[p.name]['dirname']}-", dir=out))
            tmp.chmod(0o755)
            unwrapped.save_pretrained(tmp)
            rec = dict(
                records[p.name],
                n_pairs=int(len(items)),
                steps=total,
                num_processes=acc.num_processes,
                final_loss=losses[-1],
                losses=losses,
                versions=_versions(),
                reward_models={
                    c: {
                        "fingerprint": _rm_fingerprint(rms[c]),
                        "val_accuracy": getattr(rms[c], "val_accuracy", None),
                    }
                    for c in crits[1:]
                }
                if objective == "modpo"
                else {},
                created=time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            )
            (tmp / PROFILE_FILE).write_text(
                json.dumps(rec, indent=2)
            )  # written last: marks the dir finished
            _finish_dir(tmp, final)
        acc.wait_for_everyone()
        model = unwrapped.unload()  # restore the plain base for the next profile
        _release(acc)
        results[p.name] = AdapterResult(
            p.name,
            final,
            main,
            tuple(crits),
            tuple(ws),
            tuple(losses),
            False,
            time.perf_counter() - t1,
        )
    return TrainingRun(tuple(results[p.name] for p in profs), out, precompute_s, rm_acc)


def _fit_one(
    acc: Any,
    peft_model: Any,
    cfg: MODPOConfig,
    enc: Encoded,
    ref: torch.Tensor,
    items: np.ndarray,
    crits: Sequence[str],
    ws: Sequence[float],
    margins: dict[str, torch.Tensor],
    objective: str,
    n: int,
    pad_id: int,
    name: str,
) -> tuple[list[float], int]:
    """The optimisation loop of one profile; returns per-step mean losses and the number of steps."""
    params = [q for q in peft_model.parameters() if q.requires_grad]
    opt = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    total = cfg.max_steps or max(1, math.ceil(cfg.epochs * len(items) / cfg.batch_size))
    sched = torch.optim.lr_scheduler.LambdaLR(opt, _lr_lambda(cfg, total))
    pmodel, opt = acc.prepare(peft_model, opt)
    pmodel.train()
    stream = _index_stream(len(items), total * cfg.batch_size, cfg.seed)
    lb = cfg.batch_size // acc.num_processes
    margin_cols = [margins[c] for c in crits[1:]] if objective == "modpo" else []
    w_t = torch.tensor(ws, dtype=torch.float32, device=acc.device)
    losses = []
    bar = tqdm(
        range(total), desc=f"MODPO {name}", disable=not (cfg.progress and acc.is_main_process)
    )
    for step in bar:
        g = stream[step * cfg.batch_size : (step + 1) * cfg.batch_size]
        local = items[g[acc.process_index * lb : (acc.process_index + 1) * lb]]  # (lb, S)
        flat = local.reshape(-1)
        ids, mask, labels = collate(
            enc, list(flat) + list(flat + n), pad_id=pad_id, device=acc.device
        )
        logps = sequence_logps(pmodel, ids, mask, labels)
        k = len(flat)
        pc, pr = logps[:k].view(local.shape), logps[k:].view(local.shape)
        rc = ref[flat].view(local.shape).to(acc.device)
        rr = ref[flat + n].view(local.shape).to(acc.device)
        if objective == "modpo":
            mc = mr = None
            if margin_cols:
                mc = torch.stack([t[flat, 0] for t in margin_cols], 1).float().to(acc.device)
                mr = torch.stack([t[flat, 1] for t in margin_cols], 1).float().to(acc.device)
            loss_vec, _, _ = modpo_loss(
                pc[:, 0], pr[:, 0], rc[:, 0], rr[:, 0], mc, mr, weights=w_t, beta=cfg.beta
            )
        else:
            loss_vec, _, _ = joint_dpo_loss(pc, pr, rc, rr, weights=w_t, beta=cfg.beta)
        loss = loss_vec.mean()
        acc.backward(loss)
        if cfg.max_grad_norm is not None:
            acc.clip_grad_norm_(params, cfg.max_grad_norm)
        opt.step()
        sched.step()
        opt.zero_grad(set_to_none=True)
        losses.append(float(acc.reduce(loss.detach(), reduction="mean")))
        bar.set_postfix(loss=f"{losses[-1]:.4f}")
    return losses, total


def _release(acc: Any) -> None:
    """Drop the accelerator's references to this profile's model/optimizer (LoRA weights + Adam state).

    ``Accelerator.free_memory`` does the same plus a full ``gc.collect`` (~1 s per profile on a busy CPU).
    """
    for attr in ("_models", "_optimizers", "_schedulers", "_dataloaders"):
        getattr(acc, attr, []).clear()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


def _aligned_rows(frame: pd.DataFrame, crits: Sequence[str]) -> np.ndarray:
    """Rows (n_prompts, K): for each prompt id with pairs for every criterion, its first pair per criterion."""
    ids = frame["prompt_id"].astype(str) if "prompt_id" in frame.columns else frame["prompt"]
    firsts = [
        pd.Series(
            np.flatnonzero((frame["criterion"] == c).to_numpy()),
            index=ids[frame["criterion"] == c].to_numpy(),
        )
        for c in crits
    ]
    firsts = [s[~s.index.duplicated()] for s in firsts]
    common = [i for i in firsts[0].index if all(i in s.index for s in firsts[1:])]
    if not common:
        raise ValueError(
            f"Joint-loss DPO found no prompt with pairs for all of {list(crits)}. Fix: give pairs "
            "sharing a `prompt_id` across criteria."
        )
    return np.stack([s.loc[common].to_numpy() for s in firsts], axis=1)


def train_dpo_adapters(
    data: Any, *, criteria: Sequence[str] | None = None, prefix: str = "dpo_", **kwargs: Any
) -> TrainingRun:
    """Single-objective DPO baseline: one adapter per criterion (= MODPO with ``w = (1,)``).

    Parameters
    ----------
    data : preference pairs (see :func:`train_adapters`)
    criteria : sequence of str, optional
        Default: every criterion in ``data``.
    prefix : str, default "dpo_"
        Adapter names are ``prefix + criterion``.
    **kwargs
        Passed to :func:`train_adapters` (``output_dir``, ``model``, ``tokenizer``, ``config``, ...).
    """
    frame = as_pairs_frame(data)
    crits = list(dict.fromkeys(frame["criterion"])) if criteria is None else list(criteria)
    return train_adapters(
        {f"{prefix}{c}": {c: 1.0} for c in crits}, frame, main_objective=None, **kwargs
    )
