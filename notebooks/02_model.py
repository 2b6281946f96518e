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
# # The model, piece by piece
#
# This chapter opens up the networks of `cvgad.model.networks`, one at a time, and ties each to a box
# of Fig. 1 of {cite:t}`bian2019`. For every network it lists the tensor shapes layer by layer
# (measured with forward hooks on a dummy batch, not typed by hand) and the number of
# parameters. At the end it decodes images with an untrained model and explains the choices that
# `cvgad.model.config` makes where the paper is silent or ambiguous.
#
# The shapes depend on the dataset: grey data (digits, MNIST, Fashion-MNIST) has one channel,
# CIFAR-10 three, and the digits default uses a narrower network. Run the notebook with
# `-p dataset cifar10` to see the colour version.

# %% tags=["parameters", "hide-input"]
dataset = "digits"  # digits, mnist, fashion_mnist, cifar10, coil100: sets channels and width
anomaly_class = 1  # the class left out of training (only used to pick normal images to show)
epochs = 0  # 0: every figure shows the untrained model; > 0: train that many epochs first
seed = 0
device = "auto"  # auto: CUDA when present, else CPU
data_root = None  # None: $CVGAD_DATA, else ./data (digits needs none)
train_subset = 512  # cap on training images when epochs > 0

# %% tags=["hide-input"]
import inspect
import re

import matplotlib.pyplot as plt
import pandas as pd
import torch
from IPython.display import display
from torch.utils.flop_counter import FlopCounterMode

from cvgad.book import diagram
from cvgad.experiment.experiment import make_config, prepare
from cvgad.model.algorithm1 import CVGADTrainer
from cvgad.model.config import LossConfig, ModelConfig
from cvgad.model.networks import (
    CVAE,
    Critic,
    count_parameters,
    reparameterize,
)
from cvgad.model.training import resolve_device
from cvgad.workbench import plots

plots.use_house_style()

cfg = make_config(dataset=dataset, anomaly_class=anomaly_class, epochs=epochs, seed=seed, device=device,
                  data_root=data_root, train_subset=train_subset)
mcfg = cfg.model
dev = resolve_device(device)

# %% tags=["nbval-check-output"]
print(f"dataset {dataset}: {mcfg}")

# %% [markdown]
# ## Fig. 1 in words
#
# Fig. 1 of the paper draws the whole architecture as boxes; the text of Section II names them.
# From input to output:
#
# * **Encoder** $p(z \mid x)$: three identical stages of convolution, batch normalisation and
#   leaky ReLU, ending in two outputs, the mean $u$ (written $\mu$ here) and the standard
#   deviation $\sigma$ of the code. In `cvgad`: `Encoder`, with heads `mu` and `logvar`
#   ($\log \sigma^2$).
# * **Reparameterisation** (eq. 1): $z = \mu + \sigma \odot \xi$, $\xi \sim \mathcal N(0, I)$. In
#   `cvgad`: the function `reparameterize`.
# * **Classifier** $p(y \mid z)$, the red dashed rectangle: assigns the code to one of $K$
#   unlabelled categories. In `cvgad`: `Classifier`.
# * **Learnable means** $u_y$: the centres of the Gaussians $q(z \mid y) = \mathcal N(u_y, I)$
#   imposed on $z$ (eq. 5). In `cvgad`: the parameter `CVAE.means`, shape $(K, d)$.
# * **Decoder** $q(x \mid z)$: "the similar structure of a DCGAN generator"
#   {cite:p}`radford2015`, from $z$ to the reconstruction. In `cvgad`: `Decoder`.
# * **Feature discriminator** (FD), the blue dashed rectangle: $1 \times 1$ convolutions over the
#   encoder's last feature map joined with $z$, trained to tell matched from mismatched pairs
#   (eq. 10). In `cvgad`: `FeatureDiscriminator`.
# * **WGAN-GP discriminator** (the critic $D$ of eqs. 13 to 15) {cite:p}`gulrajani2017`: "similar
#   to the encoder but abandons the batch-norm layers and attaches fully connected layers". In
#   `cvgad`: `Critic`.
#
# The `CVAE` container holds everything except the critic: encoder, decoder, classifier, means
# and FD. The FD lives there because eq. (10) maximises over the encoder and the FD together,
# so both are updated by the same optimiser.
#
# ## Shapes, layer by layer
#
# A forward hook on every leaf module records the shape of its output. The dummy batch has
# 4 images with the dataset's channels, at the fixed size $32 \times 32$ (III.C).

# %%
def layer_table(module, *inputs):
    """Runs `module(*inputs)` with a forward hook on every leaf module; one row per call."""
    rows, hooks = [], []
    for name, sub in module.named_modules():
        if list(sub.children()):
            continue
        def hook(mod, args, out, name=name):
            rows.append({"layer": name, "type": type(mod).__name__, "output shape": tuple(out.shape),
                         "parameters": sum(p.numel() for p in mod.parameters(recurse=False))})
        hooks.append(sub.register_forward_hook(hook))
    try:
        with torch.no_grad():
            module(*inputs)
    finally:
        for h in hooks:
            h.remove()
    return pd.DataFrame(rows)


torch.manual_seed(seed)
cvae = CVAE(mcfg).to(dev).eval()
critic = Critic(mcfg).to(dev).eval()
x = torch.rand(4, mcfg.channels, 32, 32, device=dev)
with torch.no_grad():
    mu, logvar, features = cvae.encoder(x)
    z = reparameterize(mu, logvar)

# %% [markdown]
# ### Fig. 1 as a diagram
#
# The same boxes, drawn by `cvgad.book.diagram.architecture` from the shapes that the model built
# above produces on a blank image (channels × height × width, per image). The dashed boxes are
# the paper's red classifier and blue feature discriminator; the critic compares real images
# with reconstructions.

# %% tags=["hide-input"]
fig = diagram.architecture(cvae, critic, title=f"CVGAD on {dataset} (width {mcfg.width}, cf. Fig. 1)")
plt.show()

# %% [markdown]
# ### Encoder
#
# Each stage is a $4 \times 4$ convolution with stride 2, which halves the image:
# $32 \to 16 \to 8 \to 4$, while the channels grow $w \to 2w \to 4w$ ($w$ = `width`). The
# $4w \times 4 \times 4$ feature map is flattened and fed to two linear heads. The convolutions
# that feed a batch norm carry no bias (the batch norm's shift replaces it).

# %% tags=["nbval-check-output"]
print(layer_table(cvae.encoder, x).to_string(index=False))

# %% [markdown]
# ### Reparameterisation
#
# $$
# z = \mu + \sigma \odot \xi, \qquad \sigma = \exp\big(\tfrac12 \log \sigma^2\big), \qquad \xi \sim \mathcal N(0, I_d).
# $$ (model-reparam)
#
# The encoder outputs $\log \sigma^2$ rather than $\sigma$, so $\sigma$ is positive without a
# constraint. The check: with $\mu = 1$ and $\log \sigma^2 = \log 4$, many draws of $z$ have mean
# 1 and standard deviation 2, and the gradient reaches $\mu$ and $\log \sigma^2$ through the draw.

# %% tags=["nbval-check-output"]
torch.manual_seed(seed)
m = torch.ones(20000, 8, requires_grad=True)
lv = torch.full((20000, 8), torch.log(torch.tensor(4.0)).item(), requires_grad=True)
draws = reparameterize(m, lv)
draws.sum().backward()
print(f"mean {draws.mean():.2f}, std {draws.std():.2f}; gradient reaches mu: {m.grad is not None}, logvar: {lv.grad is not None}")

# %% [markdown]
# ### Decoder
#
# A DCGAN generator: $z$ is read as a $d \times 1 \times 1$ image, and four transposed
# convolutions grow it $1 \to 4 \to 8 \to 16 \to 32$ while the channels shrink
# $4w \to 2w \to w \to C$. A sigmoid maps the output to $[0, 1]$, the range of the images.

# %% tags=["nbval-check-output"]
print(layer_table(cvae.decoder, z).to_string(index=False))

# %% [markdown]
# ### Classifier and the $K$ learnable means
#
# The classifier is a small MLP from $z$ to $K$ logits; $p(y \mid z)$ is their softmax. The
# means are a plain $(K, d)$ parameter. $K$ is the user's estimate of the number of normal
# categories; `make_config` sets it to the number of normal classes of the protocol (9 when one
# digit of ten is the anomaly).

# %% tags=["nbval-check-output"]
print(layer_table(cvae.classifier, z).to_string(index=False))
means = cvae.means.detach()
print(f"\nmeans: shape {tuple(means.shape)}, initial scale {mcfg.mean_init_scale}, "
      f"mean norm {means.norm(dim=1).mean():.3f}, smallest distance between two means {torch.pdist(means).min():.3f}")

# %% [markdown]
# ### Feature discriminator
#
# The FD sees the encoder's $4w \times 4 \times 4$ feature map with $z$ copied to each of its
# 16 positions, so its input has $4w + d$ channels. Three $1 \times 1$ convolutions give one
# logit per position, and the logits are averaged:
#
# $$
# \mathrm{FD}(x, z) = \sigma\Big(\frac{1}{16} \sum_{i, j} f\big([h_{ij}(x);\, z]\big)\Big),
# $$ (model-fd)
#
# where $h_{ij}(x)$ is the feature vector at position $(i, j)$ and $f$ is the stack of
# $1 \times 1$ convolutions (the library returns the logit; the sigmoid $\sigma$ sits in the
# loss). Each position judges whether its local features and the code come from the same image,
# as in the local objective of Deep InfoMax {cite:p}`hjelm2018`.

# %% tags=["nbval-check-output"]
print(layer_table(cvae.fd, features, z).to_string(index=False))

# %% [markdown]
# ### Critic
#
# The critic repeats the encoder's three stages without batch norm (the gradient penalty of
# WGAN-GP is defined per sample, and batch norm would couple the samples of a batch
# {cite:p}`gulrajani2017`), then two linear layers down to one unbounded score per image.

# %% tags=["nbval-check-output"]
print(layer_table(critic, x).to_string(index=False))

# %% [markdown]
# ### The whole CVAE
#
# One call of `CVAE.forward` runs encoder, reparameterisation, classifier and decoder, and
# returns every intermediate result that a loss needs:

# %% tags=["nbval-check-output"]
torch.manual_seed(seed)
with torch.no_grad():
    out = cvae(x)
for key, value in out.items():
    print(f"{key:9s} {tuple(value.shape)}")

# %% [markdown]
# ## Parameters and FLOPs per module
#
# FLOPs are counted by `torch.utils.flop_counter.FlopCounterMode` for one image: it counts the
# convolutions and matrix products (2 FLOPs per multiply-add), not the batch norms and
# activations, which are small next to them.

# %% tags=["hide-input"]
def flops(module, *inputs):
    counter = FlopCounterMode(display=False)
    with counter:  # the inputs carry no gradient; FlopCounterMode needs the parameters' autograd graph
        module(*inputs)
    return counter.get_total_flops()


x1, z1, f1 = x[:1], z[:1], features[:1]
modules = [
    ("encoder (stages)", "encoder: conv-BN-LeakyReLU x 3", cvae.encoder.features, (x1,)),
    ("encoder.mu + encoder.logvar", "encoder: heads u, sigma", torch.nn.ModuleList([cvae.encoder.mu, cvae.encoder.logvar]), None),
    ("decoder", "decoder (DCGAN generator)", cvae.decoder, (z1,)),
    ("classifier", "classifier p(y|z) (red)", cvae.classifier, (z1,)),
    ("means", "learnable means u_y", None, None),
    ("fd", "feature discriminator FD (blue)", cvae.fd, (f1, z1)),
    ("critic", "WGAN-GP discriminator D", critic, (x1,)),
]
rows = []
for name, box, module, inputs in modules:
    n_params = cvae.means.numel() if module is None else count_parameters(module)
    if name.startswith("encoder.mu"):
        n_flops = flops(cvae.encoder.mu, features[:1].flatten(1)) + flops(cvae.encoder.logvar, features[:1].flatten(1))
    else:
        n_flops = 0 if inputs is None else flops(module, *inputs)
    rows.append({"module": name, "Fig. 1 box": box, "parameters": n_params, "MFLOPs per image": n_flops / 1e6})
params = pd.DataFrame(rows)
generator_side = params[params["module"] != "critic"]
params.loc[len(params)] = ["CVAE (all but the critic)", "generator side", count_parameters(cvae), generator_side["MFLOPs per image"].sum()]
params.loc[len(params)] = ["CVAE + critic", "", count_parameters(cvae) + count_parameters(critic), params["MFLOPs per image"].iloc[[-1, -2]].sum()]

# %% tags=["nbval-check-output"]
print(params.to_string(index=False, float_format=lambda v: f"{v:.2f}"))

# %% tags=["remove-input"]
from myst_nb import glue

totals = params.set_index("module")
glue("ch2_cvae_params", int(totals.at["CVAE (all but the critic)", "parameters"]), display=False)
glue("ch2_critic_params", int(totals.at["critic", "parameters"]), display=False)
glue("ch2_cvae_mflops", float(totals.at["CVAE (all but the critic)", "MFLOPs per image"]), display=False)
glue("ch2_latent_dim", cfg.model.latent_dim, display=False)
glue("ch2_width", cfg.model.width, display=False)

# %% [markdown]
# The parameter count of the linear heads and of the FD grows with $d \cdot 16 \cdot 4w$ and
# $(4w + d) \cdot 256$, so with $d = 256$ the heads are a large share of the encoder. The FLOPs
# of the CVAE row are those of one pass through every part of the generator side; a training
# step of Algorithm 1 makes several such passes.
#
# ## An untrained model at work
#
# Images from the dataset, their reconstructions from the posterior mean
# (`CVAE.reconstruct`), and samples of the prior mixture decoded: $z = \mu_y + \xi$ for each
# category $y$. With `epochs = 0` the model is untrained; rerun with `-p epochs 5` to watch the
# reconstructions improve.

# %% tags=["hide-input"]
data, split = prepare(cfg)
normal_images = data.images[torch.as_tensor(split.train)]
model = cvae
if epochs > 0:
    trainer = CVGADTrainer(cfg.model, cfg.train)
    trainer.fit(normal_images, progress=False)
    model = trainer.cvae
model.eval()
g = torch.Generator().manual_seed(seed)
n_show = 8
shown = normal_images[torch.randperm(len(normal_images), generator=g)[:n_show]].to(dev).float() / 255
with torch.no_grad():
    recon = model.reconstruct(shown)
    ys = torch.arange(n_show) % model.means.shape[0]
    prior_codes = model.means[ys.to(dev)] + torch.randn(n_show, mcfg.latent_dim, generator=g).to(dev)
    prior_images = model.decoder(prior_codes)
state = "untrained" if epochs == 0 else f"after {epochs} epoch{'s' if epochs > 1 else ''}, trained"
fig = plots.image_rows({"input": shown, "reconstruction": recon, "prior sample": prior_images},
                       title=f"{dataset}, {state} model (prior samples: category y = (column - 1) mod K)")
plt.show()

# %% [markdown]
# The untrained decoder ignores its input almost entirely: with `epochs = 0` every output is a
# nearly uniform grey of about 0.5, the sigmoid of the small values that random weights produce.
# Whatever structure the reconstructions show later is learnt.
#
# ## Design decisions in the config
#
# The paper leaves several points open or states them in a way that does not work as written.
# `cvgad.model.config.LossConfig` and `ModelConfig` make each choice a named field, with its reason
# in the field's `#:` comment. The table is read from the source of `cvgad/model/config.py`, so it
# cannot drift from the code.

# %% tags=["hide-input"]
def field_docs(cls):
    """The `#:` comment lines above each field of a dataclass, joined, without their Markdown
    backticks (a table cell shows them as text)."""
    docs, pending = {}, []
    for line in inspect.getsource(cls).splitlines():
        stripped = line.strip()
        if stripped.startswith("#:"):
            pending.append(stripped[2:].strip())
            continue
        match = re.match(r"(\w+)\s*:", stripped)
        if match and pending:
            docs[match.group(1)] = " ".join(pending).replace("`", "")
        pending = [] if not stripped.startswith("#") else pending
    return docs


loss_cfg = cfg.train.losses
decisions = []
for cls, obj, names in ((LossConfig, loss_cfg, ("latent_reduction", "categorical_form", "negative_radius", "fake_source")),
                        (ModelConfig, mcfg, ("mean_init_scale",))):
    docs = field_docs(cls)
    defaults = cls()
    for name in names:
        decisions.append({"field": f"{cls.__name__}.{name}", "default": getattr(defaults, name),
                          "this run": getattr(obj, name), "reason (from the source)": docs.get(name, "")})
with pd.option_context("display.max_colwidth", None):
    display(pd.DataFrame(decisions))

# %% [markdown]
# In more words:
#
# * **`latent_reduction = "mean"`.** The latent loss {eq}`bound-kl-closed` is a sum over
#   $d = 256$ dimensions, so it is of order 100 nats for a fresh model, while
#   $-\log \mathrm{SSIM}$ and $L_1$ are of order 1. The weights of III.C (SSIM 50, $L_1$ 10,
#   latent 5 or 15) only balance these terms if the latent loss is measured per dimension. The
#   paper does not say which; `"sum"` keeps the plain sum.
# * **`categorical_form = "marginal"`.** The paper's categorical term is
#   $\mathbb E_z \mathrm{KL}(p(y \mid z)\,\|\,q(y))$ with uniform $q(y)$: it pulls every single
#   $p(y \mid z)$ towards uniform, which is the opposite of what clustering needs. The marginal
#   form applies the KL to the batch average of $p(y \mid z)$, so the clusters stay balanced while
#   each code may commit to one of them. `"per_sample"` is the paper's form.
# * **`negative_radius = "chi"`.** The paper's "distance larger than 2" is smaller than the
#   distance of almost every normal code from its mean ($\approx \sqrt d = 16$); see the
#   histogram in {doc}`01_cvae_bound`. The chi rule draws negatives beyond the 0.999 quantile of
#   the $\chi_d$ distribution (`negative_quantile`) instead.
# * **`mean_init_scale = 0.05`.** The means start small, near where the untrained encoder puts
#   its codes. With unit-scale means one mean happens to be nearest to every code, takes them
#   all, and the other $K - 1$ are never used.
# * **`fake_source = "reconstruction"`.** Eq. (13) writes the generated images as $G(z)$ with
#   $z \sim p(z)$, which in the paper's notation is the aggregate posterior: the critic compares
#   data with reconstructions. `"prior"` shows it decoded samples of the prior mixture instead,
#   the usual GAN reading.
#
# The next chapter puts these pieces into the training loop of Algorithm 1.
#
# ## Summary
#
# * The CVAE of Fig. 1 is an encoder, a decoder, a classifier of codes with $K$ learnable means
#   $\mu_y$, and a feature discriminator; a WGAN-GP critic sits beside it.
# * At this chapter's settings ($d$ = {glue:text}`ch2_latent_dim`, width {glue:text}`ch2_width`)
#   the CVAE has {glue:text}`ch2_cvae_params:,` parameters and the critic
#   {glue:text}`ch2_critic_params:,`; one pass through the CVAE costs
#   {glue:text}`ch2_cvae_mflops:.1f` MFLOPs per image. These are the library's defaults; the
#   other chapters use smaller models, and chapter 10's table of presets lists every size.
# * Each choice the paper leaves open is a setting with its reason, listed above.
#
# **Try next:** `papermill notebooks/02_model.ipynb out.ipynb -p epochs 3` shows the same figures
# after a short training run.
