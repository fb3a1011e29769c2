"""The house rules of docs/design.md, checked on the import graph (import-linter runs the layer contracts in
`make lint`; these add what its contracts do not: no cycles at all, no private names across packages)."""

from __future__ import annotations

import ast
from pathlib import Path

import grimp
import pytest

PKG = Path(__file__).resolve().parents[1] / "survey_weights"


@pytest.fixture(scope="module")
def graph():
    return grimp.build_graph("survey_weights", exclude_type_checking_imports=True)


def test_no_import_cycles(graph):
    mods = sorted(graph.modules)
    cycles = []
    for m in mods:
        for dep in graph.find_modules_directly_imported_by(m):
            if dep != m and graph.chain_exists(importer=dep, imported=m):
                cycles.append((m, dep))
    # a package importing its own children (its __init__) is not a cycle
    cycles = [(a, b) for a, b in cycles if not (b.startswith(a + ".") or a.startswith(b + "."))]
    assert cycles == []


def test_no_private_names_imported_across_packages():
    """`from ..x import _name` only inside one package (ground utilities in _util are public by name)."""
    bad = []
    for f in PKG.rglob("*.py"):
        tree = ast.parse(f.read_text())
        here = f.relative_to(PKG).parts[0] if len(f.relative_to(PKG).parts) > 1 else None
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.level >= 2:
                target = (node.module or "").split(".")[0]
                if target == here:
                    continue
                for a in node.names:
                    if a.name.startswith("_") and not a.name.startswith("__"):
                        bad.append(f"{f.relative_to(PKG)}: from {'.' * node.level}{node.module} import {a.name}")
    assert bad == []


def test_torch_free_layers_import_without_torch():
    import subprocess
    import sys

    code = ("import sys; import survey_weights, survey_weights.subgroups, survey_weights.preferences, "
            "survey_weights.evaluation, survey_weights.synthetic.preferences, survey_weights.pipeline; "
            "bad = [m for m in ('torch', 'transformers', 'peft', 'accelerate') if m in sys.modules]; "
            "print(bad); sys.exit(1 if bad else 0)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stdout + out.stderr
