"""Source skeletons: a joint tree with rest offsets, forward kinematics, and axis conventions.

Every reader (AMP, BVH, AMASS) turns its file into local joint rotations on a `Skeleton` and
calls `forward_kinematics`; a y-up source's world positions and rotations are then taken into
mmimic's world (z up, metres) by `Y_UP_TO_Z_UP`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mmimic.retarget.source import SourceMotion

Y_UP_TO_Z_UP = np.array([[1.0, 0.0, 0.0], [0.0, 0.0, -1.0], [0.0, 1.0, 0.0]])
"""Rotation taking y-up axes to z-up ones (x kept, +y -> +z, +z -> -y)."""


@dataclass(frozen=True)
class Skeleton:
    """A joint tree: `parents[j] < j` (-1 for the root) and each joint's rest offset from its
    parent in the parent's frame (the root's offset is ignored)."""

    names: tuple[str, ...]
    parents: np.ndarray
    offsets: np.ndarray

    def index(self, name: str) -> int:
        return self.names.index(name)


def forward_kinematics(skeleton: Skeleton, local_rot: np.ndarray, root_pos: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """World joint positions (T, J, 3) and rotations (T, J, 3, 3) from local rotations
    (T, J, 3, 3) and root positions (T, 3)."""
    frames, joints = local_rot.shape[:2]
    pos = np.empty((frames, joints, 3))
    rot = np.empty((frames, joints, 3, 3))
    for j, parent in enumerate(skeleton.parents):
        if parent < 0:
            pos[:, j] = root_pos
            rot[:, j] = local_rot[:, j]
        else:
            pos[:, j] = pos[:, parent] + rot[:, parent] @ skeleton.offsets[j]
            rot[:, j] = rot[:, parent] @ local_rot[:, j]
    return pos, rot


def canonical_axes(forward: np.ndarray, left: np.ndarray, up: np.ndarray) -> np.ndarray:
    """The (3, 3) matrix whose columns are a body's forward, left and up directions (unit)."""
    return np.stack([forward, left, up], axis=1).astype(np.float64)


def source_motion(
    path: Path,
    fps: float,
    skeleton: Skeleton,
    positions: np.ndarray,
    rotations: np.ndarray,
    keypoint_joints: dict[str, str],
    segment_joints: dict[str, str],
    rest_axes: np.ndarray,
    reader: str,
) -> SourceMotion:
    """A `SourceMotion` from world FK results (z up, metres): keypoint `k` is joint
    `keypoint_joints[k]`'s position; segment `s`'s canonical frame is joint
    `segment_joints[s]`'s rotation times `rest_axes` (the body's forward, left and up axes in
    the joints' rest frames, which are the source's world axes: the rest pose has no rotation)."""
    return SourceMotion(
        path=path,
        fps=float(fps),
        positions={k: positions[:, skeleton.index(j)] for k, j in keypoint_joints.items()},
        frames={s: rotations[:, skeleton.index(j)] @ rest_axes for s, j in segment_joints.items()},
        reader=reader,
    )
