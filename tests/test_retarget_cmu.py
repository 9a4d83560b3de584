"""The shipped CMU clips: the published quality figures, reproducibility, gait, the bimanual arms."""

from __future__ import annotations

import itertools
from pathlib import Path

import mujoco
import numpy as np
import pytest

from mmimic.motion import check_clip, read_clip
from mmimic.motion.floor import collision_geoms, lowest_points
from mmimic.retarget import Retargeter, read_amp, read_bvh
from mmimic.retarget.quality import Thresholds, clip_quality

REPO = Path(__file__).resolve().parent.parent
SOURCES = {
    "cmu_07_01_walk": (read_amp, REPO / "motions/sources/cmu_amp/amp_humanoid_walk.npz"),
    "cmu_09_11_run": (read_amp, REPO / "motions/sources/cmu_amp/amp_humanoid_run.npz"),
    "cmu_131_01_walk": (read_bvh, REPO / "motions/sources/cmu_bvh/131_01.bvh"),
}
PUBLISHED = Thresholds()  # GMR-Fit: 0.27 % limits, 3.2 % tendon jumps, 1 mm penetration, 2.5 cm RMSE


@pytest.fixture(scope="module")
def rerun(fullbody):
    """Each shipped clip retargeted again from its source, as docs/retargeting.md does."""
    retargeter = Retargeter(fullbody)
    return {name: retargeter.run(read(path)) for name, (read, path) in SOURCES.items()}


@pytest.mark.parametrize("name", SOURCES)
def test_shipped_clip_meets_the_published_figures(fullbody, rerun, name: str) -> None:
    path = REPO / "motions/fullbody" / f"{name}.npz"
    assert check_clip(path, fullbody) == []
    clip = read_clip(path)
    qpos = clip.qpos.astype(np.float64)
    metrics = clip_quality(fullbody.mj_model, fullbody.initial_qpos(), qpos, floor=True)
    assert metrics["joint_limit_violation_pct"] <= PUBLISHED.joint_limit_violation_pct
    assert metrics["tendon_jump_rate_pct"] <= PUBLISHED.tendon_jump_rate_pct
    assert metrics["max_penetration_m"] <= PUBLISHED.max_penetration_m
    assert metrics["floating_height_m"] <= PUBLISHED.floating_height_m
    result = rerun[name]
    assert result.passed, result.failures
    assert result.metrics["keypoint_rmse_m"] <= PUBLISHED.keypoint_rmse_m
    # the shipped clip is what the documented command produces
    np.testing.assert_allclose(result.clip.qpos, clip.qpos, atol=0.02)
    assert clip.fps == 100.0 and clip.qvel is not None


@pytest.mark.parametrize("name", SOURCES)
def test_bimanual_clip_is_the_full_body_arms(fullbody, bimanual, name: str) -> None:
    arms_path = REPO / "motions/bimanual" / f"{name}.npz"
    assert check_clip(arms_path, bimanual) == []
    arms, body = read_clip(arms_path), read_clip(REPO / "motions/fullbody" / f"{name}.npz")
    assert len(arms.joint_names) == 36
    for i, joint in enumerate(arms.joint_names):
        np.testing.assert_array_equal(arms.qpos[:, i], body.qpos[:, body.joint_names.index(joint)])


def foot_contacts(model: mujoco.MjModel, qpos: np.ndarray, side: str) -> tuple[np.ndarray, np.ndarray]:
    """Frames where the foot's lowest point comes down onto the floor (within 3 mm, after
    swinging at least 12 mm above it: walking toes clear the floor by 1-2 cm), and the heel
    position (calcn body) at those frames."""
    bodies = {model.body(f"calcn_{side}").id, model.body(f"toes_{side}").id}
    geoms = np.array([g for g in collision_geoms(model) if model.geom_bodyid[g] in bodies])
    lowest = lowest_points(model, qpos, geoms)
    landings, airborne = [], True
    for t, height in enumerate(lowest):
        if airborne and height < 0.003:
            landings.append(t)
            airborne = False
        elif height > 0.012:
            airborne = True
    data = mujoco.MjData(model)
    heels = []
    for t in landings:
        data.qpos[:] = qpos[t]
        mujoco.mj_kinematics(model, data)
        heels.append(data.xpos[model.body(f"calcn_{side}").id, :2].copy())
    return np.array(landings), np.array(heels)


def source_strides(ankle: np.ndarray, fps: float) -> np.ndarray:
    """Stride lengths of a source foot: horizontal distance between the ankle positions at
    consecutive starts of stance (horizontal speed falling below 0.3 m/s)."""
    speed = np.linalg.norm(np.diff(ankle[:, :2], axis=0), axis=1) * fps
    stance = speed < 0.3
    starts = np.flatnonzero(stance[1:] & ~stance[:-1]) + 1
    return np.linalg.norm(np.diff(ankle[starts, :2], axis=0), axis=1)


def test_walk_alternates_feet_with_the_source_stride(fullbody) -> None:
    model = fullbody.mj_model
    qpos = read_clip(REPO / "motions/fullbody/cmu_07_01_walk.npz").qpos.astype(np.float64)
    events, strides = [], []
    for side in ("l", "r"):
        landings, heels = foot_contacts(model, qpos, side)
        events += [(t, side) for t in landings]
        strides += list(np.linalg.norm(np.diff(heels, axis=0), axis=1))
    order = [side for _, side in sorted(events)]
    assert len(order) >= 4 and all(a != b for a, b in itertools.pairwise(order)), order  # L, R, L, R ...
    source = read_amp(SOURCES["cmu_07_01_walk"][1])
    reference = np.concatenate([source_strides(source.positions[f"ankle_{s}"], source.fps) for s in ("l", "r")])
    assert len(strides) >= 2 and len(reference) >= 2
    assert abs(np.mean(strides) / np.mean(reference) - 1.0) <= 0.2
