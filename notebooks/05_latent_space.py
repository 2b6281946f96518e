# ---
# jupyter:
#   jupytext:
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
# # The latent space
#
# The CVAE of {cite:t}`bian2019` puts a Gaussian $q(z \mid y) = \mathcal N(\mu_y, I)$ with a
# learnable mean $\mu_y$ on each of $K$ unlabelled categories, much like GMVAE
# {cite:p}`dilokthanakul2016` and VaDE {cite:p}`jiang2017`. A classifier $p(y \mid z)$ assigns
# codes to categories. This chapter trains a model and looks at what it learnt:
#
# * images decoded near each learnt mean (the paper's Fig. 6);
# * a 2-D map of the test codes, coloured by true class and by the learnt cluster;
# * the nearest and farthest neighbours of a query image in latent space (Fig. 7);
# * how well the clusters match the classes;
# * where the codes lie relative to the means and to the radius beyond which negative training
#   draws its outliers, and what those outliers look like when decoded.
#
# `device = "auto"` uses CUDA when it is present and the CPU otherwise.

# %% tags=["parameters", "hide-input"]
# The book's default task and budget (cvgad.experiment.params.BOOK; benchmarks/results/book_defaults.csv).
dataset = "digits"  # digits, mnist, fashion_mnist, cifar10, coil100
anomaly_class = 7  # the class left out of training
epochs = 6
latent_dim = 32  # d, the size of the latent code
width = 16  # channels of the first conv stage
means_lr = 3e-2  # learning rate of the cluster means mu_y (None: the same as the rest)
negative_threshold = 1.0  # the gate T, as a share of the first epoch's latent loss
seed = 0
device = "auto"  # "auto": CUDA when present, else the CPU
data_root = None  # None: $CVGAD_DATA, else ./data
train_subset = None  # cap on training images (None: all)
n_codes = 2000  # at most this many test images are encoded for the maps and statistics
projection = "pca"  # "pca" or "tsne"
query_index = 0  # which of the encoded normal test images is the query of Fig. 7
noise_scale = 0.5  # Fig. 6: decode mu_y + noise_scale * N(0, I)
per_row = 10  # Fig. 6: decoded images per cluster

# %% tags=["hide-input"]
import math

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import torch
from myst_nb import glue

from cvgad.book import latent
from cvgad.experiment.experiment import make_config, prepare
from cvgad.experiment.runs import find_upwards
from cvgad.model import losses as L
from cvgad.model.algorithm1 import CVGADTrainer
from cvgad.model.scoring import cluster_purity
from cvgad.workbench import plots

plots.use_house_style()

pd.set_option("display.precision", 3)

# %% [markdown]
# The cell below trains the model. Before training, and after every epoch, it measures the
# clustering of the normal test images (NMI, below), so that we can see *when* the codes cluster
# and compare that with when the gate $T$ let negative training in. It also keeps the untrained
# network's means and decodings for the before-and-after comparisons.

# %%
cfg = make_config(dataset=dataset, anomaly_class=anomaly_class, epochs=epochs, seed=seed, device=device,
                  data_root=data_root, train_subset=train_subset, width=width, latent_dim=latent_dim,
                  means_lr=means_lr, negative_threshold=negative_threshold)
data, split = prepare(cfg)
d, K = cfg.model.latent_dim, cfg.model.n_clusters
rng = np.random.default_rng(seed)
pick = np.sort(rng.choice(len(split.test), size=min(n_codes, len(split.test)), replace=False))
idx = split.test[pick]
classes = data.labels[idx]
is_anomaly = split.test_labels[pick] == 1
images = data.images[torch.as_tensor(idx)]

trainer = CVGADTrainer(cfg.model, cfg.train)
init_means = trainer.cvae.means.detach().clone()


def clustering() -> dict[str, float]:
    """This chapter's numbers for the model as it is now (cvgad.book.latent.latent_summary)."""
    codes = latent.encode(trainer.cvae, images)
    return latent.latent_summary(trainer.cvae, codes, classes, is_anomaly, trainer.radius, init_means, seed)


before = clustering()
decoded_before = latent.decode_near_means(trainer.cvae, per_row, noise_scale, seed)
nmi_by_epoch = [before["nmi_normal"]]
history = trainer.fit(data.images[torch.as_tensor(split.train)], progress=False,
                      on_epoch=lambda epoch: nmi_by_epoch.append(clustering()["nmi_normal"]))
after = clustering()
cvae = trainer.cvae.eval()  # batchnorm uses its running statistics from here on
print(f"device {trainer.device}: trained {cfg.train.epochs} epochs, {len(history)} steps")

# %% tags=["nbval-check-output"]
print(f"dataset {dataset}, anomaly class {anomaly_class}, normal classes {split.normal_classes}")
print("split:", split.counts())
print(f"latent_dim d = {d}, K = {K} cluster means of shape {tuple(cvae.means.shape)}")

# %% [markdown]
# ## Images near each learnt mean (Fig. 6)
#
# For each cluster $y$, decode $\mu_y + s\,\xi$ with $\xi \sim \mathcal N(0, I)$ and a small
# scale $s$ (`noise_scale`): one row per cluster. The paper shows three clusters of MNIST
# digits, each holding one kind of digit. Note that a draw of $q(z \mid y)$ itself would use
# $s = 1$; such a draw lies about $\sqrt d$ from its mean. First the untrained network, whose
# means all start near the origin, then the trained one:

# %% tags=["hide-input"]
decoded_after = latent.decode_near_means(cvae, per_row, noise_scale, seed)
labels = [f"cluster {y}" for y in range(K)]
fig = plots.image_grid(decoded_before, nrow=per_row, row_labels=labels,
                       title=f"untrained: decoded mu_y + {noise_scale} noise, one row per cluster y")
plt.show()
fig = plots.image_grid(decoded_after, nrow=per_row, row_labels=labels,
                       title=f"trained {epochs} epochs: decoded mu_y + {noise_scale} noise, one row per cluster y")
plt.show()

# %% [markdown]
# Looking is not measuring. A small judge does the measuring: a logistic regression on the pixels,
# fitted on 80 % of the digits images (all ten classes) and checked on the other 20 %
# (`cvgad.book.latent.digit_classifier`). It labels every decoded image. Per cluster, the table gives the
# digit it sees most often, the share of the row it gives that digit (consistency) and its mean
# probability for it (confidence). A cluster that holds one kind of digit decodes to images the
# judge labels consistently and confidently; different clusters should decode to different digits.

# %% tags=["hide-input"]
judge, judge_accuracy = latent.digit_classifier(data.images, data.labels, seed)
check_before = latent.decoded_means_check(judge, decoded_before, per_row)
check_after = latent.decoded_means_check(judge, decoded_after, per_row)
score_before, score_after = latent.means_score(check_before), latent.means_score(check_after)
print(f"the judge's accuracy on held-out digits: {judge_accuracy:.3f}")
pd.concat({"untrained": check_before, "trained": check_after}, axis=1)

# %% [markdown]
# The clustering before and after training: NMI of the clusters $\arg\max_y p(y \mid z)$ with the
# true classes of the normal test images, the smallest distance between two means, the share of
# normal samples $z$ within the negative radius of their nearest mean (the radius is explained
# further down), and the judge's summary of the decoded means.

# %% tags=["hide-input"]
search = pd.read_csv(find_upwards("benchmarks/results/book_defaults.csv"))
slow = search[search["candidate"] == "latent32_w16_e6_anomaly7"]  # these settings, means at 1e-3, T share 0.8
facts = {
    "slow_moved": slow["means_moved"].mean(), "slow_distinct": slow["distinct_digits"].mean(), "slow_n": len(slow),
    "judge_accuracy": judge_accuracy, "K": K, "per_row": per_row,
    "distinct_before": score_before["distinct_digits"], "distinct_after": score_after["distinct_digits"],
    "consistency_after": score_after["consistency"],
    "confidence_before": score_before["confidence"], "confidence_after": score_after["confidence"],
    "nmi_before": before["nmi_normal"], "nmi_after": after["nmi_normal"],
    "means_moved": after["means_moved"], "gap_before": before["means_min_gap"], "gap_after": after["means_min_gap"],
    "inside_before": 100 * before["normal_inside_radius"], "inside_after": 100 * after["normal_inside_radius"],
}
pd.DataFrame({"untrained": {**before, **score_before}, "trained": {**after, **score_after}}).drop("means_moved")

# %% tags=["nbval-check-output"]
print(f"trained: the {K} clusters decode to at least {K - 2} distinct digits: {score_after['distinct_digits'] >= K - 2}; "
      f"mean consistency at least 0.8: {score_after['consistency'] >= 0.8}")
print(f"untrained: the clusters decode to at most 2 distinct digits: {score_before['distinct_digits'] <= 2}")

# %% [markdown]
# Untrained, the {glue:text}`ch5_K` clusters decode to {glue:text}`ch5_distinct_before` distinct
# digit(s): every mean sits near the origin, and the decoder turns them all into nearly the same
# blur (the judge's mean confidence: {glue:text}`ch5_confidence_before:.2f`). Trained,
# they decode to {glue:text}`ch5_distinct_after` distinct digits, each row labelled consistently
# ({glue:text}`ch5_consistency_after:.2f` of its {glue:text}`ch5_per_row` images on average carry
# the row's digit, mean confidence {glue:text}`ch5_confidence_after:.2f`; the judge scores
# {glue:text}`ch5_judge_accuracy:.3f` on held-out real digits). The means moved a median of
# {glue:text}`ch5_means_moved:.2f` from their initialisation, and the closest two now lie
# {glue:text}`ch5_gap_after:.2f` apart (untrained: {glue:text}`ch5_gap_before:.2f`). The NMI of
# the clusters with the classes of the normal test images rose from
# {glue:text}`ch5_nmi_before:.3f` to {glue:text}`ch5_nmi_after:.3f`.
#
# The means move only because `means_lr` gives them their own learning rate. Adam moves a
# parameter by about its learning rate per step, and the means are updated only by the latent loss,
# on four of every six batches. At the networks' 1e-3 the search behind the defaults measured them
# moving {glue:text}`ch5_slow_moved:.2f` in six epochs and decoding to
# {glue:text}`ch5_slow_distinct:.1f` distinct digits ({glue:text}`ch5_slow_n` seeds, mean). Run this chapter with `-p means_lr None` to see it; the search
# behind the defaults recorded it (`benchmarks/results/book_defaults.csv`).
#
# ## The test codes in two dimensions
#
# `cvae.encode(x)` returns the posterior mean $\mu(x)$ of each image and $p(y \mid z = \mu(x))$.
# The map below projects the codes of (up to `n_codes`) test images to two dimensions. The left
# panel is coloured by the true class, the right one by the cluster $\arg\max_y p(y \mid z)$.
# If the clusters matched the classes, the two panels would show the same groups.

# %%
codes_all = latent.encode(cvae, images)
codes, probs = codes_all.mu, codes_all.probs

# %% tags=["nbval-check-output"]
print(f"encoded {len(codes)} test images ({int(is_anomaly.sum())} anomalous): codes {tuple(codes.shape)}, "
      f"p(y|z) {tuple(probs.shape)}")

# %% tags=["hide-input"]
fig = plots.latent_projection(codes, classes, probs, method=projection, anomaly_class=anomaly_class,
                              title=f"test codes on {dataset}")
plt.show()
nearest = torch.cdist(codes.float().cpu(), cvae.means.detach().float().cpu()).min(dim=1).values.numpy()
far, near = float(np.median(nearest[is_anomaly])), float(np.median(nearest[~is_anomaly]))
counts = pd.Series(probs.argmax(dim=1).numpy()[is_anomaly]).value_counts()
farther = far > 1.2 * near
glue("ch5_anomaly_sentence", (
    f"The anomalies (black crosses, digit {anomaly_class}) lie {'farther from the cluster means than' if farther else 'as close to the cluster means as'} "
    f"the normal codes: a median distance to the nearest mean of {far:.2f}, against {near:.2f} for the normal test "
    f"images, so a score built on that distance {'can' if farther else 'cannot'} separate them in part. The "
    f"classifier puts {counts.iloc[0] / counts.sum():.0%} of them into one cluster, {counts.index[0]}."),
    display=False)

# %% [markdown]
# {glue:text}`ch5_anomaly_sentence`
#
# ## Cluster purity
#
# The numbers behind the map: normalised mutual information (NMI) and adjusted Rand index (ARI)
# between the clusters and the true classes. Both are 1 for identical partitions and about 0
# for unrelated ones. The table also says how many of the $K$ clusters are used at all. It
# counts the normal test images alone (the classes the model saw) and all test images.

# %%
purity = pd.DataFrame.from_dict({"normal test images": cluster_purity(probs[~is_anomaly].numpy(), classes[~is_anomaly]),
                                 "all test images": cluster_purity(probs.numpy(), classes)}, orient="index")
purity["K"] = K
purity

# %%
assigned = probs.argmax(dim=1).numpy()
pd.crosstab(pd.Series(classes, name="true class"), pd.Series(assigned, name="cluster"))

# %% [markdown]
# The cross-table counts the test images of each class (rows) in each cluster (columns). A pure
# clustering has one large entry per row.
#
# ## Nearest and farthest neighbours (Fig. 7)
#
# Take a normal test image as query. Rank all encoded test images by the Euclidean distance of
# their codes to the query's code. Show the 10 nearest (the query itself excluded) and the 10
# farthest. The paper uses this figure to argue that the mutual-information loss makes
# distances in latent space meaningful: near images look alike.

# %% tags=["hide-input"]
normal_positions = np.flatnonzero(~is_anomaly)
q = int(normal_positions[query_index % len(normal_positions)])
dist = torch.cdist(codes[q:q + 1], codes)[0]
ranked = torch.argsort(dist)
near, far = ranked[1:11], ranked.flip(0)[:10]
fig = plots.neighbours(images[q], images[near], images[far],
                       title=f"query: a test image of class {classes[q]}; Euclidean distance of codes")
plt.show()
print(f"classes of the 10 nearest: {classes[near.numpy()].tolist()}")
print(f"classes of the 10 farthest: {classes[far.numpy()].tolist()}")
print(f"distance to the nearest: {dist[near[0]]:.2f}, to the farthest: {dist[far[0]]:.2f}")

# %% [markdown]
# ## Where the codes lie: means, shells and negatives
#
# The latent loss pulls each posterior $p(z \mid x) = \mathcal N(\mu(x), \sigma^2(x))$ towards
# $\mathcal N(\mu_y, I)$. Two distances from the assigned mean $\mu_{\hat y}$ matter:
#
# * the posterior mean $\mu(x)$, which the loss pulls onto $\mu_y$;
# * a *sample* $z = \mu(x) + \sigma(x) \odot \xi$. If $\sigma \approx 1$, its squared distance
#   from $\mu(x)$ is a sum of $d$ squared standard normals, so the distance is near
#   $\sqrt d$: samples live on a thin shell, not at the centre.
#
# Negative training (Section II.E) decodes codes farther than a radius $r$ from every mean. The
# paper's $r = 2$ lies well inside the shell of radius $\sqrt d$. `cvgad` uses the 99.9 %
# quantile of the chi distribution with $d$ degrees of freedom instead (`trainer.radius`), so
# that almost no normal sample is called an outlier. The cell compares the distances of the
# normal and the anomalous test images with these radii:
#
# $$
# \lVert z - \mu_y \rVert \approx \sqrt{d} \quad \text{for } z \sim \mathcal N(\mu_y, I) .
# $$ (latent-shell)

# %%
means = cvae.means.detach().float().cpu()
mu_all, logvar_all, z_all = codes_all.mu, codes_all.logvar, codes_all.sample(seed)
own_mean = means[probs.argmax(dim=1)]
dist_mu = (mu_all - own_mean).norm(dim=1).numpy()
dist_z = (z_all - own_mean).norm(dim=1).numpy()
nearest_mean = torch.cdist(z_all, means).min(dim=1).values.numpy()
sigma = torch.exp(0.5 * logvar_all)
rows = []
for name, sel in (("normal", ~is_anomaly), ("anomalous", is_anomaly)):
    rows.append({"test images": name, "n": int(sel.sum()), "median |mu(x) - mu_y|": np.median(dist_mu[sel]),
                 "median |z - mu_y|": np.median(dist_z[sel]), "median sigma": float(sigma[torch.as_tensor(sel)].median()),
                 "share of z beyond radius (any mean)": float(np.mean(nearest_mean[sel] > trainer.radius))})
shell = pd.DataFrame(rows).set_index("test images")
print(f"sqrt(d) = {math.sqrt(d):.2f}; negative radius (trainer.radius) = {trainer.radius:.2f}; the paper's radius: 2")
print(f"distances between the learnt means: min {torch.pdist(means).min():.2f}, max {torch.pdist(means).max():.2f}")
shell

# %% tags=["hide-input"]
fig, ax = plt.subplots(figsize=(plots.WIDTH, 3.4))
bins = np.linspace(0, max(dist_z.max(), trainer.radius) * 1.05, 60)
ax.hist(dist_mu[~is_anomaly], bins=bins, alpha=0.5, density=True, label="|mu(x) - mu_y|, normal")
ax.hist(dist_z[~is_anomaly], bins=bins, alpha=0.5, density=True, label="|z - mu_y|, normal")
ax.hist(dist_z[is_anomaly], bins=bins, alpha=0.5, density=True, label="|z - mu_y|, anomalous")
ax.axvline(math.sqrt(d), color="black", linestyle="--", label=f"sqrt(d) = {math.sqrt(d):.1f}")
ax.axvline(trainer.radius, color="red", linestyle=":", label=f"negative radius = {trainer.radius:.1f}")
ax.axvline(2, color="grey", linestyle="-.", label="paper's radius 2")
ax.set(xlabel="Euclidean distance to the assigned mean", ylabel="density", title="distances in latent space")
ax.legend()
fig.tight_layout()
plt.show()

# %% [markdown]
# Read the table and the histogram together: where the posterior means sit relative to their
# cluster means, how large $\sigma$ is, and where the samples $z$ fall relative to $\sqrt d$ and
# to the negative radius. A code beyond the radius is one that negative training would treat as
# a potential anomaly. Here {glue:text}`ch5_inside_after:.1f` % of the normal samples lie within
# the radius of their nearest mean (untrained: {glue:text}`ch5_inside_before:.1f` %), so negative
# training draws its outliers {glue:text}`ch5_negatives_where`.
#
# ## When the gate opened
#
# Negative training should start only once the codes cluster (II.E): the gate $T$ of Algorithm 1
# lets it run on a batch whose latent loss per dimension is below $T$, here
# `negative_threshold` = {glue:text}`ch5_threshold` times the first epoch's mean latent loss (the
# gate is shut during the first epoch). The figure shows the NMI of the normal test images'
# clusters after every epoch, with the epoch in which negative training first ran.

# %% tags=["hide-input"]
steps_per_epoch = len(history) // epochs
negatives = history["negative"].dropna() if "negative" in history else pd.Series(dtype=float)
gate_epoch = None if negatives.empty else int(history.loc[negatives.index[0], "step"]) // steps_per_epoch
fig, ax = plt.subplots(figsize=(plots.WIDTH, 3.0))
ax.plot(range(len(nmi_by_epoch)), nmi_by_epoch, marker="o", label="NMI, normal test images")
ax.axhline(0, color="grey", linestyle=":", label="unrelated partitions (NMI 0)")
if gate_epoch is not None:
    ax.axvspan(gate_epoch, epochs, color="tab:red", alpha=0.12, label="epochs with negative training")
ax.set(xlabel="epochs trained", ylabel="NMI", ylim=(-0.02, 1), title="clustering during training, and the gate T")
ax.legend(loc="lower right")
fig.tight_layout()
plt.show()
facts |= {"threshold": negative_threshold,
          "negatives_where": ("beyond almost every normal code" if after["normal_inside_radius"] > 0.95
                              else "where many normal codes still are")}
if gate_epoch is None:
    facts["gate_sentence"] = f"The gate never opened in {epochs} epochs: no negative training ran."
else:
    facts["gate_sentence"] = (
        f"Negative training first ran in epoch {gate_epoch + 1}, after the NMI had risen from "
        f"{nmi_by_epoch[0]:.3f} (untrained) to {nmi_by_epoch[gate_epoch]:.3f}, and ran on {len(negatives)} batches.")
for name, value in facts.items():
    glue(f"ch5_{name}", value.item() if hasattr(value, "item") else value, display=False)  # numpy -> Python
print(f"T = {trainer.threshold:.3f} nats per dimension; {facts['gate_sentence']}")

# %% [markdown]
# {glue:text}`ch5_gate_sentence` Untrained, the clusters are unrelated to the classes (NMI
# {glue:text}`ch5_nmi_before:.3f`): a gate open from the first batch, as an absolute $T$ of 1 nat
# per dimension was, would draw negatives before any cluster exists (chapter 3 shows why), while
# the relative gate waits for the latent loss to fall below {glue:text}`ch5_threshold` times its
# first-epoch mean.
#
# ## Decoded negative codes
#
# `cvgad.model.losses.sample_negative_codes` draws the codes that negative training uses: a random
# mean, a random direction, and a distance between $r$ and $1.5\,r$. Decoded, they are the
# "potential anomalies" whose reconstruction the CVAE learns to make worse. Below them, their
# reconstructions, and the SSIM of every reconstruction against the target of the negative
# loss's hinge (the red line): the hinge pushes a negative's SSIM until it falls below it.

# %%
z_neg, _ = L.sample_negative_codes(cvae.means.detach(), 30, trainer.radius, cfg.train.losses.negative_radius,
                                   generator=torch.Generator(trainer.device).manual_seed(seed))
with torch.no_grad():
    x_neg = cvae.decoder(z_neg).float()
    recon_neg = cvae.reconstruct(x_neg).float()
ssim_neg = L.ssim_per_sample(x_neg, recon_neg)
ceiling = cfg.train.losses.negative_ssim_ceiling
dist_neg = torch.cdist(z_neg, cvae.means.detach()).min(dim=1).values
print(f"distance of the negative codes to the nearest mean: min {dist_neg.min():.2f}, max {dist_neg.max():.2f}")
print(f"SSIM of their reconstructions: median {ssim_neg.median():.3f} (negative training pushes it below {ceiling})")

# %% tags=["hide-input"]
fig = plt.figure(figsize=(plots.WIDTH, 3.6), layout="constrained")
top, bottom = fig.subplots(2, 1, height_ratios=[1.3, 1])
plots.image_rows({"decoded negatives": x_neg[:10].cpu(), "their reconstructions": recon_neg[:10].cpu()},
                 f"decoded negative codes ({trainer.radius:.1f} to {1.5 * trainer.radius:.1f} from a mean)", ax=top)
bottom.hist(ssim_neg.cpu().numpy(), bins=20, range=(0, 1), color="tab:gray")
bottom.axvline(ceiling, color="tab:red", ls="--", label=f"the hinge's target: SSIM below {ceiling}")
bottom.set(xlabel=f"SSIM of the reconstructions of all {len(z_neg)} negatives", ylabel="negatives")
bottom.legend(loc="upper left", fontsize=8)
plt.show()
above = int((ssim_neg > ceiling).sum())
glue("ch5_negatives_sentence", (
    f"At this budget the decoded negatives are still reconstructed at a median SSIM of {ssim_neg.median():.2f}, "
    f"above the hinge's target of {ceiling} ({above} of {len(ssim_neg)} above it): negative training has not "
    "reached its aim, and the decoder still reconstructs these potential anomalies well."
    if ssim_neg.median() > ceiling else
    f"The decoded negatives are reconstructed at a median SSIM of {ssim_neg.median():.2f}, below the hinge's target "
    f"of {ceiling} ({above} of {len(ssim_neg)} above it): negative training has reached its aim."), display=False)

# %% tags=["nbval-check-output"]
print(f"{len(z_neg)} negative codes, each farther than r = {trainer.radius:.2f} from all {K} means: "
      f"{bool((dist_neg > trainer.radius).all())}")

# %% [markdown]
# {glue:text}`ch5_negatives_sentence`

# %% [markdown]
# ## Summary
#
# * The learnt means and the classifier $p(y \mid z)$ make an unsupervised clustering of the
#   normal data: after {glue:text}`ch5_nmi_before:.3f` untrained, its NMI with the true classes
#   is {glue:text}`ch5_nmi_after:.3f`, and the {glue:text}`ch5_K` means decode to
#   {glue:text}`ch5_distinct_after` distinct digits (untrained: {glue:text}`ch5_distinct_before`).
#   They get there because the means have their own learning rate (`means_lr`).
# * Distances in latent space give the neighbours of Fig. 7.
# * A sample of $\mathcal N(\mu_y, I)$ lies about $\sqrt d$ from its mean. The paper's negative
#   radius of 2 is inside that shell for any $d$ above 4; `cvgad` draws negatives beyond the
#   99.9 % quantile of the shell instead, and {glue:text}`ch5_inside_after:.1f` % of the normal
#   samples lie within it.
# * {glue:text}`ch5_gate_sentence`
# * {glue:text}`ch5_negatives_sentence`
#
# **Try next** (with papermill, from the repository root):
# `papermill notebooks/05_latent_space.ipynb out.ipynb -p means_lr None` trains the means at the
# networks' learning rate and shows the grey blobs; `-p latent_dim 256` uses the paper's latent
# size; `-p epochs 12` trains twice as long.
