"""OpenSim -> MyoFullBody conversion and the shipped walking clip, checked with MuJoCo C."""

from __future__ import annotations

import logging
from pathlib import Path

import mujoco
import numpy as np
import pytest
import torch

import mmimic
from mmimic.io.opensim import read_opensim_table
from mmimic.motion import MotionLibrary, convert_opensim, derive_clip, read_clip
from mmimic.motion.convert import ConversionReport

REPO = Path(__file__).resolve().parent.parent
TRIAL = REPO / "motions" / "sources" / "opensim_moco_walk" / "coordinates_full_trial_100hz.mot"
SHIPPED = REPO / "motions" / "fullbody" / "opensim_walk.npz"
HEEL_STRIKES = {"r": (0.267, 1.412), "l": (0.836,)}  # from the trial's force plates (SOURCE.md)


@pytest.fixture(scope="module")
def converted(fullbody: mmimic.Embodiment) -> tuple[mmimic.motion.MotionClip, ConversionReport]:
    return convert_opensim(TRIAL, fullbody)


@pytest.fixture(scope="module")
def walk(fullbody: mmimic.Embodiment) -> MotionLibrary:
    return MotionLibrary(fullbody, [SHIPPED])  # the converted walk alone, not the whole motion set


def _floor_distance(model: mujoco.MjModel, qpos: np.ndarray, bodies: tuple[str, ...]) -> float:
    """Signed distance (m) from the floor to the closest geom of `bodies`, by MuJoCo's collision code."""
    data = mujoco.MjData(model)
    data.qpos[:] = qpos
    mujoco.mj_kinematics(model, data)
    floor = model.geom("floor").id
    geoms = [g for g in range(model.ngeom) if model.body(int(model.geom_bodyid[g])).name in bodies]
    assert len(geoms) >= 4
    return min(mujoco.mj_geomDistance(model, data, floor, g, 1.0, None) for g in geoms)


def test_shipped_clip_is_reproduced_by_the_converter(converted, fullbody: mmimic.Embodiment) -> None:
    clip, _ = converted
    shipped = read_clip(SHIPPED)
    assert shipped.embodiment == "fullbody" and shipped.fps == clip.fps == 100.0
    assert shipped.joint_names == clip.joint_names and shipped.qpos.shape == (238, fullbody.mj_model.nq)
    np.testing.assert_allclose(shipped.qpos, clip.qpos, atol=1e-6)
    bimanual_clip = derive_clip(shipped, mmimic.load_embodiment("bimanual"))
    np.testing.assert_array_equal(read_clip(REPO / "motions" / "bimanual" / "opensim_walk.npz").qpos, bimanual_clip.qpos)


def test_feet_touch_the_floor_at_heel_strike(walk: MotionLibrary, fullbody: mmimic.Embodiment) -> None:
    for side, times in HEEL_STRIKES.items():
        frames = walk.lookup(torch.zeros(len(times), dtype=torch.int64), torch.tensor(times))
        for qpos, t in zip(frames.qpos.double().numpy(), times):
            height = _floor_distance(fullbody.mj_model, qpos, (f"calcn_{side}", f"toes_{side}"))
            assert -0.01 <= height <= 0.03, f"{side} foot {height:.4f} m above the floor at heel strike {t} s"


def test_feet_never_penetrate_the_floor(walk: MotionLibrary, fullbody: mmimic.Embodiment) -> None:
    feet = ("calcn_r", "toes_r", "calcn_l", "toes_l")
    lowest = [_floor_distance(fullbody.mj_model, q, feet) for q in walk.qpos.double().numpy()]
    assert min(lowest) >= -0.01
    assert min(lowest) <= 1e-4  # the computed offset puts the feet on the floor, not above it


def test_pelvis_pose_follows_opensim_in_the_model_frame(converted, fullbody: mmimic.Embodiment) -> None:
    clip, _ = converted
    table = read_opensim_table(TRIAL, strict=False)
    m = fullbody.mj_model
    d = mujoco.MjData(m)

    def axis(k: int, angle: float) -> np.ndarray:
        c, s = np.cos(angle), np.sin(angle)
        i, j = [(1, 2), (2, 0), (0, 1)][k]
        r = np.eye(3)
        r[i, i], r[i, j], r[j, i], r[j, j] = c, -s, s, c
        return r

    # OpenSim ground (x forward, y up, z right) in the MuJoCo world (z up, facing -y, right -x).
    ground = np.array([[0, 0, -1], [-1, 0, 0], [0, 1, 0]], dtype=float)
    for f in (0, 60, 150, 237):
        tilt, lst, rot = (table.radians(c)[f] for c in ("pelvis_tilt", "pelvis_list", "pelvis_rotation"))
        d.qpos[:] = clip.qpos[f]
        mujoco.mj_kinematics(m, d)
        expected = ground @ axis(2, tilt) @ axis(0, lst) @ axis(1, rot)
        np.testing.assert_allclose(d.xmat[m.body("pelvis").id].reshape(3, 3), expected, atol=2e-3)  # 1e-3 rad model offset
    travel = table.column("pelvis_tx")[-1] - table.column("pelvis_tx")[0]
    d.qpos[:] = clip.qpos[-1]
    mujoco.mj_kinematics(m, d)
    assert clip.qpos[0, 0] == clip.qpos[0, 1] == 0.0
    assert d.xpos[m.body("pelvis").id][1] == pytest.approx(-travel, abs=0.05)


def test_joints_are_mapped_and_coupled(converted, fullbody: mmimic.Embodiment) -> None:
    clip, report = converted
    table = read_opensim_table(TRIAL, strict=False)
    m = fullbody.mj_model
    col = {j: m.jnt_qposadr[m.joint(j).id] for j in ("knee_angle_r", "hip_flexion_l", "flex_extension", "elbow_flex_r", "shoulder_elv_r")}
    np.testing.assert_allclose(clip.qpos[:, col["knee_angle_r"]], np.deg2rad(table.column("knee_angle_r")), atol=1e-6)
    np.testing.assert_allclose(clip.qpos[:, col["hip_flexion_l"]], np.deg2rad(table.column("hip_flexion_l")), atol=1e-6)
    np.testing.assert_allclose(clip.qpos[:, col["flex_extension"]], np.deg2rad(table.column("lumbar_extension")) / 1.875, atol=1e-6)
    np.testing.assert_allclose(clip.qpos[:, col["elbow_flex_r"]], np.deg2rad(table.column("elbow_flex_r")), atol=1e-6)
    assert np.all(clip.qpos[:, col["shoulder_elv_r"]] == np.float32(m.qpos0[col["shoulder_elv_r"]]))
    assert set(report.neutral_joints) == {
        f"{j}_{s}" for s in "rl" for j in ("elv_angle", "shoulder_elv", "shoulder_rot", "pro_sup", "deviation", "flexion")
    }
    assert "arm_flex_r" in report.unused_columns and "knee_angle_r_beta" in report.unused_columns

    # The model's joint equality constraints (knee, patella, lumbar, shoulder girdle) hold.
    d = mujoco.MjData(m)
    for f in (0, 100, 200):
        d.qpos[:] = clip.qpos[f]
        mujoco.mj_fwdPosition(m, d)
        equality = d.efc_type[: d.nefc] == mujoco.mjtConstraint.mjCNSTR_EQUALITY
        assert equality.sum() == 51
        assert np.abs(d.efc_pos[: d.nefc][equality]).max() < 1e-5


def test_conversion_warns_about_neutral_joints(fullbody: mmimic.Embodiment, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="mmimic"):
        clip, report = convert_opensim(TRIAL, fullbody, start=0.2, end=0.6)
    assert clip.num_frames == 41
    messages = " ".join(r.getMessage() for r in caplog.records)
    assert "kept at the rest pose qpos0" in messages and "elv_angle_r" in messages and str(TRIAL) in messages
    assert report.height_offset != 0.0
