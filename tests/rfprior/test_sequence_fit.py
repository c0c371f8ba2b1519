"""The joint fit of a frame sequence: one network, per-frame inputs on a path, the discrepancy rule on the total."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

import operators as ops
import rfprior
from rfprior.fit.sequence import SequenceState, reconstruct_sequence
from rfprior.metrics import psnr
from rfprior.phantoms import moving_phantom
from rfprior.priors.sequence import FramePath, default_anchors

SMALL = {"prior": "deep_decoder", "prior_kwargs": {"channels": 16, "layers": 3}}


def _sequence(size: int = 16, frames: int = 4, snr: float = 20.0, acc: float = 3.0, speed: float = 1.0):
    truth = torch.stack([moving_phantom(size, size, t, seed=1, speed=speed) for t in range(frames)]).to(torch.complex64)
    op_list = [ops.PartialFourier(ops.variable_density_mask((size, size), acc, seed=50 + t)) for t in range(frames)]
    g = torch.Generator().manual_seed(3)
    ys, sigma = [], None
    for t in range(frames):
        clean = op_list[t].forward(truth[t])
        sigma = sigma or math.sqrt(float((clean.abs() ** 2).sum()) / (2 * clean.numel() * 10 ** (snr / 10)))
        n = torch.randn((2, *clean.shape), generator=g)
        ys.append(clean + sigma * torch.complex(n[0], n[1]))
    return ys, op_list, truth, sigma


def test_frame_path_runs_through_the_anchors_in_time_order() -> None:
    z = torch.rand(1, 3, 2, 2)
    path = FramePath(z, [0.0, 1.0, 2.0, 3.0, 4.0], anchors=3, seed=0)
    x = path(range(5))
    assert x.shape == (5, 3, 2, 2) and torch.equal(x[0], z[0])
    assert torch.allclose(x[1], 0.5 * (x[0] + x[2])) and torch.allclose(x[3], 0.5 * (x[2] + x[4]))
    assert torch.equal(FramePath(z, [0, 1, 2], anchors=1)(range(3)), z.expand(3, -1, -1, -1))
    # uneven times: a frame twice as far in time is twice as far along the path (between two anchors)
    y = FramePath(z, [0.0, 1.0, 3.0], anchors=2, seed=0)(range(3))
    assert torch.allclose(y[1] - y[0], (y[2] - y[0]) / 3, atol=1e-6)
    assert default_anchors(1) == 1 and default_anchors(4) == 2 and default_anchors(32) == 4
    with pytest.raises(ValueError, match="strictly increasing"):
        FramePath(z, [0, 2, 1], anchors=2)
    with pytest.raises(ValueError, match="anchors"):
        FramePath(z, [0, 1], anchors=0)


def test_joint_fit_uses_the_other_frames_samples() -> None:
    """Per-frame masks of a slowly changing scene: the joint fit beats per-frame TV-discrepancy on average."""
    ys, op_list, truth, sigma = _sequence()
    res = rfprior.reconstruct(ys, op_list, iterations=300, truth=truth, sigma=sigma, progress=False, seed=0, **SMALL)
    assert res.image.shape == (4, 16, 16) and res.final_image.shape == (4, 16, 16)
    pairs = enumerate(zip(op_list, ys, strict=True))
    tv = [float(psnr(ops.tv_discrepancy(op, y, sigma).image, truth[t])) for t, (op, y) in pairs]
    joint = [float(psnr(res.image[t], truth[t])) for t in range(4)]
    assert np.mean(joint) > np.mean(tv) + 1.0, (joint, tv)
    assert res.image_psnr == pytest.approx(np.mean(joint), abs=1e-4)
    h = res.history
    assert h["frame_misfit"].dims == ("iteration", "frame") and h.sizes["frame"] == 4
    assert np.allclose(h["frame_misfit"].sum("frame"), h["misfit"])
    assert res.settings["sequence"]["frames"] == 4
    assert res.rule_summaries["discrepancy"]["M"] == sum(y.numel() for y in ys)


def test_discrepancy_is_decided_on_the_whole_sequence() -> None:
    ys, op_list, _, sigma = _sequence(snr=10.0)
    res = reconstruct_sequence(ys, op_list, iterations=600, sigma=sigma, progress=False, **SMALL, penalty=None)
    m = sum(y.numel() for y in ys)
    assert res.choices["discrepancy"] == res.chosen_iteration and "discrepancy principle" in res.stop_reason
    h = res.history
    tau = res.rule_summaries["discrepancy"]["tau"]
    chosen = int(np.flatnonzero(h["iteration"].values == res.chosen_iteration)[0])
    assert h["misfit"].values[chosen] <= tau * m * sigma**2 < h["misfit"].values[:chosen].min()
    assert h["discrepancy"].values[chosen] == pytest.approx(h["misfit"].values[chosen] / (m * sigma**2))


def test_checkpoint_resume_reproduces_the_uninterrupted_run(tmp_path) -> None:
    ys, op_list, _, sigma = _sequence(frames=3)
    common = dict(iterations=40, sigma=sigma, progress=False, stop="fixed", every=10, **SMALL)
    full = reconstruct_sequence(ys, op_list, **common)
    ckpt = tmp_path / "seq.ckpt"

    def ctrl_c(state: SequenceState) -> None:
        if state.iteration >= 19:
            raise KeyboardInterrupt

    part = reconstruct_sequence(ys, op_list, **common, checkpoint=ckpt, checkpoint_every=20, callbacks=[ctrl_c])
    assert part.interrupted and part.image.shape == (3, 16, 16) and "interrupted" in part.stop_reason
    again = reconstruct_sequence(ys, op_list, **common, resume=ckpt)
    assert torch.equal(again.image, full.image) and torch.equal(again.final_image, full.final_image)
    assert np.array_equal(again.history["misfit"].values, full.history["misfit"].values)


def test_sequence_options_are_checked() -> None:
    ys, op_list, _, _ = _sequence(frames=2)
    with pytest.raises(ValueError, match="single frames only"):
        rfprior.reconstruct(ys, op_list, fits=2, progress=False)
    with pytest.raises(ValueError, match="offers the discrepancy rule"):
        rfprior.reconstruct(ys, op_list, stop=[rfprior.HoldOut()], progress=False)
    with pytest.raises(ValueError, match="one operator per frame"):
        reconstruct_sequence(ys, op_list[:1], progress=False)
    with pytest.raises(ValueError, match=r"y\[1\] must have"):
        reconstruct_sequence([ys[0], ys[1][:-1]], op_list, progress=False)
    with pytest.raises(ValueError, match="image shape"):
        big = ops.PartialFourier(ops.variable_density_mask((20, 20), 3.0, seed=0))
        reconstruct_sequence([ys[0], big.forward(torch.zeros(20, 20, dtype=torch.complex64))], [op_list[0], big])


def test_a_shared_operator_and_a_stacked_y_are_a_sequence() -> None:
    truth = torch.stack([moving_phantom(16, 16, t, seed=0) for t in range(3)]).to(torch.complex64)
    op = ops.PartialFourier(ops.variable_density_mask((16, 16), 2.0, seed=0))
    y = op.forward(truth)
    res = rfprior.reconstruct(y, op, iterations=20, stop=[], progress=False, **SMALL)
    assert res.image.shape == (3, 16, 16) and res.stop_reason.startswith("fixed budget")


def test_the_spatio_temporal_penalty_is_the_forward_models_default_and_couples_neighbours() -> None:
    ys, op_list, truth, sigma = _sequence(frames=4, snr=10.0)
    common = dict(iterations=200, sigma=sigma, truth=truth, progress=False, stop="fixed", **SMALL)
    coupled = reconstruct_sequence(ys, op_list, **common)
    assert coupled.settings["sequence"]["temporal_weight"] == 2.0  # partial Fourier's default
    apart = reconstruct_sequence(ys, op_list, temporal_weight=0.0, **common)
    assert apart.settings["sequence"]["temporal_weight"] == 0.0
    # a slowly moving scene: penalising temporal differences brings neighbouring frames closer together
    jump = lambda img: float((img[1:] - img[:-1]).abs().mean())  # noqa: E731
    assert jump(coupled.image) < jump(apart.image)
    with pytest.raises(ValueError, match="temporal_weight"):
        reconstruct_sequence(ys, op_list, temporal_weight=-1.0, progress=False)


def test_review_fixes_penalty_none_checkpoints_windows_and_noise_free_data(tmp_path) -> None:
    ys, op_list, _, sigma = _sequence(frames=5)
    # penalty=None means no penalty (not the forward model's default TV)
    res = rfprior.reconstruct(ys, op_list, iterations=12, sigma=sigma, penalty=None, progress=False, **SMALL)
    assert res.settings["penalty"] is None
    # checkpoints are written at the default interval without checkpoint_every
    ckpt = tmp_path / "run.ckpt"
    reconstruct_sequence(ys, op_list, iterations=100, sigma=sigma, stop="fixed", checkpoint=ckpt, progress=False,
                         **SMALL)  # fmt: skip
    assert ckpt.is_file() and torch.load(ckpt, weights_only=False)["iteration"] == 100
    # windows of consecutive frames: every frame is fitted equally often per epoch (ends included)
    from rfprior.fit.sequence import next_frames

    for windows, per_epoch, each in ((True, 7, 3), (False, 2, 1)):
        g, queue, seen = torch.Generator().manual_seed(0), [], []
        for _ in range(per_epoch):
            frames, queue = next_frames(queue, g, 5, 3, windows)
            assert frames == sorted(set(frames)) if windows else len(set(frames)) == len(frames)
            seen += frames
        assert not queue and np.bincount(seen, minlength=5).tolist() == [each] * 5
    # noise-free data: the discrepancy rule is undefined, said plainly
    clean = [op.forward(torch.zeros(op.in_shape, dtype=op.dtype)) for op in op_list]
    with pytest.raises(ValueError, match="noise-free"):
        reconstruct_sequence(clean, op_list, iterations=5, progress=False, **SMALL)
