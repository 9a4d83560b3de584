"""Tracking metrics of evaluation rollouts (arXiv 2603.25544; docs/evaluation.md), batched torch functions.

A rollout batch holds E episodes padded to T control steps. ``valid[e, t]`` marks the steps
whose post-step state is recorded; errors are averaged over valid steps only. The reference
is the clip frame each step was compared with, its root x-y already shifted by the episode's
start offset (the environment's re-centring), so positions compare directly.

Definitions (per step, then averaged over valid steps; "RMSE" is the root of the mean of the
squared entries over steps and entries):

* ``err_root_xyz``: RMSE of the free root's position (3 entries).
* ``err_root_yaw``: mean |yaw_sim - yaw_ref| wrapped to [-pi, pi] (rad), yaw of the root's
  (w, x, y, z) quaternion about the world z axis.
* ``err_joint_pos``: RMSE of the joint-space difference (nv entries): q_sim - q_ref for scalar
  joints, and for every quaternion (free-root and ball joints) the rotation vector of
  conj(q_ref) * q_sim (rad), i.e. the root quaternion as a rotation vector.
* ``err_joint_vel``: RMSE of qvel (nv entries).
* ``err_rpos``: RMSE of the relative site positions p_i - p_0, i = 1..S-1 (site 0 is the main
  site), 3(S-1) entries.
* ``err_site_abs`` (= MPJPE): mean over sites of the world-frame distance ||p_sim - p_ref|| (m).

Per episode: ``terminated`` (ended by absorbing termination), ``length`` (control steps),
``return`` (sum of rewards), ``coverage`` = covered frames / clip frames, where an episode
started at frame 0 covers ``length + 1`` frames when it ended without termination (the start
frame and every frame reached) and ``length`` when it terminated (the frame of the failing
step is not covered). Overall: ``early_termination_rate`` = terminated / episodes,
``frame_coverage`` = sum(covered) / sum(clip frames), ``mean_return`` / ``mean_length`` over
episodes, and every error pooled over all valid steps of all episodes (step-weighted). The same
aggregates over the clips of each motion category (``per_category``) and of each manifest
split, train / test (``per_split``), when the clips' categories and splits are given.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import torch

__all__ = [
    "ERROR_METRICS",
    "EvaluationMetrics",
    "RolloutArrays",
    "compute_metrics",
    "joint_position_error",
    "quat_to_rotvec",
    "quat_yaw",
    "relative_site_sq",
    "root_position_sq",
    "root_yaw_error",
    "site_error",
    "wrap_angle",
]

ERROR_METRICS = ("err_root_xyz", "err_root_yaw", "err_joint_pos", "err_joint_vel", "err_rpos", "err_site_abs")
_RMSE = {"err_root_xyz", "err_joint_pos", "err_joint_vel", "err_rpos"}

Array = torch.Tensor | np.ndarray


def _t(x: Array) -> torch.Tensor:
    return torch.as_tensor(x).to(torch.float64)


# ---------------------------------------------------------------------- rotations


def wrap_angle(angle: Array) -> torch.Tensor:
    """Angles wrapped to [-pi, pi)."""
    a = _t(angle)
    return torch.remainder(a + math.pi, 2 * math.pi) - math.pi


def quat_yaw(q: Array) -> torch.Tensor:
    """Heading about the world z axis of (w, x, y, z) quaternions (..., 4): the angle of the
    rotated x axis in the x-y plane."""
    w, x, y, z = _t(q).unbind(-1)
    return torch.atan2(2 * (w * z + x * y), 1 - 2 * (y * y + z * z))


def quat_to_rotvec(q: Array) -> torch.Tensor:
    """Rotation vectors (..., 3), angle in [0, pi], of (w, x, y, z) quaternions (..., 4); the
    quaternions are normalised first, and q and -q give the same vector."""
    q = _t(q)
    q = q / q.norm(dim=-1, keepdim=True)
    q = torch.where(q[..., :1] < 0, -q, q)
    v = q[..., 1:]
    n = v.norm(dim=-1, keepdim=True)
    angle = 2 * torch.atan2(n, q[..., :1])
    # angle / n -> 2 / w as n -> 0
    scale = torch.where(n > 1e-12, angle / n.clamp(min=1e-300), 2 / q[..., :1])
    return scale * v


def _quat_conj_mul(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """conj(a) * b for (w, x, y, z) quaternions."""
    aw, ax, ay, az = a.unbind(-1)
    bw, bx, by, bz = b.unbind(-1)
    return torch.stack(
        (
            aw * bw + ax * bx + ay * by + az * bz,
            aw * bx - ax * bw - ay * bz + az * by,
            aw * by + ax * bz - ay * bw - az * bx,
            aw * bz - ax * by + ay * bx - az * bw,
        ),
        dim=-1,
    )


# ---------------------------------------------------------------------- per-step errors


def root_position_sq(qpos: Array, ref_qpos: Array, root_adr: int) -> torch.Tensor:
    """Mean over x, y, z of the squared root position error, per step (...,)."""
    d = _t(qpos)[..., root_adr : root_adr + 3] - _t(ref_qpos)[..., root_adr : root_adr + 3]
    return (d * d).mean(-1)


def root_yaw_error(qpos: Array, ref_qpos: Array, root_adr: int) -> torch.Tensor:
    """|wrapped yaw difference| of the root quaternions (qpos[root_adr + 3 : root_adr + 7]), per step."""
    q, r = _t(qpos)[..., root_adr + 3 : root_adr + 7], _t(ref_qpos)[..., root_adr + 3 : root_adr + 7]
    return wrap_angle(quat_yaw(q) - quat_yaw(r)).abs()


def joint_position_error(qpos: Array, ref_qpos: Array, quat_cols: Sequence[int]) -> torch.Tensor:
    """Joint-space difference (..., nq - len(quat_cols)): scalar columns subtract, each quaternion
    starting at a column of ``quat_cols`` becomes the rotation vector of conj(q_ref) * q_sim."""
    q, r = _t(qpos), _t(ref_qpos)
    starts = sorted(int(c) for c in quat_cols)
    parts, column = [], 0
    for start in starts:
        parts.append(q[..., column:start] - r[..., column:start])
        parts.append(quat_to_rotvec(_quat_conj_mul(r[..., start : start + 4], q[..., start : start + 4])))
        column = start + 4
    parts.append(q[..., column:] - r[..., column:])
    return torch.cat(parts, dim=-1)


def relative_site_sq(site_pos: Array, ref_site_pos: Array) -> torch.Tensor:
    """Mean squared error of the site positions relative to site 0, over sites 1.. and x, y, z,
    per step; site arrays are (..., S, 3)."""
    s, r = _t(site_pos), _t(ref_site_pos)
    d = (s[..., 1:, :] - s[..., :1, :]) - (r[..., 1:, :] - r[..., :1, :])
    return (d * d).mean(dim=(-2, -1))


def site_error(site_pos: Array, ref_site_pos: Array) -> torch.Tensor:
    """Mean over sites of the world-frame distance between simulated and reference sites, per step."""
    return (_t(site_pos) - _t(ref_site_pos)).norm(dim=-1).mean(-1)


# ---------------------------------------------------------------------- aggregation


@dataclass
class RolloutArrays:
    """E evaluation episodes padded to T steps (torch or numpy arrays).

    qpos / ref_qpos (E, T, nq), qvel / ref_qvel (E, T, nv), site_pos / ref_site_pos
    (E, T, S, 3), valid (E, T) bool, and per episode: episode_length (control steps),
    episode_return, terminated (absorbing), clip_length (frames of the clip).
    """

    qpos: Array
    ref_qpos: Array
    qvel: Array
    ref_qvel: Array
    site_pos: Array
    ref_site_pos: Array
    valid: Array
    episode_length: Array
    episode_return: Array
    terminated: Array
    clip_length: Array


@dataclass
class EvaluationMetrics:
    """``per_clip[name][metric]``, ``overall[metric]``, and the overall metrics of each category
    (``per_category[category][metric]``) and split (``per_split["train" | "test"][metric]``) as
    floats (NaN where undefined, e.g. an error of an episode with no valid step, or root errors of
    a fixed-base body)."""

    per_clip: dict[str, dict[str, float]]
    overall: dict[str, float]
    per_category: dict[str, dict[str, float]] = field(default_factory=dict)
    per_split: dict[str, dict[str, float]] = field(default_factory=dict)

    def as_dict(self) -> dict:
        """JSON-ready: NaN becomes None."""

        def clean(d: dict[str, float]) -> dict[str, float | None]:
            return {k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in d.items()}

        def table(rows: dict[str, dict[str, float]]) -> dict[str, dict[str, float | None]]:
            return {n: clean(m) for n, m in rows.items()}

        return {"overall": clean(self.overall), "per_category": table(self.per_category),
                "per_split": table(self.per_split), "per_clip": table(self.per_clip)}


def _per_step_errors(r: RolloutArrays, root_adr: int, quat_cols: Sequence[int]) -> dict[str, torch.Tensor]:
    e, t = torch.as_tensor(r.valid).shape
    nan = torch.full((e, t), math.nan, dtype=torch.float64)
    errors = {
        "err_root_xyz": root_position_sq(r.qpos, r.ref_qpos, root_adr) if root_adr >= 0 else nan,
        "err_root_yaw": root_yaw_error(r.qpos, r.ref_qpos, root_adr) if root_adr >= 0 else nan,
        "err_joint_pos": joint_position_error(r.qpos, r.ref_qpos, quat_cols).pow(2).mean(-1),
        "err_joint_vel": (_t(r.qvel) - _t(r.ref_qvel)).pow(2).mean(-1),
        "err_rpos": relative_site_sq(r.site_pos, r.ref_site_pos),
        "err_site_abs": site_error(r.site_pos, r.ref_site_pos),
    }
    return errors


def _masked_mean(values: torch.Tensor, valid: torch.Tensor, dim: int | None) -> torch.Tensor:
    """Mean of ``values`` where ``valid``; NaN where nothing is valid (invalid entries may be NaN)."""
    v = torch.where(valid, values, torch.zeros_like(values))
    count = valid.sum() if dim is None else valid.sum(dim)
    total = v.sum() if dim is None else v.sum(dim)
    return torch.where(count > 0, total / count.clamp(min=1), torch.full_like(total, math.nan))


def compute_metrics(
    rollout: RolloutArrays,
    clip_names: Sequence[str],
    root_adr: int,
    quat_cols: Sequence[int],
    categories: Sequence[str] | None = None,
    splits: Sequence[str] | None = None,
) -> EvaluationMetrics:
    """Every metric of the module docstring per episode (named by ``clip_names``, one episode per
    clip), overall, and per category and split of the clips (``categories`` / ``splits``, one per
    episode, groups in sorted order). ``root_adr`` is the free root's qpos address (-1 for a fixed
    base) and ``quat_cols`` the first qpos column of every quaternion."""
    valid = torch.as_tensor(rollout.valid, dtype=torch.bool)
    e = valid.shape[0]
    for what, names in (("clip_names", clip_names), ("categories", categories), ("splits", splits)):
        if names is not None and len(names) != e:
            raise ValueError(f"{what} has {len(names)} names for {e} episodes")
    length = _t(rollout.episode_length)
    terminated = torch.as_tensor(rollout.terminated, dtype=torch.bool)
    clip_length = _t(rollout.clip_length)
    ret = _t(rollout.episode_return)
    covered = length + (~terminated).to(torch.float64)

    steps = _per_step_errors(rollout, root_adr, quat_cols)
    per_episode = {name: _masked_mean(v, valid, 1) for name, v in steps.items()}
    for name in _RMSE:
        per_episode[name] = per_episode[name].sqrt()

    def aggregate(episodes: torch.Tensor) -> dict[str, float]:
        """The overall metrics of the episodes selected by the (E,) mask."""
        pooled = {name: _masked_mean(v, valid & episodes[:, None], None) for name, v in steps.items()}
        for name in _RMSE:
            pooled[name] = pooled[name].sqrt()
        return {
            "episodes": float(episodes.sum()),
            "early_termination_rate": float(terminated[episodes].to(torch.float64).mean()),
            "frame_coverage": float(covered[episodes].sum() / clip_length[episodes].sum()),
            "mean_return": float(ret[episodes].mean()),
            "mean_length": float(length[episodes].mean()),
            **{name: float(pooled[name]) for name in ERROR_METRICS},
        }

    def grouped(labels: Sequence[str] | None) -> dict[str, dict[str, float]]:
        if labels is None:
            return {}
        return {g: aggregate(torch.tensor([label == g for label in labels], dtype=torch.bool)) for g in sorted(set(labels))}

    per_clip = {}
    for i, clip in enumerate(clip_names):
        row = {
            "terminated": float(terminated[i]),
            "coverage": float(covered[i] / clip_length[i]),
            "return": float(ret[i]),
            "length": float(length[i]),
            "clip_frames": float(clip_length[i]),
        }
        row.update({name: float(per_episode[name][i]) for name in ERROR_METRICS})
        per_clip[str(clip)] = row
    overall = aggregate(torch.ones(e, dtype=torch.bool))
    return EvaluationMetrics(per_clip=per_clip, overall=overall, per_category=grouped(categories),
                             per_split=grouped(splits))
