"""Run every benchmark in one go (``make bench``); each prints its own table with ratios against its baseline.

Usage: ``python benchmarks/run_all.py [--quick]``. ``--quick`` passes ``--quick`` to the benchmarks that have it.
Timings are printed, never asserted. On a shared machine, compare ratios (ours vs the baseline measured in the same
run), not absolute seconds.
"""

from __future__ import annotations

import argparse
import importlib
import os
import platform
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

BENCHMARKS = [
    ("bench_fit", "Plackett-Luce / Bradley-Terry fits vs choix", ["--quick"]),
    ("bench_bootstrap", "respondent bootstrap, 1,000 replicates of the 335-respondent survey", []),
    ("bench_trees", "preference trees vs R bttree/pltree timings", []),
    ("bench_modpo", "one MODPO step vs one TRL DPOTrainer step (tiny Llama)", []),
    ("bench_logps", "shared-prompt log-prob passes vs the plain pass (SmolLM2)", ["--quick"]),
    ("bench_generation", "all models in the same generation batches vs one at a time (SmolLM2)", ["--quick"]),
]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="smaller sizes where a benchmark supports it")
    ap.add_argument("--only", nargs="*", default=None, help="run only these benchmark modules")
    args = ap.parse_args(argv)
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"# survey_weights benchmarks — {platform.processor() or platform.machine()}, "
          f"{os.cpu_count()} CPUs, load average {load:.2f}, Python {platform.python_version()}")
    failures = 0
    for name, what, quick_flags in BENCHMARKS:
        if args.only and name not in args.only:
            continue
        print(f"\n## {name}: {what}", flush=True)
        t0 = time.perf_counter()
        try:
            mod = importlib.import_module(name)
            mod.main(quick_flags if args.quick else [])
        except Exception as exc:  # report and go on: one broken benchmark must not hide the others
            failures += 1
            print(f"!! {name} failed: {type(exc).__name__}: {exc}", flush=True)
        print(f"({name} took {time.perf_counter() - t0:.1f} s)", flush=True)
    return 1 if failures else 0


if __name__ == "__main__":
    raise SystemExit(main())
