"""One tokenisation path for (prompt, response) sequences and summed response log-probabilities.

Training, the reference pass and generation all format prompts with :func:`format_prompt`, so the policy
sees the same tokens everywhere. A response is tokenised separately from its prompt and EOS is appended.
"""

from __future__ import annotations

import copy
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


def _cache_kwarg(model: Any) -> str:
    """The forward keyword of the key/value cache: ``cache`` (transformers >= 5) or ``past_key_values``."""
    import inspect

    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    return "cache" if "cache" in inspect.signature(base.forward).parameters else "past_key_values"


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
) -> torch.Tensor:
    r"""The summed response log-probs of :func:`compute_logps`, computing each distinct prompt only once.

    Sequences whose prompt tokens are identical (the K candidates of one prompt, or a pair's chosen and rejected
    reply) share one forward pass over the prompt; its key/value cache is repeated for the responses, scored in
    chunks of ``batch_size``. The result equals :func:`compute_logps` up to float rounding, at roughly
    ``(prompt + K * response) / (K * (prompt + response))`` of its cost.

    .. math:: \log\pi(y|x) = \sum_{t} \log\pi(y_t \mid x, y_{<t})

    Returns
    -------
    Tensor, shape (n,), float32 on CPU
        In the order of ``indices`` (default every sequence of ``enc``).
    """
    idx = list(range(len(enc))) if indices is None else list(indices)
    out = torch.zeros(len(idx), dtype=torch.float32)
    groups: dict[tuple[int, ...], list[int]] = {}
    for pos, i in enumerate(idx):
        groups.setdefault(enc.input_ids[i][: enc.prompt_lens[i]], []).append(pos)
    kw = _cache_kwarg(model)
    was_training = model.training
    model.eval()
    try:
        for prompt, members in tqdm(list(groups.items()), desc=desc, disable=not progress, leave=False):
            if not prompt:  # no prompt token to condition on: the plain path
                out[members] = compute_logps(model, enc, [idx[m] for m in members], pad_id=pad_id,
                                             batch_size=batch_size, device=device)
                continue
            p_ids = torch.tensor([prompt], dtype=torch.long, device=device)
            first = model(input_ids=p_ids, use_cache=True)
            last = first.logits[0, -1].float().log_softmax(-1)  # (V,): predicts each response's first token
            cache = first.get(kw) if hasattr(first, "get") and first.get(kw) is not None else first[1]
            for s in range(0, len(members), batch_size):
                chunk = members[s : s + batch_size]
                resp = [enc.input_ids[idx[m]][len(prompt):] for m in chunk]
                k, width = len(resp), max(len(r) for r in resp)
                ids = torch.full((k, width), pad_id, dtype=torch.long)
                rmask = torch.zeros((k, width), dtype=torch.long)
                for row, r in enumerate(resp):
                    ids[row, : len(r)] = torch.tensor(r, dtype=torch.long)
                    rmask[row, : len(r)] = 1
                ids, rmask = ids.to(last.device), rmask.to(last.device)
                total = last[ids[:, 0]]
                if width > 1:
                    past = copy.deepcopy(cache)
                    past.batch_repeat_interleave(k)
                    attn = torch.cat([torch.ones((k, len(prompt)), dtype=torch.long, device=ids.device), rmask], 1)
                    logits = model(input_ids=ids[:, :-1], attention_mask=attn[:, :-1], use_cache=True,
                                   **{kw: past}).logits.float()                       # (k, width - 1, V)
                    tok = torch.gather(logits, 2, ids[:, 1:].unsqueeze(-1)).squeeze(-1) - logits.logsumexp(-1)
                    total = total + (tok * rmask[:, 1:]).sum(-1)
                out[chunk] = total.cpu()
    finally:
        model.train(was_training)
    return out
