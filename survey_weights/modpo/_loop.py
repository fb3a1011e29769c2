"""One profile's training: a fresh LoRA on the base model, the optimiser step loop, save, restore the base.

The loop runs unchanged under ``accelerate launch`` / ``torchrun``: each rank takes ``batch_size / world``
pairs of the global batch and ``accelerate`` averages the gradients.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import pandas as pd
import torch

from .._util.progress import tqdm
from ..profiles.training_spec import TrainingSpec
from ._precompute import Shared
from .config import MODPOConfig
from .logps import shared_prompt_logps
from .losses import joint_dpo_loss, modpo_loss

__all__ = ["train_profile"]


def train_profile(spec: TrainingSpec, shared: Shared, *, objective: str, acc: Any, model: Any, cfg: MODPOConfig,
                  save: Callable[[Any, list[float], int], None]) -> tuple[list[float], Any]:
    """Train one LoRA adapter on ``model`` and hand it to ``save(peft_model, losses, n_pairs)``.

    The LoRA weights are initialised from ``cfg.seed`` (every profile starts from the same A). Afterwards,
    or when anything fails, the LoRA is unloaded so the caller's base model is as it was.

    Returns
    -------
    losses : list of float, length = number of steps
        Mean loss per optimiser step (averaged over processes).
    model : the plain base model (LoRA unloaded), for the next profile.
    """
    from peft import LoraConfig, get_peft_model

    items = _rows(spec, shared.frame, objective)
    torch.manual_seed(cfg.seed)
    lora = LoraConfig(r=cfg.lora_r, lora_alpha=cfg.lora_alpha, lora_dropout=cfg.lora_dropout,
                      target_modules=list(cfg.target_modules), bias="none", task_type="CAUSAL_LM")
    peft_model = get_peft_model(model, lora)
    try:
        losses = _step_loop(acc, peft_model, cfg, shared, items, spec, objective)
        save(peft_model, losses, len(items))
    except BaseException:
        peft_model.unload()  # leave the caller's model as it was
        _release(acc)
        raise
    model = peft_model.unload()  # restore the plain base for the next profile
    _release(acc)
    return losses, model


def _step_loop(acc: Any, peft_model: Any, cfg: MODPOConfig, shared: Shared, items: np.ndarray, spec: TrainingSpec,
               objective: str) -> list[float]:
    """AdamW on the LoRA parameters over a seeded stream of ``items`` rows, shape (n_items, S); S = 1 (MODPO)
    or K (joint DPO: one pair per criterion of the same prompt)."""
    params = [q for q in peft_model.parameters() if q.requires_grad]
    opt = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    total = cfg.max_steps or max(1, math.ceil(cfg.epochs * len(items) / cfg.batch_size))
    sched = torch.optim.lr_scheduler.LambdaLR(opt, _lr_lambda(cfg, total))
    pmodel, opt = acc.prepare(peft_model, opt)
    pmodel.train()
    stream = _index_stream(len(items), total * cfg.batch_size, cfg.seed)
    lb = cfg.batch_size // acc.num_processes
    w_t = torch.tensor(spec.weight_vector, dtype=torch.float32, device=acc.device)  # (K,)
    losses: list[float] = []
    bar = tqdm(range(total), desc=f"MODPO {spec.name}", disable=not (cfg.progress and acc.is_main_process))
    for step in bar:
        g = stream[step * cfg.batch_size : (step + 1) * cfg.batch_size]
        local = items[g[acc.process_index * lb : (acc.process_index + 1) * lb]]  # (lb, S)
        loss = _batch_loss(pmodel, shared, local, spec, w_t, objective, cfg.beta, acc.device).mean()
        acc.backward(loss)
        if cfg.max_grad_norm is not None:
            acc.clip_grad_norm_(params, cfg.max_grad_norm)
        opt.step()
        sched.step()
        opt.zero_grad(set_to_none=True)
        losses.append(float(acc.reduce(loss.detach(), reduction="mean")))
        bar.set_postfix(loss=f"{losses[-1]:.4f}")
    return losses


def _batch_loss(pmodel: Any, shared: Shared, local: np.ndarray, spec: TrainingSpec, w_t: torch.Tensor,
                objective: str, beta: float, device: Any) -> torch.Tensor:
    """Per-pair losses, shape (lb,), of the pair rows ``local``, shape (lb, S).

    Policy log-probs come from ``pmodel`` (chosen and rejected in one batch, sharing one pass over their prompt:
    :func:`~.logps.shared_prompt_logps`), reference log-probs, margins,
    shape (lb, K-1), and the pairs' soft labels (MODPO only; joint DPO keeps hard labels) from ``shared``.
    """
    n, flat = shared.n, local.reshape(-1)
    logps = shared_prompt_logps(pmodel, shared.enc, list(flat) + list(flat + n), pad_id=shared.pad_id, device=device)
    k = len(flat)
    pc, pr = logps[:k].view(local.shape), logps[k:].view(local.shape)
    rc = shared.ref[flat].view(local.shape).to(device)
    rr = shared.ref[flat + n].view(local.shape).to(device)
    if objective != "modpo":
        return joint_dpo_loss(pc, pr, rc, rr, weights=w_t, beta=beta)[0]
    mc = mr = None
    cols = [shared.margins[c] for c in spec.criteria[1:]]
    if cols:
        mc = torch.stack([t[flat, 0] for t in cols], 1).float().to(device)
        mr = torch.stack([t[flat, 1] for t in cols], 1).float().to(device)
    label = None if shared.labels is None else shared.labels[flat].to(device)  # (lb,) P(chosen preferred)
    return modpo_loss(pc[:, 0], pr[:, 0], rc[:, 0], rr[:, 0], mc, mr, weights=w_t, beta=beta, label=label)[0]


def _lr_lambda(cfg: MODPOConfig, total: int) -> Callable[[int], float]:
    def f(step: int) -> float:
        if step < cfg.warmup_steps:
            return (step + 1) / cfg.warmup_steps
        if cfg.lr_scheduler == "constant":
            return 1.0
        frac = (step - cfg.warmup_steps) / max(1, total - cfg.warmup_steps)
        return max(0.0, 1.0 - frac) if cfg.lr_scheduler == "linear" else 0.5 * (1.0 + math.cos(math.pi * frac))

    return f


def _index_stream(n_items: int, n_needed: int, seed: int) -> np.ndarray:
    """Concatenated seeded permutations of range(n_items) (one per epoch), cut to ``n_needed``."""
    reps = -(-n_needed // n_items)
    return np.concatenate(
        [np.random.default_rng([seed, e]).permutation(n_items) for e in range(reps)]
    )[:n_needed]


def _release(acc: Any) -> None:
    """Drop the accelerator's references to this profile's model/optimizer (LoRA weights + Adam state).

    ``Accelerator.free_memory`` does the same plus a full ``gc.collect`` (~1 s per profile on a busy CPU).
    """
    for attr in ("_models", "_optimizers", "_schedulers", "_dataloaders"):
        getattr(acc, attr, []).clear()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


def _rows(spec: TrainingSpec, frame: pd.DataFrame, objective: str) -> np.ndarray:
    """Training rows of ``spec``, shape (n_items, S): the main objective's pairs (MODPO, S = 1) or aligned pairs
    of every criterion (joint DPO, S = K)."""
    if objective == "modpo":
        return np.flatnonzero((frame["criterion"] == spec.main_objective).to_numpy())[:, None]
    return _aligned_rows(frame, spec.criteria)


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
