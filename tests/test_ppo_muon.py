"""Muon and Adam against the published (optax) update rules written out in numpy."""

import math

import numpy as np
import torch
from torch import nn

from mmimic.ppo import Adam, Muon, build_optimizer, linear_decay

A, B, C = 3.4445, -4.7750, 2.0315


def newton_schulz_np(x, steps=5, eps=1e-8):
    tall = x.shape[0] > x.shape[1]
    if tall:
        x = x.T
    x = x / (np.linalg.norm(x) + eps)
    for _ in range(steps):
        gram = x @ x.T
        x = A * x + (B * gram + C * gram @ gram) @ x
    return x.T if tall else x


def muon_reference(w, grads, lr, beta=0.95, weight_decay=0.0):
    """optax contrib.muon with Nesterov, for a torch-layout [out, in] matrix."""
    m = np.zeros_like(w)
    for t, g in enumerate(grads, start=1):
        m = beta * m + (1 - beta) * g
        u = beta * m / (1 - beta ** (t + 1)) + (1 - beta) * g / (1 - beta**t)
        scale = math.sqrt(max(1.0, w.shape[0] / w.shape[1]))
        w = w - lr * (scale * newton_schulz_np(u) + weight_decay * w)
    return w


def adam_reference(p, grads, lr, b1=0.9, b2=0.999, eps=1e-8, nesterov=True):
    m = np.zeros_like(p)
    v = np.zeros_like(p)
    for t, g in enumerate(grads, start=1):
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * g * g
        if nesterov:
            m_hat = b1 * m / (1 - b1 ** (t + 1)) + (1 - b1) * g / (1 - b1**t)
        else:
            m_hat = m / (1 - b1**t)
        p = p - lr * m_hat / (np.sqrt(v / (1 - b2**t)) + eps)
    return p


def run_steps(opt, param, grads, oks=None):
    for i, g in enumerate(grads):
        param.grad = torch.as_tensor(g, dtype=torch.float32).clone()
        opt.step(None if oks is None else torch.tensor(oks[i]))


def test_newton_schulz_one_matrix():
    rng = np.random.default_rng(0)
    from mmimic.ppo import newton_schulz

    for shape in ((7, 5), (5, 7), (6, 6)):
        g = rng.standard_normal(shape).astype(np.float32)
        np.testing.assert_allclose(
            newton_schulz(torch.from_numpy(g)).numpy(), newton_schulz_np(g.astype(np.float64)), atol=1e-5
        )


def test_muon_steps_match_published_rule():
    rng = np.random.default_rng(1)
    lr = 0.5  # large enough that float32 rounding of the weights stays below the tolerance
    for shape, wd in (((9, 4), 0.0), ((4, 9), 1e-3), ((8, 8), 0.1)):
        w0 = rng.standard_normal(shape).astype(np.float32)
        grads = [rng.standard_normal(shape).astype(np.float32) for _ in range(3)]
        param = nn.Parameter(torch.from_numpy(w0.copy()))
        run_steps(Muon([param], lr, weight_decay=wd), param, grads)
        expected = muon_reference(w0.astype(np.float64), [g.astype(np.float64) for g in grads], lr, weight_decay=wd)
        # compare the accumulated update in units of lr: float32 vs float64 to ~1e-5
        np.testing.assert_allclose((param.detach().numpy() - w0) / lr, (expected - w0) / lr, atol=1e-5)


def test_muon_single_step_lr_scaling_is_sqrt_out_over_in():
    g = np.random.default_rng(2).standard_normal((16, 4)).astype(np.float32)
    param = nn.Parameter(torch.zeros(16, 4))
    run_steps(Muon([param], 1.0), param, [g])
    np.testing.assert_allclose(param.detach().numpy(), -2.0 * newton_schulz_np(g.astype(np.float64)), atol=1e-5)


def test_skipped_step_changes_nothing_even_with_nan_gradients():
    rng = np.random.default_rng(3)
    shape = (5, 3)
    w0 = rng.standard_normal(shape).astype(np.float32)
    g1, g2 = (rng.standard_normal(shape).astype(np.float32) for _ in range(2))
    nan = np.full(shape, np.nan, np.float32)
    param = nn.Parameter(torch.from_numpy(w0.copy()))
    opt = Muon([param], 0.05, weight_decay=0.01)
    run_steps(opt, param, [g1, nan, g2], oks=[True, False, True])
    expected = muon_reference(
        w0.astype(np.float64), [g1.astype(np.float64), g2.astype(np.float64)], 0.05, weight_decay=0.01
    )
    np.testing.assert_allclose(param.detach().numpy(), expected, atol=1e-6)
    assert opt.step_count.item() == 2

    vec0 = rng.standard_normal(6).astype(np.float32)
    vec = nn.Parameter(torch.from_numpy(vec0.copy()))
    adam = Adam([vec], 0.01, nesterov=True)
    run_steps(adam, vec, [g1[0, :3].repeat(2), np.full(6, np.inf, np.float32)], oks=[True, False])
    np.testing.assert_allclose(
        vec.detach().numpy(), adam_reference(vec0.astype(np.float64), [g1[0, :3].repeat(2)], 0.01), atol=1e-6
    )


def test_adam_matches_reference_plain_and_nesterov():
    rng = np.random.default_rng(4)
    for nesterov in (False, True):
        p0 = [rng.standard_normal(s).astype(np.float32) for s in ((3,), (2, 2), ())]
        grads = [[rng.standard_normal(x.shape).astype(np.float32) for x in p0] for _ in range(4)]
        params = [nn.Parameter(torch.from_numpy(x.copy())) for x in p0]
        opt = Adam(params, 0.01, nesterov=nesterov)
        for step_grads in grads:
            for p, g in zip(params, step_grads):
                p.grad = torch.from_numpy(g.copy())
            opt.step()
        for i, (p, x) in enumerate(zip(params, p0)):
            expected = adam_reference(
                x.astype(np.float64), [g[i].astype(np.float64) for g in grads], 0.01, nesterov=nesterov
            )
            np.testing.assert_allclose(p.detach().numpy(), expected, atol=1e-6)


def test_build_optimizer_partitions_by_rank_and_round_trips_state():
    model = nn.Sequential(nn.Linear(4, 8), nn.LayerNorm(8), nn.Linear(8, 2))
    model.register_parameter("log_std", nn.Parameter(torch.zeros(2)))
    opt = build_optimizer(model, "muon", lr=1e-3, muon_weight_decay=1e-3)
    assert [tuple(p.shape) for p in opt.parts["muon"].params] == [(8, 4), (2, 8)]
    assert sum(p.numel() for p in opt.parts["adam"].params) == 8 + 8 + 8 + 2 + 2
    assert opt.parts["adam"].nesterov and opt.parts["muon"].weight_decay == 1e-3
    plain = build_optimizer(model, "adam", lr=1e-3)
    assert list(plain.parts) == ["adam"] and not plain.parts["adam"].nesterov

    model(torch.randn(5, 4)).sum().backward()
    model.log_std.grad = torch.ones(2)
    opt.step()
    opt.lr = 5e-4
    fresh = build_optimizer(model, "muon", lr=1e-3)
    fresh.load_state_dict(opt.state_dict())
    assert fresh.lr == 5e-4 and fresh.parts["muon"].step_count.item() == 1
    torch.testing.assert_close(fresh.parts["adam"].exp_avg_sq, opt.parts["adam"].exp_avg_sq)
    torch.testing.assert_close(fresh.parts["muon"].momentum_buffers[1], opt.parts["muon"].momentum_buffers[1])


def test_linear_decay():
    assert linear_decay(0, 12500) == 1.0
    assert linear_decay(6250, 12500) == 0.5
    assert linear_decay(20000, 12500) == 0.0
