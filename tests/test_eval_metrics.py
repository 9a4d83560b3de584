"""Evaluation metrics against hand computation on a tiny synthetic rollout."""

from __future__ import annotations

import math

import numpy as np
import pytest

from mmimic.eval.metrics import RolloutArrays, compute_metrics, quat_to_rotvec, quat_yaw, wrap_angle


def z_quat(angle: float) -> list[float]:
    return [math.cos(angle / 2), 0.0, 0.0, math.sin(angle / 2)]


def x_quat(angle: float) -> list[float]:
    return [math.cos(angle / 2), math.sin(angle / 2), 0.0, 0.0]


def synthetic() -> RolloutArrays:
    """Two episodes, 3 padded steps, a free root (7 qpos) + 2 hinges, 3 sites.

    Episode 0 ("walk", 4 frames): 3 valid steps, not terminated; root off by (0.3, 0, 0.4),
    hinges by (0.1, -0.2), root yaw by 0.2 rad in steps 0-1 and, in step 2, the reference at
    yaw 3.0 and the simulation at -3.0 (2 pi - 6 apart across the wrap); every qvel entry off by
    0.5; all sites shifted by (0.1, 0, 0). Episode 1 ("run", 5 frames): terminated after 2 steps,
    1 valid step: root off by (0, 0.6, 0), rolled 0.5 rad about x (no yaw), qvel[0] off by 2,
    site 2 off by (0, 0, 0.3). Invalid steps hold NaN, which must not leak.
    """
    e, t, nq, nv = 2, 3, 9, 8
    qpos = np.full((e, t, nq), np.nan)
    ref = np.zeros((e, t, nq))
    ref[..., 3] = 1.0
    qvel = np.full((e, t, nv), np.nan)
    ref_qvel = np.zeros((e, t, nv))
    ref_sites = np.broadcast_to(np.array([[0.0, 0, 0], [1, 0, 0], [0, 1, 0]]), (e, t, 3, 3)).copy()
    sites = np.full((e, t, 3, 3), np.nan)

    for step in range(3):
        qpos[0, step, :3] = [0.3, 0.0, 0.4]
        qpos[0, step, 3:7] = z_quat(0.2)
        qpos[0, step, 7:] = [0.1, -0.2]
        qvel[0, step] = 0.5
        sites[0, step] = ref_sites[0, step] + [0.1, 0.0, 0.0]
    ref[0, 2, 3:7] = z_quat(3.0)
    qpos[0, 2, 3:7] = z_quat(-3.0)

    qpos[1, 0, :3] = [0.0, 0.6, 0.0]
    qpos[1, 0, 3:7] = x_quat(0.5)
    qpos[1, 0, 7:] = 0.0
    qvel[1, 0] = 0.0
    qvel[1, 0, 0] = 2.0
    sites[1, 0] = ref_sites[1, 0]
    sites[1, 0, 2] += [0.0, 0.0, 0.3]

    return RolloutArrays(
        qpos=qpos, ref_qpos=ref, qvel=qvel, ref_qvel=ref_qvel, site_pos=sites, ref_site_pos=ref_sites,
        valid=np.array([[True, True, True], [True, False, False]]),
        episode_length=np.array([3, 2]), episode_return=np.array([5.0, 1.5]),
        terminated=np.array([False, True]), clip_length=np.array([4, 5]),
    )


def test_metrics_equal_hand_computation() -> None:
    m = compute_metrics(synthetic(), ["walk", "run"], root_adr=0, quat_cols=[3])
    wrap = 2 * math.pi - 6.0  # 0.2832 rad
    walk, run, overall = m.per_clip["walk"], m.per_clip["run"], m.overall

    # episode bookkeeping
    assert (walk["terminated"], run["terminated"]) == (0.0, 1.0)
    assert walk["coverage"] == pytest.approx(4 / 4) and run["coverage"] == pytest.approx(2 / 5)
    assert overall["early_termination_rate"] == pytest.approx(0.5)
    assert overall["frame_coverage"] == pytest.approx((4 + 2) / (4 + 5))
    assert overall["mean_return"] == pytest.approx(3.25) and overall["mean_length"] == pytest.approx(2.5)

    # root position: mean over xyz of squared errors, then over steps, then sqrt
    assert walk["err_root_xyz"] == pytest.approx(math.sqrt(0.25 / 3))
    assert run["err_root_xyz"] == pytest.approx(math.sqrt(0.36 / 3))
    assert overall["err_root_xyz"] == pytest.approx(math.sqrt((3 * 0.25 / 3 + 0.36 / 3) / 4))

    # yaw: a roll about x has no yaw; the wrap gives 2 pi - 6, not 6
    assert walk["err_root_yaw"] == pytest.approx((0.2 + 0.2 + wrap) / 3)
    assert run["err_root_yaw"] == pytest.approx(0.0, abs=1e-12)
    assert overall["err_root_yaw"] == pytest.approx((0.2 + 0.2 + wrap) / 4)

    # joint positions: 8 entries (root xyz, root rotation vector, 2 hinges)
    walk_sq = [0.25 + 0.2**2 + 0.05, 0.25 + 0.2**2 + 0.05, 0.25 + wrap**2 + 0.05]
    run_sq = 0.36 + 0.5**2
    assert walk["err_joint_pos"] == pytest.approx(math.sqrt(sum(walk_sq) / 3 / 8))
    assert run["err_joint_pos"] == pytest.approx(math.sqrt(run_sq / 8))
    assert overall["err_joint_pos"] == pytest.approx(math.sqrt((sum(walk_sq) + run_sq) / 8 / 4))

    # joint velocities
    assert walk["err_joint_vel"] == pytest.approx(0.5)
    assert run["err_joint_vel"] == pytest.approx(math.sqrt(4 / 8))
    assert overall["err_joint_vel"] == pytest.approx(math.sqrt((3 * 0.25 + 0.5) / 4))

    # relative sites: a common shift is no error; site 2 lifted 0.3 m over 6 entries
    assert walk["err_rpos"] == pytest.approx(0.0, abs=1e-12)
    assert run["err_rpos"] == pytest.approx(math.sqrt(0.09 / 6))
    assert overall["err_rpos"] == pytest.approx(math.sqrt(0.09 / 6 / 4))

    # absolute sites (MPJPE): mean distance over the 3 sites
    assert walk["err_site_abs"] == pytest.approx(0.1)
    assert run["err_site_abs"] == pytest.approx(0.1)
    assert overall["err_site_abs"] == pytest.approx(0.1)


def test_fixed_base_and_empty_episode_give_none_in_json() -> None:
    rollout = synthetic()
    rollout.valid = np.array([[True, True, True], [False, False, False]])
    m = compute_metrics(rollout, ["walk", "run"], root_adr=-1, quat_cols=[3])
    data = m.as_dict()
    assert data["overall"]["err_root_xyz"] is None and data["overall"]["err_root_yaw"] is None
    assert data["per_clip"]["run"]["err_site_abs"] is None
    assert data["overall"]["err_site_abs"] == pytest.approx(0.1)
    with pytest.raises(ValueError, match="clip_names"):
        compute_metrics(rollout, ["walk"], root_adr=0, quat_cols=[3])


def test_rotation_helpers() -> None:
    axis = np.array([1.0, -2.0, 0.5]) / np.linalg.norm([1.0, -2.0, 0.5])
    angle = 2.5
    q = np.concatenate([[math.cos(angle / 2)], math.sin(angle / 2) * axis])
    assert np.allclose(quat_to_rotvec(q).numpy(), angle * axis)
    assert np.allclose(quat_to_rotvec(-q).numpy(), angle * axis)
    assert np.allclose(quat_to_rotvec(np.array([1.0, 0, 0, 0])).numpy(), 0.0)
    assert float(quat_yaw(np.array(z_quat(-1.2)))) == pytest.approx(-1.2)
    assert float(wrap_angle(np.array(3 * math.pi / 2))) == pytest.approx(-math.pi / 2)
