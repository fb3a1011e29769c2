"""What every profile of one :func:`~survey_weights.modpo.train_adapters` call shares, computed once.

The base model and accelerator set-up, the margin reward models (trained when not given), the tokenised
pairs, the reference log-probs (the base with no adapter) and the reward-model margins ``r_c(x, y)`` - or, with
``MODPOConfig(margins="labels")``, the pairs' own labels on the other criteria as margins (no reward model).
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from ..profiles.training_spec import TrainingSpec, profile_dirname
from .config import MODPOConfig, RewardModelConfig
from .logps import Encoded, compute_logps_by_prompt, encode_sequences

__all__ = ["Shared", "precompute", "prepare_model"]


@dataclass(frozen=True)
class Shared:
    """Inputs shared by every profile's step loop.

    Attributes
    ----------
    frame : DataFrame, n rows
        The validated pairs (:func:`~survey_weights.preferences.pairs.as_pairs_frame`).
    enc : Encoded, 2n sequences
        Row ``i`` is pair ``i``'s prompt + chosen reply, row ``n + i`` its prompt + rejected reply.
    ref : Tensor, shape (2n,), float32
        Reference log-probs of ``enc`` (NaN for rows no profile trains on).
    margins : dict criterion -> Tensor, shape (n, 2), float64
        Reward ``r_c`` of the chosen (column 0) and rejected (column 1) reply (NaN where unused).
    reward_models : dict criterion -> reward model
        Given and trained margin reward models.
    pad_id : int
    labels : Tensor, shape (n,), float32, or None
        P(chosen preferred) per pair: the pair's soft ``label``, else ``1 - cfg.label_smoothing``; None when every
        pair is a hard label and ``label_smoothing == 0`` (the plain ``-log σ(z)`` loss).
    """

    frame: pd.DataFrame
    enc: Encoded
    ref: torch.Tensor
    margins: dict[str, torch.Tensor]
    reward_models: dict[str, Any]
    pad_id: int
    labels: torch.Tensor | None = None

    @property
    def n(self) -> int:
        """Number of pairs."""
        return len(self.frame)

    def reward_accuracy(self) -> dict[str, float | None]:
        """Held-out accuracy of each margin reward model (None when it does not report one)."""
        return {c: getattr(rm, "val_accuracy", None) for c, rm in self.reward_models.items()}


def prepare_model(model: Any, tokenizer: Any, base_model_id: str | None, accelerator: Any, batch_size: int
                  ) -> tuple[Any, Any, Any, str]:
    """``(accelerator, model, tokenizer, base_model_id)``: a loaded base model on the accelerator's device.

    Raises
    ------
    ValueError
        ``batch_size`` is not divisible by the number of processes.
    TypeError
        ``model`` is a PeftModel or not a causal LM, or no tokenizer came with a model object.
    """
    from accelerate import Accelerator
    from peft import PeftModel

    # On CPU, Accelerator only joins a torchrun/gloo group when told to use the CPU.
    acc = accelerator or Accelerator(cpu=not torch.cuda.is_available())
    if batch_size % acc.num_processes:
        raise ValueError(
            f"`batch_size` ({batch_size}) must be divisible by the number of processes "
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
    base_model_id = base_model_id or getattr(model.config, "name_or_path", "") or type(model).__name__
    if not getattr(model, "is_loaded_in_4bit", False):
        model.to(acc.device)
    return acc, model, tokenizer, base_model_id


def precompute(todo: Sequence[TrainingSpec], frame: pd.DataFrame, *, objective: str, acc: Any, model: Any,
               tokenizer: Any, cfg: MODPOConfig, rcfg: RewardModelConfig, given: Mapping[str, Any], out: Path,
               only_rows: Sequence[int] | None = None, margin_labels: pd.DataFrame | None = None) -> Shared:
    """Reward models, tokens, reference log-probs and margins for the profiles in ``todo`` (trained ones only).

    Reward models trained here are saved to ``out / "reward_models" / criterion`` (main process); they learn from
    every pair of ``frame``. ``only_rows`` (pair rows of ``frame``) limits the reference log-probs and margins to
    the pairs a run will train on (NaN elsewhere). ``margin_labels``: more labelled pairs the ``margins="labels"``
    margins are read from (besides ``frame``).
    """
    margin_crits = sorted({c for s in todo for c in s.criteria[1:]}) if objective == "modpo" else []
    on = {c: {s.main_objective for s in todo if c in s.criteria[1:]} for c in margin_crits}
    labelled = cfg.margins == "labels" and bool(margin_crits)
    if labelled:  # checked before any long work: a missing label fails now
        label_tabs = _label_margin_tables(frame, on, only_rows, cfg.label_smoothing, margin_labels)
    rms = {} if cfg.margins == "labels" else dict(given)
    missing = [c for c in margin_crits if c not in rms and not labelled]
    if missing:
        from .reward import train_reward_models

        trained = train_reward_models(frame, criteria=missing, config=rcfg)
        rms.update(trained)
        if acc.is_main_process:
            for c, rm in trained.items():
                rm.save(out / "reward_models" / profile_dirname(c))
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    n = len(frame)
    enc = encode_sequences(tokenizer, list(frame["prompt"]) * 2, list(frame["chosen"]) + list(frame["rejected"]),
                           max_length=cfg.max_length, max_prompt_length=cfg.max_prompt_length,
                           use_chat_template=cfg.use_chat_template)
    train_crits = {s.main_objective for s in todo} if objective == "modpo" else {c for s in todo for c in s.criteria}
    rows = _restrict(np.flatnonzero(frame["criterion"].isin(train_crits).to_numpy()), only_rows)
    seq_rows = np.concatenate([rows, rows + n]).tolist()
    ref = torch.full((2 * n,), float("nan"))
    ref[seq_rows] = _gather_logps(acc, model, enc, seq_rows, pad_id=pad_id, cfg=cfg, desc="reference log-probs")
    margins = label_tabs if labelled else {c: _margin_table(rms[c], frame, on[c], only_rows) for c in margin_crits}
    return Shared(frame, enc, ref, margins, rms, pad_id, training_labels(frame, cfg.label_smoothing))


def training_labels(frame: pd.DataFrame, label_smoothing: float) -> torch.Tensor | None:
    """P(chosen preferred) per pair, shape (n,), float32: ``label`` where given, else ``1 - label_smoothing``;
    None when no pair has a label and ``label_smoothing == 0``."""
    has = "label" in frame.columns and frame["label"].notna().any()
    if not has and label_smoothing == 0:
        return None
    lab = frame["label"].to_numpy(dtype=np.float64) if has else np.full(len(frame), np.nan)
    return torch.from_numpy(np.where(np.isnan(lab), 1.0 - float(label_smoothing), lab)).float()


def _restrict(rows: np.ndarray, only_rows: Sequence[int] | None) -> np.ndarray:
    return rows if only_rows is None else np.intersect1d(rows, np.asarray(only_rows, dtype=np.int64))


def _margin_table(rm: Any, frame: pd.DataFrame, on: set[str], only_rows: Sequence[int] | None = None
                  ) -> torch.Tensor:
    """Scores of ``rm`` for the chosen / rejected reply of every pair of a criterion in ``on`` (and in ``only_rows``
    when given), shape (n, 2)."""
    rows = _restrict(np.flatnonzero(frame["criterion"].isin(on).to_numpy()), only_rows)
    tab = torch.full((len(frame), 2), float("nan"), dtype=torch.float64)
    prompts = frame["prompt"].iloc[rows].tolist()
    tab[rows, 0] = torch.from_numpy(_rm_score(rm, prompts, frame["chosen"].iloc[rows].tolist()))
    tab[rows, 1] = torch.from_numpy(_rm_score(rm, prompts, frame["rejected"].iloc[rows].tolist()))
    return tab


def _label_margin_tables(frame: pd.DataFrame, on: Mapping[str, set[str]], only_rows: Sequence[int] | None,
                         label_smoothing: float, margin_labels: pd.DataFrame | None = None
                         ) -> dict[str, torch.Tensor]:
    """``margins="labels"``: for each margin criterion ``c``, shape (n, 2): column 0 the pair's own
    ``logit P(chosen ≻ rejected)`` on ``c`` (:func:`~survey_weights.preferences.pair_label_margins`), column 1 zero,
    on the rows of the criteria in ``on[c]`` (and ``only_rows``); NaN elsewhere.

    Raises
    ------
    ValueError
        A training pair's comparison has no pair of ``c``, or only a hard label with ``label_smoothing == 0``.
    """
    from ..preferences.design import pair_label_margins

    z = pair_label_margins(frame, list(on), label_smoothing=label_smoothing, labels_from=margin_labels)
    tabs = {}
    for c, mains in on.items():
        rows = _restrict(np.flatnonzero(frame["criterion"].isin(mains).to_numpy()), only_rows)
        vals = z[c].to_numpy(dtype=np.float64)[rows]
        bad = rows[~np.isfinite(vals)]
        if len(bad):
            ids = frame["pair_id"].iloc[bad] if "pair_id" in frame.columns else pd.Series(bad)
            shown = ", ".join(map(repr, ids.astype(str).tolist()[:5])) + (" ..." if len(bad) > 5 else "")
            hard = "label" not in frame.columns or frame["label"].iloc[bad].isna().any()
            raise ValueError(
                f"margins='labels' needs each training pair's label on {c!r} from the {c!r} pair of the same "
                f"comparison (same prompt and replies); {len(bad)} pair(s) have none"
                + (" or only a hard label with label_smoothing=0" if hard and label_smoothing == 0 else "")
                + f": pair_id {shown}. Fix: add the {c!r} pairs of those comparisons"
                + (", set label_smoothing > 0" if label_smoothing == 0 else "")
                + ", or use margins='reward_models'.")
        tab = torch.full((len(frame), 2), float("nan"), dtype=torch.float64)
        tab[rows, 0] = torch.from_numpy(vals)
        tab[rows, 1] = 0.0
        tabs[c] = tab
    return tabs


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


def _gather_logps(acc: Any, model: Any, enc: Encoded, rows: Sequence[int], *, pad_id: int, cfg: MODPOConfig,
                  desc: str) -> torch.Tensor:
    """Reference log-probs of ``rows`` of ``enc``, shape (len(rows),), sharded over processes and gathered
    (float32, CPU). ``rows`` lists pair rows and then their partners (``[rows, rows + n]``); a pair stays on one
    process so its chosen and rejected reply share one pass over their prompt
    (:func:`~.logps.compute_logps_by_prompt`)."""
    world, rank = acc.num_processes, acc.process_index
    rows = list(rows)
    mine_pos = _rank_positions(len(rows), rank, world)
    mine = [rows[i] for i in mine_pos]
    vals = compute_logps_by_prompt(model, enc, mine, pad_id=pad_id, batch_size=cfg.precompute_batch_size,
                                   device=acc.device, progress=cfg.progress and acc.is_local_main_process, desc=desc)
    if world == 1:
        return vals[torch.argsort(torch.tensor(mine_pos))]
    m = 2 * (-(-(len(rows) // 2) // world)) + 1
    padded = torch.zeros(m, dtype=torch.float32)
    padded[: len(vals)] = vals
    gathered = acc.gather(padded.to(acc.device)).cpu().view(world, m)
    out = torch.empty(len(rows), dtype=torch.float32)
    for r in range(world):
        pos = _rank_positions(len(rows), r, world)
        out[pos] = gathered[r, : len(pos)]
    return out


def _rank_positions(n_rows: int, rank: int, world: int) -> list[int]:
    """Positions in ``[rows, rows + n]`` (length ``n_rows``) that process ``rank`` of ``world`` scores: every
    ``world``-th pair, its chosen and its rejected row together (an odd last row goes to rank 0)."""
    half = n_rows // 2
    pairs = list(range(half))[rank::world]
    return pairs + [half + i for i in pairs] + ([n_rows - 1] if n_rows % 2 and rank == 0 else [])
