"""The motion-imitation environment: configuration, observation layout, reward registry and `ImitationEnv`."""

from mmimic.env import rewards
from mmimic.env.config import EnvConfig
from mmimic.env.env import ImitationEnv
from mmimic.env.rewards import RewardError, apply_reward_args

__all__ = [
    "EnvConfig",
    "ImitationEnv",
    "RewardError",
    "apply_reward_args",
    "rewards",
]
