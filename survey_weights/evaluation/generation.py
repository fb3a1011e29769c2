"""Generate and score held-out replies for a set of models (base, adapters, merged adapters), with a cache.

Every adapter is loaded into **one** PeftModel over a single copy of the base; merges are built there with
:func:`survey_weights.modpo.merge_adapters`. Every model answers in the same batches, each row with its own adapter
(:func:`survey_weights.modpo.generate_adapters`; the base model's rows with none). Replies are cached
under ``cache_dir`` keyed by a hash of everything that determines them (base weights, adapter files, merge
recipe, prompts, decoding settings), so a re-run regenerates nothing.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from .._util.io import atomic_write_text
from .._util.progress import tqdm
from ..criteria import ALL_CRITERIA
from .scoring import EvaluationResult, ModelInfo, personalisation_check

__all__ = ["ModelSpec", "evaluate_models", "generate_replies", "score_frame"]

_MERGE_METHODS = ("exact", "ab_average")


@dataclass(frozen=True)
class ModelSpec:
    """How to obtain one evaluated model.

    Parameters
    ----------
    name : str
        Unique label.
    kind : {"base", "sft", "dpo", "merge", "modpo"}
    weights : dict, optional
        Criterion weights the model stands for (recorded in ``evaluation.json``).
    adapter : path, optional
        PEFT adapter directory (kinds sft/dpo/modpo).
    merge_of : tuple of str
        For kind "merge": names of other specs (with adapters) to merge.
    merge_weights : tuple of float
        Interpolation weights for ``merge_of``.
    merge_method : {"exact", "ab_average"}, default "exact"
    extra : dict
        Copied into ``evaluation.json``.
    """

    name: str
    kind: str
    weights: Mapping[str, float] | None = None
    adapter: str | os.PathLike[str] | None = None
    merge_of: tuple[str, ...] = ()
    merge_weights: tuple[float, ...] = ()
    merge_method: str = "exact"
    extra: Mapping[str, Any] = field(default_factory=dict)

    def info(self) -> ModelInfo:
        extra = dict(self.extra)
        if self.adapter is not None:
            extra.setdefault("adapter", str(self.adapter))
        if self.kind == "merge":
            extra.update(merge_of=list(self.merge_of), merge_weights=list(self.merge_weights),
                         merge_method=self.merge_method)
        return ModelInfo(self.name, self.kind, None if self.weights is None else dict(self.weights), extra)


def _check_specs(specs: Sequence[ModelSpec]) -> dict[str, ModelSpec]:
    by_name: dict[str, ModelSpec] = {}
    for s in specs:
        if not isinstance(s, ModelSpec):
            raise TypeError(f"Each model must be a ModelSpec. Got {type(s).__name__} instead.")
        s.info()  # validates kind / weights
        if s.name in by_name:
            raise ValueError(f"Duplicate model name {s.name!r}. Fix: give every model a unique name.")
        by_name[s.name] = s
    for s in specs:
        if s.kind == "base" and (s.adapter is not None or s.merge_of):
            raise ValueError(f"The base model {s.name!r} must not have an adapter or merge recipe.")
        if s.kind == "merge":
            if s.merge_method not in _MERGE_METHODS:
                raise ValueError(f"Unknown `merge_method` {s.merge_method!r} for {s.name!r}. "
                                 f"Choose one of {_MERGE_METHODS}.")
            bad = [m for m in s.merge_of if m not in by_name or by_name[m].adapter is None]
            if not s.merge_of or bad or len(s.merge_weights) != len(s.merge_of):
                raise ValueError(f"Merge {s.name!r} must list adapters of other models and one weight each. "
                                 f"Unknown or adapter-less: {bad}; got {len(s.merge_weights)} weights for "
                                 f"{len(s.merge_of)} adapters.")
        elif s.kind != "base":
            if s.adapter is None:
                raise ValueError(f"Model {s.name!r} of kind {s.kind!r} needs an `adapter` directory.")
            if not (Path(s.adapter) / "adapter_config.json").is_file():
                raise FileNotFoundError(f"No PEFT adapter (adapter_config.json) in {str(s.adapter)!r} for model "
                                        f"{s.name!r}. Fix: train it first (survey-weights adapters).")
    if not any(s.kind == "base" for s in specs):
        raise ValueError("One model must be of kind 'base' (the reference of every win rate).")
    return by_name


def _file_hash(path: Path) -> str:
    h = hashlib.sha256()
    for f in sorted(p for p in path.iterdir() if p.is_file() and p.suffix in (".json", ".safetensors", ".bin")):
        if f.name == "README.md":
            continue
        h.update(f.name.encode())
        h.update(f.read_bytes())
    return h.hexdigest()


def _model_fingerprint(model: Any) -> str:
    """Cheap, content-based fingerprint of a base model (name + shapes + a slice of every tensor)."""
    h = hashlib.sha256(str(getattr(model.config, "name_or_path", "")).encode())
    for name, p in model.state_dict().items():
        h.update(name.encode())
        h.update(str(tuple(p.shape)).encode())
        h.update(p.detach().flatten()[:256].float().cpu().numpy().tobytes())
    return h.hexdigest()


def _spec_key(spec: ModelSpec, by_name: Mapping[str, ModelSpec], base_fp: str, prompts: Sequence[str],
              gen: Mapping[str, Any]) -> str:
    if spec.kind == "base":
        recipe: Any = "base"
    elif spec.kind == "merge":
        recipe = {"method": spec.merge_method, "weights": [float(w) for w in spec.merge_weights],
                  "adapters": [_file_hash(Path(by_name[m].adapter)) for m in spec.merge_of]}
    else:
        recipe = _file_hash(Path(spec.adapter))
    doc = {"base": base_fp, "recipe": recipe, "prompts": list(prompts), "gen": dict(gen), "v": 2}
    return hashlib.sha256(json.dumps(doc, sort_keys=True).encode()).hexdigest()[:24]


def generate_replies(specs: Sequence[ModelSpec], prompts: Sequence[str], *, model: Any, tokenizer: Any,
                     max_new_tokens: int = 96, batch_size: int = 32, seed: int = 0,
                     cache_dir: str | os.PathLike[str] | None = None, progress: bool = True,
                     use_chat_template: bool = True, max_prompt_length: int = 256,
                     max_rows: int = 128) -> dict[str, list[str]]:
    """Greedy replies of every model to ``prompts``, every model answering in the same batches.

    Parameters
    ----------
    specs : sequence of ModelSpec
    prompts : sequence of str
    model, tokenizer
        The base causal LM (not a PeftModel) and its tokenizer. Adapters are loaded into it and removed
        again before returning, so ``model`` ends as it started.
    max_new_tokens, batch_size, seed, use_chat_template, max_prompt_length
        Decoding settings (passed to :func:`survey_weights.modpo.generate_adapters`).
    max_rows : int, default 128
        Rows per generation call: ``batch_size`` prompts once per model (each row its own adapter), the
        models split into groups so that no call holds more rows (see
        :func:`~survey_weights.modpo.generate_adapters`).
    cache_dir : path, optional
        Where replies are cached (one JSON per model and setting); None disables caching.
    progress : bool, default True

    Returns
    -------
    dict name -> list of str
    """
    from ..modpo import generate, generate_adapters, load_adapters, merge_adapters
    from ..modpo.generate import BASE

    if isinstance(prompts, str) or not prompts:
        raise ValueError("`prompts` must be a non-empty list of strings.")
    by_name = _check_specs(specs)
    if hasattr(model, "peft_config"):
        raise TypeError("`model` must be the base model, not a PeftModel.")
    gen = {"max_new_tokens": int(max_new_tokens), "seed": int(seed), "do_sample": False,
           "use_chat_template": bool(use_chat_template), "max_prompt_length": int(max_prompt_length)}
    cache = Path(cache_dir) if cache_dir is not None else None
    base_fp = _model_fingerprint(model)
    keys = {s.name: _spec_key(s, by_name, base_fp, prompts, gen) for s in specs}
    out: dict[str, list[str]] = {}
    if cache is not None:
        for s in specs:
            f = cache / f"{keys[s.name]}.json"
            if f.is_file():
                doc = json.loads(f.read_text())
                if doc.get("key") == keys[s.name] and len(doc.get("replies", [])) == len(prompts):
                    out[s.name] = list(doc["replies"])
    todo = [s for s in specs if s.name not in out]
    if not todo:
        return {s.name: out[s.name] for s in specs}
    # Internal adapter names: PEFT keeps adapters in ModuleDicts, whose keys may not contain dots.
    needed = [s for s in specs if s.adapter is not None and (s in todo or any(
        s.name in t.merge_of for t in todo))]
    internal = {s.name: f"a{i}" for i, s in enumerate(needed)}
    peft_model = load_adapters(model, {internal[s.name]: str(s.adapter) for s in needed}) if needed else None
    kw = dict(max_new_tokens=max_new_tokens, seed=seed, batch_size=batch_size, use_chat_template=use_chat_template,
              max_prompt_length=max_prompt_length)
    try:
        if peft_model is None:  # the base model alone
            replies = generate(model, tokenizer, list(prompts), **kw)
            got = {s.name: replies for s in todo}
        else:
            # Every model answers in the same batches (each row its own adapter's LoRA update),
            # so the base model's matrix products run once per batch for all of them.
            rows: dict[str, str] = {}
            for j, s in enumerate(todo):
                if s.kind == "base":
                    rows[s.name] = BASE
                elif s.kind == "merge":
                    rows[s.name] = f"m{j}"
                    merge_adapters(peft_model, [internal[m] for m in s.merge_of], list(s.merge_weights),
                                   name=rows[s.name], method=s.merge_method)
                else:
                    rows[s.name] = internal[s.name]
            distinct = list(dict.fromkeys(rows.values()))
            with tqdm(total=len(prompts), desc=f"generating ({len(distinct)} models)", disable=not progress,
                      unit="prompt") as bar:
                by_row = generate_adapters(peft_model, tokenizer, list(prompts), distinct, progress=bar.update,
                                           max_rows=max_rows, **kw)
            got = {s.name: by_row[rows[s.name]] for s in todo}
        for s in todo:
            out[s.name] = got[s.name]
            if cache is not None:
                cache.mkdir(parents=True, exist_ok=True)
                atomic_write_text(cache / f"{keys[s.name]}.json", json.dumps(
                    {"key": keys[s.name], "model": s.name, "gen": gen, "replies": got[s.name]},
                    ensure_ascii=False))
    finally:
        if peft_model is not None:
            peft_model.unload()  # removes the LoRA layers again: `model` is the plain base
    return {s.name: out[s.name] for s in specs}


def score_frame(prompts: Sequence[str], replies: Sequence[str], *, prompt_ids: Sequence[str],
                scorer: Callable[[Sequence[str], Sequence[str]], pd.DataFrame] | None = None,
                criteria: Sequence[str] = ALL_CRITERIA) -> pd.DataFrame:
    """Rubric scores of ``replies`` (rows = prompt ids, columns = ``criteria``).

    ``scorer`` defaults to :func:`survey_weights.rubric.score_replies`. It must return one row per reply with
    a column per criterion.
    """
    if scorer is None:
        from .rubric import score_replies as scorer
    frame = scorer(list(prompts), list(replies))
    if not isinstance(frame, pd.DataFrame) or len(frame) != len(replies):
        raise ValueError("The scorer must return a DataFrame with one row per reply.")
    missing = [c for c in criteria if c not in frame.columns]
    if missing:
        raise ValueError(f"The scorer returned no column(s) {missing}; it gave {list(frame.columns)}.")
    out = frame[list(criteria)].astype(float).copy()
    out.index = pd.Index([str(p) for p in prompt_ids], name="prompt_id")
    return out


def evaluate_models(specs: Sequence[ModelSpec], prompts: Sequence[str], *, model: Any, tokenizer: Any,
                    prompt_ids: Sequence[str] | None = None, criteria: Sequence[str] = ALL_CRITERIA,
                    scorer: Callable[..., pd.DataFrame] | None = None, profiles: Mapping[str, Mapping[str, float]]
                    | None = None, pooled: str | None = None, max_new_tokens: int = 96, batch_size: int = 32,
                    seed: int = 0, cache_dir: str | os.PathLike[str] | None = None, progress: bool = True,
                    settings: Mapping[str, Any] | None = None) -> EvaluationResult:
    """Generate replies for every model, score them with the rubric, and compare with the base model.

    Parameters
    ----------
    specs : sequence of ModelSpec
        One of kind "base".
    prompts : sequence of str
        Held-out prompts (never trained on).
    model, tokenizer
        Base causal LM and tokenizer.
    prompt_ids : sequence of str, optional
        Default ``"0", "1", ...``.
    criteria : sequence of str, default ALL_CRITERIA
    scorer : callable, optional
        ``scorer(prompts, replies) -> DataFrame``; default the rubric (:mod:`survey_weights.rubric`).
    profiles : mapping name -> weights, optional
        Subgroup profiles (model names) for :func:`~survey_weights.evaluation.personalisation_check`.
    pooled : str, optional
        Name of the pooled-profile model; with ``profiles`` enables the personalisation check.
    max_new_tokens, batch_size, seed, cache_dir, progress
        See :func:`generate_replies`.
    settings : mapping, optional
        Recorded in ``evaluation.json`` (decoding settings are added).

    Returns
    -------
    EvaluationResult
    """
    ids = [str(i) for i in (prompt_ids if prompt_ids is not None else range(len(prompts)))]
    if len(ids) != len(prompts) or len(set(ids)) != len(ids):
        raise ValueError("`prompt_ids` must be unique and one per prompt.")
    replies = generate_replies(specs, prompts, model=model, tokenizer=tokenizer, max_new_tokens=max_new_tokens,
                               batch_size=batch_size, seed=seed, cache_dir=cache_dir, progress=progress)
    scores = {name: score_frame(prompts, r, prompt_ids=ids, scorer=scorer, criteria=criteria)
              for name, r in replies.items()}
    base = next(s.name for s in specs if s.kind == "base")
    pers = None
    if profiles and pooled is not None and pooled in scores:
        sub = {k: v for k, v in profiles.items() if k in scores and k != pooled}
        if sub:
            pers = personalisation_check(scores, sub, pooled=pooled)
    st = dict(settings or {})
    st.update(n_prompts=len(prompts), max_new_tokens=int(max_new_tokens), decoding="greedy", seed=int(seed),
              scorer=getattr(scorer, "__module__", "survey_weights.rubric") if scorer else "survey_weights.rubric")
    return EvaluationResult(criteria=tuple(criteria), models=[s.info() for s in specs], scores=scores,
                            replies=replies, prompts=list(prompts), base=base, personalisation=pers, settings=st)
