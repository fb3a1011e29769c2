"""Generation helper used by the evaluation step (same prompt formatting as training)."""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from typing import Any

import torch

from .logps import MIN_SHARED_PREFIX, _cache_kwarg, _cache_of, _common_prefix, _keeps_logits, format_prompt

__all__ = ["BASE", "generate", "generate_adapters"]


def _check_request(prompts: Any, max_new_tokens: Any) -> None:
    if isinstance(prompts, str):
        raise TypeError("`prompts` must be a sequence of strings, not one string. Fix: wrap it in a list.")
    if max_new_tokens < 1:
        raise ValueError(f"`max_new_tokens` must be >= 1. Got {max_new_tokens!r}.")


@torch.no_grad()
def generate(
    model: Any,
    tokenizer: Any,
    prompts: Sequence[str],
    *,
    adapter: str | None = None,
    disable_adapter: bool = False,
    max_new_tokens: int = 128,
    seed: int = 0,
    do_sample: bool = False,
    temperature: float = 0.7,
    top_p: float = 0.95,
    batch_size: int = 8,
    use_chat_template: bool = True,
    max_prompt_length: int = 256,
) -> list[str]:
    """Generate one response per prompt.

    Parameters
    ----------
    model : causal LM or peft.PeftModel
    tokenizer : tokenizer
    prompts : sequence of str
        Formatted with :func:`~survey_weights.modpo.logps.format_prompt` (chat template when present).
    adapter : str, optional
        Adapter to activate on a PeftModel (e.g. a profile name from :func:`load_adapters`).
    disable_adapter : bool, default False
        Generate with the base model (PeftModel only).
    max_new_tokens : int, default 128
    seed : int, default 0
        Seeds sampling (greedy decoding is deterministic anyway).
    do_sample : bool, default False
        Greedy when False; otherwise nucleus sampling with ``temperature`` and ``top_p``.
    batch_size : int, default 8

    Returns
    -------
    list of str
        Decoded new tokens only, special tokens removed, stripped.
    """
    _check_request(prompts, max_new_tokens)
    if (adapter is not None or disable_adapter) and not hasattr(model, "peft_config"):
        raise TypeError("`adapter`/`disable_adapter` need a peft.PeftModel.")
    if adapter is not None:
        model.set_adapter(adapter)
    ctx = model.disable_adapter() if disable_adapter else contextlib.nullcontext()
    with ctx:
        return _generate_batches(model, tokenizer, prompts, None, max_new_tokens=max_new_tokens, seed=seed,
                                 do_sample=do_sample, temperature=temperature, top_p=top_p, batch_size=batch_size,
                                 use_chat_template=use_chat_template, max_prompt_length=max_prompt_length)[None]


BASE = "__base__"
"""The name :func:`generate_adapters` gives the base model (PEFT's own name for "no adapter" in a mixed batch)."""


@torch.no_grad()
def generate_adapters(
    model: Any,
    tokenizer: Any,
    prompts: Sequence[str],
    adapters: Sequence[str],
    *,
    max_new_tokens: int = 128,
    seed: int = 0,
    do_sample: bool = False,
    temperature: float = 0.7,
    top_p: float = 0.95,
    batch_size: int = 8,
    use_chat_template: bool = True,
    max_prompt_length: int = 256,
    max_rows: int = 128,
    progress: Any = None,
) -> dict[str, list[str]]:
    """Replies of several adapters of one PeftModel to the same prompts, all adapters in each batch.

    Each batch holds ``batch_size`` prompts once per adapter, and PEFT applies each row's own adapter
    (``adapter_names``, PEFT's mixed-adapter batches), so the base model's matrix products run once for every
    adapter. Each row is padded exactly as :func:`generate` pads it with the same ``batch_size`` (the same prompts
    share a batch), so greedy replies equal :func:`generate`'s one adapter at a time, up to the float rounding of
    a larger matrix product (``tests/test_generation.py`` checks they are equal on a tiny model).

    Parameters
    ----------
    model : peft.PeftModel
        Holding every adapter in ``adapters``.
    tokenizer : tokenizer
    prompts : sequence of str
    adapters : sequence of str
        Adapter names; :data:`BASE` (``"__base__"``) for the base model with no adapter.
    max_new_tokens, seed, do_sample, temperature, top_p, use_chat_template, max_prompt_length
        As in :func:`generate`. Sampled replies depend on the batch, so they differ from :func:`generate`'s.
    batch_size : int, default 8
        Prompts per batch; a batch has ``batch_size`` rows per adapter.
    max_rows : int, default 128
        Rows per call to ``model.generate`` (bounds the key/value cache): the adapters are split into groups of
        ``max(1, max_rows // batch_size)``, each group answering the same batch.
    progress : callable, optional
        Called with the number of prompts done after each batch (e.g. a tqdm's ``update``).

    Returns
    -------
    dict adapter name -> list of str
        Decoded new tokens only, special tokens removed, stripped; in the order of ``adapters``.
    """
    _check_request(prompts, max_new_tokens)
    for name, v in (("batch_size", batch_size), ("max_rows", max_rows)):
        if isinstance(v, bool) or not isinstance(v, int) or v < 1:
            raise ValueError(f"`{name}` must be an int >= 1. Got {v!r}.")
    if not hasattr(model, "peft_config"):
        raise TypeError("`model` must be a peft.PeftModel holding the adapters. Fix: load them with "
                        "survey_weights.modpo.load_adapters, or use generate() for a plain model.")
    names = list(adapters)
    unknown = [a for a in names if a != BASE and a not in model.peft_config]
    if not names or unknown or len(set(names)) != len(names):
        raise ValueError(f"`adapters` must be unique names of the model's adapters or {BASE!r}. Unknown: {unknown}; "
                         f"got {names}. The model has {sorted(model.peft_config)}.")
    return _generate_batches(model, tokenizer, prompts, names, max_new_tokens=max_new_tokens, seed=seed,
                             do_sample=do_sample, temperature=temperature, top_p=top_p, batch_size=batch_size,
                             use_chat_template=use_chat_template, max_prompt_length=max_prompt_length,
                             per_call=max(1, max_rows // batch_size), progress=progress)


def _batch_inputs(rows: list[list[int]], k: int, pad_id: int, device: Any) -> dict[str, torch.Tensor]:
    """``rows`` as ``[shared prefix | padding | own tokens]`` with the attention mask: with ``k = 0`` plain left
    padding. The positions (the mask's cumulative sum) are those of left padding, so each row is computed as it
    would be alone, and the first ``k`` columns are the same in every row."""
    width = max(len(r) for r in rows)
    ids = [r[:k] + [pad_id] * (width - len(r)) + r[k:] for r in rows]
    mask = [[1] * k + [0] * (width - len(r)) + [1] * (len(r) - k) for r in rows]
    return {"input_ids": torch.tensor(ids, device=device), "attention_mask": torch.tensor(mask, device=device)}


def _generate_batches(model: Any, tokenizer: Any, prompts: Sequence[str], adapters: list[str] | None, *,
                      max_new_tokens: int, seed: int, do_sample: bool, temperature: float, top_p: float,
                      batch_size: int, use_chat_template: bool, max_prompt_length: int, per_call: int = 1,
                      progress: Any = None, share_prefix: bool = True, sort_by_length: bool = True
                      ) -> dict[str | None, list[str]]:
    """The one decoding loop of :func:`generate` and :func:`generate_adapters`: ``batch_size`` prompts a batch,
    padded once, repeated for each of up to ``per_call`` adapters a call (PEFT's ``adapter_names``).
    ``adapters=None``: the model as it is (no ``adapter_names``), returned under the key None.

    The tokens that begin every prompt of a batch (the chat template's system message and user header: 24 of
    SmolLM2's 57-80 prompt tokens) are run once per adapter, and every row continues from that key/value cache
    (``share_prefix``; padding goes between the prefix and each row's own tokens). Greedy replies equal those of
    plain left padding up to float rounding (``tests/test_generation.py``). Batches hold prompts of similar token
    length (``sort_by_length``; replies come back in the prompts' order), so they pad less."""
    names: list[str | None] = list(adapters) if adapters is not None else [None]
    device = next(model.parameters()).device
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    key = _cache_kwarg(model)
    kwargs: dict[str, Any] = {"max_new_tokens": max_new_tokens, "pad_token_id": pad_id,
                              "eos_token_id": tokenizer.eos_token_id, "do_sample": do_sample}
    if do_sample:
        kwargs.update(temperature=temperature, top_p=top_p)
    else:
        kwargs.update(temperature=None, top_p=None, top_k=None)
    devs = [device] if device.type == "cuda" else []
    was_training = model.training
    model.eval()
    if not len(prompts):
        return {a: [] for a in names}
    texts = [format_prompt(tokenizer, p, use_chat_template=use_chat_template) for p in prompts]
    tokens = tokenizer(texts, add_special_tokens=False, truncation=True, max_length=max_prompt_length)["input_ids"]
    # Batches of prompts of similar length (shortest first) pad least; replies go back to the prompts' order.
    order = sorted(range(len(tokens)), key=lambda i: len(tokens[i])) if sort_by_length else list(range(len(tokens)))
    replies: dict[str | None, dict[int, str]] = {a: {} for a in names}
    try:
        for start in range(0, len(order), batch_size):
            idx = order[start: start + batch_size]
            rows = [tokens[i] for i in idx]
            k = _common_prefix(rows) if share_prefix else 0
            k = k if k >= MIN_SHARED_PREFIX else 0
            enc = _batch_inputs(rows, k, pad_id, device)
            n = len(rows)
            for g in range(0, len(names), per_call):
                group = names[g: g + per_call]
                batch: dict[str, Any] = ({name: v.repeat(len(group), 1) for name, v in enc.items()}
                                         if len(group) > 1 else dict(enc))
                route = {"adapter_names": [a for a in group for _ in range(n)]} if adapters is not None else {}
                if k:  # the shared prefix once per adapter, its cache repeated for the adapter's rows
                    pre = enc["input_ids"][:1, :k].repeat(len(group), 1)
                    head = {"adapter_names": list(group)} if adapters is not None else {}
                    keep = {"logits_to_keep": 1} if _keeps_logits(model) else {}
                    cache = _cache_of(model(input_ids=pre, attention_mask=torch.ones_like(pre), use_cache=True,
                                            **head, **keep), key)
                    cache.batch_repeat_interleave(n)
                    batch[key] = cache
                with torch.random.fork_rng(devices=devs):  # seeded without touching the caller's RNG
                    torch.manual_seed(seed + start)
                    out = model.generate(**batch, **route, **kwargs)
                new = tokenizer.batch_decode(out[:, enc["input_ids"].shape[1]:], skip_special_tokens=True)
                for i, a in enumerate(group):
                    replies[a].update(zip(idx, (t.strip() for t in new[i * n: (i + 1) * n])))
            if progress is not None:
                progress(n)
    finally:
        model.train(was_training)
    return {a: [r[i] for i in range(len(tokens))] for a, r in replies.items()}
