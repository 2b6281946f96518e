"""Algorithm 1, as the trainer performs it."""

import json

import pytest
import torch

from cvgad.model.algorithm1 import CYCLE, UPDATES, CVGADTrainer, applied
from cvgad.model.config import LossConfig, ModelConfig, TrainConfig
from cvgad.model.networks import CodeToMap
from cvgad.model.training import NonFiniteLossError

TINY = ModelConfig(channels=1, latent_dim=8, n_clusters=2, width=4)


def _trainer(**losses) -> CVGADTrainer:
    return CVGADTrainer(TINY, TrainConfig(batch_size=8, device="cpu", seed=0, losses=LossConfig(**losses)))


def _updates(log: dict) -> list[str]:
    """The updates a step made: the negative one only where its gate was open."""
    return [k for k in applied(log) if k in UPDATES]


def _batch(seed: int = 0) -> torch.Tensor:
    return torch.rand(8, 1, 32, 32, generator=torch.Generator().manual_seed(seed))


FULL = ["critic", "recon", "latent", "negative", "mi", "recon_2"]


def test_twelve_steps_follow_algorithm_1_in_order():
    t = _trainer(negative_gate="absolute", negative_threshold=1e9)  # gate always open
    seen = [_updates(t.step(_batch(i))) for i in range(12)]
    expected = [FULL] * 4 + [["critic"], ["generator"]]
    assert seen == expected * 2
    assert t.count == 0 and t.steps == 12


def _cvae_steps(t: CVGADTrainer) -> int:
    """Adam steps taken on the encoder's first convolution (every CVAE update reaches it)."""
    return int(t.opt_cvae.state[next(t.cvae.encoder.parameters())]["step"])


def test_a_cycle_updates_the_cvae_once_per_loss_each_at_counters_0_to_3_and_once_as_generator():
    t = _trainer(negative_gate="absolute", negative_threshold=1e9)  # gate always open
    for i in range(CYCLE):
        t.step(_batch(i))
    assert _cvae_steps(t) == 4 * 5 + 1  # recon, latent, negative, MI, recon again; the generator's


def test_negative_training_waits_for_the_latent_loss_to_fall_below_t():
    t = _trainer(negative_gate="absolute", negative_threshold=1e-9)  # gate never opens
    assert _updates(t.step(_batch())) == ["critic", "recon", "latent", "mi", "recon_2"]
    assert "negative" not in t.history_frame()  # the history keeps applied updates only


def test_the_gate_applies_the_negative_update_exactly_when_the_latent_loss_is_below_t():
    # 0.17 nats per dimension: this tiny model's latent loss crosses it
    t = _trainer(negative_gate="absolute", negative_threshold=0.17)
    cvae, seen = t.cvae, []
    update = t._negative_update

    def watched(x, latent, log):
        before = [p.detach().clone() for p in cvae.parameters()]
        update(x, latent, log)
        seen.append(any(not torch.equal(a, p) for a, p in zip(before, cvae.parameters(), strict=True)))

    t._negative_update = watched
    logs = [t.step(_batch(i)) for i in range(24)]
    below = [bool(log["latent"] < t.threshold) for log in logs if "latent" in log]
    assert seen == below and True in below and False in below  # both sides of T were met
    # the encoder's Adam steps: 4 updates per counter-0-3 batch, 1 per generator batch, and the
    # applied negative updates; a skipped one leaves no step behind
    steps = t.opt_cvae.state[cvae.encoder.mu.weight]["step"]
    assert steps.item() == 4 * len(below) + 24 // CYCLE + sum(below)


@pytest.mark.parametrize("gate", ["absolute", "first_epoch"])
def test_a_training_step_never_waits_for_the_device(gate):
    """.item(), float() or bool() of a tensor is the op _local_scalar_dense: a host synchronisation on CUDA."""
    from torch.utils._python_dispatch import TorchDispatchMode

    class Syncs(TorchDispatchMode):
        found: list[str] = []

        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            if func in (torch.ops.aten._local_scalar_dense.default, torch.ops.aten.nonzero.default):
                self.found.append(str(func))
            return func(*args, **(kwargs or {}))

    t = _trainer(negative_gate=gate, negative_threshold=0.5)  # first_epoch: sums the latent loss on the device
    with Syncs() as mode:
        for i in range(2 * CYCLE):  # fewer steps than FINITE_CHECK_EVERY: no flush of the losses
            t.step(_batch(i))
    assert mode.found == []


@pytest.mark.parametrize(
    "loss, removed",
    [
        ("mi", {"mi"}),
        ("latent", {"latent"}),
        ("negative", {"negative"}),
        ("wasserstein", {"critic", "generator"}),
    ],
)
def test_switching_a_loss_off_removes_its_update(loss, removed):
    t = _trainer(negative_gate="absolute", negative_threshold=1e9, disabled=(loss,))
    seen = [u for i in range(CYCLE) for u in _updates(t.step(_batch(i)))]
    reference = _trainer(negative_gate="absolute", negative_threshold=1e9)
    full = [u for i in range(CYCLE) for u in _updates(reference.step(_batch(i)))]
    assert set(full) - set(seen) == removed
    assert [u for u in full if u not in removed] == seen


def test_switching_off_ssim_keeps_l1_and_both_off_removes_reconstruction_updates():
    x = _batch()
    only_l1 = _trainer(disabled=("ssim",)).step(x)
    torch.manual_seed(0)
    assert "recon" in only_l1
    none = _trainer(disabled=("ssim", "l1")).step(x)
    assert "recon" not in none and "recon_2" not in none


def test_training_on_a_tiny_dataset_lowers_the_reconstruction_loss():
    torch.manual_seed(0)
    images = (torch.rand(2, 1, 32, 32) > 0.5).float().repeat(8, 1, 1, 1)  # two patterns, 16 images
    t = _trainer()
    history = t.fit(images, epochs=12, progress=False)
    recon = history["recon"].dropna()
    assert recon.tail(4).mean() < 0.8 * recon.head(4).mean()


def test_same_seed_same_history_on_cpu():
    images = torch.rand(16, 1, 32, 32, generator=torch.Generator().manual_seed(1))
    a = _trainer().fit(images, epochs=2, progress=False)
    b = _trainer().fit(images, epochs=2, progress=False)
    assert a.equals(b)


def test_a_non_finite_loss_stops_training_and_names_loss_and_step():
    t = _trainer()
    x = _batch()
    x[0, 0, 0, 0] = float("nan")
    with pytest.raises(NonFiniteLossError, match=r"loss '\w+' became nan at step 0"):
        t.step(x)
        t.history_frame()


def test_uint8_images_are_scaled_to_unit_range():
    t = _trainer()
    log = t.step((_batch() * 255).to(torch.uint8))
    assert torch.isfinite(log["recon"])


def test_checkpoint_round_trip_with_weights_only(tmp_path):
    t = _trainer()
    t.step(_batch())
    torch.save(t.state_dict(), tmp_path / "c.pt")
    (tmp_path / "c.json").write_text(json.dumps({"width": TINY.width}))
    u = _trainer()
    u.load_state_dict(torch.load(tmp_path / "c.pt", weights_only=True))
    for (k, v), w in zip(t.cvae.state_dict().items(), u.cvae.state_dict().values(), strict=True):
        assert torch.equal(v, w), k


def test_auto_device_is_cpu_without_cuda_and_unknown_device_is_refused():
    if not torch.cuda.is_available():
        assert _trainer().device.type == "cpu"
        with pytest.raises(ValueError, match="CUDA is not available"):
            CVGADTrainer(TINY, TrainConfig(device="cuda"))
    with pytest.raises(ValueError, match="device='tpu'"):
        TrainConfig(device="tpu")


def test_a_run_stopped_after_an_epoch_resumes_to_the_same_result(tmp_path):
    images = torch.rand(16, 1, 32, 32, generator=torch.Generator().manual_seed(2))
    whole = _trainer().fit(images, epochs=3, progress=False)
    first = _trainer()
    first.fit(images, epochs=1, progress=False, resume=tmp_path / "resume.pt")  # then "killed"
    resumed = _trainer()
    history = resumed.fit(images, epochs=3, progress=False, resume=tmp_path / "resume.pt")
    assert history.equals(whole)


def test_a_resumed_run_counts_the_time_its_earlier_process_spent(tmp_path):
    images = torch.rand(16, 1, 32, 32, generator=torch.Generator().manual_seed(2))
    first = _trainer()
    assert first.earlier == {"processes": 0, "wall_seconds": 0.0, "cpu_seconds": 0.0}
    first.fit(images, epochs=1, progress=False, resume=tmp_path / "resume.pt")  # then "killed"
    saved = torch.load(tmp_path / "resume.pt", weights_only=True)["earlier"]
    assert saved["processes"] == 1 and saved["wall_seconds"] > 0 and saved["cpu_seconds"] > 0
    resumed = _trainer()
    resumed.fit(images, epochs=2, progress=False, resume=tmp_path / "resume.pt")
    assert resumed.earlier == saved  # the first process, up to its last saved epoch
    spent = resumed.spent()
    assert spent["processes"] == 2 and spent["wall_seconds"] > saved["wall_seconds"]


def test_a_resume_file_from_before_the_time_record_says_the_earlier_time_is_unknown(tmp_path):
    images = torch.rand(16, 1, 32, 32, generator=torch.Generator().manual_seed(2))
    _trainer().fit(images, epochs=1, progress=False, resume=tmp_path / "resume.pt")
    state = torch.load(tmp_path / "resume.pt", weights_only=True)
    del state["earlier"]  # as written before the time record existed
    torch.save(state, tmp_path / "resume.pt")
    resumed = _trainer()
    resumed.fit(images, epochs=2, progress=False, resume=tmp_path / "resume.pt")
    assert resumed.spent() == {"processes": 2, "wall_seconds": None, "cpu_seconds": None}


# ------------------------------------------------------------- speed that keeps the maths
def test_the_decoders_first_layer_is_the_transposed_convolution_it_computes_as_a_matmul():
    layer = CodeToMap(8, 5)
    z = torch.randn(3, 8, 1, 1)
    expected = torch.nn.functional.conv_transpose2d(z, layer.weight)
    assert torch.allclose(layer(z), expected, atol=1e-6)
    layer.to(memory_format=torch.channels_last)
    assert torch.allclose(layer(z), expected, atol=1e-6)
    assert isinstance(layer, torch.nn.ConvTranspose2d)  # same parameter and name: old checkpoints load


def test_channels_last_changes_the_layout_not_the_losses():
    runs = {}
    for fmt in ("contiguous", "channels_last"):
        t = CVGADTrainer(TINY, TrainConfig(batch_size=8, device="cpu", seed=0, memory_format=fmt))
        runs[fmt] = [t.step(_batch(i)) for i in range(CYCLE)]
    assert t.cvae.encoder.features[0].weight.is_contiguous(memory_format=torch.channels_last)
    for a, b in zip(runs["contiguous"], runs["channels_last"], strict=True):
        assert a.keys() == b.keys()
        # the layouts use different convolution kernels: equal up to float32 rounding
        assert all(torch.allclose(a[k], b[k], rtol=1e-4, atol=1e-4) for k in a)


def test_fused_adam_takes_the_steps_of_adam():
    torch.manual_seed(0)
    a = torch.nn.Parameter(torch.randn(4, 3))
    b = torch.nn.Parameter(a.detach().clone())
    opt_a = torch.optim.Adam([a], lr=1e-3, betas=(0.5, 0.999))
    opt_b = _trainer()._adam(torch.nn.Linear(1, 1))  # the trainer's kind of Adam, given b below
    opt_b = type(opt_b)([b], **opt_b.defaults)
    assert opt_b.defaults["fused"]
    for step in range(5):
        grad = torch.randn(4, 3, generator=torch.Generator().manual_seed(step))
        a.grad, b.grad = grad.clone(), grad.clone()
        opt_a.step()
        opt_b.step()
    assert torch.allclose(a, b, atol=1e-6)


def test_negative_codes_that_cannot_be_drawn_beyond_the_radius_stop_training_clearly():
    t = _trainer(negative_gate="absolute", negative_threshold=1e9, negative_radius="literal")  # draws z ~ N(mu_y, I)
    t.radius = 1e6  # no such draw lies this far from every mean
    t.step(_batch())
    with pytest.raises(RuntimeError, match="could not draw negative codes farther than radius"):
        t.history_frame()


def test_codes_a_closed_gate_does_not_use_cannot_stop_training():
    t = _trainer(negative_gate="absolute", negative_threshold=1e-9, negative_radius="literal")  # the gate never opens
    t.radius = 1e6
    t.step(_batch())
    assert "negative" not in t.history_frame()


def test_a_resume_file_without_the_negative_stream_warns_and_restarts_that_stream(tmp_path):
    images = torch.rand(16, 1, 32, 32, generator=torch.Generator().manual_seed(1))
    _trainer().fit(images, epochs=1, progress=False, resume=tmp_path / "resume.pt")
    state = torch.load(tmp_path / "resume.pt", weights_only=True)
    del state["negative_rng"], state["negative_rng_device"]  # as written before the stream existed
    torch.save(state, tmp_path / "resume.pt")
    with pytest.warns(UserWarning, match="no negative random state for cpu"):
        _trainer().fit(images, epochs=2, progress=False, resume=tmp_path / "resume.pt")


# ------------------------------------------------------------- the gate T (II.E, III.C)
def test_the_first_epoch_gate_stays_shut_then_opens_below_a_share_of_that_epochs_latent_loss():
    """T = negative_threshold x the first epoch's mean latent loss; no negatives before it is known."""
    images = torch.rand(32, 1, 32, 32, generator=torch.Generator().manual_seed(3))
    t = _trainer(negative_gate="first_epoch", negative_threshold=2.0)  # 2x: opens once T is known
    history = t.fit(images, epochs=1, progress=False)
    assert "negative" not in history  # shut throughout the first epoch: T is not known yet
    first = history["latent"].dropna()
    assert len(first) == 4  # 4 batches of 8, all counters 0-3
    assert t.latent_reference == pytest.approx(first.mean(), rel=1e-6)
    assert t.threshold == pytest.approx(2.0 * first.mean(), rel=1e-6)
    history = t.fit(images, epochs=2, progress=False)
    second = history[history["step"] >= 4]
    opened = second["negative"].notna()
    assert (opened == (second["latent"] < t.threshold)).all() and opened.any()


def test_the_absolute_gate_at_one_nat_per_dimension_was_open_from_the_first_batch():
    t = _trainer(negative_gate="absolute", negative_threshold=1.0)  # the old default
    assert "negative" in applied(t.step(_batch()))


def test_the_gates_reference_survives_a_resume(tmp_path):
    images = torch.rand(32, 1, 32, 32, generator=torch.Generator().manual_seed(4))
    gate = {"negative_gate": "first_epoch", "negative_threshold": 2.0}
    whole = _trainer(**gate)
    expected = whole.fit(images, epochs=2, progress=False)
    assert "negative" in expected  # the gate opened in the second epoch: its reference mattered
    _trainer(**gate).fit(images, epochs=1, progress=False, resume=tmp_path / "resume.pt")  # then "killed"
    resumed = _trainer(**gate)
    history = resumed.fit(images, epochs=2, progress=False, resume=tmp_path / "resume.pt")
    assert resumed.latent_reference == whole.latent_reference and history.equals(expected)


def test_means_lr_gives_the_cluster_means_their_own_learning_rate():
    cfg = TrainConfig(batch_size=8, device="cpu", seed=0, lr=1e-3, means_lr=3e-2)
    trainer = CVGADTrainer(TINY, cfg)
    rates = {id(p): group["lr"] for group in trainer.opt_cvae.param_groups for p in group["params"]}
    assert rates[id(trainer.cvae.means)] == 3e-2
    assert {lr for key, lr in rates.items() if key != id(trainer.cvae.means)} == {1e-3}
    assert len(rates) == len(list(trainer.cvae.parameters()))  # every parameter in exactly one group
    plain = CVGADTrainer(TINY, TrainConfig(batch_size=8, device="cpu", seed=0))
    assert {g["lr"] for g in plain.opt_cvae.param_groups} == {1e-3}


def test_means_lr_must_be_positive():
    with pytest.raises(ValueError, match="means_lr=0"):
        TrainConfig(means_lr=0)


def test_the_generator_update_gives_the_critic_no_gradient():
    t = _trainer()
    for i in range(5):  # counters 0-4; the last is a critic update
        t.step(_batch(i))
    grads = [p.grad.clone() for p in t.critic.parameters()]
    assert t.count == 5 and "generator" in t.step(_batch(5))
    assert all(torch.equal(g, p.grad) for g, p in zip(grads, t.critic.parameters(), strict=True))
    assert all(p.requires_grad for p in t.critic.parameters())


@pytest.mark.parametrize(
    ("every", "weights"), [(1, [10.0] * 10), (2, [20.0, 0.0] * 5), (3, [30.0, 0.0, 0.0] * 3 + [30.0])]
)
def test_the_penalty_comes_in_every_kth_critic_update_weighted_k(monkeypatch, every, weights):
    import cvgad.model.algorithm1 as algorithm1

    seen, critic_loss = [], algorithm1.L.critic_loss
    monkeypatch.setattr(algorithm1.L, "critic_loss", lambda c, x, f, w: seen.append(w) or critic_loss(c, x, f, w))
    t = _trainer(gradient_penalty_every=every)
    for i in range(2 * CYCLE):
        t.step(_batch(i))
    assert seen == weights  # ten critic updates in two cycles, counted across the cycles


def test_compile_compiles_the_cvaes_networks_and_leaves_the_critic_eager():
    t = CVGADTrainer(TINY, TrainConfig(batch_size=8, device="cpu", compile=True))
    cvae = t.cvae
    assert all(m._compiled_call_impl is not None for m in (cvae.encoder, cvae.decoder, cvae.classifier, cvae.fd))
    assert t.critic._compiled_call_impl is None  # the gradient penalty's double backward stays eager
