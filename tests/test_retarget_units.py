"""The retargeting building blocks: coupled joints, the kinematic copy, IK, BVH, the metrics, the floor."""

from __future__ import annotations

from pathlib import Path

import mujoco
import numpy as np
import pytest

from mmimic.coupling import SLACK, Coupling
from mmimic.motion.convert import apply_joint_equalities
from mmimic.motion.floor import ground, lowest_points
from mmimic.retarget import RetargetError, read_bvh, read_name_map
from mmimic.retarget.bvh import parse_bvh
from mmimic.retarget.ik import FrameSolver, kinematic_model
from mmimic.retarget.keypoints import FULLBODY_POINTS, FULLBODY_SEGMENTS
from mmimic.retarget.quality import joint_limit_violation_pct, tendon_jumps

TINY_BVH = """HIERARCHY
ROOT Hips
{
  OFFSET 0 0 0
  CHANNELS 6 Xposition Yposition Zposition Zrotation Xrotation Yrotation
  JOINT Knee
  {
    OFFSET 0 -10 0
    CHANNELS 3 Zrotation Xrotation Yrotation
    End Site
    {
      OFFSET 0 -10 0
    }
  }
}
MOTION
Frames: 2
Frame Time: 0.5
0 100 0 0 0 0 0 0 0
1 100 0 90 0 0 0 0 0
"""


REPO = Path(__file__).resolve().parent.parent
CMU_BVH = REPO / "motions/sources/cmu_bvh/131_01.bvh"


@pytest.fixture
def short_bvh(tmp_path: Path) -> Path:
    """The first 40 frames of the CMU BVH clip."""
    head, motion = CMU_BVH.read_text().split("MOTION")
    lines = motion.strip().splitlines()
    path = tmp_path / "short.bvh"
    path.write_text(head + "MOTION\nFrames: 40\n" + lines[1] + "\n" + "\n".join(lines[2:42]) + "\n")
    return path


@pytest.fixture(scope="module")
def ik_model(fullbody):
    return kinematic_model(fullbody.mj_model)


def random_pose(fullbody, coupling: Coupling, seed: int, spread: float = 0.3) -> np.ndarray:
    rng = np.random.default_rng(seed)
    qpos = fullbody.initial_qpos()
    middle = np.clip(coupling.joint_values(qpos), coupling.lower, coupling.upper)
    values = middle + spread * rng.uniform(-1, 1, len(middle)) * np.minimum(coupling.upper - coupling.lower, 1.0)
    qpos[coupling.joint_qpos] = np.clip(values, coupling.lower, coupling.upper)
    coupling.expand(qpos)
    return qpos


def test_kinematic_copy_has_the_same_body_poses(fullbody, ik_model) -> None:
    assert ik_model.nq == fullbody.mj_model.nq and ik_model.neq == fullbody.mj_model.neq == 51
    assert ik_model.nsite == ik_model.ntendon == ik_model.ngeom == 0
    qpos = random_pose(fullbody, Coupling(ik_model), seed=1)
    full, small = mujoco.MjData(fullbody.mj_model), mujoco.MjData(ik_model)
    full.qpos[:] = small.qpos[:] = qpos
    mujoco.mj_kinematics(fullbody.mj_model, full)
    mujoco.mj_kinematics(ik_model, small)
    np.testing.assert_allclose(small.xpos, full.xpos, atol=1e-12)
    np.testing.assert_allclose(small.xmat, full.xmat, atol=1e-12)


def test_coupling_honours_the_constraints_and_the_limits(fullbody, ik_model) -> None:
    coupling = Coupling(ik_model)
    assert coupling.size == 6 + ik_model.njnt - 1 - 51  # free root + independent joints
    poses = np.stack([random_pose(fullbody, coupling, seed, spread=1.0) for seed in range(20)])
    assert joint_limit_violation_pct(fullbody.mj_model, poses) == 0.0
    # driven joints follow MuJoCo's polynomial (as the motion package computes it) up to the slack
    exact = poses.copy()
    apply_joint_equalities(fullbody.mj_model, exact)
    widths = np.ptp(fullbody.mj_model.jnt_range[fullbody.mj_model.dof_jntid[coupling.driven_dofs]], axis=1)
    assert np.all(np.abs(poses - exact)[:, coupling.driven_qpos] <= SLACK * widths + 1e-12)
    assert coupling.residual(poses) < 3e-4
    # the lumbar coupling narrows flex_extension to where L4_L5_FE (0.185 x) stays in range
    i = list(coupling.joint_ids).index(ik_model.joint("flex_extension").id)
    assert coupling.lower[i] == pytest.approx(-0.18607 / 0.185, abs=1e-3)


def test_ik_recovers_a_pose_from_its_own_keypoints(fullbody, ik_model) -> None:
    coupling = Coupling(ik_model)
    truth = random_pose(fullbody, coupling, seed=3, spread=0.25)
    truth[:3] += [0.3, -0.2, 0.05]
    data = mujoco.MjData(ik_model)
    data.qpos[:] = truth
    mujoco.mj_kinematics(ik_model, data)
    points = [ik_model.body(b).id for b in FULLBODY_POINTS.values()]
    segments = [ik_model.body(b).id for b in FULLBODY_SEGMENTS.values()]
    targets = data.xpos[points].copy()
    frames = data.xmat[segments].reshape(-1, 3, 3).copy()
    solver = FrameSolver(ik_model, points, np.ones(len(points)), segments, np.ones(len(segments)), fullbody.initial_qpos())
    start = fullbody.initial_qpos()
    start[:3] = truth[:3]
    qpos, _ = solver.solve(targets, frames, start)
    error = solver.residual(qpos, targets, frames)[: 3 * len(points)].reshape(-1, 3)
    assert np.sqrt(np.mean(np.sum(error**2, axis=1))) < 2e-3
    assert joint_limit_violation_pct(fullbody.mj_model, qpos[None]) == 0.0


def test_bvh_parser_and_forward_kinematics(tmp_path: Path) -> None:
    path = tmp_path / "tiny.bvh"
    path.write_text(TINY_BVH)
    bvh = parse_bvh(path)
    assert bvh.skeleton.names == ("Hips", "Knee", "Knee_End")
    assert bvh.channels[1] == ["Zrotation", "Xrotation", "Yrotation"]
    assert bvh.frame_time == 0.5 and bvh.values.shape == (2, 9)


def test_name_map_reads_a_renamed_skeleton(tmp_path: Path, short_bvh) -> None:
    renamed = tmp_path / "renamed.bvh"
    renamed.write_text(short_bvh.read_text().replace("Left", "Links").replace("Right", "Rechts"))
    with pytest.raises(RetargetError, match="unknown skeleton.*--name-map"):
        read_bvh(renamed)
    lines = ["up = \"y\"", f"scale = {2.54 / 100 / 0.45}", "[keypoints]"]
    for side, prefix in (("l", "Links"), ("r", "Rechts")):
        lines += [f'{kp}_{side} = "{prefix}{joint}"' for kp, joint in (
            ("hip", "Hip"), ("knee", "Knee"), ("ankle", "Ankle"), ("toe", "Toe"),
            ("shoulder", "Shoulder"), ("elbow", "Elbow"), ("wrist", "Wrist"))]
    lines += ["[segments]", 'pelvis = "Hips"', 'foot_l = "LinksAnkle"', 'foot_r = "RechtsAnkle"']
    name_map = tmp_path / "map.toml"
    name_map.write_text("\n".join(lines))
    mapped, builtin = read_bvh(renamed, read_name_map(name_map)), read_bvh(short_bvh)
    for key, values in mapped.positions.items():
        np.testing.assert_allclose(values, builtin.positions[key])
    np.testing.assert_allclose(mapped.frames["pelvis"], builtin.frames["pelvis"])
    name_map.write_text('[keypoints]\nknee = "LinksKnee"\n')
    with pytest.raises(RetargetError, match="map.toml.*unknown name"):
        read_name_map(name_map)


def test_tendon_jump_rate_counts_jumps_against_the_running_average() -> None:
    frames = np.arange(400)
    smooth = 0.1 + 0.01 * np.sin(frames / 20.0)[:, None] * np.ones((1, 3))
    assert tendon_jumps(smooth, np.full(3, 0.1)) == (0.0, 0.0)
    jumped = smooth.copy()
    jumped[200:, 0] += 0.005  # one tendon steps by 5 % of its rest length once
    rate, largest = tendon_jumps(jumped, np.full(3, 0.1))
    assert rate == pytest.approx(100.0 / (3 * 399))
    assert largest == pytest.approx(abs(jumped[200, 0] - jumped[199, 0]) / 0.1)


def test_ground_puts_every_contact_on_the_floor(fullbody) -> None:
    model = fullbody.mj_model
    column = model.jnt_qposadr[model.joint(fullbody.free_joint).id] + 2
    qpos = np.tile(fullbody.initial_qpos(), (200, 1))
    qpos[:, column] += 0.1 + 0.03 * np.linspace(0, 1, 200) + 0.005 * np.sin(np.arange(200) / 7)  # drift and sway
    ground(model, qpos, column, fps=100.0)
    lowest = lowest_points(model, qpos)
    # standing: every frame is a contact, on the floor up to the light smoothing, never below it
    assert lowest.min() > -1e-12 and lowest.max() < 5e-4
