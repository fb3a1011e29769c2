"""Generation helper used by the evaluation step (same prompt formatting as training)."""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from typing import Any

import torch

from .logps import format_prompt

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


def _generate_batches(model: Any, tokenizer: Any, prompts: Sequence[str], adapters: list[str] | None, *,
                      max_new_tokens: int, seed: int, do_sample: bool, temperature: float, top_p: float,
                      batch_size: int, use_chat_template: bool, max_prompt_length: int, per_call: int = 1,
                      progress: Any = None) -> dict[str | None, list[str]]:
    """The one decoding loop of :func:`generate` and :func:`generate_adapters`: ``batch_size`` prompts a batch,
    left-padded once, repeated for each of up to ``per_call`` adapters a call (PEFT's ``adapter_names``).
    ``adapters=None``: the model as it is (no ``adapter_names``), returned under the key None."""
    names: list[str | None] = list(adapters) if adapters is not None else [None]
    device = next(model.parameters()).device
    old_side = tokenizer.padding_side
    tokenizer.padding_side = "left"
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    kwargs: dict[str, Any] = {"max_new_tokens": max_new_tokens, "pad_token_id": pad_id,
                              "eos_token_id": tokenizer.eos_token_id, "do_sample": do_sample}
    if do_sample:
        kwargs.update(temperature=temperature, top_p=top_p)
    else:
        kwargs.update(temperature=None, top_p=None, top_k=None)
    devs = [device] if device.type == "cuda" else []
    was_training = model.training
    model.eval()
    outputs: dict[str | None, list[str]] = {a: [] for a in names}
    try:
        for start in range(0, len(prompts), batch_size):
            texts = [format_prompt(tokenizer, p, use_chat_template=use_chat_template)
                     for p in prompts[start: start + batch_size]]
            # Padded once for the batch, then repeated per adapter: each row pads as it would alone.
            enc = tokenizer(texts, add_special_tokens=False, return_tensors="pt", padding=True, truncation=True,
                            max_length=max_prompt_length).to(device)
            n = len(texts)
            for g in range(0, len(names), per_call):
                group = names[g: g + per_call]
                batch = {k: v.repeat(len(group), 1) for k, v in enc.items()} if len(group) > 1 else dict(enc)
                if adapters is not None:
                    batch["adapter_names"] = [a for a in group for _ in range(n)]
                with torch.random.fork_rng(devices=devs):  # seeded without touching the caller's RNG
                    torch.manual_seed(seed + start)
                    out = model.generate(**batch, **kwargs)
                new = tokenizer.batch_decode(out[:, enc["input_ids"].shape[1]:], skip_special_tokens=True)
                for i, a in enumerate(group):
                    outputs[a].extend(t.strip() for t in new[i * n: (i + 1) * n])
            if progress is not None:
                progress(n)
    finally:
        tokenizer.padding_side = old_side
        model.train(was_training)
    return outputs
