"""Time handling for joint trajectories: interpolation between frames, resampling, velocities."""

from __future__ import annotations

import math

import mujoco
import numpy as np
import torch

from mmimic.motion.quaternion import slerp


def quaternion_index(quat_cols: list[int] | torch.Tensor, device: torch.device | str = "cpu") -> torch.Tensor:
    """(Q, 4) int64 column indices of the quaternions starting at `quat_cols`."""
    starts = torch.as_tensor(quat_cols, dtype=torch.int64, device=device).reshape(-1, 1)
    return starts + torch.arange(4, device=device)


def interpolate(q0: torch.Tensor, q1: torch.Tensor, alpha: torch.Tensor, quat_index: torch.Tensor) -> torch.Tensor:
    """Rows of `q0` (B, n) towards `q1` by `alpha` (B,): linear, except SLERP on the quaternion
    columns `quat_index` (Q, 4)."""
    a = alpha.unsqueeze(-1)
    out = torch.lerp(q0, q1, a)
    if quat_index.numel():
        out[:, quat_index] = slerp(q0[:, quat_index], q1[:, quat_index], a.unsqueeze(-1))
    return out


def frame_weights(times: torch.Tensor, fps: float, length: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """For times (s) in clips of `length` frames: the frames before and after, and the weight of
    the later one. Times outside [0, (length-1)/fps] clamp to the first or last frame."""
    position = times * fps
    last = length - 1
    i0 = torch.minimum(torch.floor(position).to(torch.int64).clamp(min=0), last)
    i1 = torch.minimum(i0 + 1, last)
    alpha = (position - i0.to(position.dtype)).clamp(0.0, 1.0)
    return i0, i1, alpha


def output_frames(frames: int, fps_in: float, fps_out: float) -> int:
    """Frames of the time grid k / `fps_out` that fits inside `frames` samples at `fps_in`."""
    return math.floor((frames - 1) * fps_out / fps_in + 1e-9) + 1


def interpolate_columns(times: np.ndarray, source_times: np.ndarray, values: np.ndarray) -> np.ndarray:
    """`values` (T, C) at `source_times`, linearly interpolated at `times`, column by column."""
    return np.stack([np.interp(times, source_times, values[:, c]) for c in range(values.shape[1])], axis=1)


def resample(
    qpos: np.ndarray, qvel: np.ndarray | None, fps_in: float, fps_out: float, quat_cols: list[int]
) -> tuple[np.ndarray, np.ndarray | None]:
    """Resample a trajectory to `fps_out` on the time grid k / fps_out that fits inside it:
    SLERP for quaternions, linear otherwise (qvel too, when given)."""
    frames = qpos.shape[0]
    times = torch.arange(output_frames(frames, fps_in, fps_out), dtype=torch.float64) / fps_out
    i0, i1, alpha = frame_weights(times, fps_in, torch.tensor(frames))
    index = quaternion_index(quat_cols)
    q = torch.from_numpy(qpos)
    new_qpos = interpolate(q[i0], q[i1], alpha, index).numpy()
    if qvel is None:
        return new_qpos, None
    v = torch.from_numpy(qvel)
    return new_qpos, torch.lerp(v[i0], v[i1], alpha.unsqueeze(-1)).numpy()


def differentiate(model: mujoco.MjModel, qpos: np.ndarray, fps: float) -> np.ndarray:
    """Joint velocities (T, nv) by MuJoCo's position differencing: central differences inside
    the clip, one-sided at its first and last frame."""
    frames = qpos.shape[0]
    qvel = np.zeros((frames, model.nv))
    dt = 1.0 / fps
    for t in range(frames):
        a, b = max(t - 1, 0), min(t + 1, frames - 1)
        mujoco.mj_differentiatePos(model, qvel[t], (b - a) * dt, qpos[a], qpos[b])
    return qvel
