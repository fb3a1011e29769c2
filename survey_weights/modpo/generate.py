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
    batch_size: int = 32,
    use_chat_template: bool = True,
    max_prompt_length: int = 256,
    max_rows: int = 128,
    progress: Any = None,
) -> dict[str, list[str]]:
    """Replies of several adapters of one PeftModel to the same prompts, all adapters in each batch.

    Each batch holds ``batch_size`` prompts once per adapter, and each row gets its own adapter's update, so the
    base model's matrix products run once for every adapter. With plain LoRA adapters the updates of all rows are
    two batched matrix products per layer (ranks padded with zeros); other adapters (LoRA variants such as DoRA,
    which PEFT's mixed-adapter batches refuse) answer one at a time. Each row is padded exactly as :func:`generate`
    pads it with the same ``batch_size`` (the same prompts share a batch), so greedy replies equal
    :func:`generate`'s one adapter at a time, up to the float rounding of a larger matrix product
    (``tests/test_generation.py`` checks they are equal on a tiny model).

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
    batch_size : int, default 32
        Prompts per batch; a batch has ``batch_size`` rows per adapter. With ``max_rows=128``, four adapters a
        call. On 2 CPU cores (AMD EPYC) the demo's 13 models answered its 60 prompts in 167 s this way, against
        238 s with 8 prompts, all 13 models a call and PEFT's mixed batches (``docs/design.md``, "Generation's
        batching"); the 780 replies were identical.
    max_rows : int, default 128
        Rows per call to ``model.generate`` (bounds the key/value cache): the adapters are split into groups of
        ``max(1, max_rows // batch_size)`` (as equal in size as they can be), each group answering the same batch.
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


def _equal_groups(names: list[Any], per_call: int) -> list[list[Any]]:
    """``names`` in order, in as few groups of at most ``per_call`` as can be, of sizes differing by one at most
    (13 models, 4 a call: 3, 3, 3, 4 rather than 4, 4, 4, 1, whose last call would be a quarter full)."""
    n_calls = -(-len(names) // per_call)
    cuts = [len(names) * i // n_calls for i in range(n_calls + 1)]
    return [names[a:b] for a, b in zip(cuts, cuts[1:])]


def _vanilla_lora_layers(model: Any, adapters: Sequence[str]) -> list[Any] | None:
    """The PEFT LoRA layers of ``model`` when every adapter in ``adapters`` is plain LoRA there (no variant such as
    DoRA, no LoRA bias), else None."""
    from peft.tuners.lora import LoraLayer

    layers = [m for m in model.modules() if isinstance(m, LoraLayer)]
    for m in layers:
        if not isinstance(getattr(m, "base_layer", None), torch.nn.Linear):
            return None
        for a in adapters:
            if a in m.lora_A and (a in getattr(m, "lora_variant", {}) or m.lora_B[a].bias is not None):
                return None
    return layers or None


def _lora_stacks(layers: list[Any], group: Sequence[str]) -> list[tuple[Any, torch.Tensor, torch.Tensor, torch.Tensor]]:
    """Per LoRA layer, the ``group``'s adapters stacked for :func:`_stacked_lora`: ``A^T`` (G, in, r), ``B^T``
    (G, r, out) and the scalings (G, 1, 1), ranks padded with zeros and :data:`BASE` (or an adapter the layer does
    not hold) all zeros. Layers none of the group's adapters touch are left out."""
    stacks = []
    for m in layers:
        w = m.base_layer.weight
        rank = max([m.lora_A[a].weight.shape[0] for a in group if a in m.lora_A] or [0])
        if not rank:
            continue
        a_t = w.new_zeros(len(group), w.shape[1], rank)
        b_t = w.new_zeros(len(group), rank, w.shape[0])
        scale = w.new_zeros(len(group), 1, 1)
        for g, a in enumerate(group):
            if a in m.lora_A:
                wa, wb = m.lora_A[a].weight, m.lora_B[a].weight
                a_t[g, :, : wa.shape[0]] = wa.t()
                b_t[g, : wb.shape[1]] = wb.t()
                scale[g] = m.scaling[a]
        stacks.append((m, a_t, b_t, scale))
    return stacks


@contextlib.contextmanager
def _stacked_lora(model: Any, stacks: list[tuple[Any, torch.Tensor, torch.Tensor, torch.Tensor]]) -> Any:
    """Every row its adapter's LoRA update, as two batched matrix products per layer (``stacks`` from
    :func:`_lora_stacks`).

    Rows come in G equal blocks, block ``g`` for the group's adapter ``g`` (:data:`BASE`: none). The LoRA layers
    compute the base layer only (PEFT's adapters disabled) and a forward hook adds ``(x_g A_g^T) B_g^T ·
    scaling_g`` block by block with ``torch.bmm``. PEFT's mixed batches do the same update one adapter at a time,
    with a gather and a scatter per adapter and layer: on the demo's 13 models that bookkeeping was about 40% of a
    generation call on 2 CPU cores."""

    def hook(a_t: torch.Tensor, b_t: torch.Tensor, scale: torch.Tensor) -> Any:
        def add(_mod: Any, args: tuple[Any, ...], out: torch.Tensor) -> torch.Tensor:
            x = args[0]
            xg = x.to(a_t.dtype).reshape(a_t.shape[0], -1, x.shape[-1])
            delta = torch.bmm(torch.bmm(xg, a_t), b_t) * scale
            return out + delta.reshape(out.shape).to(out.dtype)
        return add

    handles = []
    try:
        for m, a_t, b_t, scale in stacks:
            handles.append(m.register_forward_hook(hook(a_t, b_t, scale)))
        with model.disable_adapter():
            yield
    finally:
        for h in handles:
            h.remove()


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
                      progress: Any = None, share_prefix: bool = True, sort_by_length: bool = True,
                      stack_lora: bool = True) -> dict[str | None, list[str]]:
    """The one decoding loop of :func:`generate` and :func:`generate_adapters`: ``batch_size`` prompts a batch,
    padded once, repeated for each of up to ``per_call`` adapters a call (PEFT's ``adapter_names``).
    ``adapters=None``: the model as it is (no ``adapter_names``), returned under the key None.

    The tokens that begin every prompt of a batch (the chat template's system message and user header: 24 of
    SmolLM2's 57-80 prompt tokens) are run once per adapter, and every row continues from that key/value cache
    (``share_prefix``; padding goes between the prefix and each row's own tokens). Greedy replies equal those of
    plain left padding up to float rounding (``tests/test_generation.py``). Batches hold prompts of similar token
    length (``sort_by_length``; replies come back in the prompts' order), so they pad less. With plain LoRA
    adapters each row's update is added by two batched matrix products per layer (``stack_lora``,
    :func:`_stacked_lora`) instead of PEFT's mixed batches; the replies are the same."""
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
    vanilla = _vanilla_lora_layers(model, [a for a in names if a is not None]) if adapters is not None else None
    stacked = vanilla if stack_lora else None
    # PEFT's mixed batches refuse LoRA variants (DoRA): such adapters answer one at a time, the same replies.
    alone = adapters is not None and vanilla is None
    groups = [[a] for a in names] if alone else _equal_groups(names, per_call)
    mixed = adapters is not None and stacked is None and not alone  # PEFT's mixed batches route the rows
    # The stacked adapters of each group, built once for every batch the group answers.
    stacks = [_lora_stacks(stacked, g) for g in groups] if stacked is not None else None
    active = getattr(model, "active_adapter", None) if alone else None
    try:
        for start in range(0, len(order), batch_size):
            idx = order[start: start + batch_size]
            rows = [tokens[i] for i in idx]
            k = _common_prefix(rows) if share_prefix else 0
            k = k if k >= MIN_SHARED_PREFIX else 0
            enc = _batch_inputs(rows, k, pad_id, device)
            n = len(rows)
            for gi, group in enumerate(groups):
                batch: dict[str, Any] = ({name: v.repeat(len(group), 1) for name, v in enc.items()}
                                         if len(group) > 1 else dict(enc))
                route = {"adapter_names": [a for a in group for _ in range(n)]} if mixed else {}
                rows_ctx: Any = contextlib.nullcontext()
                if stacks is not None:
                    rows_ctx = _stacked_lora(model, stacks[gi])
                elif alone and group[0] == BASE:
                    rows_ctx = model.disable_adapter()
                elif alone:
                    model.set_adapter(group[0])
                with rows_ctx:
                    if k:  # the shared prefix once per adapter, its cache repeated for the adapter's rows
                        pre = enc["input_ids"][:1, :k].repeat(len(group), 1)
                        head = {"adapter_names": list(group)} if mixed else {}
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
        if active is not None:
            model.set_adapter(active)
    return {a: [r[i] for i in range(len(tokens))] for a, r in replies.items()}
