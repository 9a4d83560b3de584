"""Retargeting human motion capture (AMASS, BVH, OpenSim, AMP) onto the muscle bodies.

    from mmimic.retarget import Retargeter, read_amp
    retargeter = Retargeter(mmimic.load_embodiment("fullbody"))
    result = retargeter.run(read_amp("amp_humanoid_walk.npz"))
    result.clip, result.metrics, result.failures

Sources are reduced to canonical keypoints (`keypoints`), carried over to the body's
proportions (`targets`), solved frame by frame by damped least squares in the body's reduced
coordinates (`ik`, with `mmimic.coupling`), put on the floor (`mmimic.motion.floor`) and checked (`quality`).
"""

from mmimic.retarget.amp import read_amp
from mmimic.retarget.bvh import read_bvh, read_name_map
from mmimic.retarget.pipeline import Retargeter, RetargetResult, derive
from mmimic.retarget.quality import Thresholds
from mmimic.retarget.readers import ReadOptions, read_keypoint_source
from mmimic.retarget.source import RetargetError

__all__ = [
    "ReadOptions",
    "RetargetError",
    "RetargetResult",
    "Retargeter",
    "Thresholds",
    "derive",
    "read_amp",
    "read_bvh",
    "read_keypoint_source",
    "read_name_map",
]
