"""Motions: the clip format, OpenSim conversion, and the device-resident `MotionLibrary`."""

from mmimic.motion.clip import MotionClip, MotionError, check_clip, column_names, fit_clip, read_clip, write_clip
from mmimic.motion.convert import convert_opensim, derive_clip
from mmimic.motion.library import MotionFrame, MotionLibrary

__all__ = [
    "MotionClip",
    "MotionError",
    "MotionFrame",
    "MotionLibrary",
    "check_clip",
    "column_names",
    "convert_opensim",
    "derive_clip",
    "fit_clip",
    "read_clip",
    "write_clip",
]
