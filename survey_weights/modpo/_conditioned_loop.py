r"""The conditioned run's structure and step loop (:func:`~survey_weights.modpo.train_conditioned`).

Structure: on every LoRA-targeted linear layer, one shared LoRA ``(A_0, B_0)`` plus one LoRA ``(A_c, B_c)`` per
criterion, mixed by per-component scales:

.. math::
    \Delta W(w) = \Delta W_0 + \sum_c w_c\,\Delta W_c,\qquad \Delta W_j = \frac{\alpha}{r} B_j A_j,

affine in the weight vector ``w`` (shape (C,), on the simplex), so the model at a fixed ``w`` is one plain LoRA of
rank ``r·(1 + C)`` (:mod:`._export`). While training, the components are *stacked* into that one PEFT LoRA
(``A`` = the ``A_j`` one above the other, ``B`` = the ``B_j`` side by side) and a forward pre-hook on every
``lora_B`` multiplies its input by the scale of each row's component (:class:`StackedMix`): the same model and
gradients as 1 + C separate PEFT adapters, in one LoRA pass per layer instead of 1 + C (a training step of the bundled
six-criterion run took 4.8 s instead of 8.5 s on SmolLM2, 2 CPU cores). The finished run is saved as the 1 + C
component adapters (:func:`save_components`), the format every reader of a run uses.

Each step draws weight vectors (shape (m, C)); row ``j`` trains on ``batch_size / m`` pairs of its largest-weight
criterion ``k`` with the MODPO loss at ``w_j`` (``k`` first, the other positive weights as reward margins:
:func:`._loop._batch_loss`), whose optimum for every ``w`` is ``β log π_w/π_ref = Σ_c w_c r_c`` (up to a prompt-
only term).

Resume: every ``checkpoint_every`` steps the LoRA weights, optimiser, scheduler, data cursors, losses, draws and the
torch RNG state go to ``out/.checkpoint`` (written into a ``.partial-*`` directory, then renamed), so a crashed run
continues from its last checkpoint and ends with the same weights as an uninterrupted one.
"""

from __future__ import annotations

import contextlib
import json
import shutil
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .._util.progress import tqdm
from ..profiles.training_spec import TrainingSpec
from ._loop import _batch_loss, _lr_lambda, _release
from ._precompute import Shared
from ._resume import _finish_dir
from .config import MODPOConfig

__all__ = ["SHARED", "Checkpoint", "StackedMix", "adapter_names", "build_structure", "criterion_rows",
           "lora_layers", "main_index", "save_components", "set_mix", "set_scales", "step_batches", "train_structure",
           "used_rows"]

SHARED = "shared"
STACKED = "stacked"
_CKPT = ".checkpoint"


def adapter_names(n_criteria: int) -> list[str]:
    """PEFT adapter names of the structure: ``"shared"``, then ``"crit0"`` ... ``"crit{C-1}"`` in criteria order."""
    return [SHARED] + [f"crit{i}" for i in range(n_criteria)]


def main_index(w: np.ndarray) -> int:
    """The main objective of a draw ``w`` (shape (C,)): its largest weight, the first on ties (MODPO divides
    by ``w_k``, so the largest keeps the loss best conditioned)."""
    return int(np.argmax(w))


def _lora_config(cfg: MODPOConfig) -> Any:
    from peft import LoraConfig

    return LoraConfig(r=cfg.lora_r, lora_alpha=cfg.lora_alpha, lora_dropout=cfg.lora_dropout,
                      target_modules=list(cfg.target_modules), bias="none", task_type="CAUSAL_LM")


def lora_layers(peft_model: Any) -> list[Any]:
    """The ``LoraLayer`` modules of a PEFT model (where scales are set and components live)."""
    from peft.tuners.lora import LoraLayer

    return [m for m in peft_model.modules() if isinstance(m, LoraLayer)]


class StackedMix:
    """The per-component scales of the stacked training structure: one float32 vector of length ``r·(1 + C)``
    (component ``j``'s scale on its ``r`` rows), shared by a forward pre-hook on every stacked ``lora_B``."""

    def __init__(self, layers: Sequence[Any], rank: int, n_components: int) -> None:
        dev = next(iter(layers)).lora_B[STACKED].weight.device if layers else "cpu"
        self.rank, self.n_components = int(rank), int(n_components)
        self.vector = torch.ones(self.rank * self.n_components, dtype=torch.float32, device=dev)
        self.handles = [layer.lora_B[STACKED].register_forward_pre_hook(self._hook) for layer in layers]

    def _hook(self, module: Any, args: tuple[Any, ...]) -> tuple[Any, ...]:
        x = args[0]
        return (x * self.vector.to(dtype=x.dtype), *args[1:])

    def set_scales(self, scales: Sequence[float]) -> None:
        """``ΔW = Σ_j scales_j ΔW_j`` (shared component first; length 1 + C)."""
        if len(scales) != self.n_components:
            raise ValueError(f"`scales` must have {self.n_components} entries (shared LoRA first). Got {len(scales)}.")
        v = torch.tensor([float(x) for x in scales], dtype=torch.float32).repeat_interleave(self.rank)
        self.vector.copy_(v)

    def remove(self) -> None:
        """Remove the hooks (the plain stacked LoRA is left, at scale 1 for every component)."""
        for h in self.handles:
            h.remove()
        self.handles = []


def build_structure(model: Any, cfg: MODPOConfig, n_criteria: int) -> tuple[Any, list[str], StackedMix]:
    """``(peft_model, names, mix)``: the shared + per-criterion LoRAs on ``model``, stacked into one trainable PEFT
    LoRA of rank ``r·(1 + C)`` whose components ``mix`` scales (:func:`set_mix`).

    LoRA weights are initialised from ``cfg.seed`` (B = 0, so the structure starts as the base model for every w;
    ``A`` by PEFT's default initialisation, whose bound depends on the input size only, as for separate adapters).
    ``names`` are the component names the finished run is saved under (:func:`adapter_names`).
    """
    import dataclasses

    from peft import get_peft_model

    names = adapter_names(n_criteria)
    k = len(names)
    torch.manual_seed(cfg.seed)
    stacked = dataclasses.replace(_lora_config(cfg), r=cfg.lora_r * k, lora_alpha=cfg.lora_alpha * k)  # α/r kept
    peft_model = get_peft_model(model, stacked, adapter_name=STACKED)
    return peft_model, names, StackedMix(lora_layers(peft_model), cfg.lora_r, k)


def save_components(peft_model: Any, names: Sequence[str], cfg: MODPOConfig, path: str | Path) -> None:
    """Write the stacked structure's 1 + C components as PEFT adapters ``path / <name>`` (component ``j``: rows
    ``j·r .. (j+1)·r`` of the stacked ``A``, the same columns of ``B``; config rank ``r``, ``lora_alpha`` α). The
    components are added to ``peft_model`` for the write and deleted again."""
    r = cfg.lora_r
    for name in names:
        peft_model.add_adapter(name, _lora_config(cfg))
    try:
        with torch.no_grad():
            for layer in lora_layers(peft_model):
                a, b = layer.lora_A[STACKED].weight, layer.lora_B[STACKED].weight
                for j, name in enumerate(names):
                    layer.lora_A[name].weight.copy_(a[j * r : (j + 1) * r])
                    layer.lora_B[name].weight.copy_(b[:, j * r : (j + 1) * r])
        peft_model.save_pretrained(str(path), selected_adapters=list(names))
    finally:
        peft_model.base_model.set_adapter(STACKED)
        for name in names:
            peft_model.delete_adapter(name)


def set_mix(mix: StackedMix, w: Sequence[float], centre: Sequence[float] | None = None) -> None:
    """Scale the shared LoRA by 1 and criterion ``c``'s by ``w[c] - centre[c]`` (shapes (C,); ``centre`` default 0)
    in the stacked training structure, hence ``ΔW = ΔW_0 + Σ_c (w_c - centre_c) ΔW_c``."""
    c0 = np.zeros(len(w)) if centre is None else np.asarray(centre, dtype=float)
    mix.set_scales([1.0, *(float(x) - float(c) for x, c in zip(w, c0))])


def set_scales(layers: Sequence[Any], names: Sequence[str], scales: Sequence[float]) -> None:
    """PEFT's ``set_scale`` of every component on every layer of a run loaded as separate adapters:
    ``ΔW = Σ_j scales_j ΔW_j`` (shared LoRA first)."""
    for layer in layers:
        for name, s in zip(names, scales):
            layer.set_scale(name, float(s))


@dataclass
class LoopState:
    """Where the step loop stands: the next step, losses and draws so far, and each criterion's data cursor."""

    step: int
    cursors: list[int]
    losses: list[float] = field(default_factory=list)
    draws: list[list[list[float]]] = field(default_factory=list)


class Checkpoint:
    """``out/.checkpoint``: the loop's state every ``every`` steps, reused only under the same resume ``key``."""

    def __init__(self, out: Path, key: str, every: int, acc: Any) -> None:
        self.out, self.key, self.every, self.acc = out, key, every, acc
        self.dir = out / _CKPT

    def load(self, peft_model: Any, opt: Any, sched: Any) -> LoopState | None:
        """Restore the LoRA weights, optimiser, scheduler and RNG from a matching checkpoint; None without one."""
        meta = self.dir / "state.json"
        if not meta.exists() or json.loads(meta.read_text()).get("resume_key") != self.key:
            return None
        blob = torch.load(self.dir / "state.pt", map_location="cpu", weights_only=True)
        if {n for n, _ in peft_model.named_parameters() if "lora_" in n} != set(blob["lora"]):
            return None  # another structure's checkpoint: start again rather than resume from a partial copy
        with torch.no_grad():
            for name, p in peft_model.named_parameters():
                if name in blob["lora"]:
                    p.copy_(blob["lora"][name])
        opt.load_state_dict(blob["optimizer"])
        sched.load_state_dict(blob["scheduler"])
        torch.set_rng_state(blob["rng"])
        if torch.cuda.is_available() and blob.get("cuda_rng"):
            torch.cuda.set_rng_state_all(blob["cuda_rng"])
        st = json.loads((self.dir / "loop.json").read_text())
        return LoopState(st["step"], st["cursors"], st["losses"], st["draws"])

    def save(self, peft_model: Any, opt: Any, sched: Any, state: LoopState) -> None:
        """Write the checkpoint atomically (main process; every process waits)."""
        if self.acc.is_main_process:
            tmp = Path(tempfile.mkdtemp(prefix=".partial-checkpoint-", dir=self.out))
            lora = {n: p.detach().cpu().clone() for n, p in peft_model.named_parameters() if "lora_" in n}
            blob = {"lora": lora, "optimizer": opt.state_dict(), "scheduler": sched.state_dict(),
                    "rng": torch.get_rng_state(),
                    "cuda_rng": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else []}
            torch.save(blob, tmp / "state.pt")
            (tmp / "loop.json").write_text(json.dumps({"step": state.step, "cursors": state.cursors,
                                                       "losses": state.losses, "draws": state.draws}))
            (tmp / "state.json").write_text(json.dumps({"resume_key": self.key, "step": state.step}))  # last
            _finish_dir(tmp, self.dir)
        self.acc.wait_for_everyone()

    def clear(self) -> None:
        """Remove the checkpoint (after the finished run is saved)."""
        if self.acc.is_main_process:
            shutil.rmtree(self.dir, ignore_errors=True)
        self.acc.wait_for_everyone()


def step_batches(ws: np.ndarray, cursors: list[int], rows: Sequence[np.ndarray], g: int, seed: int
                 ) -> list[tuple[np.ndarray, int, np.ndarray]]:
    """The pairs of one step: for each drawn row ``w`` of ``ws`` (shape (m, C)), ``(w, k, idx)`` with ``k`` its
    main objective (:func:`main_index`) and ``idx`` (shape (g,)) the next ``g`` pair rows of criterion ``k``'s
    seeded stream (``rows[k]``: its pair rows in the frame). Advances ``cursors`` in place."""
    out = []
    for w in ws:
        k = main_index(w)
        out.append((w, k, rows[k][_take(len(rows[k]), cursors[k], g, seed=(seed, k))]))
        cursors[k] += g
    return out


def used_rows(draw: Callable[[int], np.ndarray], rows: Sequence[np.ndarray], *, total: int, batch_size: int,
              seed: int) -> np.ndarray:
    """Every pair row that ``total`` steps will train on, sorted (the plan of :func:`step_batches`, without a model):
    the reference log-probs and margins are computed for these only."""
    cursors, used = [0] * len(rows), set()
    n_all = sum(len(r) for r in rows)
    for step in range(total):
        ws = draw(step)
        for _, _, idx in step_batches(ws, cursors, rows, batch_size // len(ws), seed):
            used.update(idx.tolist())
        if len(used) == n_all:
            break
    return np.array(sorted(used), dtype=np.int64)


def criterion_rows(frame: Any, criteria: Sequence[str]) -> list[np.ndarray]:
    """Pair rows of each criterion in ``frame``, in ``criteria`` order."""
    return [np.flatnonzero((frame["criterion"] == c).to_numpy()) for c in criteria]


def train_structure(shared: Shared, *, criteria: Sequence[str], draw: Callable[[int], np.ndarray], acc: Any,
                    model: Any, cfg: MODPOConfig, total: int, checkpoint: Checkpoint,
                    save: Callable[[Any, list[str], LoopState], None], centre: np.ndarray | None = None
                    ) -> tuple[LoopState, Any]:
    """Train the structure for ``total`` steps (continuing from a matching checkpoint) and ``save`` it.

    ``centre`` (shape (C,), default 0) is subtracted from every draw in the mix (:func:`set_mix`).

    Afterwards, or when anything fails, the LoRAs are unloaded so the caller's base model is as it was.

    Returns
    -------
    state : LoopState
        Losses (mean loss per step, averaged over processes) and draws (shape (steps, m, C)) of the whole run.
    model : the plain base model (LoRA unloaded).
    """
    peft_model, names, mix = build_structure(model, cfg, len(criteria))
    try:
        state = _step_loop(acc, peft_model, mix, cfg, shared, criteria, draw, total, checkpoint, centre)
        mix.remove()
        save(peft_model, names, state)
    except BaseException:
        mix.remove()
        peft_model.unload()  # leave the caller's model as it was
        _release(acc)
        raise
    model = peft_model.unload()
    _release(acc)
    return state, model


def _step_loop(acc: Any, peft_model: Any, mix: StackedMix, cfg: MODPOConfig, shared: Shared,
               criteria: Sequence[str], draw: Callable[[int], np.ndarray], total: int,
               checkpoint: Checkpoint, centre: np.ndarray | None = None) -> LoopState:
    """AdamW on every LoRA parameter; per step, one MODPO loss per drawn row on its share of the batch."""
    params = [q for q in peft_model.parameters() if q.requires_grad]
    opt = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, _lr_lambda(cfg, total))
    rows = criterion_rows(shared.frame, criteria)
    state = checkpoint.load(peft_model, opt, sched) or LoopState(0, [0] * len(criteria))
    pmodel, opt = acc.prepare(peft_model, opt)
    pmodel.train()
    lb = cfg.batch_size // acc.num_processes
    bar = tqdm(range(state.step, total), initial=state.step, total=total, desc=f"MODPO conditioned ({len(criteria)} "
               "criteria)", disable=not (cfg.progress and acc.is_main_process))
    for step in bar:
        ws = draw(step)  # (m, C), validated
        m = len(ws)
        g, lg = cfg.batch_size // m, lb // m  # pairs per row: global, this rank
        step_loss = torch.zeros((), device=acc.device)
        for j, (w, k, idx) in enumerate(step_batches(ws, state.cursors, rows, g, cfg.seed)):
            local = idx[acc.process_index * lg : (acc.process_index + 1) * lg][:, None]  # (lg, 1)
            spec = TrainingSpec("draw", tuple(zip(criteria, map(float, w))), criteria[k])
            w_t = torch.tensor(spec.weight_vector, dtype=torch.float32, device=acc.device)  # (K,)
            set_mix(mix, w, centre)
            sync = acc.no_sync(pmodel) if j < m - 1 else contextlib.nullcontext()
            with sync:
                loss = _batch_loss(pmodel, shared, local, spec, w_t, "modpo", cfg.beta, acc.device).mean() / m
                acc.backward(loss)
            step_loss = step_loss + loss.detach()
        if cfg.max_grad_norm is not None:
            acc.clip_grad_norm_(params, cfg.max_grad_norm)
        opt.step()
        sched.step()
        opt.zero_grad(set_to_none=True)
        state.losses.append(float(acc.reduce(step_loss, reduction="mean")))
        state.draws.append(ws.tolist())
        state.step = step + 1
        bar.set_postfix(loss=f"{state.losses[-1]:.4f}")
        if state.step % checkpoint.every == 0 and state.step < total:
            checkpoint.save(peft_model, opt, sched, state)
    return state


def _take(n_items: int, start: int, count: int, *, seed: tuple[int, int]) -> np.ndarray:
    """Positions ``start .. start + count`` (shape (count,)) of the stream of seeded permutations of
    range(n_items), one per epoch (``default_rng([*seed, epoch])``): a criterion's pairs in a fixed shuffled order,
    epoch after epoch."""
    first, last = start // n_items, (start + count - 1) // n_items
    stream = np.concatenate([np.random.default_rng([*seed, e]).permutation(n_items) for e in range(first, last + 1)])
    off = start - first * n_items
    return stream[off : off + count]
