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
# # CVGAD against baselines
#
# The paper's claims are comparative. Figs. 2 and 3 of {cite:t}`bian2019` put CVGAD beside
# GANomaly, EGBAD and AnoGAN on every class of MNIST and CIFAR-10; Table 2 beside GPND on the
# one-class protocol; Table 3 beside nine methods on COIL-100. The first question a reader should
# ask of any such comparison is simpler: does CVGAD's machinery (the clustered latent space, the
# mutual-information loss, the critic, the negative training) beat **the same encoder and decoder
# trained on reconstruction alone**? This chapter answers it with three baselines that go through
# the same data, split, seeds, anomaly score, metrics and run folders as CVGAD, and shows the
# recorded grids: Figs. 2 and 3 per class, then Tables 3 and 2 in the paper's layout.
#
# Every number here is read from the records under `ablations/results/` (nothing is trained when
# the book builds). The grids and their commands:
#
# ```text
# cvgad ablate ablations/fig2_mnist.yaml --preset cpu --jobs 2
# cvgad ablate ablations/fig3_cifar10.yaml --preset cpu --jobs 2
# cvgad ablate ablations/table3_coil100.yaml --preset full --jobs 2
# cvgad ablate ablations/table2_oneclass.yaml --preset cpu --jobs 2
# cvgad report ablations/results/<grid>/<preset>
# ```

# %% tags=["parameters", "hide-input"]
fig2 = "../ablations/results/fig2_mnist/cpu"  # recorded results, relative to notebooks/
fig3 = "../ablations/results/fig3_cifar10/cpu"
table3 = "../ablations/results/table3_coil100/full"
table3_sizing = "../ablations/results/table3_coil100/sizing"
table2 = "../ablations/results/table2_oneclass/cpu"

# %% tags=["hide-input"]
import numpy as np
import pandas as pd
import torch
from IPython.display import Markdown
from myst_nb import glue
from scipy.stats import wilcoxon

from cvgad.experiment.data import load_dataset
from cvgad.experiment.params import make_config
from cvgad.experiment.protocols import make_split
from cvgad.experiment.runs import read_plan
from cvgad.model.algorithm1 import applied
from cvgad.model.config import LossConfig, ModelConfig, TrainConfig
from cvgad.model.trainers import trainer_for
from cvgad.workbench import plots
from cvgad.workbench.formatting import fmt, num, settings_name, styled, value_name
from cvgad.workbench.per_cell import cell_table, mean_over_cells, published_layout
from cvgad.workbench.results import load_runs, paired_differences

plots.use_house_style()
MODELS = ("cvgad", "ae", "vae", "ganomaly")


def number(name: str, value: float) -> None:
    """Glues a number for the prose as a plain Python number (myst-nb cannot format numpy's repr)."""
    glue(name, value.item() if hasattr(value, "item") else value, display=False)



def load(results: str) -> tuple[pd.DataFrame, dict]:
    """The runs and the plan of a recorded grid."""
    runs, _ = load_runs(results)
    if runs is None:
        raise FileNotFoundError(f"no recorded runs in {results}; run the grid (see the commands above)")
    return runs, read_plan(results)


# %% tags=["remove-input"]
from cvgad.book import caveats

caveats.shown("07_baselines")


# %% [markdown]
# ## The models
#
# | model | networks | trained on | anomaly score |
# |---|---|---|---|
# | `cvgad` | encoder, decoder, classifier $p(y\mid z)$, $K$ means $\mu_y$, FD, critic (chapter 2) | Algorithm 1 (chapter 3) | SSIM loss + L1, min-max normalised (II.F) |
# | `ae` | CVGAD's encoder and decoder | the reconstruction loss of III.C (50 SSIM + 10 L1) from the posterior mean | the same |
# | `vae` | CVGAD's encoder and decoder | the same reconstruction loss from a sampled code, plus the latent weight times $\mathrm{KL}(p(z\mid x)\,\Vert\,\mathcal N(0, I))$ | the same |
# | `ganomaly` | anomalib's GANomaly generator (encoder, decoder, second encoder) and discriminator, sized by the same width and latent size | anomalib's training step: $1\cdot$adversarial + $50\cdot$contextual L1 + $1\cdot$encoder loss, then the discriminator | $\lVert E(x) - E'(G(x))\rVert^2$ per dimension |
#
# `ae` and `vae` are not copies: `cvgad.model.baselines` builds them from `cvgad.model.networks.Encoder` and
# `Decoder` and scores them with the same function as CVGAD (`cvgad.model.scoring.score_terms`).
# GANomaly is the maintained implementation in anomalib ({cite:t}`akcay2018`), trained by our
# loop with anomalib's losses (the optional extra `pip install 'cvgad[peers]'`). All four share
# one training loop (`cvgad.model.training.Trainer`: batches, NaN checks, resumable state) and Adam with
# betas (0.5, 0.999); the learning rate is III.C's 1e-3, except GANomaly's own 2e-4 for GANomaly
# (the run parameter `lr` sets another).
#
# The cell below checks these claims on a tiny configuration: each model makes one training step
# on random images and reports which losses it logged; the encoder of `ae` has exactly as many
# parameters as CVGAD's; and on digits, the four models get the same split for the same seed.

# %% tags=["nbval-check-output"]
torch.set_num_threads(1)
tiny = dict(channels=1, latent_dim=8, n_clusters=2, width=4)
batch = torch.rand(8, 1, 32, 32, generator=torch.Generator().manual_seed(0))
for model in MODELS:
    open_gate = LossConfig(negative_gate="absolute", negative_threshold=float("inf"))
    trainer = trainer_for(ModelConfig(model=model, **tiny),
                          TrainConfig(batch_size=8, device="cpu", seed=0, losses=open_gate))
    logged = applied(trainer.step(batch))
    params = sum(p.numel() for m in trainer.modules.values() for p in m.parameters())
    print(f"{model:9s} logs {', '.join(logged):52s} {params:7d} parameters in {', '.join(trainer.modules)}")
encoders = {m: sum(p.numel() for p in trainer_for(ModelConfig(model=m, **tiny), TrainConfig(device="cpu"))
                   .scorer.encoder.parameters()) for m in ("cvgad", "ae")}
print("encoder parameters, cvgad and ae:", encoders["cvgad"], encoders["ae"])
digits = load_dataset("digits")
splits = [make_split(digits.labels, make_config(model=m, seed=3).data, seed=3) for m in MODELS]
print("same train, validation and test indices for all four models:",
      all(np.array_equal(getattr(s, part), getattr(splits[0], part))
          for s in splits for part in ("train", "val", "test", "test_labels")))

# %% [markdown]
# ## Fig. 2: MNIST, every digit in turn as the anomaly
#
# The `cpu` preset of `ablations/fig2_mnist.yaml`: for every anomalous digit, the nine others are
# normal (III.D); each run trains on 2,000 normal images for 3 epochs (width 16, latent size 32)
# and is scored on 2,000 test images, drawn stratified. Bars are the mean over 3 seeds, whiskers
# the sample standard deviation; the dashed line is chance. The paper's Fig. 2 shows its values
# only as bars, so there are no published numbers to put beside these.

# %% tags=["hide-input"]
fig2_runs, _ = load(fig2)
fig = plots.cell_bars(fig2_runs, ["anomaly_class"], "mnist")
_ = fig.suptitle("MNIST (cpu preset): AUC per anomalous digit")


# %% [markdown]
# The mean over the ten classes, per model (per seed the mean over classes, then mean ± std over
# the seeds), and each baseline against CVGAD: its AUC minus CVGAD's, paired by class and seed
# (`cvgad.workbench.paired_differences`), in how many of the pairs the baseline is ahead, and a
# Wilcoxon signed-rank test of the ten per-class differences (each the mean over the seeds of the
# class; the seeds of one class share its difficulty, so they are not independent pairs).

# %% tags=["hide-input"]
def summary(runs: pd.DataFrame, vary: list[str], name: str) -> pd.DataFrame:
    """Per model: the mean over classes, and its paired difference to CVGAD with a Wilcoxon test; glues the numbers."""
    over = mean_over_cells(runs, vary).set_index("row")
    pairs = paired_differences(runs, vary, reference="cvgad").set_index("row")  # model − CVGAD
    ok = runs[runs["status"] == "ok"]
    per_class = pd.to_numeric(ok["auc"]).groupby([ok["row"], ok[vary[0]]]).mean()
    lines, p_values = {}, {}
    for row in over.index:
        r = over.loc[row]
        line = {"model": r["label"], "seeds (n)": int(r["n"]),
                "AUC, mean over classes": fmt(r["auc_mean"], r["auc_std"], int(r["n"])),
                "F1 at validation threshold": fmt(r["f1_val_mean"], r["f1_val_std"], int(r["n"])),
                "F1 floor": f"{r['f1_floor_mean']:.3f}"}
        number(f"{name}_{row}_auc", r["auc_mean"])
        if row in pairs.index:
            d = pairs.loc[row]
            p = p_values[row] = float(wilcoxon(per_class[row] - per_class["cvgad"]).pvalue)
            line |= {"Δ AUC vs CVGAD (paired)": fmt(d["auc_diff_mean"], d["auc_diff_std"], int(d["pairs"])),
                     "pairs ahead of CVGAD": f"{int(d['ahead'])} of {int(d['pairs'])}", "Wilcoxon p (10 classes)": num(p)}
            for key, value in (("diff", d["auc_diff_mean"]), ("ahead", int(d["ahead"])), ("pairs", int(d["pairs"])),
                               ("p", p)):
                number(f"{name}_{row}_{key}", value)
        lines[row] = line
    glue(f"{name}_verdict", Markdown(verdict(pairs.loc["ae"], p_values["ae"])), display=False)
    return pd.DataFrame(lines).T.fillna("–")


def verdict(ae: pd.Series, p: float) -> str:
    """What the paired comparison of the plain autoencoder with CVGAD says, in words that follow from its numbers."""
    head = (f"The plain autoencoder minus CVGAD is {ae['auc_diff_mean']:+.3f} in AUC on average over "
            f"{int(ae['pairs'])} (class, seed) pairs, and the autoencoder is ahead in {int(ae['ahead'])} of them; ")
    if p >= 0.05:
        return head + (f"over the ten classes the difference is not significant at the 5% level (Wilcoxon p = {num(p)}). "
                       "At this budget the paired test does not show CVGAD's latent machinery adding to its own "
                       "encoder and decoder trained on reconstruction alone.")
    ahead = "CVGAD" if ae["auc_diff_mean"] < 0 else "the plain autoencoder"
    return head + f"over the ten classes {ahead} is ahead (Wilcoxon p = {num(p)})."


fig2_summary = summary(fig2_runs, ["anomaly_class"], "fig2")
fig2_summary

# %% [markdown]
# On MNIST at this budget the mean AUC over the ten digits is {glue:text}`fig2_cvgad_auc:.3f` for
# CVGAD, {glue:text}`fig2_ae_auc:.3f` for the plain autoencoder, {glue:text}`fig2_vae_auc:.3f` for
# the VAE and {glue:text}`fig2_ganomaly_auc:.3f` for GANomaly. {glue:md}`fig2_verdict`
#
# Per class, the AUC (mean over the seeds); `per_cell.md` in the results folder has every metric
# per class, with the F1 at the validation threshold (one a user could deploy) beside the oracle
# F1 and the flag-everything floor.

# %% tags=["hide-input"]
def per_class(runs: pd.DataFrame, vary: list[str], dataset: str) -> pd.DataFrame:
    table = cell_table(runs, vary)
    table["class"] = [value_name(vary[0], v, dataset) for v in table[vary[0]]]
    return table.pivot(index="class", columns="row", values="auc_mean")[list(MODELS)].reindex(
        [value_name(vary[0], v, dataset) for v in dict.fromkeys(table[vary[0]])])


styled(per_class(fig2_runs, ["anomaly_class"], "mnist").rename_axis("AUC, mean over seeds"))

# %% [markdown]
# ## Fig. 3: CIFAR-10, every class in turn as the anomaly
#
# The same design on CIFAR-10 (`ablations/fig3_cifar10.yaml`, `cpu` preset: 2,000 training
# images, 3 epochs, width 16, latent size 32, 2,000 test images, 3 seeds).

# %% tags=["hide-input"]
fig3_runs, _ = load(fig3)
fig = plots.cell_bars(fig3_runs, ["anomaly_class"], "cifar10")
_ = fig.suptitle("CIFAR-10 (cpu preset): AUC per anomalous class")

# %% tags=["hide-input"]
fig3_summary = summary(fig3_runs, ["anomaly_class"], "fig3")
fig3_summary

# %% [markdown]
# On CIFAR-10 the mean AUC over the ten classes is {glue:text}`fig3_cvgad_auc:.3f` for CVGAD,
# {glue:text}`fig3_ae_auc:.3f` for the plain autoencoder, {glue:text}`fig3_vae_auc:.3f` for the
# VAE and {glue:text}`fig3_ganomaly_auc:.3f` for GANomaly. {glue:md}`fig3_verdict`

# %% tags=["hide-input"]
fig3_classes = per_class(fig3_runs, ["anomaly_class"], "cifar10")
backwards = fig3_classes.index[(fig3_classes < 0.5).all(axis=1)].tolist()
glue("fig3_backwards", Markdown(
    f"For {', '.join(backwards)}, every model's mean AUC is below 0.5: all four scores rank those anomalies as more "
    "normal than the normal images (chapter 6 meets the same with deer)." if backwards else
    "No class is ranked backwards (below 0.5) by every model."), display=False)
styled(fig3_classes.rename_axis("AUC, mean over seeds"))

# %% [markdown]
# {glue:md}`fig3_backwards`

# %% [markdown]
# ## Table 3: COIL-100 at the paper's full scale
#
# COIL-100 is small enough to run the protocol of III.H at full size on two CPU cores: 1, 4 or 7
# objects drawn at random are normal, 70 images of each train and 2 of each test, and the
# outliers (one image each of other objects) make up 50, 25 or 15% of the test set. Each seed
# draws its own objects, so the spread below is over the draws. The test sets are tiny (4, 11 and
# 16 images), which is why one draw says little and a single published number not much more.
# COIL-100 has no validation set (the paper uses none), so the deployable threshold is fixed on the
# training images. The grid uses batch 16 and 30 epochs for all three settings (the paper says
# batch 1, which neither the MI loss nor batchnorm can use, and gives no epochs); its `sizing`
# preset measured the alternatives, below.

# %% tags=["hide-input"]
table3_runs, table3_plan = load(table3)
cvgad3 = table3_runs[(table3_runs["status"] == "ok") & (table3_runs["row"] == "cvgad")]
auc3 = pd.to_numeric(cvgad3["auc"]).groupby(cvgad3["n_inliers"]).agg(["mean", "std", "count"])
for k, r in auc3.iterrows():
    number(f"t3_auc_{k}", r["mean"])
    number(f"t3_se_{k}", r["std"] / np.sqrt(r["count"]))
number("t3_draws", int(auc3["count"].min()))
published_layout(table3_runs, table3_plan)

# %% [markdown]
# Over {glue:text}`t3_draws` draws, CVGAD's AUC is {glue:text}`t3_auc_1:.3f`,
# {glue:text}`t3_auc_4:.3f` and {glue:text}`t3_auc_7:.3f` for 1, 4 and 7 inlier objects (the
# paper: 0.973, 0.949, 0.938). How stable these means are: their standard errors over the draws
# (std/√n) are {glue:text}`t3_se_1:.3f`, {glue:text}`t3_se_4:.3f` and {glue:text}`t3_se_7:.3f`.
#
# Near-perfect AUCs need an explanation before they count as a result. The same draws scored by
# the pixel distance of each test image to its nearest training image, with no model at all
# (`benchmarks/coil_nearest_neighbour.py`), and that score against shuffled labels as a control:

# %% tags=["hide-input"]
nn = pd.read_csv("../benchmarks/results/coil100_nearest_neighbour.csv", comment="#")
nn_summary = nn.groupby("n_inliers")[["auc_nearest_neighbour", "auc_shuffled_labels"]].agg(["mean", "std"])
for k, r in nn_summary.iterrows():
    number(f"t3_nn_{k}", r[("auc_nearest_neighbour", "mean")])
nn_summary.round(3)

# %% [markdown]
# Without any training the nearest training image already ranks the outliers at AUC
# {glue:text}`t3_nn_1:.3f`, {glue:text}`t3_nn_4:.3f` and {glue:text}`t3_nn_7:.3f` (shuffled labels
# fall to chance, as they must): under this protocol a test view of an inlier object lies 5
# degrees from one of its 70 training views, so the task is easy by itself, and Table 3 cannot
# tell CVGAD, the plain autoencoder or a lookup apart. That our trained models sit above the
# paper's numbers says more about the protocol's details (how many test images, which outliers)
# than about the models.
#
# The two open points, measured (`sizing` preset: CVGAD, 3 draws of 7 inlier objects, the setting
# with the most images, every combination of batch size 8 or 32 and 10 or 30 epochs): AUC mean ±
# std over the draws, and the mean wall time of a run.

# %% tags=["hide-input"]
sizing_runs, sizing_plan = load(table3_sizing)
ok = sizing_runs[(sizing_runs["status"] == "ok") & (sizing_runs["row"] == "cvgad")]  # the record has `ae` too
ok = ok.assign(auc=pd.to_numeric(ok["auc"]), wall_seconds=pd.to_numeric(ok["wall_seconds"]))
sizing_vary = list(sizing_plan["vary"])
by = ok.groupby(sizing_vary)
sizing = pd.DataFrame({"n": by["auc"].count(), "AUC": [fmt(m, sd, n) for m, sd, n in
                                                       zip(by["auc"].mean(), by["auc"].std(), by["auc"].count(), strict=True)],
                       "wall time of a run (s)": by["wall_seconds"].mean().round(0)})
for key in ("batch_size", "epochs"):
    for value, auc in ok.groupby(key)["auc"].mean().items():
        number(f"sizing_{key}_{value}", auc)
sizing.rename_axis([settings_name([k]) for k in sizing_vary])

# %% [markdown]
# Averaged over the rest, AUC is {glue:text}`sizing_batch_size_8:.3f` at batch 8 and
# {glue:text}`sizing_batch_size_32:.3f` at batch 32, {glue:text}`sizing_epochs_10:.3f` after 10
# epochs and {glue:text}`sizing_epochs_30:.3f` after 30.
#
# ## Table 2: the one-class protocol, on MNIST
#
# Table 2 of the paper is on Fashion-MNIST, which cannot be downloaded here. GPND
# ({cite:t}`pidhorskyi2018`) reports the same protocol (one normal class; 6:2:2 folds; 10 to 50%
# outliers in the test fold) on MNIST, so the protocol is checked on MNIST against GPND's F1
# there; set `dataset: fashion_mnist` in the grid, with your own copy in the data root, to compare
# with the paper's Table 2. Ours: the `cpu` preset (test fold 0, 1,000 training images of the
# normal class, 3 epochs, width 16, latent size 32), per seed averaged over the ten normal
# classes, 3 seeds. GPND's F1 is as it published it; ours is shown at the oracle threshold and at
# the validation threshold.

# %% tags=["hide-input"]
table2_runs, table2_plan = load(table2)
ok2 = table2_runs[table2_runs["status"] == "ok"]
for metric in ("auc", "f1_best", "f1_val", "f1_gpnd"):
    number(f"t2_{metric}", pd.to_numeric(ok2[metric]).mean())
gpnd = [p["f1"] for p in table2_plan["published"]]
number("t2_gpnd_f1", float(np.mean(gpnd)))
published_layout(table2_runs, table2_plan)

# %% [markdown]
# Over all outlier shares and classes, our mean AUC is {glue:text}`t2_auc:.3f`, our oracle F1
# {glue:text}`t2_f1_best:.3f` and our F1 at the validation threshold {glue:text}`t2_f1_val:.3f`.
# These F1s count the anomalies as the positive class. GPND's code (`novelty_detector.py` in
# `podgorskiy/GPND`) counts the **inliers** as positive, with the threshold that maximises F1 on
# its validation set, which in this protocol holds outliers too. Each of our runs keeps its
# per-image scores, so its F1 is also computed in GPND's convention, without retraining: over all
# shares and classes {glue:text}`t2_f1_gpnd:.3f`, against GPND's mean published
# {glue:text}`t2_gpnd_f1:.3f`. That line of the table is the one to set beside GPND's. With inliers
# positive, declaring every image an inlier already scores $2(1-p)/(2-p)$, which is:

# %% tags=["hide-input"]
shares = np.array(table2_plan["vary"]["outlier_fraction"])
floors = pd.DataFrame({"outlier share p": shares, "flag everything (anomalies positive, ours)": 2 * shares / (1 + shares),
                       "accept everything (inliers positive, GPND)": 2 * (1 - shares) / (2 - shares)}).set_index("outlier share p")
gpnd_10 = next(p["f1"] for p in table2_plan["published"] if p["outlier_fraction"] == 0.1)
ours_10 = pd.to_numeric(ok2.loc[ok2["outlier_fraction"] == 0.1, "f1_gpnd"]).mean()
number("t2_gpnd_10", gpnd_10)
number("t2_gpnd_margin_10", gpnd_10 - floors.loc[0.1].iloc[1])
number("t2_ours_gpnd_10", ours_10)
number("t2_ours_margin_10", ours_10 - floors.loc[0.1].iloc[1])
number("t2_floor_10", floors.loc[0.1].iloc[0])
floors.round(3)

# %% [markdown]
# So at 10% outliers GPND's {glue:text}`t2_gpnd_10:.3f` lies {glue:text}`t2_gpnd_margin_10:+.3f`
# above that floor and ours, in the same convention, {glue:text}`t2_ours_gpnd_10:.3f` lies
# {glue:text}`t2_ours_margin_10:+.3f` above it; our F1 with the anomalies positive is measured
# against a floor of {glue:text}`t2_floor_10:.3f` instead. In GPND's convention both F1s fall as
# the share of outliers grows, as its floor does; with the anomalies positive ours rises. The
# table above sets the two side by side for every share, from runs far smaller than GPND's (1,000
# training images of the normal class, 3 epochs). The AUC, which needs no threshold and no choice
# of positive class, remains the cleaner comparison, and GPND does not report it on MNIST.

# %% [markdown]
# ## Summary
#
# - The baselines share CVGAD's networks, split, score and metrics, so the paired differences
#   above isolate what CVGAD's training adds at the recorded budgets.
# - MNIST: {glue:md}`fig2_verdict`
# - CIFAR-10: {glue:md}`fig3_verdict`
# - Read the budgets as what they are: minutes per run on two CPU cores, far below the paper's
#   (chapter 6 discusses the gap; chapter 10 lists every preset). On MNIST digit 1 this
#   chapter's record and chapter 8's disagree; chapter 10 measures why, one setting at a time.
#   The `paper` presets of the grids are the full protocols, for a GPU.
#
# To try: run a grid at another preset or with other rows, e.g.
# `cvgad ablate ablations/fig2_mnist.yaml --preset cpu --rows cvgad,ae --seeds 3,4`, then
# `cvgad report` on its folder and point this chapter's parameters at it
# (`papermill notebooks/07_baselines.ipynb out.ipynb -p fig2 <folder>`).
