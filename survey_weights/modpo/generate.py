"""Generation helper used by the evaluation step (same prompt formatting as training)."""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from typing import Any

import torch

from .logps import format_prompt

__all__ = ["generate"]


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
    if isinstance(prompts, str):
        raise TypeError(
            "`prompts` must be a sequence of strings, not one string. Fix: wrap it in a list."
        )
    if max_new_tokens < 1:
        raise ValueError(f"`max_new_tokens` must be >= 1. Got {max_new_tokens!r}.")
    if (adapter is not None or disable_adapter) and not hasattr(model, "peft_config"):
        raise TypeError("`adapter`/`disable_adapter` need a peft.PeftModel.")
    if adapter is not None:
        model.set_adapter(adapter)
    ctx = model.disable_adapter() if disable_adapter else contextlib.nullcontext()
    device = next(model.parameters()).device
    old_side = tokenizer.padding_side
    tokenizer.padding_side = "left"
    pad_id = (
        tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    )
    was_training = model.training
    model.eval()
    outputs: list[str] = []
    try:
        with ctx:
            for start in range(0, len(prompts), batch_size):
                texts = [
                    format_prompt(tokenizer, p, use_chat_template=use_chat_template)
                    for p in prompts[start : start + batch_size]
                ]
                batch = tokenizer(
                    texts,
                    add_special_tokens=False,
                    return_tensors="pt",
                    padding=True,
                    truncation=True,
                    max_length=max_prompt_length,
                ).to(device)
                kwargs: dict[str, Any] = {
                    "max_new_tokens": max_new_tokens,
                    "pad_token_id": pad_id,
                    "eos_token_id": tokenizer.eos_token_id,
                    "do_sample": do_sample,
                }
                if do_sample:
                    kwargs.update(temperature=temperature, top_p=top_p)
                else:
                    kwargs.update(temperature=None, top_p=None, top_k=None)
                devs = [device] if device.type == "cuda" else []
                with torch.random.fork_rng(
                    devices=devs
                ):  # seeded without touching the caller's RNG
                    torch.manual_seed(seed + start)
                    out = model.generate(**batch, **kwargs)
                new = out[:, batch["input_ids"].shape[1] :]
                outputs.extend(
                    t.strip() for t in tokenizer.batch_decode(new, skip_special_tokens=True)
                )
    finally:
        tokenizer.padding_side = old_side
        model.train(was_training)
    return outputs
