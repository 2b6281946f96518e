"""Run an ablation grid: every (row, seed) as papermill executing the run notebook.

Each run leaves its lab record in `<out>/<grid>/<preset>/<row>/seed<k>/`: `params.json` (what was
asked), `executed.ipynb` (the notebook with its outputs), then `metrics.json` (written atomically,
last, by `run_experiment`) or `error.txt` (the traceback). A run counts as finished only when its
metrics are valid and its params match the run asked for, so a killed grid resumes where it
stopped and a changed preset is rerun rather than silently reused.

Runs go to local worker processes (`--jobs`; a `ProcessPoolExecutor`, because it needs nothing
beyond the standard library, starts at once, and each run is itself a kernel process that only
needs a parent to wait on it) or, given `--scheduler`, to a Dask distributed cluster, where the
same `execute_run` runs on the workers (which must see the notebook's output folder and data).
"""
from __future__ import annotations

import argparse
import json
import os
import re
import sys
import time
import traceback
import uuid
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import asdict, dataclass
from multiprocessing import get_context
from pathlib import Path
from typing import Any, Callable, Iterator

from tqdm.auto import tqdm

from cvgad.atomic import atomic_write
from cvgad.grid import PLACE_KEYS, Grid, load_grid

RUN_NOTEBOOK = Path(__file__).resolve().parents[1] / "notebooks" / "run.ipynb"
KERNEL = "python3"
#: Notebook parameters that do not change what a run computes.
_NOT_IDENTITY = (*PLACE_KEYS, "out_dir", "threads")
_THREAD_VARS = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")


@dataclass(frozen=True)
class RunSpec:
    """One (row, seed) of a grid: where it runs to and every parameter the notebook gets."""

    row: str
    label: str
    seed: int
    run_dir: str
    params: dict[str, Any]

    def identity(self) -> dict[str, Any]:
        return {k: v for k, v in self.params.items() if k not in _NOT_IDENTITY}


@dataclass(frozen=True)
class RunOutcome:
    """What became of a run: "done", "skipped" (finished earlier) or "failed" (with its error)."""

    row: str
    seed: int
    status: str
    run_dir: str
    wall_seconds: float = 0.0
    auc: float | None = None
    f1_best: float | None = None
    error: str | None = None

    def describe(self) -> str:
        head = f"{self.row} seed {self.seed}"
        if self.status == "failed":
            return f"{head}: FAILED {self.error} (see {self.run_dir}/error.txt)"
        return f"{head}: AUC {self.auc:.3f}  F1(best) {self.f1_best:.3f}  [{self.status}, {self.wall_seconds:.0f} s]"


def preset_dir(out: str | Path, grid: Grid, preset: str | None) -> Path:
    return Path(out).resolve() / grid.name / (preset or "default")


def plan_runs(grid: Grid, preset: str | None, out: str | Path, rows: list[str] | None = None,
              seeds: list[int] | None = None, place: dict[str, Any] | None = None) -> list[RunSpec]:
    """The runs of `grid` under `preset`, row by row; `rows`/`seeds` pick a subset, `place` sets device/data_root."""
    settings, preset_seeds = grid.resolve(preset)
    settings |= {k: v for k, v in (place or {}).items() if v is not None}
    if settings["data_root"] is not None:
        settings["data_root"] = str(Path(settings["data_root"]).expanduser().resolve())
    root = preset_dir(out, grid, preset)
    specs = []
    for row in [grid.row(r) for r in rows] if rows else grid.rows:
        for seed in preset_seeds if seeds is None else seeds:
            if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
                raise ValueError(f"seed {seed!r} is not valid; seeds are integers >= 0")
            run_dir = root / row.id / f"seed{seed}"
            params = settings | {"seed": seed, "disabled": list(row.disabled), "out_dir": str(run_dir)}
            specs.append(RunSpec(row=row.id, label=row.label, seed=seed, run_dir=str(run_dir), params=params))
    return specs


def load_notebook(path: str | Path | None = None) -> str:
    """The run notebook as JSON text: the .ipynb, or else its jupytext .py twin converted now."""
    import jupytext
    import nbformat

    path = Path(path) if path else RUN_NOTEBOOK
    if path.suffix == ".ipynb" and path.is_file():
        return path.read_text()
    source = path.with_suffix(".py") if path.suffix == ".ipynb" else path
    if not source.is_file():
        raise ValueError(f"run notebook {str(path)!r} not found (nor {str(source)!r}); give an .ipynb or a jupytext .py")
    return nbformat.writes(jupytext.read(source))


def write_json_atomic(path: str | Path, data: Any) -> None:
    atomic_write(path, lambda tmp: tmp.write_text(json.dumps(data, indent=2, default=str) + "\n"))


def read_metrics(run_dir: str | Path) -> dict[str, Any] | None:
    """The run's metrics when `metrics.json` is complete (AUC and best F1 are numbers), else None."""
    try:
        metrics = json.loads((Path(run_dir) / "metrics.json").read_text())
    except (OSError, ValueError):
        return None
    ok = isinstance(metrics, dict) and all(isinstance(metrics.get(k), (int, float)) for k in ("auc", "f1_best"))
    return metrics if ok else None


def finished_metrics(spec: RunSpec) -> dict[str, Any] | None:
    """Metrics of an earlier run of exactly this spec (same identity), else None."""
    try:
        asked = json.loads((Path(spec.run_dir) / "params.json").read_text())
    except (OSError, ValueError):
        return None
    same = {k: v for k, v in asked.items() if k not in _NOT_IDENTITY} == spec.identity()
    return read_metrics(spec.run_dir) if same else None


def _cores() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def _threads_here() -> int:
    """Torch threads for one run: this machine's cores shared by the runs it executes at once."""
    try:
        from distributed import get_worker

        concurrent = get_worker().state.nthreads
    except (ImportError, ValueError):
        concurrent = 1
    return max(1, _cores() // concurrent)


def run_notebook(notebook: str, output: Path, parameters: dict[str, Any], threads: int) -> None:
    """Execute the notebook with papermill; the kernel inherits the thread limits and finds cvgad."""
    import nbformat
    import papermill

    package_parent = str(Path(__file__).resolve().parents[1])
    paths = os.environ.get("PYTHONPATH", "").split(os.pathsep)
    if package_parent not in paths:
        os.environ["PYTHONPATH"] = os.pathsep.join([package_parent, *filter(None, paths)])
    os.environ.update({var: str(threads) for var in _THREAD_VARS})
    papermill.execute_notebook(nbformat.reads(notebook, as_version=4), str(output), parameters=parameters,
                               kernel_name=KERNEL, language="python", progress_bar=False,
                               extra_arguments=["--IPKernelApp.log_level=ERROR"])  # not one TCP warning per run


def _error_line(error: BaseException) -> str:
    if hasattr(error, "ename"):  # papermill.PapermillExecutionError: the error raised inside the notebook
        return f"{error.ename}: {error.evalue}"
    return f"{type(error).__name__}: {error}"


def execute_run(spec: RunSpec, notebook: str, threads: int | None = None) -> RunOutcome:
    """Run one spec from scratch; never raises: a failure is written to error.txt and returned."""
    start = time.perf_counter()
    run_dir = Path(spec.run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    for stale in ("metrics.json", "error.txt"):
        (run_dir / stale).unlink(missing_ok=True)
    write_json_atomic(run_dir / "params.json", spec.params)
    threads = threads or _threads_here()
    try:
        run_notebook(notebook, run_dir / "executed.ipynb", spec.params | {"threads": threads}, threads)
        metrics = read_metrics(run_dir)
        if metrics is None:
            raise RuntimeError(f"the notebook finished but left no valid metrics.json in {run_dir}")
    except Exception as error:
        text = re.sub(r"\x1b\[[0-9;]*m", "", "".join(traceback.format_exception(error)))
        atomic_write(run_dir / "error.txt", lambda tmp: tmp.write_text(text))
        return RunOutcome(spec.row, spec.seed, "failed", spec.run_dir, time.perf_counter() - start, error=_error_line(error))
    return RunOutcome(spec.row, spec.seed, "done", spec.run_dir, time.perf_counter() - start,
                      auc=metrics["auc"], f1_best=metrics["f1_best"])


def _lost(spec: RunSpec, error: BaseException) -> RunOutcome:
    """A run whose worker died: nothing was recorded in its folder beyond what it wrote itself."""
    return RunOutcome(spec.row, spec.seed, "failed", spec.run_dir, error=f"worker lost: {_error_line(error)}")


def _execute(todo: list[RunSpec], notebook: str, jobs: int, scheduler: str | None) -> Iterator[RunOutcome]:
    if scheduler:
        from distributed import Client
        from distributed import as_completed as dask_completed

        with Client(scheduler) as client:
            futures = {client.submit(execute_run, spec, notebook, pure=False,
                                     key=f"cvgad-{spec.row}-seed{spec.seed}-{uuid.uuid4().hex[:8]}"): spec
                       for spec in todo}
            for future in dask_completed(futures):
                try:
                    yield future.result()
                except Exception as error:  # the worker died (KilledWorker, lost connection)
                    yield _lost(futures[future], error)
    elif jobs == 1:
        for spec in todo:
            yield execute_run(spec, notebook, threads=_cores())
    else:
        threads = max(1, _cores() // jobs)
        with ProcessPoolExecutor(max_workers=jobs, mp_context=get_context("spawn")) as pool:
            futures = {pool.submit(execute_run, spec, notebook, threads): spec for spec in todo}
            for future in as_completed(futures):
                try:
                    yield future.result()
                except Exception as error:  # BrokenProcessPool: a worker was killed
                    yield _lost(futures[future], error)


def _check_jobs(jobs: int) -> None:
    if isinstance(jobs, bool) or not isinstance(jobs, int) or jobs < 1:
        raise ValueError(f"jobs={jobs!r} is not valid; use 1 or more")


def run_grid(specs: list[RunSpec], notebook: str, jobs: int = 1, scheduler: str | None = None,
             on_outcome: Callable[[RunOutcome], None] | None = None) -> list[RunOutcome]:
    """Run every unfinished spec (`jobs` local processes, or the Dask cluster at `scheduler`), showing progress."""
    _check_jobs(jobs)
    outcomes, todo = [], []
    for spec in specs:
        metrics = finished_metrics(spec)
        if metrics is None:
            todo.append(spec)
        else:
            outcomes.append(RunOutcome(spec.row, spec.seed, "skipped", spec.run_dir,
                                       float(metrics.get("wall_seconds", 0.0)), metrics["auc"], metrics["f1_best"]))
    with tqdm(total=len(specs), initial=len(outcomes), unit="run", desc="ablation", file=sys.stderr) as bar:
        for outcome in outcomes:
            tqdm.write(outcome.describe(), file=sys.stderr)
            if on_outcome:
                on_outcome(outcome)
        for outcome in _execute(todo, notebook, jobs, scheduler):
            outcomes.append(outcome)
            bar.update()
            tqdm.write(outcome.describe(), file=sys.stderr)
            if on_outcome:
                on_outcome(outcome)
    return outcomes


def _names(text: str) -> list[str]:
    return [part.strip() for part in text.split(",") if part.strip()]


def _ints(text: str) -> list[int]:
    try:
        return [int(part) for part in _names(text)]
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a comma-separated list of integers, e.g. 0,1,2") from None


def add_ablate_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("grid", type=Path, help="grid YAML, e.g. ablations/table1.yaml")
    parser.add_argument("--preset", help="scale preset from the grid, e.g. ci, cpu, paper")
    parser.add_argument("--jobs", type=int, default=1, help="local worker processes (default 1)")
    parser.add_argument("--scheduler", help="Dask scheduler address (tcp://host:8786): run there instead of locally")
    parser.add_argument("--out", type=Path, default=Path("ablations/results"), help="results root (default ablations/results)")
    parser.add_argument("--rows", type=_names, help="comma-separated row ids (default: all rows)")
    parser.add_argument("--seeds", type=_ints, help="comma-separated seeds (default: the preset's)")
    parser.add_argument("--data-root", help="dataset folder (default: $CVGAD_DATA, else ./data)")
    parser.add_argument("--device", help="auto, cpu, cuda, cuda:N or mps (default: the grid's)")
    parser.add_argument("--notebook", type=Path, help="run notebook (default notebooks/run.ipynb)")


def ablate_main(args: argparse.Namespace) -> int:
    """`cvgad ablate`: 0 when every run finished, 1 when some failed, 2 on bad input."""
    try:
        grid = load_grid(args.grid)
        specs = plan_runs(grid, args.preset, args.out, rows=args.rows, seeds=args.seeds,
                          place={"device": args.device, "data_root": args.data_root})
        notebook = load_notebook(args.notebook)
        _check_jobs(args.jobs)
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    root = preset_dir(args.out, grid, args.preset)
    settings, seeds = grid.resolve(args.preset)
    paper, paper_note = grid.paper_for(args.preset)
    write_json_atomic(root / "plan.json", {
        "grid": grid.name, "description": grid.description, "preset": args.preset, "source": str(args.grid),
        "preset_description": grid.presets.get(args.preset, {}).get("description", "") if args.preset else "",
        "settings": settings, "seeds": seeds, "paper": paper, "paper_note": paper_note,
        "rows": [{"id": r.id, "label": r.label, "disabled": list(r.disabled)} for r in grid.rows]})
    start, outcomes = time.time(), []

    def record(outcome: RunOutcome) -> None:
        outcomes.append(outcome)
        write_json_atomic(root / "summary.json", {"started": start, "wall_seconds": time.time() - start,
                                                  "runs": [asdict(o) for o in outcomes]})

    run_grid(specs, notebook, jobs=args.jobs, scheduler=args.scheduler, on_outcome=record)
    counts = {s: sum(o.status == s for o in outcomes) for s in ("done", "skipped", "failed")}
    print(f"{len(outcomes)} runs in {time.time() - start:.0f} s: {counts['done']} done, {counts['skipped']} skipped, "
          f"{counts['failed']} failed. Results in {root}; table: cvgad report {root}")
    return 1 if counts["failed"] else 0
