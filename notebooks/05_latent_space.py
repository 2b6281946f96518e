# ---
# jupyter:
#   jupytext:
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
dataset = "digits"  # digits, mnist, fashion_mnist, cifar10, coil100
anomaly_class = 1  # the class left out of training
epochs = 6
seed = 0
device = "auto"  # "auto": CUDA when present, else the CPU
data_root = None  # None: $CVGAD_DATA, else ./data
train_subset = None  # cap on training images (None: all)
width = None  # None: make_config's default for the dataset
n_codes = 2000  # at most this many test images are encoded for the maps and statistics
projection = "pca"  # "pca" or "tsne"
query_index = 0  # which of the encoded normal test images is the query of Fig. 7
noise_scale = 0.5  # Fig. 6: decode mu_y + noise_scale * N(0, I)

# %% tags=["hide-input"]
import math

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import torch

from cvgad import losses as L
from cvgad import plots
from cvgad.data import as_float_images
from cvgad.experiment import make_config, prepare
from cvgad.scoring import cluster_purity
from cvgad.trainer import Trainer

pd.set_option("display.precision", 3)

# %%
cfg = make_config(dataset=dataset, anomaly_class=anomaly_class, epochs=epochs, seed=seed, device=device,
                  data_root=data_root, train_subset=train_subset, width=width)
data, split = prepare(cfg)
trainer = Trainer(cfg.model, cfg.train)
history = trainer.fit(data.images[torch.as_tensor(split.train)], progress=False)
cvae = trainer.cvae.eval()  # batchnorm uses its running statistics from here on
d, K = cfg.model.latent_dim, cfg.model.n_clusters
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
# $s = 1$; such a draw lies about $\sqrt d$ from its mean, which is far in 256 dimensions.

# %%
g = torch.Generator(trainer.device).manual_seed(seed)
per_row = 10
with torch.no_grad():
    z = cvae.means.repeat_interleave(per_row, 0)
    z = z + noise_scale * torch.randn(z.shape, generator=g, device=trainer.device)
    near_means = cvae.decoder(z).float().cpu()
fig = plots.image_grid(near_means, nrow=per_row, row_labels=[f"cluster {y}" for y in range(K)],
                       title=f"decoded mu_y + {noise_scale} noise, one row per cluster y")
plt.show()

# %% [markdown]
# If these images are blurred mixtures rather than clean digits, the reason is in the distance
# table further down: after a short run the posterior means of real images lie far from the
# learnt means, so the decoder has seen little near them.
#
# ## The test codes in two dimensions
#
# `cvae.encode(x)` returns the posterior mean $\mu(x)$ of each image and $p(y \mid z = \mu(x))$.
# The map below projects the codes of (up to `n_codes`) test images to two dimensions. The left
# panel is coloured by the true class, the right one by the cluster $\arg\max_y p(y \mid z)$.
# If the clusters matched the classes, the two panels would show the same groups.

# %%
rng = np.random.default_rng(seed)
pick = np.sort(rng.choice(len(split.test), size=min(n_codes, len(split.test)), replace=False))
idx = split.test[pick]
classes = data.labels[idx]
is_anomaly = split.test_labels[pick] == 1
images = data.images[torch.as_tensor(idx)]
codes, probs = [], []
for chunk in images.split(256):
    mu, p = cvae.encode(as_float_images(chunk.to(trainer.device)))
    codes.append(mu.float().cpu())
    probs.append(p.float().cpu())
codes, probs = torch.cat(codes), torch.cat(probs)

# %% tags=["nbval-check-output"]
print(f"encoded {len(codes)} test images ({int(is_anomaly.sum())} anomalous): codes {tuple(codes.shape)}, "
      f"p(y|z) {tuple(probs.shape)}")

# %% tags=["hide-input"]
fig = plots.latent_projection(codes, classes, probs, method=projection, anomaly_class=anomaly_class,
                              title=f"test codes on {dataset}")
plt.show()

# %% [markdown]
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
with torch.no_grad():
    mu_all, logvar_all = [], []
    for chunk in images.split(256):
        mu, logvar, _ = cvae.encoder(as_float_images(chunk.to(trainer.device)))
        mu_all.append(mu.float().cpu())
        logvar_all.append(logvar.float().cpu())
    mu_all, logvar_all = torch.cat(mu_all), torch.cat(logvar_all)
    z_all = mu_all + torch.exp(0.5 * logvar_all) * torch.randn(mu_all.shape, generator=torch.Generator().manual_seed(seed))
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
# a potential anomaly. If the last column is far from zero for *normal* images, negative
# training draws its "outliers" where normal codes still are: the latent loss has not yet
# pulled the codes onto their clusters. Short CPU runs can be in this state; the ablation of
# chapter 6 measures what negative training adds.
#
# ## Decoded negative codes
#
# `cvgad.losses.sample_negative_codes` draws the codes that negative training uses: a random
# mean, a random direction, and a distance between $r$ and $1.5\,r$. Decoded, they are the
# "potential anomalies" whose reconstruction the CVAE learns to make worse:

# %%
z_neg, _ = L.sample_negative_codes(cvae.means.detach(), 30, trainer.radius, cfg.train.losses.negative_radius,
                                   generator=torch.Generator(trainer.device).manual_seed(seed))
with torch.no_grad():
    x_neg = cvae.decoder(z_neg).float()
    recon_neg = cvae.reconstruct(x_neg).float()
ssim_neg = L.ssim_per_sample(x_neg, recon_neg)
fig = plots.image_grid(x_neg.cpu(), nrow=10, title=f"decoded negative codes ({trainer.radius:.1f} to {1.5 * trainer.radius:.1f} from a mean)")
plt.show()
dist_neg = torch.cdist(z_neg, cvae.means.detach()).min(dim=1).values
print(f"distance of the negative codes to the nearest mean: min {dist_neg.min():.2f}, max {dist_neg.max():.2f}")
print(f"SSIM of their reconstructions: median {ssim_neg.median():.3f} (negative training pushes it below "
      f"{cfg.train.losses.negative_ssim_ceiling})")

# %% tags=["nbval-check-output"]
print(f"{len(z_neg)} negative codes, each farther than r = {trainer.radius:.2f} from all {K} means: "
      f"{bool((dist_neg > trainer.radius).all())}")

# %% [markdown]
# ## Summary
#
# * The learnt means and the classifier $p(y \mid z)$ make an unsupervised clustering of the
#   normal data. The purity table measures how far it matches the true classes.
# * Distances in latent space give the neighbours of Fig. 7.
# * In 256 dimensions a sample of $\mathcal N(\mu_y, I)$ lies about $\sqrt d = 16$ from its mean.
#   The paper's negative radius of 2 is therefore inside the normal shell; `cvgad` draws
#   negatives beyond the 99.9 % quantile of that shell instead.
