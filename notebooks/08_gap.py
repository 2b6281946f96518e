# ---
# jupyter:
#   jupytext:
#     cell_metadata_filter: tags,mystnb,-papermill,-execution
#     formats: ipynb,py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#       jupytext_version: 1.19.6
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Why our numbers differ from the paper's
#
# Table 1 of {cite:t}`bian2019` reports an AUC of 0.853 for CVGAD on CIFAR-10 with deer as the
# anomaly. Chapter 6's record of the same grid, at a CPU budget, puts every row near chance. The
# authors released their code, and it evaluates in ways the paper does not state
# (`../shared/paper/released-code-notes.md`):
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
# factor is measured on the **same trained models**: `cvgad.forensics` scores each model before
# training and after every epoch, in each batchnorm mode and test order, with every score, so a
# factor's effect is a paired difference over the same seeds. Nothing is trained when the book
# builds; the records and their commands:
#
# ```text
# python -m cvgad.forensics run --preset cpu --preset released_cpu --seeds 0 1 2 \
#     --data-root ../shared/data --out ablations/results/forensics/cifar10_deer/5000x4
# python -m cvgad.forensics run --preset cpu --preset released_cpu --seeds 0 1 2 --data-root ../shared/data \
#     --set dataset=mnist --set anomaly_class=1 --out ablations/results/forensics/mnist_1/5000x4
# python -m cvgad.forensics run --preset released_cpu --seeds 0 1 2 --data-root ../shared/data \
#     --set train_subset=10000 --out ablations/results/forensics/cifar10_deer/10000x4
# python -m cvgad.forensics run --preset released_cpu --seeds 0 1 2 --data-root ../shared/data \
#     --set train_subset=20000 --set epochs=8 --out ablations/results/forensics/cifar10_deer/20000x8
# python -m cvgad.forensics summary ablations/results/forensics/cifar10_deer/5000x4
# python -m cvgad.forensics summary --budget ablations/results/forensics/cifar10_deer
# ```
#
# The presets are those of `ablations/table1.yaml`: `cpu` (this project's training: 5,000
# training images, 4 epochs, width 32, 4,000 test images of which 36% deer) and `released_cpu`
# (the released training at the same size). Both leave every loss on (the `all` row).

# %% tags=["parameters", "hide-input"]
forensics = "../ablations/results/forensics"  # recorded results, relative to notebooks/
paper_table1 = "../ablations/paper_table1.csv"

# %% tags=["hide-input"]
from pathlib import Path

import matplotlib.pyplot as plt
import pandas as pd
from IPython.display import Markdown
from myst_nb import glue
from scipy.stats import wilcoxon

from cvgad import forensics as F
from cvgad import plots, report, runs

plots.use_house_style()
root = Path(forensics)
PAPER_AUC = float(pd.read_csv(paper_table1).set_index("row").loc["all", "auc"])
PROJECT = F.FACTOR_ROWS[0][0]


def number(name: str, value: float) -> None:
    """Glues a number for the prose as a plain Python number."""
    glue(name, value.item() if hasattr(value, "item") else value, display=False)


def paired(rows: pd.DataFrame, factor: str) -> tuple[pd.Series, float]:
    """Per seed, `factor`'s AUC less the project's, and the Wilcoxon signed-rank p-value
    (two-sided; with 3 seeds it cannot fall below 0.25, so read it as a sign count)."""
    picked = []
    for label, recipe, pass_, score, rule in F.FACTOR_ROWS:
        if label in (factor, PROJECT):
            cell = rows[(rows["recipe"] == recipe) & (rows["pass"] == pass_) & (rows["score"] == score)]
            picked += [{"factor": label, "seed": s, "auc": F.select(c, rule)["auc"]} for s, c in cell.groupby("seed")]
    table = pd.DataFrame(picked).pivot(index="seed", columns="factor", values="auc").dropna()
    diff = table[factor] - table[PROJECT]
    return diff, float(wilcoxon(diff).pvalue) if (diff != 0).any() else 1.0


def shown(table: pd.DataFrame):
    """The factor table as the book shows it."""
    frame = pd.DataFrame({
        "factor": table["factor"],
        "AUC": [report.fmt(m, s, n) for m, s, n in zip(table["auc_mean"], table["auc_std"], table["n"], strict=True)],
        "paired difference": [f"{m:+.3f} ± {s:.3f}" for m, s in zip(table["diff_mean"], table["diff_std"], strict=True)],
        "F1 (best threshold)": table["f1_best"].round(3),
        "F1 floor": table["f1_floor"].round(3),
        "epochs picked": table["epochs"],
    })  # fmt: skip
    return frame.style.hide(axis="index")


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
t = cifar_table.set_index("factor")
number("n_seeds", int(t.loc[PROJECT, "n"]))
number("paper_auc", PAPER_AUC)
number("cifar_project", t.loc[PROJECT, "auc_mean"])
number("cifar_untrained", t.loc["untrained network (epoch 0)", "auc_mean"])
for key, label in {
    "bn_shuffled": "batch statistics, shuffled test set",
    "bn_first": "batch statistics, normals first (released)",
    "logssim": "score -log SSIM + L1 (II.C's SSIM loss)",
    "mi": "score + FD term (released)",
    "cluster": "score: distance to the nearest cluster mean",
    "complexity": "score SSIM+L1 - PNG complexity (Serra et al.)",
    "val": "epoch picked on validation normals",
    "oracle": "best epoch on the test set (ORACLE, released)",
    "released_training": "released training (latent 300, lr 2e-4, L1 50, no gate)",
    "released_eval": "released evaluation, all combined (ORACLE)",
    "released_all": "released training + evaluation (ORACLE)",
}.items():
    number(f"cifar_{key}", t.loc[label, "auc_mean"])
    number(f"cifar_{key}_diff", t.loc[label, "diff_mean"])
gap = PAPER_AUC - t.loc[PROJECT, "auc_mean"]
closed = t.loc["released training + evaluation (ORACLE)", "diff_mean"]
number("cifar_gap", gap)
number("cifar_closed_share", 100 * closed / gap)
number("cifar_remaining", PAPER_AUC - t.loc["released training + evaluation (ORACLE)", "auc_mean"])

# %% [markdown]
# Over {glue:text}`n_seeds` seeds, this project's evaluation of its own training scores an AUC of
# {glue:text}`cifar_project:.3f`, {glue:text}`cifar_gap:.3f` below the paper's
# {glue:text}`paper_auc:.3f`. The untrained network scores {glue:text}`cifar_untrained:.3f`.
# Switching to the released code's batchnorm mode and test order changes the AUC by
# {glue:text}`cifar_bn_first_diff:+.3f`; its score terms by {glue:text}`cifar_mi_diff:+.3f` (the
# FD term) and {glue:text}`cifar_logssim_diff:+.3f` ($-\log$ SSIM in place of $1-$SSIM); picking
# the best epoch on the test set by {glue:text}`cifar_oracle_diff:+.3f`; the released training by
# {glue:text}`cifar_released_training_diff:+.3f`. All of them together reach
# {glue:text}`cifar_released_all:.3f`: {glue:text}`cifar_closed_share:.0f`% of the gap, leaving
# {glue:text}`cifar_remaining:.3f` unexplained at this budget.
#
# ## Is the batchnorm gain a leak?
#
# With batch statistics, an image's score depends on the other images in its batch. Scored
# normals first, every batch but one holds a single class, so each batch is normalised by the
# statistics of its own label: information about the labels enters the scores through the
# order. The control is the same batchnorm mode on a shuffled test set, where a batch's
# composition says nothing about its labels.

# %% tags=["hide-input"]
leak, leak_p = paired(cifar, "batch statistics, normals first (released)")
control, control_p = paired(cifar, "batch statistics, shuffled test set")
number("leak_mean", leak.mean())
number("control_mean", control.mean())
number("leak_agree", int((leak > 0).sum()))
number("control_agree", int((control > 0).sum()))
verdict = (
    "The gain comes with the order, not with the batchnorm mode: it is a leak of the labels through the batches."
    if leak.mean() - control.mean() > 2 * max(abs(control.mean()), 0.01)
    else "The order adds little beyond the batchnorm mode itself on this record."
)
glue("leak_verdict", Markdown(verdict), display=False)
pd.DataFrame({"normals first − ours": leak.round(3), "shuffled − ours": control.round(3)}).rename_axis("seed")

# %% [markdown]
# Normals first, batch statistics move the AUC by {glue:text}`leak_mean:+.3f` on average
# ({glue:text}`leak_agree` of {glue:text}`n_seeds` seeds up); on a shuffled test set by
# {glue:text}`control_mean:+.3f` ({glue:text}`control_agree` of {glue:text}`n_seeds` up).
# {glue:md}`leak_verdict` A deployed detector sees its inputs in an order nobody sorted by label,
# so the shuffled row is the one to trust.
#
# ## What best-on-test selection adds
#
# The released code reports the best test AUC of its 100 epochs. The curves below show the test
# AUC after each epoch (epoch 0 is the untrained network): this project's evaluation, and the
# released evaluation, for both trainings. The gap between a curve's maximum and its last point
# is what the oracle adds.

# %% tags=["hide-input"]
views = {
    ("cpu", "eval", "ssim+l1"): "our training, our evaluation",
    ("cpu", "train_normals_first", "logssim+l1+mi"): "our training, released evaluation",
    ("released_cpu", "eval", "ssim+l1"): "released training, our evaluation",
    ("released_cpu", "train_normals_first", "logssim+l1+mi"): "released training, released evaluation",
}
curves = pd.concat(
    [cifar[(cifar["recipe"] == r) & (cifar["pass"] == p) & (cifar["score"] == s)].assign(label=label)
     for (r, p, s), label in views.items()]  # fmt: skip
)
fig = plots.auc_by_epoch(curves, title="CIFAR-10 deer: test AUC after each epoch (mean and 95% interval, 3 seeds)")
plt.show()
oracle_gain = (
    curves[curves["epoch"] > 0].groupby(["label", "seed"])["auc"].agg(lambda a: a.max() - a.iloc[-1]).groupby("label").mean()
)
number("oracle_gain_max", oracle_gain.max())

# %% [markdown]
# Averaged over seeds, the best epoch beats the last by at most {glue:text}`oracle_gain_max:.3f`
# of AUC in these four views at 4 epochs. With 100 epochs to choose from, as in the released
# code, an oracle has more chances to meet a lucky epoch; the per-epoch curves record how much
# the test AUC moves from one epoch to the next, which is the room it has.
#
# ## MNIST digit 1
#
# Digit 1 is the class on which reconstruction ranks backwards (chapter 7's per-class figure): a
# one is a few pixels of stroke, easier to reconstruct than any normal digit. The same factors:

# %% tags=["hide-input"]
mnist = F.collect(root / "mnist_1" / "5000x4")
mnist_table = F.factor_table(mnist)
shown(mnist_table)

# %% tags=["hide-input"]
fig = plots.factor_points(mnist_table, None, title="MNIST, digit 1 as the anomaly (5,000 images × 4 epochs)")
plt.show()
m = mnist_table.set_index("factor")
number("mnist_project", m.loc[PROJECT, "auc_mean"])
number("mnist_complexity", m.loc["score SSIM+L1 - PNG complexity (Serra et al.)", "auc_mean"])
number("mnist_cluster", m.loc["score: distance to the nearest cluster mean", "auc_mean"])
number("mnist_released_all", m.loc["released training + evaluation (ORACLE)", "auc_mean"])

# %% [markdown]
# On digit 1 this project's evaluation scores {glue:text}`mnist_project:.3f`; subtracting the
# input's PNG complexity, the correction of {cite:t}`serra2020` for exactly this failure,
# {glue:text}`mnist_complexity:.3f`; the distance of the code to its nearest cluster mean
# {glue:text}`mnist_cluster:.3f`; the released training and evaluation together
# {glue:text}`mnist_released_all:.3f`.
#
# ## Does budget explain the gap?
#
# The paper trains on all 43,200 normal training images; the released code for 100 epochs. The
# budget curve trains the released recipe on more images for longer and reads each model with
# the released evaluation (at its best epoch, an oracle, and at its last) and with ours.

# %% tags=["hide-input"]
budget = F.budget_table(root / "cifar10_deer")
fig = plots.budget_curve(budget, PAPER_AUC, title="CIFAR-10 deer, released training: AUC against budget")
plt.show()
by_budget = budget.groupby(["train_images", "epochs"]).agg(
    n=("seed", "size"),
    oracle=("auc_all_oracle", "mean"),
    last=("auc_all_last", "mean"),
    ours=("auc_project_last", "mean"),
    wall_minutes=("wall_seconds", lambda s: s.mean() / 60),
)
largest = by_budget.iloc[-1]
number("budget_largest_images", int(by_budget.index[-1][0]))
number("budget_largest_epochs", int(by_budget.index[-1][1]))
number("budget_largest_oracle", largest["oracle"])
number("budget_smallest_oracle", by_budget.iloc[0]["oracle"])
by_budget.round(3)

# %% [markdown]
# From the smallest to the largest budget ({glue:text}`budget_largest_images` images ×
# {glue:text}`budget_largest_epochs` epochs) the released evaluation's oracle AUC goes from
# {glue:text}`budget_smallest_oracle:.3f` to {glue:text}`budget_largest_oracle:.3f`. Wall times
# are those of one run on 2 CPU cores (`timings.csv` beside each record gives the machine's load).
#
# ### The run that used to become NaN
#
# Before the encoder's $\log\sigma^2$ was bounded, this project's training on CIFAR-10 deer at
# 20,000 images × 8 epochs drove $\log\sigma^2$ to −32.5 and the latent loss to NaN. The head
# now keeps $\log\sigma^2$ softly inside $(-10, 2)$ (`cvgad.networks.bound_logvar`, the bound of
# {cite:t}`chua2018`); `--logvar linear` is the paper's unbounded head. The same configuration,
# seed 0, with both:

# %% tags=["hide-input"]
outcomes = []
for head, folder in (("bounded", root / "cifar10_deer" / "20000x8" / "cpu" / "seed0"),
                     ("linear (the paper's)", root / "cifar10_deer_linear_logvar" / "20000x8" / "cpu" / "seed0")):
    record, failed = runs.read_json(folder / F.RUN_JSON), runs.read_json(folder / F.FAILED_JSON)
    outcomes.append({"log σ² head": head,
                     "outcome": "finished" if record else (failed or {}).get("error", "not recorded"),
                     "largest latent loss (nats/dim)": round(record["latent_loss_max"], 3) if record else None})
pd.DataFrame(outcomes).style.hide(axis="index")

# %% [markdown]
# ## The gate $T$
#
# Algorithm 1 runs negative training only while the latent loss is below $T$, "because when the
# latent loss is smaller, the latent codes of the normal samples are clustered well" (III.C). At
# an absolute $T$ of 1 nat per dimension the gate was open from the first batch (chapter 3).
# The default is now relative: shut for the first epoch, then open on batches whose latent loss
# is below 0.8 of that epoch's mean. On digits (anomaly 1, 15 epochs, 3 seeds), this project's
# evaluation at the last epoch:

# %% tags=["hide-input"]
gate_runs = []
for folder in sorted((root / "digits_gate").iterdir()):
    rows = F.collect(folder)
    rows = rows[(rows["pass"] == "eval") & (rows["score"] == "ssim+l1")]
    for seed, curve in rows.groupby("seed"):
        gate_runs.append({"variant": folder.name, "seed": seed, "auc": F.select(curve, "last")["auc"]})
gate = pd.DataFrame(gate_runs).pivot(index="seed", columns="variant", values="auc")
reference = "first_epoch_0.8_l1floor0.0"
gate_diff = gate.drop(columns=reference).sub(gate[reference], axis=0)
number("gate_default", gate[reference].mean())
number("gate_absolute_diff", gate_diff["absolute_1.0_l1floor0.0"].mean())
number("gate_l1_diff", gate_diff["first_epoch_0.8_l1floor0.2"].mean())
summary = gate.agg(["mean", "std"]).T.round(3)
summary["paired difference to the default"] = gate_diff.mean().round(3)
summary

# %% [markdown]
# The default gate scores {glue:text}`gate_default:.3f`; the old, always-open gate differs by
# {glue:text}`gate_absolute_diff:+.3f`, and adding an L1 hinge to the negative loss (III.F says
# negative training raises both SSIM and L1 losses of the negatives; `negative_l1_floor` 0.2) by
# {glue:text}`gate_l1_diff:+.3f`. With 3 seeds neither difference can be told from seed-to-seed
# variation, so the L1 hinge stays off by default (`negative_l1_floor = 0`, SSIM's hinge alone):
# a second hinge needs a floor the paper does not give, and it measured no gain.
#
# ## Summary
#
# * Each difference between the paper, its released code and this project is a switch
#   (`--bn-at-test`, `--test-order`, `--score`, `--select`, the `released` presets), measured on
#   the same trained models.
# * The released code's normals-first scoring with batch statistics leaks the labels into the
#   scores through the batches; on a shuffled test set the same batchnorm mode does not carry
#   the gain. Best-on-test selection is an oracle and is labelled as one.
# * The per-factor numbers, the remainder of the gap and the budget curve are in the tables
#   above, read from `ablations/results/forensics/`; `python -m cvgad.forensics summary` prints
#   them again.
