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
# # Why our numbers differ from the paper's
#
# Table 1 of {cite:t}`bian2019` reports an AUC of 0.853 for CVGAD on CIFAR-10 with deer as the
# anomaly. Chapter 6's record of the same grid, at a CPU budget, puts its rows between AUC
# {glue:text}`table1_low:.3f` and {glue:text}`table1_high:.3f`. The authors released their code,
# and it evaluates in ways the paper does not state (read from the authors' released code):
#
# | the released code | this project's default | switch |
# |---|---|---|
# | batchnorm uses each scoring batch's own statistics | running statistics | `--bn-at-test train` |
# | the test set is scored normals first, in batches of 64 | shuffled | `--test-order normals_first` |
# | the score adds the feature discriminator's term to $-\log$ SSIM and L1 | $1-$SSIM + L1 (II.F) | `--score logssim+l1+mi` |
# | the reported epoch is the one with the best test AUC of 100 | the last epoch | `--select best_test` |
# | latent 300, learning rate 2e-4, SSIM:L1 = 50:50, no gate $T$ | latent 256, 1e-3, 50:10, a gate | preset `released_cpu` |
#
# This chapter measures each of them on CIFAR-10 deer and on MNIST digit 1. Every evaluation
# factor is measured on the **same trained models**: `cvgad.workbench.forensics` scores each model before
# training and after every epoch, in each batchnorm mode and test order, with every score, so a
# factor's effect is a paired difference over the same seeds. Nothing is trained when the book
# builds; the records and their commands:
#
# ```text
# cvgad forensics run --preset cpu --preset released_cpu --seeds 0 1 2 \
#     --out ablations/results/forensics/cifar10_deer/5000x4
# cvgad forensics run --preset cpu --preset released_cpu --seeds 0 1 2 \
#     --set dataset=mnist --set anomaly_class=1 --out ablations/results/forensics/mnist_1/5000x4
# cvgad forensics run --preset released_cpu --seeds 0 1 2 \
#     --set train_subset=10000 --out ablations/results/forensics/cifar10_deer/10000x4
# cvgad forensics run --preset released_cpu --seeds 0 1 2 \
#     --set train_subset=20000 --set epochs=8 --out ablations/results/forensics/cifar10_deer/20000x8
# cvgad forensics run --preset cpu --seeds 0 \
#     --set train_subset=20000 --set epochs=8 --out ablations/results/forensics/cifar10_deer/20000x8
# cvgad forensics run --preset cpu --seeds 0 --set train_subset=20000 \
#     --set epochs=8 --set logvar=linear --out ablations/results/forensics/cifar10_deer_linear_logvar/20000x8
# cvgad forensics run --preset cpu --seeds 0 --set train_subset=20000 \
#     --set epochs=8 --set logvar=linear --set negative_gate=absolute --set negative_threshold=1.0 \
#     --out ablations/results/forensics/cifar10_deer_old_defaults/20000x8
# for gate in "first_epoch 0.8 0.0" "absolute 1.0 0.0" "first_epoch 0.8 0.2"; do set -- $gate
#   cvgad forensics run --preset cpu --seeds 0 1 2 --set dataset=digits --set anomaly_class=1 \
#       --set epochs=15 --set negative_gate=$1 --set negative_threshold=$2 --set negative_l1_floor=$3 \
#       --out ablations/results/forensics/digits_gate/${1}_${2}_l1floor${3}
# done
# cvgad forensics summary ablations/results/forensics/cifar10_deer/5000x4
# cvgad forensics summary --budget ablations/results/forensics/cifar10_deer
# ```
#
# The presets are those of `ablations/table1.yaml`: `cpu` (this project's training: 5,000
# training images, 4 epochs, width 32, 4,000 test images of which {glue:text}`cifar_deer_share:.0f`%
# deer) and `released_cpu` (the released training at the same size). Both leave every loss on
# (the `all` row).

# %% tags=["parameters", "hide-input"]
forensics = "../ablations/results/forensics"  # recorded results, relative to notebooks/
paper_table1 = "../ablations/paper_table1.csv"
table1 = "../ablations/results/table1/cpu"  # chapter 6's record
scale = "../ablations/results/scale"  # the scale study: CVGAD against its autoencoder

# %% tags=["hide-input"]
from pathlib import Path

import matplotlib.pyplot as plt
import pandas as pd
from IPython.display import Markdown
from myst_nb import glue

from cvgad.experiment import runs
from cvgad.workbench import forensics as F
from cvgad.workbench import plots
from cvgad.workbench.formatting import fmt
from cvgad.workbench.results import load_runs

plots.use_house_style()
root = Path(forensics)
PAPER_AUC = float(pd.read_csv(paper_table1).set_index("row").loc["all", "auc"])
PROJECT = F.FACTOR_ROWS[0][0]


def number(name: str, value: float) -> None:
    """Glues a number for the prose as a plain Python number."""
    glue(name, value.item() if hasattr(value, "item") else value, display=False)


def paired(rows: pd.DataFrame, factor: str) -> pd.Series:
    """Per seed, `factor`'s AUC less the project's evaluation of the same seed."""
    return F.picks(rows).query("factor == @factor").set_index("seed")["auc_diff"]


def shown(table: pd.DataFrame):
    """The factor table as the book shows it."""
    frame = pd.DataFrame({
        "factor": table["factor"],
        "AUC": [fmt(m, s, n) for m, s, n in zip(table["auc_mean"], table["auc_std"], table["n"], strict=True)],
        "paired difference": [f"{m:+.3f} ± {s:.3f}" for m, s in zip(table["diff_mean"], table["diff_std"], strict=True)],
        "F1 (best threshold)": table["f1_best"].round(3),
        "F1 floor": table["f1_floor"].round(3),
        "epochs picked": table["epochs"],
    })  # fmt: skip
    return frame.style.hide(axis="index")


# %% tags=["hide-input"]
table1_runs, _ = load_runs(table1)
table1_runs = table1_runs[table1_runs["row"] != "untrained"]  # the rows of the paper's Table 1
number("table1_low", table1_runs.groupby("row")["auc"].mean().min())
number("table1_high", table1_runs.groupby("row")["auc"].mean().max())
record = runs.read_json(root / "cifar10_deer" / "5000x4" / "cpu" / "seed0" / runs.RUN_RECORD)
number("cifar_deer_share", 100 * record["n_test_anomalous"] / (record["n_test_anomalous"] + record["n_test_normal"]))

# %% tags=["remove-input"]
from cvgad.book import caveats

caveats.shown("08_gap")

# %% [markdown]
# ## CIFAR-10 deer: each factor alone, then all together
#
# Each row is one way of training or scoring; the paired difference is against the first row
# (this project's evaluation of the same models, seed by seed). Rows marked ORACLE choose the
# epoch by the test set's labels, as the released code does; no user could deploy them.

# %% tags=["hide-input"]
cifar = F.collect(root / "cifar10_deer" / "5000x4")
cifar_table = F.factor_table(cifar)
shown(cifar_table)

# %% tags=["hide-input"]
fig = plots.factor_points(cifar_table, PAPER_AUC, title="CIFAR-10, deer as the anomaly (5,000 images × 4 epochs)")
plt.show()

# %% tags=["hide-input"]
LABELS = {
    "project": PROJECT,
    "untrained": "untrained network (epoch 0)",
    "bn_shuffled": "batch statistics, shuffled test set",
    "bn_first": "batch statistics, normals first (released)",
    "logssim": "score -log SSIM + L1 (II.C's SSIM loss)",
    "mi": "score + FD term (released)",
    "cluster": "score: distance to the nearest cluster mean",
    "cluster_added": "score SSIM+L1 + cluster distance",
    "complexity": "score SSIM+L1 - PNG complexity (Serra et al.)",
    "val": "epoch picked on validation normals",
    "oracle": "best epoch on the test set (ORACLE, released)",
    "released_training": "released training (latent 300, lr 2e-4, L1 50, no gate)",
    "released_eval": "released evaluation, all combined (ORACLE)",
    "released_all": "released training + evaluation (ORACLE)",
}


def glue_table(task: str, table: pd.DataFrame) -> pd.DataFrame:
    """Glues every factor's AUC and paired difference as `<task>_<key>` and `<task>_<key>_diff`."""
    indexed = table.set_index("factor")
    for key, label in LABELS.items():
        number(f"{task}_{key}", indexed.loc[label, "auc_mean"])
        number(f"{task}_{key}_diff", indexed.loc[label, "diff_mean"])
    return indexed


t = glue_table("cifar", cifar_table)
number("n_seeds", int(t.loc[PROJECT, "n"]))
number("paper_auc", PAPER_AUC)
gap = PAPER_AUC - t.loc[PROJECT, "auc_mean"]
number("cifar_gap", gap)
number("cifar_closed_share", 100 * t.loc[LABELS["released_all"], "diff_mean"] / gap)
number("cifar_remaining", PAPER_AUC - t.loc[LABELS["released_all"], "auc_mean"])

# %% tags=["nbval-check-output"]
print(f"CIFAR-10 deer, n = {int(t.loc[PROJECT, 'n'])} seeds: ours {t.loc[PROJECT, 'auc_mean']:.3f}, "
      f"released training + evaluation {t.loc[LABELS['released_all'], 'auc_mean']:.3f}, paper {PAPER_AUC:.3f}")

# %% [markdown]
# Over {glue:text}`n_seeds` seeds, this project's evaluation of its own training scores an AUC of
# {glue:text}`cifar_project:.3f`, {glue:text}`cifar_gap:.3f` below the paper's
# {glue:text}`paper_auc:.3f`; the untrained network scores {glue:text}`cifar_untrained:.3f`.
# Against the first row, seed by seed:
#
# * the released code's batchnorm mode and test order: {glue:text}`cifar_bn_first_diff:+.3f`
#   (the same batchnorm mode on a shuffled test set: {glue:text}`cifar_bn_shuffled_diff:+.3f`);
# * its score terms: {glue:text}`cifar_mi_diff:+.3f` with the FD term,
#   {glue:text}`cifar_logssim_diff:+.3f` with $-\log$ SSIM in place of $1-$SSIM;
# * picking the best epoch on the test set: {glue:text}`cifar_oracle_diff:+.3f`;
# * the released training: {glue:text}`cifar_released_training_diff:+.3f`;
# * the released evaluation, all of it, on our training: {glue:text}`cifar_released_eval_diff:+.3f`;
#   on the released training: {glue:text}`cifar_released_all_diff:+.3f`, an AUC of
#   {glue:text}`cifar_released_all:.3f`, {glue:text}`cifar_closed_share:.0f`% of the gap. The
#   remaining {glue:text}`cifar_remaining:.3f` is not explained at this budget.
#
# The distance of the code to its nearest cluster mean scores {glue:text}`cifar_cluster:.3f` and
# the untrained network's reconstruction error {glue:text}`cifar_untrained:.3f` (below 0.5: deer
# rank as *more* normal than the other classes). Subtracting the input's complexity (PNG bits per
# dimension, {cite:t}`serra2020`) moves the AUC by {glue:text}`cifar_complexity_diff:+.3f`.
#
# ## MNIST digit 1
#
# Digit 1 is the class on which reconstruction ranks backwards: a one is a few pixels of
# stroke, easier to reconstruct than any normal digit. The same factors, same presets:

# %% tags=["hide-input"]
mnist = F.collect(root / "mnist_1" / "5000x4")
mnist_table = F.factor_table(mnist)
m = glue_table("mnist", mnist_table)
shown(mnist_table)

# %% tags=["hide-input"]
fig = plots.factor_points(mnist_table, None, title="MNIST, digit 1 as the anomaly (5,000 images × 4 epochs)")
plt.show()

# %% tags=["nbval-check-output"]
print(f"MNIST digit 1, n = {int(m.loc[PROJECT, 'n'])} seeds: ours {m.loc[PROJECT, 'auc_mean']:.3f}, untrained "
      f"{m.loc[LABELS['untrained'], 'auc_mean']:.3f}, released training + evaluation "
      f"{m.loc[LABELS['released_all'], 'auc_mean']:.3f}")

# %% [markdown]
# On digit 1 this project's evaluation scores {glue:text}`mnist_project:.3f` (below 0.5: the
# ones rank as *more* normal than the normal digits; chapter 7's smaller model scores the same
# digit far higher, and chapter 10 measures which setting makes the difference), while the
# untrained network scored {glue:text}`mnist_untrained:.3f`. The released evaluation reaches
# {glue:text}`mnist_released_eval:.3f` on the same models, and with the released training
# {glue:text}`mnist_released_all:.3f`. Of its parts, normals-first scoring with batch statistics
# moves the AUC by {glue:text}`mnist_bn_first_diff:+.3f` (shuffled:
# {glue:text}`mnist_bn_shuffled_diff:+.3f`) and the best epoch on the test set by
# {glue:text}`mnist_oracle_diff:+.3f`. Of the scores beyond reconstruction, the distance to the
# nearest cluster mean scores {glue:text}`mnist_cluster:.3f`, and subtracting the PNG
# complexity {glue:text}`mnist_complexity:.3f`: the correction {cite:t}`serra2020` propose for
# this failure.
#
# ## Is the batchnorm gain a leak?
#
# With batch statistics, an image's score depends on the other images in its batch. Scored
# normals first, every batch but one holds a single class, so each batch is normalised by the
# statistics of its own label: information about the labels enters the scores through the
# order. The control is the same batchnorm mode on a shuffled test set, where a batch's
# composition says nothing about its labels.

# %% tags=["hide-input"]
lines, first_gain, shuffled_gain = [], [], []
for task, rows in (("CIFAR-10 deer", cifar), ("MNIST digit 1", mnist)):
    first, shuffled = paired(rows, LABELS["bn_first"]), paired(rows, LABELS["bn_shuffled"])
    first_gain.append(first.mean())
    shuffled_gain.append(shuffled.mean())
    lines.append({"task": task, "normals first − ours": f"{first.mean():+.3f} ± {first.std():.3f}",
                  "seeds up": f"{int((first > 0).sum())} of {len(first)}",
                  "shuffled − ours": f"{shuffled.mean():+.3f} ± {shuffled.std():.3f}",
                  "seeds up ": f"{int((shuffled > 0).sum())} of {len(shuffled)}",
                  "order's share": first.mean() - shuffled.mean()})
leaks = pd.DataFrame(lines)
leak_verdict = (
    "On both tasks the gain comes with the order, not with the batchnorm mode: normals first it is positive, "
    "shuffled it is less than a fifth of that. It is a leak of the labels through the batches."
    if all(f > 0 and abs(s) < f / 5 for f, s in zip(first_gain, shuffled_gain, strict=True)) else
    "On at least one task the batchnorm mode itself carries a share of the gain: see the table."
)
glue("leak_verdict", Markdown(leak_verdict), display=False)
leaks.round(3).style.hide(axis="index")

# %% [markdown]
# {glue:md}`leak_verdict` A deployed detector sees its inputs in an order nobody sorted by label,
# so the shuffled column is the one to trust.
#
# ## What best-on-test selection adds
#
# The released code reports the best test AUC of its 100 epochs. The curves below show the test
# AUC after each epoch (epoch 0 is the untrained network): this project's evaluation and the
# released evaluation, for both trainings. The distance between a curve's maximum and its last
# point is what the oracle adds.

# %% tags=["hide-input"]
views = {
    ("cpu", "eval", "ssim+l1"): "our training, our evaluation",
    ("cpu", "train_normals_first", "logssim+l1+mi"): "our training, released evaluation",
    ("released_cpu", "eval", "ssim+l1"): "released training, our evaluation",
    ("released_cpu", "train_normals_first", "logssim+l1+mi"): "released training, released evaluation",
}
fig, axes = plots.new_figure((plots.WIDTH, 7.0), 2, 1, sharex=True)
fig.suptitle("test AUC after each epoch (mean and 95% interval over seeds)")
for ax, (task, rows) in zip(axes, (("(a) CIFAR-10 deer", cifar), ("(b) MNIST digit 1", mnist)), strict=True):
    curves = pd.concat([F.cell(rows, p, s, r).assign(label=label) for (r, p, s), label in views.items()])
    plots.auc_by_epoch(curves, ax=ax)
    ax.set_title(task)
    if ax is axes[0]:  # one legend, under the lower panel
        ax.set_xlabel("")
        ax.get_legend().remove()
plt.show()
ours = F.cell(mnist, "eval", "ssim+l1", "cpu")
number("mnist_epoch1", ours[ours["epoch"] == 1]["auc"].mean())

# %% [markdown]
# On CIFAR-10 deer the best epoch adds {glue:text}`cifar_oracle_diff:+.3f` to our evaluation; on
# MNIST digit 1 it adds {glue:text}`mnist_oracle_diff:+.3f`: there our evaluation's test AUC goes
# from {glue:text}`mnist_epoch1:.3f` after the first epoch to {glue:text}`mnist_project:.3f` after
# the last, and the oracle keeps the early epoch. With 100 epochs to
# choose from, as in the released code, an oracle has more chances still. The epoch picked on
# validation normals alone, which a user could deploy, moves the AUC by
# {glue:text}`cifar_val_diff:+.3f` and {glue:text}`mnist_val_diff:+.3f`.
#
# ## Does budget explain the gap?
#
# The paper trains on all 43,200 normal training images; the released code for 100 epochs. The
# budget curve trains the released recipe on more images for longer and reads each model with
# the released evaluation (at its best epoch, an oracle, and at its last) and with ours.

# %% tags=["hide-input"]
budget = F.budget_table(root / "cifar10_deer")
fig = plots.budget_curve(budget, PAPER_AUC, title="CIFAR-10 deer: AUC against training budget")
plt.show()
by_budget = budget.groupby(["recipe", "train_images", "epochs"]).agg(
    n=("seed", "size"),
    released_oracle=("auc_released_oracle", "mean"),
    released_last=("auc_released_last", "mean"),
    ours_last=("auc_ours_last", "mean"),
    ours_last_std=("auc_ours_last", "std"),
    wall_minutes=("wall_seconds", lambda s: s.mean() / 60),
)
released = by_budget.loc["released_cpu"]
number("budget_largest_images", int(released.index[-1][0]))
number("budget_largest_epochs", int(released.index[-1][1]))
number("budget_largest_n", int(released.iloc[-1]["n"]))
number("budget_largest_oracle", released.iloc[-1]["released_oracle"])
number("budget_smallest_oracle", released.iloc[0]["released_oracle"])
number("budget_largest_ours", released.iloc[-1]["ours_last"])
number("budget_smallest_ours", released.iloc[0]["ours_last"])
number("cores", int(pd.read_csv(root / "cifar10_deer" / "20000x8" / "timings.csv")["cpus"].max()))
shown = by_budget.round(3).rename_axis(["recipe", "images", "epochs"])
shown.columns = ["seeds", "released eval., best epoch", "released eval., last", "ours, last", "ours, std",
                 "minutes per run"]
shown

# %% [markdown]
# From the smallest budget to the largest ({glue:text}`budget_largest_images` images ×
# {glue:text}`budget_largest_epochs` epochs, {glue:text}`budget_largest_n` seeds), the released
# training read with the released evaluation at its best epoch goes from
# {glue:text}`budget_smallest_oracle:.3f` to {glue:text}`budget_largest_oracle:.3f`, and read with
# ours from {glue:text}`budget_smallest_ours:.3f` to {glue:text}`budget_largest_ours:.3f`. Wall
# times are those of one run on {glue:text}`cores` CPU cores, scoring after every epoch included
# (`timings.csv` beside each record gives the 1-minute load at its start and end).
#
# %% [markdown]
# ## The verdict at scale: CVGAD against its own autoencoder
#
# The budgets above are small, and so are those of the other chapters' records. Is "CVGAD's
# machinery adds nothing over its own encoder and decoder" a verdict about CVGAD or about small
# budgets? The scale study (`ablations/scale.yaml`) trains CVGAD and `ae` (the same encoder and
# decoder on reconstruction alone) on CIFAR-10 deer at budgets from the `cpu` preset's 5,000
# images × 4 epochs up to every normal training image the protocol gives for the paper's 15
# epochs, three seeds each, paired by seed, at width 32 (the paper's width 64 is the `paper`
# preset, for a GPU), on the same 4,000 test images. Every run scores its model before training
# (the untrained network) and after every epoch, in our evaluation and in the released one, so
# one training gives every point of its curve; the released evaluation's best epoch is an oracle.
#
# ```bash
# cvgad forensics study ablations/scale.yaml --data-root DATA --out ablations/results/scale
# cvgad forensics summary --budget ablations/results/scale
# ```

# %% tags=["hide-input"]
scale_root = Path(scale)
curves = F.epoch_curves(scale_root)
fig = plots.scale_curves(curves, PAPER_AUC, title="CIFAR-10 deer: CVGAD, its autoencoder, the untrained network")
plt.show()
scale_runs = F.budget_table(scale_root)
by_scale = scale_runs.groupby(["recipe", "train_images", "epochs"]).agg(
    n=("seed", "size"),
    ours=("auc_ours_last", "mean"),
    ours_std=("auc_ours_last", "std"),
    released_oracle=("auc_released_oracle", "mean"),
    untrained=("auc_untrained", "mean"),
    minutes=("wall_seconds", lambda s: s.mean() / 60),
)
shown = by_scale.round(3).rename_axis(["model", "images", "epochs"])
shown.columns = ["seeds", "ours, last epoch", "ours, std", "released eval., best epoch (oracle)", "untrained",
                 "minutes per run (1 thread)"]
shown

# %% tags=["hide-input"]
pairs = {
    "our evaluation, last epoch": F.paired_by_budget(scale_runs, "auc_ours_last"),
    "released evaluation, best epoch (oracle)": F.paired_by_budget(scale_runs, "auc_released_oracle"),
}
paired_scale = pd.concat(pairs, names=["evaluation"]).droplevel(1).set_index(["train_images", "epochs"], append=True)
ours_pairs = pairs["our evaluation, last epoch"]
complete = ours_pairs[ours_pairs["n"] >= 3]  # budgets with every seed pair recorded
largest = (complete if len(complete) else ours_pairs).iloc[-1]
number("scale_images", int(largest["train_images"]))
number("scale_epochs", int(largest["epochs"]))
number("scale_n", int(largest["n"]))
number("scale_diff", float(largest["diff_mean"]))
number("scale_low", float(largest["ci_low"]))
number("scale_high", float(largest["ci_high"]))
number("scale_ahead", int(largest["ahead"]))
number("scale_budgets", int(scale_runs.groupby(["train_images", "epochs"]).ngroups))
oracle_pairs = pairs["released evaluation, best epoch (oracle)"].set_index(["train_images", "epochs"])
oracle_largest = oracle_pairs.loc[(largest["train_images"], largest["epochs"])]
number("scale_oracle_diff", float(oracle_largest["diff_mean"]))
number("scale_oracle_low", float(oracle_largest["ci_low"]))
number("scale_oracle_high", float(oracle_largest["ci_high"]))
favours = ("favours CVGAD" if oracle_largest["ci_low"] > 0 else "favours the autoencoder"
           if oracle_largest["ci_high"] < 0 else "does not separate the two")
glue("scale_oracle_side", Markdown(favours), display=False)
all_images = int(scale_runs["train_images"].max()) if "allx15" in set(curves["budget"]) else None
if largest["ci_low"] > 0:
    side = "ahead of its own autoencoder"
elif largest["ci_high"] < 0:
    side = "behind its own autoencoder"
else:
    side = "not distinguishable from its own autoencoder"
reach = ("at the paper's data budget" if all_images is not None and int(largest["train_images"]) == all_images
         else "at the largest budget with all three seed pairs recorded so far (the runs at every training "
              "image are still to come)")
glue("scale_verdict", Markdown(f"{reach.capitalize()}, CVGAD is {side} in our evaluation."), display=False)
shown = paired_scale.round(3)
shown.columns = ["seed pairs", "CVGAD − ae", "95% interval, low", "high", "seeds CVGAD ahead", "Wilcoxon p"]
shown

# %% [markdown]
# {glue:md}`scale_verdict` At {glue:text}`scale_images` training images × {glue:text}`scale_epochs`
# epochs ({glue:text}`scale_n` seed pairs) CVGAD less `ae` is {glue:text}`scale_diff:+.3f` AUC
# (95% t-interval {glue:text}`scale_low:+.3f` to {glue:text}`scale_high:+.3f`; CVGAD ahead on
# {glue:text}`scale_ahead` of {glue:text}`scale_n` seeds). With three pairs the Wilcoxon test cannot
# go below p = 0.25, so the interval carries the verdict. Read with the released code's evaluation
# at its best test epoch (an oracle), CVGAD less `ae` is {glue:text}`scale_oracle_diff:+.3f`
# ({glue:text}`scale_oracle_low:+.3f` to {glue:text}`scale_oracle_high:+.3f`) at the same budget:
# the evaluation that lifts both models far above our reading {glue:md}`scale_oracle_side`. The
# study has {glue:text}`scale_budgets` budgets; the tables above show how many seeds each has.
# Recorded with one PyTorch thread per run; the minutes are the wall time of one run, including
# pauses of the machine for other measurements (the record's README lists them).

# %% [markdown]
# ### The run that used to become NaN
#
# An earlier version of this library, trained on CIFAR-10 deer at 20,000 images × 8 epochs
# (width 32, seed 0) with its defaults of the time (the paper's unbounded $\log\sigma^2$ head
# and an absolute gate $T$ of 1 nat per dimension), drove $\log\sigma^2$ to −32.5 and the latent
# loss to NaN. The head now keeps $\log\sigma^2$ softly inside $(-10, 2)$
# (`cvgad.model.networks.bound_logvar`, the bound of {cite:t}`chua2018`); `--logvar linear` is the
# paper's unbounded head. The same configuration, recorded three ways:

# %% tags=["hide-input"]
heads = {
    "bounded head, first-epoch gate (today's defaults)": root / "cifar10_deer" / "20000x8",
    "linear head, first-epoch gate": root / "cifar10_deer_linear_logvar" / "20000x8",
    "linear head, absolute T = 1 (the former defaults)": root / "cifar10_deer_old_defaults" / "20000x8",
}
outcomes = []
for name, folder in heads.items():
    run_dir = folder / "cpu" / "seed0"
    record, failed = runs.read_json(run_dir / runs.RUN_RECORD), runs.read_json(run_dir / runs.FAILED)
    outcomes.append({"configuration": name,
                     "outcome": "finished" if record else (failed or {}).get("error", "not recorded"),
                     "largest latent loss (nats/dim)": f"{record['latent_loss_max']:.3g}" if record else "",
                     "wall seconds": round(record["wall_seconds"]) if record else None})
outcomes = pd.DataFrame(outcomes)
glue("bounded_outcome", outcomes["outcome"].iloc[0], display=False)
glue("bounded_latent_max", outcomes["largest latent loss (nats/dim)"].iloc[0], display=False)
glue("linear_latent_max", outcomes["largest latent loss (nats/dim)"].iloc[1], display=False)
glue("old_outcome", outcomes["outcome"].iloc[2], display=False)
outcomes.style.hide(axis="index")

# %% [markdown]
# With the bounded head the largest logged latent loss is {glue:text}`bounded_latent_max` nats per
# dimension; with the linear head and the same gate it reaches {glue:text}`linear_latent_max`. With
# the former defaults: {glue:text}`old_outcome`.
#
# %% [markdown]
# ## The gate $T$
#
# Algorithm 1 runs negative training only while the latent loss is below $T$, "because when the
# latent loss is smaller, the latent codes of the normal samples are clustered well" (III.C). At
# an absolute $T$ of 1 nat per dimension the gate was open from the first batch (chapter 3).
# The default is now relative: shut for the first epoch, then open on batches whose latent loss
# is below 0.8 of that epoch's mean. On digits (anomaly 1, the `cpu` preset's width with
# {glue:text}`gate_epochs` epochs), this project's evaluation at the last epoch:

# %% tags=["hide-input"]
NAMES = {
    "first_epoch_0.8_l1floor0.0": "default: first-epoch gate 0.8, SSIM hinge",
    "absolute_1.0_l1floor0.0": "old: absolute T = 1 nat/dim",
    "first_epoch_0.8_l1floor0.2": "default gate, SSIM + L1 hinge (floor 0.2)",
}
gate_runs = []
for folder in sorted((root / "digits_gate").iterdir()):
    rows = F.cell(F.collect(folder), "eval", "ssim+l1")
    for seed, curve in rows.groupby("seed"):
        history = pd.read_csv(folder / "cpu" / f"seed{seed}" / "history.csv")
        eligible = history[history["count"] <= 3]
        gate_epochs = int(curve["epoch"].max())
        gate_runs.append({"variant": NAMES[folder.name], "seed": seed, "auc": F.select(curve, "last")["auc"],
                          "negative updates": int(history["negative"].notna().sum()) if "negative" in history else 0,
                          "eligible batches": len(eligible)})
gate = pd.DataFrame(gate_runs)
default = NAMES["first_epoch_0.8_l1floor0.0"]
auc = gate.pivot(index="seed", columns="variant", values="auc")
diff = auc.drop(columns=default).sub(auc[default], axis=0)
summary = gate.groupby("variant", sort=False).agg(
    auc_mean=("auc", "mean"), auc_std=("auc", "std"), n=("auc", "size"),
    negative_updates=("negative updates", "mean"), eligible_batches=("eligible batches", "mean"))
summary["paired difference"] = [f"{diff[v].mean():+.3f} ± {diff[v].std():.3f}" if v in diff else "" for v in summary.index]


def resolved(d: pd.Series) -> bool:
    """Whether a paired difference is larger than twice its standard error."""
    return abs(d.mean()) > 2 * d.std() / len(d) ** 0.5


number("gate_default", auc[default].mean())
number("gate_default_updates", summary.loc[default, "negative_updates"])
number("gate_old_updates", summary.loc[NAMES["absolute_1.0_l1floor0.0"], "negative_updates"])
number("gate_eligible", summary.loc[default, "eligible_batches"])
number("gate_absolute_diff", diff[NAMES["absolute_1.0_l1floor0.0"]].mean())
number("gate_l1_diff", diff[NAMES["first_epoch_0.8_l1floor0.2"]].mean())
number("gate_n", len(auc))
number("gate_epochs", gate_epochs)
l1_told = resolved(diff[NAMES["first_epoch_0.8_l1floor0.2"]])
glue("l1_decision", Markdown(
    "The L1 hinge stays off (`negative_l1_floor = 0`, SSIM's hinge alone): it needs a floor the paper does not "
    "give, and its difference here is within twice its standard error."
    if not l1_told else
    "The L1 hinge changed the AUC by more than twice its standard error on this task. It stays off by default "
    "(`negative_l1_floor = 0`) for now: its floor of 0.2 was not searched, and it was measured on one task with "
    f"{len(auc)} seeds; the switch is there to measure it further."), display=False)
told = [name for name in diff if resolved(diff[name])]
glue("gate_verdict", Markdown(
    "Neither difference is larger than twice its standard error over these seeds: at this budget the "
    "gate and the L1 hinge cannot be told apart from seed-to-seed variation."
    if not told else
    f"Larger than twice its standard error: {', '.join(told)}."), display=False)
summary.round(3)

# %% [markdown]
# Over {glue:text}`gate_n` seeds, the default gate let {glue:text}`gate_default_updates:.0f` of
# {glue:text}`gate_eligible:.0f` eligible batches through, the old absolute gate
# {glue:text}`gate_old_updates:.0f`. The default scores {glue:text}`gate_default:.3f`; the old gate
# differs by {glue:text}`gate_absolute_diff:+.3f`, and adding an L1 hinge to the negative loss
# (III.F says negative training raises both the SSIM and the L1 loss of the negatives;
# `negative_l1_floor` 0.2) by {glue:text}`gate_l1_diff:+.3f`. {glue:md}`gate_verdict` The gate's
# default follows the paper's reason for it, not a measured gain. {glue:md}`l1_decision`
#
# ## The bottom line
#
# What each kind of factor does, on the same trained models (paired over seeds, against this
# project's evaluation of its own training; ORACLE rows look at the test labels):

# %% tags=["hide-input"]
bottom = pd.DataFrame({
    "factor": ["released batchnorm + order (a leak)", "the same batchnorm on a shuffled test set",
               "released score terms (FD term)", "best epoch on the test set (ORACLE)",
               "released training", "all of the released code (ORACLE)"],
    "CIFAR-10 deer": [t.loc[LABELS[k], "diff_mean"] for k in
                      ("bn_first", "bn_shuffled", "mi", "oracle", "released_training", "released_all")],
    "MNIST digit 1": [m.loc[LABELS[k], "diff_mean"] for k in
                      ("bn_first", "bn_shuffled", "mi", "oracle", "released_training", "released_all")],
}).set_index("factor")
bottom.round(3)

# %% [markdown]
# On CIFAR-10 deer, all of the released code together moves the AUC by
# {glue:text}`cifar_released_all_diff:+.3f`, to {glue:text}`cifar_released_all:.3f`: the paper's
# {glue:text}`paper_auc:.3f` stays out of reach at these budgets, and
# {glue:text}`cifar_remaining:.3f` of AUC is unexplained. The largest single factor on both
# tasks, normals-first scoring with batch statistics ({glue:text}`cifar_bn_first_diff:+.3f` and
# {glue:text}`mnist_bn_first_diff:+.3f`), depends on the test order, as the leak table shows; on
# digit 1 the next, best-on-test selection ({glue:text}`mnist_oracle_diff:+.3f`), reads the test
# labels. What a user could deploy moves our numbers by {glue:text}`cifar_bn_shuffled_diff:+.3f`
# and {glue:text}`mnist_bn_shuffled_diff:+.3f` (batch statistics, shuffled) and by
# {glue:text}`cifar_val_diff:+.3f` and {glue:text}`mnist_val_diff:+.3f` (the epoch chosen on
# validation normals).
#
# ## Summary
#
# * Each difference between the paper, its released code and this project is a switch
#   (`--bn-at-test`, `--test-order`, `--score`, `--select`, the `released` presets), and its effect
#   is measured on the same trained models, paired by seed.
# * {glue:md}`leak_verdict`
# * The released evaluation, oracle included, reaches {glue:text}`cifar_released_all:.3f` on
#   CIFAR-10 deer and {glue:text}`mnist_released_all:.3f` on MNIST digit 1 with the released
#   training, against {glue:text}`cifar_project:.3f` and {glue:text}`mnist_project:.3f` for this
#   project's evaluation.
# * More budget for the released training ({glue:text}`budget_largest_images` images ×
#   {glue:text}`budget_largest_epochs` epochs) gives {glue:text}`budget_largest_oracle:.3f` with
#   the released evaluation and {glue:text}`budget_largest_ours:.3f` with ours.
# * {glue:md}`scale_verdict` CVGAD less its own autoencoder: {glue:text}`scale_diff:+.3f` AUC
#   (95% interval {glue:text}`scale_low:+.3f` to {glue:text}`scale_high:+.3f`) at
#   {glue:text}`scale_images` images × {glue:text}`scale_epochs` epochs.
# * With the encoder's $\log\sigma^2$ bounded, the configuration that became NaN:
#   {glue:text}`bounded_outcome`. The gate $T$ waits for the first epoch and then for the
#   latent loss to fall to 0.8 of that epoch's mean.
