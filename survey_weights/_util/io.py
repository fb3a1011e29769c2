"""Atomic file writes: a reader sees the old file or the complete new one, never half of one."""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO

__all__ = ["atomic_write", "atomic_write_text", "atomic_write_bytes", "check_output"]


@contextlib.contextmanager
def atomic_write(path: str | os.PathLike[str], *, mode: str = "w", encoding: str | None = "utf-8",
                 newline: str | None = None) -> Iterator[IO]:
    """Open a temporary file next to `path`; on success fsync it and ``os.replace`` it onto `path`.

    If the ``with`` block raises, the temporary file is removed and `path` is left untouched.

    Parameters
    ----------
    path : str or os.PathLike
        Destination. Its directory must exist.
    mode : {"w", "wb"}, default "w"
        Text or binary.
    encoding, newline : str or None
        Passed to :func:`open` in text mode.

    Examples
    --------
    >>> import pathlib, tempfile
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "x.txt"
    >>> with atomic_write(p) as fh:
    ...     _ = fh.write("hello")
    >>> p.read_text()
    'hello'
    """
    if mode not in ("w", "wb"):
        raise ValueError(f"`mode` must be 'w' or 'wb'. Got {mode!r} instead.")
    path = Path(path)
    directory = path.parent if str(path.parent) else Path(".")
    if not directory.is_dir():
        raise FileNotFoundError(f"Directory {str(directory)!r} does not exist. Create it first (Path.mkdir(parents=True)).")
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=directory)
    try:
        kwargs = {} if mode == "wb" else {"encoding": encoding, "newline": newline}
        with os.fdopen(fd, mode, **kwargs) as fh:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
        if path.exists():
            with contextlib.suppress(OSError):
                os.chmod(tmp, path.stat().st_mode & 0o777)
        else:
            with contextlib.suppress(OSError):
                umask = os.umask(0)
                os.umask(umask)
                os.chmod(tmp, 0o666 & ~umask)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    _fsync_dir(directory)


def _fsync_dir(directory: Path) -> None:
    """Persist the rename itself (best effort; not supported on every platform)."""
    with contextlib.suppress(OSError, AttributeError):
        fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def atomic_write_text(path: str | os.PathLike[str], text: str | Callable[[], str], *,
                      encoding: str = "utf-8") -> Path:
    """Write `text` atomically. `text` may be a callable, evaluated before the file is touched.

    Examples
    --------
    >>> import pathlib, tempfile
    >>> p = atomic_write_text(pathlib.Path(tempfile.mkdtemp()) / "a.json", "{}")
    >>> p.read_text()
    '{}'
    """
    content = text() if callable(text) else text
    with atomic_write(path, mode="w", encoding=encoding, newline="") as fh:
        fh.write(content)
    return Path(path)


def atomic_write_bytes(path: str | os.PathLike[str], data: bytes) -> Path:
    """Write `data` atomically (see :func:`atomic_write`)."""
    with atomic_write(path, mode="wb") as fh:
        fh.write(data)
    return Path(path)


def check_output(path: str | os.PathLike[str], *, kind: str = "dir", what: str = "output") -> Path:
    """Check, before any long work and without creating anything, that `path` can be written: a directory (it
    or its nearest existing ancestor must be a writable directory) or a file (not a directory; its directory must
    be writable or creatable). Raises ValueError naming the path, the problem and a fix."""
    p = Path(path).expanduser()
    if kind == "file" and p.is_dir():
        raise ValueError(f"The {what} path {str(p)!r} is a directory; a file name is needed there. Fix: pass a file "
                         f"path such as {str(p / 'out.csv')!r}.")
    target = p if kind == "dir" else (p.parent if str(p.parent) else Path("."))
    probe = target
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    if not probe.is_dir():
        raise ValueError(f"The {what} path {str(target)!r} needs {str(probe)!r} to be a directory, but it is a file. "
                         "Fix: remove it or choose another path.")
    if not os.access(probe, os.W_OK | os.X_OK):
        raise ValueError(f"Cannot write the {what} to {str(target)!r}: {str(probe)!r} is not writable. Fix: choose a "
                         "writable directory (or fix its permissions).")
    return p
