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
# # Exercises
#
# Five exercises on the ideas of the earlier chapters. Each has a task, a hint, an answer cell
# for you, a check, and a solution. Four come with an interactive widget from `cvgad.book.widgets`:
# a threshold explorer, a latent-space explorer, a loss lab that trains a few steps of
# Algorithm 1 of {cite:t}`bian2019`, and a quiz in which you predict the ablation of the
# paper's Table 1.
#
# An answer cell holds `...` where your answer goes. The check below it (from
# `cvgad.book.exercises`) returns quietly when your answer is right and raises an `AssertionError`
# that says what to look at when it is wrong, or that asks for an answer while the `...` is still
# there. Each solution sits in a folded cell between the two: open it only when you have tried.
#
# ```{admonition} Working on the exercises yourself
# :class: tip
# In this web page the widgets show the state they had when the book was built: sliders and
# buttons do nothing without a Python kernel. To use them, and to answer the exercises, run the
# notebook yourself with `solutions = False` in the parameters cell, so that the checks test
# *your* answers (the book and its tests run with `solutions = True`):
#
# `pip install -e '.[notebooks]'` in a clone of the repository, then
# `jupyter lab notebooks/09_exercises.ipynb`; `make student` writes a copy without the
# solutions.
#
# Everything runs on a CPU; the whole notebook takes a few minutes.
# ```

# %% tags=["parameters", "hide-input"]
# The book's default task and budget (cvgad.experiment.params.BOOK), where training helps.
dataset = "digits"  # the loss lab always trains on this dataset's normal images
anomaly_class = 7  # the class held out of training, treated as the anomaly
epochs = 6
latent_dim = 32  # d, the size of the latent code
width = 16  # channels of the first conv stage
means_lr = 3e-2  # learning rate of the cluster means mu_y
negative_threshold = 1.0  # the gate T, as a share of the first epoch's latent loss
seed = 0
device = "auto"  # auto: CUDA when present, else CPU
data_root = None  # None: $CVGAD_DATA, else ./data
solutions = True  # False: the answers are yours alone, and each check fails until its answer is filled in

# %% [markdown]
# ## A small trained model
#
# All exercises share one run: the book's task (chapters 3 to 5), the leave-one-class-out
# protocol with `anomaly_class` as the anomaly, trained for `epochs` epochs, beside the same
# network untrained (its AUC is the reference training must beat, chapter 4).

# %% tags=["hide-input"]
# %matplotlib inline
import numpy as np
import torch

from cvgad.book import exercises, widgets
from cvgad.experiment.experiment import make_config, run_experiment, summary_line
from cvgad.model.losses import negative_radius, normal_share_beyond
from cvgad.workbench import plots

plots.use_house_style()

# %%
settings = dict(dataset=dataset, anomaly_class=anomaly_class, seed=seed, device=device, data_root=data_root,
                width=width, latent_dim=latent_dim, means_lr=means_lr, negative_threshold=negative_threshold)
run = run_experiment(make_config(epochs=epochs, **settings), progress=False)
untrained = run_experiment(make_config(epochs=0, **settings), progress=False)
evaluation = run.evaluation
scores, labels = evaluation.scores, evaluation.labels
print(summary_line(run.metrics))
print(f"the same network untrained: AUC {untrained.metrics['auc']:.3f}")
print(f"test set: {int((labels == 0).sum())} normal, {int(labels.sum())} anomalous images")

# %% [markdown]
# ## Exercise 1: a threshold, by hand
#
# CVGAD flags an image as anomalous when its anomaly score is at least a threshold $t$. With
# the anomalies as positives, precision is $P = \mathrm{TP} / (\mathrm{TP} + \mathrm{FP})$, recall
# is $R = \mathrm{TP} / (\mathrm{TP} + \mathrm{FN})$, and the paper's F1 (its eq. 18) is their
# harmonic mean:
#
# $$
# F_1 = \frac{2 P R}{P + R} .
# $$ (ex-f1)
#
# **Task.** For the threshold `t` below (the 70% quantile of the test scores), count TP, FP, TN
# and FN with NumPy from `scores` and `labels` (1 = anomaly), and compute F1 with
# {eq}`ex-f1`.
#
# ```{admonition} Hint
# :class: dropdown
# `flagged = scores >= t` is a boolean array; `np.sum(flagged & (labels == 1))` counts the
# true positives.
# ```

# %%
# your answer: a dict with the keys tp, fp, tn, fn and f1
t = float(np.quantile(scores, 0.7))
answer_1 = ...

# %% tags=["hide-input", "solution"] mystnb={"code_prompt_show": "Show the solution", "code_prompt_hide": "Hide the solution"}
if solutions:
    flagged = scores >= t
    tp = int(np.sum(flagged & (labels == 1)))
    fp = int(np.sum(flagged & (labels == 0)))
    tn = int(np.sum(~flagged & (labels == 0)))
    fn = int(np.sum(~flagged & (labels == 1)))
    precision, recall = tp / (tp + fp), tp / (tp + fn)
    answer_1 = {"tp": tp, "fp": fp, "tn": tn, "fn": fn, "f1": 2 * precision * recall / (precision + recall)}

# %%
exercises.check_confusion(answer_1, scores, labels, t)

# %% [markdown]
# ```{admonition} Discussion
# :class: dropdown
# The threshold explorer below does the same computation for any $t$: move the slider and watch
# the counts, precision, recall and F1, the threshold on the score histogram and the operating
# point on the ROC curve. Raising $t$ flags fewer images: FP falls, but so do TP and recall. The
# slider starts at the test set's best-F1 threshold, the paper's metric, which a real detector
# could not pick because it needs the test labels.
# ```
#
# The threshold explorer (live in a kernel; here as saved when the book was built):

# %%
widgets.ThresholdExplorer(evaluation)

# %% [markdown]
# ## Exercise 2: the F1 floor
#
# A detector that flags *every* image has recall 1 and precision $p$, the share of anomalies in
# the test set. Its F1 is a floor that any useful detector must beat:
#
# $$
# F_1^{\text{floor}} = \frac{2 p}{1 + p} .
# $$ (ex-floor)
#
# **Task.** Compute the floor for this test set, whose anomaly share is `p` below. With
# leave-one-class-out on ten classes the anomalies are a large share of the test set (all of the
# held-out class against the 20% of each normal class that is not trained on), so the floor is
# high. Compare it with the F1 values of {cite:t}`bian2019`'s tables.
#
# ```{admonition} Hint
# :class: dropdown
# Put $P = p$ and $R = 1$ into {eq}`ex-f1`.
# ```

# %%
# your answer: the F1 floor, a number
p = float(labels.mean())
answer_2 = ...

# %% tags=["hide-input", "solution"] mystnb={"code_prompt_show": "Show the solution", "code_prompt_hide": "Hide the solution"}
if solutions:
    answer_2 = 2 * p / (1 + p)

# %% tags=["nbval-check-output"]
exercises.check_f1_floor(answer_2, p)

# %% [markdown]
# ```{admonition} Discussion
# :class: dropdown
# $F_1 = 2 \cdot p \cdot 1 / (p + 1) = 2p / (1 + p)$, the function `cvgad.model.scoring.f1_floor`.
# For $p = 0.5$ the floor is $2/3$; for $p = 0.1$ it is $0.18$. An F1 means little until it is
# set against its floor, and an F1 at a threshold picked on the test set (the paper's) is an
# optimistic one.
# ```

# %% [markdown]
# ## Exercise 3: which radius rule excludes normal codes?
#
# Active negative training draws latent codes "farther than 2" from every cluster mean
# {cite:p}`bian2019` and teaches the CVAE to reconstruct their images badly, after the negative
# learning of {cite:t}`munawar2017`. But a normal code $z \sim \mathcal N(\mu_y, I)$ in $d$
# dimensions lies at a distance $\lVert z - \mu_y \rVert$ that follows a chi distribution with
# $d$ degrees of freedom, close to the shell radius $\sqrt d$:
#
# $$
# \mathbb E \lVert z - \mu_y \rVert \approx \sqrt{d} .
# $$ (ex-shell)
#
# `cvgad.model.losses.negative_radius` offers two rules: `"literal"` (radius 2, the paper) and `"chi"`
# (the 99.9% quantile of that chi distribution).
#
# **Task.** For this model's latent dimension, compute the share of normal codes that lie
# beyond each rule's radius, and say which rule keeps negative codes away from normal ones.
#
# ```{admonition} Hint
# :class: dropdown
# `normal_share_beyond(radius, d)` (of `cvgad.model.losses`) is the chi survival function `scipy.stats.chi.sf`;
# `negative_radius(d, rule)` gives each rule's radius.
# ```

# %%
# your answer: shares = {"literal": ..., "chi": ...}, and the rule, "literal" or "chi"
latent_dim = run.config.model.latent_dim
shares = ...
answer_3 = ...

# %% tags=["hide-input", "solution"] mystnb={"code_prompt_show": "Show the solution", "code_prompt_hide": "Hide the solution"}
if solutions:
    shares = {rule: normal_share_beyond(negative_radius(latent_dim, rule), latent_dim)
              for rule in ("literal", "chi")}
    answer_3 = "chi"

# %% tags=["nbval-check-output"]
exercises.check_radius_rule(answer_3, shares, latent_dim)

# %% [markdown]
# ```{admonition} Discussion
# :class: dropdown
# For $d = 32$ the shell radius is $\sqrt{32} \approx 5.7$: essentially every normal code lies
# beyond radius 2, so the literal rule draws "negatives" among the normal codes. The chi rule's
# radius (about 7.9 for $d = 32$, 18.2 for $d = 256$) leaves only 0.1% of normal codes beyond it.
# ```
#
# The latent explorer starts at a cluster mean of the trained model and walks along one of eight
# random directions. The marker says whether the code is beyond the negative radius from every
# mean; the lower panel puts the code's distance against the chi density of normal codes.
# Try radius 0 (the mean itself), the shell $\sqrt d$, and the negative radius.

# %%
widgets.LatentExplorer(run.trainer, seed=seed)

# %% [markdown]
# ## Exercise 4: switch a loss off
#
# Algorithm 1 makes a separate optimiser step for each loss, and `CVGADTrainer.step` logs the loss of
# every update it made. In the loss lab you switch losses on and off, set their weights, and
# train a few steps on the training digits with the button.
#
# **Task.** Predict which names vanish from the step logs when the latent loss is switched off.
# The cell trains five epochs of steps with every loss on and, from the same start, five with the
# latent loss off (each press of **train** counts as an epoch for the gate $T$); compare the keys
# of the two logs. Does negative training still run? The cell counts its updates in each.
#
# ```{admonition} Hint
# :class: dropdown
# The latent update optimises eq. (4)'s latent term together with its categorical term. The gate
# of negative training ("latent loss < T") still needs the latent loss, switched off or not.
# ```

# %%
train_images = run.dataset.images[torch.as_tensor(run.split.train)]
lab = widgets.LossLab(train_images, run.config.model, run.config.train.losses, steps=6, seed=seed,
                      device=str(run.trainer.device), means_lr=run.config.train.means_lr)
epoch_steps, lab_epochs = len(train_images) // lab.batch_size, 5


def train_epochs() -> list[dict[str, float]]:
    return [log for _ in range(lab_epochs) for log in lab.train(epoch_steps)]


runs_on = train_epochs()
lab.checkboxes["latent"].value = False
lab.reset()
runs_off = train_epochs()
for name, logs in (("all losses on", runs_on), ("latent loss off", runs_off)):
    print(f"{name}: negative training ran on {sum('negative' in log for log in logs)} of {len(logs)} steps")

# %%
# your answer: the set of names that vanish, e.g. {"mi"}
answer_4 = ...

# %% tags=["hide-input", "solution"] mystnb={"code_prompt_show": "Show the solution", "code_prompt_hide": "Hide the solution"}
if solutions:
    answer_4 = set().union(*runs_on) - set().union(*runs_off)  # {"latent", "categorical"}

# %%
exercises.check_missing_updates(answer_4, runs_on, runs_off)

# %% [markdown]
# ```{admonition} Discussion
# :class: dropdown
# The latent update logs two numbers, `latent` and `categorical`, and both vanish. The counts
# above show what happens to negative training. With all losses on, the gate stays shut for the
# first epoch and opens once the latent loss falls below $T$. With the latent loss off, the
# gate still reads the latent loss (computed without a gradient), but nothing pulls the codes
# towards the means, so it need not fall and the gate may stay shut.
# That is the paper's remark that "the negative training process can't work well without the
# clustering effect of the latent loss".
# ```
#
# The loss lab, reset to all losses on and trained for six steps. Untick a loss, change a
# weight, press **train** again, and watch the curves of the next steps.

# %%
lab.checkboxes["latent"].value = True
lab.reset()
lab.button.click()
lab

# %% [markdown]
# ## Exercise 5: predict the ablation
#
# Table 1 of {cite:t}`bian2019` removes one loss at a time (CIFAR-10, deer as the anomaly).
# **Task.** Before you look, rank its rows from best to worst AUC *as this book's CIFAR-10 deer
# record measured them* (the `cpu` preset of chapter 6; chapter 10 lists its size). In a
# kernel, the quiz shows one dropdown per place; press **reveal** to see that record beside your
# ranking, with Spearman's rank correlation $\rho$ (1: the same order, $-1$: reversed). Without a
# kernel, write your ranking into `my_ranking`, then open the comparison below it.
#
# ```{admonition} Hint
# :class: dropdown
# Think about what each loss does: which one does the paper say has the greatest impact, and
# which the least? Chapter 6 runs the ablation.
# ```

# %% tags=["remove-input"]
from cvgad.book import caveats

caveats.shown("09_exercises")

# %%
quiz = widgets.AblationQuiz(*widgets.load_ablation_results("../ablations/results/table1/cpu/runs.csv"))
quiz

# %%
# your answer: every row once, best first, e.g. ["all", "no_mi", ...]
my_ranking = ...

# %% tags=["hide-input", "solution"] mystnb={"code_prompt_show": "Show the solution", "code_prompt_hide": "Hide the solution"}
if solutions:  # the paper's order by AUC, best first: the natural prediction
    my_ranking = ["all", "no_negative", "no_mi", "no_latent", "no_l1", "no_ssim", "no_wasserstein"]

# %%
exercises.check_ranking(my_ranking, list(quiz.results.index))

# %% [markdown]
# Your ranking beside the results (the answer; open the output when you have ranked):

# %% tags=["hide-output"]
ranking, rho = widgets.agreement_table(my_ranking, quiz.results["value"])
print(f"Spearman's rho {rho:.2f}; source: {quiz.source}")
ranking.join(quiz.results["label"])

# %% [markdown]
# ```{admonition} Discussion
# :class: dropdown
# In the paper the order by AUC is: all losses (0.853), without negative training (0.838),
# without mutual information (0.794), without the latent loss (0.790), without L1 (0.767),
# without SSIM (0.736), without the Wasserstein loss (0.718). Every loss helps; the
# adversarial (Wasserstein) loss matters most and negative training least. The record revealed
# above orders the rows differently, and chapter 6 shows that at its budget no removal differs
# from `all` by more than the spread between seeds: a low $\rho$ says the record cannot rank
# the losses, not that your prediction was poor.
# ```
#
# ## Projects
#
# Open questions, each a few hours to a few days:
#
# - **The paper's budget.** Run Table 1's `paper` preset (all images, width 64, 15 epochs) on a
#   GPU: `cvgad ablate ablations/table1.yaml --preset paper`. Does any removal then differ from
#   `all` by more than the spread between seeds?
# - **Fig. 7 without the mutual-information loss.** Train chapter 5's model with `mi` switched off
#   (`cvgad train ... --disable mi`, or the loss lab) and compare its latent neighbours and its
#   NMI with the trained model's.
# - **Another dataset.** Put Fashion-MNIST into your data root (`fashion_mnist.npz`, the format on
#   the start page) and run Table 2's grid with `dataset: fashion_mnist` against the paper's
#   Table 2.
# - **The complexity correction.** Score MNIST digit 1 with the image's PNG size subtracted
#   (`--score`, chapter 8) at several budgets: does the correction keep the AUC above the
#   untrained network's as training goes on?
#
# ## Notes for instructors
#
# - **One model per group.** The parameters cell is tagged `parameters`, so
#   [papermill](https://papermill.readthedocs.io) can preset it for a class, for example a
#   different anomaly class and seed per group:
#
#   ```bash
#   papermill notebooks/09_exercises.ipynb out.ipynb -p anomaly_class 7 -p seed 3
#   ```
#
#   Add `-p epochs 12` to train twice as long.
# - **Students' copies without solutions.** `cvgad student DIR` writes `DIR/09_exercises.ipynb`
#   (`make student`: into `student/`): no solution cells
#   (they are tagged `solution`), no discussion answers, no outputs and `solutions = False`. A
#   student who runs it gets an `AssertionError` at each check until the `...` above it is
#   replaced by an answer (`tests/test_student.py` runs the students' copy; the book runs this one).
# - **Checks** are plain functions in `cvgad.book.exercises`, tested in `tests/test_exercises.py`; add
#   your own in the same style (assert, with a message that says what to look at).
# - **Testing.** `pytest --nbval-lax notebooks/09_exercises.ipynb` re-runs the notebook with the
#   solutions; the widget computations are tested in `tests/test_widgets.py`.
