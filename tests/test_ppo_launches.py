"""A launch-light PPO update: Newton-Schulz batched over same-shape matrices, op counts by torch.profiler."""

import numpy as np
import torch
from torch import nn

from mmimic.bench import minibatch_update_ops
from mmimic.ppo import Muon, newton_schulz
from mmimic.train.config import NetworkConfig, PPOConfig


def test_batched_newton_schulz_is_per_matrix():
    gen = torch.Generator().manual_seed(0)
    for shape in ((5, 7, 4), (3, 4, 7), (2, 6, 6)):
        stack = torch.randn(shape, generator=gen)
        batched = newton_schulz(stack)
        for k in range(shape[0]):
            torch.testing.assert_close(batched[k], newton_schulz(stack[k]), atol=1e-6, rtol=1e-5)


def test_muon_groups_update_like_separate_optimisers():
    """One Muon over mixed shapes (two groups, one of three matrices) equals one Muon per matrix."""
    rng = np.random.default_rng(0)
    shapes = [(6, 4), (6, 4), (3, 6), (6, 4)]
    w0 = [rng.standard_normal(s).astype(np.float32) for s in shapes]
    grads = [[rng.standard_normal(s).astype(np.float32) for s in shapes] for _ in range(3)]
    together = [nn.Parameter(torch.from_numpy(w.copy())) for w in w0]
    alone = [nn.Parameter(torch.from_numpy(w.copy())) for w in w0]
    opt = Muon(together, 0.1, weight_decay=0.01)
    singles = [Muon([p], 0.1, weight_decay=0.01) for p in alone]
    assert len(opt.groups) == 2 and [len(ps) for ps, _ in opt.groups] == [3, 1]
    for step_grads in grads:
        for p, q, g in zip(together, alone, step_grads):
            p.grad, q.grad = torch.from_numpy(g.copy()), torch.from_numpy(g.copy())
        opt.step()
        for single in singles:
            single.step()
    for p, q in zip(together, alone):
        torch.testing.assert_close(p.detach(), q.detach(), atol=1e-6, rtol=1e-5)
    for buf, single in zip(opt.momentum_buffers, singles):
        torch.testing.assert_close(buf, single.momentum_buffers[0])


def test_optimiser_ops_do_not_grow_with_depth():
    """Same-shape hidden layers share one batched Newton-Schulz: 16 layers cost the optimiser what 3 do,
    while the forward and backward passes grow with depth."""
    ppo = PPOConfig(num_minibatches=1)
    shallow = minibatch_update_ops(40, 12, NetworkConfig([32] * 3, [32] * 3), ppo, batch_size=8)
    deep = minibatch_update_ops(40, 12, NetworkConfig([32] * 16, [32] * 16), ppo, batch_size=8)
    assert deep["optimizer"] == shallow["optimizer"]
    assert deep["minibatch"] > shallow["minibatch"] + 13 * 2 * 6  # >= linear, layer norm, silu and their grads per layer
