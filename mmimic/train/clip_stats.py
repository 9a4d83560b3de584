"""Per-clip rollout statistics on the device, reported per motion category.

Every step adds, for each world, into the row of the clip its episode is playing: one step, the
step's reward, and, for a world whose episode finished, one episode, an early termination when
it was absorbing, its length and its return. One `index_add_` per step, no host sync; `summary`
groups the clips by category and reads everything in one transfer.
"""

from __future__ import annotations

import math

import torch

from mmimic.motion import MotionLibrary

FIELDS = ("steps", "reward", "episodes", "early_terminations", "episode_length", "episode_return")


class ClipStats:
    """Sums per clip of one iteration's steps (`totals`, (len(FIELDS), C) float32 on the library's device)."""

    def __init__(self, library: MotionLibrary) -> None:
        self.categories = list(library.categories)
        self.category_id = library.clip_category_id
        self.totals = torch.zeros(len(FIELDS), library.num_clips, device=library.device)

    @property
    def episodes(self) -> torch.Tensor:
        """(C,) episodes finished per clip."""
        return self.totals[FIELDS.index("episodes")]

    @property
    def early_terminations(self) -> torch.Tensor:
        """(C,) finished episodes per clip that ended by an absorbing (early) termination."""
        return self.totals[FIELDS.index("early_terminations")]

    def record_step(self, clip: torch.Tensor, reward: torch.Tensor, done: torch.Tensor, info: dict) -> None:
        """`clip` (N,): each world's clip *before* the step (a finished world is reset to a new clip inside it)."""
        finished = done.float()
        rows = torch.stack((
            torch.ones_like(reward),
            reward,
            finished,
            (info["terminated"] & done).float(),
            info["episode_length"].float() * finished,
            info["episode_return"] * finished,
        ))
        self.totals.index_add_(1, clip.to(torch.int64), rows)

    def summary(self, probabilities: torch.Tensor | None = None) -> dict[str, float]:
        """`category/<name>/...`: `reward` (mean per step), `episode_length`, `episode_return`,
        `early_termination_rate` (per finished episode, NaN without one), `episodes`, and with the
        clip sampling `probabilities` (C,) the category's share of the draws (`sampling_share`).
        One host read; the sums start again from zero."""
        k = len(self.categories)
        grouped = torch.zeros(len(FIELDS) + 1, k, device=self.totals.device)
        grouped[: len(FIELDS)].index_add_(1, self.category_id, self.totals)
        if probabilities is not None:
            grouped[-1].index_add_(0, self.category_id, probabilities.to(grouped.dtype))
        values = dict(zip((*FIELDS, "sampling_share"), grouped.tolist()))
        self.totals.zero_()
        result = {}
        for i, name in enumerate(self.categories):
            steps, episodes = values["steps"][i], values["episodes"][i]
            prefix = f"category/{name}/"
            result[prefix + "reward"] = values["reward"][i] / steps if steps else math.nan
            result[prefix + "episodes"] = episodes
            for key in ("episode_length", "episode_return", "early_terminations"):
                label = "early_termination_rate" if key == "early_terminations" else key
                result[prefix + label] = values[key][i] / episodes if episodes else math.nan
            if probabilities is not None:
                result[prefix + "sampling_share"] = values["sampling_share"][i]
        return result
