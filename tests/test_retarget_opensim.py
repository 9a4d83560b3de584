"""OpenSim coordinates: mapped joints directly, the arms by IK to segment positions in the file."""

from __future__ import annotations

from pathlib import Path

import mujoco
import numpy as np

from mmimic.io.opensim import read_opensim_table
from mmimic.motion import convert_opensim
from mmimic.motion.convert import OPENSIM_TO_MUJOCO, PELVIS_COORDINATES, apply_joint_equalities
from mmimic.retarget import Retargeter

REPO = Path(__file__).resolve().parent.parent
WALK = REPO / "motions/sources/opensim_moco_walk/coordinates_full_trial_100hz.mot"
ARM = {"shoulder_elv_r": (0.5, 0.2), "elv_angle_r": (0.6, 0.0), "elbow_flex_r": (0.9, 0.3), "shoulder_rot_r": (0.2, 0.0)}


def with_right_arm_segments(fullbody, path: Path) -> np.ndarray:
    """The walking trial plus BodyKinematics-style columns (humerus_r, ulna_r, hand_r origins,
    ground frame) of a known right-arm motion; returns that motion (T, 4) in `ARM` order."""
    model = fullbody.mj_model
    clip, _ = convert_opensim(WALK, fullbody)
    qpos = clip.qpos.astype(np.float64)
    phase = 2 * np.pi * np.arange(len(qpos)) / clip.fps
    truth = np.stack([mean + swing * np.sin(phase) for mean, swing in ARM.values()], axis=1)
    for i, joint in enumerate(ARM):
        qpos[:, model.jnt_qposadr[model.joint(joint).id]] = truth[:, i]
    apply_joint_equalities(model, qpos)
    table = read_opensim_table(WALK, strict=False)
    pelvis = np.stack([table.column(c) for c in PELVIS_COORDINATES[3:]], axis=1)
    data = mujoco.MjData(model)
    columns = {}
    for source_body, body in (("humerus_r", "humerus_r"), ("ulna_r", "ulna_r"), ("hand_r", "lunate_r")):
        relative = []
        for q in qpos:
            data.qpos[:] = q
            mujoco.mj_kinematics(model, data)
            relative.append(data.xpos[model.body(body).id] - data.xpos[model.body("pelvis").id])
        ground = np.array(relative) @ OPENSIM_TO_MUJOCO + pelvis  # OpenSim ground axes
        columns |= {f"{source_body}_{axis}": ground[:, i] for i, axis in enumerate("XYZ")}
    lines = WALK.read_text().splitlines()
    end = lines.index("endheader")
    labels = lines[end + 1].split("\t") + list(columns)
    header = [f"nColumns={len(labels)}" if line.startswith("nColumns") else line for line in lines[: end + 1]]
    rows = ["\t".join(line.split() + [f"{columns[c][i]:.6f}" for c in columns]) for i, line in enumerate(lines[end + 2 :])]
    path.write_text("\n".join([*header, "\t".join(labels), *rows]) + "\n")
    return truth


def test_arms_follow_segment_positions(fullbody, tmp_path: Path) -> None:
    path = tmp_path / "walk_with_arms.mot"
    truth = with_right_arm_segments(fullbody, path)
    retargeter = Retargeter(fullbody)
    result = retargeter.run(retargeter.read_coordinates(path))
    assert result.passed, result.failures
    model, qpos = fullbody.mj_model, result.clip.qpos
    for i, joint in enumerate(ARM):
        assert np.abs(qpos[:, model.jnt_qposadr[model.joint(joint).id]] - truth[: len(qpos), i]).max() < 0.02, joint
    notes = " ".join(result.details["notes"])
    assert "solved to the file's segment positions: elv_angle_r" in notes
    assert "kept at rest): elv_angle_l" in notes  # no left-arm segments in the file
    left = model.jnt_qposadr[model.joint("shoulder_elv_l").id]
    assert np.all(qpos[:, left] == 0.0)
