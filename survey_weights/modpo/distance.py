r"""How far each adapter moved from the base model, and step budgets that keep profiles at comparable distance.

MODPO's logit is :math:`(\beta\Delta - w_{-k}^\top\Delta r_{-k})/w_k`: a profile with main weight :math:`w_k` and
margin weights :math:`w_{-k}` trains the policy family of :math:`(1, w_{-k}/w_k)` at :math:`\beta/w_k`, so with one
learning rate and a short step budget profiles move different distances from the reference, and a comparison of two
adapters confounds their weights with how far each moved. Report the distance beside every comparison
(:func:`adapter_distances`) and keep the most- and least-moved adapter of one comparison within a factor 2
(:func:`balanced_step_budgets`, or the loop :func:`train_at_comparable_distance`; or, without training, by
scaling each outlier's update: :func:`scale_to_comparable_distance`).

Distances on held-out sequences (response tokens :math:`t`, teacher-forced):

* ``mean_abs_logratio`` :math:`= \mathrm{mean}_t\,|\log\pi(y_t|\cdot) - \log\pi_{ref}(y_t|\cdot)|`;
* ``kl`` :math:`= \mathrm{mean}_t\,\mathrm{KL}(\pi(\cdot|\cdot)\,\|\,\pi_{ref}(\cdot|\cdot))` over the vocabulary at each
  response position (nats per token);
* ``seq_abs_logratio`` :math:`= \mathrm{mean}_i\,|\log\pi(y_i|x_i) - \log\pi_{ref}(y_i|x_i)|` (summed per sequence).
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from .._util.progress import tqdm
from ..preferences.pairs import as_pairs_frame
from ..profiles.training_spec import normalize_profiles
from .config import MODPOConfig
from .logps import collate, encode_sequences
from .merge import load_adapters

__all__ = ["DISTANCE_COLUMNS", "adapter_distances", "distance_ratio", "balanced_step_budgets", "rebalance",
           "scale_adapter", "scale_to_comparable_distance", "train_at_comparable_distance"]

#: Columns of :func:`adapter_distances`.
DISTANCE_COLUMNS: tuple[str, ...] = ("mean_abs_logratio", "kl", "seq_abs_logratio", "n_tokens", "n_sequences")


def _sequences(data: Any) -> tuple[list[str], list[str]]:
    """(prompts, responses): a frame with ``prompt, response``, or pairs (chosen and rejected replies both)."""
    if isinstance(data, pd.DataFrame) and {"prompt", "response"} <= set(data.columns):
        return [str(p) for p in data["prompt"]], [str(r) for r in data["response"]]
    frame = as_pairs_frame(data)
    return list(frame["prompt"]) * 2, list(frame["chosen"]) + list(frame["rejected"])


@torch.no_grad()
def _token_stats(lp: torch.Tensor, ref: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Per sequence: summed |token log-ratio|, summed token KL and summed log-ratio, each shape (n,).

    ``lp``, ``ref``: log-softmax of the policy and the reference, shape (n, T-1, V); ``labels`` (n, T)."""
    tgt = labels[:, 1:]
    mask = (tgt != -100).float()
    safe = tgt.masked_fill(tgt == -100, 0).unsqueeze(-1)
    d = (torch.gather(lp, 2, safe) - torch.gather(ref, 2, safe)).squeeze(-1) * mask   # (n, T-1)
    kl = (lp.exp() * (lp - ref)).sum(-1) * mask                                      # (n, T-1)
    return d.abs().sum(-1), kl.sum(-1), d.sum(-1)


def adapter_distances(adapters: Mapping[str, str | os.PathLike[str]], data: Any, *, model: Any, tokenizer: Any,
                      batch_size: int = 4, max_length: int = 512, max_prompt_length: int = 256,
                      use_chat_template: bool = True, progress: bool = False) -> pd.DataFrame:
    r"""Each adapter's distance from the base model on held-out sequences (see the module docstring).

    Parameters
    ----------
    adapters : mapping name -> adapter directory
    data : DataFrame or JSONL path
        Held-out pairs (their chosen and rejected replies are scored), or a frame with ``prompt`` and ``response``.
    model, tokenizer
        The base causal LM (not a PeftModel); the adapters are loaded into it and removed before returning.
    batch_size, max_length, max_prompt_length, use_chat_template
        Tokenisation as in training.
    progress : bool, default False

    Returns
    -------
    DataFrame
        Index = adapter name; columns :data:`DISTANCE_COLUMNS` (``mean_abs_logratio`` and ``kl`` per response token,
        ``seq_abs_logratio`` per sequence, all in nats).
    """
    if not isinstance(adapters, Mapping) or not adapters:
        raise TypeError("`adapters` must be a non-empty mapping name -> adapter directory.")
    if hasattr(model, "peft_config"):
        raise TypeError("`model` must be the base model, not a PeftModel. Fix: pass `peft_model.unload()`.")
    prompts, responses = _sequences(data)
    enc = encode_sequences(tokenizer, prompts, responses, max_length=max_length, max_prompt_length=max_prompt_length,
                           use_chat_template=use_chat_template)
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    device = next(model.parameters()).device
    names = list(adapters)
    internal = {n: f"a{i}" for i, n in enumerate(names)}
    peft = load_adapters(model, {internal[n]: str(p) for n, p in adapters.items()})
    sums = {n: np.zeros(2) for n in names}
    seq_abs = {n: 0.0 for n in names}
    n_tok = 0
    was_training = peft.training
    peft.eval()
    try:
        for s in tqdm(range(0, len(enc), batch_size), desc="distances", disable=not progress, leave=False):
            ids, mask, labels = collate(enc, list(range(s, min(s + batch_size, len(enc)))), pad_id=pad, device=device)
            with peft.disable_adapter():
                ref = peft(input_ids=ids, attention_mask=mask, use_cache=False).logits[:, :-1].float().log_softmax(-1)
            n_tok += int((labels[:, 1:] != -100).sum())
            for n in names:
                peft.set_adapter(internal[n])
                lp = peft(input_ids=ids, attention_mask=mask, use_cache=False).logits[:, :-1].float().log_softmax(-1)
                a, k, d = _token_stats(lp, ref, labels)
                sums[n] += [float(a.sum()), float(k.sum())]
                seq_abs[n] += float(d.abs().sum())
    finally:
        peft.train(was_training)
        peft.unload()
    rows = [(sums[n][0] / n_tok, sums[n][1] / n_tok, seq_abs[n] / len(enc), n_tok, len(enc)) for n in names]
    out = pd.DataFrame(rows, index=pd.Index(names, name="adapter"), columns=list(DISTANCE_COLUMNS))
    return out.astype({"n_tokens": int, "n_sequences": int})


def distance_ratio(distances: pd.DataFrame | Mapping[str, float], column: str = "mean_abs_logratio") -> float:
    """Most- over least-moved adapter: ``max / min`` of `column` (inf when the least moved did not move).

    Examples
    --------
    >>> distance_ratio({"a": 0.125, "b": 0.5, "c": 0.25})
    4.0
    """
    v = _values(distances, column)
    lo = min(v.values())
    return math.inf if lo <= 0 else max(v.values()) / lo


def _values(distances: pd.DataFrame | Mapping[str, float], column: str) -> dict[str, float]:
    if isinstance(distances, pd.DataFrame):
        if column not in distances.columns:
            raise ValueError(f"`distances` has no column {column!r}; it has {list(distances.columns)}.")
        v = {str(k): float(x) for k, x in distances[column].items()}
    elif isinstance(distances, Mapping):
        v = {str(k): float(x) for k, x in distances.items()}
    else:
        raise TypeError(f"`distances` must be a DataFrame or a mapping name -> distance. Got {type(distances).__name__}.")
    if not v or any(not math.isfinite(x) or x < 0 for x in v.values()):
        raise ValueError(f"`distances` must be non-empty, finite and >= 0. Got {v}.")
    return v


def _growth(column: str, growth: float | None) -> float:
    """The exponent of distance ~ steps ** growth: given, or 2 for the KL and 1 for log-ratio distances."""
    if growth is None:
        return 2.0 if column == "kl" else 1.0
    if isinstance(growth, bool) or not isinstance(growth, (int, float)) or not (math.isfinite(growth) and growth > 0):
        raise ValueError(f"`growth` must be a number > 0 (distance ~ steps ** growth). Got {growth!r}. Fix: e.g. "
                         "growth=1 for log-ratio distances, 2 for the KL.")
    return float(growth)


def balanced_step_budgets(distances: pd.DataFrame | Mapping[str, float], steps: int | Mapping[str, int], *,
                          max_ratio: float = 2.0, column: str = "mean_abs_logratio", min_steps: int = 1,
                          max_steps: int | None = None, growth: float | None = None) -> dict[str, int]:
    r"""Step budgets that bring every adapter's distance into a band of ratio `max_ratio` around their geometric mean.

    Early in training the parameters move roughly in proportion to the steps taken, so log-ratio distances grow
    like the steps and the KL like their square: an adapter at distance :math:`d_p` after :math:`n_p` steps gets
    :math:`\mathrm{round}(n_p\,(\bar d / d_p)^{1/g})` steps, with :math:`\bar d` the geometric mean of the distances
    and :math:`g` the `growth` exponent; adapters already inside :math:`[\bar d/\sqrt{r}, \bar d\sqrt{r}]` keep their
    budget (``r`` = `max_ratio`), and when the whole set is within `max_ratio` nothing changes. Retrain the changed
    ones and measure again (:func:`train_at_comparable_distance` does both).

    Parameters
    ----------
    distances : DataFrame (:func:`adapter_distances`) or mapping name -> distance
    steps : int or mapping name -> int
        The budgets the distances were measured after.
    max_ratio : float > 1, default 2.0
    column : str, default "mean_abs_logratio"
    min_steps, max_steps : int
        Bounds of a new budget.
    growth : float > 0, optional
        How the distance grows with the steps (distance ~ steps ** growth). Default: 2 for ``"kl"``, else 1.

    Returns
    -------
    dict name -> int

    Examples
    --------
    >>> balanced_step_budgets({"a": 0.1, "b": 0.4}, 20)   # geometric mean 0.2: a doubles, b halves
    {'a': 40, 'b': 10}
    >>> balanced_step_budgets({"a": 0.1, "b": 0.15}, 20)  # ratio 1.5 <= 2: unchanged
    {'a': 20, 'b': 20}
    >>> balanced_step_budgets({"a": 0.01, "b": 0.16}, 20, column="kl")  # KL ~ steps**2: a x 2, b / 2
    {'a': 40, 'b': 10}
    """
    v = _values(distances, column)
    if isinstance(max_ratio, bool) or not isinstance(max_ratio, (int, float)) or not max_ratio > 1:
        raise ValueError(f"`max_ratio` must be a float > 1. Got {max_ratio!r}. Fix: e.g. max_ratio=2.0.")
    g = _growth(column, growth)
    budget = {n: steps for n in v} if isinstance(steps, int) and not isinstance(steps, bool) else dict(steps)
    bad = [n for n in v if not isinstance(budget.get(n), int) or isinstance(budget.get(n), bool) or budget[n] < 1]
    if bad:
        raise ValueError(f"`steps` must give an int >= 1 for every adapter; missing or invalid for {bad}.")
    if min(v.values()) <= 0:
        raise ValueError(f"An adapter did not move at all ({v}); a step budget cannot be scaled from distance 0. "
                         "Fix: raise its steps or learning rate and measure again.")
    if distance_ratio(v) <= max_ratio:
        return {n: budget[n] for n in v}
    target = math.exp(np.mean([math.log(x) for x in v.values()]))
    band = math.sqrt(max_ratio)
    out = {}
    for n, d in v.items():
        if target / band <= d <= target * band:
            out[n] = budget[n]
            continue
        new = max(min_steps, int(round(budget[n] * (target / d) ** (1.0 / g))))
        out[n] = new if max_steps is None else min(new, max_steps)
    return out


def rebalance(measure: Callable[[], pd.DataFrame], retrain: Callable[[dict[str, int], pd.DataFrame], None],
              budget: dict[str, int], *, max_ratio: float = 2.0, column: str = "mean_abs_logratio",
              max_steps: int | None = None, max_rounds: int = 2) -> tuple[pd.DataFrame, list[dict[str, Any]]]:
    """The retraining loop of :func:`train_at_comparable_distance` for any way of training: measure, and while the
    ratio is above `max_ratio` (at most `max_rounds` times) rescale the budgets (:func:`balanced_step_budgets`),
    retrain the changed adapters and measure again.

    Parameters
    ----------
    measure : callable () -> DataFrame
        The current adapters' distances (:func:`adapter_distances`).
    retrain : callable (changed, distances) -> None
        Retrain the adapters in ``changed`` (name -> new budget; ``distances``: what the budgets came from) so that
        the next ``measure()`` sees them.
    budget : dict name -> int
        The budgets the first measurement is taken after; updated in place to the final ones.
    max_ratio, column, max_steps
        See :func:`balanced_step_budgets`.
    max_rounds : int, default 2

    Returns
    -------
    distances : DataFrame
        The last measurement.
    rounds : list of dict
        Per retraining round: ``round`` (1, 2, ...), ``distances`` (the measurement its budgets came from) and
        ``max_steps`` (the changed adapters' new budgets).
    """
    dist = measure()
    rounds: list[dict[str, Any]] = []
    for rnd in range(1, max_rounds + 1):
        if distance_ratio(dist, column) <= max_ratio:
            break
        new = balanced_step_budgets(dist, budget, max_ratio=max_ratio, column=column, max_steps=max_steps)
        changed = {n: k for n, k in new.items() if k != budget[n]}
        if not changed:
            break
        rounds.append({"round": rnd, "distances": dist, "max_steps": changed})
        retrain(changed, dist)
        budget.update(changed)
        dist = measure()
    return dist, rounds


def train_at_comparable_distance(profiles: Any, data: Any, *, held_out: Any, output_dir: str | os.PathLike[str],
                                 model: Any, tokenizer: Any, config: MODPOConfig | None = None,
                                 max_ratio: float = 2.0, max_rounds: int = 2, column: str = "mean_abs_logratio",
                                 max_steps: int | None = None, method: str = "steps",
                                 **train_kwargs: Any) -> tuple[Any, pd.DataFrame]:
    """Train one adapter per profile, then bring the outliers into the band: retrain them with rescaled step
    budgets (``method="steps"``) or scale their updates (``method="scale"``), until the most- and least-moved
    adapter are within `max_ratio` on `held_out` (or `max_rounds` rounds are spent).

    The steps rule assumes that more steps move an adapter further; where the profile's gradients nearly cancel
    they may not (``docs/design.md``: in the experiment the sweep's middle came closer to the base with 4 x the
    steps). ``method="scale"`` needs no more training (:func:`scale_to_comparable_distance`).

    Parameters
    ----------
    profiles, data, output_dir, model, tokenizer, config, **train_kwargs
        As :func:`~survey_weights.modpo.train_adapters` (``config.max_steps`` is the first budget; it must be set).
        Retrained profiles always overwrite their first version and reuse the first call's reward models.
    held_out : DataFrame or path
        Held-out pairs the distances are measured on (never trained on).
    max_ratio, column
        See :func:`balanced_step_budgets`.
    max_rounds : int, default 2
        Retraining rounds at most.
    max_steps : int, optional
        Upper bound of a rescaled budget (default 4 x the first budget).
    method : {"steps", "scale"}, default "steps"
        ``"scale"``: the outliers' updates are scaled (:func:`scale_adapter`) into ``output_dir / "scaled"``; the
        trained adapters stay where they are.

    Returns
    -------
    run : TrainingRun
        The final adapters (retrained ones replace their first version in `output_dir`; scaled ones point to
        ``output_dir / "scaled"``).
    distances : DataFrame
        :func:`adapter_distances` of the final adapters plus ``max_steps`` (each adapter's budget) and ``round``
        (the round it was last retrained or scaled in; 0: never), and with ``method="scale"`` also ``scale`` and
        ``path``; ``distances.attrs["ratio"]`` is the final ratio.
    """
    from .train import TrainingRun, train_adapters

    cfg = config or MODPOConfig()
    if cfg.max_steps is None:
        raise ValueError("`config.max_steps` must be set: the step budget is what is rescaled. Fix: e.g. "
                         "MODPOConfig(max_steps=50).")
    if isinstance(max_rounds, bool) or not isinstance(max_rounds, int) or max_rounds < 0:
        raise ValueError(f"`max_rounds` must be an int >= 0. Got {max_rounds!r}.")
    if method not in ("steps", "scale"):
        raise ValueError(f"`method` must be 'steps' or 'scale'. Got {method!r}. Fix: method='scale' to scale the "
                         "outliers' updates instead of retraining them.")
    specs = normalize_profiles(profiles, main_objective=train_kwargs.pop("main_objective", None))
    cap = max_steps if max_steps is not None else 4 * cfg.max_steps
    overwrite = bool(train_kwargs.pop("overwrite", False))
    run = train_adapters(specs, data, output_dir=output_dir, model=model, tokenizer=tokenizer, config=cfg,
                         overwrite=overwrite, **train_kwargs)
    results = {a.name: a for a in run.adapters}
    budget = {s.name: cfg.max_steps for s in specs}
    last = {s.name: 0 for s in specs}
    dist_kw = dict(model=model, tokenizer=tokenizer, max_length=cfg.max_length,
                   max_prompt_length=cfg.max_prompt_length, use_chat_template=cfg.use_chat_template)
    if method == "scale":
        paths = {n: a.path for n, a in results.items()}
        if max_rounds == 0:
            dist = adapter_distances(paths, held_out, **dist_kw)
            dist["scale"], dist["path"] = 1.0, [str(paths[n]) for n in dist.index]
            rounds: list[dict[str, Any]] = []
        else:
            dist, rounds = scale_to_comparable_distance(paths, held_out, output_dir=run.output_dir / "scaled",
                                                        max_ratio=max_ratio, column=column, max_rounds=max_rounds,
                                                        **dist_kw)
        for r in rounds:
            last.update({n: r["round"] for n in r["scale"]})
        results = {n: (dataclasses.replace(a, path=Path(dist.at[n, "path"])) if dist.at[n, "scale"] != 1.0 else a)
                   for n, a in results.items()}
    else:
        if train_kwargs.get("reward_models") is None:  # retraining reuses the reward models the first call saved
            from .reward import RewardModel

            saved = run.output_dir / "reward_models"
            loaded = [RewardModel.load(p) for p in sorted(saved.iterdir()) if (p / "reward_config.json").is_file()] \
                if saved.is_dir() else []
            rms = {rm.criterion: rm for rm in loaded}
            if rms:
                train_kwargs["reward_models"] = rms
        by_name = {s.name: s for s in specs}

        def measure() -> pd.DataFrame:
            return adapter_distances({n: a.path for n, a in results.items()}, held_out, **dist_kw)

        def retrain(changed: Mapping[str, int], _dist: pd.DataFrame) -> None:
            for n, steps in changed.items():
                r = train_adapters([by_name[n]], data, output_dir=output_dir, model=model, tokenizer=tokenizer,
                                   config=dataclasses.replace(cfg, max_steps=steps), overwrite=True, **train_kwargs)
                results[n] = r.adapters[0]

        dist, rounds = rebalance(measure, retrain, budget, max_ratio=max_ratio, column=column, max_steps=cap,
                                 max_rounds=max_rounds)
        for r in rounds:
            last.update({n: r["round"] for n in r["max_steps"]})
    dist["max_steps"] = [budget[n] for n in dist.index]
    dist["round"] = [last[n] for n in dist.index]
    dist.attrs["ratio"] = distance_ratio(dist, column)
    final = TrainingRun(tuple(results[s.name] for s in specs), run.output_dir, run.precompute_seconds,
                        run.reward_accuracy)
    return final, dist


def scale_adapter(adapter: str | os.PathLike[str], dest: str | os.PathLike[str], scale: float) -> Path:
    r"""Write `adapter` to `dest` with its weight update scaled: :math:`\Delta W \to s\,\Delta W` on every layer.

    The saved LoRA keeps the source's ``adapter_config.json`` (rank, alpha, target modules: it still merges and
    A/B-averages with its siblings) with every ``lora_B`` multiplied by the scale, and ``profile.json`` is the
    source's plus ``distance_scale`` (the product with any earlier scale) and ``scaled_from``. Near the
    reference, where the adapter's log-ratio is linear in :math:`\Delta W`, this turns the policy
    :math:`\pi \propto \pi_{ref}\exp(r/\beta)` into :math:`\pi_{ref}\exp(s\,r/\beta)`: the same implicit reward at
    :math:`\beta/s` (the weight-space form of the realignment of Liu et al. 2024, "Decoding-time Realignment of
    Language Models"); the KL grows like :math:`s^2` there.

    Parameters
    ----------
    adapter : path
        A saved PEFT LoRA directory holding only LoRA factors (no DoRA: its magnitude vectors do not scale).
    dest : path
        The new directory (replaced atomically when it exists; must differ from `adapter`).
    scale : float > 0

    Returns
    -------
    Path
        `dest`.
    """
    from ._export import load_component, write_adapter
    from ._resume import PROFILE_FILE

    if isinstance(scale, bool) or not isinstance(scale, (int, float)) or not (math.isfinite(scale) and scale > 0):
        raise ValueError(f"`scale` must be a finite number > 0. Got {scale!r}. Fix: e.g. scale=1.5.")
    src, dest = Path(adapter), Path(dest)
    if not (src / "adapter_config.json").is_file():
        raise ValueError(f"`adapter` {str(src)!r} is not a saved PEFT adapter (no adapter_config.json). Fix: pass "
                         "an adapter directory written by train_adapters or export.")
    if src.resolve() == dest.resolve():
        raise ValueError(f"`dest` must differ from `adapter` ({str(src)!r}): the source is kept.")
    cfg, state = load_component(src)
    if getattr(cfg, "use_dora", False):
        raise ValueError(f"`adapter` {str(src)!r} is a DoRA adapter: scaling lora_B does not scale its update. "
                         "Fix: scale plain LoRA adapters only.")
    other = [k for k in state if not (k.endswith("lora_A.weight") or k.endswith("lora_B.weight"))]
    if other:
        raise ValueError(f"`adapter` {str(src)!r} holds tensors other than LoRA factors ({other[:3]}); only plain "
                         "LoRA adapters can be scaled.")
    out = {k: (v * float(scale) if k.endswith("lora_B.weight") else v) for k, v in state.items()}
    rec: dict[str, Any] = json.loads((src / PROFILE_FILE).read_text()) if (src / PROFILE_FILE).is_file() else {}
    rec["distance_scale"] = float(rec.get("distance_scale", 1.0)) * float(scale)
    rec["scaled_from"] = str(src)
    return write_adapter(dest, out, cfg, rec)


def scale_to_comparable_distance(adapters: Mapping[str, str | os.PathLike[str]], data: Any, *, model: Any,
                                 tokenizer: Any, output_dir: str | os.PathLike[str], max_ratio: float = 2.0,
                                 column: str = "kl", growth: float | None = None, max_rounds: int = 3,
                                 max_scale: float = 8.0, distances: pd.DataFrame | None = None,
                                 **distance_kwargs: Any) -> tuple[pd.DataFrame, list[dict[str, Any]]]:
    r"""Bring trained adapters within `max_ratio` of each other's distance from the base by scaling their updates.

    Each adapter outside the band :math:`[\bar d/\sqrt r, \bar d\sqrt r]` around the geometric mean
    :math:`\bar d` of the first distances is rewritten with its update scaled (:func:`scale_adapter`) by
    :math:`s = (\bar d / d)^{1/g}` (:math:`g` = `growth`: 2 for the KL, which grows like the square of a small
    update, else 1) and measured again; the scale is corrected the same way for at most `max_rounds` rounds.
    Scaling an adapter by :math:`s` is, near the reference, training it at :math:`\beta/s` (see
    :func:`scale_adapter`): the profiles keep their directions and are compared at one distance. It needs no
    training, so it also reaches adapters whose distance a larger step budget does not raise
    (:func:`balanced_step_budgets` assumes it does).

    Parameters
    ----------
    adapters : mapping name -> adapter directory
    data : DataFrame or JSONL path
        Held-out sequences or pairs (as :func:`adapter_distances`); never the evaluation data.
    model, tokenizer
        The base model and its tokenizer.
    output_dir : path
        Scaled adapters go to ``output_dir / profile_dirname(name)``; the originals are kept.
    max_ratio : float > 1, default 2.0
    column : str, default "kl"
    growth : float > 0, optional
        Distance ~ scale ** growth (default 2 for ``"kl"``, else 1).
    max_rounds : int >= 1, default 3
    max_scale : float > 1, default 8.0
        Scales are kept within ``[1 / max_scale, max_scale]``.
    distances : DataFrame, optional
        :func:`adapter_distances` of `adapters` already measured on `data` (skips the first measurement).
    **distance_kwargs
        Passed to :func:`adapter_distances` (``max_length``, ``max_prompt_length``, ``use_chat_template``, ...).

    Returns
    -------
    distances : DataFrame
        The final adapters' :func:`adapter_distances` plus ``scale`` (1 for an unscaled adapter) and ``path`` (the
        adapter directory to use); ``attrs["ratio"]`` the final ratio, ``attrs["ratio_first"]`` the first.
    rounds : list of dict
        Per round: ``round``, ``distances`` (name -> `column` before it) and ``scale`` (the rescaled adapters'
        new scales).

    """
    from ..profiles.training_spec import profile_dirname

    if not isinstance(adapters, Mapping) or not adapters:
        raise TypeError("`adapters` must be a non-empty mapping name -> adapter directory.")
    if isinstance(max_ratio, bool) or not isinstance(max_ratio, (int, float)) or not max_ratio > 1:
        raise ValueError(f"`max_ratio` must be a float > 1. Got {max_ratio!r}. Fix: e.g. max_ratio=2.0.")
    if isinstance(max_rounds, bool) or not isinstance(max_rounds, int) or max_rounds < 1:
        raise ValueError(f"`max_rounds` must be an int >= 1. Got {max_rounds!r}.")
    if isinstance(max_scale, bool) or not isinstance(max_scale, (int, float)) or not max_scale > 1:
        raise ValueError(f"`max_scale` must be a number > 1. Got {max_scale!r}. Fix: e.g. max_scale=8.")
    g = _growth(column, growth)
    paths = {str(n): Path(p) for n, p in adapters.items()}
    kw = dict(model=model, tokenizer=tokenizer, **distance_kwargs)
    dist = distances.copy() if distances is not None else adapter_distances(paths, data, **kw)
    if set(dist.index) != set(paths):
        raise ValueError(f"`distances` must hold exactly the adapters {sorted(paths)}; it holds {sorted(dist.index)}.")
    first = _values(dist, column)
    if min(first.values()) <= 0:
        raise ValueError(f"An adapter did not move at all ({first}); its update cannot be scaled to a distance. "
                         "Fix: train it longer or with a larger learning rate.")
    target = math.exp(np.mean([math.log(x) for x in first.values()]))
    band = math.sqrt(max_ratio)
    scale = {n: 1.0 for n in paths}
    cur = dict(first)
    rounds: list[dict[str, Any]] = []
    out_dir = Path(output_dir)
    for rnd in range(1, max_rounds + 1):
        if distance_ratio(cur) <= max_ratio:
            break
        changed = {n: min(max_scale, max(1.0 / max_scale, scale[n] * (target / d) ** (1.0 / g)))
                   for n, d in cur.items() if not target / band <= d <= target * band}
        changed = {n: s for n, s in changed.items() if not math.isclose(s, scale[n], rel_tol=1e-9)}
        if not changed:
            break
        rounds.append({"round": rnd, "distances": dict(cur), "scale": dict(changed)})
        for n, s in changed.items():
            paths[n] = scale_adapter(adapters[n], out_dir / profile_dirname(n), s)
            scale[n] = s
        new = adapter_distances({n: paths[n] for n in changed}, data, **kw)
        dist.loc[new.index, new.columns] = new
        cur.update(_values(new, column))
    dist["scale"] = [scale[n] for n in dist.index]
    dist["path"] = [str(paths[n]) for n in dist.index]
    dist.attrs["ratio"] = distance_ratio(cur)
    dist.attrs["ratio_first"] = distance_ratio(first)
    return dist, rounds
