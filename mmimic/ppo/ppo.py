"""The PPO update: clipped surrogate and value losses over minibatches of one rollout."""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch import nn

from mmimic.ppo.networks import ActorCritic
from mmimic.ppo.optim import build_optimizer, linear_decay
from mmimic.ppo.storage import Minibatch, RolloutStorage

STEP_STAT_NAMES = (
    "loss/total",
    "loss/actor",
    "loss/value",
    "entropy",
    "approx_kl",
    "clip_fraction",
    "ratio_mean",
    "grad_norm",
)
ROLLOUT_STAT_NAMES = ("explained_variance", "std_mean", "skipped", "advantage_mean", "return_mean")


@dataclass
class PPOConfig:
    """PPO hyperparameters (defaults: the published recipe; ``num_minibatches`` 32 is bimanual's,
    fullbody uses 128 with ``anneal_lr=True``: the rate decays linearly to 0 over the run's updates).

    ``compile``: ``"on"`` runs each minibatch step through ``torch.compile`` (inductor fuses the loss,
    its backward and the optimiser into a few generated kernels), ``"off"`` runs it eagerly, ``"auto"``
    compiles on CUDA only (the first compiled step costs minutes of CPU time).
    """

    gamma: float = 0.99
    lam: float = 0.95
    clip_eps: float = 0.2
    value_clip_eps: float = 0.2
    vf_coef: float = 0.5
    ent_coef: float = 0.0
    num_minibatches: int = 32
    update_epochs: int = 1
    max_grad_norm: float = 1.0
    lr: float = 4e-4
    anneal_lr: bool = False
    optimizer: str = "muon"
    muon_weight_decay: float = 1e-3
    bf16: bool = False
    compile: str = "auto"


def all_reduce_gradients(params: list[nn.Parameter]) -> None:
    """Averages the gradients of ``params`` over the ranks in one flat all-reduce
    (a missing gradient counts as zero)."""
    grads = [p.grad if p.grad is not None else torch.zeros_like(p) for p in params]
    flat = torch.cat([g.reshape(-1) for g in grads])
    dist.all_reduce(flat, op=dist.ReduceOp.SUM)
    flat /= dist.get_world_size()
    for p, g in zip(params, flat.split([p.numel() for p in params])):
        p.grad = g.view_as(p)


def compile_enabled(setting: str, device: torch.device) -> bool:
    """Whether ``PPOConfig.compile`` (``"auto"``, ``"on"`` or ``"off"``) compiles the step on ``device``."""
    if setting not in ("auto", "on", "off"):
        raise ValueError(f"ppo.compile must be 'auto', 'on' or 'off', got {setting!r}")
    return setting == "on" or (setting == "auto" and device.type == "cuda")


def explained_variance(values: torch.Tensor, returns: torch.Tensor) -> torch.Tensor:
    """1 - Var(returns - values) / Var(returns), on the device."""
    return 1.0 - (returns - values).var(correction=0) / returns.var(correction=0)


class PPO:
    """Owns the optimiser of an ``ActorCritic`` and runs the update of one rollout.

    When ``torch.distributed`` is initialised, gradients are averaged over the default group before
    clipping, so every rank takes the same step (the observation normaliser is merged separately:
    ``RunningMeanStd.enable_all_reduce``).
    """

    def __init__(
        self, actor_critic: ActorCritic, config: PPOConfig, device: torch.device | str, num_updates: int | None = None
    ):
        """``num_updates``: the run's length in updates, over which ``anneal_lr`` decays the rate (needed then)."""
        if config.anneal_lr and num_updates is None:
            raise ValueError("ppo.anneal_lr decays the learning rate over the run: PPO needs num_updates")
        self.num_updates = num_updates
        self.device = torch.device(device)
        self.actor_critic = actor_critic.to(self.device)
        self.config = config
        self.optimizer = build_optimizer(
            self.actor_critic, config.optimizer, config.lr, muon_weight_decay=config.muon_weight_decay
        )
        self.params = self.optimizer.params
        self.distributed = dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1
        self.compiled = compile_enabled(config.compile, self.device)
        # The minibatch step ``update`` runs: compiled once per PPO (the learning rate is a device
        # tensor of the optimiser, so annealing it does not recompile).
        self.minibatch_step = torch.compile(self._step) if self.compiled else self._step

    def learning_rate(self, iteration: int) -> float:
        """Learning rate for an update after ``iteration`` completed updates."""
        if self.config.anneal_lr:
            return self.config.lr * linear_decay(iteration, self.num_updates)
        return self.config.lr

    @torch.no_grad()
    def compute_returns(self, storage: RolloutStorage, last_obs: torch.Tensor) -> None:
        """Bootstraps with the value of ``last_obs`` and fills the storage's advantages and returns."""
        storage.compute_gae(self.actor_critic.value(last_obs), self.config.gamma, self.config.lam)

    def update(self, storage: RolloutStorage, iteration: int) -> dict[str, float]:
        """Runs ``update_epochs`` passes of ``num_minibatches`` optimiser steps over ``storage``
        (after ``compute_returns``); the statistics are read to the host once, at the end.

        A minibatch whose loss or gradient is not finite changes nothing and is counted in ``skipped``;
        the means over minibatches include only the applied ones.
        """
        cfg = self.config
        self.optimizer.lr = self.learning_rate(iteration)
        sums = torch.zeros(len(STEP_STAT_NAMES), device=self.device)
        applied = torch.zeros((), device=self.device)
        skipped = torch.zeros((), device=self.device)
        for _ in range(cfg.update_epochs):
            for batch in storage.minibatches(cfg.num_minibatches):
                stats, ok = self.minibatch_step(batch)
                sums += torch.where(ok, stats, 0.0)
                applied += ok
                skipped += ~ok
        means = sums / applied.clamp(min=1.0)
        extra = torch.stack(
            [
                explained_variance(storage.values, storage.returns),
                torch.exp(self.actor_critic.log_std.detach()).mean(),
                skipped,
                storage.advantages.mean(),
                storage.returns.mean(),
            ]
        )
        host = torch.cat([means, extra]).tolist()
        result = dict(zip((*STEP_STAT_NAMES, *ROLLOUT_STAT_NAMES), host))
        result["lr"] = self.optimizer.lr
        return result

    def _step(self, batch: Minibatch) -> tuple[torch.Tensor, torch.Tensor]:
        """One optimiser step on a minibatch, skipped on the device when the loss or the gradient is
        not finite; returns its statistics and the device bool "applied"."""
        cfg = self.config
        adv = batch.advantages
        adv = (adv - adv.mean()) / (adv.std(correction=0) + 1e-8)
        with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=cfg.bf16):
            log_probs, entropy, values = self.actor_critic.evaluate(batch.obs, batch.actions)
        log_ratio = log_probs - batch.log_probs
        ratio = torch.exp(log_ratio)
        surrogate = torch.min(ratio * adv, ratio.clamp(1.0 - cfg.clip_eps, 1.0 + cfg.clip_eps) * adv)
        actor_loss = -surrogate.mean()
        values_clipped = batch.values + (values - batch.values).clamp(-cfg.value_clip_eps, cfg.value_clip_eps)
        value_loss = (
            0.5 * torch.max((values - batch.returns).square(), (values_clipped - batch.returns).square()).mean()
        )
        entropy = entropy.mean()
        loss = actor_loss + cfg.vf_coef * value_loss - cfg.ent_coef * entropy

        self.optimizer.zero_grad()
        loss.backward()
        if self.distributed:
            all_reduce_gradients(self.params)
        grads = [p.grad for p in self.params if p.grad is not None]
        grad_norm = torch.linalg.vector_norm(torch.stack(torch._foreach_norm(grads)))
        ok = torch.isfinite(loss) & torch.isfinite(grad_norm)
        torch._foreach_mul_(grads, torch.where(grad_norm < cfg.max_grad_norm, 1.0, cfg.max_grad_norm / grad_norm))
        self.optimizer.step(ok)

        with torch.no_grad():
            clip_fraction = ((ratio - 1.0).abs() > cfg.clip_eps).float().mean()
            stats = torch.stack(
                [loss, actor_loss, value_loss, entropy, (-log_ratio).mean(), clip_fraction, ratio.mean(), grad_norm]
            ).detach()
        return stats, ok
