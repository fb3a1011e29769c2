"""Steps shared by the main job and the experiment: logging, survey and preference loading, reward-model cache,
model loading, threads and the training call.

Everything here is synthetic-data machinery by default: the numbers it produces are **not** the study's.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import os
import sys
import time
import warnings
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from ..criteria import SURVEY_CRITERIA
from ..exceptions import DataRecodeWarning, SettingsChangedError
from ..preferences.split import split_by_prompt, subsample_pairs
from ..profiles.training_config import MODPOConfig
from ..profiles.training_spec import profile_dirname

__all__ = [
    "check_budget", "check_model", "check_training", "DEFAULT_BASE_MODEL",
    "load_model", "load_preference_split", "load_survey_frame", "Log", "margin_reward_models",
    "PreferenceSplit", "quiet_small_groups", "report_warnings", "reward_accuracies", "reward_models_cached",
    "reward_pairs", "REWARD_PAIRS_PER_CRITERION", "set_threads", "split_frames", "survey_rankings", "SurveySpec",
    "train_profiles", "training_config", "training_pairs",
]

DEFAULT_BASE_MODEL = "smollm2-135m-instruct"
#: Pairs per criterion the margin reward models of the main job learn from (``run``, ``adapters``,
#: ``train-rewards``): more than the adapters' short schedule sees, few enough to train in seconds.
REWARD_PAIRS_PER_CRITERION = 48


class Log:
    """Timestamped progress lines on stderr (tqdm bars of the steps go there too)."""

    def __init__(self, enabled: bool = True) -> None:
        self.enabled = enabled
        self.t0 = time.perf_counter()

    def __call__(self, msg: str) -> None:
        if self.enabled:
            print(f"[{time.perf_counter() - self.t0:7.1f}s] {msg}", file=sys.stderr, flush=True)


@dataclass(frozen=True)
class SurveySpec:
    """How a job reads a survey and turns it into weights: any survey, not only the study's.

    Attributes
    ----------
    items : tuple of str or None
        The rated criteria (default: the study's five, ``SURVEY_CRITERIA``).
    scale : (low, high) or None
        The rating scale (default ``(1, 5)`` for the study's items; else the range :func:`load_survey` infers).
    respondent : str or None
        The respondent-id column (default ``respondent_id`` when present).
    sampling_weights : str or None
        A column of sampling (raking) weights: weighted fits with robust standard errors.
    vcov : {"model", "robust", "cluster"} or None
        Default ``"robust"`` with sampling weights, else ``"model"``.
    cluster : str or None
        Cluster column for ``vcov="cluster"`` (e.g. a recruitment site).
    safety : dict, float or None
        The constraint objective and its rule (:func:`~survey_weights.derive_profile`'s ``safety=``): the
        default ``{"floor": 0.2}`` adds the study's safety; ``None`` adds none.
    """

    items: tuple[str, ...] | None = None
    scale: tuple[float, float] | None = None
    respondent: str | None = None
    sampling_weights: str | None = None
    vcov: str | None = None
    cluster: str | None = None
    safety: Any = field(default_factory=lambda: {"floor": 0.2})

    @property
    def criteria(self) -> tuple[str, ...]:
        return tuple(self.items) if self.items else tuple(SURVEY_CRITERIA)

    def fit_options(self) -> dict[str, Any]:
        """Keyword arguments of the fits (variance type and clusters)."""
        return {"vcov": self.vcov, "cluster": self.cluster}


def load_survey_frame(path: str | os.PathLike[str] | None = None, spec: SurveySpec | None = None) -> pd.DataFrame:
    """The bundled synthetic survey, or a user's export (:func:`~survey_weights.load_survey`: the study's layout,
    Qualtrics or a generic CSV; `spec` names its items, scale and respondent column)."""
    from ..data.survey import load_survey
    from ..synthetic import load_example_survey

    if path is None:
        return load_example_survey()
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"Survey file {str(p)!r} does not exist. Fix: pass the path of a CSV export.")
    spec = spec or SurveySpec()
    kw: dict[str, Any] = {}
    if spec.items:
        kw["items"] = list(spec.items)
    if spec.scale:
        kw["scale"] = tuple(spec.scale)
    if spec.respondent:
        kw["respondent"] = spec.respondent
    return load_survey(p, **kw)


def survey_rankings(df: pd.DataFrame, factors: Sequence[str], *, log: Any = None,
                    spec: SurveySpec | None = None) -> Any:
    """Rankings of the survey's ratings of ``spec.criteria``, with the ``factors`` present as covariates (and the
    cluster column, and sampling weights when `spec` names them).

    Respondents dropped or recoded on the way (e.g. fewer than two ratings: no ranking information) are reported:
    as ``log`` lines when the job logs, otherwise as the :class:`~survey_weights.DataRecodeWarning` itself.
    """
    from ..data.rankings import Rankings

    spec = spec or SurveySpec()
    items = list(spec.criteria)
    missing = [c for c in items if c not in df.columns]
    if missing:
        raise ValueError(f"The survey lacks the rating column(s) {missing} (items {items}). Fix: name the survey's "
                         "rating columns with --items NAME,NAME,... (or items= in Python).")
    cols = [c for c in (*factors, spec.cluster) if c]
    covs = list(dict.fromkeys(c for c in cols if c in df.columns))
    # load_survey names the respondent column respondent_id; a frame passed directly keeps its own name
    resp = spec.respondent if spec.respondent in df.columns else ("respondent_id" if "respondent_id" in df.columns
                                                                  else None)
    scale = spec.scale or ((1, 5) if not spec.items else None)
    with report_warnings(log, DataRecodeWarning, "survey"):
        return Rankings.from_ratings(df, items, respondent=resp, scale=scale, covariates=covs or None,
                                     sampling_weights=spec.sampling_weights)


@contextlib.contextmanager
def report_warnings(log: Any, category: type[Warning], label: str) -> Iterator[None]:
    """Warnings of ``category`` raised inside become ``log`` lines (``"      <label>: <message>"``) when ``log``
    is given and enabled; otherwise they are issued unchanged. Other warnings are never touched."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", category)
        yield
    on = log is not None and getattr(log, "enabled", True)
    for w in caught:
        if on and issubclass(w.category, category):
            log(f"      {label}: {w.message}")
        else:
            warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)


def quiet_small_groups(log: Log) -> Any:
    """Context: SmallGroupWarnings (withheld groups) become progress lines instead of warnings."""
    import contextlib

    from ..exceptions import SmallGroupWarning

    @contextlib.contextmanager
    def ctx() -> Any:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", SmallGroupWarning)
            yield
        for w in caught:
            if issubclass(w.category, SmallGroupWarning):
                log(f"      withheld: {w.message}")
            else:
                warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
    return ctx()


@dataclass(frozen=True)
class PreferenceSplit:
    """Training pairs and held-out prompts (prompts never seen in training)."""

    train: pd.DataFrame
    test_prompts: list[str]
    test_ids: list[str]
    source: str = "bundled"


def load_preference_split(source: str | os.PathLike[str] | None = None, *, seed: int = 0,
                          test_fraction: float = 0.2) -> PreferenceSplit:
    """Preference pairs with a prompt-level train/test split.

    Parameters
    ----------
    source : path, optional
        A JSONL file or per-criterion directory (:func:`survey_weights.preferences.read_preferences`). Default:
        the bundled synthetic data (:func:`survey_weights.synthetic.preferences.load_preference_data`) and its own
        split. A ``split`` column (``train``/``test``) is honoured; otherwise prompts are split at random
        (seeded) by ``prompt_id``.
    """
    if source is None:
        try:
            from ..synthetic.preferences import load_preference_data
        except ImportError as exc:
            raise ValueError("The bundled synthetic preference data (survey_weights.synthetic.preferences) is not "
                             "available in this build. Fix: pass --preferences DIR_OR_JSONL.") from exc
        pdata = load_preference_data()
        label = "bundled synthetic (survey_weights.synthetic.preferences)"
        train = pdata.train_pairs()
        tp = pdata.prompts[pdata.prompts["split"] == "test"]
        return PreferenceSplit(train=train, test_prompts=tp["prompt"].tolist(),
                               test_ids=tp["prompt_id"].astype(str).tolist(), source=label)
    else:
        from ..preferences.pairs import read_preferences

        p = Path(source)
        if not p.exists():
            raise FileNotFoundError(f"Preference data {str(p)!r} does not exist. Fix: pass a JSONL file or a "
                                    "directory of <criterion>.jsonl files.")
        data = read_preferences(p)
        label = str(p)
    train, test = split_frames(data, seed=seed, test_fraction=test_fraction)
    first = test.drop_duplicates("prompt_id")
    return PreferenceSplit(train=train, test_prompts=first["prompt"].tolist(),
                           test_ids=first["prompt_id"].astype(str).tolist(), source=label)


def split_frames(data: Any, *, seed: int, test_fraction: float) -> tuple[pd.DataFrame, pd.DataFrame]:
    if isinstance(data, tuple) and len(data) == 2:  # (train, test) frames
        return data[0].reset_index(drop=True), data[1].assign(prompt_id=data[1]["prompt_id"].astype(str))
    if isinstance(data, Mapping) and {"train", "test"} <= set(data):
        return data["train"].reset_index(drop=True), data["test"].assign(prompt_id=data["test"]["prompt_id"].astype(str))
    if not isinstance(data, pd.DataFrame):
        raise TypeError(f"Unsupported preference data of type {type(data).__name__}.")
    if "split" in data.columns:
        tr = data[data["split"] == "train"].reset_index(drop=True)
        te = data[data["split"] == "test"].reset_index(drop=True)
        if len(tr) and len(te):
            if "prompt_id" not in te.columns:
                te = te.assign(prompt_id=te["prompt"].map(lambda s: hashlib.sha256(s.encode()).hexdigest()[:12]))
            return tr, te.assign(prompt_id=te["prompt_id"].astype(str))
    return split_by_prompt(data, test_fraction=test_fraction, seed=seed)


def check_budget(name: str, value: Any, *, allow_none: bool = False) -> None:
    """A job's size (pairs, prompts, tokens): an int >= 1 (or None = no limit, where allowed)."""
    if value is None and allow_none:
        return
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        more = " or None (no limit)" if allow_none else ""
        raise ValueError(f"`{name}` must be an int >= 1{more}. Got {value!r}. Fix: e.g. {name}=8.")


def check_training(training: Any) -> None:
    """A schedule's ``training`` must be a :class:`~survey_weights.modpo.MODPOConfig` (validated on creation)."""
    if not isinstance(training, MODPOConfig):
        raise TypeError(f"`training` must be a MODPOConfig. Got {type(training).__name__} instead. "
                        "Fix: e.g. MainSchedule(training=MODPOConfig(max_steps=3, batch_size=2)).")


def training_config(training: MODPOConfig, *, seed: int, progress: bool, max_steps: int | None = None
                    ) -> MODPOConfig:
    """A job's MODPOConfig: the schedule's ``training`` with the job's ``seed`` and ``progress`` (and
    ``max_steps`` when given), validated again (:class:`~survey_weights.modpo.MODPOConfig`)."""
    check_training(training)
    changes: dict[str, Any] = {"seed": seed, "progress": progress}
    if max_steps is not None:
        changes["max_steps"] = max_steps
    return dataclasses.replace(training, **changes)


def training_pairs(train: pd.DataFrame, cfg: MODPOConfig, *, per_criterion: int | None, seed: int,
                   reward_models: Mapping[str, Any] | None = None, log: Any = None
                   ) -> tuple[pd.DataFrame, MODPOConfig, pd.DataFrame | None]:
    """A job's training pairs (a seeded subsample of ``train``, each criterion on its own), its config with
    ``margins="auto"`` decided by the trainer's rule on the full ``train``
    (:func:`~survey_weights.modpo.train.resolve_margins`: the pairs' own labels when no reward model is given and
    every comparison is labelled on every criterion, as in the bundled data, else reward models), and the pairs the
    label margins are read from (``train`` itself, so each subsampled pair's labels on the other criteria come from
    the full data; None with reward models). (Sampling whole comparisons instead, ``subsample_pairs(by=
    "comparison")``, trains on 32 comparisons instead of up to 192 and was measured to overfit: ``docs/design.md``.)
    """
    sub = subsample_pairs(train, per_criterion=per_criterion, seed=seed)
    if cfg.margins == "auto":
        from ..modpo.train import resolve_margins

        cfg = resolve_margins(cfg, train, None, reward_models)
        if log:
            log("      margins: " + ("the pairs' own labels (every comparison is labelled on every criterion)"
                                     if cfg.margins == "labels" else "reward models (" + (
                                         "given" if reward_models else "not every comparison carries every "
                                         "criterion's label") + ")"))
    return sub, cfg, (train if cfg.margins == "labels" else None)


def reward_models_cached(train: pd.DataFrame, criteria: Sequence[str], cache: str | os.PathLike[str], *,
                         seed: int = 0, log: Any = None) -> dict[str, Any]:
    """Train (or reload) one reward model per criterion, cached by a hash of the pairs and the config."""
    from ..modpo import RewardModel, RewardModelConfig, train_reward_model
    from ..preferences.pairs import as_pairs_frame, data_hash

    cfg = RewardModelConfig(seed=seed)
    frame = as_pairs_frame(train)
    out: dict[str, Any] = {}
    for c in criteria:
        sub = frame[frame["criterion"] == c]
        key = hashlib.sha256(json.dumps([data_hash(sub), cfg.training_key()], sort_keys=True).encode()).hexdigest()[:16]
        path = Path(cache) / f"{c}-{key}"
        if (path / "reward_config.json").is_file():
            out[c] = RewardModel.load(path)
            if log:
                log(f"reward model {c}: reused {path.name} (val acc {out[c].val_accuracy})")
            continue
        out[c] = train_reward_model(frame, c, config=cfg)
        out[c].save(path)
        if log:
            log(f"reward model {c}: trained, val acc {out[c].val_accuracy}")
    return out


def reward_pairs(train: pd.DataFrame, *, seed: int, per_criterion: int | None = REWARD_PAIRS_PER_CRITERION
                 ) -> pd.DataFrame:
    """The pairs the margin reward models learn from: at most ``per_criterion`` per criterion of the training
    split (seeded subsample, order kept; None keeps every pair).

    The one rule for ``run``, ``adapters`` and ``train-rewards`` (the experiment passes its own budget), so the
    three train each criterion's reward model on the same pairs and find each other's models in a shared cache.
    """
    check_budget("per_criterion", per_criterion, allow_none=True)
    return subsample_pairs(train, per_criterion=per_criterion, seed=seed)


def margin_reward_models(train: pd.DataFrame, criteria: Sequence[str], cache: str | os.PathLike[str], *, seed: int,
                         per_criterion: int | None = REWARD_PAIRS_PER_CRITERION, log: Any = None) -> dict[str, Any]:
    """One reward model per criterion trained on :func:`reward_pairs` of ``train``, cached in ``cache``
    (:func:`reward_models_cached`)."""
    return reward_models_cached(reward_pairs(train, seed=seed, per_criterion=per_criterion), criteria, cache,
                                seed=seed, log=log)


def reward_accuracies(reward_models: Mapping[str, Any]) -> dict[str, float | None]:
    """Held-out pairwise accuracy of each margin reward model (None when the model does not report one)."""
    out: dict[str, float | None] = {}
    for c, rm in reward_models.items():
        acc = getattr(rm, "val_accuracy", None)
        out[c] = None if acc is None else round(float(acc), 4)
    return out


def set_threads(threads: int | str | None) -> int | None:
    """Set torch's intra-op CPU threads (:func:`survey_weights.modpo.set_torch_threads`)."""
    if threads is None:
        return None
    from ..modpo import set_torch_threads

    return set_torch_threads(threads)


def check_model(base_model: str, device: str | None) -> None:
    """Fail in a second on a bad base model or device, before reward models or data are prepared."""
    from ..modpo import check_base_model

    check_base_model(base_model, device=device)


def load_model(base_model: str, device: str | None, log: Log) -> tuple[Any, Any]:
    from ..modpo import load_base_model

    t = time.perf_counter()
    model, tok = load_base_model(base_model, device=device)
    log(f"base model {base_model!r} loaded in {time.perf_counter() - t:.1f}s")
    return model, tok


TRAINING_MODES: tuple[str, ...] = ("conditioned", "per-profile")


def check_mode(mode: Any) -> str:
    """`mode` as one of :data:`TRAINING_MODES` (ValueError naming the parameter otherwise)."""
    if mode not in TRAINING_MODES:
        raise ValueError(f"`mode` must be one of {', '.join(TRAINING_MODES)}. Got {mode!r}. Fix: pass "
                         "mode='conditioned' (one run, every profile exported) or mode='per-profile' (one adapter "
                         "trained per profile).")
    return str(mode)


@dataclass(frozen=True)
class ExportedAdapter:
    """One profile's adapter exported from a conditioned run (the fields the evaluation reads)."""

    name: str
    path: Path
    main_objective: str
    skipped: bool = False


def train_conditioned_profiles(profiles: Sequence[Any], train: pd.DataFrame, *, out: Path, run_dir: Path,
                               model: Any, tok: Any, cfg: Any, rms: Mapping[str, Any], base_model: str,
                               device: str | None, overwrite: bool | None, log: Any = None,
                               centre: Any = None, weight_sampler: Any = None,
                               margin_labels: Any = None, calibration_pool: Any = None,
                               calibration_normalise: str = "sum") -> list[ExportedAdapter]:
    """One conditioned MODPO run over the profiles' criteria (:func:`~survey_weights.modpo.train_conditioned`,
    resumed or reused as ``train_profiles`` does), then every profile exported as a plain PEFT LoRA to
    ``out / <profile dir>``. ``cfg.max_steps`` counts the steps of the whole run.

    With ``calibration_pool`` (a scored :class:`~survey_weights.evaluation.CandidatePool` of prompts that neither
    train nor evaluate) the mixing is calibrated on it first (:meth:`ConditionedAdapter.calibrate
    <survey_weights.modpo.ConditionedAdapter.calibrate>`, logits as ``calibration_normalise``; a calibration this
    run already has from the same pool is reused) and every export is calibrated; without it every export is the
    run's own mix."""
    from ..modpo import ConditionedAdapter, make_accelerator, train_conditioned

    criteria: list[str] = []
    for p in profiles:
        criteria += [c for c in p.weight_dict if c not in criteria]

    def call(ow: bool) -> Any:
        return train_conditioned(train, criteria=criteria, profiles=list(profiles), output_dir=run_dir, model=model,
                                 tokenizer=tok, config=cfg, reward_models=dict(rms), base_model_id=base_model,
                                 overwrite=ow, accelerator=make_accelerator(device), centre=centre,
                                 weight_sampler=weight_sampler, margin_labels=margin_labels)

    try:
        cond = call(bool(overwrite))
    except SettingsChangedError as exc:
        if overwrite is not None:
            raise SettingsChangedError(f"{exc} (The schedule, seed, data or base model changed since the last run: "
                                       "pass --overwrite to retrain, or choose another --out.)") from None
        if log:
            log("      the schedule, seed, data or base model changed since the last run: retraining")
        cond = call(True)
    # read again so the mixing is what was asked for: a reused run would bring a saved calibration.json along
    cond = ConditionedAdapter.load(run_dir, calibration=calibration_pool is not None)
    if calibration_pool is not None:
        from ..modpo.calibration import pool_fingerprint

        cal = cond.calibration
        if cal is None or cal.pool_hash != pool_fingerprint(calibration_pool) or cal.normalise != calibration_normalise:
            t = time.perf_counter()
            cal = cond.calibrate(calibration_pool, model=model, tokenizer=tok, normalise=calibration_normalise)
            if log:
                log(f"      mixing calibrated on {cal.source} in {time.perf_counter() - t:.1f}s (ridge {cal.ridge:g}; "
                    "R2 " + ", ".join(f"{c} {v:.2f}" for c, v in cal.r2.items()) + ")")
        elif log:
            log(f"      mixing calibration of this run reused ({cal.source})")
    cal_id = cond.calibration.id if cond.calibration is not None else None
    result = []
    for p in profiles:  # an export already written from this very run at these weights and mixing is kept
        dest = out / profile_dirname(p.name)
        try:
            rec = json.loads((dest / "profile.json").read_text())
            same = (rec.get("conditioned_run", {}).get("id") == cond.run_id and rec.get("weights") == p.weight_dict
                    and (rec.get("mixing") or {}).get("calibration", {}).get("id") == cal_id
                    and (dest / "adapter_model.safetensors").is_file())
        except (OSError, ValueError, AttributeError):
            same = False
        if not same:
            cond.export(p, dest)
        result.append(ExportedAdapter(p.name, dest, p.main_objective, skipped=same))
    return result


def train_profiles(profiles: Any, train: pd.DataFrame, *, out: Path, model: Any, tok: Any, cfg: Any, rms: Mapping[str, Any],
           base_model: str, device: str | None, overwrite: bool | None, log: Any = None, **kw: Any) -> Any:
    """``train_adapters`` with resume; ``overwrite=None`` retrains when the inputs changed since the last run.

    Only :class:`~survey_weights.exceptions.SettingsChangedError` triggers the retry; every other error
    (whatever its message says) propagates unchanged.
    """
    from ..modpo import make_accelerator, train_adapters

    def call(ow: bool) -> Any:
        return train_adapters(profiles, train, output_dir=out, model=model, tokenizer=tok, config=cfg,
                              reward_models=dict(rms), base_model_id=base_model, overwrite=ow,
                              accelerator=make_accelerator(device), **kw)

    try:
        return call(bool(overwrite))
    except SettingsChangedError as exc:
        if overwrite is None:
            if log:
                log("      the schedule, seed, data or base model changed since the last run: retraining")
            return call(True)
        raise SettingsChangedError(f"{exc} (The schedule, seed, data or base model changed since the last run: "
                                   "pass --overwrite to retrain, or choose another --out.)") from None
