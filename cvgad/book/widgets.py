"""Classroom widgets (ipywidgets 8) for the exercises chapter, each with a static rendering.

Each widget is a small class whose controls and outputs are attributes, so code can drive it
(set `.value`, `.click()`) and read what it shows. `.widget` is the box to display; `.static()`
draws the default state (a matplotlib Figure, or a pandas table) for a book without a kernel.
Figures go to `Image` widgets as PNG, so an executed notebook keeps them in its widget state.
"""

from __future__ import annotations

import base64
import dataclasses
import io
import math
from collections.abc import Sequence
from pathlib import Path

import ipywidgets as W
import numpy as np
import pandas as pd
import torch
from matplotlib.figure import Figure
from scipy.stats import chi, spearmanr

from cvgad.book.exercises import check_order
from cvgad.experiment.runs import checkout
from cvgad.model.algorithm1 import CVGADTrainer, applied
from cvgad.model.config import LOSS_NAMES, LossConfig, ModelConfig, TrainConfig
from cvgad.model.networks import as_float_images, eval_mode
from cvgad.model.scoring import Evaluation, confusion_at
from cvgad.workbench import plots
from cvgad.workbench.results import RUN_COLUMNS, load_runs
from cvgad.workbench.table1 import PAPER_NAMES, aggregate

WEIGHT_NAMES = ("ssim", "l1", "latent", "mi", "categorical", "negative", "adversarial")  # the loss lab's sliders


# ------------------------------------------------------------------ pure functions
def lab_loss_config(base: LossConfig, enabled: dict[str, bool], weights: dict[str, float]) -> LossConfig:
    """`base` with the losses switched off whose `enabled` entry is False and the given weights."""
    disabled = tuple(name for name in LOSS_NAMES if not enabled.get(name, base.on(name)))
    return dataclasses.replace(base, disabled=disabled, **weights)  # type: ignore[arg-type]  # replace validates


def shell_radius(latent_dim: int) -> float:
    """Typical distance of a draw of q(z|y) = N(mu_y, I) from mu_y: about sqrt(latent_dim)."""
    return math.sqrt(latent_dim)


def random_directions(latent_dim: int, n: int, seed: int = 0) -> np.ndarray:
    """`n` unit vectors in latent space, uniform on the sphere, reproducible by `seed`."""
    v = np.random.default_rng(seed).standard_normal((n, latent_dim))
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def latent_point(mean: np.ndarray, direction: np.ndarray, radius: float) -> np.ndarray:
    """The code `radius` away from `mean` along `direction` (normalised here)."""
    return np.asarray(mean) + radius * np.asarray(direction) / np.linalg.norm(direction)


def latent_position(z: np.ndarray, means: np.ndarray, negative_radius: float) -> dict[str, float]:
    """Where code `z` lies: distance to the nearest mean, in absolute units and in shell radii,
    and whether it is beyond the negative radius from every mean (where negatives are drawn)."""
    distances = np.linalg.norm(np.asarray(means) - np.asarray(z)[None], axis=1)
    nearest = float(distances.min())
    return {
        "nearest_cluster": int(distances.argmin()),
        "distance": nearest,
        "shells": nearest / shell_radius(len(z)),
        "beyond_negative": nearest > negative_radius,
    }


def agreement_table(order: Sequence[str], values: pd.Series) -> tuple[pd.DataFrame, float]:
    """Student ranking (best first) beside the ranking by `values` (higher is better, rank 1 =
    best, ties share the better rank), and Spearman's rho between the two."""
    check_order(order, list(values.index))
    table = pd.DataFrame(
        {
            "your_rank": pd.Series({r: i + 1 for i, r in enumerate(order)}),
            "value": values,
            "rank": values.rank(ascending=False, method="min").astype(int),
        }
    )
    table = table.loc[list(order)]
    return table, float(spearmanr(table["your_rank"], table["rank"]).statistic)


def _readable(path: Path) -> str:
    """`path` relative to the checkout that holds `ablations/` when it lies inside it, so that
    no machine's folders show in the book."""
    try:
        return str(path.resolve().relative_to(checkout().resolve()))
    except (ValueError, FileNotFoundError):
        return str(path)


def load_ablation_results(
    results: str | Path | None = None, metric: str = "auc", paper: str | Path | None = None
) -> tuple[pd.DataFrame, str]:
    """Table 1's rows (the paper's: not `untrained`) with the mean `metric` (auc or f1_best) over
    finished seeds, by Table 1's `aggregate`: from a recorded grid read by
    `load_runs` (`results`, a grid folder or its `runs.csv`, else the grid of the newest
    runs.csv under the checkout's ablations/results/table1/, ties by path; other grids have other
    rows) holding two rows or more, else the paper's values (`paper`, else
    ablations/paper_table1.csv). Returns (table indexed by row with label, value, n) and a
    sentence saying where it came from."""
    if metric not in PAPER_NAMES:
        raise ValueError(f"metric={metric!r} is not valid; the paper's Table 1 has {', '.join(PAPER_NAMES)}")
    files = (
        [Path(results)]
        if results
        else sorted(
            (checkout() / "ablations" / "results" / "table1").rglob("runs.csv"),
            key=lambda p: (-p.stat().st_mtime, str(p)),
        )
    )
    paper_csv = Path(paper) if paper else checkout() / "ablations" / "paper_table1.csv"
    paper_table = pd.read_csv(paper_csv).set_index("row")
    for path in (p for p in files if p.exists()):
        runs, _ = load_runs(path.parent if path.is_file() else path)
        if runs is None:
            continue
        table = aggregate(runs.reindex(columns=RUN_COLUMNS)).set_index("row")
        table = table.rename(columns={f"{metric}_mean": "value"})[["label", "value", "n"]].dropna(subset=["value"])
        table = table[table.index.isin(paper_table.index)]  # the paper's rows: the quiz ranks those
        if len(table) >= 2:
            return table, f"recorded results: mean {metric} over seeds, from {_readable(path)}"
    table = pd.DataFrame({"label": paper_table["label"], "value": paper_table[PAPER_NAMES[metric]], "n": 0})
    looked = ", ".join(map(_readable, files)) if files else "no runs.csv found"
    return table, (
        f"the paper's Table 1 ({PAPER_NAMES[metric]}, CIFAR-10 with deer as the anomaly): no recorded "
        f"results with two rows or more ({looked}; run `cvgad ablate` and `cvgad report`)"
    )


def _png(fig: Figure) -> tuple[bytes, int]:
    """`fig` as PNG at twice its dpi (`plots.HOUSE`), and the width in CSS pixels at which it
    shows at its size in inches, sharp on a high-resolution screen (as the book's figures)."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=2 * fig.dpi, bbox_inches="tight")
    return buf.getvalue(), int.from_bytes(buf.getvalue()[16:20], "big") // 2  # the IHDR width


def _draw(image: W.Image, fig: Figure) -> None:
    """Shows `fig` in `image` at its size in inches."""
    image.value, width = _png(fig)
    image.width = str(width)


class _Shown:
    """Displays as its widget; where widgets cannot be shown (no widget manager, e.g. a static
    notebook viewer), the frontend falls back to `fallback()`, the widget's default state."""

    widget: W.Widget

    def fallback(self) -> tuple[dict, dict]:
        """Mime data and metadata of the static rendering: the figure of `static()` as PNG."""
        png, width = _png(self.static())
        return {"image/png": base64.b64encode(png).decode("ascii")}, {"image/png": {"width": width}}

    def static(self) -> Figure:
        raise NotImplementedError

    def _repr_mimebundle_(self, **kwargs: object) -> tuple[dict, dict]:
        data, metadata = self.fallback()
        return data | self.widget._repr_mimebundle_(**kwargs), metadata


# ------------------------------------------------------------- (a) threshold explorer
class ThresholdExplorer(_Shown):
    """A threshold slider over the anomaly-score histogram, with the confusion counts,
    precision, recall and F1 there, and the operating point on the ROC curve."""

    def __init__(self, evaluation: Evaluation, threshold: float | None = None) -> None:
        self.evaluation = evaluation
        low, high = float(evaluation.scores.min()), float(evaluation.scores.max())
        self.default = float(
            evaluation.metrics.get("threshold_best", np.median(evaluation.scores)) if threshold is None else threshold
        )
        self.slider = W.FloatSlider(
            value=self.default,
            min=low,
            max=high,
            step=(high - low) / 500 or 0.01,
            description="threshold",
            readout_format=".3f",
            continuous_update=False,
        )
        self.table, self.image = W.HTML(), W.Image(format="png")
        self.slider.observe(lambda _: self.update(), names="value")
        self.widget = W.VBox([self.slider, self.table, self.image])
        self.update()

    def update(self) -> None:
        self.stats = confusion_at(self.evaluation.scores, self.evaluation.labels, self.slider.value)
        self.table.value = pd.DataFrame([self.stats]).to_html(index=False, float_format="%.3f")
        _draw(self.image, self.figure(self.slider.value))

    def figure(self, threshold: float) -> Figure:
        """The score histogram with the threshold, and the ROC curve with its operating point."""
        ev, s = self.evaluation, confusion_at(self.evaluation.scores, self.evaluation.labels, threshold)
        fig = Figure(figsize=(plots.WIDTH, 3.2), layout="constrained")
        hist, roc = fig.subplots(1, 2, width_ratios=[1.5, 1])
        plots.score_histogram(
            ev.scores,
            ev.labels,
            threshold,
            ax=hist,
            title=f"TP {s['tp']}  FP {s['fp']}  TN {s['tn']}  FN {s['fn']}  |  F1 {s['f1']:.3f}",
        )
        plots.roc(ev, title="ROC and this threshold", operating_point=(s["fpr"], s["recall"]), ax=roc)
        return fig

    def static(self) -> Figure:  # the default threshold, whatever the slider shows now
        return self.figure(self.default)


# -------------------------------------------------------------------- (b) loss lab
class LossLab(_Shown):
    """Switches and weights for every loss, and a button that runs a few Algorithm 1 steps
    on `images` (uint8 N x C x 32 x 32) and redraws reconstructions and loss curves."""

    def __init__(
        self,
        images: torch.Tensor,
        model_cfg: ModelConfig,
        losses: LossConfig | None = None,
        steps: int = 12,
        batch_size: int = 32,
        seed: int = 0,
        device: str = "cpu",
        n_show: int = 6,
        redraw_every: int = 6,
        means_lr: float | None = None,
    ) -> None:
        self.images, self.model_cfg, self.base = images, model_cfg, losses or LossConfig()
        self.means_lr = means_lr  # the cluster means' own learning rate (None: the networks')
        self.batch_size, self.seed, self.device, self.redraw_every = batch_size, seed, device, redraw_every
        self.shown = images[torch.linspace(0, len(images) - 1, n_show).long()]
        self.checkboxes = {n: W.Checkbox(value=self.base.on(n), description=n, indent=False) for n in LOSS_NAMES}
        self.sliders = {
            n: W.FloatSlider(
                value=getattr(self.base, n), min=0.0, max=max(4 * getattr(self.base, n), 4.0), step=0.5, description=n
            )
            for n in WEIGHT_NAMES
        }
        self.steps = W.IntSlider(value=steps, min=1, max=60, description="steps")
        self.button, self.reset_button = W.Button(description="train", icon="play"), W.Button(description="reset")
        self.status, self.image = W.HTML(), W.Image(format="png")
        self.button.on_click(lambda _: self.train(progress=True)), self.reset_button.on_click(lambda _: self.reset())
        self.widget = W.VBox(
            [
                W.HBox(list(self.checkboxes.values())),
                W.GridBox(list(self.sliders.values()), layout=W.Layout(grid_template_columns="repeat(2, 320px)")),
                W.HBox([self.steps, self.button, self.reset_button]),
                self.status,
                self.image,
            ]
        )
        self.reset()

    def loss_config(self) -> LossConfig:
        return lab_loss_config(
            self.base, {n: c.value for n, c in self.checkboxes.items()}, {n: s.value for n, s in self.sliders.items()}
        )

    def reset(self) -> None:
        """A fresh, untrained model (same seed), an empty history."""
        cfg = TrainConfig(
            batch_size=self.batch_size,
            seed=self.seed,
            device=self.device,
            amp=False,
            means_lr=self.means_lr,
            losses=self.loss_config(),
        )
        self.trainer = CVGADTrainer(self.model_cfg, cfg)
        self.generator = torch.Generator().manual_seed(self.seed)
        self.history: list[dict[str, float]] = []  # one dict per step: its updates' losses
        self.last_logs: list[dict[str, float]] = []
        self.redraw()

    def train(self, steps: int | None = None, progress: bool = False) -> list[dict[str, float]]:
        """Runs `steps` (default: the slider's) Algorithm 1 steps with the current switches and
        weights; returns one log per step (the updates made and their losses). The figure is
        redrawn after the last step, and with `progress` (the button) every `redraw_every` steps.
        Each press counts as an epoch for the gate T: with the first-epoch gate, negatives start
        from the second."""
        self.trainer.set_losses(self.loss_config())
        self.last_logs = []
        n = self.steps.value if steps is None else steps
        for i in range(n):
            batch = self.images[torch.randint(len(self.images), (self.batch_size,), generator=self.generator)]
            log = {"step": self.trainer.steps, **{k: float(v) for k, v in applied(self.trainer.step(batch)).items()}}
            self.history.append(log)
            self.last_logs.append(log)
            if i == n - 1 or (progress and (i + 1) % self.redraw_every == 0):
                self.redraw()
        self.trainer.end_epoch()
        return self.last_logs

    def reconstructions(self) -> np.ndarray:
        """The current model's reconstructions of the shown images (batchnorm in eval mode)."""
        with eval_mode(self.trainer.cvae):
            return (
                self.trainer.cvae.reconstruct(as_float_images(self.shown.to(self.trainer.device))).float().cpu().numpy()
            )

    def redraw(self) -> None:
        _draw(self.image, self.figure())
        off = [n for n, c in self.checkboxes.items() if not c.value]
        self.status.value = (
            f"{self.trainer.steps} steps trained; losses off: {', '.join(off) or 'none'}; "
            f"last step's updates: {', '.join(k for k in (self.last_logs or [{}])[-1] if k != 'step') or '-'}"
        )

    def figure(self) -> Figure:
        """The losses of every step so far (as in chapter 3), then the shown images beside their
        reconstructions by the current model."""
        fig = Figure(figsize=(plots.WIDTH, 6.0), layout="constrained")
        grid = fig.add_gridspec(3, 1, height_ratios=[1.2, 1, 0.8])
        plots.loss_curves(
            pd.DataFrame(self.history), window=1, axes=[fig.add_subplot(grid[0]), fig.add_subplot(grid[1])]
        )
        plots.reconstructions(self.shown, self.reconstructions(), title="", ax=fig.add_subplot(grid[2]))
        return fig

    static = figure  # the current state; the default until a control is changed


# -------------------------------------------------------------- (c) latent explorer
class LatentExplorer(_Shown):
    """Move from a cluster mean along a direction by a radius; see the decoded image and the
    distance in shell radii sqrt(latent_dim), against the negative radius (`trainer.radius`)."""

    def __init__(self, trainer: CVGADTrainer, n_directions: int = 8, seed: int = 0) -> None:
        self.trainer = trainer
        self.means = trainer.cvae.means.detach().cpu().numpy()
        self.latent_dim, self.negative_radius, self.shell = (
            self.means.shape[1],
            float(trainer.radius),
            shell_radius(self.means.shape[1]),
        )
        self.directions = random_directions(self.latent_dim, n_directions, seed)
        top = 1.5 * max(self.negative_radius, self.shell)
        self.cluster = W.Dropdown(
            options=[(f"mean {k}", k) for k in range(len(self.means))], value=0, description="cluster"
        )
        self.direction = W.IntSlider(value=0, min=0, max=n_directions - 1, description="direction")
        self.radius = W.FloatSlider(
            value=self.shell, min=0.0, max=top, step=top / 200, description="radius", continuous_update=False
        )
        self.marker, self.image = W.HTML(), W.Image(format="png")
        for control in (self.cluster, self.direction, self.radius):
            control.observe(lambda _: self.update(), names="value")
        self.widget = W.VBox([W.HBox([self.cluster, self.direction, self.radius]), self.marker, self.image])
        self.update()

    def code(self) -> np.ndarray:
        return latent_point(self.means[self.cluster.value], self.directions[self.direction.value], self.radius.value)

    @torch.no_grad()
    def decode(self, z: np.ndarray) -> np.ndarray:
        """The decoder's image of code `z` (batchnorm in eval mode, as at scoring time)."""
        with eval_mode(self.trainer.cvae):
            image = self.trainer.cvae.decoder(torch.as_tensor(z, dtype=torch.float32, device=self.trainer.device)[None])
        return image.float().cpu().numpy()[0].transpose(1, 2, 0).squeeze()

    def update(self) -> None:
        self.position = latent_position(self.code(), self.means, self.negative_radius)
        where = (
            "beyond the negative radius from every mean: negative codes are drawn here"
            if self.position["beyond_negative"]
            else "inside the negative radius of a mean: normal codes live here"
        )
        self.marker.value = (
            f"<b>{where}</b><br>distance to the nearest mean ({self.position['nearest_cluster']}): "
            f"{self.position['distance']:.2f} = {self.position['shells']:.2f} shell radii sqrt({self.latent_dim}); "
            f"negative radius {self.negative_radius:.2f} = {self.negative_radius / self.shell:.2f} shell radii"
        )
        _draw(self.image, self.figure())

    def figure(self) -> Figure:
        fig = Figure(figsize=(plots.WIDTH, 2.6), layout="constrained")
        img, ruler = fig.subplots(1, 2, width_ratios=[1, 2.5])
        img.imshow(self.decode(self.code()), cmap="gray", vmin=0, vmax=1)
        img.set(xticks=[], yticks=[], title=f"decoded: mean {self.cluster.value}, r = {self.radius.value:.2f}")
        r = np.linspace(0, self.radius.max, 400)
        ruler.fill_between(
            r, chi.pdf(r, self.latent_dim), color=plots.NORMAL, alpha=0.3, label="distance of normal codes (chi)"
        )
        ruler.axvline(self.shell, color=plots.NORMAL, ls=":", label=f"shell sqrt(d) = {self.shell:.2f}")
        ruler.axvline(
            self.negative_radius, color=plots.ANOMALOUS, ls="--", label=f"negative radius {self.negative_radius:.2f}"
        )
        ruler.axvline(self.position["distance"], color="black", label="this code (nearest mean)")
        ruler.set(xlabel="distance from the nearest cluster mean", ylabel="density", yticks=[])
        ruler.legend()
        return fig

    static = figure  # the current state; the default until a control is changed


# --------------------------------------------------------- (d) predict the ablation
class AblationQuiz(_Shown):
    """Rank Table 1's rows (best first) with one dropdown per place, press the button, and see
    the recorded results (or the paper's) beside the ranking, with Spearman's rho."""

    def __init__(self, results: pd.DataFrame | None = None, source: str | None = None, metric: str = "auc") -> None:
        if results is None:
            results, source = load_ablation_results(metric=metric)
        self.results, self.source, self.metric = results, source or "given table", metric
        options = [(f"{row}: {label}", row) for row, label in results["label"].items()]
        self.dropdowns = [
            W.Dropdown(options=options, value=row, description=f"#{i + 1}") for i, row in enumerate(results.index)
        ]
        self.button, self.table, self.message = W.Button(description="reveal", icon="eye"), W.HTML(), W.HTML()
        self.result: pd.DataFrame | None = None  # set by reveal()
        self.rho: float | None = None
        self.button.on_click(lambda _: self.reveal())
        self.widget = W.VBox(
            [W.HTML("Rank the rows, best first:"), *self.dropdowns, self.button, self.message, self.table]
        )

    def order(self) -> list[str]:
        return [d.value for d in self.dropdowns]

    def reveal(self) -> None:
        try:
            self.result, self.rho = agreement_table(self.order(), self.results["value"])
        except ValueError as err:
            self.result, self.rho, self.table.value, self.message.value = None, None, "", f"<b>{err}</b>"
            return
        self.message.value = f"Spearman's rho {self.rho:.2f} (1: same order, -1: reversed). Source: {self.source}"
        self.table.value = self.result.join(self.results["label"]).to_html(float_format="%.3f")

    def fallback(self) -> tuple[dict, dict]:
        """The question without its answer: the rows to rank, not their results."""
        rows = self.results[["label"]].to_html()
        return {"text/html": f"<p>Rank these rows of Table 1, best first (the quiz needs ipywidgets):</p>{rows}"}, {}

    def ranked(self) -> pd.DataFrame:
        """The answer: the rows ranked by the recorded (or paper's) values, best first."""
        table = self.results.assign(rank=self.results["value"].rank(ascending=False, method="min").astype(int))
        return table.sort_values("rank").rename(columns={"value": self.metric})
