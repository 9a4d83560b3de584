"""Actor and critic networks: plain and gated-residual MLPs, and the Gaussian actor-critic."""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import nn

from mmimic.ppo.normalizer import RunningMeanStd

_HALF_LOG_2PI = 0.5 * math.log(2.0 * math.pi)


def _linear(in_dim: int, out_dim: int, gain: float) -> nn.Linear:
    """Linear layer with an orthogonal weight of the given gain and a zero bias."""
    layer = nn.Linear(in_dim, out_dim)
    nn.init.orthogonal_(layer.weight, gain=gain)
    nn.init.zeros_(layer.bias)
    return layer


def _dense_ln_silu(in_dim: int, out_dim: int) -> list[nn.Module]:
    return [_linear(in_dim, out_dim, math.sqrt(2.0)), nn.LayerNorm(out_dim, eps=1e-5), nn.SiLU()]


class _BodyHead(nn.Module):
    """Hidden `layers` (``body``), then ``Linear(gain 0.01)`` (``head``) from their output `width` to `out_dim`."""

    def __init__(self, layers: list[nn.Module], width: int, out_dim: int):
        super().__init__()
        self.body = nn.Sequential(*layers)
        self.head = _linear(width, out_dim, 0.01)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.body(x))


class MLP(_BodyHead):
    """``[Linear(gain sqrt 2) -> LayerNorm(eps 1e-5) -> SiLU] x len(hidden)`` then ``Linear(gain 0.01)``."""

    def __init__(self, in_dim: int, hidden: Sequence[int], out_dim: int):
        widths = [in_dim, *hidden]
        super().__init__([m for a, b in zip(widths, hidden) for m in _dense_ln_silu(a, b)], widths[-1], out_dim)


class GatedResidualBlock(nn.Module):
    """``x -> SiLU(skip(x) + sigmoid(g) * LN(Dense_d1(SiLU(LN(Dense_d0(x))))))``.

    The second dense starts near zero (gain 0.01); ``skip`` is the identity when the width is kept and
    a projection (gain 1.0) otherwise; the scalar gate ``g`` starts at ``gate_init``.
    """

    def __init__(self, in_dim: int, d0: int, d1: int, gate_init: float = -2.0):
        super().__init__()
        self.inner = nn.Sequential(*_dense_ln_silu(in_dim, d0), _linear(d0, d1, 0.01), nn.LayerNorm(d1, eps=1e-5))
        self.skip = nn.Identity() if in_dim == d1 else _linear(in_dim, d1, 1.0)
        self.gate = nn.Parameter(torch.tensor(float(gate_init)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return nn.functional.silu(self.skip(x) + torch.sigmoid(self.gate) * self.inner(x))


class GatedResidualMLP(_BodyHead):
    """Gated residual blocks over consecutive pairs of ``hidden``; an odd last width becomes a plain
    ``Linear -> LayerNorm -> SiLU`` tail; output ``Linear(gain 0.01)``."""

    def __init__(self, in_dim: int, hidden: Sequence[int], out_dim: int, gate_init: float = -2.0):
        layers: list[nn.Module] = []
        dim = in_dim
        for d0, d1 in zip(hidden[0::2], hidden[1::2]):
            layers.append(GatedResidualBlock(dim, d0, d1, gate_init))
            dim = d1
        if len(hidden) % 2:
            layers += _dense_ln_silu(dim, hidden[-1])
        super().__init__(layers, hidden[-1] if hidden else in_dim, out_dim)


def gaussian_log_prob(actions: torch.Tensor, mean: torch.Tensor, log_std: torch.Tensor) -> torch.Tensor:
    """Log density of a diagonal Gaussian, summed over the last dim."""
    z = (actions - mean) * torch.exp(-log_std)
    return (-0.5 * z.square() - log_std - _HALF_LOG_2PI).sum(dim=-1)


class Policy(nn.Module):
    """Raw observations -> actions: normaliser, actor mean, and optionally a Gaussian sample."""

    def __init__(self, obs_normalizer: RunningMeanStd, actor: nn.Module, log_std: nn.Parameter, sample: bool):
        super().__init__()
        self.obs_normalizer = obs_normalizer
        self.actor = actor
        self.log_std = log_std
        self.sample = sample

    @torch.no_grad()
    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        mean = self.actor(self.obs_normalizer.normalize(obs)).float()
        if not self.sample:
            return mean
        return mean + torch.exp(self.log_std) * torch.randn_like(mean)


class ActorCritic(nn.Module):
    """Separate actor and critic fed by one shared observation normaliser; a diagonal Gaussian policy
    with a state-independent learnable ``log_std`` (no tanh, no clamping).

    ``architecture`` holds the constructor arguments as plain types, so a checkpoint can rebuild it.
    """

    def __init__(
        self,
        obs_dim: int,
        act_dim: int,
        actor_hidden: Sequence[int],
        critic_hidden: Sequence[int],
        init_std: float,
        residual: bool = False,
    ):
        super().__init__()
        self.architecture = {
            "obs_dim": int(obs_dim),
            "act_dim": int(act_dim),
            "actor_hidden": [int(h) for h in actor_hidden],
            "critic_hidden": [int(h) for h in critic_hidden],
            "init_std": float(init_std),
            "residual": bool(residual),
        }
        net = GatedResidualMLP if residual else MLP
        self.obs_normalizer = RunningMeanStd(obs_dim)
        self.actor = net(obs_dim, actor_hidden, act_dim)
        self.critic = net(obs_dim, critic_hidden, 1)
        self.log_std = nn.Parameter(torch.full((act_dim,), math.log(init_std)))

    @torch.no_grad()
    def act(
        self, obs: torch.Tensor, update_normalizer: bool
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """Rollout step: (action sample, its log prob, value, mean). With ``update_normalizer`` the
        batch is merged into the statistics first and normalised with the updated statistics."""
        if update_normalizer:
            self.obs_normalizer.update(obs)
        x = self.obs_normalizer.normalize(obs)
        mean = self.actor(x).float()
        value = self.critic(x).float().squeeze(-1)
        action = mean + torch.exp(self.log_std) * torch.randn_like(mean)
        return action, gaussian_log_prob(action, mean, self.log_std), value, mean

    def evaluate(self, obs: torch.Tensor, actions: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Loss pass with gradients, statistics untouched: (log prob of ``actions``, entropy, value)."""
        x = self.obs_normalizer.normalize(obs)
        mean = self.actor(x).float()
        value = self.critic(x).float().squeeze(-1)
        entropy = (0.5 + _HALF_LOG_2PI + self.log_std).sum().expand(mean.shape[0])
        return gaussian_log_prob(actions, mean, self.log_std), entropy, value

    @torch.no_grad()
    def value(self, obs: torch.Tensor) -> torch.Tensor:
        """Critic value for raw observations (statistics untouched), e.g. the bootstrap value."""
        return self.critic(self.obs_normalizer.normalize(obs)).float().squeeze(-1)

    def policy(self, sample: bool = False) -> Policy:
        """An inference module sharing this model's normaliser, actor and ``log_std``."""
        return Policy(self.obs_normalizer, self.actor, self.log_std, sample)
