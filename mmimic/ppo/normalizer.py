"""Running statistics: the observation normaliser and reward normalisation by the return's std."""

from __future__ import annotations

import torch
import torch.distributed as dist
from torch import nn


def all_reduce_moments(
    count: torch.Tensor, mean: torch.Tensor, var: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Merges per-rank batch moments (count, mean, population var) into the moments of the union.

    Sum-based and exact: the global mean is sum(n_i mean_i) / sum(n_i) and the global sum of squared
    deviations is sum(M2_i + n_i (mean_i - mean)^2), with M2_i = n_i var_i. Two all-reduces.
    """
    first = torch.cat([count.reshape(1), count * mean.reshape(-1)]).double()
    dist.all_reduce(first, op=dist.ReduceOp.SUM)
    total = first[0]
    global_mean = first[1:] / total
    m2 = count * (var.reshape(-1).double() + (mean.reshape(-1).double() - global_mean) ** 2)
    dist.all_reduce(m2, op=dist.ReduceOp.SUM)
    return total, global_mean.to(mean.dtype).reshape(mean.shape), (m2 / total).to(var.dtype).reshape(var.shape)


class RunningMeanStd(nn.Module):
    """Running mean and variance of a stream of batches (parallel Welford / Chan merge).

    Buffers: ``mean`` (zeros), ``var`` (ones), ``count`` (float64 scalar, ``initial_count``).
    ``batch_var_eps`` is added to each batch's variance before the merge; the published observation
    normaliser uses count 1e-6 and 1e-6 (the defaults), its return normaliser 1e-4 and 0.
    After ``enable_all_reduce`` every update merges the batch moments of all ranks first, so all
    ranks keep identical statistics.
    """

    def __init__(self, shape: tuple[int, ...] | int, initial_count: float = 1e-6, batch_var_eps: float = 1e-6):
        super().__init__()
        self.shape = (shape,) if isinstance(shape, int) else tuple(shape)
        self.batch_var_eps = batch_var_eps
        self.register_buffer("mean", torch.zeros(self.shape))
        self.register_buffer("var", torch.ones(self.shape))
        self.register_buffer("count", torch.tensor(initial_count, dtype=torch.float64))
        self._all_reduce = False

    def enable_all_reduce(self) -> None:
        """Makes every later ``update`` merge the batch statistics of all ranks."""
        self._all_reduce = True

    @torch.no_grad()
    def update(self, x: torch.Tensor) -> None:
        """Merges a batch (any leading dims, trailing dims = ``shape``) into the statistics."""
        x = x.reshape(-1, *self.shape).to(self.mean.dtype)
        batch_count: torch.Tensor | float = float(x.shape[0])  # a host float: no host-to-device copy
        batch_mean = x.mean(dim=0)
        batch_var = x.var(dim=0, correction=0)
        if self._all_reduce:
            local_count = x.new_full((), batch_count, dtype=torch.float64)
            batch_count, batch_mean, batch_var = all_reduce_moments(local_count, batch_mean, batch_var)
        batch_var = batch_var + self.batch_var_eps
        total = self.count + batch_count
        w_old = (self.count / total).to(self.mean.dtype)
        w_new = (batch_count / total).to(self.mean.dtype)
        delta = batch_mean - self.mean
        self.var.mul_(w_old).add_(batch_var * w_new).add_(delta.square() * (w_old * w_new))
        self.mean.add_(delta * w_new)
        self.count.copy_(total)

    def normalize(self, x: torch.Tensor) -> torch.Tensor:
        """(x - mean) / sqrt(var + 1e-8), no clipping."""
        return (x - self.mean) * torch.rsqrt(self.var + 1e-8)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.normalize(x)


class ReturnNormalizer(nn.Module):
    """Scales rewards by the running std of the per-env discounted return (no mean subtraction).

    Per step: ``G = G * gamma * (1 - done) + r`` with the done flag of the same transition, the
    running variance is updated with the batch of G, and ``r / sqrt(var + eps)`` is returned.
    """

    def __init__(self, num_envs: int, gamma: float = 0.99, eps: float = 1e-8):
        super().__init__()
        self.gamma = gamma
        self.eps = eps
        self.register_buffer("returns", torch.zeros(num_envs))
        self.return_rms = RunningMeanStd((), initial_count=1e-4, batch_var_eps=0.0)

    def enable_all_reduce(self) -> None:
        """Makes the return statistics merge across the ranks."""
        self.return_rms.enable_all_reduce()

    @torch.no_grad()
    def forward(self, rewards: torch.Tensor, dones: torch.Tensor) -> torch.Tensor:
        """Updates the statistics with one step of all envs and returns the normalised rewards."""
        self.returns.mul_(self.gamma * (1.0 - dones.to(self.returns.dtype))).add_(rewards)
        self.return_rms.update(self.returns)
        return rewards * torch.rsqrt(self.return_rms.var + self.eps)
