"""The records the book and the READMEs read (`ablations/records.yaml`): the command that makes
each, the pages that read it, whether it is current, and what it cost.

A record is current when every run its commands plan is finished under today's defaults, judged
as the commands themselves judge a run they would skip: an ablation grid's run by its recorded
parameters (`cvgad ablate`'s identity rule), a forensics or `cvgad train` run by its recorded
config (`forensics.conflict`). A benchmark script's table records no configuration: it is listed
with its cost but not judged. A record made under other settings may stay in the book as
historical, and a record still being made may be read as far as it goes, marked in progress;
each with a reason that every page reading it prints (`caveats`). `cvgad reproduce`
remakes the records that are not current, in the manifest's order.
"""

from __future__ import annotations

import shlex
import subprocess
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import yaml
from tqdm.auto import tqdm

from cvgad.experiment import runs
from cvgad.experiment.params import RunParams

MANIFEST = Path("ablations") / "records.yaml"
ENTRY_KEYS = ("make", "summary", "read_by", "historical", "in_progress")
CURRENT, STALE, INCOMPLETE, MISSING, UNJUDGED = "current", "stale", "incomplete", "missing", "unjudged"
#: Parses a `cvgad` command line (its arguments after `cvgad`) into its options; the command line
#: module gives it (`cvgad.cli.build_parser().parse_args`).
Parse = Callable[[list[str]], Any]


@dataclass(frozen=True)
class Record:
    """One record: its name, the commands that make it (from the repository root, in order), those
    that summarise it, the pages that read it and, when kept though made under other settings, why
    (`historical`), or, while its runs are still being made, what is still to come (`in_progress`)."""

    name: str
    make: tuple[str, ...]
    summary: tuple[str, ...] = ()
    read_by: tuple[str, ...] = ()
    historical: str | None = None
    in_progress: str | None = None


def _commands(where: str, value: Any) -> tuple[str, ...]:
    values = [value] if isinstance(value, str) else value
    if not isinstance(values, list) or not all(isinstance(v, str) and v.strip() for v in values):
        raise ValueError(f"{where}: give a command or a list of commands, got {value!r}")
    return tuple(values)


def load_manifest(repo: Path) -> list[Record]:
    """The manifest's records, in order."""
    path = repo / MANIFEST
    data = yaml.safe_load(path.read_text())
    if not isinstance(data, dict) or not isinstance(data.get("records"), dict):
        raise ValueError(f"{path}: expected a mapping `records:` of name -> {{{', '.join(ENTRY_KEYS)}}}")
    records = []
    for name, entry in data["records"].items():
        if not isinstance(entry, dict) or "make" not in entry or set(entry) - set(ENTRY_KEYS):
            raise ValueError(f"{path}: record {name} needs make and may have {', '.join(ENTRY_KEYS)}; got {entry!r}")
        summary = _commands(f"record {name}: summary", entry["summary"]) if "summary" in entry else ()
        if entry.get("historical") and entry.get("in_progress"):
            raise ValueError(f"{path}: record {name} is historical or in progress, not both")
        read_by = tuple(entry.get("read_by") or ())
        records.append(Record(name, _commands(f"record {name}: make", entry["make"]), summary, read_by,
                              entry.get("historical"), entry.get("in_progress")))  # fmt: skip
    return records


def pick(records: list[Record], names: Sequence[str] | None) -> list[Record]:
    """The records named (all when none are), in the manifest's order; an unknown name fails,
    listing the valid ones."""
    if not names:
        return records
    known = [r.name for r in records]
    unknown = [n for n in names if n not in known]
    if unknown:
        raise ValueError(f"unknown record(s) {', '.join(unknown)}; valid records: {', '.join(known)}")
    return [r for r in records if r.name in names]


def caveats(page: str, repo: Path | None = None) -> str:
    """Markdown: for each historical or in-progress record that `page` (e.g. "06_ablation", "intro")
    reads, why it is kept or what is to come, and the command that remakes or resumes it; empty when
    the page reads no such record."""
    lines = []
    for r in load_manifest(repo or runs.checkout()):
        if any(Path(p).stem == page for p in r.read_by):
            if r.historical:
                lines.append(
                    f"**Historical record `{r.name}`.** {r.historical} `cvgad reproduce --only {r.name}` remakes it."
                )
            if r.in_progress:
                lines.append(
                    f"**Record in progress `{r.name}`.** {r.in_progress} `cvgad reproduce --only {r.name}` resumes it."
                )
    return "\n\n".join(lines)


# ------------------------------------------------------------------ judging
@dataclass(frozen=True)
class Planned:
    """One run a command plans: its folder, whether it is finished under today's settings (None: a
    command that records no configuration), whether its folder holds a run of another
    configuration, and the wall seconds and 1-minute load it recorded (the load from the run's
    provenance, else from its grid's summary.json or its study's timings.csv)."""

    folder: Path
    current: bool | None
    other: bool = False
    seconds: float | None = None
    load: float | None = None


def _measured(folder: Path, current: bool | None, other: bool, load: float | None) -> Planned:
    metrics = runs.read_json(folder / runs.METRICS)
    metrics = metrics if isinstance(metrics, dict) else {}
    seconds, made = metrics.get("wall_seconds"), runs.read_provenance(metrics).get("load_1min_start")
    number = (int, float)
    return Planned(folder, current, other, seconds if isinstance(seconds, number) else None,
                   made if isinstance(made, number) else load)  # fmt: skip


def _load_of(folder: Path) -> float | None:
    """The mean 1-minute load a grid's summary.json or a study's timings.csv in `folder` recorded."""
    summary = runs.read_json(folder / runs.SUMMARY)
    if isinstance(summary, dict) and isinstance(summary.get("load_1min_mean"), (int, float)):
        return float(summary["load_1min_mean"])
    timings = folder / "timings.csv"
    return float(pd.read_csv(timings)["load_start"].mean()) if timings.is_file() else None


def _planned(repo: Path, command: str, parse: Parse) -> list[Planned]:
    """The runs `command` plans, each judged; a script's table is one unjudged line."""
    from cvgad.workbench import ablation, forensics
    from cvgad.workbench.grid import load_grid

    argv = shlex.split(command)
    if argv[:1] != ["cvgad"]:
        table = repo / argv[argv.index("--out") + 1]
        rows = pd.read_csv(table, comment="#") if table.is_file() else pd.DataFrame()
        return [Planned(table, None, seconds=float(rows["seconds"].sum()) if "seconds" in rows else None)]
    args = parse(argv[1:])
    if args.command == "forensics" and args.action in ("run", "study"):
        if args.action == "run":
            planned = forensics.plan_runs(args.preset, args.seeds, dict(args.set), args.data_root)
        else:
            planned = forensics.load_study(repo / args.spec, args.data_root)
        out, lines = repo / args.out, []
        for p in planned:
            other = forensics.conflict(p.cfg, out / p.folder) is not None
            current = runs.forensics_finished(out / p.folder) and not other
            lines.append(_measured(out / p.folder, current, other, _load_of(out)))
        return lines
    if args.command == "ablate":
        grid = load_grid(repo / args.grid)
        specs = ablation.plan_runs(grid, args.preset, repo / args.out, rows=args.rows, seeds=args.seeds)
        load = _load_of(ablation.preset_dir(repo / args.out, grid, args.preset))
        return [
            _measured(
                Path(s.run_dir),
                ablation.finished_metrics(s) is not None,
                ablation.other_configuration(s) is not None,
                load,
            )  # fmt: skip
            for s in specs
        ]
    if args.command == "train":
        cfg = RunParams(**{name: getattr(args, name) for name in RunParams.names()}).config()
        run = repo / args.out
        other = forensics.conflict(cfg, run) is not None
        return [_measured(run, runs.read_metrics(run) is not None and not other, other, None)]
    raise ValueError(f"{command!r}: a record is made by cvgad ablate, train, forensics run or study, or a script")


@dataclass(frozen=True)
class State:
    """What `judge` found: the status, the runs planned and current, the seconds the recorded runs
    took (summed over runs) and their mean 1-minute load at the start, where recorded."""

    record: Record
    status: str
    runs: int
    current: int
    seconds: float | None
    load: float | None


def judge(repo: Path, record: Record, parse: Parse) -> State:
    planned = [line for command in record.make for line in _planned(repo, command, parse)]
    judged = [p for p in planned if p.current is not None]
    current = sum(bool(p.current) for p in judged)
    if not judged:
        status = UNJUDGED
    elif current == len(judged):
        status = CURRENT
    elif any(p.other for p in judged):
        status = STALE
    elif any(p.folder.exists() for p in judged):
        status = INCOMPLETE
    else:
        status = MISSING
    seconds = [p.seconds for p in planned if p.seconds is not None]
    loads = [p.load for p in planned if p.load is not None]
    return State(record, status, len(planned), current, sum(seconds) if seconds else None,
                 sum(loads) / len(loads) if loads else None)  # fmt: skip


def describe(state: State) -> str:
    """One line of the dry run."""
    cost = "cost unknown" if state.seconds is None else f"{state.seconds / 60:.1f} run-minutes measured"
    load = "" if state.load is None else f", 1-minute load {state.load:.1f}"
    status = f"{state.status} ({state.current} of {state.runs} runs current)" if state.status != UNJUDGED else (
        "not judged (a script's table records no configuration)")  # fmt: skip
    held = ", historical" if state.record.historical and state.status != CURRENT else ""
    if state.record.in_progress:
        held += {INCOMPLETE: ", in progress", CURRENT: ", marked in progress but finished: remove in_progress"}.get(
            state.status, ""
        )
    return f"{state.record.name}: {status}{held}; {cost}{load}"


def _excused(state: State) -> bool:
    """Historical, or in progress with none of its runs made under other settings."""
    return bool(state.record.historical) or (bool(state.record.in_progress) and state.status == INCOMPLETE)


def stale_in_book(states: list[State]) -> list[State]:
    """The records a page reads that are not current (stale, incomplete or missing), unless historical
    or in progress, and those marked in progress that are finished (the mark must go, or the page
    would go on saying so); a script's table, which records no configuration, is not judged."""
    done = [s for s in states if s.record.in_progress and s.status == CURRENT]
    return [s for s in states if s.status not in (CURRENT, UNJUDGED) and not _excused(s) and s.record.read_by] + done


# ------------------------------------------------------------------ remaking
def _argv(command: str, data_root: str | None) -> list[str]:
    argv = shlex.split(command)
    summarises = argv[1:2] == ["report"] or argv[1:3] == ["forensics", "summary"]
    if data_root is not None and "--data-root" not in argv and not summarises:
        argv += ["--data-root", data_root]
    if argv[0] == "cvgad":
        return [sys.executable, "-m", "cvgad", *argv[1:], *(["--replace"] if argv[1] == "ablate" else [])]
    return [sys.executable, *argv[1:]] if argv[0] == "python" else argv


def reproduce(repo: Path, states: list[State], data_root: str | None) -> list[str]:
    """Remakes every record of `states` that is not current, in order (each command resumes where
    it stopped), with a progress bar over the recorded cost; returns the names remade."""
    todo = [s for s in states if s.status != CURRENT]
    total = sum(s.seconds or 0.0 for s in todo)
    remade = []
    with tqdm(total=round(total), unit="s", desc="reproduce", file=sys.stderr) as bar:
        for state in todo:
            bar.set_postfix_str(state.record.name)
            for command in (*state.record.make, *state.record.summary):
                tqdm.write(f"$ {command}", file=sys.stderr)
                subprocess.run(_argv(command, data_root), cwd=repo, check=True)
            bar.update(round(state.seconds or 0.0))
            remade.append(state.record.name)
    return remade
