"""Finished adapters on disk: the ``profile.json`` record, its resume key, and the atomic save.

An adapter directory counts as finished when it holds ``profile.json``, which is written last into a temporary
``.partial-*`` directory that is then renamed into place. A crashed run leaves only ``.partial-*`` directories
(removed at the next start) or a directory without ``profile.json`` (retrained).
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
import os
import platform
import shutil
import tempfile
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from .._util.io import atomic_write_text
from ..exceptions import SettingsChangedError
from ..profiles.training_spec import TrainingSpec
from .config import MODPOConfig, RewardModelConfig

__all__ = ["LABEL_SOURCE", "PROFILE_FILE", "SCHEMA_VERSION", "adapter_record", "is_finished", "prepare_output_dir",
           "reward_sources", "rm_fingerprint", "save_adapter"]

PROFILE_FILE = "profile.json"
SCHEMA_VERSION = 2  # 2: `provenance` (where the profile's weights came from)
# What changes the trained adapter (with MODPOConfig.training_key()); display/speed settings stay out.
_KEYED = ("objective", "weights", "criteria_order", "weight_vector", "main_objective", "data_hash",
          "reward_sources", "base_model")


def rm_fingerprint(rm: Any) -> str:
    """``rm.fingerprint()`` when it has one, else its qualified type name."""
    fp = getattr(rm, "fingerprint", None)
    if callable(fp):
        return str(fp())
    return f"{type(rm).__module__}.{getattr(rm, '__qualname__', type(rm).__qualname__)}"


#: ``reward_sources`` entry of a margin read from the pairs' own labels (``MODPOConfig(margins="labels")``).
LABEL_SOURCE = "pair labels"


def reward_sources(criteria: Sequence[str], cfg: MODPOConfig, rcfg: RewardModelConfig, given: Mapping[str, Any]
                   ) -> dict[str, Any]:
    """What each margin criterion's ``Δr_c`` comes from: :data:`LABEL_SOURCE` (``margins="labels"``), else the
    fingerprint of a given reward model or the config of one trained on the data (hence determined by it)."""
    if cfg.margins == "labels":
        return {c: LABEL_SOURCE for c in criteria}
    return {c: (rm_fingerprint(given[c]) if c in given else {"trained": rcfg.training_key()}) for c in criteria}


def adapter_record(spec: TrainingSpec, *, objective: str, cfg: MODPOConfig, rcfg: RewardModelConfig,
                   data_hash: str, given: Mapping[str, Any], base_model: str) -> dict[str, Any]:
    """The settings part of a profile's ``profile.json`` (the spec's record, the run's settings, the resume key).

    ``reward_sources`` names each margin's reward model: the fingerprint of a given one, or the config of one
    trained by :func:`~survey_weights.modpo.train_adapters` (trained on the same data, hence determined by it).
    """
    sources = reward_sources(spec.criteria[1:], cfg, rcfg, given) if objective == "modpo" else {}
    rec = {"schema_version": SCHEMA_VERSION, **spec.to_record(objective), "objective": objective, "beta": cfg.beta,
           "seed": cfg.seed, "config": cfg.to_dict(), "data_hash": data_hash, "reward_sources": sources,
           "base_model": base_model}
    keyed = {k: rec[k] for k in _KEYED}
    keyed["config"] = cfg.training_key()
    rec["resume_key"] = hashlib.sha256(json.dumps(keyed, sort_keys=True).encode()).hexdigest()
    return rec


def prepare_output_dir(output_dir: str | os.PathLike[str], acc: Any) -> Path:
    """Create ``output_dir`` and remove a crashed run's half-written ``.partial-*`` adapters (main process)."""
    out = Path(output_dir)
    if acc.is_main_process:
        out.mkdir(parents=True, exist_ok=True)
        for stale in out.glob(".partial-*"):
            shutil.rmtree(stale, ignore_errors=True)
    acc.wait_for_everyone()
    return out


def is_finished(record: Mapping[str, Any], out: Path, *, overwrite: bool, acc: Any) -> bool:
    """Whether ``out / record["dirname"]`` holds this adapter already (then it is reused, not retrained).

    A finished adapter with the same resume key but new, known provenance gets that provenance recorded.

    Raises
    ------
    SettingsChangedError
        The directory holds an adapter with another resume key and ``overwrite`` is False.
    """
    final = out / record["dirname"]
    pj = final / PROFILE_FILE
    if overwrite or not pj.exists():
        return False
    old = json.loads(pj.read_text())
    if old.get("resume_key") != record["resume_key"]:
        raise SettingsChangedError(
            f"{final} holds an adapter trained with other settings or data. Fix: pass "
            "overwrite=True or another `output_dir`."
        )
    prov = record["provenance"]
    if any(v is not None for v in prov.values()) and old.get("provenance") != prov and acc.is_main_process:
        atomic_write_text(pj, json.dumps(dict(old, provenance=prov), indent=2))
    return True


def _versions() -> dict[str, str]:
    out = {"python": platform.python_version()}
    for pkg in ("survey_weights", "torch", "transformers", "peft", "accelerate"):
        try:
            out[pkg] = importlib.metadata.version(pkg)
        except importlib.metadata.PackageNotFoundError:
            out[pkg] = "unknown"
    return out


def save_adapter(peft_model: Any, losses: list[float], n_pairs: int, *, record: Mapping[str, Any],
                 reward_models: Mapping[str, Any], out: Path, acc: Any) -> None:
    """Write the adapter (PEFT format) and its ``profile.json`` into a temp dir, then rename it into place.

    Only the main process writes; every process waits for it.
    """
    if acc.is_main_process:
        tmp = Path(tempfile.mkdtemp(prefix=f".partial-{record['dirname']}-", dir=out))
        tmp.chmod(0o755)
        peft_model.save_pretrained(tmp)
        rec = dict(
            record, n_pairs=int(n_pairs), steps=len(losses), num_processes=acc.num_processes,
            final_loss=losses[-1], losses=losses, versions=_versions(),
            reward_models={c: {"fingerprint": rm_fingerprint(reward_models[c]),
                               "val_accuracy": getattr(reward_models[c], "val_accuracy", None)}
                           for c in record["margin_criteria"] if c in reward_models},  # none: pair labels
            created=time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        )
        (tmp / PROFILE_FILE).write_text(json.dumps(rec, indent=2))  # written last: marks the dir finished
        _finish_dir(tmp, out / record["dirname"])
    acc.wait_for_everyone()


def _finish_dir(tmp: Path, final: Path) -> None:
    """Move a fully written adapter dir into place (atomic rename; an old one is moved aside first)."""
    if final.exists():
        trash = Path(tempfile.mkdtemp(prefix=".partial-old-", dir=final.parent))
        os.replace(final, trash / "old")
        os.replace(tmp, final)
        shutil.rmtree(trash, ignore_errors=True)
    else:
        os.replace(tmp, final)
