"""Motions: the clip format, OpenSim conversion, and the device-resident `MotionLibrary`."""

from mmimic.motion.clip import MotionClip, MotionError, check_clip, column_names, fit_clip, read_clip, write_clip
from mmimic.motion.convert import ConversionReport, convert_opensim, derive_clip
from mmimic.motion.library import MotionFrame, MotionLibrary
from mmimic.motion.manifest import ClipEntry, collect_clips

__all__ = [
    "ClipEntry",
    "ConversionReport",
    "MotionClip",
    "MotionError",
    "MotionFrame",
    "MotionLibrary",
    "check_clip",
    "collect_clips",
    "column_names",
    "convert_opensim",
    "derive_clip",
    "fit_clip",
    "read_clip",
    "write_clip",
]
