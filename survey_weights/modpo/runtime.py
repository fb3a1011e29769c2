"""Process set-up for training: torch CPU threads and the accelerate ``Accelerator``."""

from __future__ import annotations

import os
import time
from typing import Any

import torch

__all__ = ["cpu_busy_elsewhere", "make_accelerator", "set_torch_threads", "torch_threads"]


def _proc_stat() -> tuple[float, float]:
    """(busy, total) CPU jiffies of the whole machine since boot, from the first line of ``/proc/stat``."""
    with open("/proc/stat") as f:
        v = [float(x) for x in f.readline().split()[1:]]
    idle = v[3] + (v[4] if len(v) > 4 else 0.0)  # idle + iowait
    return sum(v) - idle, sum(v)


def cpu_busy_elsewhere(interval: float = 0.3, *, threshold: float = 0.8) -> bool:
    """Whether other processes keep at least ``threshold`` of a core busy right now.

    Samples the machine's CPU time (``/proc/stat``) over ``interval`` seconds and subtracts this process's own
    (``os.times``); where ``/proc/stat`` is missing, the 1-minute load average >= 1 decides.
    """
    try:
        b0, t0 = _proc_stat()
        own0 = sum(os.times()[:2])
        w0 = time.monotonic()
        time.sleep(interval)
        b1, t1 = _proc_stat()
        own1 = sum(os.times()[:2])
        wall = time.monotonic() - w0
    except (OSError, ValueError, IndexError):
        try:
            return os.getloadavg()[0] >= 1.0
        except OSError:  # pragma: no cover - platforms without getloadavg
            return False
    if t1 <= t0 or wall <= 0:
        return False
    cores = os.cpu_count() or 1
    busy_cores = (b1 - b0) / (t1 - t0) * cores - (own1 - own0) / wall
    return busy_cores >= threshold


def set_torch_threads(threads: int | str | None) -> int | None:
    """Set torch's intra-op CPU threads.

    Parameters
    ----------
    threads : int, "auto" or None
        None leaves torch's default (one per core). ``"auto"``: one thread when other work keeps at least one
        core busy *now* (:func:`cpu_busy_elsewhere`: 0.3 s of ``/proc/stat``, this process's own time left out;
        the 1-minute load average where there is no ``/proc/stat``), else torch's default. On a CPU shared with
        other jobs one thread is often several times faster: with more threads every op waits for its slowest
        thread, and a descheduled thread stalls the whole op. (The load average is not used where a snapshot
        exists: it still counts work that just ended, such as ``make demo``'s own venv build, and then halved
        the job's speed on an idle machine.)

    Returns
    -------
    int or None
        The thread count set (None when left alone).
    """
    if threads is None:
        return None
    if threads == "auto":
        if not cpu_busy_elsewhere():
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
