"""The motion-imitation environment: configuration, observation layout, reward registry and `ImitationEnv`."""

from mmimic.env import rewards
from mmimic.env.config import EnvConfig
from mmimic.env.env import ImitationEnv
from mmimic.env.layout import ObsLayout, build_layout
from mmimic.env.reference import MotionSource
from mmimic.env.rewards import RewardError, WorldState, apply_reward_args

__all__ = [
    "EnvConfig",
    "ImitationEnv",
    "MotionSource",
    "ObsLayout",
    "RewardError",
    "WorldState",
    "apply_reward_args",
    "build_layout",
    "rewards",
]
