"""The architecture of the paper's Fig. 1, drawn from the networks themselves.

`shapes` runs a model on one blank image and records the output shape of every box of Fig. 1;
`architecture` draws the boxes with those shapes, so the diagram cannot drift from the code.
"""

from __future__ import annotations

import torch
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.patches import FancyBboxPatch
from torch import nn

from cvgad.model.networks import CVAE, Critic, eval_mode
from cvgad.workbench import plots

#: Shapes are written channels first, as PyTorch holds them, without the batch dimension.
Shape = tuple[int, ...]


def _outputs(layers: nn.Sequential, x: torch.Tensor, kind: type[nn.Module]) -> list[Shape]:
    """Runs `layers` on `x` and returns the output shape of each layer of type `kind`."""
    shapes = []
    for layer in layers:
        x = layer(x)
        if isinstance(layer, kind):
            shapes.append(tuple(x.shape[1:]))
    return shapes


@torch.no_grad()
def shapes(cvae: CVAE, critic: Critic) -> dict[str, list[Shape]]:
    """Per image, the output shapes of each box of Fig. 1 (lists: one shape per stage), measured
    on one blank image in eval mode. The code z is taken at the posterior mean, so no random
    numbers are drawn and a notebook's later draws do not change."""
    x = torch.zeros(1, cvae.cfg.channels, 32, 32, device=cvae.means.device)
    with eval_mode(cvae), eval_mode(critic):
        mu, logvar, features = cvae.encoder(x)
        return {
            "input": [tuple(x.shape[1:])],
            "encoder": _outputs(cvae.encoder.features, x, nn.Conv2d),
            "heads": [tuple(mu.shape[1:]), tuple(logvar.shape[1:])],
            "z": [tuple(mu.shape[1:])],
            "decoder": _outputs(cvae.decoder.net, mu[:, :, None, None], nn.ConvTranspose2d),
            "classifier": [tuple(cvae.classifier(mu).shape[1:])],
            "means": [tuple(cvae.means.shape)],
            "fd": [(features.shape[1] + mu.shape[1], *features.shape[2:])],
            "critic": [*_outputs(critic.features, x, nn.Conv2d), tuple(critic(x)[:, None].shape[1:])],
        }


def _text(shape: Shape) -> str:
    return "×".join(map(str, shape))


#: A box's centre, half width and half height, in the diagram's units (0-10 by 0-6).
Box = tuple[float, float, float, float]


def _box(ax: Axes, xy: tuple[float, float], text: str, colour: str = "0.3", dashed: bool = False) -> Box:
    """A rounded box centred on `xy`, sized to hold `text`."""
    lines = text.split("\n")
    half_w, half_h = 0.04 * max(len(line) for line in lines) + 0.12, 0.15 * len(lines) + 0.08
    ax.add_patch(
        FancyBboxPatch(
            (xy[0] - half_w, xy[1] - half_h),
            2 * half_w,
            2 * half_h,
            boxstyle="round,pad=0.04",
            facecolor="white",
            edgecolor=colour,
            linestyle="--" if dashed else "-",
            linewidth=1.2,
        )
    )
    ax.text(*xy, text, ha="center", va="center", fontsize=7.5, linespacing=1.25)
    return (*xy, half_w, half_h)


def _arrow(ax: Axes, a: Box, b: Box, label: str = "") -> None:
    """An arrow from box `a` to box `b`: edge to edge, sideways for boxes on one level, else up or down."""
    (ax_, ay, aw, ah), (bx, by, bw, bh) = a, b
    sideways = abs(ay - by) < 0.3
    if sideways:
        sign = 1 if bx > ax_ else -1
        start, end = (ax_ + sign * (aw + 0.05), ay), (bx - sign * (bw + 0.05), by)
    else:
        sign = 1 if by > ay else -1
        start, end = (ax_, ay + sign * (ah + 0.05)), (bx, by - sign * (bh + 0.05))
    ax.annotate("", end, start, arrowprops={"arrowstyle": "->", "color": "0.35", "shrinkA": 0, "shrinkB": 0})
    middle = ((start[0] + end[0]) / 2, (start[1] + end[1]) / 2)
    if label:  # above a sideways arrow, right of any other
        at, align = ((middle[0], middle[1] + 0.1), "center") if sideways else ((middle[0] + 0.08, middle[1]), "left")
        ax.text(*at, label, ha=align, fontsize=6.5, color="0.3")


def architecture(cvae: CVAE, critic: Critic, title: str = "CVGAD (cf. Fig. 1)", ax: Axes | None = None) -> Figure:
    """Fig. 1 as boxes and arrows: encoder, heads, reparameterisation, decoder, classifier p(y|z)
    (red, dashed), the K means, the feature discriminator (blue, dashed) and the WGAN-GP critic,
    each with the shapes `shapes` measured (channels × height × width, per image)."""
    s = shapes(cvae, critic)
    if ax is None:
        _, ax = plots.new_figure((plots.WIDTH, 4.2))
    stages = {name: "\n".join(_text(shape) for shape in s[name]) for name in ("encoder", "decoder")}
    red, blue = {"colour": plots.ANOMALOUS, "dashed": True}, {"colour": plots.NORMAL, "dashed": True}
    box = {
        "x": _box(ax, (0.45, 3.3), f"image x\n{_text(s['input'][0])}"),
        "enc": _box(ax, (1.95, 3.3), f"encoder p(z|x)\nconv-BN-LReLU:\n{stages['encoder']}"),
        "heads": _box(ax, (3.6, 3.3), f"heads μ, log σ²\n{_text(s['heads'][0])} each"),
        "z": _box(ax, (5.25, 3.3), f"z = μ + σ ⊙ ξ\n{_text(s['z'][0])}"),
        "dec": _box(ax, (6.85, 3.3), f"decoder q(x|z)\nDCGAN:\n{stages['decoder']}"),
        "xhat": _box(ax, (8.6, 3.3), f"reconstruction x̂\n{_text(s['decoder'][-1])}"),
        "fd": _box(ax, (3.6, 5.35), f"feature discriminator FD\n[features; z]: {_text(s['fd'][0])} → 1 logit", **blue),
        "means": _box(ax, (3.2, 1.0), f"means μ_y: {_text(s['means'][0])}\nlatent loss:\nq(z|y) = N(μ_y, I)"),
        "cls": _box(ax, (5.25, 1.0), f"classifier p(y|z)\n{_text(s['classifier'][0])} logits", **red),
        "real": _box(ax, (6.95, 1.0), f"real images x\n{_text(s['input'][0])}"),
        "critic": _box(ax, (8.6, 1.0), f"WGAN-GP critic D\n{_text(s['critic'][-2])} → 1 score"),
    }
    for start, end, label in (
        ("x", "enc", ""),
        ("enc", "heads", ""),
        ("heads", "z", ""),
        ("z", "dec", ""),
        ("dec", "xhat", ""),
        ("enc", "fd", "features"),
        ("z", "fd", "z"),
        ("z", "cls", ""),
        ("means", "cls", ""),
        ("xhat", "critic", "fake"),
        ("real", "critic", ""),
    ):
        _arrow(ax, box[start], box[end], label)
    ax.set(xlim=(-0.05, 9.75), ylim=(0.35, 5.8), title=title)
    ax.set_axis_off()
    return plots.root_figure(ax)
