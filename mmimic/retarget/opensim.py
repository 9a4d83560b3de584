"""OpenSim coordinates (`.mot` / `.sto`: Rajagopal, gait2392/gait2354/Hamner names) as a
retargeting source.

The name-mapped joints come over directly through the motion package's converter
(`mmimic.motion.convert_opensim`: legs, lumbar, elbows, the pelvis as the free root; the
model's conventions and the angle units from the file or the caller), converted at the output
rate. The independent joints are then held inside the bounds the IK uses (`Coupling`) with the
driven joints recomputed from them.

The arms (Rajagopal's ball shoulder has no MoBL-ARMS counterpart) come by IK where the file
also gives the source model's segment positions, as OpenSim's BodyKinematics analysis writes
them: columns `<body>_X`, `<body>_Y`, `<body>_Z` (ground frame, metres) for the origins of
`humerus_<side>` (shoulder), `ulna_<side>` (elbow) and `hand_<side>` (wrist). Those arm joints
are solved to the positions with everything else held at the converted values. An arm without
them stays at the rest pose, listed in the notes (the converter warns too).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import mujoco
import numpy as np

from mmimic.embodiment import Embodiment
from mmimic.io.opensim import OpenSimTable, read_opensim_table
from mmimic.motion.convert import (
    OPENSIM_TO_MUJOCO,
    PELVIS_BODY,
    PELVIS_COORDINATES,
    convert_opensim,
    unused_summary,
)
from mmimic.motion.kinematics import per_frame
from mmimic.retarget.ik import FrameSolver, IKSettings
from mmimic.retarget.keypoints import FULLBODY_POINTS, SIDES
from mmimic.retarget.source import RetargetError

ARM_SEGMENTS = {"shoulder": "humerus", "elbow": "ulna", "wrist": "hand"}
"""Canonical keypoint -> the Rajagopal body whose origin it is."""
ARM_JOINTS = ("elv_angle", "shoulder_elv", "shoulder_rot", "elbow_flex", "pro_sup", "deviation", "flexion")
"""MyoFullBody's independent arm joints (`<name>_<side>`), solved where segment positions exist."""
FIRST_FRAME_PASSES = 8
"""Solver passes for the first frame, whose arms start from the rest pose."""


@dataclass
class CoordinateMotion:
    """A coordinate source on the body: qpos (T, nq) at `fps`, with what was done to it."""

    path: Path
    qpos: np.ndarray
    fps: float
    source_fps: float
    source_frames: int
    notes: list[str] = field(default_factory=list)


def read_coordinates(
    path: str | Path,
    embodiment: Embodiment,
    ik_model: mujoco.MjModel,
    fps: float,
    settings: IKSettings | None = None,
    *,
    angles: str | None = None,
    model: str | None = None,
) -> CoordinateMotion:
    """Convert at `fps`, bound and (where segment positions exist) solve the arms of an OpenSim
    coordinate file (module docstring); `ik_model` is the body's kinematic copy. `angles`
    ("degrees"/"radians") and `model` (`mmimic.motion.convert.OPENSIM_MODELS`) override what
    the file says or suggests."""
    path = Path(path)
    if not path.is_file():
        raise RetargetError(path, "no such file")
    try:
        table = read_opensim_table(path, strict=False, angles=angles)
        clip, report = convert_opensim(table, embodiment, fps=fps, model=model)
        source = table.at_rate(fps)
    except ValueError as exc:  # OpenSimFormatError and the converter's errors name the file
        raise RetargetError(path, str(exc).removeprefix(f"{path}: ")) from None
    qpos = clip.qpos.astype(np.float64)
    segments = _segment_targets(source, ik_model, qpos)
    solver = FrameSolver(ik_model, [ik_model.body(FULLBODY_POINTS[k]).id for k in segments], np.ones(len(segments)),
                         [], [], embodiment.initial_qpos(), settings or IKSettings())
    coupling = solver.coupling
    values = coupling.joint_values(qpos)
    outside = (values < coupling.lower) | (values > coupling.upper)
    qpos[:, coupling.joint_qpos] = np.clip(values, coupling.lower, coupling.upper)
    coupling.expand(qpos)
    notes = [f"angle units: {report.angles_note}", f"{report.model} conventions: {report.model_note}"]
    notes += [f"columns not used ({reason}): {columns}" for reason, columns in unused_summary(report).items()]
    solved = _solve_arms(solver, qpos, segments) if segments else []
    neutral = [j for j in report.neutral_joints if j not in solved]
    if solved:
        notes.append(f"arm joints solved to the file's segment positions: {', '.join(solved)}")
    if neutral:
        notes.append(f"no source coordinate or segment position (kept at rest): {', '.join(neutral)}")
    if outside.any():
        names = [ik_model.joint(int(j)).name for j in coupling.joint_ids[outside.any(axis=0)]]
        notes.append(f"{int(outside.sum())} joint value(s) outside the bounds were held at them: {', '.join(names)}")
    rate = float(table.rate)
    return CoordinateMotion(path, qpos, fps, rate, len(table.time), notes)


def _segment_targets(table: OpenSimTable, ik_model: mujoco.MjModel, qpos: np.ndarray) -> dict[str, np.ndarray]:
    """Arm keypoint positions (T, 3) in the body's world from the table's segment columns,
    placed like the converter placed the pelvis (Rajagopal's pelvis origin is MyoFullBody's)."""
    found = {
        f"{keypoint}_{side}": np.stack([table.column(f"{body}_{side}_{axis}") for axis in "XYZ"], axis=1)
        for side in SIDES
        for keypoint, body in ARM_SEGMENTS.items()
        if all(f"{body}_{side}_{axis}" in table for axis in "XYZ")
    }
    if not found:
        return {}
    pelvis = ik_model.body(PELVIS_BODY).id
    body_pelvis = per_frame(ik_model, qpos, lambda data: data.xpos[pelvis])
    source_pelvis = np.stack([table.column(c) for c in PELVIS_COORDINATES[3:]], axis=1)
    offset = body_pelvis - source_pelvis @ OPENSIM_TO_MUJOCO.T
    return {k: v @ OPENSIM_TO_MUJOCO.T + offset for k, v in found.items()}


def _solve_arms(solver: FrameSolver, qpos: np.ndarray, targets: dict[str, np.ndarray]) -> list[str]:
    """Solve, in place, the arm joints of the sides that have targets, all else held; frame by
    frame from the previous frame's arms. Returns the joints solved."""
    model, coupling = solver.model, solver.coupling
    sides = sorted({k[-1] for k in targets})
    solved = [f"{j}_{s}" for s in sides for j in ARM_JOINTS]
    columns = np.array([list(coupling.joint_ids).index(model.joint(j).id) for j in solved])
    hold = np.ones(coupling.size, dtype=bool)
    hold[coupling.num_root + columns] = False
    points = np.stack(list(targets.values()), axis=1)
    no_frames = np.zeros((0, 3, 3))
    previous = None
    for t in range(len(qpos)):
        start = qpos[t].copy()
        if previous is not None:
            start[coupling.joint_qpos[columns]] = previous[coupling.joint_qpos[columns]]
            coupling.expand(start)
        passes = FIRST_FRAME_PASSES if previous is None else 1
        anchor = start if previous is None else previous
        for _ in range(passes):
            start = solver.refine(start, anchor, points[t], no_frames, hold=hold, anchor_weight=solver.settings.smooth_weight)
        qpos[t] = previous = start
    return solved
