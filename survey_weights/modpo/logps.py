"""One tokenisation path for (prompt, response) sequences and summed response log-probabilities.

Training, the reference pass and generation all format prompts with :func:`format_prompt`, so the policy
sees the same tokens everywhere. A response is tokenised separately from its prompt and EOS is appended.
"""

from __future__ import annotations

import copy
import functools
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from .._util.progress import tqdm

__all__ = [
    "format_prompt",
    "encode_sequences",
    "collate",
    "sequence_logps",
    "compute_logps",
    "compute_logps_by_prompt",
    "shared_prompt_logps",
    "Encoded",
]


def format_prompt(tokenizer: Any, prompt: str, *, use_chat_template: bool = True) -> str:
    """Prompt text as the model sees it: the chat template (user turn + generation prompt) when the
    tokenizer has one and ``use_chat_template``; otherwise ``prompt`` followed by a newline."""
    if use_chat_template and getattr(tokenizer, "chat_template", None):
        return tokenizer.apply_chat_template(
            [{"role": "user", "content": prompt}], tokenize=False, add_generation_prompt=True
        )
    return prompt if prompt.endswith("\n") else prompt + "\n"


@dataclass(frozen=True)
class Encoded:
    """Token ids of sequences and the number of (masked) prompt tokens at the start of each."""

    input_ids: tuple[tuple[int, ...], ...]
    prompt_lens: tuple[int, ...]

    def __len__(self) -> int:
        return len(self.input_ids)

    @functools.cached_property
    def shared_prefix(self) -> int:
        """Tokens that every prompt here begins with, each prompt keeping at least one of its own (0 with fewer
        than two distinct prompts): the chat template's system message and user header, 24 tokens for SmolLM2.
        Every pass over these sequences computes them once and continues each prompt from there, so all passes
        (reference, training, evaluation) split a prompt at the same place."""
        prompts = list({s[:p] for s, p in zip(self.input_ids, self.prompt_lens) if p > 0})
        return _common_prefix(prompts) if len(prompts) > 1 else 0

    def response_lengths(self) -> np.ndarray:
        """Response tokens of each sequence (everything after its prompt), shape (n,), int."""
        return np.array([len(s) - p for s, p in zip(self.input_ids, self.prompt_lens)], dtype=np.int64)


def encode_sequences(
    tokenizer: Any,
    prompts: Sequence[str],
    responses: Sequence[str],
    *,
    max_length: int,
    max_prompt_length: int,
    use_chat_template: bool = True,
) -> Encoded:
    """Tokenise (prompt, response) pairs as prompt ids + response ids + EOS.

    The prompt keeps its last ``max_prompt_length`` tokens; the response is cut to fit ``max_length`` (EOS
    kept only when it fits).
    """
    texts = [format_prompt(tokenizer, p, use_chat_template=use_chat_template) for p in prompts]
    p_ids = tokenizer(texts, add_special_tokens=False)["input_ids"]
    r_ids = tokenizer(list(responses), add_special_tokens=False)["input_ids"]
    eos = tokenizer.eos_token_id
    if eos is None:
        raise ValueError(
            "The tokenizer has no `eos_token_id`; set one (MODPO appends EOS to responses)."
        )
    ids_out, lens = [], []
    for p, r in zip(p_ids, r_ids):
        p = list(p)[-max_prompt_length:]
        r = list(r) + [eos]
        r = r[: max(1, max_length - len(p))]
        ids_out.append(tuple(p + r))
        lens.append(len(p))
    return Encoded(tuple(ids_out), tuple(lens))


def check_pair_tokens(tokenizer: Any, frame: Any, *, max_length: int, max_prompt_length: int,
                      use_chat_template: bool = True) -> None:
    """Refuse pairs whose chosen and rejected replies are the same token sequence, and warn when truncation to
    ``max_length`` removes the difference (such a pair cannot teach anything: its DPO/MODPO gradient is zero).

    ``frame``: preference pairs (``prompt, chosen, rejected`` and optional ``pair_id`` / ``prompt_id``).
    """
    import warnings

    from ..exceptions import DataRecodeWarning

    chosen = tokenizer(list(frame["chosen"]), add_special_tokens=False)["input_ids"]
    rejected = tokenizer(list(frame["rejected"]), add_special_tokens=False)["input_ids"]
    enc = encode_sequences(tokenizer, list(frame["prompt"]) * 2, list(frame["chosen"]) + list(frame["rejected"]),
                           max_length=max_length, max_prompt_length=max_prompt_length,
                           use_chat_template=use_chat_template)
    n = len(frame)
    ids = frame["pair_id"] if "pair_id" in frame.columns and frame["pair_id"].notna().all() else \
        [f"row {i}" for i in range(n)]
    same = [i for i in range(n) if list(chosen[i]) == list(rejected[i])]
    if same:
        raise ValueError(f"{len(same)} preference pair(s) have the same chosen and rejected reply after "
                         f"tokenisation (pairs {', '.join(str(ids[i]) for i in same[:5])}); they carry no preference. "
                         "Fix: drop them or correct the replies.")
    cut = [i for i in range(n) if enc.input_ids[i] == enc.input_ids[n + i]]
    if cut:
        warnings.warn(f"Truncation to max_length={max_length} tokens removes the difference between chosen and "
                      f"rejected in {len(cut)} of {n} pair(s) (pairs {', '.join(str(ids[i]) for i in cut[:5])}); they "
                      "will not move the adapter. Fix: raise max_length (or max_prompt_length), or shorten the "
                      "shared start of the replies.", DataRecodeWarning, stacklevel=3)


def collate(
    enc: Encoded, indices: Sequence[int], *, pad_id: int, device: torch.device | str | None = None
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Right-pad sequences ``indices`` of ``enc``.

    Returns
    -------
    input_ids, attention_mask, labels : LongTensor, shape (n, T)
        ``labels`` equals ``input_ids`` on response tokens and -100 on prompt and padding.
    """
    seqs = [enc.input_ids[i] for i in indices]
    width = max(len(s) for s in seqs)
    ids = torch.full((len(seqs), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(seqs), width), dtype=torch.long)
    labels = torch.full((len(seqs), width), -100, dtype=torch.long)
    for row, (i, s) in enumerate(zip(indices, seqs)):
        n = len(s)
        ids[row, :n] = torch.tensor(s, dtype=torch.long)
        mask[row, :n] = 1
        labels[row, enc.prompt_lens[i] : n] = ids[row, enc.prompt_lens[i] : n]
    if device is not None:
        ids, mask, labels = ids.to(device), mask.to(device), labels.to(device)
    return ids, mask, labels


def sequence_logps(
    model: Any, input_ids: torch.Tensor, attention_mask: torch.Tensor, labels: torch.Tensor
) -> torch.Tensor:
    """Summed log-probability of the labelled (response) tokens of each sequence.

    Parameters
    ----------
    model : causal LM
    input_ids, attention_mask, labels : LongTensor, shape (n, T)

    Returns
    -------
    Tensor, shape (n,), float32
        ``Σ_t log π(y_t | x, y_<t)`` over tokens whose label is not -100.
    """
    logits = model(input_ids=input_ids, attention_mask=attention_mask, use_cache=False).logits
    logits = logits[:, :-1, :].float()
    targets = labels[:, 1:]
    mask = targets != -100
    safe = targets.masked_fill(~mask, 0)
    token_logps = torch.gather(logits.log_softmax(-1), 2, safe.unsqueeze(-1)).squeeze(-1)
    return (token_logps * mask).sum(-1)


@torch.no_grad()
def compute_logps(
    model: Any,
    enc: Encoded,
    indices: Sequence[int] | None = None,
    *,
    pad_id: int,
    batch_size: int = 16,
    device: torch.device | str | None = None,
    progress: bool = False,
    desc: str = "log-probs",
) -> torch.Tensor:
    """Summed response log-probs (no gradient, eval mode) of ``enc[indices]`` in float32 on CPU, shape (n,)."""
    idx = list(range(len(enc))) if indices is None else list(indices)
    was_training = model.training
    model.eval()
    out = []
    try:
        for start in tqdm(
            range(0, len(idx), batch_size), desc=desc, disable=not progress, leave=False
        ):
            chunk = idx[start : start + batch_size]
            ids, mask, labels = collate(enc, chunk, pad_id=pad_id, device=device)
            out.append(sequence_logps(model, ids, mask, labels).float().cpu())
    finally:
        model.train(was_training)
    return torch.cat(out) if out else torch.zeros(0)


def _unwrapped(model: Any) -> Any:
    """The causal LM under DDP (``.module``) and PEFT (``get_base_model``) wrappers."""
    while hasattr(model, "module") and not hasattr(model, "get_base_model"):
        model = model.module
    return model.get_base_model() if hasattr(model, "get_base_model") else model


def _forward_params(model: Any) -> Any:
    """The parameter names of the causal LM's ``forward`` (under its wrappers)."""
    import inspect

    return inspect.signature(_unwrapped(model).forward).parameters


def _cache_kwarg(model: Any) -> str:
    """The forward keyword of the key/value cache: ``cache`` (transformers >= 5) or ``past_key_values``."""
    return "cache" if "cache" in _forward_params(model) else "past_key_values"


def _keeps_logits(model: Any) -> bool:
    """Whether the model's forward takes ``logits_to_keep`` (compute the LM head at chosen positions only)."""
    return "logits_to_keep" in _forward_params(model)


def _prompt_groups(enc: Encoded, idx: Sequence[int]) -> dict[tuple[int, ...], list[int]]:
    """Positions in ``idx`` grouped by their sequence's prompt tokens (first-seen order)."""
    groups: dict[tuple[int, ...], list[int]] = {}
    for pos, i in enumerate(idx):
        groups.setdefault(enc.input_ids[i][: enc.prompt_lens[i]], []).append(pos)
    return groups


MIN_SHARED_PREFIX = 4
"""Shortest token prefix common to every prompt that :func:`_prompt_pass` computes once for all of them."""


def _prompt_pass(model: Any, prompts: Sequence[tuple[int, ...]], *, pad_id: int, device: Any, shared: int = 0
                 ) -> tuple[torch.Tensor, Any, torch.Tensor, torch.Tensor]:
    """One forward pass over right-padded ``prompts`` (B of them). With ``shared`` (the sequences'
    :attr:`Encoded.shared_prefix`; used from :data:`MIN_SHARED_PREFIX` tokens), that many leading tokens, common
    to every prompt, run first, once, and their key/value cache is copied to every row; the rest of each prompt
    continues it.

    Returns ``(first, cache, prompt_mask, prompt_lens)``: ``first`` (B, V) float32 log-probs of the token after each
    prompt (the LM head runs at those positions only where the model allows), the key/value cache, the (B, P) mask
    and the (B,) lengths.
    """
    b = len(prompts)
    key = _cache_kwarg(model)
    cache, head = None, 0
    if shared >= MIN_SHARED_PREFIX:  # e.g. the chat template's system message: computed once, not B times
        head = shared
        pre = torch.tensor([prompts[0][:head]], dtype=torch.long, device=device)
        cache = _cache_of(model(input_ids=pre, attention_mask=torch.ones_like(pre), use_cache=True,
                                **({"logits_to_keep": 1} if _keeps_logits(model) else {})), key)
        cache.reorder_cache(torch.zeros(b, dtype=torch.long, device=device))  # one copy per prompt
    tails = [p[head:] for p in prompts]
    width = max(len(t) for t in tails)
    ids = torch.full((b, width), pad_id, dtype=torch.long)
    mask = torch.zeros((b, head + width), dtype=torch.long)
    mask[:, :head] = 1
    for row, t in enumerate(tails):
        ids[row, : len(t)] = torch.tensor(t, dtype=torch.long)
        mask[row, head : head + len(t)] = 1
    ids, mask = ids.to(device), mask.to(device)
    lens = mask.sum(1)
    last = lens - 1 - head
    kw: dict[str, Any] = {}
    if _keeps_logits(model):
        keep, last = torch.unique(last, return_inverse=True)  # LM head at the distinct last positions only
        kw["logits_to_keep"] = keep
    if cache is not None:
        kw[key] = cache
        kw["position_ids"] = head + torch.arange(width, device=ids.device)[None, :].expand(b, -1)
    out = model(input_ids=ids, attention_mask=mask, use_cache=True, **kw)
    first = out.logits[torch.arange(b, device=ids.device), last].float().log_softmax(-1)
    return first, _cache_of(out, key), mask, lens


def _cache_of(out: Any, key: str) -> Any:
    """The key/value cache a forward pass returned (under ``key``, else its second output)."""
    return out.get(key) if hasattr(out, "get") and out.get(key) is not None else out[1]


def _common_prefix(prompts: Sequence[tuple[int, ...]]) -> int:
    """Length of the token prefix every prompt shares, leaving each prompt at least one token of its own."""
    first, n = prompts[0], min(len(p) for p in prompts) - 1
    for q in prompts[1:]:
        k = 0
        while k < n and q[k] == first[k]:
            k += 1
        n = k
    return max(n, 0)


def _response_pass(model: Any, responses: Sequence[tuple[int, ...]], group: torch.Tensor, first: torch.Tensor,
                   cache: Any, prompt_mask: torch.Tensor, prompt_lens: torch.Tensor, *, pad_id: int) -> torch.Tensor:
    """Summed log-probs, shape (k,), of ``responses`` (k, each at least one token) continuing prompt ``group[j]`` of
    :func:`_prompt_pass` (``cache`` is consumed: reordered to the k rows and extended)."""
    k, width = len(responses), max(len(r) for r in responses)
    dev = first.device
    ids = torch.full((k, width), pad_id, dtype=torch.long)
    rmask = torch.zeros((k, width), dtype=torch.long)
    for row, r in enumerate(responses):
        ids[row, : len(r)] = torch.tensor(r, dtype=torch.long)
        rmask[row, : len(r)] = 1
    ids, rmask, group = ids.to(dev), rmask.to(dev), group.to(dev)
    total = first[group, ids[:, 0]]
    if width == 1:
        return total
    cache.reorder_cache(group)
    attn = torch.cat([prompt_mask[group], rmask], 1)[:, :-1]
    pos = prompt_lens[group][:, None] + torch.arange(width - 1, device=dev)[None, :]
    logits = model(input_ids=ids[:, :-1], attention_mask=attn, position_ids=pos, use_cache=True,
                   **{_cache_kwarg(model): cache}).logits.float()                      # (k, width - 1, V)
    tok = torch.gather(logits, 2, ids[:, 1:].unsqueeze(-1)).squeeze(-1) - logits.logsumexp(-1)
    return total + (tok * rmask[:, 1:]).sum(-1)


def shared_prompt_logps(model: Any, enc: Encoded, indices: Sequence[int], *, pad_id: int,
                        device: torch.device | str | None = None) -> torch.Tensor:
    r"""Summed response log-probs of sequences ``enc[indices]`` in one prompt pass and one or two response
    passes, each distinct prompt computed once (a pair's chosen and rejected reply share theirs; the prefix common
    to every prompt, :attr:`Encoded.shared_prefix`, once for the batch); differentiable.

    Equal to :func:`sequence_logps` on the collated batch up to float rounding, at roughly
    ``(prompt + 2 response) / (2 (prompt + response))`` of its cost for pairs (the LM head also skips prompt
    positions). The replies, shortest first, go through two response passes where that pads at least 10% fewer
    tokens (:func:`_split_point`; one pass under DistributedDataParallel, whose processes must make the same calls).
    Sequences with no prompt token fall back to :func:`sequence_logps`.

    Returns
    -------
    Tensor, shape (len(indices),), float32, in the order of ``indices``
    """
    idx = list(indices)
    groups = _prompt_groups(enc, idx)
    dev = device if device is not None else next(model.parameters()).device
    if () in groups or not idx:
        return sequence_logps(model, *collate(enc, idx, pad_id=pad_id, device=dev))
    prompts = list(groups)
    first, cache, pmask, plens = _prompt_pass(model, prompts, pad_id=pad_id, device=dev, shared=enc.shared_prefix)
    reply_len = [len(enc.input_ids[i]) - enc.prompt_lens[i] for i in idx]
    rows = [(g, pos) for g, members in enumerate(groups.values()) for pos in members]
    rows.sort(key=lambda r: reply_len[r[1]])  # shortest reply first
    cut = 0 if _synchronised(model) else _split_point([reply_len[pos] for _, pos in rows])
    parts = [rows[:cut], rows[cut:]] if cut else [rows]
    vals, order = [], []
    for j, part in enumerate(parts):
        group = torch.tensor([g for g, _ in part], dtype=torch.long)
        resp = [enc.input_ids[idx[pos]][enc.prompt_lens[idx[pos]]:] for _, pos in part]
        c = cache if j == len(parts) - 1 else _fork_cache(cache)
        vals.append(_response_pass(model, resp, group, first, c, pmask, plens, pad_id=pad_id))
        order += [pos for _, pos in part]
    out = torch.cat(vals)
    inv = torch.empty(len(idx), dtype=torch.long, device=out.device)
    inv[torch.tensor(order, dtype=torch.long, device=out.device)] = torch.arange(len(idx), device=out.device)
    return out[inv]


def _synchronised(model: Any) -> bool:
    """Whether ``model`` is wrapped for data-parallel training (DistributedDataParallel): each of its forward calls
    is a collective step, so every process must make the same number of them - training's replies then go through
    one response pass whatever a process's own batch looks like (the shared-prefix pass depends on the encoded
    sequences only, the same on every process)."""
    return isinstance(model, torch.nn.parallel.DistributedDataParallel)


def _split_point(lens: Sequence[int], min_saving: float = 0.1) -> int:
    """Where to cut replies sorted by length (``lens`` ascending) into two response passes, each padded to its own
    longest reply: the cut that computes the fewest padded tokens, or 0 (one pass) when it saves less than
    ``min_saving`` of the one pass's tokens. On the bundled training pairs (8 pairs a step) padding fell from 42%
    of the reply tokens computed to 25% (``docs/design.md``, "Log-prob passes")."""
    n = len(lens)
    if n < 2:
        return 0
    one = n * lens[-1]
    best, cut = one, 0
    for k in range(1, n):
        t = k * lens[k - 1] + (n - k) * lens[-1]
        if t < best:
            best, cut = t, k
    return cut if one - best >= min_saving * one else 0


def _fork_cache(cache: Any) -> Any:
    """A copy of a key/value cache that :func:`_response_pass` may reorder and extend while ``cache`` stays as it
    is: the cached tensors are shared, not copied (reordering and extending replace them), so a cache that carries
    a gradient can be forked too."""
    new = copy.copy(cache)
    if hasattr(cache, "layers"):  # transformers >= 5: one object per layer holding .keys / .values
        new.layers = [copy.copy(layer) for layer in cache.layers]
    elif hasattr(cache, "key_cache") and hasattr(cache, "value_cache"):  # transformers 4.x: lists of tensors
        new.key_cache, new.value_cache = list(cache.key_cache), list(cache.value_cache)
    else:
        return copy.deepcopy(cache)
    return new


@torch.no_grad()
def compute_logps_by_prompt(
    model: Any,
    enc: Encoded,
    indices: Sequence[int] | None = None,
    *,
    pad_id: int,
    batch_size: int = 8,
    device: torch.device | str | None = None,
    progress: bool = False,
    desc: str = "log-probs",
    prompts_per_pass: int = 8,
) -> torch.Tensor:
    r"""The summed response log-probs of :func:`compute_logps`, computing each distinct prompt only once.

    Sequences whose prompt tokens are identical (the K candidates of one prompt, or a pair's chosen and rejected
    reply) share one forward pass over the prompt: up to ``prompts_per_pass`` distinct prompts go through the model
    together (right-padded), and their key/value cache is reordered to the replies, scored in chunks of
    ``batch_size`` rows, shortest replies first (so a chunk pads little). The LM head runs only at each prompt's
    last position, and a sequence that occurs more than once is scored once. The result equals
    :func:`compute_logps` up to float rounding, at roughly ``(prompt + K * response) / (K * (prompt + response))``
    of its cost.

    .. math:: \log\pi(y|x) = \sum_{t} \log\pi(y_t \mid x, y_{<t})

    Returns
    -------
    Tensor, shape (n,), float32 on CPU
        In the order of ``indices`` (default every sequence of ``enc``).
    """
    idx = list(range(len(enc))) if indices is None else list(indices)
    first_of: dict[tuple[int, ...], int] = {}
    src = [first_of.setdefault(enc.input_ids[i], pos) for pos, i in enumerate(idx)]
    if len(first_of) < len(idx):  # the same sequence more than once (pairs of several criteria on one comparison)
        uniq = sorted(first_of.values())
        vals = compute_logps_by_prompt(model, enc, [idx[p] for p in uniq], pad_id=pad_id, batch_size=batch_size,
                                       device=device, progress=progress, desc=desc, prompts_per_pass=prompts_per_pass)
        where = {p: k for k, p in enumerate(uniq)}
        return vals[[where[p] for p in src]]
    out = torch.zeros(len(idx), dtype=torch.float32)
    groups = _prompt_groups(enc, idx)
    if () in groups:  # no prompt token to condition on: the plain path
        members = groups.pop(())
        out[members] = compute_logps(model, enc, [idx[m] for m in members], pad_id=pad_id, batch_size=batch_size,
                                     device=device)
    dev = device if device is not None else next(model.parameters()).device
    items = sorted(groups.items(), key=lambda kv: len(kv[0]))  # prompts of similar length share a pass
    was_training = model.training
    model.eval()
    try:
        bar = tqdm(total=len(items), desc=desc, disable=not progress, leave=False)
        for start in range(0, len(items), max(1, prompts_per_pass)):
            batch = items[start : start + max(1, prompts_per_pass)]
            first, cache, pmask, plens = _prompt_pass(model, [p for p, _ in batch], pad_id=pad_id, device=dev,
                                                      shared=enc.shared_prefix)
            rows = [(g, m) for g, (_, members) in enumerate(batch) for m in members]
            # replies of similar length share a chunk: on the bundled pool, padding to the chunk's longest reply was
            # 41% of the response tokens computed in first-seen order and 15% sorted (docs/design.md, "Log-prob passes")
            rows.sort(key=lambda r: len(enc.input_ids[idx[r[1]]]) - enc.prompt_lens[idx[r[1]]])
            for s in range(0, len(rows), batch_size):
                chunk = rows[s : s + batch_size]
                resp = [enc.input_ids[idx[m]][enc.prompt_lens[idx[m]]:] for _, m in chunk]
                group = torch.tensor([g for g, _ in chunk], dtype=torch.long)
                last = s + batch_size >= len(rows)
                vals = _response_pass(model, resp, group, first, cache if last else _fork_cache(cache), pmask,
                                      plens, pad_id=pad_id)
                out[[m for _, m in chunk]] = vals.cpu()
            bar.update(len(batch))
        bar.close()
    finally:
        model.train(was_training)
    return out
