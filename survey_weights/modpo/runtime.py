"""Process set-up for training: torch CPU threads and the accelerate ``Accelerator``."""

from __future__ import annotations

import os
from typing import Any

import torch

__all__ = ["make_accelerator", "set_torch_threads", "torch_threads"]


def set_torch_threads(threads: int | str | None) -> int | None:
    """Set torch's intra-op CPU threads.

    Parameters
    ----------
    threads : int, "auto" or None
        None leaves torch's default (one per core). ``"auto"``: one thread when other work already keeps the
        CPU busy (1-minute load average >= 1), else torch's default. On a CPU shared with other jobs one
        thread is often several times faster: with more threads every op waits for its slowest thread, and a
        descheduled thread stalls the whole op.

    Returns
    -------
    int or None
        The thread count set (None when left alone).
    """
    if threads is None:
        return None
    if threads == "auto":
        try:
            busy = os.getloadavg()[0] >= 1.0
        except OSError:  # pragma: no cover - platforms without getloadavg
            busy = False
        if not busy:
            return None
        threads = 1
    if isinstance(threads, bool) or not isinstance(threads, int) or threads < 1:
        raise ValueError(f"`threads` must be an int >= 1, 'auto' or None. Got {threads!r}.")
    torch.set_num_threads(threads)
    return threads


def torch_threads() -> int:
    """torch's current intra-op CPU thread count (recorded with timings)."""
    return int(torch.get_num_threads())


def make_accelerator(device: str | None) -> Any:
    """An ``Accelerator`` on the CPU when `device` is ``"cpu..."``, else on accelerate's default device."""
    from accelerate import Accelerator

    return Accelerator(cpu=device is not None and str(device).startswith("cpu"))
