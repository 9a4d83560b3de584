"""Failure-weighted clip sampling: a generalist spends its episodes where it fails.

The published system's adaptive motion sampling (MuscleMimic, arXiv 2603.25544), on the device.
Per clip c, exponential moving averages of the finished episodes d_c and of the early
terminations e_c among them (smoothing beta, starting from the priors d = `prior_episodes`,
e = `prior_terminations`) give the failure rate r_c = e_c / (d_c + 1e-6); resets draw clip c with

    p_c = (1 - u) * w_c (r_c + 1e-6)^k / sum_j w_j (r_j + 1e-6)^k  +  u * w_c / sum_j w_j

where w_c is the manifest weight (0: never drawn), k the `exponent` and u the `uniform_mix`.
The averages of a clip move only in iterations in which one of its episodes finished: a clip
nobody drew keeps its rate instead of decaying towards 0 / 0.

Counts come from device counters (`ClipStats.totals`) and the probabilities are written
in place into the clip CDF that the environment's captured reset reads
(`ImitationEnv.set_clip_weights`): torch operations on fixed buffers, no host synchronisation.
"""

from __future__ import annotations

import torch

from mmimic.train.config import SamplingConfig

EPS = 1e-6


class FailureWeightedSampler:
    """Per-clip failure statistics and the sampling probabilities they imply, on one device."""

    def __init__(self, config: SamplingConfig, base_weight: torch.Tensor, clip_names: list[str]) -> None:
        if len(clip_names) != base_weight.shape[0]:
            raise ValueError(f"{len(clip_names)} clip names for {base_weight.shape[0]} clip weights")
        self.config = config
        self.clip_names = list(clip_names)
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

    def state_dict(self) -> dict:
        """The averages with the clip names they belong to (plain data for a checkpoint)."""
        return {"clip_names": list(self.clip_names), "episodes": self.episodes.clone(),
                "terminations": self.terminations.clone()}

    def load_state_dict(self, state: dict) -> int:
        """Restore the averages of the clips named in `state`; clips it does not name (added to the
        motion sets since) keep the priors. Returns the number of clips restored."""
        saved = {name: i for i, name in enumerate(state["clip_names"])}
        ours = [i for i, name in enumerate(self.clip_names) if name in saved]
        theirs = [saved[self.clip_names[i]] for i in ours]
        if ours:
            index = torch.tensor(ours, device=self.episodes.device)
            source = torch.tensor(theirs, device=state["episodes"].device)
            self.episodes[index] = state["episodes"][source].to(self.episodes)
            self.terminations[index] = state["terminations"][source].to(self.terminations)
        self._recompute()
        return len(ours)
