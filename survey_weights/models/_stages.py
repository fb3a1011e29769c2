"""Shared helpers of the engine's data layouts (choice stages, key spaces)."""

from __future__ import annotations

__all__ = ["dense_key_space"]


def dense_key_space(n: int, m: int) -> bool:
    """Whether the ``n * n`` flat keys of item pairs are few next to ``m`` keys in use: then a table over all
    of them (marking, counting) is cheaper than sorting the keys."""
    return n * n <= max(1 << 16, 8 * m)
