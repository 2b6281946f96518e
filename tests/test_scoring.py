"""The anomaly score of II.F and the metrics of III.B, by hand."""

import numpy as np
import pytest
import torch

from cvgad.model import scoring as S
from cvgad.model.config import EvalConfig, ModelConfig
from cvgad.model.networks import CVAE, as_float_images, eval_mode


def test_score_is_the_sum_of_min_max_normalised_components():
    e = S.Errors(ssim_loss=np.array([0.1, 0.3, 0.5]), l1=np.array([2.0, 1.0, 3.0]))
    # ssim -> 0, 0.5, 1 ; l1 -> 0.5, 0, 1
    assert np.allclose(S.anomaly_score(e), [0.5, 0.5, 2.0])
    ref = S.Errors(ssim_loss=np.array([0.1, 0.2]), l1=np.array([1.0, 2.0]))
    assert np.allclose(S.anomaly_score(e, reference=ref), [0.0 + 1.0, 2.0 + 0.0, 4.0 + 2.0])


def test_f1_floor_is_2p_over_1_plus_p():
    labels = np.array([1] * 6000 + [0] * 10800)  # CIFAR-10 leave-one-out test set
    assert S.f1_floor(labels) == pytest.approx(0.526, abs=1e-3)


def test_best_f1_and_f1_at_threshold_by_hand():
    labels = np.array([0, 0, 1, 1, 0, 1])
    scores = np.array([0.1, 0.2, 0.3, 0.9, 0.8, 0.7])
    # threshold 0.7 flags {0.9, 0.8, 0.7}: tp 2, fp 1 -> P 2/3, R 2/3, F1 2/3
    assert S.f1_at(labels, scores, 0.7) == pytest.approx({"precision": 2 / 3, "recall": 2 / 3, "f1": 2 / 3})
    # threshold 0.3 flags 4 with all 3 anomalies: P 3/4, R 1 -> F1 6/7, the best
    f1, threshold = S.best_f1(labels, scores)
    assert f1 == pytest.approx(6 / 7) and threshold == pytest.approx(0.3)


def test_confusion_at_by_hand():
    scores, labels = np.array([0.1, 0.4, 0.35, 0.8]), np.array([0, 0, 1, 1])
    s = S.confusion_at(scores, labels, 0.35)  # flags 0.4 (normal), 0.35 and 0.8 (anomalies)
    assert (s["tp"], s["fp"], s["tn"], s["fn"], s["flagged"]) == (2, 1, 1, 0, 3)
    assert s["precision"] == pytest.approx(2 / 3) and s["recall"] == 1.0 and s["fpr"] == 0.5
    assert s["f1"] == pytest.approx(0.8)  # 2 * (2/3) * 1 / (2/3 + 1)
    assert S.f1_at(labels, scores, 0.35) == {k: s[k] for k in ("precision", "recall", "f1")}


def test_confusion_at_flagging_nothing_or_everything():
    scores, labels = np.array([0.1, 0.2, 0.9]), np.array([0, 1, 1])
    none = S.confusion_at(scores, labels, 1.0)
    assert (none["flagged"], none["precision"], none["recall"], none["f1"]) == (0, 0.0, 0.0, 0.0)
    every = S.confusion_at(scores, labels, 0.0)
    assert every["f1"] == pytest.approx(S.f1_floor(labels))  # the F1 floor 2p/(1+p), p = 2/3
    assert every["fpr"] == 1.0


#: GPND's validation set: 4 normals and 2 outliers (a third, as in the test set), and a test set.
VAL_LABELS, VAL_SCORES = np.array([0, 0, 0, 0, 1, 1]), np.array([0.1, 0.2, 0.3, 0.5, 0.4, 0.9])
TEST_LABELS, TEST_SCORES = np.array([0, 0, 0, 1, 1]), np.array([0.2, 0.45, 0.6, 0.5, 0.95])


def test_gpnd_f1_takes_inliers_as_positive_at_the_threshold_best_on_validation_by_hand():
    # Inliers are those scoring at most t. On validation: t 0.3 -> tp 3, fp 0, fn 1 -> F1 6/7 = 0.857;
    # t 0.4 -> tp 3, fp 1 -> 0.75; t 0.5 -> tp 4, fp 1 -> P 4/5, R 1 -> F1 8/9 = 0.889, the best;
    # t 0.9 -> tp 4, fp 2 -> 0.8. On test at t 0.5: inliers 0.2, 0.45 (right) and the anomaly at
    # 0.5 (wrong); the normal at 0.6 missed -> P 2/3, R 2/3, F1 2/3.
    f1, threshold = S.gpnd_f1(VAL_LABELS, VAL_SCORES, TEST_LABELS, TEST_SCORES)
    assert threshold == pytest.approx(0.5) and f1 == pytest.approx(2 / 3)
    # Anomalies positive at the same threshold flag 0.6 and 0.95: tp 1, fp 1, fn 1 -> F1 1/2.
    assert S.f1_at(TEST_LABELS, TEST_SCORES, np.nextafter(0.5, 1))["f1"] == pytest.approx(1 / 2)


def test_evaluate_adds_gpnd_f1_only_with_validation_outliers():
    normals, outliers = S.Errors(l1=VAL_SCORES[:4]), S.Errors(l1=VAL_SCORES[4:])
    m = S.evaluate(S.Errors(l1=TEST_SCORES), TEST_LABELS, normals, outliers).metrics
    # the score is L1 min-max normalised by the validation set (0.1 -> 0, 0.9 -> 1): t (0.5 - 0.1) / 0.8
    assert m["f1_gpnd"] == pytest.approx(2 / 3) and m["threshold_gpnd"] == pytest.approx(0.5)
    assert m["f1_gpnd_floor"] == pytest.approx(0.75)  # 3 inliers of 5 all called inliers: P 3/5, R 1
    assert "f1_gpnd" not in S.evaluate(S.Errors(l1=TEST_SCORES), TEST_LABELS, normals).metrics


def test_evaluate_reports_auc_floors_and_a_reversed_score_is_below_half():
    rng = np.random.default_rng(0)
    labels = np.array([0] * 50 + [1] * 50)
    good = S.Errors(ssim_loss=labels + 0.1 * rng.random(100), l1=labels + 0.1 * rng.random(100))
    val = S.Errors(ssim_loss=0.1 * rng.random(20), l1=0.1 * rng.random(20))
    m = S.evaluate(good, labels, val).metrics
    assert m["auc"] == 1.0 and m["f1_best"] == 1.0 and m["f1_floor"] == pytest.approx(2 / 3)
    assert m["recall_val"] == 1.0
    reversed_ = S.Errors(ssim_loss=-good.ssim_loss, l1=-good.l1)
    assert S.evaluate(reversed_, labels, val).metrics["auc"] == 0.0
    with pytest.raises(ValueError, match="both normal"):
        S.evaluate(good, np.zeros(100), val)


def test_model_errors_use_eval_mode_and_restore_training_mode():
    torch.manual_seed(0)
    cvae = CVAE(ModelConfig(channels=1, latent_dim=8, n_clusters=2, width=4)).train()
    images = (torch.rand(5, 1, 32, 32) * 255).to(torch.uint8)
    a = S.model_errors(cvae, images, EvalConfig(score_batch_size=2))
    b = S.model_errors(cvae, images, EvalConfig(score_batch_size=5))
    assert cvae.training and len(a) == 5
    assert np.allclose(a.l1, b.l1, atol=1e-6)  # eval-mode batchnorm: independent of batching
    assert ((a.ssim_loss >= 0) & (a.ssim_loss <= 2)).all()


def test_eval_mode_restores_the_training_mode_even_on_an_error():
    cvae = CVAE(ModelConfig(channels=1, latent_dim=8, n_clusters=2, width=4)).train()
    with eval_mode(cvae) as model:
        assert model is cvae and not cvae.training and not cvae.encoder.features[1].training
    assert cvae.training and cvae.encoder.features[1].training
    with pytest.raises(RuntimeError), eval_mode(cvae):
        raise RuntimeError("stop")
    assert cvae.training
    with eval_mode(cvae.eval()):
        pass
    assert not cvae.training


def test_as_float_images_scales_uint8_and_keeps_float():
    x = torch.tensor([[0, 51, 255]], dtype=torch.uint8)
    assert as_float_images(x).dtype == torch.float32
    assert torch.equal(as_float_images(x), torch.tensor([[0.0, 0.2, 1.0]]))  # 51 / 255 = 0.2
    assert torch.equal(as_float_images(x.numpy()), as_float_images(x))
    y = torch.tensor([0.5, 1.5], dtype=torch.float64)
    assert torch.equal(as_float_images(y), y.float())  # float is only cast to float32, never rescaled
    same = torch.rand(3)
    assert as_float_images(same) is same  # no copy of float32 images


def test_cluster_purity():
    probs = np.array([[0.9, 0.1], [0.8, 0.2], [0.1, 0.9], [0.2, 0.8]])
    assert S.cluster_purity(probs, np.array([5, 5, 7, 7])) == {"nmi": 1.0, "ari": 1.0, "clusters_used": 2}


def test_the_summary_line_gives_each_f1_with_its_floor_and_gpnds_only_where_the_run_has_it():
    from cvgad.experiment.experiment import summary_line

    ours = {"auc": 0.81, "f1_best": 0.6, "f1_val": 0.5, "f1_floor": 0.4, "auprc": 0.7}
    assert summary_line(ours) == (
        "AUC 0.810 (chance 0.5) | F1 at best test threshold (paper's metric) 0.600 | F1 at validation "
        "threshold 0.500 (flag-everything floor 0.400) | AUPRC 0.700"
    )
    gpnd = summary_line(ours | {"f1_gpnd": 0.9, "f1_gpnd_floor": 0.889})
    assert gpnd.endswith("| F1 in GPND's convention (inliers positive, threshold from validation) 0.900 (floor 0.889)")
