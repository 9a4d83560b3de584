"""Failure-weighted clip sampling: a generalist spends its episodes where it fails.

The published system's adaptive motion sampling (reference/musclemimic.md §4.6), on the device.
Per clip c, exponential moving averages of the finished episodes d_c and of the early
terminations e_c among them (smoothing beta, starting from the priors d = `prior_episodes`,
e = `prior_terminations`) give the failure rate r_c = e_c / (d_c + 1e-6); resets draw clip c with

    p_c = (1 - u) * w_c (r_c + 1e-6)^k / sum_j w_j (r_j + 1e-6)^k  +  u * w_c / sum_j w_j

where w_c is the manifest weight (0: never drawn), k the `exponent` and u the `uniform_mix`.
The averages of a clip move only in iterations in which one of its episodes finished: a clip
nobody drew keeps its rate instead of decaying towards 0 / 0.

Counts come from device counters (`EpisodeStats.clip_totals`) and the probabilities are written
in place into the clip CDF that the environment's captured reset reads
(`ImitationEnv.set_clip_weights`): torch operations on fixed buffers, no host synchronisation.
"""

from __future__ import annotations

import torch

from mmimic.train.config import SamplingConfig

EPS = 1e-6


class FailureWeightedSampler:
    """Per-clip failure statistics and the sampling probabilities they imply, on one device."""

    def __init__(self, config: SamplingConfig, base_weight: torch.Tensor) -> None:
        self.config = config
        self.base_weight = base_weight.detach().to(torch.float32).clone()  # (C,) manifest weights, any scale
        self.episodes = torch.full_like(self.base_weight, config.prior_episodes)
        self.terminations = torch.full_like(self.base_weight, config.prior_terminations)
        self.probabilities = torch.empty_like(self.base_weight)
        self._recompute()

    @property
    def failure_rate(self) -> torch.Tensor:
        """(C,) smoothed early-termination rate of each clip."""
        return self.terminations / (self.episodes + EPS)

    def update(self, episodes: torch.Tensor, terminations: torch.Tensor) -> torch.Tensor:
        """Fold one iteration's finished episodes and early terminations per clip (C,) into the
        averages; returns the new probabilities (a buffer updated in place)."""
        beta = self.config.smoothing
        seen = episodes > 0
        self.episodes.copy_(torch.where(seen, torch.lerp(self.episodes, episodes.float(), beta), self.episodes))
        self.terminations.copy_(
            torch.where(seen, torch.lerp(self.terminations, terminations.float(), beta), self.terminations)
        )
        self._recompute()
        return self.probabilities

    def _recompute(self) -> None:
        c = self.config
        weight = self.base_weight.double()  # double: (1e-6)^exponent stays above zero
        priority = weight * (self.failure_rate.double() + EPS).pow(c.exponent)
        uniform = weight / weight.sum()
        self.probabilities.copy_((1.0 - c.uniform_mix) * priority / priority.sum() + c.uniform_mix * uniform)

    def state_dict(self) -> dict[str, torch.Tensor]:
        return {"episodes": self.episodes, "terminations": self.terminations}

    def load_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        for name in ("episodes", "terminations"):
            value = state[name]
            if value.shape != self.episodes.shape:
                raise ValueError(f"sampler state {name!r} has {value.shape[0]} clips, the motion library "
                                 f"{self.episodes.shape[0]}")
            getattr(self, name).copy_(value)
        self._recompute()
