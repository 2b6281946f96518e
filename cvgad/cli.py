"""Command line: `cvgad train`, `cvgad evaluate`, `cvgad ablate`, `cvgad report`, `cvgad reproduce`,
`cvgad forensics`, `cvgad student`.

The only module with argparse. `train`'s flags are derived from `cvgad.experiment.params.RunParams`.
Exit codes: 0 success, 1 a run failed (e.g. a loss became NaN), 2 bad input or a missing
optional package (said before anything runs), 130 interrupted by Ctrl-C.
"""

from __future__ import annotations

import argparse
import json
import sys
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from cvgad.experiment.params import EVAL_PARAMS, RunParams, defaults, param_help, param_types

OK, FAILED, BAD_INPUT, INTERRUPTED = 0, 1, 2, 130


class Failed(Exception):
    """A command ran but its work failed; the message says what and where."""


def _none_or(kind: Callable[[str], object]) -> Callable[[str], object]:
    def parse(text: str) -> object:
        return None if text.lower() == "none" else kind(text)

    parse.__name__ = kind.__name__  # argparse names the type in its error message
    return parse


#: The words a switch accepts, as YAML reads them in a grid file.
SWITCH_WORDS = {"true": True, "yes": True, "on": True, "false": False, "no": False, "off": False}


def _boolean(text: str) -> bool:
    if text.lower() not in SWITCH_WORDS:
        raise argparse.ArgumentTypeError(f"{text!r} is not true or false; use one of {', '.join(SWITCH_WORDS)}")
    return SWITCH_WORDS[text.lower()]


def add_param_arguments(p: argparse.ArgumentParser, names: Sequence[str] | None = None, keep: bool = False) -> None:
    """One flag per RunParams field (or per field in `names`): `--latent-dim 32`, `--disable mi`
    (repeatable), `--epochs none`. With `keep`, a flag left out is None (keep what is saved)."""
    for name, t in param_types().items():
        if names is not None and name not in names:
            continue
        default = None if keep else defaults()[name]
        base = _boolean if t.base is bool else t.base
        kind = _none_or(base) if t.optional else base
        shown = f" (default: {default})" if default not in (None, ()) else ""
        if t.many:
            p.add_argument(
                "--disable",
                dest=name,
                action="append",
                default=[],
                choices=t.choices,
                metavar="LOSS",
                help=f"{param_help(name)}; repeatable: {', '.join(t.choices or ())}",
            )
            continue
        p.add_argument(
            f"--{name.replace('_', '-')}", type=kind, default=default, choices=t.choices, help=param_help(name) + shown
        )


def _params(args: argparse.Namespace) -> RunParams:
    return RunParams(**{name: getattr(args, name) for name in RunParams.names()})


def _train(args: argparse.Namespace) -> int:
    from cvgad.experiment.experiment import run_experiment, summary_line

    params = _params(args)
    result = run_experiment(params.config(), out_dir=args.out, progress=not args.quiet)
    m = result.metrics
    task = f"normal class {m['normal_class']}" if "normal_class" in m else f"class {m.get('anomaly_class')}"
    print(
        f"{params.dataset} ({m['protocol']}, {task}, seed {params.seed}) on {m['device']}: "
        f"train {m['n_train']}, val {m['n_val']}, test {m['n_test_normal']} normal + {m['n_test_anomalous']} "
        f"anomalous; {m['wall_seconds']:.0f} s"
    )
    print(summary_line(m))
    if args.out:
        print(f"wrote {args.out}/config.json, history.csv, checkpoint.pt, metrics.json")
    return OK


def _evaluate(args: argparse.Namespace) -> int:
    from cvgad.experiment.experiment import evaluate_run, summary_line

    evaluation = {name: getattr(args, name) for name in EVAL_PARAMS}
    metrics = evaluate_run(args.run_dir, device=args.device, data_root=args.data_root, **evaluation)
    print(summary_line(metrics))
    print(json.dumps(metrics, indent=2))
    return OK


def _ablate(args: argparse.Namespace) -> int:
    from cvgad.workbench.ablation import ablate

    root, outcomes = ablate(
        args.grid,
        args.preset,
        args.out,
        jobs=args.jobs,
        scheduler=args.scheduler,
        rows=args.rows,
        seeds=args.seeds,
        device=args.device,
        data_root=args.data_root,
        notebook=args.notebook,
        replace=args.replace,
    )
    counts = {s: sum(o.status == s for o in outcomes) for s in ("done", "skipped", "failed")}
    print(
        f"{len(outcomes)} runs: {counts['done']} done, {counts['skipped']} skipped, {counts['failed']} failed. "
        f"Results in {root}; table: cvgad report {root}"
    )
    if counts["failed"]:
        raise Failed(f"{counts['failed']} run(s) failed; see error.txt in their folders under {root}")
    return OK


def _report(args: argparse.Namespace) -> int:
    from cvgad.workbench.report import write_report

    written = write_report(args.results, args.out, args.paper)
    print(f"wrote {written[0].parent}/" + ", ".join(path.name for path in written))
    for path in written:
        if path.suffix == ".md":
            print(path.read_text())
    return OK


def _reproduce(args: argparse.Namespace) -> int:
    from cvgad.experiment.runs import checkout
    from cvgad.workbench import records

    repo = checkout()
    chosen = records.pick(records.load_manifest(repo), args.only)
    states = [records.judge(repo, record, build_parser().parse_args) for record in chosen]
    if args.dry_run or args.check:
        for state in states:
            print(records.describe(state))
        stale = records.stale_in_book(states)
        if args.check and stale:
            names = ", ".join(s.record.name for s in stale)
            raise Failed(f"record(s) that pages read, stale or marked in progress though finished: {names}")
        return OK
    remade = records.reproduce(repo, states, args.data_root)
    print(f"remade {len(remade)} record(s): {', '.join(remade) or 'none (all current)'}; then: make book")
    return OK


def _forensics(args: argparse.Namespace) -> int:
    from cvgad.experiment import runs
    from cvgad.workbench import forensics

    if args.action == "summary":
        print(forensics.summarise(args.root, budget=args.budget).to_string(index=False))
        return OK
    if args.action == "run":
        planned = forensics.plan_runs(args.preset, args.seeds, dict(args.set), args.data_root)
    else:
        planned = forensics.load_study(args.spec, args.data_root)
    forensics.check_folders(planned, args.out)  # every config and folder checked before any training
    if args.action == "study" and args.dry_run:
        for plan in planned:
            print(f"{plan.folder}: {'finished' if runs.forensics_finished(args.out / plan.folder) else 'to run'}")
        return OK
    failed = forensics.run_all(planned, args.out)
    if failed:
        raise Failed(f"{failed} run(s) became NaN; see failed.json in their folders under {args.out}")
    return OK


def _student(args: argparse.Namespace) -> int:
    from cvgad.book.student import write_student_copy

    print(f"wrote {write_student_copy(args.out)}")
    return OK


def _setting(text: str) -> tuple[str, object]:
    """KEY=VALUE with VALUE read as YAML, as a grid file writes it (5000, 1.0, .inf, null, absolute)."""
    import yaml

    key, _, value = text.partition("=")
    return key, yaml.safe_load(value)


def _names(text: str) -> list[str]:
    return [part.strip() for part in text.split(",") if part.strip()]


def _ints(text: str) -> list[int]:
    try:
        return [int(part) for part in _names(text)]
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a comma-separated list of integers, e.g. 0,1,2") from None


class _Parser(argparse.ArgumentParser):
    """A parser (and its subcommands') without abbreviated flags, so that a mistyped or shortened
    flag is refused, not taken for another (`--gradient-penalty` for `--gradient-penalty-every`)."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(allow_abbrev=False, **kwargs)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="cvgad",
        description="CVGAD (Bian et al., IEEE Access 2019): train, "
        "evaluate and ablate a CVAE-GAN semi-supervised anomaly detector.",
    )
    sub = parser.add_subparsers(dest="command", required=True)

    train = sub.add_parser(
        "train",
        help="train on normal images and score the test set",
        description="Train with Algorithm 1 and evaluate (AUC, F1). Example: cvgad train "
        "--dataset digits --anomaly-class 1 --epochs 5 --seed 0 --out runs/digits-1",
    )
    add_param_arguments(train)
    train.add_argument("--out", help="run directory for config.json, history.csv, checkpoint.pt, metrics.json")
    train.add_argument("--quiet", action="store_true", help="no progress bar")
    train.set_defaults(func=_train)

    ev = sub.add_parser(
        "evaluate",
        help="score a saved run again",
        description="Re-score a run directory written by `cvgad train --out`, without retraining. The evaluation "
        "flags replace the run's own settings; the metrics go to evaluation.json in the run folder, or to a file "
        "named after the changed settings. Example: cvgad evaluate RUN --bn-at-test train --test-order normals_first",
    )
    ev.add_argument("run_dir", help="run directory with config.json and checkpoint.pt")
    ev.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:N")
    ev.add_argument("--data-root", default=None, help="override the data root saved in the run's config")
    add_param_arguments(ev, EVAL_PARAMS, keep=True)
    ev.set_defaults(func=_evaluate)

    ab = sub.add_parser(
        "ablate",
        help="run an ablation grid (e.g. Table 1) with papermill; resumable",
        description="Run every (row, varied setting, seed) of an ablation grid as a papermill notebook. Rerun the "
        "same command to resume: finished runs are kept. Needs the 'ablation' extra.",
    )
    ab.add_argument("grid", type=Path, help="grid YAML, e.g. ablations/table1.yaml")
    ab.add_argument("--preset", help="scale preset from the grid, e.g. ci, cpu, paper")
    ab.add_argument("--jobs", type=int, default=1, help="local worker processes (default 1)")
    ab.add_argument("--scheduler", help="Dask scheduler address (tcp://host:8786): run there instead of locally")
    ab.add_argument(
        "--out", type=Path, default=Path("ablations/results"), help="results root (default ablations/results)"
    )
    ab.add_argument("--rows", type=_names, help="comma-separated row ids (default: all rows)")
    ab.add_argument("--seeds", type=_ints, help="comma-separated seeds (default: the preset's)")
    ab.add_argument("--data-root", help="dataset folder (default: $CVGAD_DATA, else ./data)")
    ab.add_argument("--device", help="auto, cpu, cuda, cuda:N or mps (default: the grid's)")
    ab.add_argument(
        "--notebook", type=Path, help="run notebook (default: notebooks/run.ipynb in the working directory or a parent)"
    )
    ab.add_argument(
        "--replace",
        action="store_true",
        help="remove run folders that hold runs of another configuration and run them again (default: refuse)",
    )
    ab.set_defaults(func=_ablate)

    rep = sub.add_parser(
        "report",
        help="aggregate an ablation grid into Table 1 (and per varied setting, e.g. per class)",
        description="Aggregate finished ablation runs: CSV, Markdown table, bar chart; for a grid with `vary`, "
        "also per cell (e.g. per anomaly class, as the paper's Figs. 2 and 3).",
    )
    rep.add_argument("results", type=Path, help="a preset's results folder, e.g. ablations/results/table1/cpu")
    rep.add_argument("--out", type=Path, help="where to write the report (default: the results folder)")
    rep.add_argument("--paper", type=Path, help="CSV of the paper's values (row, f1, auc); default: from plan.json")
    rep.set_defaults(func=_report)

    rp = sub.add_parser(
        "reproduce",
        help="remake the records the book reads (ablations/records.yaml), in order; resumable",
        description="Remake every record of ablations/records.yaml that is not current under today's defaults "
        "(judged as cvgad ablate judges a run), with a progress bar over the recorded cost.",
    )
    rp.add_argument("--dry-run", action="store_true", help="list each record as current or stale, with its cost")
    rp.add_argument(
        "--check", action="store_true", help="exit 1 when a record a page reads is stale and not historical"
    )
    rp.add_argument("--only", type=_names, help="comma-separated record names (default: every record)")
    rp.add_argument("--data-root", help="dataset folder given to the commands that train")
    rp.set_defaults(func=_reproduce)

    fo = sub.add_parser(
        "forensics",
        help="measure the gap to the paper: score every evaluation factor after each epoch; resumable",
        description="Train presets of ablations/table1.yaml (or every run of a study file) and score the model "
        "before training and after each epoch in every batchnorm mode, test order and score, into factors.csv; "
        "`summary` turns the runs into the factor table or the budget curve.",
    )
    fsub = fo.add_subparsers(dest="action", required=True)
    fr = fsub.add_parser("run", help="train presets of table1.yaml and score every factor after each epoch")
    fr.add_argument("--preset", action="append", required=True, help="table1.yaml preset (repeatable)")
    fr.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    fr.add_argument("--set", action="append", default=[], type=_setting, metavar="KEY=VALUE", help="override a setting")
    fr.add_argument("--data-root", default=None)
    fr.add_argument("--out", type=Path, required=True)
    fst = fsub.add_parser("study", help="train every run of a study file (e.g. ablations/scale.yaml), resumable")
    fst.add_argument("spec")
    fst.add_argument("--data-root", default=None)
    fst.add_argument("--out", type=Path, required=True)
    fst.add_argument("--dry-run", action="store_true", help="list the runs, finished or not, and train nothing")
    fsu = fsub.add_parser("summary", help="the factor table (and the budget curve) of recorded runs")
    fsu.add_argument("root")
    fsu.add_argument("--budget", action="store_true", help="root holds budget folders <images>x<epochs>")
    fo.set_defaults(func=_forensics)

    st = sub.add_parser(
        "student",
        help="write the students' copy of the exercises (no solutions, no discussion answers, no outputs)",
        description="Write DIR/09_exercises.ipynb from notebooks/09_exercises.py without solution cells, discussion "
        "answers or instructor notes, outputs cleared and solutions = False, so each check fails until answered.",
    )
    st.add_argument("out", type=Path, metavar="DIR", help="folder for 09_exercises.ipynb")
    st.set_defaults(func=_student)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from cvgad.model.training import NonFiniteLossError
    from cvgad.workbench.ablation import Interrupted

    def say(message: str) -> None:
        print(f"cvgad {args.command}: {message}", file=sys.stderr)

    with warnings.catch_warnings():
        warnings.simplefilter("default", FutureWarning)  # deprecations are said once, in the same words
        warnings.showwarning = lambda message, *rest: say(f"warning: {message}")
        try:
            return int(args.func(args))
        except (ValueError, FileNotFoundError, ImportError) as err:
            say(f"error: {err}")
            return BAD_INPUT
        except (NonFiniteLossError, Failed) as err:
            say(f"failed: {err}")
            return FAILED
        except Interrupted as err:
            say(f"{err}; rerun the same command to resume (finished runs are kept)")
            return INTERRUPTED
        except KeyboardInterrupt:
            say("interrupted")
            return INTERRUPTED


if __name__ == "__main__":
    sys.exit(main())
