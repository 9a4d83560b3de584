"""The imitation environment's configuration: a plain dataclass whose `None` fields mean "as published".

`EnvConfig()` reproduces the published task for whichever body it is given: a body with a free
root gets the MyoFullBody settings, a fixed-base body the MyoBimanualArm settings
(MuscleMimic, arXiv 2603.25544; docs/rewards.md). `resolve(embodiment)` fills every `None` and returns
the complete configuration that checkpoints record. A disabled termination check is `inf`.
Reward weights, lowest priority first: 0 for every registered term, the published preset for the
body, `EnvConfig.reward_weights` (where the command line's `--reward NAME=WEIGHT` goes).
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field

from mmimic.embodiment import Embodiment
from mmimic.env.rewards import registered

MUSCLE_CHANNELS = ("length", "velocity", "force", "excitation", "activation")
GOAL_STYLES = ("concise", "full")
DERIVED_MODES = ("kinematics", "forward")

FULLBODY_REWARD_WEIGHTS = {
    "qpos": 0.1, "qvel": 0.1, "root_pos": 0.1, "root_vel": 0.1, "rpos": 0.6, "rquat": 0.01,
    "rvel_rot": 0.1, "rvel_lin": 0.1, "action_out_of_bounds": 0.01, "action_rate": 0.0, "activation_energy": 0.0,
}
BIMANUAL_REWARD_WEIGHTS = {
    "qpos": 0.5, "qvel": 0.5, "root_pos": 0.0, "root_vel": 0.0, "rpos": 2.0, "rquat": 0.2,
    "rvel_rot": 0.5, "rvel_lin": 0.5, "action_out_of_bounds": 0.01, "action_rate": 0.0, "activation_energy": 0.0,
}


@dataclass
class EnvConfig:
    """Task settings. `None` means the published value for the body (free root: full body, else bimanual).

    Observation: `goal` "concise" (full body: current sim site features, reference site positions
    and root deltas at `lookahead` frames `stride` apart) or "full" (bimanual: reference qpos,
    qvel and all site features at every look-ahead frame); `muscle_channels` interleaved per muscle.
    Reward: `reward_weights` overrides the published weight of any registered term by name (0
    switches a term off); the weighted penalties are floored at `penalty_floor`.
    Termination: mean site deviation `site_deviation` over the relative sites (full body) or over
    the world positions of all sites (`site_deviation_world`, bimanual), main-site position
    `root_deviation` and root angle `root_angle` (free root only), in m / rad; `validation=True`
    picks the published validation thresholds; episodes are truncated after `horizon` steps.
    `derived`: what is recomputed after the physics step so that observations see the new state
    (see `mmimic.env.env`). `seed`: each world's random stream for clip and start-frame draws (None: 0;
    in training, the run's seed).
    `capture=False` launches every kernel eagerly (debugging).
    """

    horizon: int = 1000
    goal: str | None = None
    lookahead: int | None = None
    stride: int | None = None
    motion_phase: bool = True
    muscle_channels: tuple[str, ...] | None = None
    touch: bool | None = None
    reward_weights: dict[str, float] = field(default_factory=dict)
    penalty_floor: float = -1.0
    validation: bool = False
    site_deviation: float | None = None
    site_deviation_world: bool | None = None
    root_deviation: float | None = None
    root_angle: float | None = None
    derived: str = "kinematics"
    seed: int | None = None
    capture: bool = True

    @classmethod
    def for_embodiment(cls, embodiment: Embodiment, **fields: object) -> EnvConfig:
        """The published configuration for `embodiment` with `fields` changed, resolved."""
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(fields) - known)
        if unknown:
            from mmimic.cli import nearest

            hint = nearest(unknown[0], known)
            raise ValueError(f"unknown environment option(s) {unknown}{hint}; known: {', '.join(sorted(known))}")
        return cls(**fields).resolve(embodiment)  # type: ignore[arg-type]

    def for_validation(self) -> EnvConfig:
        """A copy with the published validation termination (full body: mean relative site 0.5 m only; bimanual: none)."""
        return dataclasses.replace(
            self, validation=True, site_deviation=None, site_deviation_world=None, root_deviation=None, root_angle=None
        )

    def resolve(self, embodiment: Embodiment) -> EnvConfig:
        """A copy with every `None` filled for `embodiment` and the weight of every registered reward term."""
        full = embodiment.has_free_root
        known_rewards = {name: 0.0 for name in registered()}
        unknown = sorted(set(self.reward_weights) - set(known_rewards))
        if unknown:
            raise ValueError(f"EnvConfig.reward_weights names unknown reward terms {unknown}; known: {', '.join(sorted(known_rewards))}")
        preset = FULLBODY_REWARD_WEIGHTS if full else BIMANUAL_REWARD_WEIGHTS
        weights = {**known_rewards, **preset, **self.reward_weights}
        if full:
            thresholds = (0.5, math.inf, math.inf) if self.validation else (1.0, 1.0, 1.0)
        else:
            thresholds = (math.inf, math.inf, math.inf) if self.validation else (0.05, math.inf, math.inf)
        resolved = dataclasses.replace(
            self,
            goal=_pick(self.goal, "concise" if full else "full"),
            lookahead=_pick(self.lookahead, 5 if full else 1),
            stride=_pick(self.stride, 20 if full else 1),
            muscle_channels=tuple(_pick(self.muscle_channels, MUSCLE_CHANNELS if full else ("force", "activation"))),
            touch=_pick(self.touch, bool(embodiment.touch_sensors)),
            reward_weights={name: float(weights[name]) for name in sorted(weights)},
            site_deviation=_pick(self.site_deviation, thresholds[0]),
            site_deviation_world=_pick(self.site_deviation_world, not full),
            root_deviation=_pick(self.root_deviation, thresholds[1]),
            root_angle=_pick(self.root_angle, thresholds[2]),
            seed=_pick(self.seed, 0),
        )
        resolved.check(embodiment)
        return resolved

    def check(self, embodiment: Embodiment) -> None:
        """Raise ValueError naming the field for a setting the body cannot have."""
        if self.goal not in GOAL_STYLES:
            raise ValueError(f"EnvConfig.goal must be one of {GOAL_STYLES}, got {self.goal!r}")
        if self.derived not in DERIVED_MODES:
            raise ValueError(f"EnvConfig.derived must be one of {DERIVED_MODES}, got {self.derived!r}")
        for name in ("horizon", "lookahead", "stride"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"EnvConfig.{name} must be a positive integer, got {value!r}")
        bad = [c for c in self.muscle_channels or () if c not in MUSCLE_CHANNELS]
        if bad or not self.muscle_channels:
            raise ValueError(f"EnvConfig.muscle_channels must be a non-empty subset of {MUSCLE_CHANNELS}, got {self.muscle_channels!r}")
        if self.touch and not embodiment.touch_sensors:
            raise ValueError(f"EnvConfig.touch is on but embodiment {embodiment.name!r} names no [sensors] touch")
        if self.goal == "concise" and not embodiment.has_free_root:
            raise ValueError(f"EnvConfig.goal 'concise' needs a free root; embodiment {embodiment.name!r} has a fixed base")
        for name in ("site_deviation", "root_deviation", "root_angle"):
            if not getattr(self, name) > 0:
                raise ValueError(f"EnvConfig.{name} must be > 0 (inf disables it), got {getattr(self, name)!r}")
        bad = {k: w for k, w in self.reward_weights.items() if not math.isfinite(w)}
        if bad:
            raise ValueError(f"EnvConfig.reward_weights must be finite, got {bad}")
        if not math.isfinite(self.penalty_floor):
            raise ValueError(f"EnvConfig.penalty_floor must be finite, got {self.penalty_floor!r}")
        if not any(self.reward_weights.values()):
            raise ValueError("EnvConfig.reward_weights switch every reward term off")


def _pick(value: object, default: object) -> object:
    return default if value is None else value
