"""One tokenisation path for (prompt, response) sequences and summed response log-probabilities.

Training, the reference pass and generation all format prompts with :func:`format_prompt`, so the policy
sees the same tokens everywhere. A response is tokenised separately from its prompt and EOS is appended.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch

from .._util.progress import tqdm

__all__ = [
    "format_prompt",
    "encode_sequences",
    "collate",
    "sequence_logps",
    "compute_logps",
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
