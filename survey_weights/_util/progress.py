"""Progress bars: notebook widgets when ipywidgets is installed, plain text bars otherwise.

``tqdm.auto`` warns ("IProgress not found") in Jupyter without ipywidgets, even for disabled bars; this picks the
class once, so callers just write ``tqdm(iterable, disable=not progress)``.
"""

from __future__ import annotations

from typing import Any


def _pick() -> Any:
    try:
        import ipywidgets  # noqa: F401
    except ImportError:
        from tqdm.std import tqdm as bar
    else:
        from tqdm.auto import tqdm as bar
    return bar


def tqdm(*args: Any, **kwargs: Any) -> Any:
    """A tqdm progress bar (same signature as :class:`tqdm.tqdm`)."""
    return _pick()(*args, **kwargs)
