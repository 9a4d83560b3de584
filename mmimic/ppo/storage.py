"""Preallocated rollout storage, GAE with separate absorbing / done masks, and minibatches."""

from __future__ import annotations

from collections.abc import Iterator
from typing import NamedTuple

import torch


class Minibatch(NamedTuple):
    """One minibatch of flattened (time x env) samples."""

    obs: torch.Tensor
    actions: torch.Tensor
    log_probs: torch.Tensor
    values: torch.Tensor
    advantages: torch.Tensor
    returns: torch.Tensor


class RolloutStorage:
    """``num_steps x num_envs`` transitions, written in place by ``add`` once per control step.

    ``dones`` marks any episode end (absorbing, time limit, end of motion); ``absorbing`` marks the
    terminal ones whose next value must not be bootstrapped.
    """

    def __init__(self, num_steps: int, num_envs: int, obs_dim: int, act_dim: int, device: torch.device | str):
        self.num_steps = num_steps
        self.num_envs = num_envs
        self.device = torch.device(device)
        shape = (num_steps, num_envs)
        self.obs = torch.zeros(*shape, obs_dim, device=self.device)
        self.actions = torch.zeros(*shape, act_dim, device=self.device)
        self.log_probs = torch.zeros(shape, device=self.device)
        self.values = torch.zeros(shape, device=self.device)
        self.rewards = torch.zeros(shape, device=self.device)
        self.dones = torch.zeros(shape, dtype=torch.bool, device=self.device)
        self.absorbing = torch.zeros(shape, dtype=torch.bool, device=self.device)
        self.advantages = torch.zeros(shape, device=self.device)
        self.returns = torch.zeros(shape, device=self.device)
        self.step = 0

    def add(
        self,
        obs: torch.Tensor,
        actions: torch.Tensor,
        log_probs: torch.Tensor,
        values: torch.Tensor,
        rewards: torch.Tensor,
        dones: torch.Tensor,
        absorbing: torch.Tensor,
    ) -> None:
        """Copies one step of all envs (``obs`` is the observation the actions were taken from)."""
        if self.step >= self.num_steps:
            raise RuntimeError(f"RolloutStorage is full ({self.num_steps} steps); call clear() first")
        t = self.step
        self.obs[t].copy_(obs)
        self.actions[t].copy_(actions)
        self.log_probs[t].copy_(log_probs)
        self.values[t].copy_(values)
        self.rewards[t].copy_(rewards)
        self.dones[t].copy_(dones)
        self.absorbing[t].copy_(absorbing)
        self.step += 1

    def clear(self) -> None:
        self.step = 0

    @torch.no_grad()
    def compute_gae(self, last_values: torch.Tensor, gamma: float, lam: float) -> None:
        """Fills ``advantages`` and ``returns = advantages + values``:
        ``delta_t = r_t + gamma V_{t+1} (1 - absorbing_t) - V_t``,
        ``A_t = delta_t + gamma lam (1 - done_t) A_{t+1}``, with ``V_{t+1}`` the stored value of the
        next stored observation (after a non-absorbing done: of the reset observation) and
        ``V_T = last_values``."""
        if self.step != self.num_steps:
            raise RuntimeError(f"RolloutStorage holds {self.step} of {self.num_steps} steps; fill it before GAE")
        next_values = torch.cat([self.values[1:], last_values.reshape(1, self.num_envs)], dim=0)
        not_absorbing = 1.0 - self.absorbing.float()
        not_done = 1.0 - self.dones.float()
        deltas = self.rewards + gamma * next_values * not_absorbing - self.values
        carry = torch.zeros(self.num_envs, device=self.device)
        for t in reversed(range(self.num_steps)):
            carry = deltas[t] + gamma * lam * not_done[t] * carry
            self.advantages[t] = carry
        torch.add(self.advantages, self.values, out=self.returns)

    def minibatches(self, num_minibatches: int) -> Iterator[Minibatch]:
        """One random permutation of the ``num_steps * num_envs`` samples in ``num_minibatches`` equal
        slices; each tensor is gathered with one index op per minibatch."""
        total = self.num_steps * self.num_envs
        if total % num_minibatches:
            raise ValueError(
                f"num_minibatches={num_minibatches} does not divide the rollout batch "
                f"{self.num_steps} x {self.num_envs} = {total}"
            )
        size = total // num_minibatches
        flat = (
            self.obs.view(total, -1),
            self.actions.view(total, -1),
            self.log_probs.view(total),
            self.values.view(total),
            self.advantages.view(total),
            self.returns.view(total),
        )
        perm = torch.randperm(total, device=self.device)
        for start in range(0, total, size):
            idx = perm[start : start + size]
            yield Minibatch(*(x[idx] for x in flat))
