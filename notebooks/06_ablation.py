# ---
# jupyter:
#   jupytext:
#     cell_metadata_filter: tags,mystnb,-papermill,-execution
#     formats: ipynb,py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#       jupytext_version: 1.19.7
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %% [markdown]
# # The loss-removal ablation
#
# Section III.E of {cite:t}`bian2019` removes one loss at a time and retrains on CIFAR-10 with
# deer as the anomaly and the nine other classes as normal (the leave-one-class-out protocol of
# III.D). Table 1 of the paper reports one AUC and one F1 per row: 0.853 and 0.845 with all
# losses, and the largest drop without the Wasserstein loss. This chapter states what each row
# removes in `cvgad`, shows the sizes at which the project reruns the table, and renders two
# records: the grid on the book's digits task, where the model learns, and on the paper's task at
# a CPU budget, beside the paper's values; each row is paired by seed with the others and with the
# untrained network.
# Numbers in this chapter are read from result files or computed from them; none is typed in.
#
# The grid lives in `ablations/table1.yaml`; `cvgad ablate` runs it (each row and seed is the
# run notebook executed by papermill) and `cvgad report` aggregates it:
#
# ```text
# cvgad ablate ablations/table1.yaml --preset cpu --jobs 2
# cvgad report ablations/results/table1/cpu
# ```
#
# With `run_live = True` this chapter runs the small `ci` grid itself (a few minutes to tens of
# minutes on a CPU, depending on the load) and reports that instead.
#
# ## Bottom line
#
# {glue:md}`ch6_bottom_digits`
#
# {glue:md}`ch6_bottom_cifar`
#
# Both paragraphs are written by the code of this chapter from the recorded runs; the sections
# below show the tables and the tests behind them.

# %% tags=["parameters", "hide-input"]
dataset = "digits"  # live run only: the dataset of the ci grid
anomaly_class = 1  # live run only: the anomalous class of the ci grid
epochs = None  # live run only: None keeps the ci preset's epochs
seed = 0  # live run only: first seed; the live run keeps the ci preset's number of seeds
device = "auto"  # live run only: auto, cpu, cuda, cuda:N or mps
data_root = None  # live run only: None means $CVGAD_DATA, else ./data
results = "../ablations/results/table1/cpu"  # recorded results (relative to notebooks/ or to the repo root)
digits_results = "../ablations/results/table1/digits"  # the digits preset's recorded results
run_live = False  # True: run the ci grid now and report it instead of `results`
jobs = 1  # live run only: local worker processes

# %% tags=["hide-input"]
import dataclasses
import itertools
from pathlib import Path

import matplotlib.pyplot as plt
import pandas as pd
import torch
from IPython.display import Markdown, display
from myst_nb import glue

import cvgad
from cvgad.experiment.params import PLACE, make_config
from cvgad.experiment.runs import read_plan
from cvgad.model.algorithm1 import CYCLE, UPDATES, CVGADTrainer, applied
from cvgad.model.config import LossConfig, ModelConfig, TrainConfig
from cvgad.workbench import plots
from cvgad.workbench.formatting import fmt
from cvgad.workbench.grid import load_grid
from cvgad.workbench.report import write_report
from cvgad.workbench.results import load_runs, paired_differences
from cvgad.workbench.table1 import RULES, aggregate, agreement, results_table, statements

plots.use_house_style()

pd.set_option("display.width", 200)
pd.set_option("display.max_columns", 20)


def repo_roots() -> list[Path]:
    """Folders that hold `ablations/`: the working directory or a parent, and the package's checkout."""
    here = Path.cwd().resolve()
    roots = [p for p in (here, *here.parents) if (p / "ablations").is_dir()]
    package_root = Path(cvgad.__file__).resolve().parents[1]
    return list(dict.fromkeys(roots + ([package_root] if (package_root / "ablations").is_dir() else [])))


def shown(path: Path) -> str:
    """A path as the reader should see it: relative to the repository when inside it."""
    try:
        return str(path.resolve().relative_to(REPO))
    except ValueError:
        return str(path)


def find_results(given: str) -> Path | None:
    path = Path(given).expanduser()
    candidates = [path]
    if not path.is_absolute():
        tail = Path(*itertools.dropwhile(lambda part: part in ("..", "."), path.parts))
        candidates += [root / tail for root in ROOTS]
    return next((c.resolve() for c in candidates if c.is_dir()), None)


ROOTS = repo_roots()
if not ROOTS:
    raise FileNotFoundError("no folder with ablations/ above the working directory nor beside the cvgad package")
REPO = ROOTS[0]
GRID_FILE = REPO / "ablations" / "table1.yaml"
grid = load_grid(GRID_FILE)
print(f"grid {grid.name}: {len(grid.rows)} rows, read from {GRID_FILE.relative_to(REPO)}")

# %% tags=["remove-input"]
from cvgad.book import caveats

caveats.shown("06_ablation")

# %% [markdown]
# ## What each row removes
#
# `cvgad.model.algorithm1.CVGADTrainer` follows Algorithm 1 of the paper (chapter 3): on counter values 0 to 3
# a batch gets a critic update and then separate CVAE updates by the reconstruction loss, the
# latent (+ categorical) loss, negative training (only while the latent loss is below $T$), the
# mutual information loss and the reconstruction loss again; counter 4 updates the critic only
# and counter 5 the generator. A row of Table 1 switches one loss off through
# `LossConfig.disabled`, and this is what disappears:
#
# | row | loss switched off | updates of Algorithm 1 that disappear |
# |---|---|---|
# | `all` | none | none |
# | `no_mi` | mutual information | the MI update (line 10) |
# | `no_latent` | latent | the latent + categorical update (line 7); negative training stays, still gated on the latent loss, which is computed without gradient only to decide the gate |
# | `no_ssim` | SSIM | no update disappears: both reconstruction updates (lines 6 and 11) keep only the L1 term |
# | `no_l1` | L1 | no update disappears: both reconstruction updates keep only the SSIM term |
# | `no_wasserstein` | Wasserstein | every critic update (lines 5 and 13) and the generator update (line 15); the batches of counters 4 and 5 then do nothing |
# | `no_negative` | negative training | the negative-training update (line 9) |
#
# The anomaly score (SSIM loss plus L1 error, each min-max normalised, II.F) is the same in every
# row: `no_ssim` and `no_l1` change training, not scoring. Without the Wasserstein loss the
# batches of counters 4 and 5 do nothing: the CVAE loses its generator update, but its other
# updates, which only ever happen on counters 0 to 3, are as many as in every other row.
#
# The table above is a claim about the code; the cell below checks it. It builds a tiny CVAE and
# critic for each row, steps one full cycle of six batches of random images, and counts which
# updates the trainer made. The gate is set to an absolute, infinite $T$ here so that negative
# training always passes it (with the default gate, shut for the whole first epoch, it never does).

# %% tags=["nbval-check-output"]
torch.set_num_threads(1)
tiny = ModelConfig(channels=1, latent_dim=4, n_clusters=2, width=4)
images = torch.rand(2, 1, 32, 32, generator=torch.Generator().manual_seed(0))
counted = {}
for grid_row in grid.rows:
    losses = LossConfig(disabled=grid_row.disabled, negative_gate="absolute", negative_threshold=float("inf"))
    trainer = CVGADTrainer(tiny, TrainConfig(batch_size=2, device="cpu", amp=False, seed=0, losses=losses))
    made = dict.fromkeys(UPDATES, 0)
    for _ in range(CYCLE):
        for update in applied(trainer.step(images)):
            if update in made:
                made[update] += 1
    terms = [name.upper() if name == "ssim" else "L1" for name in ("ssim", "l1") if losses.on(name)]
    counted[grid_row.id] = made | {"reconstruction terms": " + ".join(terms)}
updates = pd.DataFrame.from_dict(counted, orient="index").rename_axis("row")
print(f"updates made in one cycle of {CYCLE} batches (Algorithm 1), per row:")
print(updates.to_string())

# %% [markdown]
# Read across the `all` line: five critic updates and one generator update per cycle (the WGAN-GP
# ratio), four of each CVAE update. Every other line differs from it only in the column of its
# own loss, except `no_ssim` and `no_l1`, which differ in the reconstruction terms.
#
# ## The presets
#
# The paper trains on the full CIFAR-10 protocol of III.D; it does not say for how many epochs.
# The grid has three sizes. `ci` is a smoke test on the small digits set (anomaly 1), so its
# numbers cannot be compared with the paper's at all. `cpu` keeps the paper's task (CIFAR-10,
# deer) but trains on a subset for a few epochs, so that one run takes minutes on two CPU cores.
# `paper` is the full protocol, for a GPU. `digits` is the book's own task, where the model
# learns (the next section). Chapter 10's table of presets lists each one's sizes and its
# recorded minutes per run. Two more, `released` (for a GPU) and `released_cpu`
# (at the `cpu` size), set what the authors' released code sets and this project can express:
# latent 300, learning rate 2e-4, $-\log$ SSIM : L1 = 50 : 50, no gate $T$, scoring with batch
# statistics over a normals-first test set with the feature discriminator's term, and the best
# test AUC over epochs (an oracle); their descriptions below say what they leave out. No results
# are recorded for them yet. Settings left at `None` take the defaults for the dataset
# (`cvgad.experiment.params.RunParams.config`); the lines marked "(resolved)" show the values a run actually
# gets. The table shows the settings that size the task and the model; every other run parameter
# stays at its default in this grid.

# %% tags=["nbval-check-output", "hide-input"]
SHOWN = ("dataset", "protocol", "anomaly_class", "epochs", "train_subset", "test_subset", "width", "latent_dim",
         "batch_size", "n_clusters")
columns = {}
for preset in grid.presets:
    settings, seeds = grid.resolve(preset)
    cfg = make_config(**{k: v for k, v in settings.items() if k not in PLACE})
    columns[preset] = {**{k: str(settings[k]) for k in SHOWN},
                       "epochs (resolved)": cfg.train.epochs, "width (resolved)": cfg.model.width,
                       "n_clusters (resolved)": cfg.model.n_clusters, "latent weight (resolved)": cfg.train.losses.latent,
                       "seeds": ", ".join(map(str, seeds)), "runs (rows x seeds)": len(grid.rows) * len(seeds)}
presets = pd.DataFrame(columns).astype(str).rename_axis("setting")
print(presets.to_string())
print()
for preset, spec in grid.presets.items():
    print(f"{preset}: {spec.get('description', '')}")

# %% [markdown]
# `train_subset` caps the training images and `test_subset` the test images (drawn stratified, so
# the share of anomalies stays that of the full test set); `None` means all of them. A grid is
# run at one preset; its results go to `ablations/results/<grid>/<preset>/<row>/seed<k>/`.
#
# ## Table 1 where the model learns: the book's digits task
#
# A loss can only be shown to matter where the model learns something. The `digits` preset runs
# the grid on the book's default task and budget (chapters 3 to 5: digit 7 as the anomaly, six
# epochs, every training and test image), where the trained model beats its untrained self
# (chapter 4), with one more row, `untrained`: each seed's network before training (`epochs: 0`),
# scored in the same way. Recorded with
#
# ```text
# cvgad ablate ablations/table1.yaml --preset digits --jobs 2
# cvgad report ablations/results/table1/digits
# ```

# %% tags=["hide-input"]
digits_dir = find_results(digits_results)
if digits_dir is None:
    raise FileNotFoundError(f"no recorded digits grid at {digits_results!r}; run the two commands above")
digits_runs, digits_source = load_runs(digits_dir)
digits_table = aggregate(digits_runs)
digits_n = int(digits_table.set_index("row").at["all", "n"])
print(f"{int((digits_runs['status'] == 'ok').sum())} finished runs in {shown(digits_dir)}, read from {digits_source}")
shown_digits = results_table(digits_table)
display(shown_digits[["n", "AUC (chance 0.5)", "F1, best threshold (paper's metric)", "F1 at validation threshold",
                      "F1 floor 2p/(1+p)"]])

# %% [markdown]
# Rows of one grid share their seeds: seed $k$ of every row has the same split, the same initial
# weights and the same order of batches. So the fair comparison is *paired*: each row's AUC minus
# `all`'s AUC for the same seed. The table gives, per row, the mean and sample standard deviation
# of these differences, on how many seeds the row is ahead of `all`, and the two-sided p of the
# Wilcoxon signed-rank test (`cvgad.workbench.paired_differences`). With 8 seeds the test can reach
# p = 2/256 ≈ 0.008 when every seed agrees. There are seven comparisons, so at p < 0.05 about one
# in three such tables would show one row by chance; a row lower on every seed is the firmer sign.

# %% tags=["hide-input"]
digits_pairs = paired_differences(digits_runs, [], reference="all").set_index("row")
digits_pairs["Δ AUC vs all (mean ± std)"] = [fmt(m, s_, n) for m, s_, n in zip(
    digits_pairs["auc_diff_mean"], digits_pairs["auc_diff_std"], digits_pairs["pairs"], strict=True)]
display(digits_pairs[["label", "pairs", "Δ AUC vs all (mean ± std)", "ahead", "wilcoxon_p"]])
fig = plots.paired_dots(digits_runs, "all", title=f"digits, 7 as the anomaly: each row against `all` ({digits_n} seeds)")
plt.show()

# %% tags=["hide-input"]
removals = digits_pairs.drop(index="untrained")
untrained_pair = digits_pairs.loc["untrained"]
hurt = removals[(removals["auc_diff_mean"] < 0) & (removals["ahead"] == 0)].sort_values("auc_diff_mean")
helped = removals[(removals["auc_diff_mean"] > 0) & (removals["ahead"] == removals["pairs"])]
significant = removals[removals["wilcoxon_p"] < 0.05]
row_all = digits_table.set_index("row").loc["all"]
row_untrained = digits_table.set_index("row").loc["untrained"]


def listed(rows: pd.DataFrame) -> str:
    return ", ".join(f"`{r}` ({d:+.3f})" for r, d in rows["auc_diff_mean"].items()) or "none"


bottom_digits = (
    f"On the book's digits task ({digits_n} seeds per row), training helps: with all losses the AUC is "
    f"{fmt(row_all.auc_mean, row_all.auc_std, row_all.n)}, the untrained network's "
    f"{fmt(row_untrained.auc_mean, row_untrained.auc_std, row_untrained.n)}, and `all` is ahead of it on "
    f"{int(untrained_pair.pairs - untrained_pair.ahead)} of {int(untrained_pair.pairs)} seeds. Removing a loss "
    f"lowers the AUC on every seed for: {listed(hurt)}; raises it on every seed for: {listed(helped)}. "
    f"Rows whose paired difference has a Wilcoxon signed-rank p below 0.05: {listed(significant)}."
)
glue("ch6_bottom_digits", Markdown(bottom_digits), display=False)
print(bottom_digits)

# %% [markdown]
# ## Running the `ci` grid live
#
# With `run_live = True` the next cell plans the `ci` grid (with this notebook's `dataset`,
# `anomaly_class`, `epochs` and `seed` parameters laid over the preset), runs it with
# `cvgad.workbench.ablation.run_grid` (each run is the run notebook, executed by papermill) into `runs/`,
# writes the report, and points the rest of the chapter at it. By default it does nothing.

# %% tags=["hide-input"]
if run_live:
    from cvgad.experiment import runs as run_files
    from cvgad.workbench.ablation import load_notebook, plan_runs, preset_dir, run_grid

    ci = dict(grid.presets["ci"])
    n_seeds = len(ci.get("seeds", grid.seeds))
    ci |= {"dataset": dataset, "anomaly_class": anomaly_class, "seeds": list(range(seed, seed + n_seeds))}
    if epochs is not None:
        ci["epochs"] = epochs
    live_grid = dataclasses.replace(grid, presets={**grid.presets, "ci": ci})  # validated again
    live_out = REPO / "runs" / "ablation-live"
    specs = plan_runs(live_grid, "ci", live_out, place={"device": device, "data_root": data_root})
    live_root = preset_dir(live_out, live_grid, "ci")
    run_files.write_plan(live_root, live_grid.plan("ci", str(GRID_FILE)))  # the plan the report reads
    outcomes = run_grid(specs, load_notebook(REPO / "notebooks" / "run.ipynb"), jobs=jobs)
    write_report(live_root)
    print(f"{sum(o.status != 'failed' for o in outcomes)} of {len(outcomes)} runs finished; results in {shown(live_root)}")
    results = str(live_root)
else:
    print(f"run_live is False: rendering the recorded results at {results!r}")

# %% [markdown]
# ## Table 1 on the paper's task: CIFAR-10 deer
#
# The record of the paper's own task, at the `cpu` budget (or the live `ci` run, with
# `run_live = True`). The cell below looks for the results folder (relative to the working directory, then to the
# repository root), reads every run in it with `cvgad.workbench.results.collect_runs` (or the `runs.csv`
# that `cvgad report` wrote, when the run folders are not there), and aggregates them with
# `cvgad.workbench.table1.aggregate`. Mean and spread are over seeds; the spread is the sample standard
# deviation (ddof = 1).

# %% tags=["hide-input"]
results_dir = find_results(results)
runs, source = load_runs(results_dir) if results_dir else (None, "")
finished = 0 if runs is None else int((runs["status"] == "ok").sum())
plan = read_plan(results_dir) if results_dir and (results_dir / "plan.json").is_file() else {}
settings = plan.get("settings", {})
if plan:
    paper, paper_note = plan.get("paper", {}), plan.get("paper_note", "")
else:  # no plan.json: assume the grid's own task, and say so
    paper, paper_note = grid.paper, "No plan.json beside the results: assumed to be the grid's own task (CIFAR-10, deer)."

if results_dir is None:
    print(f"No results folder at {results!r} (looked relative to the working directory and to the repository root).")
else:
    print(f"results folder: {shown(results_dir)}")
    if runs is not None:
        counts = runs["status"].value_counts().to_dict()
        print(f"runs read from {source}: " + ", ".join(f"{n} {status}" for status, n in counts.items()))
    if plan:
        print(f"preset {plan.get('preset')!r}: " + ", ".join(f"{k}={v}" for k, v in settings.items()
                                                            if k not in ("device", "data_root")))
have_results = finished > 0
print("finished runs:", finished)

# %% [markdown]
# The paper's values (Table 1 of {cite:t}`bian2019`, CIFAR-10, deer as the anomaly), as stored in
# `ablations/paper_table1.csv`:

# %% tags=["hide-input"]
paper_table = pd.read_csv(REPO / "ablations" / "paper_table1.csv").set_index("row")[["label", "auc", "f1"]]
paper_table.columns = ["label", "paper AUC", "paper F1 (best threshold)"]
paper_table

# %% [markdown]
# When results are there, the next cell shows Table 1 as we measured it. The columns:
#
# * **AUC**: area under the ROC curve of the anomaly score on the test set; 0.5 is chance.
# * **F1, best threshold (paper's metric)**: the largest F1 over all thresholds, the threshold
#   chosen on the test set itself, as III.B of the paper does. It is optimistic.
# * **F1 at validation threshold**: F1 with a threshold fixed beforehand on normal validation
#   images (the 95th percentile of their scores), the number a deployed detector would get.
# * **F1 floor**: the F1 of flagging every test image as anomalous. With a share $p$ of
#   anomalies in the test set, precision is $p$ and recall is 1, so
#
# $$
# F_1^{\text{floor}} = \frac{2p}{1 + p} .
# $$ (abl-f1-floor)
#
# For deer in CIFAR-10 under the III.D protocol, $p = 6000 / (6000 + 0.2 \cdot 54000) \approx 0.357$
# and the floor is about 0.53: a best-threshold F1 of 0.6 on this test set is barely better than
# flagging everything, while an AUC of 0.6 is a modest but real ranking.

# %% tags=["hide-input"]
table = aggregate(runs, paper) if have_results else None
if table is None:
    where = shown(results_dir) if results_dir else results
    display(Markdown(
        f"**No results recorded yet** at `{where}`: there is no finished run to show, so this chapter shows "
        "only the paper's values above. Record them with `cvgad ablate ablations/table1.yaml --preset cpu "
        "--jobs 2` and `cvgad report ablations/results/table1/cpu`, then rebuild the book."))
else:
    notes = [f"Mean ± sample std over the finished seeds (n per row); {finished} finished runs, read from {source}."]
    if table["not_ok"].sum():
        notes.append(f"{int(table['not_ok'].sum())} planned runs are not finished (failed, unfinished or missing); "
                     "rows with fewer seeds are less certain.")
    if paper_note:
        notes.append(paper_note)
    if settings.get("dataset") == "cifar10":
        notes.append("**Data:** the CIFAR-10 copy these runs read (`cifar10_*_jpegq75.npz` in the data "
                     "root) is JPEG-compressed (quality 75). The anomaly score is built from reconstruction "
                     "errors, so it may differ slightly from what the original pixels would give.")
    shown_table = results_table(table)  # AUC, then F1: two tables that fit the page
    display(shown_table.iloc[:, :4], shown_table.iloc[:, 4:])
    display(Markdown("\n\n".join(notes)))

# %% [markdown]
# The same numbers as bars, ours (mean ± std over seeds) beside the paper's where the paper's
# values apply, drawn by `cvgad.workbench.plots.ablation_bars` (`cvgad report` saves the same chart); the
# dashed line is the F1 floor.
# Then the plain statements of `cvgad.workbench.statements`: which differences exceed the spread
# over seeds, by the rough rules it states.

# %% tags=["hide-input"]
if table is None:
    print("No results recorded yet: no chart and no statements.")
else:
    plots.ablation_bars(table, title=f"{plan.get('grid', grid.name)} / {plan.get('preset', '?')}: ours beside the paper")
    plt.show()
    judged = table[table["n"] > 0]  # rows without a finished run get one line below, not two each
    said = [f"- {s}" for s in statements(judged)]
    waiting = [f"`{r}`" for r in table.loc[table["n"] == 0, "row"]]
    if waiting:
        said.append("- No finished run yet for " + ", ".join(waiting) + ".")
    display(Markdown(RULES.format(ref="all") + "\n\n" + "\n".join(said)))

# %% [markdown]
# Wall time per run, from `wall_seconds` in each run's metrics: the clock of `run_experiment`
# (data loading, training and scoring; not the start of papermill's kernel). The whole grid takes
# roughly the sum divided by the number of parallel jobs.

# %% tags=["hide-input"]
if table is None or "wall_seconds" not in runs:
    print("No results recorded yet: no wall times.")
else:
    ok = runs[runs["status"] == "ok"].assign(minutes=lambda d: pd.to_numeric(d["wall_seconds"]) / 60)
    walls = ok.groupby("row", sort=False)["minutes"].agg(["count", "mean", "min", "max"]).round(1)
    walls.columns = ["runs", "mean (min)", "shortest (min)", "longest (min)"]
    display(walls)
    devices = ", ".join(sorted(map(str, ok["device"].dropna().unique()))) or "unknown"
    print(f"total {ok['minutes'].sum():.0f} minutes of run time over {len(ok)} runs (device: {devices}); "
          f"per run {ok['minutes'].mean():.1f} minutes on average")

# %% [markdown]
# ## Where the reproduction agrees with the paper
#
# `cvgad.workbench.agreement` writes this comparison from the numbers above, so that it stays true
# when the results are recorded again. It compares only what the paper compares: each row against
# the paper's value, and the order of the rows.

# %% tags=["remove-input"]
display(Markdown(agreement(table) if table is not None else "No results recorded yet: nothing to compare."))

# %% [markdown]
# ## Did training beat the untrained network?
#
# A row of Table 1 can only show that a loss matters if the model with all losses has learnt
# something: otherwise every row measures the same untrained-like score. The `untrained` row is
# each seed's network before training; the cell pairs every trained row with it by seed.

# %% tags=["hide-input"]
if table is None or "untrained" not in set(runs.loc[runs["status"] == "ok", "row"]):
    bottom_cifar = (f"The results at `{shown(results_dir) if results_dir else results}` have no finished `untrained` "
                    "row, so they cannot say whether training beat the untrained network.")
else:
    vs_untrained = paired_differences(runs, [], reference="untrained").set_index("row")
    display(vs_untrained[["label", "pairs", "auc_diff_mean", "auc_diff_std", "ahead", "wilcoxon_p"]])
    t = table.set_index("row")
    trained_rows = t.drop(index="untrained")
    u = t.loc["untrained"]
    beat = vs_untrained[(vs_untrained["ahead"] == vs_untrained["pairs"]) & (vs_untrained["pairs"] > 0)]
    above_chance = trained_rows[trained_rows["auc_mean"] - trained_rows["auc_std"] > 0.5]
    beyond = t["auc_all_beyond_spread"].fillna(False).astype(bool)
    differ = [r for r in trained_rows.index if r != "all" and beyond[r]]
    task = f"{settings.get('dataset', '?')}, anomaly class {settings.get('anomaly_class', '?')}"
    side = ("below chance by more than its spread: it ranks the anomalies as more normal"
            if u.auc_mean + u.auc_std < 0.5 else
            "above chance by more than its spread" if u.auc_mean - u.auc_std > 0.5 else "at chance")
    bottom_cifar = (
        f"On the `{plan.get('preset', '?')}` record ({task}; {int(u.n)} seeds) the untrained network scores an AUC "
        f"of {fmt(u.auc_mean, u.auc_std, u.n)}, {side}. The seven trained rows score "
        f"{trained_rows['auc_mean'].min():.3f} to {trained_rows['auc_mean'].max():.3f}; {len(beat)} of "
        f"{len(trained_rows)} are above the untrained network on every seed, {len(above_chance)} above chance by "
        f"more than their spread, and {len(differ)} of the six removals differ from `all` by more than the "
        f"spread{' (' + ', '.join(f'`{r}`' for r in differ) + ')' if differ else ''}. "
        + ("Training has moved the score, but not past chance, so this record cannot say which loss matters on "
           "the paper's task; chapter 8 measures how the AUC grows with the budget."
           if len(above_chance) == 0 else
           "Where the trained rows are above chance, their differences are differences between trained models.")
    )
glue("ch6_bottom_cifar", Markdown(bottom_cifar), display=False)
print(bottom_cifar)

# %% [markdown]
# ## Why a reproduction can differ from the paper
#
# Whatever the numbers above, these are the usual reasons, and each applies here.
#
# * **Budget.** The `cpu` preset trains on a subset of the training images for a few epochs at
#   half the DCGAN width; the paper trains on the full training set with the full networks. A
#   model that is still learning to reconstruct normal images separates them from anomalies less
#   well, and small differences between rows can vanish under that. The `untrained` row measures
#   how far training has got.
# * **Threshold chosen on the test set.** The paper's F1 is the largest F1 over all thresholds on
#   the test set (III.B). It is an upper bound, not what a detector with a fixed threshold gets;
#   the column "F1 at validation threshold" is the honest counterpart, and the F1 floor
#   {eq}`abl-f1-floor` shows how much of any F1 comes for free.
# * **Seeds and spread.** Table 1 gives one number per row and no spread. Section III.B says its
#   metrics average 20 trials with re-drawn splits, but no standard deviation is reported, so we
#   cannot tell whether a 0.015 gap (all against no negative training) is larger than the noise
#   of training. Ours gives the spread over seeds and pairs the rows by seed.
# * **Normalisation over the test set.** The score min-max normalises the SSIM loss and the L1
#   error over the evaluated set (II.F), so each test image's score depends on the other test
#   images. AUC is unaffected by a common monotone rescaling, but the sum of two separately
#   normalised terms is not, and the test subset we draw changes the weighting of the two terms.
# * **Unstated choices.** The paper leaves open the epoch count, the weight of the adversarial
#   loss, the form of the categorical loss, the scale of the latent loss, the negative-sampling
#   radius and the threshold $T$. `cvgad.model.config.LossConfig` records what this project chose and
#   why; a different choice can move every row.
# * **The data.** The CIFAR-10 copy used here is JPEG-compressed (quality 75). Compression removes
#   fine texture, and the score is built from reconstruction errors: the numbers may differ
#   slightly from what the original pixels give.
#
# An AUC below 0.5 means the score ranks the anomalies as *more* normal than the normal images,
# but only when it is below 0.5 by more than its spread over seeds; `cvgad.workbench.agreement`
# says above which rows are. Why a score would rank deer that way is a hypothesis this chapter
# does not test, so it offers none.
#
# ## Summary
#
# * {glue:md}`ch6_bottom_digits`
# * {glue:md}`ch6_bottom_cifar`
#
# **Try next:** `cvgad ablate ablations/table1.yaml --preset digits --jobs 2` with `vary:
# {anomaly_class: [1, 7]}` added to the preset shows that on digit 1 no row beats the untrained
# network; `papermill notebooks/06_ablation.ipynb out.ipynb -p run_live True` runs the small `ci` grid.
