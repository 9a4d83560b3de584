"""IK targets: a source's keypoints carried over to the body's proportions, at the output rate.

Skeletons differ in proportions (and in where exactly they put a joint centre), so the source's
keypoints are not reachable as they are. `body_targets` keeps the source's *directions* and
takes the *lengths* from the body: walking the bone tree of `keypoints.BONES` from the
mid-hip point, each child is placed at its parent plus the source's parent->child vector scaled
by (body bone length / source bone length, its median over the clip). The mid-hip trajectory
is the source's scaled by the ratio of leg lengths (hip-knee-ankle), so strides shrink or grow
with the legs. Where the source orients the feet, the ball of the foot is placed from the
foot's frame with the body's own ankle-to-ball offset, so the foot's pitch comes from the
source foot rather than from where each skeleton happens to put its toe joint. Body
orientation targets are the source segments' canonical frames turned into the body's segment
frames.
"""

from __future__ import annotations

from dataclasses import dataclass

import mujoco
import numpy as np
from scipy.spatial.transform import Rotation, Slerp

from mmimic.motion.kinematics import posed
from mmimic.motion.resample import interpolate_columns, output_frames
from mmimic.retarget.keypoints import (
    BONES,
    FULLBODY_AXES,
    KEYPOINTS,
    LEG_BONES,
    MID_HIP,
    MID_SHOULDER,
    SIDES,
    midpoint,
)
from mmimic.retarget.source import SourceMotion


@dataclass(frozen=True)
class BodyGeometry:
    """The body's rest proportions: bone lengths, each foot's ankle-to-ball offset in the
    body's canonical frame, each segment body's frame relative to the canonical one, and the
    rest positions of the keypoints and extra landmarks in canonical coordinates (forward,
    left, up) from the mid-hip point."""

    lengths: dict[tuple[str, str], float]
    toe_offsets: dict[str, np.ndarray]
    segment_offsets: dict[str, np.ndarray]
    rest_points: dict[str, np.ndarray]

    @property
    def leg_length(self) -> float:
        return float(np.mean([self.lengths[b] for b in LEG_BONES]) * 2.0)


def body_geometry(
    model: mujoco.MjModel,
    rest_qpos: np.ndarray,
    points: dict[str, int],
    segments: dict[str, int],
    landmarks: dict[str, int],
) -> BodyGeometry:
    """Measure the body in its rest pose `rest_qpos`: keypoint, segment and landmark names ->
    body ids (each body's origin)."""
    data = posed(model, rest_qpos)
    pos = {k: data.xpos[b].copy() for k, b in {**points, **landmarks}.items()}
    lengths = {(a, b): float(np.linalg.norm(midpoint(pos, b) - midpoint(pos, a))) for a, b in BONES}
    toe = {s: FULLBODY_AXES.T @ (pos[f"toe_{s}"] - pos[f"ankle_{s}"]) for s in SIDES}
    offsets = {s: FULLBODY_AXES.T @ data.xmat[b].reshape(3, 3) for s, b in segments.items()}
    centre = midpoint(pos, MID_HIP)
    rest = {k: FULLBODY_AXES.T @ (p - centre) for k, p in pos.items()}
    return BodyGeometry(lengths, toe, offsets, rest)


@dataclass
class Targets:
    """Per output frame: keypoint targets (T, 3) and body-frame targets (T, 3, 3); `scale` is
    the root trajectory's scale, `proportion_rmse` (m) how far the source's own proportions
    (scaled uniformly by `scale`) are from these targets."""

    fps: float
    positions: dict[str, np.ndarray]
    frames: dict[str, np.ndarray]
    scale: float
    proportion_rmse: float

    @property
    def num_frames(self) -> int:
        return int(next(iter(self.positions.values())).shape[0])


def body_targets(source: SourceMotion, geometry: BodyGeometry, fps: float) -> Targets:
    """The IK targets of `source` for a body of `geometry`, resampled to `fps` (module docstring)."""
    positions, frames = _resample(source, fps)
    leg = sum(np.median(np.linalg.norm(positions[b] - positions[a], axis=-1)) for a, b in LEG_BONES)
    scale = geometry.leg_length / (leg / len(SIDES))
    mid = midpoint(positions, MID_HIP)
    start = mid[0] * np.array([1.0, 1.0, 0.0])
    out = {MID_HIP: scale * (mid - start)}
    uniform = {MID_HIP: out[MID_HIP]}
    for parent, child in BONES:
        if child.startswith("toe") and f"foot_{child[-1]}" in frames:
            out[child] = out[parent] + frames[f"foot_{child[-1]}"] @ geometry.toe_offsets[child[-1]]
            continue
        if child != MID_SHOULDER and child not in positions:
            continue
        vector = midpoint(positions, child) - midpoint(positions, parent)
        source_length = np.median(np.linalg.norm(vector, axis=-1))
        out[child] = out[parent] + vector * (geometry.lengths[(parent, child)] / max(source_length, 1e-9))
        uniform[child] = uniform[parent] + vector * scale
    tracked = [k for k in KEYPOINTS if k in uniform and k in out]
    error = np.stack([uniform[k] - out[k] for k in tracked])
    body_frames = {s: frames[s] @ geometry.segment_offsets[s] for s in frames if s in geometry.segment_offsets}
    return Targets(
        fps=fps,
        positions={k: out[k] for k in KEYPOINTS if k in out},
        frames=body_frames,
        scale=float(scale),
        proportion_rmse=float(np.sqrt(np.mean(np.sum(error**2, axis=-1)))),
    )


def _resample(source: SourceMotion, fps: float) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """Keypoints (linear) and segment frames (SLERP) on the grid k / fps inside the clip."""
    times = np.arange(output_frames(source.num_frames, source.fps, fps)) / fps
    src_times = np.arange(source.num_frames) / source.fps
    positions = {k: interpolate_columns(times, src_times, v) for k, v in source.positions.items()}
    frames = {s: Slerp(src_times, Rotation.from_matrix(r))(times).as_matrix() for s, r in source.frames.items()}
    return positions, frames
