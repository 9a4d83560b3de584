"""Reader for AMP humanoid motions (IsaacGymEnvs / poselib arrays saved as `.npz`).

Fields: `rotation_xyzw` (T, J, 4) local joint quaternions (x, y, z, w), `root_translation`
(T, 3) metres, `parent_indices` (J,), `local_translation` (J, 3) bone offsets in metres,
`node_names` (J,), `fps`. The world is z up; the humanoid's rest pose (no rotation) stands
facing +x with its left side at +y and the arms hanging. A file whose every pose is stored
twice in a row (the IsaacGymEnvs CMU walk and run: 30 fps data in 60 fps files) is read at
half the rate without the repeats, which would otherwise make the motion stop and jump.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from scipy.spatial.transform import Rotation

from mmimic.retarget.keypoints import SIDES
from mmimic.retarget.skeleton import Skeleton, forward_kinematics, source_motion
from mmimic.retarget.source import RetargetError, SourceMotion, read_npz

FIELDS = ("rotation_xyzw", "root_translation", "parent_indices", "local_translation", "node_names", "fps")
_SIDE = {"l": "left", "r": "right"}
KEYPOINT_JOINTS = {
    f"{kp}_{s}": f"{_SIDE[s]}_{node}"
    for s in SIDES
    for kp, node in (
        ("hip", "thigh"), ("knee", "shin"), ("ankle", "foot"),
        ("shoulder", "upper_arm"), ("elbow", "lower_arm"), ("wrist", "hand"),
    )
}
SEGMENT_JOINTS = {"pelvis": "pelvis", "torso": "torso", "foot_l": "left_foot", "foot_r": "right_foot"}
REST_AXES = np.eye(3)


def read_amp(path: str | Path) -> SourceMotion:
    """Read an AMP humanoid `.npz`; `RetargetError` naming the file for anything missing or malformed."""
    path = Path(path)
    if path.suffix == ".npy":
        raise RetargetError(path, "AMP .npy files are pickled poselib objects and are not read; use the .npz arrays")
    data = read_npz(path)
    missing = [f for f in FIELDS if f not in data]
    if missing:
        raise RetargetError(path, f"missing AMP field(s) {', '.join(missing)}")
    rot, root = data["rotation_xyzw"], data["root_translation"]
    names = tuple(str(n) for n in data["node_names"])
    joints = len(names)
    if rot.ndim != 3 or rot.shape[1:] != (joints, 4):
        raise RetargetError(path, f"rotation_xyzw must be (frames, {joints}, 4), got {rot.shape}")
    if root.shape != (rot.shape[0], 3):
        raise RetargetError(path, f"root_translation must be ({rot.shape[0]}, 3), got {root.shape}")
    if rot.shape[0] < 2:
        raise RetargetError(path, f"{rot.shape[0]} frame(s); a clip needs at least 2")
    absent = sorted({*KEYPOINT_JOINTS.values(), *SEGMENT_JOINTS.values()} - set(names))
    if absent:
        raise RetargetError(path, f"not the AMP humanoid: no node(s) {', '.join(absent)}")
    parents = np.asarray(data["parent_indices"], dtype=np.int64)
    if parents.shape != (joints,) or parents[0] >= 0 or np.any(parents[1:] >= np.arange(1, joints)):
        raise RetargetError(path, "parent_indices must list each node's parent before it, the root first (-1)")
    norms = np.linalg.norm(rot, axis=-1)
    if not np.all(np.isfinite(rot)) or np.abs(norms - 1).max() > 1e-3:
        raise RetargetError(path, "rotation_xyzw holds NaN/inf or non-unit quaternions")
    fps, note = float(data["fps"]), None
    if _pairs_repeated(rot, root):
        rot, root, fps = rot[::2], root[::2], fps / 2
        note = f"every pose is stored twice (data at {fps:g} fps in a {2 * fps:g} fps file): the repeats were dropped"
    skeleton = Skeleton(names, parents, np.asarray(data["local_translation"], dtype=np.float64))
    local = Rotation.from_quat(rot.reshape(-1, 4).astype(np.float64)).as_matrix().reshape(*rot.shape[:2], 3, 3)
    pos, world = forward_kinematics(skeleton, local, root.astype(np.float64))
    motion = source_motion(path, fps, skeleton, pos, world, KEYPOINT_JOINTS, SEGMENT_JOINTS, REST_AXES, "amp")
    motion.notes += [note] if note else []
    return motion


def _pairs_repeated(rot: np.ndarray, root: np.ndarray) -> bool:
    """Whether every odd frame repeats the frame before it exactly (and the clip has an even
    number of frames, at least 4): the IsaacGymEnvs CMU motions store 30 fps data at 60 fps so."""
    if len(rot) < 4 or len(rot) % 2:
        return False
    return bool(np.array_equal(rot[1::2], rot[::2]) and np.array_equal(root[1::2], root[::2]))
