"""Small utilities used by every layer: parameter checks, atomic writes, progress bars, BLAS threads."""
