"""Ablation grids: which runs an ablation is made of, read from YAML and validated.

A grid (e.g. `ablations/table1.yaml`) lists rows (which losses to switch off, and any settings
of their own, e.g. `model: ae`), seeds, the settings every run shares, presets that override
those settings for a scale (`ci`, `cpu`, `paper`) and, optionally, `vary`: settings each run
over a list of values (e.g. `vary: {anomaly_class: [0, 1, 2]}`), crossed with the rows and the
seeds. A run's settings are, each overriding the one before: the defaults, the grid's settings,
the preset's, then the row's own and its cell's `vary` values (a setting may not be both in a
row and in `vary`); so a row's settings win over the preset's. A preset's `vary` replaces the
grid's. Bad input fails here, before any run starts, with the bad value and the valid ones.
`cvgad.workbench.ablation` turns a grid into runs and executes them.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from cvgad.experiment.params import ParamType, RunParams, defaults, param_types
from cvgad.model.config import LOSS_NAMES

#: Settings a grid may give: every run parameter but `seed` and `disabled` (those come from
#: the seeds and the rows), with the types its annotation allows.
SETTINGS: dict[str, ParamType] = {name: t for name, t in param_types().items() if name not in ("seed", "disabled")}
GRID_KEYS = ("name", "description", "paper", "published", "seeds", "rows", "presets", "vary")
PRESET_KEYS = ("description", "seeds", "vary")
#: A row's own keys; it may also give any of the `SETTINGS`.
ROW_KEYS = ("id", "label", "disabled")
_ID = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]*$")


def _fail(message: str) -> None:
    raise ValueError(message)


def _valid(keys: Iterable[str]) -> str:
    return ", ".join(sorted(keys))


def _describe(settings: dict[str, Any]) -> str:
    return ", ".join(f"{key}={value}" for key, value in settings.items())


def _check_keys(where: str, given: dict, allowed: tuple[str, ...] | list[str]) -> None:
    unknown = sorted(set(given) - set(allowed))
    if unknown:
        _fail(f"{where}: unknown key(s) {unknown}; valid keys: {_valid(allowed)}")


def _type_names(t: ParamType) -> str:
    names = [t.base.__name__] + (["null"] if t.optional else [])
    return " or ".join(names) + (f" (one of {_valid([str(c) for c in t.choices])})" if t.choices else "")


def _check_type(where: str, name: str, value: Any, types: tuple[type, ...]) -> None:
    wrong_bool = isinstance(value, bool) and bool not in types
    if wrong_bool or not isinstance(value, types):
        names = " or ".join("null" if t is type(None) else t.__name__ for t in types)
        _fail(f"{where}: {name}={value!r} has type {type(value).__name__}; expected {names}")


def _check_setting(where: str, name: str, value: Any) -> None:
    t = SETTINGS[name]
    accepted = (t.base, int) if t.base is float else (t.base,)  # YAML writes 1.0 as 1 only by choice
    if value is None and t.optional:
        return
    if (isinstance(value, bool) and t.base is not bool) or not isinstance(value, accepted):
        _fail(f"{where}: {name}={value!r} has type {type(value).__name__}; expected {_type_names(t)}")
    if t.choices and value not in t.choices:
        _fail(f"{where}: {name}={value!r} is not valid; choose one of {_valid([str(c) for c in t.choices])}")


def _check_seeds(where: str, seeds: Any) -> list[int]:
    if not isinstance(seeds, list) or not seeds:
        _fail(f"{where}: seeds={seeds!r} is not valid; give a non-empty list of integers, e.g. [0, 1, 2]")
    for seed in seeds:
        _check_type(where, "seed", seed, (int,))
        if seed < 0:
            _fail(f"{where}: seed {seed} is not valid; seeds must be >= 0")
    if len(set(seeds)) != len(seeds):
        _fail(f"{where}: seeds={seeds} repeat a seed; each seed must appear once")
    return list(seeds)


def check_settings(where: str, settings: dict[str, Any], disabled: tuple[str, ...] = ()) -> None:
    """Types first (naming key and value), then values through the project's config classes (with
    the losses a row switches off, which must be losses of the row's model)."""
    _check_keys(where, settings, list(SETTINGS))
    for name, value in settings.items():
        _check_setting(where, name, value)
    try:
        RunParams(**settings | {"disabled": disabled}).config()
    except ValueError as error:
        raise ValueError(f"{where}: {error}") from None


def _check_vary(where: str, vary: Any) -> None:
    """`vary` must be {setting: non-empty list of distinct valid values, each fit to name a folder}."""
    if not isinstance(vary, dict):
        _fail(
            f"{where}: vary={vary!r} is not valid; give a mapping of settings to lists, e.g. {{anomaly_class: [0, 1]}}"
        )
    _check_keys(f"{where}: vary", vary, list(SETTINGS))
    for name, values in vary.items():
        if not isinstance(values, list) or not values:
            _fail(f"{where}: vary {name}={values!r} is not valid; give a non-empty list of values")
        for value in values:
            _check_setting(f"{where}: vary", name, value)
            if not _ID.match(str(value)):
                _fail(
                    f"{where}: vary {name}={value!r} is not valid; it names a folder (letters, digits, '_', '.', '-')"
                )
        if len(set(map(str, values))) != len(values):
            _fail(f"{where}: vary {name}={values} repeats a value; each value must appear once")


def cells(vary: Mapping[str, list[Any]]) -> list[dict[str, Any]]:
    """Every combination of the `vary` values, the first setting slowest: [{}] when nothing varies."""
    return [dict(zip(vary, values, strict=True)) for values in itertools.product(*vary.values())]


@dataclass(frozen=True)
class Row:
    """One row of an ablation table: an id (its folder name), a label, the losses it switches off
    and the settings it gives its runs (over the grid's and the preset's)."""

    id: str
    label: str
    disabled: tuple[str, ...] = ()
    settings: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not isinstance(self.id, str) or not _ID.match(self.id):
            _fail(f"row id {self.id!r} is not valid; use letters, digits, '_', '.', '-' (it names a folder)")
        _check_type(f"row {self.id}", "label", self.label, (str,))
        if not isinstance(self.disabled, (list, tuple)):
            _fail(f"row {self.id}: disabled={self.disabled!r} is not valid; give a list of loss names")
        for name in self.disabled:
            if name not in LOSS_NAMES:
                _fail(f"row {self.id}: unknown loss name {name!r} in disabled; valid: {_valid(LOSS_NAMES)}")
        if len(set(self.disabled)) != len(self.disabled):
            _fail(f"row {self.id}: disabled={list(self.disabled)} names a loss twice")
        object.__setattr__(self, "disabled", tuple(self.disabled))
        if not isinstance(self.settings, dict):
            _fail(f"row {self.id}: settings={self.settings!r} is not valid; give a mapping of settings")
        _check_keys(f"row {self.id}", self.settings, list(SETTINGS))
        for name, value in self.settings.items():
            _check_setting(f"row {self.id}", name, value)


@dataclass(frozen=True)
class Grid:
    """A validated ablation grid: rows x `vary` cells x seeds, shared settings, presets and the paper's values."""

    name: str
    rows: tuple[Row, ...]
    seeds: list[int]
    settings: dict[str, Any] = field(default_factory=dict)
    presets: dict[str, dict[str, Any]] = field(default_factory=dict)
    description: str = ""
    #: The paper's values by row id, e.g. {"all": {"auc": 0.853, "f1": 0.845}}; may be empty.
    paper: dict[str, dict[str, float]] = field(default_factory=dict)
    #: Settings each run over a list of values, e.g. {"anomaly_class": [0, 1, 2]}; may be empty.
    vary: dict[str, list[Any]] = field(default_factory=dict)
    #: Published values per method and value of one varied setting (Tables 2 and 3), from
    #: `read_published_csv`: [{"method": "GPND", "dataset": "mnist", "n_inliers": 1, "auc": ..., "f1": ...}].
    published: list[dict[str, Any]] = field(default_factory=list)

    def __post_init__(self) -> None:
        if not _ID.match(self.name):
            _fail(f"grid name {self.name!r} is not valid; use letters, digits, '_', '.', '-' (it names a folder)")
        if not self.rows:
            _fail(f"grid {self.name}: rows is empty; give at least one row")
        ids = [row.id for row in self.rows]
        if len(set(ids)) != len(ids):
            _fail(f"grid {self.name}: row ids {ids} repeat an id; each id must be unique")
        _check_seeds(f"grid {self.name}", self.seeds)
        check_settings(f"grid {self.name}", self.settings)
        _check_vary(f"grid {self.name}", self.vary)
        for preset, overrides in self.presets.items():
            if not isinstance(overrides, dict):
                _fail(f"grid {self.name}: preset {preset!r} must be a mapping of settings, got {overrides!r}")
            _check_keys(f"preset {preset}", overrides, list(SETTINGS) + list(PRESET_KEYS))
            _check_vary(f"preset {preset}", self.vary_for(preset))
        run_at: list[str | None] = [*self.presets] or [None]  # a grid with presets runs only at one
        for name in run_at:
            self._check_runs(name)
        if self.published:
            key = published_setting(self.published)
            for name in run_at:
                if key not in self.vary_for(name):
                    where = f"preset {name}" if name else "the grid"
                    _fail(f"grid {self.name}: published values are per {key}, which {where} does not vary")
        unknown = sorted(set(self.paper) - set(ids))
        if unknown:
            _fail(f"grid {self.name}: paper values for unknown row(s) {unknown}; rows are {_valid(ids)}")

    def row(self, row_id: str) -> Row:
        for row in self.rows:
            if row.id == row_id:
                return row
        raise ValueError(f"unknown row {row_id!r} in grid {self.name}; valid rows: {_valid([r.id for r in self.rows])}")

    def resolve(self, preset: str | None) -> tuple[dict[str, Any], list[int]]:
        """Every setting (defaults < grid < preset) and the seeds, for `preset` (None: no preset)."""
        if preset is None and self.presets:
            _fail(f"grid {self.name} has presets; choose one of {_valid(self.presets)} (--preset)")
        if preset is not None and preset not in self.presets:
            valid = _valid(self.presets) if self.presets else "none (this grid has no presets)"
            _fail(f"unknown preset {preset!r} for grid {self.name}; valid presets: {valid}")
        overrides = dict(self.presets.get(preset, {}) if preset else {})
        seeds = _check_seeds(f"preset {preset}", overrides.pop("seeds", self.seeds))
        overrides.pop("description", None)
        overrides.pop("vary", None)
        merged = self.settings | overrides
        check_settings(f"preset {preset}", merged)
        return {name: value for name, value in defaults().items() if name in SETTINGS} | merged, seeds

    def vary_for(self, preset: str | None) -> dict[str, list[Any]]:
        """The settings `preset` varies: its own `vary`, else the grid's."""
        return self.presets.get(preset, {}).get("vary", self.vary) if preset else self.vary

    def run_settings(self, preset: str | None, row: Row, cell: Mapping[str, Any]) -> dict[str, Any]:
        """Every setting of `row`'s runs in `cell` (one combination of `vary_for(preset)`)."""
        return self.resolve(preset)[0] | row.settings | dict(cell)

    def _check_runs(self, preset: str | None) -> None:
        """Every row in every cell of `preset` is a valid run; no setting is both a row's and varied."""
        vary = self.vary_for(preset)
        for row in self.rows:
            both = sorted(set(row.settings) & set(vary))
            if both:
                _fail(
                    f"row {row.id}: {both} also in vary (preset {preset}); a setting is either varied or set by a row"
                )
            for cell in cells(vary):
                check_settings(
                    f"preset {preset}, row {row.id}, {_describe(cell)}",
                    self.run_settings(preset, row, cell),
                    row.disabled,
                )

    def plan(self, preset: str | None, source: str) -> dict[str, Any]:
        """What `runs.write_plan` records beside a preset's results: the grid as it runs there."""
        settings, seeds = self.resolve(preset)
        paper, paper_note = self.paper_for(preset)
        return {
            "grid": self.name,
            "description": self.description,
            "preset": preset,
            "source": source,
            "preset_description": self.presets.get(preset, {}).get("description", "") if preset else "",
            "settings": settings,
            "seeds": seeds,
            "vary": self.vary_for(preset),
            "paper": paper,
            "paper_note": paper_note,
            "published": [p for p in self.published if p.get("dataset", settings["dataset"]) == settings["dataset"]],
            "rows": [
                {"id": r.id, "label": r.label, "disabled": list(r.disabled), "settings": r.settings} for r in self.rows
            ],
        }

    def paper_for(self, preset: str | None) -> tuple[dict[str, dict[str, float]], str]:
        """The paper's values when `preset` runs the grid's own task (dataset, protocol, class); else none, and why."""
        settings, _ = self.resolve(preset)
        task = ("dataset", "protocol", "anomaly_class")
        vary = self.vary_for(preset)
        base = {key: self.vary.get(key, self.settings.get(key, defaults()[key])) for key in task}
        ours = {key: vary.get(key, settings[key]) for key in task}
        if ours == base:
            return self.paper, ""
        return (
            {},
            f"Preset {preset} runs {_describe(ours)}; the paper's values ({_describe(base)}) "
            "are not comparable and not shown.",
        )


def read_paper_csv(path: str | Path) -> dict[str, dict[str, float]]:
    """The paper's values from a CSV with columns row, label, f1, auc."""
    import pandas as pd

    table = pd.read_csv(path)
    missing = {"row", "f1", "auc"} - set(table.columns)
    if missing:
        _fail(f"{path}: missing column(s) {sorted(missing)}; need row, f1, auc (label optional)")
    return {str(r.row): {"f1": float(r.f1), "auc": float(r.auc)} for r in table.itertuples()}


def read_published_csv(path: str | Path) -> list[dict[str, Any]]:
    """Published values from a CSV with columns method, auc, f1, one varied setting (e.g.
    n_inliers) and optionally dataset (a row is then shown only for runs on that dataset)."""
    import pandas as pd

    table = pd.read_csv(path)
    missing = {"method", "auc", "f1"} - set(table.columns)
    keys = [c for c in table.columns if c in SETTINGS and c != "dataset"]
    if missing or len(keys) != 1:
        _fail(
            f"{path}: needs columns method, auc, f1 and exactly one grid setting (e.g. n_inliers); "
            f"has {list(table.columns)}"
        )
    table = table.astype(object).where(table.notna(), None)  # a value not published: null in plan.json, not NaN
    return [{k: v.item() if hasattr(v, "item") else v for k, v in r.items()} for r in table.to_dict("records")]


def published_setting(published: list[dict[str, Any]]) -> str:
    """The grid setting published values are given for: the one setting column of their CSV."""
    return next(k for k in published[0] if k in SETTINGS and k != "dataset")


def load_grid(path: str | Path) -> Grid:
    """Read and validate a grid YAML; the grid's name defaults to the file's stem."""
    path = Path(path)
    if not path.is_file():
        _fail(f"grid file {str(path)!r} does not exist")
    data = yaml.safe_load(path.read_text())
    if not isinstance(data, dict):
        _fail(f"{path}: a grid must be a YAML mapping with keys {_valid(GRID_KEYS)} and settings")
    _check_keys(str(path), data, list(GRID_KEYS) + list(SETTINGS))
    for key in ("rows", "seeds"):
        if key not in data:
            _fail(f"{path}: missing required key {key!r}")
    if not isinstance(data["rows"], list):
        _fail(f"{path}: rows must be a list of {{id, label, disabled, settings...}} mappings")
    rows = []
    for entry in data["rows"]:
        if not isinstance(entry, dict) or "id" not in entry:
            _fail(f"{path}: row {entry!r} is not valid; give a mapping with keys {_valid(ROW_KEYS)} and settings")
        _check_keys(f"row {entry['id']}", entry, [*ROW_KEYS, *SETTINGS])
        rows.append(
            Row(
                id=entry["id"],
                label=entry.get("label", entry["id"]),
                disabled=entry.get("disabled") or (),
                settings={key: value for key, value in entry.items() if key not in ROW_KEYS},
            )
        )
    paper = read_paper_csv(path.parent / data["paper"]) if data.get("paper") else {}
    published = read_published_csv(path.parent / data["published"]) if data.get("published") else []
    settings = {key: data[key] for key in SETTINGS if key in data}
    return Grid(
        name=str(data.get("name", path.stem)),
        rows=tuple(rows),
        seeds=data["seeds"],
        settings=settings,
        presets=data.get("presets") or {},
        description=str(data.get("description", "")),
        paper=paper,
        published=published,
        vary=data.get("vary", {}),
    )
