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
# # The CVAE bound, derived and checked
#
# Section II.A of {cite:t}`bian2019` states a chain of equations, (2) to (5): the variational
# bound of the VAE {cite:p}`kingma2013`, its split into a reconstruction term, a prior-matching
# term and a mutual-information term, and the extension to a conditional VAE with a discrete
# category $y$. Section II.B then replaces the mutual information by a Jensen-Shannon game,
# eqs. (6) to (10). This chapter derives every step and names what each step does: an
# *identity* (nothing changes), a *definition*, or the one *inequality* (Jensen's). Then it
# checks each step with numbers, on toy models where every quantity is known exactly.
#
# The last part checks three side claims of the paper. Two of them are wrong as printed, and the
# third is a rule that does not do what its wording suggests in 256 dimensions.

# %% tags=["parameters", "hide-input"]
dataset = "digits"  # unused: this chapter works on toy models and synthetic images, not on a dataset
anomaly_class = 1  # unused (kept so that every chapter takes the same parameters)
epochs = 0  # unused: nothing is trained in this chapter
seed = 0
device = "auto"  # unused: the checks are small float64 computations and run on the CPU
data_root = None  # unused
latent_dim = 256  # d, the size of the latent code in the paper (used for the latent-loss and negative-code checks)
mc_samples = 20000  # Monte Carlo samples per estimate

# %% tags=["hide-input"]
import math

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from pytorch_msssim import ssim as ms_ssim
from scipy.stats import chi
from torch.distributions import MultivariateNormal, Normal, kl_divergence

from cvgad.model import losses as L
from cvgad.workbench import plots  # the book's figure style

plots.use_house_style()

torch.set_default_dtype(torch.float64)
pd.set_option("display.precision", 4)
LOG2 = math.log(2)

# %% [markdown]
# ## Notation
#
# The paper reverses the usual letters of {cite:t}`kingma2013`, and this chapter keeps the
# paper's letters:
#
# * $p(z \mid x)$ is the **encoder**, the approximate posterior;
# * $q(x \mid z)$ is the **decoder**, and $q(z)$ is the **prior** (later $q(z \mid y)$ and $q(y)$);
# * $P_{\text{model}}(x) = \int q(x \mid z)\, q(z)\, dz$ is the likelihood of the model;
# * $p(z) = \int p(z \mid x)\, p_{\text{data}}(x)\, dx$ is the **aggregate posterior**. It is *not*
#   the prior. When the paper writes $\mathrm{KL}(p(z)\,\|\,q(z))$ in eq. (2), it means the KL
#   divergence from the aggregate posterior to the prior.
#
# ## Step 1: the bound, from Jensen's inequality
#
# Fix one image $x$. Multiply and divide the integrand by $p(z \mid x)$, which changes nothing
# (an identity). The logarithm is concave, so the log of an average is at least the average of
# the log (Jensen's inequality). This step is the only inequality in the whole derivation:
#
# $$
# \begin{aligned}
# \log P_{\text{model}}(x)
#   &= \log \int p(z \mid x)\, \frac{q(x \mid z)\, q(z)}{p(z \mid x)}\, dz \\
#   &\ge \int p(z \mid x) \log \frac{q(x \mid z)\, q(z)}{p(z \mid x)}\, dz \\
#   &= \mathbb E_{z \sim p(z \mid x)}[\log q(x \mid z)] - \mathrm{KL}\big(p(z \mid x)\,\|\,q(z)\big) \\
#   &=: \mathcal L(x).
# \end{aligned}
# $$ (bound-jensen)
#
# The gap is a KL divergence. Write $q(z \mid x) = q(x \mid z)\, q(z) / P_{\text{model}}(x)$
# for the model's exact posterior; then, again by an identity,
#
# $$
# \log P_{\text{model}}(x) - \mathcal L(x) = \mathrm{KL}\big(p(z \mid x)\,\|\,q(z \mid x)\big) \ge 0 .
# $$ (bound-gap)
#
# So the bound is tight exactly when the encoder equals the model's posterior. The paper writes
# a strict "$>$" in eqs. (2) and (3); "$\ge$" is right. Averaging
# {eq}`bound-jensen` over the data gives the first line of the paper's eq. (2):
#
# $$
# \begin{aligned}
# \mathbb E_{x \sim p_{\text{data}}}[\log P_{\text{model}}(x)]
#   \ge {} & \mathbb E_{x}\, \mathbb E_{z \sim p(z \mid x)}[\log q(x \mid z)] \\
#   & - \mathbb E_{x}\big[\mathrm{KL}\big(p(z \mid x)\,\|\,q(z)\big)\big].
# \end{aligned}
# $$ (bound-elbo)
#
# ### A toy model where $\log P_{\text{model}}(x)$ is exact
#
# Take a linear-Gaussian model: $z \sim \mathcal N(0, I_k)$ and
# $x = W z + b + \sigma \varepsilon$ with $\varepsilon \sim \mathcal N(0, I_D)$. Then
# $P_{\text{model}}(x) = \mathcal N(x;\, b,\, W W^\top + \sigma^2 I)$ in closed form, and the
# exact posterior is $\mathcal N(m(x), S)$ with $S = (I + W^\top W / \sigma^2)^{-1}$ and
# $m(x) = S W^\top (x - b) / \sigma^2$. Two encoders are compared: the exact posterior, and a
# deliberately imperfect one with a diagonal covariance (as every VAE encoder has) and a mean
# shrunk by a factor $0.7$. The columns of $W$ are correlated, so the exact posterior is too,
# and the diagonal encoder cannot match it. The bound is computed in closed form, using the
# Gaussian expectation (for $z \sim \mathcal N(\mu, C)$)
#
# $$
# \mathbb E_{z}\big[\log \mathcal N(x;\, W z + b,\, \sigma^2 I)\big]
#   = \log \mathcal N(x;\, W \mu + b,\, \sigma^2 I) - \frac{\operatorname{tr}(W C W^\top)}{2 \sigma^2},
# $$
#
# and also by Monte Carlo straight from the integrand of {eq}`bound-jensen`.

# %%
torch.manual_seed(seed)
D, k, noise = 4, 2, 1.0
W = torch.randn(D, k) @ torch.tensor([[1.0, 0.8], [0.0, 0.6]])  # correlated columns: a correlated posterior
b = torch.randn(D)
prior = MultivariateNormal(torch.zeros(k), torch.eye(k))
marginal = MultivariateNormal(b, W @ W.T + noise**2 * torch.eye(D))  # P_model(x), exact
S_post = torch.linalg.inv(torch.eye(k) + W.T @ W / noise**2)


def decoder_logpdf(x, z):
    """log q(x|z) = log N(x; W z + b, noise^2 I)."""
    return Normal(z @ W.T + b, noise).log_prob(x).sum(-1)


def exact_posterior(x):
    return MultivariateNormal((x - b) @ W @ S_post / noise**2, S_post)


def imperfect_encoder(x, shrink=0.7):
    post = exact_posterior(x)
    return MultivariateNormal(shrink * post.loc, torch.diag(torch.diagonal(S_post)).expand(len(x), k, k))


def elbo_closed(x, enc):
    """Returns (ELBO, expected log-likelihood, KL to the prior), each per data point."""
    C = enc.covariance_matrix
    recon = Normal(enc.loc @ W.T + b, noise).log_prob(x).sum(-1) - torch.einsum("dk,nkl,dl->n", W, C, W) / (2 * noise**2)
    kl = kl_divergence(enc, prior)
    return recon - kl, recon, kl


def elbo_mc(x, enc, n=mc_samples):
    z = enc.sample((n,))  # (n, N, k)
    terms = decoder_logpdf(x, z) + prior.log_prob(z) - enc.log_prob(z)
    return terms.mean(0), terms.std(0) / math.sqrt(n)


# %% tags=["nbval-check-output"]
torch.manual_seed(seed)
x = marginal.sample((5,))
rows = {"log P_model(x)": marginal.log_prob(x)}
for name, enc in (("exact", exact_posterior(x)), ("imperfect", imperfect_encoder(x))):
    rows[f"ELBO {name}"] = elbo_closed(x, enc)[0]
    rows[f"ELBO {name} (MC)"], rows[f"MC std. error {name}"] = elbo_mc(x, enc)
rows["gap imperfect"] = rows["log P_model(x)"] - rows["ELBO imperfect"]
rows["KL(imperfect || exact posterior)"] = kl_divergence(imperfect_encoder(x), exact_posterior(x))
table = pd.DataFrame({key: value.numpy() for key, value in rows.items()}).T
table.columns = [f"x{i}" for i in range(len(x))]
print(table.round(4).to_string())
exact_err = (rows["log P_model(x)"] - rows["ELBO exact"]).abs().max().item()
gap_err = (rows["gap imperfect"] - rows["KL(imperfect || exact posterior)"]).abs().max().item()
print("log P_model = ELBO with the exact posterior (to 1e-10):", exact_err < 1e-10)
print("gap of the imperfect encoder = KL(imperfect || exact posterior) (to 1e-10):", gap_err < 1e-10)
print("ELBO imperfect <= log P_model everywhere:", bool((rows["ELBO imperfect"] <= rows["log P_model(x)"]).all()))

# %% [markdown]
# With the exact posterior the bound is an equality (to rounding error), and with the imperfect
# encoder the gap is exactly the KL divergence of {eq}`bound-gap`. The Monte Carlo column agrees
# with the closed form within a few standard errors; for the exact posterior its standard error
# is zero, because the integrand of {eq}`bound-jensen` is then the constant
# $\log P_{\text{model}}(x)$.
#
# The figure moves the encoder's mean away from the posterior mean by a factor and plots the gap
# $\log P_{\text{model}}(x) - \mathcal L(x)$. It is never negative, and it is zero only at the
# exact posterior. The diagonal covariance alone already costs something: its curve never
# reaches zero, because the exact posterior of this model has correlated coordinates.

# %% tags=["hide-input"]
shrinks = torch.linspace(0.6, 1.4, 81)
x0 = x[:1]
post0 = exact_posterior(x0)
log_px0 = marginal.log_prob(x0).item()
curves = {"full covariance (the exact posterior at 1)": [], "diagonal covariance": []}
for s in shrinks:
    curves["full covariance (the exact posterior at 1)"].append(log_px0 - elbo_closed(x0, MultivariateNormal(s * post0.loc, S_post))[0].item())
    curves["diagonal covariance"].append(log_px0 - elbo_closed(x0, imperfect_encoder(x0, float(s)))[0].item())
fig, ax = plt.subplots(figsize=(plots.WIDTH, 3.4))
for label, values in curves.items():
    ax.plot(shrinks, values, label=label)
ax.axhline(0, color="k", ls="--", lw=0.8, label="no gap")
ax.set(title=r"Gap $\log P_{\mathrm{model}}(x) - \mathcal{L}(x)$ of the bound, one point $x$",
       xlabel="encoder mean / exact posterior mean", ylabel="gap (nats)")
ax.legend()
plt.show()

# %% [markdown]
# ## Step 2: the three terms of eq. (2)
#
# The KL term of {eq}`bound-elbo`, averaged over the data, splits into two parts. Insert
# $p(z)/p(z)$ in the logarithm (an identity; the paper's middle line writes the ratio as
# $\frac{p(z \mid x)\, p(z)}{q(z)\, p(z \mid x)}$, which is $p(z)/q(z)$):
#
# $$
# \begin{aligned}
# & \mathbb E_{x}\big[\mathrm{KL}\big(p(z \mid x)\,\|\,q(z)\big)\big] \\
#   & \quad = \iint p(z \mid x)\, p_{\text{data}}(x) \log \frac{p(z \mid x)}{q(z)}\, dz\, dx \\
#   & \quad = \iint p(z \mid x)\, p_{\text{data}}(x) \log \frac{p(z)}{q(z)}\, dz\, dx \\
#   & \qquad + \iint p(z \mid x)\, p_{\text{data}}(x) \log \frac{p(z \mid x)}{p(z)}\, dz\, dx \\
#   & \quad = \mathrm{KL}\big(p(z)\,\|\,q(z)\big) + I(z; x).
# \end{aligned}
# $$ (bound-decomp)
#
# In the last line, the first integral does not depend on $x$ except through
# $p(z \mid x)\, p_{\text{data}}(x)$; integrating $x$ out gives the aggregate posterior $p(z)$
# (its definition), hence a KL divergence from $p(z)$ to the prior. The second integral is the
# definition of the mutual information between $z$ and $x$ under the joint distribution
# $p(z \mid x)\, p_{\text{data}}(x)$. Both steps are identities, so
#
# $$
# \begin{aligned}
# \mathbb E_{x}[\log P_{\text{model}}(x)]
#   \ge {} & \underbrace{\mathbb E_{x}\, \mathbb E_{z \sim p(z \mid x)}[\log q(x \mid z)]}_{-\,\text{reconstruction}} \\
#   & - \mathrm{KL}\big(p(z)\,\|\,q(z)\big) - I(z; x).
# \end{aligned}
# $$ (bound-three-terms)
#
# Maximising the bound therefore pushes $I(z; x)$ **down**; this is the reason for
# Section II.B, which adds a term that pushes it up again.
#
# ### Checking the split on a finite dataset
#
# Take $N = 8$ points drawn from the toy model as the dataset, so $p_{\text{data}}$ is uniform on
# them. The aggregate posterior of the imperfect encoder is then the mixture
# $p(z) = \frac1N \sum_n p(z \mid x_n)$, and $0 \le I(z; x) \le \log N$ because $x$ takes $N$
# values. The two terms on the right of {eq}`bound-decomp` have no closed form (the log of a
# mixture), so they are estimated by Monte Carlo with $z \sim p(z \mid x_n)$ for every $n$;
# their sum must match the closed-form average KL on the left.

# %% tags=["nbval-check-output"]
torch.manual_seed(seed)
N = 8
xs = marginal.sample((N,))
enc = imperfect_encoder(xs)
n_mc = mc_samples
z = enc.sample((n_mc,))  # (n_mc, N, k): z[s, n] ~ p(z | x_n)
log_post = enc.log_prob(z)  # log p(z[s, n] | x_n)
# log p(z) of the aggregate posterior: log (1/N) sum_m p(z | x_m), for every sample
log_post_all = MultivariateNormal(enc.loc, enc.covariance_matrix).log_prob(z[:, :, None, :])  # (n_mc, N, N)
log_aggregate = torch.logsumexp(log_post_all, dim=2) - math.log(N)
kl_terms = log_aggregate - prior.log_prob(z)  # integrand of KL(p(z) || q(z))
mi_terms = log_post - log_aggregate  # integrand of I(z; x)
elbo, recon, kl = elbo_closed(xs, enc)
se = lambda t: (t.std() / math.sqrt(t.numel())).item()  # noqa: E731
summary = pd.Series({
    "E_x log P_model(x)": marginal.log_prob(xs).mean().item(),
    "reconstruction term E log q(x|z)": recon.mean().item(),
    "E_x KL(p(z|x) || q(z)), closed form": kl.mean().item(),
    "KL(p(z) || q(z)), MC": kl_terms.mean().item(),
    "  std. error of the KL estimate": se(kl_terms),
    "I(z; x), MC": mi_terms.mean().item(),
    "  std. error of the I estimate": se(mi_terms),
    "KL(p(z) || q(z)) + I(z; x)": (kl_terms + mi_terms).mean().item(),
    "  std. error of the sum": se(kl_terms + mi_terms),
    "log N (upper bound of I)": math.log(N),
    "average ELBO": elbo.mean().item(),
    "reconstruction - KL(p(z)||q(z)) - I(z;x)": (recon.mean() - kl_terms.mean() - mi_terms.mean()).item(),
})
print(summary.round(4).to_string())
print(f"(MC sum - closed form) / std. error: {((kl_terms + mi_terms).mean() - kl.mean()).item() / se(kl_terms + mi_terms):.2f}")

# %% [markdown]
# The Monte Carlo sum $\mathrm{KL}(p(z)\,\|\,q(z)) + I(z; x)$ agrees with the closed-form
# average KL within Monte Carlo error (the last line gives the difference in standard errors), and the three terms of {eq}`bound-three-terms` add up to
# the average ELBO, which lies below the average log-likelihood. Here most of the KL term is
# mutual information. It stays well below its ceiling $\log 8 \approx 2.08$ nats, because the
# posteriors of the eight points overlap.
#
# ## Step 3: from $z$ to $(z, y)$, eqs. (3) and (4)
#
# The paper's eq. (3) first merges the two terms of {eq}`bound-jensen` into one integral (an
# identity, with $q(x, z) = q(x \mid z)\, q(z)$):
#
# $$
# \mathcal L(x) = -\int p(z \mid x) \log \frac{p(z \mid x)}{q(x, z)}\, dz .
# $$ (bound-joint-form)
#
# Then it replaces the latent variable $z$ by the pair $(z, y)$, where $y \in \{1, \dots, K\}$ is
# an unobserved category. Two modelling choices enter here, they are not derived:
#
# * the encoder factorises as $p(z, y \mid x) = p(z \mid x)\, p(y \mid z)$: the category is read
#   off the code by a classifier $p(y \mid z)$ (the red box in the paper's Fig. 1);
# * the generative model factorises as $q(x, z, y) = q(x \mid z, y)\, q(z \mid y)\, q(y)$: pick a
#   category, draw a code from that category's Gaussian, decode it.
#
# Step 1 applied to the pair (the integral over $z$ becomes a sum over $y$ and an integral over
# $z$, and Jensen's inequality is used once more) gives the CVAE bound. Its negative is the CVAE
# loss:
#
# $$
# \begin{aligned}
# \log P_{\text{model}}(x) &= \log \sum_y \int q(x, z, y)\, dz \\
#   &\ge -\sum_y \int p(y \mid z)\, p(z \mid x) \\
#   &\qquad \times \log \frac{p(y \mid z)\, p(z \mid x)}{q(x \mid z, y)\, q(z \mid y)\, q(y)}\, dz \\
#   &=: -\mathcal L_{\text{CVAE}}(x).
# \end{aligned}
# $$ (bound-cvae)
#
# The printed eq. (3) drops both the relation sign and the minus sign in its fourth line, and
# the "$=$" that opens eq. (4) continues with the *loss* $\mathcal L_{\text{CVAE}}$, the negative
# of the bound. The log of the ratio is a sum of three logs (an identity), and each is weighted
# by $p(y \mid z)$:
#
# $$
# \begin{aligned}
# \mathcal L_{\text{CVAE}}(x) = \mathbb E_{z \sim p(z \mid x)}\Big[
#   & -\mathbb E_{y \sim p(y \mid z)}[\log q(x \mid z, y)] \\
#   & + \sum_y p(y \mid z) \log \frac{p(z \mid x)}{q(z \mid y)} \\
#   & + \mathrm{KL}\big(p(y \mid z)\,\|\,q(y)\big) \Big].
# \end{aligned}
# $$ (bound-cvae-loss)
#
# The three terms are the reconstruction loss, the **latent loss** and the **categorical loss**.
# In `cvgad` the decoder does not see $y$, so $q(x \mid z, y) = q(x \mid z)$ and the first term
# is $\mathbb E_z[-\log q(x \mid z)]$ (since $\sum_y p(y \mid z) = 1$). The prior over categories
# is uniform, $q(y) = 1/K$. The paper then replaces $-\log q(x \mid z)$ by
# $50 \cdot (-\log \mathrm{SSIM}) + 10 \cdot L_1$ (III.C), which is not the log-density of any
# normalised decoder: from there on the bound is a motivation, not a bound.
#
# The prior of each category is a unit-covariance Gaussian around a learnable mean (eq. 5):
#
# $$
# q(z \mid y) = \frac{1}{(2\pi)^{d/2}} \exp\Big(-\tfrac12 \lVert z - \mu_y \rVert^2\Big)
#   = \mathcal N(z;\, \mu_y,\, I_d).
# $$ (bound-prior)
#
# ### Checking the CVAE bound on a mixture version of the toy model
#
# Give the toy model $K = 3$ categories with means $\mu_y$ and a uniform $q(y)$. The model's
# likelihood is still exact: $P_{\text{model}}(x) = \frac1K \sum_y \mathcal N(x;\, W\mu_y + b,\,
# W W^\top + \sigma^2 I)$. With any Gaussian encoder and any classifier (a softmax of a linear
# map below), the Monte Carlo average of the integrand of {eq}`bound-cvae` must equal the sum of
# the three terms of {eq}`bound-cvae-loss` and must be at least $-\log P_{\text{model}}(x)$.

# %% tags=["nbval-check-output"]
torch.manual_seed(seed)
K = 3
mix_means = 2.0 * torch.randn(K, k)
A, c = torch.randn(K, k), torch.randn(K)  # classifier p(y|z) = softmax(A z + c)
mix_marginal = [MultivariateNormal(W @ m + b, W @ W.T + noise**2 * torch.eye(D)) for m in mix_means]
yx = torch.randint(K, (6,))
xm = torch.stack([mix_marginal[int(y)].sample() for y in yx])
log_p_model = torch.logsumexp(torch.stack([m.log_prob(xm) for m in mix_marginal]), 0) - math.log(K)

enc_m = MultivariateNormal((xm - b) @ W @ S_post / noise**2, torch.diag(torch.diagonal(S_post)).expand(len(xm), k, k))
zm = enc_m.sample((mc_samples,))  # (S, n, k)
log_pyz = (zm @ A.T + c).log_softmax(-1)  # log p(y|z), (S, n, K)
log_qzy = torch.stack([MultivariateNormal(m, torch.eye(k)).log_prob(zm) for m in mix_means], -1)  # log q(z|y)
log_qxz = decoder_logpdf(xm, zm)[..., None]  # log q(x|z, y) = log q(x|z)
log_pzx = enc_m.log_prob(zm)[..., None]
pyz = log_pyz.exp()
integrand = (pyz * (log_pyz + log_pzx - log_qxz - log_qzy - math.log(1 / K))).sum(-1)  # (S, n)
recon_t = (pyz * -log_qxz).sum(-1)
latent_t = (pyz * (log_pzx - log_qzy)).sum(-1)
categorical_t = (pyz * (log_pyz - math.log(1 / K))).sum(-1)
check = pd.DataFrame({
    "-log P_model(x)": -log_p_model,
    "L_CVAE (MC)": integrand.mean(0),
    "std. error": integrand.std(0) / math.sqrt(mc_samples),
    "reconstruction": recon_t.mean(0),
    "latent": latent_t.mean(0),
    "categorical": categorical_t.mean(0),
    "sum of the three": (recon_t + latent_t + categorical_t).mean(0),
}).round(4)
check.index = [f"x{i}" for i in range(len(xm))]
print(check.T.to_string())
print("L_CVAE >= -log P_model for every x:", bool((integrand.mean(0) >= -log_p_model).all()))

# %% [markdown]
# ## Step 4: the latent loss in closed form
#
# For one category $y$, the inner expectation of the latent loss is a KL divergence between two
# Gaussians, $p(z \mid x) = \mathcal N(\mu, \operatorname{diag} \sigma^2)$ and
# $q(z \mid y) = \mathcal N(\mu_y, I)$. Its two halves follow from
# $\mathbb E[(z_j - a)^2] = \sigma_j^2 + (\mu_j - a)^2$ (an identity):
#
# $$
# \begin{aligned}
# & \mathbb E_{z \sim p(z \mid x)}[\log p(z \mid x)] = -\tfrac d2 \log 2\pi - \tfrac12 \textstyle\sum_j \log \sigma_j^2 - \tfrac d2, \\
# & \mathbb E_{z \sim p(z \mid x)}[\log q(z \mid y)] \\
# & \quad = -\tfrac d2 \log 2\pi - \tfrac12 \textstyle\sum_j \big(\sigma_j^2 + (\mu_j - \mu_{y,j})^2\big),
# \end{aligned}
# $$ (bound-two-expectations)
#
# and their difference is
#
# $$
# \begin{aligned}
# & \mathrm{KL}\big(\mathcal N(\mu, \operatorname{diag}\sigma^2)\,\|\,\mathcal N(\mu_y, I)\big) \\
# & \quad = \tfrac12 \sum_{j=1}^{d} \big(\sigma_j^2 + (\mu_j - \mu_{y,j})^2 - 1 - \log \sigma_j^2\big).
# \end{aligned}
# $$ (bound-kl-closed)
#
# `cvgad.model.losses.gaussian_kl_to_means` computes {eq}`bound-kl-closed` for every (image,
# category) pair. The check below compares it with a Monte Carlo estimate of
# $\mathbb E[\log p(z \mid x) - \log q(z \mid y)]$ in $d = 256$ dimensions, and with
# `torch.distributions.kl_divergence`.

# %% tags=["nbval-check-output"]
torch.manual_seed(seed)
n_img, n_cat = 3, 4
mu = torch.randn(n_img, latent_dim)
logvar = 0.5 * torch.randn(n_img, latent_dim) - 1.0
means = 0.3 * torch.randn(n_cat, latent_dim)
closed = L.gaussian_kl_to_means(mu, logvar, means)  # (n_img, n_cat)
posterior = Normal(mu, (0.5 * logvar).exp())
zs = posterior.sample((mc_samples // 4,))  # (S, n_img, d)
log_p = posterior.log_prob(zs).sum(-1)  # (S, n_img)
log_q = torch.stack([Normal(m, 1.0).log_prob(zs).sum(-1) for m in means], -1)  # (S, n_img, n_cat)
mc = (log_p[..., None] - log_q).mean(0)
mc_se = (log_p[..., None] - log_q).std(0) / math.sqrt(zs.shape[0])
torch_kl = torch.stack([kl_divergence(posterior, Normal(m, 1.0)).sum(-1) for m in means], -1)
print("closed form (nats), rows = images, columns = categories:")
print(pd.DataFrame(closed.numpy()).round(3).to_string())
print(f"max |closed - MC| / MC std. error:          {((closed - mc).abs() / mc_se).max():.2f}")
print(f"max |closed - torch kl_divergence| < 1e-9:  {bool((closed - torch_kl).abs().max() < 1e-9)}")

# %% [markdown]
# The closed form agrees with Monte Carlo to within a few standard errors and with PyTorch's own
# Gaussian KL to rounding error.
#
# `cvgad.model.losses.latent_loss` weights these KLs with $p(y \mid z)$ evaluated at the *one*
# sampled code $z$ of each image:
# $\sum_y p(y \mid z_s)\, \mathrm{KL}(p(z \mid x)\,\|\,q(z \mid y))$. This is not exactly the
# middle term of {eq}`bound-cvae-loss`, which is
# $\mathbb E_z[\sum_y p(y \mid z) \log \frac{p(z \mid x)}{q(z \mid y)}]$: pulling $p(y \mid z)$
# out of the expectation ignores how $p(y \mid z)$ and the log-ratio vary together over the
# posterior. The two agree when the classifier is nearly constant over the posterior's width
# (codes far from the boundaries between clusters). The cell below measures the difference on the
# mixture toy model of Step 3: per image, the latent term of {eq}`bound-cvae-loss` by Monte
# Carlo, the library's shortcut, and the average over $z$ of $\max_y p(y \mid z)$.

# %% tags=["nbval-check-output"]
post_var = torch.diagonal(S_post).expand(len(xm), k)
library_estimate = torch.stack([L.latent_loss(enc_m.loc[i:i + 1].expand(mc_samples, k), post_var[i:i + 1].log().expand(mc_samples, k),
                                              mix_means, pyz[:, i]) for i in range(len(xm))])
print(pd.DataFrame({"latent term, MC": latent_t.mean(0), "library shortcut": library_estimate,
                    "mean of max_y p(y|z)": pyz.max(-1).values.mean(0)}).round(4).to_string())

# %% [markdown]
# Here the shortcut is off by a few hundredths to a few tenths of a nat, against latent terms of
# 2 to 9 nats. The largest difference is at the image whose classifier output is least certain
# (the smallest $\max_y p(y \mid z)$).

# %% [markdown]
# ## Step 5: mutual information as a Jensen-Shannon game, eqs. (6) to (10)
#
# By its definition, the mutual information is a KL divergence between the joint distribution
# and the product of its marginals (eq. 6):
#
# $$
# \begin{aligned}
# I(x; z) &= \iint p(z \mid x)\, p_{\text{data}}(x) \log \frac{p(z \mid x)}{p(z)}\, dx\, dz \\
#   &= \mathrm{KL}\big(p(z \mid x)\, p_{\text{data}}(x)\,\|\,p(z)\, p_{\text{data}}(x)\big).
# \end{aligned}
# $$ (bound-mi)
#
# The KL divergence has no upper bound, so the paper swaps it for the Jensen-Shannon divergence
# (eq. 7), with $M = \frac12 (P + Q)$:
#
# $$
# \mathrm{JS}(P, Q) = \tfrac12 \mathrm{KL}(P\,\|\,M) + \tfrac12 \mathrm{KL}(Q\,\|\,M) .
# $$ (bound-js)
#
# Each half is at most $\frac12 \log 2$, because
# $\mathrm{KL}(P\,\|\,M) = \mathbb E_P[\log \frac{2P}{P + Q}] \le \log 2$ (the ratio
# $P/(P + Q)$ is at most 1). Hence $0 \le \mathrm{JS} \le \log 2$, with equality on the right
# exactly when $P$ and $Q$ have disjoint supports. The paper's bound "$\frac12 \log 2$" is the
# bound of one half, not of the divergence.
#
# The JS divergence is what a GAN discriminator estimates {cite:p}`goodfellow2014`. The value
# of the game (eq. 8)
#
# $$
# V(D, G) = \mathbb E_{x \sim p_r}[\log D(x)] + \mathbb E_{x \sim p_g}[\log(1 - D(x))]
# $$ (bound-gan)
#
# is maximised pointwise by $D^*(x) = p_r(x) / (p_r(x) + p_g(x))$, and substituting $D^*$
# (then adding and subtracting $\log 2$ inside each expectation, an identity) gives eq. (9):
#
# $$
# \begin{aligned}
# V(D^*, G) &= \mathbb E_{p_r}\Big[\log \frac{2 p_r}{p_r + p_g}\Big]
#   + \mathbb E_{p_g}\Big[\log \frac{2 p_g}{p_r + p_g}\Big] \\
#   &\quad - 2 \log 2 \\
#   &= 2\, \mathrm{JS}(p_r, p_g) - 2 \log 2 .
# \end{aligned}
# $$ (bound-gan-optimum)
#
# Eq. (10) plays the same game with $p_r$ = the product $p(z)\, p_{\text{data}}(x)$ (label 1,
# "mismatched") and $p_g$ = the joint $p(z \mid x)\, p_{\text{data}}(x)$ (label 0, "matched"),
# and maximises over both the feature discriminator FD and the encoder:
#
# $$
# \begin{aligned}
# \max_{p(z \mid x),\, \mathrm{FD}}\;
#   & \mathbb E_{(x, z) \sim p(z) p_{\text{data}}(x)}[\log \mathrm{FD}(x, z)] \\
#   & + \mathbb E_{(x, z) \sim p(z \mid x) p_{\text{data}}(x)}[\log(1 - \mathrm{FD}(x, z))] .
# \end{aligned}
# $$ (bound-mi-game)
#
# By {eq}`bound-gan-optimum` the optimal discriminator is
#
# $$
# \begin{aligned}
# \mathrm{FD}^*(x, z) &= \frac{p(z)\, p_{\text{data}}(x)}{p(z)\, p_{\text{data}}(x) + p(z \mid x)\, p_{\text{data}}(x)} \\
#   &= \frac{1}{1 + e^{\,\mathrm{PMI}(x, z)}}, \\
# \mathrm{PMI}(x, z) &= \log \frac{p(z \mid x)}{p(z)},
# \end{aligned}
# $$ (bound-fd-optimum)
#
# and the inner maximum equals $2\,\mathrm{JS}(\text{joint}, \text{product}) - 2 \log 2$, which
# lies in $[-2 \log 2, 0]$. The outer maximisation over the encoder therefore raises the JS
# divergence between joint and product, a bounded stand-in for $I(x; z)$ in the spirit of Deep
# InfoMax {cite:p}`hjelm2018` and of $f$-divergence estimation {cite:p}`nguyen2010,nowozin2016`.
# `cvgad.model.losses.mutual_information_loss` returns the negative of {eq}`bound-mi-game` as a sum
# of two binary cross-entropies, so at the optimal FD it equals
# $2 \log 2 - 2\,\mathrm{JS}$, between $0$ and $2 \log 2 \approx 1.386$. The product samples come
# from rolling $z$ by one position in the batch.
#
# ### Checking the game on a Gaussian pair
#
# Let $x \sim \mathcal N(0, 1)$ and $z = \rho x + \sqrt{1 - \rho^2}\, \varepsilon$. Then
# $I(x; z) = -\frac12 \log(1 - \rho^2)$, and the PMI is known in closed form, so the optimal FD
# of {eq}`bound-fd-optimum` can be written down. The cell feeds it to the library's loss (with
# $x$ in place of the encoder's feature map) and compares
# $\log 2 - \frac12 \cdot \text{loss}$ with a direct Monte Carlo estimate of
# $\mathrm{JS}(\text{joint}, \text{product})$ from the densities.


# %%
class OptimalFD(torch.nn.Module):
    """FD*(x, z) of (bound-fd-optimum) for the Gaussian pair, as a logit: -PMI(x, z)."""

    def __init__(self, rho, scale=1.0):
        super().__init__()
        self.rho, self.scale = rho, scale

    def pmi(self, x, z):
        joint_cond = Normal(self.rho * x, math.sqrt(1 - self.rho**2)).log_prob(z)  # log p(z|x)
        return joint_cond - Normal(0.0, 1.0).log_prob(z)

    def forward(self, features, z):
        return -self.scale * self.pmi(features.flatten(1)[:, 0], z[:, 0])


def gaussian_pair(rho, n, generator):
    x = torch.randn(n, generator=generator)
    z = rho * x + math.sqrt(1 - rho**2) * torch.randn(n, generator=generator)
    return x[:, None, None, None], z[:, None]


def js_direct(rho, n, generator):
    """JS(joint, product) by Monte Carlo from the densities of (bound-js)."""
    fd = OptimalFD(rho)
    xj, zj = gaussian_pair(rho, n, generator)
    xp, zp = torch.randn(n, generator=generator), torch.randn(n, generator=generator)
    pmi_j, pmi_p = fd.pmi(xj.flatten(), zj.flatten()), fd.pmi(xp, zp)
    # log 2P/(P+Q) with P = joint: log 2 - log(1 + exp(-PMI)); with Q = product: log 2 - log(1 + exp(PMI))
    return 0.5 * (LOG2 - F.softplus(-pmi_j)).mean() + 0.5 * (LOG2 - F.softplus(pmi_p)).mean()


# %% tags=["nbval-check-output"]
gen = torch.Generator().manual_seed(seed)
rhos = [0.0, 0.5, 0.9, 0.99, 0.999, 0.99999]
rows = []
for rho in rhos:
    xg, zg = gaussian_pair(rho, 4 * mc_samples, gen)
    loss = L.mutual_information_loss(OptimalFD(rho), xg, zg).item()
    rows.append({"rho": f"{rho:g}", "I(x;z) (nats)": -0.5 * math.log(1 - rho**2) + 0.0, "JS, direct MC": js_direct(rho, 4 * mc_samples, gen).item(),
                 "log 2 - loss/2": LOG2 - loss / 2, "library loss": loss})
mi_table = pd.DataFrame(rows)
print(mi_table.round(4).to_string(index=False))
print(f"log 2 = {LOG2:.4f}, 2 log 2 = {2 * LOG2:.4f}")

# %% [markdown]
# Two things show. The library's loss at the optimal FD is $2 \log 2 - 2\,\mathrm{JS}$, as
# {eq}`bound-gan-optimum` predicts (up to Monte Carlo error), and the JS estimate saturates at
# $\log 2$ while the true mutual information keeps growing. The saturation is the point of the
# swap (a bounded, stable objective), and also its price: once the codes identify their images
# almost surely, the game has no more gradient to give.
#
# The FD only *estimates* the JS divergence when it is at its optimum; any other FD gives a
# larger loss. Scaling the optimal logit by a factor shows this:

# %% tags=["nbval-check-output"]
gen = torch.Generator().manual_seed(seed)
xg, zg = gaussian_pair(0.9, 4 * mc_samples, gen)
scales = [0.0, 0.5, 0.8, 1.0, 1.25, 2.0]
losses_by_scale = [L.mutual_information_loss(OptimalFD(0.9, s), xg, zg).item() for s in scales]
print(pd.Series(losses_by_scale, index=pd.Index(scales, name="logit scale"), name="library loss, rho = 0.9").round(4).to_string())

# %% tags=["hide-input"]
# The correlation on a scale of "nines": 1 is rho = 0.9, 2 is 0.99, 3 is 0.999, so that the
# approach to rho = 1, where the information grows without bound, takes most of the axis.
fig, ax = plt.subplots(figsize=(plots.WIDTH, 3.4))
nines = np.linspace(0, 5, 60)
rho_grid = 1 - 10.0**-nines
gen = torch.Generator().manual_seed(seed)
ax.plot(nines, -0.5 * np.log(1 - rho_grid**2), label=r"$I(x; z)$ (KL, eq. 6)")
ax.plot(nines, [js_direct(float(r), 20000, gen).item() for r in rho_grid], label="JS(joint, product)")
ax.axhline(LOG2, color="k", ls="--", label=r"$\log 2$: the true bound of JS")
ax.axhline(LOG2 / 2, color="r", ls=":", label=r"$\frac{1}{2}\log 2$: the paper's bound")
ax.set_xticks(range(6), ["0", "0.9", "0.99", "0.999", "0.9999", "0.99999"])
ax.set(title="Mutual information vs its Jensen-Shannon stand-in", xlabel=r"correlation $\rho$ (scale: $-\log_{10}(1-\rho)$)",
       ylabel="nats", ylim=(0, 6))
ax.legend(loc="upper left")
plt.show()

# %% [markdown]
# ## Where the paper's side claims go wrong
#
# ### (i) The Jensen-Shannon divergence is bounded by $\log 2$, not $\frac12 \log 2$
#
# The plot above already crosses the paper's line $\frac12 \log 2$. The extreme case is two
# distributions with disjoint supports: then $M = \frac12(P + Q)$ equals $P/2$ where $P$ lives
# and $Q/2$ where $Q$ lives, so each KL in {eq}`bound-js` is exactly $\log 2$ and so is their
# average. (In bits, base-2 logarithms, the bound is 1.)

# %% tags=["nbval-check-output"]
def js(p, q):
    m = 0.5 * (p + q)
    kl = lambda a, b: (a[a > 0] * (a[a > 0] / b[a > 0]).log()).sum()  # noqa: E731
    return 0.5 * kl(p, m) + 0.5 * kl(q, m)


P = torch.tensor([0.5, 0.5, 0.0, 0.0])
Q = torch.tensor([0.0, 0.0, 0.25, 0.75])
print(f"JS(disjoint P, Q)  = {js(P, Q):.6f}")
print(f"log 2              = {LOG2:.6f}")
print(f"paper: 1/2 log 2   = {LOG2 / 2:.6f}")
print(f"JS(P, P)           = {js(P, P):.6f}")


# %% [markdown]
# ### (ii) The SSIM constants are $K_1, K_2$, not $c_1, c_2$
#
# Eq. (11) of the paper is the SSIM of {cite:t}`wang2004`:
#
# $$
# \begin{aligned}
# \mathrm{SSIM}(e, f) &= \frac{(2 \mu_e \mu_f + c_1)(2 \sigma_{ef} + c_2)}{(\mu_e^2 + \mu_f^2 + c_1)(\sigma_e^2 + \sigma_f^2 + c_2)}, \\
# c_1 &= (K_1 L)^2, \quad c_2 = (K_2 L)^2 .
# \end{aligned}
# $$ (bound-ssim)
#
# The paper says $c_1$ and $c_2$ are "typically 0.01 and 0.03". Those are Wang et al.'s $K_1$ and
# $K_2$; with the data range $L = 1$ the constants are $c_1 = 10^{-4}$ and $c_2 = 9 \cdot 10^{-4}$,
# which is what `cvgad.model.losses.ssim_per_sample` uses (through `pytorch-msssim`, with an
# $11 \times 11$ Gaussian window of width 1.5 and no padding). The cell computes
# {eq}`bound-ssim` directly with the same window and checks the library against it.


# %%
def ssim_direct(a, b, c1, c2, size=11, sigma=1.5):
    """Eq. (11) on every valid 11x11 Gaussian window, averaged per image."""
    g = torch.exp(-((torch.arange(size) - size // 2) ** 2) / (2 * sigma**2))
    g = g / g.sum()
    w = (g[:, None] * g[None, :])[None, None].to(a.dtype).repeat(a.shape[1], 1, 1, 1)
    filt = lambda t: F.conv2d(t, w, groups=a.shape[1])  # noqa: E731
    mu_a, mu_b = filt(a), filt(b)
    var_a, var_b = filt(a * a) - mu_a**2, filt(b * b) - mu_b**2
    cov = filt(a * b) - mu_a * mu_b
    ssim_map = (2 * mu_a * mu_b + c1) * (2 * cov + c2) / ((mu_a**2 + mu_b**2 + c1) * (var_a + var_b + c2))
    return ssim_map.flatten(1).mean(1)


def smooth_image(generator, level=0.5, contrast=0.4):
    """A smooth random 32x32 grey image: low-resolution noise, upsampled."""
    low = torch.rand(1, 1, 8, 8, generator=generator)
    return (level + contrast * (F.interpolate(low, size=32, mode="bicubic", align_corners=False) - 0.5)).clamp(0, 1)


# %% tags=["nbval-check-output"]
gen = torch.Generator().manual_seed(seed)
clean = smooth_image(gen)
noisy = (clean + 0.1 * torch.randn(clean.shape, generator=gen)).clamp(0, 1)
lib = L.ssim_per_sample(clean.float(), noisy.float()).item()
direct = ssim_direct(clean, noisy, 1e-4, 9e-4).item()
print(f"library ssim_per_sample            {lib:.5f}")
print(f"direct eq. (11), c1=1e-4, c2=9e-4  {direct:.5f}")
print(f"direct eq. (11), c1=0.01, c2=0.03  {ssim_direct(clean, noisy, 0.01, 0.03).item():.5f}")
print(f"pytorch-msssim with K=(0.1, sqrt(0.03)), i.e. c1=0.01, c2=0.03: "
      f"{ms_ssim(clean.float(), noisy.float(), data_range=1.0, win_size=11, win_sigma=1.5, K=(0.1, 0.03 ** 0.5)).item():.5f}")

# %% [markdown]
# The difference matters most where the means and variances are small, that is on dark and flat
# images, which is exactly the black background of MNIST-like digits. The constants are added
# to quantities of size $\mu^2$ and $\sigma^2$; when those are below $0.01$, constants of $0.01$
# and $0.03$ swamp them and every pair of dark images looks alike.

# %% tags=["nbval-check-output"]
gen = torch.Generator().manual_seed(seed)
dark_texture = smooth_image(gen, level=0.06, contrast=0.1)
pairs = {
    "flat 0.05 vs flat 0.10": (torch.full((1, 1, 32, 32), 0.05), torch.full((1, 1, 32, 32), 0.10)),
    "flat 0.02 vs flat 0.00": (torch.full((1, 1, 32, 32), 0.02), torch.zeros(1, 1, 32, 32)),
    "dark texture vs its mean (flat)": (dark_texture, torch.full_like(dark_texture, dark_texture.mean().item())),
    "dark texture vs noisy copy": (dark_texture, (dark_texture + 0.03 * torch.randn(dark_texture.shape, generator=gen)).clamp(0, 1)),
    "bright texture vs noisy copy": (clean, noisy),
}
ssim_table = pd.DataFrame(
    {"SSIM, Wang et al.": [ssim_direct(a, b, 1e-4, 9e-4).item() for a, b in pairs.values()],
     "SSIM, paper literal": [ssim_direct(a, b, 0.01, 0.03).item() for a, b in pairs.values()]},
    index=list(pairs))
print(ssim_table.round(4).to_string())

# %% [markdown]
# The first column uses Wang et al.'s constants ($c_1 = 10^{-4}$, $c_2 = 9 \cdot 10^{-4}$), the
# second the paper's literal values ($c_1 = 0.01$, $c_2 = 0.03$). With the literal constants every dark pair scores above 0.95: a black square and a square of
# grey level 0.02 score about 0.96 (0.20 with Wang et al.'s constants), and a dark texture
# against a flat square of its mean brightness scores about 0.98 (0.78). A reconstruction loss
# built on the literal constants would barely penalise a decoder that outputs flat or blurry
# dark images.
#
# ### (iii) "Distance larger than 2" selects nothing in 256 dimensions
#
# Active negative training (II.E) draws codes whose distance to every mean $\mu_y$ is larger than
# 2, "twice the variance 1". But a normal code $z \sim \mathcal N(\mu_y, I_d)$ has
# $\lVert z - \mu_y \rVert \sim \chi_d$, whose mean is close to $\sqrt d = 16$ for $d = 256$,
# with a standard deviation of about $1/\sqrt 2 \approx 0.71$. Almost no normal code lies within
# distance 2 of its mean, so the rule "farther than 2" accepts essentially every normal code as a
# negative, and negative training would then teach the decoder to reconstruct normal codes badly.
#
# `cvgad.model.losses.negative_radius(d, "chi", 0.999)` takes the $0.999$ quantile of $\chi_d$ instead,
# and `sample_negative_codes(..., rule="chi")` draws codes between that radius and 1.5 times it.
# `rule="literal"` keeps the paper's reading (draw $z \sim \mathcal N(\mu_y, I)$, keep it when it
# is farther than 2 from every mean). The means below are those of a fresh model
# (`mean_init_scale` 0.05, $K = 9$).

# %% tags=["nbval-check-output"]
torch.manual_seed(seed)
gen = torch.Generator().manual_seed(seed)
K_neg, n_codes = 9, 5000
mus = (0.05 * torch.randn(K_neg, latent_dim)).float()
y_codes = torch.randint(K_neg, (n_codes,), generator=gen)
normal_codes = mus[y_codes] + torch.randn(n_codes, latent_dim, generator=gen).float()
r_literal = L.negative_radius(latent_dim, "literal")
r_chi = L.negative_radius(latent_dim, "chi", 0.999)
neg_literal, _ = L.sample_negative_codes(mus, n_codes, r_literal, "literal", generator=gen)
neg_chi, _ = L.sample_negative_codes(mus, n_codes, r_chi, "chi", generator=gen)
nearest = lambda c: torch.cdist(c, mus).min(1).values  # noqa: E731
d_normal, d_lit, d_chi = nearest(normal_codes), nearest(neg_literal), nearest(neg_chi)
print(f"d = {latent_dim}: sqrt(d) = {math.sqrt(latent_dim):.2f}, mean of chi_d = {chi.mean(latent_dim):.2f}, sd = {chi.std(latent_dim):.3f}")
print(f"literal radius {r_literal:.2f}: share of normal codes beyond it = {(d_normal > r_literal).float().mean():.4f}")
print(f"chi radius     {r_chi:.2f}: share of normal codes beyond it = {(d_normal > r_chi).float().mean():.4f}")
print(f"nearest-mean distance, normal codes    : mean {d_normal.mean():.2f}, min {d_normal.min():.2f}")
print(f"nearest-mean distance, literal negatives: mean {d_lit.mean():.2f}, min {d_lit.min():.2f}")
print(f"nearest-mean distance, chi negatives    : mean {d_chi.mean():.2f}, min {d_chi.min():.2f}")

# %% tags=["hide-input"]
fig, ax = plt.subplots(figsize=(plots.WIDTH, 3.4))
bins = np.linspace(0, 30, 121)
ax.hist(d_normal.numpy(), bins=bins, alpha=0.6, label=r"normal codes $z \sim \mathcal{N}(\mu_y, I)$")
ax.hist(d_lit.numpy(), bins=bins, alpha=0.6, label='negatives, rule "literal"')
ax.hist(d_chi.numpy(), bins=bins, alpha=0.6, label='negatives, rule "chi"')
ax.axvline(r_literal, color="r", ls=":", label=f"paper's radius {r_literal:.0f}")
ax.axvline(r_chi, color="k", ls="--", label=f"chi quantile 0.999: {r_chi:.2f}")
ax.set(title=f"Distance to the nearest cluster mean, d = {latent_dim}", xlabel="distance", ylabel="number of codes")
ax.legend(loc="upper left")
plt.show()

# %% [markdown]
# The literal negatives are indistinguishable from normal codes: their distance histogram lies on
# top of the normal one. The chi rule puts them just outside the shell where the normal codes
# live.
#
# ### (iv) What the mutual-information game optimises
#
# Summing up Step 5: eq. (10) is a GAN game whose optimal discriminator is
# {eq}`bound-fd-optimum`, a function of the pointwise mutual information. At that optimum the
# game's value is $2\,\mathrm{JS}(\text{joint}, \text{product}) - 2 \log 2$, the same offset as
# eq. (9), so the loss the library minimises lies between $0$ and $2 \log 2 \approx 1.386$ and
# never measures $I(x; z)$ itself. The JS divergence grows with $I(x; z)$ (monotonically in the
# Gaussian example) but saturates at $\log 2$.
#
# ## Summary
#
# | step | what happens | kind |
# | --- | --- | --- |
# | {eq}`bound-jensen` | multiply and divide by $p(z \mid x)$, then the log of a mean | identity, then Jensen's inequality |
# | {eq}`bound-gap` | the gap is the KL divergence from the encoder to the exact posterior | identity |
# | {eq}`bound-decomp` | insert $p(z)/p(z)$, integrate $x$ out | identity and definitions |
# | {eq}`bound-cvae` | replace $z$ by $(z, y)$, choose the factorisations | modelling choice, then Jensen's inequality |
# | {eq}`bound-cvae-loss` | log of a product is a sum of logs | identity |
# | {eq}`bound-kl-closed` | Gaussian expectations | identity |
# | {eq}`bound-gan-optimum` | plug in the optimal discriminator | optimisation, identity |
#
# The paper's side claims, corrected: the JS divergence is bounded by $\log 2$; SSIM's
# constants are $c_1 = (0.01 L)^2$ and $c_2 = (0.03 L)^2$; the negative-code radius must be
# compared with $\sqrt d$, not with 2.
