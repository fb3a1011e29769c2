"""Timing and peak-memory helpers shared by the benchmark scripts (print-only; never assert)."""

from __future__ import annotations

import statistics
import time
import tracemalloc
from collections.abc import Callable
from typing import Any

__all__ = ["format_table", "peak_memory", "time_call", "time_call_cpu"]


def time_call(fn: Callable[[], Any], *, repeat: int = 3, warmup: int = 1) -> tuple[float, Any]:
    """Median wall time (s) of ``fn()`` over `repeat` runs after `warmup` untimed runs; returns (time, last result)."""
    out = None
    for _ in range(warmup):
        out = fn()
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), out


def time_call_cpu(fn: Callable[[], Any], *, repeat: int = 3, warmup: int = 1) -> tuple[float, float, Any]:
    """As :func:`time_call`, also returning the median process CPU time (s): less sensitive to a loaded
    machine than wall time (other processes' load shows up in wall time, not in our CPU time)."""
    out = None
    for _ in range(warmup):
        out = fn()
    walls, cpus = [], []
    for _ in range(repeat):
        t0, c0 = time.perf_counter(), time.process_time()
        out = fn()
        walls.append(time.perf_counter() - t0)
        cpus.append(time.process_time() - c0)
    return statistics.median(walls), statistics.median(cpus), out


def peak_memory(fn: Callable[[], Any]) -> tuple[float, Any]:
    """Peak traced allocation (bytes, numpy included) while running ``fn()``; returns (peak, result)."""
    tracemalloc.start()
    tracemalloc.reset_peak()
    try:
        out = fn()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return float(peak), out


def format_table(rows: list[dict[str, Any]], columns: list[str]) -> str:
    """Plain-text table of dict rows."""
    def fmt(v: Any) -> str:
        if isinstance(v, float):
            return f"{v:.4g}" if abs(v) < 1e5 else f"{v:.1f}"
        return str(v)

    cells = [[fmt(r.get(c, "")) for c in columns] for r in rows]
    widths = [max(len(c), *(len(row[i]) for row in cells)) for i, c in enumerate(columns)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(columns, widths)),
             "  ".join("-" * w for w in widths)]
    lines += ["  ".join(v.ljust(w) for v, w in zip(row, widths)) for row in cells]
    return "\n".join(lines)
