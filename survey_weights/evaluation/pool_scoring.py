"""Log-probabilities of fixed replies under the base model, adapters and merges: the pool evaluation and held-out
implicit-reward accuracy. Like :mod:`.generation`, this module touches the MODPO engine (torch) only inside its
functions, so ``import survey_weights.evaluation`` stays torch-free.

Every adapter is loaded into **one** PeftModel over a single copy of the base (:func:`survey_weights.modpo.
load_adapters`); merges are built there (:func:`survey_weights.modpo.merge_adapters`); the base is scored with its
adapters disabled. Sequences are tokenised by the training path (:func:`survey_weights.modpo.logps.
encode_sequences`), so a reply's log-probability is the one the loss saw.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .generation import ModelSpec, _check_specs
from .pool import CandidatePool, implicit_accuracy
from .pool_result import PoolEvaluation

__all__ = ["as_model_specs", "sequence_logps", "evaluate_pool", "implicit_reward_accuracy"]


def as_model_specs(models: Any, *, base: str = "base") -> list[ModelSpec]:
    """Normalise `models` to ModelSpecs with one base model.

    Parameters
    ----------
    models : sequence of ModelSpec, or mapping name -> adapter directory (or ModelSpec)
        With a mapping, adapters become kind ``"modpo"`` (``"dpo"`` when their ``profile.json`` has one weight),
        their ``weights`` are read from ``profile.json`` when present, and a base model named `base` is added.
    base : str, default "base"
    """
    if isinstance(models, Mapping):
        specs = []
        for name, v in models.items():
            if isinstance(v, ModelSpec):
                specs.append(v)
                continue
            if not isinstance(v, (str, os.PathLike)):
                raise TypeError(f"`models[{name!r}]` must be an adapter directory or a ModelSpec. Got {type(v).__name__}.")
            meta = _profile_json(Path(v))
            w = meta.get("weights")
            kind = "dpo" if isinstance(w, dict) and sum(1 for x in w.values() if x > 0) == 1 else "modpo"
            specs.append(ModelSpec(str(name), kind, weights=w if isinstance(w, dict) else None, adapter=v))
        if not any(s.kind == "base" for s in specs):
            specs.insert(0, ModelSpec(base, "base"))
        return specs
    if isinstance(models, (str, bytes)) or not isinstance(models, Sequence):
        raise TypeError("`models` must be a list of ModelSpec or a mapping name -> adapter directory. "
                        f"Got {type(models).__name__}.")
    return list(models)


def _profile_json(path: Path) -> dict[str, Any]:
    f = path / "profile.json"
    try:
        return json.loads(f.read_text(encoding="utf-8")) if f.is_file() else {}
    except (OSError, ValueError):
        return {}


def sequence_logps(specs: Sequence[ModelSpec], prompts: Sequence[str], responses: Sequence[str], *, model: Any,
                   tokenizer: Any, batch_size: int = 16, max_length: int = 1024, max_prompt_length: int = 256,
                   use_chat_template: bool = True, progress: bool = False, prompts_per_pass: int = 40
                   ) -> tuple[dict[str, np.ndarray], np.ndarray]:
    r"""Summed response log-probabilities :math:`\log\pi(y_i|x_i) = \sum_t \log\pi(y_{i,t}|x_i, y_{i,<t})` of the
    same sequences under every model.

    Parameters
    ----------
    specs : sequence of ModelSpec
        One of kind "base"; adapters and merges as in :func:`~.generation.generate_replies`.
    prompts, responses : sequence of str, length n
    model, tokenizer
        The base causal LM (not a PeftModel); adapters are loaded into it and removed again before returning.
    batch_size, max_length, max_prompt_length, use_chat_template
        Tokenisation as in training (:func:`survey_weights.modpo.logps.encode_sequences`); replies longer than
        ``max_length - prompt tokens`` are cut. ``batch_size``: replies scored per forward pass.
    progress : bool, default False
    prompts_per_pass : int, default 40
        Distinct prompts run through the model together before their replies are scored
        (:func:`survey_weights.modpo.logps.compute_logps_by_prompt`). The defaults (40 prompts, chunks of 16
        replies) scored the bundled pool about 10% faster on 2 CPU cores than 8 and 8 (``docs/design.md``, "Pool
        chunking"); the log-probabilities agree to float rounding (1e-6 relative). Raise both on a GPU.

    Returns
    -------
    logps : dict name -> ndarray, shape (n,), float64
    lengths : ndarray, shape (n,), int
        Response tokens scored per sequence (EOS included when it fits).

    Notes
    -----
    Each distinct prompt is run once per model and its key/value cache shared by the replies to it
    (:func:`survey_weights.modpo.logps.compute_logps_by_prompt`; equal to the plain pass up to float rounding).
    """
    from ..modpo import load_adapters, merge_adapters
    from ..modpo.logps import compute_logps_by_prompt as compute_logps
    from ..modpo.logps import encode_sequences

    if len(prompts) != len(responses) or not len(prompts):
        raise ValueError(f"`prompts` ({len(prompts)}) and `responses` ({len(responses)}) must be non-empty and of "
                         "equal length.")
    if hasattr(model, "peft_config"):
        raise TypeError("`model` must be the base model, not a PeftModel. Fix: pass `peft_model.unload()`.")
    _check_specs(specs)
    enc = encode_sequences(tokenizer, list(prompts), list(responses), max_length=max_length,
                           max_prompt_length=max_prompt_length, use_chat_template=use_chat_template)
    lengths = enc.response_lengths()
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    device = next(model.parameters()).device
    kw = dict(pad_id=pad, batch_size=batch_size, device=device, progress=progress, prompts_per_pass=prompts_per_pass)
    needed = [s for s in specs if s.adapter is not None]
    internal = {s.name: f"a{i}" for i, s in enumerate(needed)}
    peft_model = load_adapters(model, {internal[s.name]: str(s.adapter) for s in needed}) if needed else None
    out: dict[str, np.ndarray] = {}
    try:
        for j, s in enumerate(specs):
            if s.kind == "base":
                if peft_model is None:
                    lp = compute_logps(model, enc, desc=s.name, **kw)
                else:
                    with peft_model.disable_adapter():
                        lp = compute_logps(peft_model, enc, desc=s.name, **kw)
            elif s.kind == "merge":
                name = f"m{j}"
                merge_adapters(peft_model, [internal[m] for m in s.merge_of], list(s.merge_weights), name=name,
                               method=s.merge_method)
                lp = compute_logps(peft_model, enc, desc=s.name, **kw)
                peft_model.set_adapter(internal[needed[0].name])
                peft_model.delete_adapter(name)
            else:
                peft_model.set_adapter(internal[s.name])
                lp = compute_logps(peft_model, enc, desc=s.name, **kw)
            out[s.name] = lp.double().numpy()
    finally:
        if peft_model is not None:
            peft_model.unload()
    return out, lengths


def evaluate_pool(models: Any, pool: CandidatePool, *, model: Any, tokenizer: Any, base: str = "base",
                  normalise: str = "sum", beta: float | None = None, reward_scale: float = 1.0, n_boot: int = 2000,
                  seed: int = 0, level: float = 0.95, batch_size: int = 16, max_length: int = 1024,
                  max_prompt_length: int = 256, use_chat_template: bool = True, progress: bool = False,
                  prompts_per_pass: int = 40) -> PoolEvaluation:
    r"""Score every candidate of `pool` under every model: the deterministic, paired pool evaluation.

    For each prompt the model's distribution over its K candidates is :math:`q(k|x) = \mathrm{softmax}_k
    \log\pi(y_k|x)` (``normalise="sum"``) or the per-token variant (``"mean"``); its expected rubric score per
    criterion is averaged over prompts with paired bootstrap intervals (seeded). See
    :class:`~survey_weights.evaluation.pool_result.PoolEvaluation` for the oracle and MOD fronts, Page's trend
    test, the crossover test, hypervolumes and the plot.

    Parameters
    ----------
    models : sequence of ModelSpec, or mapping name -> adapter directory
        See :func:`as_model_specs` (a base model is added to a mapping).
    pool : CandidatePool
        E.g. ``load_preference_data().candidate_pool()`` (the bundled held-out prompts x 5 candidates) or
        :func:`~survey_weights.evaluation.counsel_chat.counsel_chat_pool`.
    model, tokenizer
        The base causal LM and its tokenizer.
    base : str, default "base"
        Name of the base model among `models`.
    normalise : {"sum", "mean"}, default "sum"
    beta : float, optional
        β of the oracle; default the adapters' training β from their ``profile.json`` (else 0.1).
    reward_scale : float, default 1.0
        Reward units per rubric point in the oracle.
    n_boot, seed, level
        Paired bootstrap over prompts.
    batch_size, max_length, max_prompt_length, use_chat_template, progress, prompts_per_pass
        See :func:`sequence_logps`.

    Returns
    -------
    PoolEvaluation
    """
    if not isinstance(pool, CandidatePool):
        raise TypeError(f"`pool` must be a CandidatePool. Got {type(pool).__name__}. Fix: CandidatePool.from_frame(df).")
    specs = as_model_specs(models, base=base)
    bases = [s.name for s in specs if s.kind == "base"]
    if base not in bases:
        raise ValueError(f"`base` {base!r} is not a model of kind 'base' (found {bases}).")
    mask = pool.mask
    idx = np.argwhere(mask)
    prompts = [pool.prompts[i] for i, _ in idx]
    texts = [pool.texts[i][j] for i, j in idx]
    flat, ln = sequence_logps(specs, prompts, texts, model=model, tokenizer=tokenizer, batch_size=batch_size,
                              max_length=max_length, max_prompt_length=max_prompt_length,
                              use_chat_template=use_chat_template, progress=progress,
                              prompts_per_pass=prompts_per_pass)
    shape = mask.shape
    logps = {}
    for name, v in flat.items():
        a = np.full(shape, np.nan)
        a[mask] = v
        logps[name] = a
    lengths = np.ones(shape)
    lengths[mask] = ln
    if beta is None:
        betas = {_profile_json(Path(s.adapter)).get("beta") for s in specs if s.adapter is not None} - {None}
        beta = float(betas.pop()) if len(betas) == 1 else 0.1
    full = np.array([len(t) + 1 for t in tokenizer(texts, add_special_tokens=False)["input_ids"]])
    settings = {"max_length": int(max_length), "max_prompt_length": int(max_prompt_length),
                "use_chat_template": bool(use_chat_template), "n_truncated": int(np.sum(ln < full))}
    return PoolEvaluation(pool, logps, lengths, tuple(s.info() for s in specs), base, normalise=normalise,
                          beta=float(beta), reward_scale=float(reward_scale), n_boot=int(n_boot), seed=int(seed),
                          level=float(level), settings=settings)


def implicit_reward_accuracy(models: Any, pairs: Any, *, model: Any, tokenizer: Any, base: str = "base",
                             criteria: Sequence[str] | None = None, batch_size: int = 16, max_length: int = 512,
                             max_prompt_length: int = 256, use_chat_template: bool = True,
                             progress: bool = False, prompts_per_pass: int = 40) -> pd.DataFrame:
    r"""Held-out implicit-reward accuracy of every model, per criterion.

    The implicit reward margin of a pair is :math:`m = [\log\pi(y_w|x) - \log\pi_{ref}(y_w|x)] -
    [\log\pi(y_l|x) - \log\pi_{ref}(y_l|x)]` with the base model as :math:`\pi_{ref}`; ``accuracy`` is the share
    of pairs with m > 0 (ties 1/2, so the base scores 0.5), ``soft_accuracy`` weighs by the pairs' soft labels
    (:func:`~survey_weights.evaluation.pool.implicit_accuracy`). Useful to compare profiles with each other, not as
    an absolute quality: preference-tuned models often rank held-out pairs below 60 % (Chen et al. 2024).

    Parameters
    ----------
    models : sequence of ModelSpec, or mapping name -> adapter directory
    pairs : DataFrame, mapping or JSONL path
        Held-out preference pairs (:func:`survey_weights.preferences.pairs.as_pairs_frame`); never trained on.
    model, tokenizer
        The base causal LM and its tokenizer.
    base : str, default "base"
    criteria : sequence of str, optional
        Default: every criterion in `pairs`.
    batch_size, max_length, max_prompt_length, use_chat_template, progress, prompts_per_pass
        See :func:`sequence_logps`.

    Returns
    -------
    DataFrame
        ``model, kind, criterion, accuracy, soft_accuracy, mean_margin, n_pairs``.
    """
    from ..preferences.pairs import as_pairs_frame

    frame = as_pairs_frame(pairs)
    crits = list(dict.fromkeys(frame["criterion"])) if criteria is None else list(criteria)
    missing = [c for c in crits if c not in set(frame["criterion"])]
    if missing:
        raise ValueError(f"`pairs` has no pairs for criteria {missing} (present: {sorted(set(frame['criterion']))}).")
    frame = frame[frame["criterion"].isin(crits)].reset_index(drop=True)
    specs = as_model_specs(models, base=base)
    if base not in [s.name for s in specs if s.kind == "base"]:
        raise ValueError(f"`base` {base!r} is not a model of kind 'base'.")
    n = len(frame)
    lp, _ = sequence_logps(specs, list(frame["prompt"]) * 2, list(frame["chosen"]) + list(frame["rejected"]),
                           model=model, tokenizer=tokenizer, batch_size=batch_size, max_length=max_length,
                           max_prompt_length=max_prompt_length, use_chat_template=use_chat_template, progress=progress,
                           prompts_per_pass=prompts_per_pass)
    ref = lp[base]
    labels = frame["label"].to_numpy(dtype=float) if "label" in frame.columns else None
    rows = []
    for s in specs:
        d = lp[s.name] - ref
        m = d[:n] - d[n:]
        for c in crits:
            sel = (frame["criterion"] == c).to_numpy()
            r = implicit_accuracy(m[sel], None if labels is None else labels[sel])
            rows.append({"model": s.name, "kind": s.kind, "criterion": c, **r})
    return pd.DataFrame(rows, columns=["model", "kind", "criterion", "accuracy", "soft_accuracy", "mean_margin",
                                       "n_pairs"])
