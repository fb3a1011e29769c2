"""BLAS thread limiting for the engine's tall-skinny products (threaded BLAS is pathological there on a
loaded 2-core machine)."""

from __future__ import annotations

import contextlib
from typing import Any

try:  # BLAS threading on a loaded 2-core box is pathological for tall-skinny GEMMs
    from threadpoolctl import ThreadpoolController as _TPC
except ImportError:  # pragma: no cover
    _TPC = None
_CONTROLLER: Any = None


def single_thread_blas(big: bool) -> Any:
    """Single-threaded BLAS for the big tall-skinny GEMM (the controller is created once, lazily)."""
    global _CONTROLLER
    if not big or _TPC is None:
        return contextlib.nullcontext()
    if _CONTROLLER is None:
        _CONTROLLER = _TPC()
    return _CONTROLLER.limit(limits=1, user_api="blas")
