"""One training run for every weight profile: a preference-conditioned LoRA that exports an ordinary PEFT adapter
for any weight vector (:func:`train_conditioned`, :class:`ConditionedAdapter`).

The weight update is affine in the weight vector, ``ΔW(w) = ΔW_0 + Σ_c w_c ΔW_c`` (one shared LoRA plus one LoRA
per criterion, mixed per batch with PEFT's ``set_scale``; :mod:`._conditioned_loop`), trained with the MODPO loss
at weights drawn each step, so one run learns the whole front. For a fixed ``w`` the update is one plain LoRA of
rank ``r·(1 + C)`` (:mod:`._export`): :meth:`ConditionedAdapter.export` writes it in milliseconds, for profiles
seen in training and for any other weight vector. Panacea (Zhong et al. 2024, arXiv:2402.02030) conditions an
SVD-LoRA the same way; the loss here is MODPO's (Zhou et al. 2023), whose optimum at every ``w`` is the
weighted-reward policy.

Run directory (``output_dir``): ``conditioned.json`` (the manifest, written last: it marks the run finished),
``components/<adapter>/`` (one PEFT LoRA per component), ``reward_models/`` (margin reward models trained here),
while training, ``.checkpoint/``, and after :meth:`ConditionedAdapter.calibrate` ``calibration.json`` (calibrated
mixing, :mod:`.calibration`: every export's scales fitted on a scored candidate pool the run did not train on).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import os
import shutil
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .._util.io import atomic_write_text
from ..exceptions import SettingsChangedError
from ..preferences.pairs import as_pairs_frame, data_hash
from ..profiles.training_spec import TrainingSpec, normalize_profiles, profile_dirname
from ._conditioned_loop import (
    Checkpoint,
    LoopState,
    adapter_names,
    criterion_rows,
    lora_layers,
    main_index,
    save_components,
    set_scales,
    train_structure,
    used_rows,
)
from ._export import load_component, stack_components, write_adapter
from ._precompute import precompute, prepare_model
from ._resume import _finish_dir, _versions, adapter_record, prepare_output_dir, reward_sources, rm_fingerprint
from ._sampling import ProfileSampler, check_draw, sampler_fingerprint
from .calibration import CALIBRATION, MixingCalibration, fit_mixing, pool_fingerprint
from .config import MODPOConfig, RewardModelConfig
from .logps import check_pair_tokens
from .train import _check_configs, _margin_label_frame, combined_hash, resolve_margins

__all__ = ["MANIFEST", "ConditionedAdapter", "ProfileSampler", "train_conditioned"]

MANIFEST = "conditioned.json"
SCHEMA_VERSION = 1
_KEYED = ("criteria", "sampler", "objective", "data_hash", "reward_sources", "base_model")


def train_conditioned(
    pairs: Any,
    *,
    criteria: Sequence[str],
    output_dir: str | os.PathLike[str],
    weight_sampler: Any = None,
    profiles: Any = None,
    config: MODPOConfig | None = None,
    model: Any = "smollm2-135m-instruct",
    tokenizer: Any = None,
    reward_models: Mapping[str, Any] | None = None,
    reward_config: RewardModelConfig | None = None,
    overwrite: bool = False,
    base_model_id: str | None = None,
    accelerator: Any = None,
    checkpoint_every: int | None = None,
    centre: Any = None,
    margin_labels: Any = None,
) -> ConditionedAdapter:
    """Train one preference-conditioned LoRA for every weight vector over ``criteria``; save it to ``output_dir``.

    Each step draws weight vectors ``w`` (rows of shape (C,) on the simplex) from ``weight_sampler`` and applies the
    MODPO loss at each: row ``w`` trains on pairs of its largest-weight criterion ``k`` with the other positive
    weights as margins (:func:`~survey_weights.modpo.modpo_loss` with ``(w_k, w_-k)``; from reward models, or
    from the pairs' own labels with ``config.margins="labels"``), the model
    mixed as ``ΔW_0 + Σ_c w_c ΔW_c``. Reference log-probs and margins are computed once, as in
    :func:`~survey_weights.modpo.train_adapters`.

    Parameters
    ----------
    pairs : DataFrame, mapping criterion -> DataFrame, or JSONL path
        Preference pairs (``prompt, chosen, rejected, criterion``); every criterion of ``criteria`` needs pairs
        (rows of other criteria are ignored).
    criteria : sequence of str
        The weight vector's criteria, in its order (C >= 1).
    output_dir : path
        The run directory (see the module docstring).
    weight_sampler : callable ``(rng, criteria) -> array (m, C)``, optional
        Called with ``numpy.random.default_rng([config.seed, step])`` for each step (its draws must depend on that
        rng alone: they are planned ahead, so that reference log-probs and margins are computed only for the pairs
        the run trains on); each row is a weight vector on the simplex (>= 0, summing to 1), ``m`` divides the
        per-process batch. Give it a ``fingerprint()`` method so that resume notices a change. Default:
        ``ProfileSampler(profiles)`` (the profiles with Dirichlet jitter around them, and the simplex corners).
    profiles : weight profiles in any form of :func:`~survey_weights.profiles.training_spec.normalize_profiles`,
        optional. Centres of the default sampler (ignored when ``weight_sampler`` is given).
    config : MODPOConfig, optional
        ``max_steps`` is the run's number of steps (or ``epochs`` passes over all its pairs).
    model, tokenizer, reward_models, reward_config, base_model_id, accelerator
        As for :func:`~survey_weights.modpo.train_adapters`; margin criteria without a reward model get one
        trained on ``pairs`` (with C >= 2 every criterion is a margin for some draw).
    overwrite : bool, default False
        Retrain a finished run. Otherwise a finished run with the same settings is returned as it is (resume), one
        with other settings raises, and an unfinished one continues from its last checkpoint.
    checkpoint_every : int, optional
        Steps between checkpoints (default: a tenth of the run, at least 10 steps). Where checkpoints fall does not
        change the result: a resumed run ends with the weights of an uninterrupted one.
    centre : None, "draws", mapping criterion -> float or sequence of C floats, default None
        The weight vector ``c`` the per-criterion LoRAs are mixed around: ``ΔW(w) = ΔW_0 + Σ_c (w_c - c_c) ΔW_c``
        (still affine in ``w``, still one plain LoRA per export). None: ``c = 0``, the plain affine mix.
        ``"draws"``: the mean of every weight vector the run will draw. Why centre: with ``c = 0`` every
        criterion's LoRA receives ``w_c`` times the same gradient, so with Adam all of them learn mostly the
        direction common to every draw, and profiles far apart export nearly the same adapter; centred on the mean
        draw, ``ΔW_0`` learns the common direction and ``ΔW_c`` only how the objective changes with ``w_c``
        (the covariance of ``w_c`` with the gradient). The centre is part of the run's settings (resume key) and
        of its manifest (:attr:`ConditionedAdapter.centre`). Measured on the bundled data (the main job's 12
        profiles, 24 steps x 8 pairs, 40-prompt pool; ``docs/design.md``): centred, the latent-class exports are
        more distinct (class 2 vs 3 crossover gains +0.030 and +0.039 against +0.036 and +0.010) but their
        distances from the base spread (KL ratio 2.5 against 1.2), and with 96 steps x 2 pairs centring did worse
        - hence not the default.
    margin_labels : DataFrame, mapping or JSONL path, optional
        As for :func:`~survey_weights.modpo.train_adapters` (``config.margins="labels"`` only): more labelled pairs
        the margins are read from; part of the data hash.

    Returns
    -------
    ConditionedAdapter

    Raises
    ------
    ValueError
        Bad ``criteria``, criteria without pairs, a sampler whose rows are not on the simplex or have the wrong
        shape, ``batch_size`` not divisible by the number of processes.
    TypeError
        A non-callable sampler, or the ``model`` / ``tokenizer`` errors of ``train_adapters``.
    SettingsChangedError
        ``output_dir`` holds a finished run with other settings or data (without ``overwrite``).
    """
    cfg, rcfg = _check_configs(config, reward_config, "modpo")
    crits = _check_criteria(criteria)
    sampler = ProfileSampler(profiles) if weight_sampler is None else weight_sampler
    if not callable(sampler):
        raise TypeError(f"`weight_sampler` must be callable (rng, criteria) -> array (m, {len(crits)}). Got "
                        f"{type(sampler).__name__}. Fix: pass a function, a ProfileSampler, or None.")
    if checkpoint_every is not None and (isinstance(checkpoint_every, bool) or not isinstance(checkpoint_every, int)
                                         or checkpoint_every < 1):
        raise ValueError(f"`checkpoint_every` must be an int >= 1 or None. Got {checkpoint_every!r}. Fix: e.g. "
                         "checkpoint_every=25, or None for a tenth of the run.")
    frame = _frame(pairs, crits)
    labels_frame = _margin_label_frame(margin_labels, cfg)
    cfg = resolve_margins(cfg, frame, labels_frame, {c: rm for c, rm in (reward_models or {}).items() if c in crits})
    given = ({c: rm for c, rm in (reward_models or {}).items() if c in crits}
             if len(crits) > 1 and cfg.margins == "reward_models" else {})
    acc, model, tokenizer, base_model_id = prepare_model(model, tokenizer, base_model_id, accelerator, cfg.batch_size)
    draw = partial(_draw, sampler, crits, cfg.seed, cfg.batch_size // acc.num_processes)
    draw(0)  # a broken sampler fails before anything is computed
    total = cfg.max_steps or max(1, math.ceil(cfg.epochs * len(frame) / cfg.batch_size))
    centre_w = _centre(centre, crits, draw, total)
    check_pair_tokens(tokenizer, frame, max_length=cfg.max_length, max_prompt_length=cfg.max_prompt_length)
    out = prepare_output_dir(output_dir, acc)
    d_hash = data_hash(frame) if labels_frame is None else combined_hash(frame, labels_frame)
    record = _run_record(crits, sampler, cfg, rcfg, d_hash, given, base_model_id, centre_w)
    if _finished(out, record, overwrite=overwrite, acc=acc):
        return ConditionedAdapter.load(out)
    covering = [TrainingSpec(f"main:{c}", tuple((x, 1.0 / len(crits)) for x in crits), c) for c in crits]
    t0 = time.perf_counter()
    plan = used_rows(draw, criterion_rows(frame, crits), total=total, batch_size=cfg.batch_size, seed=cfg.seed)
    shared = precompute(covering, frame, objective="modpo", acc=acc, model=model, tokenizer=tokenizer, cfg=cfg,
                        rcfg=rcfg, given=given, out=out, only_rows=plan, margin_labels=labels_frame)
    precompute_s = time.perf_counter() - t0
    ckpt = Checkpoint(out, record["resume_key"], checkpoint_every or max(10, total // 10), acc)
    save = partial(_save_run, record=record, reward_models=shared.reward_models, n_pairs=len(frame), out=out, acc=acc,
                   cfg=cfg)
    t1 = time.perf_counter()
    _, model = train_structure(shared, criteria=crits, draw=draw, acc=acc, model=model, cfg=cfg, total=total,
                               checkpoint=ckpt, save=save, centre=centre_w)
    ckpt.clear()
    return dataclasses.replace(ConditionedAdapter.load(out), skipped=False, precompute_seconds=precompute_s,
                               train_seconds=time.perf_counter() - t1, reward_accuracy=shared.reward_accuracy())


def _check_criteria(criteria: Any) -> tuple[str, ...]:
    if isinstance(criteria, str) or not isinstance(criteria, Sequence) or not criteria:
        raise TypeError(f"`criteria` must be a non-empty list of criterion names, e.g. ['empathy', 'safety']. "
                        f"Got {criteria!r}.")
    crits = tuple(criteria)
    if not all(isinstance(c, str) and c for c in crits) or len(set(crits)) != len(crits):
        raise ValueError(f"`criteria` must be distinct non-empty strings. Got {list(crits)!r}. Fix: name each "
                         "criterion once, e.g. ['empathy', 'safety'].")
    return crits


def _frame(pairs: Any, crits: tuple[str, ...]) -> Any:
    frame = as_pairs_frame(pairs)
    missing = [c for c in crits if not (frame["criterion"] == c).any()]
    if missing:
        raise ValueError(f"Criteria {missing} of `criteria` have no preference pairs (the data have "
                         f"{sorted(set(frame['criterion']))}). Fix: add pairs for them or drop them from `criteria`.")
    return frame[frame["criterion"].isin(crits)].reset_index(drop=True)


def _centre(centre: Any, crits: tuple[str, ...], draw: Any, total: int) -> np.ndarray | None:
    """The run's centre as a vector in ``crits`` order, shape (C,), or None for the plain mix (see
    :func:`train_conditioned`)."""
    if centre is None:
        return None
    if isinstance(centre, str):
        if centre != "draws":
            raise ValueError(f"`centre` must be None, 'draws', a mapping criterion -> weight or {len(crits)} numbers. "
                             f"Got {centre!r}. Fix: centre='draws' (the mean weight vector of the run's draws).")
        return np.concatenate([draw(s) for s in range(total)]).mean(0)
    if isinstance(centre, Mapping):
        extra = [c for c in centre if c not in crits]
        if extra:
            raise ValueError(f"`centre` names criteria {extra} outside `criteria` {list(crits)}. Fix: drop them.")
        centre = [centre.get(c, 0.0) for c in crits]
    try:
        v = np.asarray(centre, dtype=float)
    except (TypeError, ValueError):
        raise TypeError(f"`centre` must be None, 'draws', a mapping criterion -> weight or {len(crits)} numbers. Got "
                        f"{type(centre).__name__}.") from None
    if v.shape != (len(crits),) or not np.isfinite(v).all():
        raise ValueError(f"`centre` must hold {len(crits)} finite numbers, one per criterion {list(crits)}. Got "
                         f"{np.asarray(centre).tolist()!r}. Fix: e.g. the pooled profile's weights.")
    return v


def _draw(sampler: Any, crits: tuple[str, ...], seed: int, local_batch: int, step: int) -> np.ndarray:
    """The validated draws of ``step``, shape (m, C), from ``sampler(default_rng([seed, step]), crits)``."""
    return check_draw(sampler(np.random.default_rng([seed, step]), crits), crits, step=step, local_batch=local_batch)


def _run_record(crits: tuple[str, ...], sampler: Any, cfg: MODPOConfig, rcfg: RewardModelConfig, d_hash: str,
                given: Mapping[str, Any], base_model: str, centre: np.ndarray | None = None) -> dict[str, Any]:
    sources = reward_sources(crits, cfg, rcfg, given) if len(crits) > 1 else {}
    rec = {"schema_version": SCHEMA_VERSION, "kind": "conditioned_modpo", "criteria": list(crits),
           "components": dict(zip(["shared", *crits], adapter_names(len(crits)))),
           "sampler": sampler_fingerprint(sampler), "objective": "modpo", "main_objective_rule": "largest weight",
           "beta": cfg.beta, "seed": cfg.seed, "config": cfg.to_dict(), "reward_config": rcfg.to_dict(),
           "data_hash": d_hash, "reward_sources": sources, "base_model": base_model}
    keyed = {k: rec[k] for k in _KEYED}
    keyed["config"] = cfg.training_key()
    if centre is not None:  # absent for the plain mix, so runs written before `centre` existed keep their key
        rec["centre"] = keyed["centre"] = [float(x) for x in centre]
    # The stacked training structure draws its initial LoRA weights in another order than the separate adapters
    # before it, so the same settings give another run: neither a finished run nor a checkpoint of those is reused.
    rec["structure"] = keyed["structure"] = "stacked"
    rec["resume_key"] = hashlib.sha256(json.dumps(keyed, sort_keys=True).encode()).hexdigest()
    return rec


def _finished(out: Path, record: Mapping[str, Any], *, overwrite: bool, acc: Any) -> bool:
    """Whether ``out`` holds this run finished (reused); with ``overwrite`` the old manifest is removed first."""
    mf = out / MANIFEST
    if not mf.exists():
        return False
    if overwrite:
        if acc.is_main_process:
            mf.unlink()
            shutil.rmtree(out / ".checkpoint", ignore_errors=True)
        acc.wait_for_everyone()
        return False
    if json.loads(mf.read_text()).get("resume_key") != record["resume_key"]:
        raise SettingsChangedError(f"{out} holds a conditioned run trained with other settings or data. Fix: pass "
                                   "overwrite=True or another `output_dir`.")
    if acc.is_main_process:  # a crash between saving the run and removing its checkpoint
        shutil.rmtree(out / ".checkpoint", ignore_errors=True)
    acc.wait_for_everyone()
    return True


def _save_run(peft_model: Any, names: list[str], state: LoopState, *, record: Mapping[str, Any],
              reward_models: Mapping[str, Any], n_pairs: int, out: Path, acc: Any, cfg: MODPOConfig) -> None:
    """Components into ``.partial-*`` then renamed to ``components/``; the manifest written last (main process)."""
    if acc.is_main_process:
        import tempfile

        tmp = Path(tempfile.mkdtemp(prefix=".partial-components-", dir=out))
        tmp.chmod(0o755)
        save_components(peft_model, names, cfg, tmp)
        digest = hashlib.sha256()
        for n in names:
            digest.update((tmp / n / "adapter_model.safetensors").read_bytes())
        _finish_dir(tmp, out / "components")
        rec = dict(record, run_id=digest.hexdigest()[:16], n_pairs=int(n_pairs), steps=len(state.losses),
                   num_processes=acc.num_processes, final_loss=state.losses[-1], losses=state.losses,
                   draws=state.draws, versions=_versions(),
                   reward_models={c: {"fingerprint": rm_fingerprint(rm), "val_accuracy": getattr(rm, "val_accuracy",
                                                                                                 None)}
                                  for c, rm in reward_models.items() if c in record["criteria"]},
                   created=time.strftime("%Y-%m-%dT%H:%M:%S%z"))
        atomic_write_text(out / MANIFEST, json.dumps(rec, indent=2))  # last: marks the run finished
    acc.wait_for_everyone()


class _Recorded:
    """A reward model known only by the fingerprint a manifest recorded (for :func:`adapter_record`)."""

    def __init__(self, fp: str) -> None:
        self.fp = fp

    def fingerprint(self) -> str:
        return self.fp


@dataclass(frozen=True)
class ConditionedAdapter:
    """A finished conditioned run (:func:`train_conditioned`): export a plain PEFT LoRA for any weight vector.

    Attributes
    ----------
    run_dir : Path
        The run directory (``conditioned.json``, ``components/``).
    manifest : dict
        ``conditioned.json``: criteria, settings, resume key, run id, losses and draws per step.
    skipped : bool
        True when the run was found finished (or loaded with :meth:`load`) rather than trained now.
    precompute_seconds, train_seconds : float
    reward_accuracy : dict criterion -> float or None
        Held-out accuracy of the margin reward models (when trained or given in this call).

    Examples
    --------
    >>> from survey_weights.modpo import ConditionedAdapter
    >>> ConditionedAdapter.load("no/such/run")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    FileNotFoundError: No conditioned run (conditioned.json) in 'no/such/run'. ...
    """

    run_dir: Path
    manifest: dict[str, Any] = field(repr=False)
    skipped: bool = True
    precompute_seconds: float = 0.0
    train_seconds: float = 0.0
    reward_accuracy: dict[str, float | None] = field(default_factory=dict)
    _loaded: dict[str, Any] = field(default_factory=dict, init=False, repr=False, compare=False)

    @classmethod
    def load(cls, run_dir: str | os.PathLike[str], *, calibration: bool = True) -> ConditionedAdapter:
        """The finished run in ``run_dir``.

        With ``calibration`` (default) a ``calibration.json`` that :meth:`calibrate` wrote for this very run is
        loaded too, so :meth:`export`, :meth:`attach` and :meth:`set_weights` mix calibrated; one written for another
        run (the run was retrained since) is ignored. ``calibration=False``: the run's own mix.

        Raises
        ------
        FileNotFoundError
            No ``conditioned.json`` there (not a conditioned run, or not finished).
        ValueError
            The manifest is not valid JSON or of an unknown schema.
        """
        d = Path(run_dir)
        mf = d / MANIFEST
        if not mf.is_file():
            raise FileNotFoundError(f"No conditioned run ({MANIFEST}) in {str(d)!r}. Fix: pass the `output_dir` of "
                                    "a finished train_conditioned run.")
        try:
            man = json.loads(mf.read_text())
        except json.JSONDecodeError as exc:
            raise ValueError(f"{str(mf)!r} is not valid JSON ({exc.msg}). Fix: retrain the run.") from None
        if man.get("kind") != "conditioned_modpo" or man.get("schema_version") != SCHEMA_VERSION:
            raise ValueError(f"{str(mf)!r} is not a conditioned run of schema {SCHEMA_VERSION}. Fix: retrain it with "
                             "this version of survey_weights.")
        out = cls(d, man)
        cf = d / CALIBRATION
        if calibration and cf.is_file():
            cal = MixingCalibration.load(cf)
            if cal.run_id == out.run_id and cal.criteria == out.criteria:
                out._loaded["calibration"] = cal
        return out

    @property
    def calibration(self) -> MixingCalibration | None:
        """The mixing calibration in use (:meth:`calibrate`), or None: the run's own mix ``(1, w - centre)``."""
        return self._loaded.get("calibration")

    def scales(self, profile_or_weights: Any) -> np.ndarray:
        """The LoRA scales of the model at a weight vector, shape (1 + C,): the shared LoRA's, then each
        criterion's - ``(1, w - centre)``, or calibrated (:attr:`calibration`)."""
        w = np.asarray(self.weight_vector(profile_or_weights))
        cal = self.calibration
        if cal is None:
            return np.concatenate([[1.0], w - self.centre])
        return cal.scales(w, self.centre)

    def calibrate(self, pool: Any, *, model: Any, tokenizer: Any, ridge: float | str = "cv",
                  normalise: str = "sum", batch_size: int = 8, max_length: int = 1024, max_prompt_length: int = 256,
                  use_chat_template: bool = True, progress: bool = False, save: bool = True) -> MixingCalibration:
        """Calibrate the mixing on a scored candidate pool (:mod:`.calibration`) and use it from now on.

        Scores every candidate under the base, the shared LoRA alone and the shared LoRA plus each criterion's
        (scale 1), fits :func:`~survey_weights.modpo.calibration.fit_mixing` and - with ``save`` - writes
        ``calibration.json`` into the run directory, where :meth:`load` finds it. Use prompts that neither trained
        the run nor evaluate it.

        Parameters
        ----------
        pool : CandidatePool
            :class:`survey_weights.evaluation.CandidatePool` (``prompts``, ``texts``, ``scores``, ``criteria``,
            ``name``) scoring at least the run's criteria; other criteria are ignored.
        model, tokenizer
            The base causal LM (not a PeftModel; components are attached and removed again) and its tokenizer.
        ridge : float or "cv", default "cv"
        normalise : {"sum", "mean"}, default "sum"
            Logits of the pool distribution, as the pool evaluation's (``evaluate_pool(normalise=)``).
        batch_size, max_length, max_prompt_length, use_chat_template, progress
            Scoring, as :func:`~survey_weights.evaluation.evaluate_pool`.
        save : bool, default True

        Returns
        -------
        MixingCalibration

        Raises
        ------
        TypeError
            ``pool`` is not a candidate pool, or ``model`` is a PeftModel.
        ValueError
            The pool does not score a criterion of the run, or is too small (:func:`fit_mixing`).
        """
        from .logps import compute_logps_by_prompt, encode_sequences

        need = ("prompts", "texts", "scores", "criteria")
        if any(not hasattr(pool, a) for a in need):
            raise TypeError(f"`pool` must be a CandidatePool (with {', '.join(need)}). Got {type(pool).__name__}. Fix: "
                            "survey_weights.evaluation.CandidatePool.from_frame(df).")
        if hasattr(model, "peft_config"):
            raise TypeError("`model` must be the base model, not a PeftModel. Fix: pass `peft_model.unload()`.")
        missing = [c for c in self.criteria if c not in tuple(pool.criteria)]
        if missing:
            raise ValueError(f"The calibration pool {getattr(pool, 'name', '')!r} scores {list(pool.criteria)}, not the "
                             f"run's criteria {missing}. Fix: score its candidates on every criterion of the run.")
        crits = self.criteria
        scores = np.asarray(pool.scores, dtype=float)[..., [list(pool.criteria).index(c) for c in crits]]
        texts = [list(t) for t in pool.texts]
        p, k = scores.shape[:2]
        cells = [(i, j) for i, t in enumerate(texts) for j in range(len(t))]
        enc = encode_sequences(tokenizer, [pool.prompts[i] for i, _ in cells], [texts[i][j] for i, j in cells],
                               max_length=max_length, max_prompt_length=max_prompt_length,
                               use_chat_template=use_chat_template)
        lengths = enc.response_lengths().astype(float)
        pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
        kw = dict(pad_id=pad, batch_size=batch_size, device=next(model.parameters()).device, progress=progress)
        c = len(crits)
        configs = [("shared", np.eye(1 + c)[0])] + [(f"shared + {cr}", np.eye(1 + c)[0] + np.eye(1 + c)[1 + i])
                                                    for i, cr in enumerate(crits)]
        pm = self.attach(model)
        try:
            with pm.disable_adapter():
                flat = [compute_logps_by_prompt(pm, enc, desc="base", **kw).double().numpy()]
            layers = lora_layers(pm)
            names = adapter_names(c)
            for desc, u in configs:
                # only the components in use are active: a LoRA at scale 0 would still cost its matmuls
                pm.base_model.set_adapter([n for n, x in zip(names, u) if x != 0], inference_mode=True)
                set_scales(layers, names, u)
                flat.append(compute_logps_by_prompt(pm, enc, desc=desc, **kw).double().numpy())
        finally:
            pm.unload()
        if normalise == "mean":
            flat = [f / np.maximum(lengths, 1.0) for f in flat]
        grid = np.full((len(flat), p, k), np.nan)
        for n, f in enumerate(flat):
            for (i, j), v in zip(cells, f):
                grid[n, i, j] = v
        mask = np.isfinite(grid[0])
        ref = np.where(mask, grid[0], -np.inf)
        basis = np.stack([grid[1] - grid[0]] + [grid[2 + i] - grid[1] for i in range(c)], axis=-1)
        cal = fit_mixing(np.where(mask[..., None], basis, 0.0), scores, ref, criteria=crits, ridge=ridge,
                         normalise=normalise, run_id=self.run_id, pool_hash=pool_fingerprint(pool),
                         source=f"{getattr(pool, 'name', 'pool')} ({p} prompts)")
        if save:
            cal.save(self.run_dir / CALIBRATION)
        self._loaded["calibration"] = cal
        return cal

    @property
    def criteria(self) -> tuple[str, ...]:
        """The weight vector's criteria, in its order, shape (C,)."""
        return tuple(self.manifest["criteria"])

    @property
    def run_id(self) -> str:
        """Content hash of the run's component weights (recorded in every export's ``profile.json``)."""
        return self.manifest["run_id"]

    @property
    def losses(self) -> tuple[float, ...]:
        """Mean training loss per step."""
        return tuple(self.manifest["losses"])

    @property
    def draws(self) -> np.ndarray:
        """The weight vectors drawn per step, shape (steps, m, C)."""
        return np.asarray(self.manifest["draws"], dtype=float)

    @property
    def centre(self) -> np.ndarray:
        """The weight vector the criteria's LoRAs are mixed around, shape (C,) (zeros for the plain mix): the model
        at ``w`` is ``ΔW_0 + Σ_c (w_c - centre_c) ΔW_c``."""
        return np.asarray(self.manifest.get("centre") or np.zeros(len(self.criteria)), dtype=float)

    @property
    def components(self) -> dict[str, Path]:
        """PEFT adapter directory of each component: ``"shared"`` and one per criterion."""
        return {k: self.run_dir / "components" / v for k, v in self.manifest["components"].items()}

    def spec(self, profile_or_weights: Any, *, name: str | None = None) -> TrainingSpec:
        """The :class:`~survey_weights.profiles.training_spec.TrainingSpec` of a profile or weight vector.

        ``profile_or_weights``: a WeightProfile, TrainingSpec or dict with ``name`` and ``weights``; or weights
        alone (a mapping or Series criterion -> weight, or numbers in :attr:`criteria` order), then named ``name``.
        Criteria it leaves out weigh 0; weights not summing to 1 are normalised (with a warning). The main
        objective is the largest weight (the rule of training).

        Raises
        ------
        ValueError
            Criteria outside :attr:`criteria`, a negative, non-finite or all-zero weight vector, a wrong length.
        TypeError
            Not a profile, mapping or sequence of numbers.
        """
        crits = self.criteria
        p = profile_or_weights
        if isinstance(p, (list, tuple, np.ndarray)) and all(isinstance(x, (int, float, np.number)) for x in p):
            if len(p) != len(crits):
                raise ValueError(f"A weight vector needs {len(crits)} numbers, one per criterion {list(crits)}. Got "
                                 f"{len(p)}. Fix: pass a mapping criterion -> weight.")
            p = dict(zip(crits, p))
        bare = isinstance(p, pd.Series) or (isinstance(p, Mapping) and not {"name", "weights"} <= set(p))
        entry = {name or "weights": dict(p)} if bare else p
        spec = normalize_profiles(entry)[0]
        extra = [c for c in spec.weight_dict if c not in crits]
        if extra:
            raise ValueError(f"Weights of {spec.name!r} name criteria {extra} that the conditioned run in "
                             f"{str(self.run_dir)!r} was not trained on; its criteria are {list(crits)}. Fix: drop "
                             "them, or train a run with those criteria.")
        w = np.array([spec.weight_dict.get(c, 0.0) for c in crits])
        return normalize_profiles([spec], main_objective=crits[main_index(w)])[0]

    def weight_vector(self, profile_or_weights: Any) -> tuple[float, ...]:
        """The weights in :attr:`criteria` order, shape (C,), validated as in :meth:`spec`."""
        wd = self.spec(profile_or_weights).weight_dict
        return tuple(float(wd.get(c, 0.0)) for c in self.criteria)

    def export(self, profile_or_weights: Any, path: str | os.PathLike[str], *, name: str | None = None) -> Path:
        """Write the run at one weight vector as an ordinary PEFT LoRA directory ``path`` (replaced atomically).

        ``adapter_config.json`` + ``adapter_model.safetensors`` (rank ``r`` × (1 + criteria whose scale
        ``w_c - centre_c`` is not 0), :mod:`._export`, loadable by ``PeftModel.from_pretrained``) and ``profile.json`` as
        :func:`~survey_weights.modpo.train_adapters` writes it (weights, objective order, provenance, settings),
        plus ``training: "conditioned"`` and ``conditioned_run`` (the run's id and directory).

        Parameters
        ----------
        profile_or_weights : see :meth:`spec`
        path : path
            The adapter directory.
        name : str, optional
            Profile name for bare weights (default: the directory name of ``path``).

        Returns
        -------
        Path
            ``path``.
        """
        dest = Path(path)
        spec = self.spec(profile_or_weights, name=name or dest.name)
        return self._write(spec, dest)

    def export_all(self, profiles: Any, output_dir: str | os.PathLike[str]) -> dict[str, Path]:
        """Export every profile (any form of ``normalize_profiles``) to ``output_dir / profile_dirname(name)``.

        Every profile is checked before anything is written. Returns profile name -> adapter directory.
        """
        specs = [self.spec(s) for s in normalize_profiles(profiles)]
        return {s.name: self._write(s, Path(output_dir) / profile_dirname(s.name)) for s in specs}

    def _write(self, spec: TrainingSpec, dest: Path) -> Path:
        if "shared" not in self._loaded:  # read the components once per ConditionedAdapter
            self._loaded.update({k: load_component(d) for k, d in self.components.items()})
        u = self.scales(spec)
        scale = dict(zip(self.criteria, u[1:]))
        parts = [(*self._loaded["shared"], float(u[0]))] + [(*self._loaded[c], float(scale[c])) for c in self.criteria
                                                             if scale[c] != 0]
        state, lora_cfg = stack_components(parts, where=str(self.run_dir))
        return write_adapter(dest, state, lora_cfg, self._record(spec, u), base_model=self.manifest["base_model"])

    def _record(self, spec: TrainingSpec, u: np.ndarray) -> dict[str, Any]:
        """``profile.json`` of the export of ``spec`` at LoRA scales ``u`` (:meth:`scales`)."""
        man = self.manifest
        sources = man["reward_sources"]
        given = {c: _Recorded(v) for c, v in sources.items() if isinstance(v, str)}
        rec = adapter_record(spec, objective="modpo", cfg=MODPOConfig(**man["config"]),
                             rcfg=RewardModelConfig(**man["reward_config"]), data_hash=man["data_hash"], given=given,
                             base_model=man["base_model"])
        run = {"id": self.run_id, "dir": str(self.run_dir.resolve()), "criteria": list(self.criteria),
               "steps": man["steps"], "sampler": man["sampler"], "resume_key": man["resume_key"]}
        cal = self.calibration
        mixing = {"calibrated": cal is not None, "scales": dict(zip(["shared", *self.criteria], map(float, u)))}
        if cal is not None:
            mixing["calibration"] = cal.summary()
        key = f"{rec['resume_key']}:conditioned:{self.run_id}" + (f":calibrated:{cal.id}" if cal is not None else "")
        rec.update(training="conditioned", conditioned_run=run, mixing=mixing,
                   resume_key=hashlib.sha256(key.encode()).hexdigest(),
                   n_pairs=man["n_pairs"], steps=man["steps"], num_processes=man["num_processes"],
                   final_loss=man["final_loss"], losses=man["losses"], versions=_versions(),
                   reward_models={c: man["reward_models"].get(c) for c in rec["margin_criteria"]},
                   created=time.strftime("%Y-%m-%dT%H:%M:%S%z"))
        return rec

    def attach(self, model: Any, weights: Any = None) -> Any:
        """Load the components onto a base ``model`` (a PeftModel, all active, eval mode) mixed at ``weights``.

        ``weights`` (see :meth:`spec`; default: the shared LoRA alone, i.e. the run at its :attr:`centre`) can be
        changed later with :meth:`set_weights`. The model's update is then ``ΔW_0 + Σ_c (w_c - centre_c) ΔW_c`` —
        what :meth:`export` writes.
        """
        from peft import PeftModel

        comps = self.components
        names = adapter_names(len(self.criteria))
        pm = PeftModel.from_pretrained(model, str(comps["shared"]), adapter_name=names[0])
        for c, n in zip(self.criteria, names[1:]):
            pm.load_adapter(str(comps[c]), adapter_name=n)
        pm.base_model.set_adapter(names, inference_mode=True)
        pm.eval()
        if weights is None:  # the shared LoRA alone
            set_scales(lora_layers(pm), names, np.eye(1 + len(self.criteria))[0])
        else:
            self.set_weights(pm, weights)
        return pm

    def set_weights(self, peft_model: Any, weights: Any) -> None:
        """Mix an :meth:`attach`-ed model at ``weights`` (validated as in :meth:`spec`; calibrated when
        :attr:`calibration` is set, as :meth:`export`)."""
        set_scales(lora_layers(peft_model), adapter_names(len(self.criteria)), self.scales(weights))

