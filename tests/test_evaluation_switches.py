"""How a trained model is scored: the switches between this project's evaluation and the
authors' released code's (batchnorm statistics, test order, score terms)."""

import io
import json

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image

from cvgad.cli import main
from cvgad.model import losses as L
from cvgad.model import scoring as S
from cvgad.model.config import EvalConfig, ExperimentConfig, ModelConfig, TrainConfig
from cvgad.model.networks import CVAE, eval_mode

TINY = ModelConfig(channels=1, latent_dim=8, n_clusters=3, width=4)


def _model() -> CVAE:
    torch.manual_seed(0)
    model = CVAE(TINY)
    with torch.no_grad():  # running statistics away from their initial 0 and 1
        model.train()
        model.encoder(torch.rand(16, 1, 32, 32))
        model.decoder(torch.randn(16, 8))
    return model


def _images(n: int = 10, seed: int = 0) -> torch.Tensor:
    return torch.randint(0, 256, (n, 1, 32, 32), dtype=torch.uint8, generator=torch.Generator().manual_seed(seed))


def test_scoring_with_batch_statistics_leaves_weights_and_running_statistics_unchanged():
    model = _model()
    model.eval()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    train_mode = S.model_errors(model, _images(), EvalConfig(bn_at_test="train", score_batch_size=4))
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())  # num_batches_tracked too
    assert not model.training  # the mode it had
    running = S.model_errors(model, _images(), EvalConfig(score_batch_size=4))
    assert not np.allclose(train_mode.l1, running.l1)  # the batch statistics did normalise


def test_normals_first_puts_every_normal_image_before_every_anomaly_in_index_order():
    labels = np.array([1, 0, 1, 0, 0, 1])
    assert S.scoring_order(labels, "normals_first").tolist() == [1, 3, 4, 0, 2, 5]
    shuffled = S.scoring_order(labels, "shuffled", seed=3)
    assert (
        sorted(shuffled.tolist()) == list(range(6))
        and shuffled.tolist() == S.scoring_order(labels, "shuffled", 3).tolist()
    )


def test_with_batch_statistics_each_batch_is_the_images_scored_together_in_that_order():
    model, images = _model(), _images(6)
    order = np.array([1, 3, 4, 0, 2, 5])
    errors = S.model_errors(model, images, EvalConfig(bn_at_test="train", score_batch_size=3), order)
    model.train()
    by_hand = np.empty(6)
    with torch.no_grad():
        for batch in (order[:3], order[3:]):
            x = images[torch.as_tensor(batch)].float() / 255
            by_hand[batch] = L.l1_per_sample(x, model.decoder(model.encoder(x)[0])).numpy()
    np.testing.assert_allclose(errors.l1, by_hand, rtol=1e-5)  # rows in the images' own order
    with_running = [S.model_errors(model, images, EvalConfig(score_batch_size=3), o).l1 for o in (order, None)]
    np.testing.assert_allclose(*with_running, rtol=1e-6)  # with running statistics the order cannot matter


def test_each_score_term_is_the_value_computed_by_hand():
    model, images = _model(), _images(4)
    cfg = EvalConfig(score="ssim+logssim+l1+mi+cluster+complexity")
    errors = S.model_errors(model, images, cfg)
    x = images.float() / 255
    with torch.no_grad(), eval_mode(model):
        mu, _, features = model.encoder(x)
        recon = model.decoder(mu)
        ssim = L.ssim_per_sample(x, recon)
        mismatch = model.fd(features, mu)
        nearest = torch.stack([min((m - c).norm() for c in model.means) for m in mu])
    np.testing.assert_allclose(errors.ssim_loss, (1 - ssim).numpy(), rtol=1e-5)
    np.testing.assert_allclose(errors.log_ssim_loss, (-torch.log(ssim)).numpy(), rtol=1e-5)
    np.testing.assert_allclose(errors.l1, (x - recon).abs().mean(dim=(1, 2, 3)).numpy(), rtol=1e-5)
    np.testing.assert_allclose(errors.mi, mismatch.numpy(), rtol=1e-5)
    np.testing.assert_allclose(errors.cluster, nearest.numpy(), rtol=1e-5)
    png = io.BytesIO()
    Image.fromarray(images[0, 0].numpy()).save(png, format="PNG")
    assert errors.complexity[0] == pytest.approx(8 * len(png.getvalue()) / 1024)


def test_input_complexity_is_subtracted_and_a_flat_image_is_simpler_than_noise():
    flat = torch.full((1, 1, 32, 32), 128, dtype=torch.uint8)
    bits = S.png_bits_per_dimension(torch.cat([flat, _images(1)]))
    assert bits[0] < 1 < 7 < bits[1]  # PNG headers alone are ~0.6 bits per pixel; noise does not compress
    errors = S.Errors(l1=np.array([0.0, 1.0, 2.0]), complexity=np.array([4.0, 0.0, 2.0]))
    np.testing.assert_allclose(S.anomaly_score(errors), [0 - 1, 0.5 - 0, 1 - 0.5])


def test_unknown_switches_name_the_valid_values():
    with pytest.raises(ValueError, match="bn_at_test='batch' is not valid; choose one of 'eval', 'train'"):
        EvalConfig(bn_at_test="batch")
    with pytest.raises(ValueError, match="test_order='sorted' is not valid"):
        EvalConfig(test_order="sorted")
    with pytest.raises(ValueError, match="term 'psnr' is not valid; join terms of ssim, logssim, l1, mi"):
        EvalConfig(score="ssim+psnr")
    with pytest.raises(ValueError, match="model 'ae' cannot score with 'ssim\\+mi'; its terms: ssim, logssim, l1"):
        ExperimentConfig(model=ModelConfig(model="ae"), evaluation=EvalConfig(score="ssim+mi"))


def test_train_with_the_released_codes_evaluation_then_rescore_without_retraining(tmp_path, capsys):
    out = tmp_path / "run"
    tiny = ["--dataset", "digits", "--epochs", "1", "--width", "8", "--latent-dim", "16", "--train-subset", "200"]
    released = ["--bn-at-test", "train", "--test-order", "normals_first", "--score", "ssim+l1+mi"]
    assert main(["train", *tiny, *released, "--out", str(out), "--quiet"]) == 0
    trained = json.loads((out / "metrics.json").read_text())
    assert json.loads((out / "config.json").read_text())["evaluation"]["score"] == "ssim+l1+mi"
    assert main(["evaluate", str(out)]) == 0  # the run's own settings: the same numbers
    assert json.loads((out / "evaluation.json").read_text())["auc"] == pytest.approx(trained["auc"], abs=1e-6)
    assert main(["evaluate", str(out), "--bn-at-test", "eval", "--score", "ssim+l1"]) == 0
    rescored = json.loads((out / "evaluation-bn_at_test-eval_score-ssimpl1.json").read_text())
    assert rescored["evaluation"]["bn_at_test"] == "eval" and rescored["auc"] != trained["auc"]
    assert main(["evaluate", str(out), "--score", "ssim+psnr"]) == 2
    assert "term 'psnr' is not valid" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exit_:  # argparse refuses a value outside the choices
        main(["train", *tiny, "--bn-at-test", "batch", "--quiet"])
    assert exit_.value.code == 2 and "invalid choice: 'batch' (choose from 'eval', 'train')" in capsys.readouterr().err


# ----------------------------------------------------------------- which epoch is reported
def _run_with(select: str, out):
    from cvgad.experiment.experiment import run_experiment
    from cvgad.experiment.params import make_config

    cfg = make_config(dataset="digits", epochs=3, width=8, latent_dim=16, train_subset=200, select=select)
    return run_experiment(cfg, out_dir=out, progress=False)


def test_best_on_test_is_the_maximum_of_the_recorded_curve_and_is_labelled_an_oracle(tmp_path):
    result = _run_with("best_test", tmp_path)
    curves = pd.read_csv(tmp_path / "curves.csv")
    assert curves["epoch"].tolist() == [1, 2, 3]
    best = curves.loc[curves["auc"].idxmax()]
    assert result.metrics["selected_epoch"] == best["epoch"]
    assert result.metrics["auc"] == pytest.approx(best["auc"], abs=1e-9)  # the kept weights, scored again
    selection = result.metrics["selection"]
    assert set(selection) == {"last", "val", "best_test_oracle"}
    assert selection["last"]["auc"] == pytest.approx(curves["auc"].iloc[-1])
    assert selection["best_test_oracle"]["auc"] == curves["auc"].max()
    assert 0 < result.metrics["scoring_share_of_training"] < 1


def test_validation_selection_picks_the_lowest_validation_error_without_the_test_labels(tmp_path):
    result = _run_with("val", tmp_path)
    curves = pd.read_csv(tmp_path / "curves.csv")
    picked = curves.loc[curves["val_error"].idxmin()]
    assert result.metrics["selected_epoch"] == picked["epoch"]
    assert result.metrics["auc"] == pytest.approx(picked["auc"], abs=1e-9)


def test_the_last_epoch_is_the_default_and_costs_no_scoring_per_epoch(tmp_path):
    result = _run_with("last", tmp_path)
    assert "selection" not in result.metrics and not (tmp_path / "curves.csv").exists()
    with pytest.raises(ValueError, match="select='best' is not valid; choose one of 'last', 'val', 'best_test'"):
        TrainConfig(select="best")


def test_a_killed_run_resumes_with_its_curve_and_the_weights_each_rule_kept(tmp_path, monkeypatch):
    from cvgad.model.algorithm1 import CVGADTrainer

    whole = _run_with("best_test", tmp_path / "whole")
    per_epoch, step = len(whole.history) // 3, CVGADTrainer.step

    def dies_in_epoch_3(self, x):
        if self.steps == 2 * per_epoch + 1:
            raise KeyboardInterrupt
        return step(self, x)

    monkeypatch.setattr(CVGADTrainer, "step", dies_in_epoch_3)
    with pytest.raises(KeyboardInterrupt):
        _run_with("best_test", tmp_path / "killed")
    assert pd.read_csv(tmp_path / "killed" / "curves.csv")["epoch"].tolist() == [1, 2]
    monkeypatch.setattr(CVGADTrainer, "step", step)
    resumed = _run_with("best_test", tmp_path / "killed")
    pd.testing.assert_frame_equal(
        pd.read_csv(tmp_path / "killed" / "curves.csv").drop(columns=["train_seconds", "score_seconds"]),
        pd.read_csv(tmp_path / "whole" / "curves.csv").drop(columns=["train_seconds", "score_seconds"]),
    )
    assert resumed.metrics["selected_epoch"] == whole.metrics["selected_epoch"]
    assert resumed.metrics["auc"] == pytest.approx(whole.metrics["auc"], abs=1e-9)


def test_a_new_run_in_an_old_run_folder_starts_its_selection_afresh(tmp_path):
    from cvgad.experiment.experiment import run_experiment
    from cvgad.experiment.params import make_config

    _run_with("best_test", tmp_path)
    cfg = make_config(dataset="digits", epochs=2, width=8, latent_dim=16, train_subset=200, select="best_test")
    again = run_experiment(cfg, out_dir=tmp_path, progress=False)
    assert pd.read_csv(tmp_path / "curves.csv")["epoch"].tolist() == [1, 2]
    assert again.metrics["selection"]["last"]["epoch"] == 2 and not (tmp_path / "select.pt").exists()


def test_a_run_recorded_before_the_logvar_and_gate_switches_loads_as_it_was_trained(tmp_path):
    from cvgad.experiment import runs

    cfg = ExperimentConfig(model=ModelConfig(latent_dim=8, width=4), train=TrainConfig(epochs=0))
    old = cfg.to_dict()
    del old["model"]["logvar"], old["train"]["losses"]["negative_gate"]  # as written before them
    (tmp_path / runs.CONFIG).write_text(json.dumps(old))
    torch.save({}, tmp_path / runs.CHECKPOINT)
    loaded, _ = runs.load(tmp_path, "cpu")
    assert loaded.model.logvar == "linear" and loaded.train.losses.negative_gate == "absolute"
