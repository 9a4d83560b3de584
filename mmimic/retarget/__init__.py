"""Retargeting human motion capture (AMASS, BVH, OpenSim, AMP) onto the muscle bodies.

    from mmimic.retarget import Retargeter, read_amp
    retargeter = Retargeter(mmimic.load_embodiment("fullbody"))
    result = retargeter.run(read_amp("amp_humanoid_walk.npz"))
    result.clip, result.metrics, result.failures

Sources are reduced to canonical keypoints (`keypoints`), carried over to the body's
proportions (`targets`), solved frame by frame by damped least squares in the body's reduced
coordinates (`ik`, with `mmimic.coupling`), put on the floor (`mmimic.motion.floor`) and checked (`quality`).
"""

from mmimic.retarget.amass import read_amass_smplx, read_amass_template, template_skeleton
from mmimic.retarget.amp import read_amp
from mmimic.retarget.bvh import NameMap, read_bvh, read_name_map
from mmimic.retarget.ik import IKSettings
from mmimic.retarget.marker_ik import MarkerMotion, prepare_markers, read_trial
from mmimic.retarget.markers import MarkerSet, read_ik_tasks, read_marker_set
from mmimic.retarget.pipeline import Retargeter, RetargetResult, derive
from mmimic.retarget.quality import Thresholds
from mmimic.retarget.readers import ReadOptions, read_keypoint_source, source_format
from mmimic.retarget.source import RetargetError, SourceMotion

__all__ = [
    "IKSettings",
    "MarkerMotion",
    "MarkerSet",
    "NameMap",
    "ReadOptions",
    "RetargetError",
    "RetargetResult",
    "Retargeter",
    "SourceMotion",
    "Thresholds",
    "derive",
    "prepare_markers",
    "read_amass_smplx",
    "read_amass_template",
    "read_amp",
    "read_bvh",
    "read_ik_tasks",
    "read_keypoint_source",
    "read_marker_set",
    "read_name_map",
    "read_trial",
    "source_format",
    "template_skeleton",
]
