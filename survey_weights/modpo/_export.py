r"""A conditioned run at a fixed weight vector as one plain PEFT LoRA: stack the factors with their scales.

For every LoRA-targeted layer with components ``j = 0..J-1`` (the shared LoRA and the criteria with weight > 0),
scales ``s_j`` (1 for the shared LoRA, ``w_c`` for criterion ``c``), rank ``r`` and ``lora_alpha`` ``α``:

.. math::
    \Delta W = \sum_j s_j \frac{\alpha}{r} B_j A_j = B_{cat} A_{cat},\quad
    B_{cat} = [B_0 \cdots B_{J-1}]\ (d_{out} \times rJ),\quad
    A_{cat} = \begin{bmatrix} s_0 \frac{\alpha}{r} A_0 \\ \vdots \\ s_{J-1} \frac{\alpha}{r} A_{J-1}\end{bmatrix}
    \ (rJ \times d_{in}),

saved with rank ``rJ`` and ``lora_alpha = rJ`` (PEFT's scaling 1). This is PEFT's
``add_weighted_adapter(..., combination_type="cat")``, done on the saved tensors so no model is loaded.
"""

from __future__ import annotations

import dataclasses
import json
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch

from ._resume import PROFILE_FILE, _finish_dir

__all__ = ["load_component", "stack_components", "write_adapter"]

_WEIGHTS = "adapter_model.safetensors"


def _check_config(cfg: Any, ref: Any, where: Any) -> None:
    if getattr(cfg, "use_dora", False) or getattr(cfg, "use_rslora", False) or cfg.rank_pattern or cfg.alpha_pattern:
        raise ValueError(f"A component LoRA of {where} uses DoRA, rsLoRA or per-module ranks; a conditioned run's "
                         "components are plain LoRAs. Fix: export from a run written by train_conditioned.")
    if (cfg.r, cfg.lora_alpha, sorted(cfg.target_modules)) != (ref.r, ref.lora_alpha, sorted(ref.target_modules)):
        raise ValueError(f"A component LoRA of {where} has another rank, alpha or target modules than the shared "
                         "one. Fix: export from an unmodified run directory.")


def load_component(path: str | Path) -> tuple[Any, dict[str, torch.Tensor]]:
    """``(LoraConfig, state dict)`` of a saved PEFT LoRA directory."""
    from peft import LoraConfig
    from safetensors.torch import load_file

    return LoraConfig.from_pretrained(str(path)), load_file(str(Path(path) / _WEIGHTS))


def stack_components(components: Sequence[tuple[Any, Mapping[str, torch.Tensor], float]], *, where: Any = "the run"
                     ) -> tuple[dict[str, torch.Tensor], Any]:
    """The stacked LoRA ``(state dict, LoraConfig)`` of ``components``: (LoraConfig, state dict, scale ``s_j``) of
    each (:func:`load_component`).

    Returns
    -------
    state : dict str -> Tensor, float32
        PEFT's saved keys (``...<module>.lora_A.weight`` shape (rJ, d_in), ``...lora_B.weight`` shape (d_out, rJ)).
    config : peft.LoraConfig
        The first component's config with ``r = lora_alpha = rJ``.

    Raises
    ------
    ValueError
        Components that are not plain, mutually compatible LoRAs, or that hold other tensors.
    """
    cfgs = [c for c, _, _ in components]
    states = [st for _, st, _ in components]
    for c in cfgs:
        _check_config(c, cfgs[0], where)
    r, alpha = cfgs[0].r, cfgs[0].lora_alpha
    keys = sorted(states[0])
    if any(sorted(st) != keys for st in states[1:]):
        raise ValueError(f"The component LoRAs of {where} do not adapt the same modules. Fix: export from an "
                         "unmodified run directory.")
    out: dict[str, torch.Tensor] = {}
    for ka in keys:
        if ka.endswith("lora_B.weight"):
            continue
        if not ka.endswith("lora_A.weight"):
            raise ValueError(f"Cannot stack tensor {ka!r}: only LoRA A/B weights of linear layers are supported.")
        kb = ka[: -len("lora_A.weight")] + "lora_B.weight"
        a = [st[ka].float() for st in states]
        if any(t.ndim != 2 for t in a):
            raise ValueError(f"Cannot stack {ka!r}: only LoRA on linear layers (2-d factors) is supported.")
        out[ka] = torch.cat([(float(sc) * alpha / r) * t for t, (_, _, sc) in zip(a, components)], 0).contiguous()
        out[kb] = torch.cat([st[kb].float() for st in states], 1).contiguous()
    rank = r * len(components)
    return out, dataclasses.replace(cfgs[0], r=rank, lora_alpha=rank)


def write_adapter(dest: Path, state: Mapping[str, torch.Tensor], lora_config: Any, record: Mapping[str, Any],
                  *, base_model: str | None = None) -> Path:
    """Write a PEFT LoRA directory (``adapter_config.json``, ``adapter_model.safetensors``) and ``profile.json``
    (last) into a ``.partial-*`` directory beside ``dest``, then rename it onto ``dest``. Returns ``dest``."""
    from safetensors.torch import save_file

    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".partial-{dest.name}-", dir=dest.parent))
    try:
        tmp.chmod(0o755)
        cfg = dataclasses.replace(lora_config, base_model_name_or_path=base_model or lora_config.base_model_name_or_path)
        cfg.save_pretrained(str(tmp))
        save_file(dict(state), str(tmp / _WEIGHTS), metadata={"format": "pt"})
        (tmp / PROFILE_FILE).write_text(json.dumps(record, indent=2))  # written last: marks the dir finished
        _finish_dir(tmp, dest)
    except BaseException:
        import shutil

        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return dest
