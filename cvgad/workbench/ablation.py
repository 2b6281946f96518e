"""Run an ablation grid: every (row, varied settings' cell, seed) as papermill executing the run notebook.

Each run leaves its lab record in `<out>/<grid>/<preset>/<row>/seed<k>/`, or
`<row>/<setting>-<value>/seed<k>/` when the grid varies settings (the files of `cvgad.experiment.runs`).
A run counts as finished only when its metrics are valid and its params match the run asked
for, so a killed grid resumes where it stopped; a folder holding a run of another configuration
(a changed preset, today's defaults against an old record) is refused unless asked to replace
it. Paths are recorded as given (relative to the working directory), never made absolute, so the
records can be committed and moved.

Runs go to local worker processes (`jobs`; a `ProcessPoolExecutor`, because it needs nothing
beyond the standard library, starts at once, and each run is itself a kernel process that only
needs a parent to wait on it) or, given `scheduler`, to a Dask distributed cluster, where the
same `execute_run` runs on the workers (which must see the output folder and data: give them
absolute paths there). Ctrl-C cancels what has not started, ends the workers and their kernels,
and raises `Interrupted`; rerunning the same command resumes.
"""

from __future__ import annotations

import importlib.util
import logging
import multiprocessing
import os
import re
import shutil
import signal
import sys
import time
import traceback
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor, as_completed
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from tqdm.auto import tqdm

from cvgad.experiment import runs
from cvgad.experiment.params import PLACE, RunParams, defaults
from cvgad.workbench.grid import Grid, cells, load_grid

RUN_NOTEBOOK = Path("notebooks") / "run.ipynb"
KERNEL = "python3"
#: Notebook parameters that do not change what a run computes.
_NOT_IDENTITY = (*PLACE, "out_dir", "threads")
_THREAD_VARS = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")
#: What each way of running needs beyond the core install, and the extra that brings it.
_NEEDS = {"local": ("papermill", "jupytext", "nbformat", "psutil"), "dask": ("distributed",)}


class Interrupted(Exception):
    """Ctrl-C stopped the grid: `outcomes` ended before it, `stopped` runs were cut short, `cancelled` never began."""

    def __init__(self, outcomes: list[RunOutcome], stopped: int, cancelled: int) -> None:
        super().__init__(f"interrupted: {len(outcomes)} runs ended, {stopped} stopped mid-run, {cancelled} not started")
        self.outcomes, self.stopped, self.cancelled = outcomes, stopped, cancelled


def require_extras(scheduler: str | None) -> None:
    """Raises ImportError naming the missing packages and the extra that installs them."""
    wanted = _NEEDS["local"] + (_NEEDS["dask"] if scheduler else ())
    missing = [name for name in wanted if importlib.util.find_spec(name) is None]
    if missing:
        raise ImportError(f"cvgad ablate needs {', '.join(missing)}: pip install 'cvgad[ablation]'")


def run_name(row: str, cell: dict[str, Any], seed: int) -> str:
    """How the messages name a run, e.g. "all seed 0" or "ae anomaly_class=3 seed 0"."""
    return " ".join([row, *(f"{key}={value}" for key, value in cell.items()), f"seed {seed}"])


@dataclass(frozen=True)
class RunSpec:
    """One (row, cell, seed) of a grid: where it runs to and every parameter the notebook gets.

    `cell` holds the values of the settings the grid varies (also in `params`); empty when none."""

    row: str
    label: str
    seed: int
    run_dir: str
    params: dict[str, Any]
    cell: dict[str, Any] = field(default_factory=dict)

    def identity(self) -> dict[str, Any]:
        return identity(self.params)


def identity(params: dict[str, Any]) -> dict[str, Any]:
    """What a run computes: its parameters but the place and those left at their defaults."""
    default = defaults()
    as_given = {k: tuple(v) if isinstance(v, list) else v for k, v in params.items()}  # JSON turns tuples to lists
    return {k: v for k, v in as_given.items() if k not in _NOT_IDENTITY and not (k in default and v == default[k])}


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
    cell: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def of(
        cls,
        spec: RunSpec,
        status: str,
        seconds: float = 0.0,
        metrics: dict[str, Any] | None = None,
        error: str | None = None,
    ) -> RunOutcome:
        """The outcome of `spec`: its AUC and best-threshold F1 from `metrics` where it finished."""
        auc, f1_best = (metrics["auc"], metrics["f1_best"]) if metrics else (None, None)
        return cls(spec.row, spec.seed, status, spec.run_dir, seconds, auc, f1_best, error, spec.cell)

    def describe(self) -> str:
        head = run_name(self.row, self.cell, self.seed)
        if self.status == "failed":
            return f"{head}: FAILED {self.error} (see {self.run_dir}/error.txt)"
        return f"{head}: AUC {self.auc:.3f}  F1(best) {self.f1_best:.3f}  [{self.status}, {self.wall_seconds:.0f} s]"


def preset_dir(out: str | Path, grid: Grid, preset: str | None) -> Path:
    return Path(out) / grid.name / (preset or "default")


def plan_runs(
    grid: Grid,
    preset: str | None,
    out: str | Path,
    rows: list[str] | None = None,
    seeds: list[int] | None = None,
    place: dict[str, Any] | None = None,
) -> list[RunSpec]:
    """The runs of `grid` under `preset`, by row, cell and seed; `rows`/`seeds` pick a subset, `place`
    sets device/data_root."""
    _, preset_seeds = grid.resolve(preset)
    where = {k: v for k, v in (place or {}).items() if v is not None}
    root = preset_dir(out, grid, preset)
    specs = []
    for row in [grid.row(r) for r in rows] if rows else grid.rows:
        for cell in cells(grid.vary_for(preset)):
            settings = grid.run_settings(preset, row, cell) | where
            for seed in preset_seeds if seeds is None else seeds:
                if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
                    raise ValueError(f"seed {seed!r} is not valid; seeds are integers >= 0")
                run_dir = str(runs.seed_dir(root, row.id, seed, cell))
                params = settings | {"seed": seed, "disabled": list(row.disabled), "out_dir": run_dir}
                specs.append(RunSpec(row.id, row.label, seed, run_dir, params, cell))
    return specs


def find_run_notebook(start: str | Path | None = None) -> Path:
    """`notebooks/run.ipynb` in the working directory (or `start`) or one of its parents."""
    found = runs.find_upwards(RUN_NOTEBOOK, start) or runs.find_upwards(RUN_NOTEBOOK.with_suffix(".py"), start)
    if found is None:
        raise ValueError(
            f"no {RUN_NOTEBOOK} in {Path(start or Path.cwd()).resolve()} or its parents; run from the project's "
            "checkout or give the run notebook (--notebook)"
        )
    return found.with_suffix(".ipynb")


def load_notebook(path: str | Path | None = None) -> str:
    """The run notebook as JSON text: the .ipynb, or else its jupytext .py twin converted now."""
    import jupytext
    import nbformat

    path = Path(path) if path else find_run_notebook()
    if path.suffix == ".ipynb" and path.is_file():
        return path.read_text()
    source = path.with_suffix(".py") if path.suffix == ".ipynb" else path
    if not source.is_file():
        raise ValueError(
            f"run notebook {str(path)!r} not found (nor {str(source)!r}); give an .ipynb or a jupytext .py"
        )
    return nbformat.writes(jupytext.read(source))


def finished_metrics(spec: RunSpec) -> dict[str, Any] | None:
    """Metrics of an earlier run of exactly this spec (same identity), else None."""
    asked = runs.read_params(spec.run_dir)
    same = isinstance(asked, dict) and identity(runs.upgrade_params(asked)) == spec.identity()
    return runs.read_metrics(spec.run_dir) if same else None


def other_configuration(spec: RunSpec) -> str | None:
    """How the run recorded in `spec`'s folder differs from `spec` (the settings, recorded -> asked), or
    None when the folder holds no recorded run or one of this configuration."""
    asked = runs.read_params(spec.run_dir)
    if not isinstance(asked, dict):
        return None
    recorded, wanted = identity(runs.upgrade_params(asked)), spec.identity()
    differ = sorted(k for k in recorded.keys() | wanted.keys() if recorded.get(k) != wanted.get(k))
    return ", ".join(f"{k} {recorded.get(k, 'default')} -> {wanted.get(k, 'default')}" for k in differ) or None


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


class _RunParameters(logging.Filter):
    """Drops papermill's "Passed unknown parameter" warning for run parameters: the run notebook
    reads every RunParams field from its namespace, not only those its parameters cell names."""

    def filter(self, record: logging.LogRecord) -> bool:
        name = record.getMessage().removeprefix("Passed unknown parameter: ")
        return name not in (*RunParams.names(), "out_dir", "threads")


_RUN_PARAMETERS = _RunParameters()


def run_notebook(notebook: str, output: Path, parameters: dict[str, Any], threads: int) -> None:
    """Execute the notebook with papermill; the kernel inherits the thread limits and finds cvgad."""
    import nbformat
    import papermill

    package_parent = str(Path(__file__).resolve().parents[2])
    paths = os.environ.get("PYTHONPATH", "").split(os.pathsep)
    if package_parent not in paths:
        os.environ["PYTHONPATH"] = os.pathsep.join([package_parent, *filter(None, paths)])
    os.environ.update({var: str(threads) for var in _THREAD_VARS})
    logging.getLogger("papermill").addFilter(_RUN_PARAMETERS)
    papermill.execute_notebook(
        nbformat.reads(notebook, as_version=4),
        str(output),
        parameters=parameters,
        kernel_name=KERNEL,
        language="python",
        progress_bar=False,
        extra_arguments=["--IPKernelApp.log_level=ERROR"],
    )  # not one TCP warning per run


def _error_line(error: BaseException) -> str:
    if hasattr(error, "ename"):  # papermill.PapermillExecutionError: the error raised inside the notebook
        return f"{error.ename}: {getattr(error, 'evalue', '')}"
    return f"{type(error).__name__}: {error}"


def execute_run(spec: RunSpec, notebook: str, threads: int | None = None) -> RunOutcome:
    """Run one spec from scratch; never raises an Exception: a failure is written to error.txt and returned."""
    start = time.perf_counter()
    runs.begin_grid_run(spec.run_dir, spec.params)
    threads = threads or _threads_here()
    try:
        run_notebook(notebook, Path(spec.run_dir) / runs.EXECUTED, spec.params | {"threads": threads}, threads)
        metrics = runs.read_metrics(spec.run_dir)
        if metrics is None:
            raise RuntimeError(f"the notebook finished but left no valid {runs.METRICS} in {spec.run_dir}")
    except Exception as error:
        runs.write_error(spec.run_dir, re.sub(r"\x1b\[[0-9;]*m", "", "".join(traceback.format_exception(error))))
        return RunOutcome.of(spec, "failed", time.perf_counter() - start, error=_error_line(error))
    return RunOutcome.of(spec, "done", time.perf_counter() - start, metrics)


def _lost(spec: RunSpec, error: BaseException) -> RunOutcome:
    """A run whose worker died: nothing was recorded in its folder beyond what it wrote itself."""
    return RunOutcome.of(spec, "failed", error=f"worker lost: {_error_line(error)}")


def _stop_children() -> None:
    """Ends every process this one started (pool workers, papermill's kernels) and waits for them."""
    import psutil

    # multiprocessing's resource tracker ignores SIGTERM and ends by itself with this process
    children = [c for c in psutil.Process().children(recursive=True) if "resource_tracker" not in " ".join(c.cmdline())]
    for child in children:
        child.terminate()
    _, alive = psutil.wait_procs(children, timeout=10)
    for child in alive:
        child.kill()


def _execute(todo: list[RunSpec], notebook: str, jobs: int, scheduler: str | None) -> Iterator[RunOutcome]:
    """Outcomes as runs end."""
    if scheduler:
        from distributed import Client
        from distributed import as_completed as dask_completed

        with Client(scheduler) as client:
            tasks = {
                client.submit(
                    execute_run,
                    spec,
                    notebook,
                    pure=False,
                    key=f"cvgad-{run_name(spec.row, spec.cell, spec.seed)}-{uuid.uuid4().hex[:8]}",
                ): spec
                for spec in todo
            }
            try:
                for task in dask_completed(tasks):
                    try:
                        yield task.result()
                    except Exception as error:  # the worker died (KilledWorker, lost connection)
                        yield _lost(tasks[task], error)
            except KeyboardInterrupt:
                client.cancel(list(tasks))
                raise
    elif jobs == 1:
        for spec in todo:
            yield execute_run(spec, notebook, threads=_cores())
    else:
        threads = max(1, _cores() // jobs)
        # workers ignore SIGINT: Ctrl-C reaches this process alone, which stops them in order
        pool = ProcessPoolExecutor(
            max_workers=jobs,
            mp_context=multiprocessing.get_context("spawn"),
            initializer=signal.signal,
            initargs=(signal.SIGINT, signal.SIG_IGN),
        )
        futures: dict[Future[RunOutcome], RunSpec] = {}
        try:
            futures = {pool.submit(execute_run, spec, notebook, threads): spec for spec in todo}
            for future in as_completed(futures):
                try:
                    yield future.result()
                except Exception as error:  # BrokenProcessPool: a worker was killed
                    yield _lost(futures[future], error)
        except KeyboardInterrupt:
            pool.shutdown(wait=False, cancel_futures=True)
            _stop_children()
            raise
        finally:
            pool.shutdown(wait=True)


def check_jobs(jobs: int) -> None:
    if isinstance(jobs, bool) or not isinstance(jobs, int) or jobs < 1:
        raise ValueError(f"jobs={jobs!r} is not valid; use 1 or more")


def run_grid(
    specs: list[RunSpec],
    notebook: str,
    jobs: int = 1,
    scheduler: str | None = None,
    on_outcome: Callable[[RunOutcome], None] | None = None,
) -> list[RunOutcome]:
    """Run every unfinished spec (`jobs` local processes, or the Dask cluster at `scheduler`), showing progress.

    Ctrl-C raises `Interrupted` once the workers and their kernels have ended."""
    check_jobs(jobs)
    outcomes: list[RunOutcome] = []
    todo: list[RunSpec] = []
    for spec in specs:
        metrics = finished_metrics(spec)
        if metrics is None:
            todo.append(spec)
        else:
            outcomes.append(RunOutcome.of(spec, "skipped", float(metrics.get("wall_seconds", 0.0)), metrics))
    began = time.time()
    with tqdm(total=len(specs), initial=len(outcomes), unit="run", desc="ablation", file=sys.stderr) as bar:
        for outcome in outcomes:
            tqdm.write(outcome.describe(), file=sys.stderr)
            if on_outcome:
                on_outcome(outcome)
        try:
            for outcome in _execute(todo, notebook, jobs, scheduler):
                outcomes.append(outcome)
                bar.update()
                tqdm.write(outcome.describe(), file=sys.stderr)
                if on_outcome:
                    on_outcome(outcome)
        except KeyboardInterrupt:
            if not scheduler:
                _stop_children()
            ended = {o.run_dir for o in outcomes}
            left = [s for s in todo if s.run_dir not in ended]
            stopped = sum(runs.begun_since(s.run_dir, began) for s in left)
            raise Interrupted(outcomes, stopped, len(left) - stopped) from None
    return outcomes


def ablate(
    grid_file: str | Path,
    preset: str | None = None,
    out: str | Path = "ablations/results",
    jobs: int = 1,
    scheduler: str | None = None,
    rows: list[str] | None = None,
    seeds: list[int] | None = None,
    device: str | None = None,
    data_root: str | None = None,
    notebook: str | Path | None = None,
    replace: bool = False,
) -> tuple[Path, list[RunOutcome]]:
    """Runs (or resumes) a grid: validates everything first, records the plan, then every unfinished run.

    A run folder that holds a run of another configuration is refused (ValueError), never
    overwritten or mixed into the record; with `replace`, such folders are removed first.
    Returns the preset's results folder and the outcomes. Raises ValueError on bad input and
    ImportError when an extra is missing, both before anything runs."""
    grid = load_grid(grid_file)
    specs = plan_runs(grid, preset, out, rows=rows, seeds=seeds, place={"device": device, "data_root": data_root})
    check_jobs(jobs)
    require_extras(scheduler)
    text = load_notebook(notebook)
    root = preset_dir(out, grid, preset)
    others = [spec for spec in specs if other_configuration(spec)]
    if others and not replace:
        raise ValueError(
            f"{len(others)} run folder(s) under {root} hold runs of another configuration (e.g. {others[0].run_dir}: "
            f"{other_configuration(others[0])}); remove them, or remake the record with `cvgad ablate ... --replace` "
            "(or `cvgad reproduce --only NAME`), which replaces them"
        )
    for spec in others:
        shutil.rmtree(spec.run_dir)
    runs.write_plan(root, grid.plan(preset, str(grid_file)))
    began, outcomes, load = runs.begin(), [], []

    def record(outcome: RunOutcome) -> None:
        """Rewrites the summary after each run, with the machine's load (timings mean little without it)."""
        outcomes.append(outcome)
        load.append(os.getloadavg()[0])
        summary = {
            "started": began.time,
            "wall_seconds": time.time() - began.time,
            "jobs": jobs,
            "cores": _cores(),
            "load_1min_mean": sum(load) / len(load),
            "load_1min_max": max(load),
            "provenance": runs.provenance(began, device or "auto", threads=max(1, _cores() // jobs)),
            "runs": [asdict(o) for o in outcomes],
        }
        runs.write_summary(root, summary)

    run_grid(specs, text, jobs=jobs, scheduler=scheduler, on_outcome=record)
    return root, outcomes
