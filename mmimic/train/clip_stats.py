"""Per-clip rollout statistics on the device, reported per motion category.

Every step adds, for each world, into the row of the clip its episode is playing: one step, the
step's reward, and, for a world whose episode finished, one episode, an early termination when
it was absorbing, its length and its return. One `index_add_` per step, no host sync; `grouped`
sums the clips of each category on the device, for the trainer's one host read per iteration
(`EpisodeStats.summary`), and `describe` turns the values read into metrics.
"""

from __future__ import annotations

import math

import torch

from mmimic.motion import MotionLibrary

FIELDS = ("steps", "reward", "episodes", "early_terminations", "episode_length", "episode_return")


class ClipStats:
    """Sums per clip of one iteration's steps (`totals`, (len(FIELDS), C) float32 on the library's device);
    `probabilities` (C,), when given, is the clip sampling distribution (read where it lies, so a buffer
    updated in place is reported as it is at each read)."""

    def __init__(self, library: MotionLibrary, probabilities: torch.Tensor | None = None) -> None:
        self.categories = list(library.categories)
        self.category_id = library.clip_category_id
        self.totals = torch.zeros(len(FIELDS), library.num_clips, device=library.device)
        self.probabilities = probabilities

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

    def grouped(self) -> torch.Tensor:
        """(len(FIELDS) + 1, K) on the device: each category's sums, and its share of the sampling
        probabilities (0 without them)."""
        grouped = torch.zeros(len(FIELDS) + 1, len(self.categories), device=self.totals.device)
        grouped[: len(FIELDS)].index_add_(1, self.category_id, self.totals)
        if self.probabilities is not None:
            grouped[-1].index_add_(0, self.category_id, self.probabilities.to(grouped.dtype))
        return grouped

    def describe(self, values: list[float]) -> dict[str, float]:
        """`category/<name>/...` from the flattened `grouped()` read to the host: `reward` (mean per
        step), `episode_length`, `episode_return`, `early_termination_rate` (per finished episode, NaN
        without one), `episodes`, and with probabilities `sampling_share`. The sums start again from zero."""
        k = len(self.categories)
        rows = {name: values[i * k : (i + 1) * k] for i, name in enumerate((*FIELDS, "sampling_share"))}
        self.totals.zero_()
        result = {}
        for i, name in enumerate(self.categories):
            steps, episodes = rows["steps"][i], rows["episodes"][i]
            prefix = f"category/{name}/"
            result[prefix + "reward"] = rows["reward"][i] / steps if steps else math.nan
            result[prefix + "episodes"] = episodes
            for key in ("episode_length", "episode_return", "early_terminations"):
                label = "early_termination_rate" if key == "early_terminations" else key
                result[prefix + label] = rows[key][i] / episodes if episodes else math.nan
            if self.probabilities is not None:
                result[prefix + "sampling_share"] = rows["sampling_share"][i]
        return result
