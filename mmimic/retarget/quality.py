"""Retargeting quality checks (MuscleMimic's `msk_metrics`, arXiv 2603.25544; docs/retargeting.md).

Per clip, on the stored (float32) trajectory:

* **joint-limit violation %**: joint-frames of limited hinge and slide joints whose value lies
  outside the range by more than 1e-5, over all such joint-frames;
* **penetration %** and **max penetration** (m): frames whose lowest collision-geom point is
  more than 1 mm below the floor, and the deepest point over the clip;
* **floating height** (m): the clip's lowest collision-geom point above the floor (0 if it
  touches or penetrates);
* **tendon jump rate %**: for every tendon `i` and frame `t >= 1`, the per-frame change
  `r_it = |L_it - L_i(t-1)| / L0_i` (`L0` its length in the body's rest pose) is a *jump*
  when it exceeds both 1e-3 and 10 x the tendon's running average `e_i(t-1)`, an exponential
  moving average `e_it = 0.99 e_i(t-1) + 0.01 r_it` started at the tendon's mean change over
  the clip, `e_i0` (a cold start, `e_i0 = r_i1`, would flag every tendon whose clip begins
  slowly: 3.9 % of the AMP walk's tendon-frames, all within its first second); the rate is
  jumps over all tendon-frames; **tendon max jump** is the largest `r` of a jump;
* **keypoint RMSE** (m): root mean square distance between the IK's keypoints and targets
  over all keypoints and frames (given by the caller);
* **marker RMSE** and **marker max error** (m), marker trials: as OpenSim's IK reports them,
  over the weighted markers and the frames that see them, on the body scaled to the subject;
  the report's details give each marker's RMS, maximum and missing frames (given by the caller);
* **fps**: output frames per second of retargeting wall time (given by the caller).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import mujoco
import numpy as np

from mmimic.motion.floor import lowest_points
from mmimic.motion.kinematics import per_frame

LIMIT_TOLERANCE = 1e-5
PENETRATION_TOLERANCE = 1e-3
JUMP_FLOOR = 1e-3
JUMP_FACTOR = 10.0
EMA_ALPHA = 0.01


@dataclass(frozen=True)
class Thresholds:
    """A clip fails when a metric exceeds its threshold (the published GMR-Fit figures,
    MuscleMimic's 2.5 cm floating limit, and for marker trials OpenSim's IK guidance of a
    marker RMS under 2 cm; the largest marker error is reported, not a threshold: one toe
    marker in one frame would fail a clip)."""

    joint_limit_violation_pct: float = 0.27
    tendon_jump_rate_pct: float = 3.2
    max_penetration_m: float = 0.001
    floating_height_m: float = 0.025
    keypoint_rmse_m: float = 0.025
    marker_rmse_m: float = 0.02

    def failures(self, metrics: dict[str, float]) -> list[str]:
        """The metrics of `metrics` above their thresholds, each as 'name value > threshold'."""
        return [
            f"{name} {metrics[name]:.4g} > {limit:g}"
            for name, limit in asdict(self).items()
            if name in metrics and metrics[name] > limit
        ]


def joint_limit_violation_pct(model: mujoco.MjModel, qpos: np.ndarray) -> float:
    """Percent of limited hinge/slide joint-frames outside their range by more than 1e-5."""
    scalar = (model.jnt_type == mujoco.mjtJoint.mjJNT_HINGE) | (model.jnt_type == mujoco.mjtJoint.mjJNT_SLIDE)
    joints = np.flatnonzero(scalar & (model.jnt_limited != 0))
    if not joints.size:
        return 0.0
    values = qpos[:, model.jnt_qposadr[joints]]
    low, high = model.jnt_range[joints, 0], model.jnt_range[joints, 1]
    outside = (values < low - LIMIT_TOLERANCE) | (values > high + LIMIT_TOLERANCE)
    return float(100.0 * outside.mean())


def tendon_lengths(model: mujoco.MjModel, qpos: np.ndarray) -> np.ndarray:
    """(T, ntendon) tendon lengths of each frame."""

    def lengths(data: mujoco.MjData) -> np.ndarray:
        mujoco.mj_comPos(model, data)
        mujoco.mj_tendon(model, data)
        return data.ten_length

    return per_frame(model, qpos, lengths)


def tendon_jumps(lengths: np.ndarray, rest: np.ndarray) -> tuple[float, float]:
    """(jump rate %, largest jump) of tendon lengths (T, n) with rest lengths (n,) (module docstring)."""
    if lengths.shape[0] < 2 or lengths.shape[1] == 0:
        return 0.0, 0.0
    change = np.abs(np.diff(lengths, axis=0)) / np.maximum(np.abs(rest), 1e-9)
    average = change.mean(axis=0)
    jumps = np.zeros(change.shape[1], dtype=np.int64)
    largest = 0.0
    for r in change:
        jump = (r > JUMP_FLOOR) & (r > JUMP_FACTOR * average)
        jumps += jump
        if jump.any():
            largest = max(largest, float(r[jump].max()))
        average += EMA_ALPHA * (r - average)
    return float(100.0 * jumps.sum() / change.size), largest


def clip_quality(model: mujoco.MjModel, rest_qpos: np.ndarray, qpos: np.ndarray, floor: bool) -> dict[str, float]:
    """The trajectory metrics of `qpos` (T, nq) for `model` (the module docstring's list, less
    the RMSE and fps); `floor` adds the floor metrics (bodies with a free root)."""
    metrics = {"joint_limit_violation_pct": joint_limit_violation_pct(model, qpos)}
    if floor:
        lowest = lowest_points(model, qpos)
        metrics["penetration_pct"] = float(100.0 * np.mean(lowest < -PENETRATION_TOLERANCE))
        metrics["max_penetration_m"] = float(max(0.0, -lowest.min()))
        metrics["floating_height_m"] = float(max(0.0, lowest.min()))
    rest = tendon_lengths(model, rest_qpos[None])[0]
    rate, largest = tendon_jumps(tendon_lengths(model, qpos), rest)
    metrics["tendon_jump_rate_pct"] = rate
    metrics["tendon_max_jump"] = largest
    return metrics
