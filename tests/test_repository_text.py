"""Text files of the repository carry no unresolved merge-conflict markers (a merge that touched the README once
passed every other test)."""

import re
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
MARKER = re.compile(r"^(<{7} |={7}$|>{7} )", re.MULTILINE)


def _tracked():
    try:
        out = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        pytest.skip("not a git checkout: the tracked files cannot be listed")
    return [ROOT / f for f in out.splitlines()
            if f.endswith((".md", ".py", ".cfg", ".toml", ".ipynb", ".R", ".txt", "Makefile")) or f == "Makefile"]


def test_no_conflict_markers():
    files = _tracked()
    assert files
    bad = [str(f.relative_to(ROOT)) for f in files if f.is_file() and MARKER.search(f.read_text(errors="replace"))]
    assert not bad, f"unresolved merge-conflict markers in {bad}"
