"""Parameter-merging baselines for per-criterion LoRA adapters (rewarded / personalized soups).

* ``method="exact"``: ``ΔW = Σ_i w_i B_i A_i s_i`` exactly, via PEFT ``add_weighted_adapter(...,
  combination_type="cat")`` (rank = Σ r_i).
* ``method="ab_average"``: the papers' recipe, ``A = Σ w_i A_i`` and ``B = Σ w_i B_i`` separately (rank r).
  This is **not** the weighted sum of updates: it adds cross terms ``w_i w_j B_i A_j``.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

__all__ = ["load_adapters", "merge_adapters", "lora_deltas"]

_METHODS = ("exact", "ab_average")


def load_adapters(
    base_model: Any,
    paths: Sequence[str | os.PathLike[str]] | dict[str, Any],
    *,
    is_trainable: bool = False,
) -> Any:
    """Load saved adapters into one PeftModel (one copy of the base).

    Parameters
    ----------
    base_model : transformers.PreTrainedModel
    paths : sequence of paths or mapping adapter name -> path
        With a sequence, adapter names are the directory names.

    Returns
    -------
    peft.PeftModel
        The first adapter is active.
    """
    from peft import PeftModel

    items = list(paths.items()) if isinstance(paths, dict) else [(Path(p).name, p) for p in paths]
    if not items:
        raise ValueError("`paths` is empty. Fix: pass at least one adapter directory.")
    names = [n for n, _ in items]
    if len(set(names)) != len(names):
        raise ValueError(
            f"Adapter names must be unique. Got {names}. Fix: pass a mapping name -> path."
        )
    model = PeftModel.from_pretrained(
        base_model, str(items[0][1]), adapter_name=items[0][0], is_trainable=is_trainable
    )
    for name, path in items[1:]:
        model.load_adapter(str(path), adapter_name=name, is_trainable=is_trainable)
    model.set_adapter(items[0][0])
    return model


def merge_adapters(
    model: Any,
    adapters: Sequence[str],
    weights: Sequence[float],
    *,
    name: str,
    method: str = "exact",
) -> Any:
    """Add adapter ``name`` that merges ``adapters`` with ``weights`` and make it active.

    Parameters
    ----------
    model : peft.PeftModel
        Holding every adapter in ``adapters`` (see :func:`load_adapters`).
    adapters : sequence of str
    weights : sequence of float
        Non-negative interpolation weights (e.g. a weight profile restricted to these criteria).
    name : str
        New adapter name; must not exist yet (PEFT silently does nothing in that case, so we raise).
    method : {"exact", "ab_average"}, default "exact"

    Returns
    -------
    peft.PeftModel
        ``model``, with ``name`` active.

    Raises
    ------
    ValueError
        Unknown method/adapter, existing ``name``, bad weights, or (``ab_average``) adapters of different
        rank, alpha or target modules.
    """
    if method not in _METHODS:
        raise ValueError(f"Unknown `method` {method!r}. Choose one of {_METHODS}.")
    cfgs = getattr(model, "peft_config", None)
    if cfgs is None:
        raise TypeError(
            "`model` must be a peft.PeftModel holding the adapters (see `load_adapters`)."
        )
    if name in cfgs:
        raise ValueError(
            f"Adapter {name!r} already exists (PEFT would silently keep the old one). "
            "Fix: choose a new `name` or `model.delete_adapter(name)` first."
        )
    unknown = [a for a in adapters if a not in cfgs]
    if unknown or not adapters:
        raise ValueError(f"Unknown adapters {unknown or list(adapters)}; loaded: {list(cfgs)}.")
    w = [float(x) for x in weights]
    if len(w) != len(adapters) or any(not x >= 0 for x in w) or not any(x > 0 for x in w):
        raise ValueError(
            f"`weights` must be {len(adapters)} non-negative numbers, not all zero. Got {list(weights)}."
        )
    if getattr(cfgs[adapters[0]], "use_rslora", False):
        raise ValueError("rsLoRA adapters are not supported by the exact merge.")
    if method == "exact":
        model.add_weighted_adapter(list(adapters), w, adapter_name=name, combination_type="cat")
        model.set_adapter(name)
        return model
    first = cfgs[adapters[0]]
    for a in adapters[1:]:
        c = cfgs[a]
        if (c.r, c.lora_alpha, set(c.target_modules)) != (
            first.r,
            first.lora_alpha,
            set(first.target_modules),
        ):
            raise ValueError(
                f"A/B averaging needs identical rank, alpha and target modules; {adapters[0]!r} and "
                f"{a!r} differ. Use method='exact'."
            )
    model.add_adapter(name, first)
    from peft.tuners.lora import LoraLayer

    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, LoraLayer) and name in module.lora_A:
                for part in ("lora_A", "lora_B"):
                    target = getattr(module, part)[name].weight
                    target.copy_(
                        sum(wi * getattr(module, part)[a].weight for a, wi in zip(adapters, w))
                    )
    model.set_adapter(name)
    return model


@torch.no_grad()
def lora_deltas(model: Any, adapter: str) -> dict[str, torch.Tensor]:
    """Weight update ``ΔW = B A · scaling`` of ``adapter`` for every LoRA-wrapped module (float32, CPU)."""
    from peft.tuners.lora import LoraLayer

    out = {}
    for mname, module in model.named_modules():
        if isinstance(module, LoraLayer) and adapter in module.lora_A:
            a = module.lora_A[adapter].weight.float()
            b = module.lora_B[adapter].weight.float()
            out[mname] = (b @ a * module.scaling[adapter]).cpu()
    if not out:
        raise ValueError(f"No LoRA module holds adapter {adapter!r}.")
    return out
