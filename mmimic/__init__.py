"""mmimic: motion imitation for muscle-driven human models on NVIDIA Warp and PyTorch."""

import logging
import os

import warp as wp

# Warp reports every kernel module it loads; set MMIMIC_WARP_VERBOSE=1 to see them.
wp.config.log_level = logging.INFO if os.environ.get("MMIMIC_WARP_VERBOSE", "0") == "1" else logging.WARNING

from mmimic.checkpoint import CheckpointError, load_policy
from mmimic.embodiment import Embodiment, EmbodimentError, available_embodiments, load_embodiment
from mmimic.env import EnvConfig, ImitationEnv, RewardError, apply_reward_args, rewards
from mmimic.motion import MotionClip, MotionError, MotionFrame, MotionLibrary, read_clip, write_clip
from mmimic.muscles import FatigueMuscle, MujocoMuscle, MuscleModel, register_muscle_model
from mmimic.retarget import Retargeter, RetargetError
from mmimic.simulator import ContactOverflowError, Simulator

__all__ = [
    "CheckpointError",
    "ContactOverflowError",
    "Embodiment",
    "EmbodimentError",
    "EnvConfig",
    "FatigueMuscle",
    "ImitationEnv",
    "MotionClip",
    "MotionError",
    "MotionFrame",
    "MotionLibrary",
    "MujocoMuscle",
    "MuscleModel",
    "RetargetError",
    "Retargeter",
    "RewardError",
    "Simulator",
    "apply_reward_args",
    "available_embodiments",
    "load_embodiment",
    "load_policy",
    "read_clip",
    "register_muscle_model",
    "rewards",
    "write_clip",
]
