"""OpenSim coordinates (Rajagopal, gait2392/gait2354/Hamner models) -> MyoFullBody clips, and
clips for bodies sharing joints.

Frames: OpenSim's ground is y up with the subject walking along +x (z to the right); the
MyoFullBody world is z up and the body faces -y (its right is -x). A ground vector maps as
`v_mujoco = OPENSIM_TO_MUJOCO @ v_opensim`. Rajagopal's pelvis frame is MyoFullBody's `pelvis`
body frame, so the pelvis orientation `R = Rz(tilt) Rx(list) Ry(rotation)` (body-fixed, OpenSim's
ground_pelvis order) and translation (tx, ty, tz) become the free root's pose; the root starts
at x = y = 0. Floor contact is computed, never hand-set (`_ground`): a constant height offset
puts the lowest point of the rear-foot geoms (calcn bodies) over the clip on the floor z = 0;
toes that would dip below it (IK with a welded MTP joint) bend at the MTP (`lift_toes`); any
frame still below is raised by its depth, as MuscleMimic's retargeting does.

Models: the gait2392 family (gait2392, gait2354, Hamner 2010) names its coordinates as
Rajagopal does (hip, knee, ankle, subtalar, mtp, lumbar, arm, elbow, pro_sup, wrist) with one
difference of sign: its knee_angle is negative in flexion (`MODEL_SIGNS`). The model is chosen
by the caller or detected from the columns (`detect_model`). The legs' coordinates
(`REQUIRED_COORDINATES`) and the pelvis must be in the file, finite; other missing
coordinates are reported, and unused columns (marker positions some IK files carry, force
plates) listed once.

Joints: the coordinates in `CONVERTED_COORDINATES` map through
`mmimic.io.opensim.COORDINATE_TO_JOINT` (name and scale). Joints coupled by the model's joint
equality constraints (knee translations and rotations, patella, the lumbar levels, shoulder
girdle) are computed from their driving joint by the constraint's polynomial. Every other joint
keeps its rest pose `qpos0` (the neutral value) and is listed in a warning: for the Rajagopal
data these are the shoulders (Rajagopal's ball shoulder arm_flex/add/rot has no single MoBL-ARMS
joint), forearm rotation and wrists (their zero and sign are not verified against MoBL-ARMS).
"""

from __future__ import annotations

import dataclasses
import logging
import re
from dataclasses import dataclass, field
from pathlib import Path

import mujoco
import numpy as np
from scipy.spatial.transform import Rotation

from mmimic.coupling import Coupling
from mmimic.embodiment import Embodiment
from mmimic.io.opensim import COORDINATE_TO_JOINT, OpenSimFormatError, OpenSimTable, read_opensim_table
from mmimic.motion.clip import MotionClip, column_names, model_joints, root_problems, select_joints
from mmimic.motion.floor import body_geoms, geom_bottoms, lowest_points

log = logging.getLogger(__name__)

OPENSIM_TO_MUJOCO = np.array([[0.0, 0.0, -1.0], [-1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])
"""Rotation taking OpenSim ground axes (x forward, y up, z right) to the MyoFullBody world."""
PELVIS_BODY = "pelvis"
PELVIS_COORDINATES = ("pelvis_tilt", "pelvis_list", "pelvis_rotation", "pelvis_tx", "pelvis_ty", "pelvis_tz")
GROUND_CONTACT_BODIES = ("calcn_r", "toes_r", "calcn_l", "toes_l")
TOE_JOINTS = {"toes_r": "mtp_angle_r", "toes_l": "mtp_angle_l"}
"""Each toes body and the joint that lifts it (see `lift_toes`)."""
CONVERTED_COORDINATES = tuple(
    f"{c}_{side}"
    for side in ("r", "l")
    for c in ("hip_flexion", "hip_adduction", "hip_rotation", "knee_angle", "ankle_angle", "subtalar_angle", "mtp_angle", "elbow_flex")
) + ("lumbar_extension", "lumbar_bending", "lumbar_rotation")
"""Rajagopal coordinates written into the body: legs, lumbar and elbows."""
REQUIRED_COORDINATES = tuple(
    f"{c}_{side}" for side in ("r", "l") for c in ("hip_flexion", "hip_adduction", "hip_rotation", "knee_angle", "ankle_angle")
)
"""Coordinates a file must have (with the pelvis): without them there are no legs to follow."""
MODEL_SIGNS: dict[str, dict[str, float]] = {
    "rajagopal": {},
    "gait2392": {"knee_angle_r": -1.0, "knee_angle_l": -1.0},
}
"""OpenSim model family -> sign of each coordinate that differs from Rajagopal's. `gait2392`
covers gait2392, gait2354 and Hamner 2010 (knee range -120..10 deg, negative in flexion)."""
OPENSIM_MODELS = tuple(MODEL_SIGNS)
KNEE_FLEXED = np.deg2rad(20.0)
"""A knee that bends at all in a motion bends this far (walking ~60 deg, standing sway less)."""
KNEE_OVERSTRETCHED = np.deg2rad(15.0)
"""Knee hyperextension does not pass this (anatomical extension limit ~5-10 deg)."""
_NOT_CONVERTED = {
    "arm_flex": "the OpenSim models' ball shoulder has no single MoBL-ARMS joint",
    "arm_add": "the OpenSim models' ball shoulder has no single MoBL-ARMS joint",
    "arm_rot": "the OpenSim models' ball shoulder has no single MoBL-ARMS joint",
    "pro_sup": "zero and sign not verified against MoBL-ARMS",
    "wrist_flex": "zero and sign not verified against MoBL-ARMS",
    "wrist_dev": "zero and sign not verified against MoBL-ARMS",
    "knee_angle_beta": "the patella follows knee_angle through the model's equality constraints",
}


@dataclass
class ConversionReport:
    """What a conversion did: neutral joints, unused source columns, out-of-range values, the
    toe joints turned to lift the toes (joint -> frames changed, largest change in rad), the
    frames whose root was raised out of the floor (count, largest raise in m), the computed
    root height offset (m) added to the source's pelvis height, the model family and how it
    was chosen, how the angle units were decided, and the optional coordinates the file lacks."""

    neutral_joints: list[str] = field(default_factory=list)
    unused_columns: dict[str, str] = field(default_factory=dict)
    out_of_range: list[str] = field(default_factory=list)
    lifted_toes: dict[str, tuple[int, float]] = field(default_factory=dict)
    raised_frames: tuple[int, float] = (0, 0.0)
    height_offset: float = 0.0
    model: str = "rajagopal"
    model_note: str = ""
    angles_note: str = ""
    missing_columns: list[str] = field(default_factory=list)


def apply_joint_equalities(model: mujoco.MjModel, qpos: np.ndarray) -> list[str]:
    """Set every joint driven by an active joint equality from its driver (in place, (T, nq);
    `mmimic.coupling.Coupling.complete`). Returns the driven joints' names."""
    coupling = Coupling(model)
    coupling.complete(qpos)
    return [model.joint(int(j)).name for j in coupling.driven_ids]


def lift_toes(model: mujoco.MjModel, qpos: np.ndarray, iterations: int = 30) -> dict[str, tuple[int, float]]:
    """Where a toes body dips below the floor z = 0, turn its MTP joint towards dorsiflexion
    just enough to bring its lowest point onto the floor (bisection, within the joint's range);
    in place on qpos (T, nq). Returns joint -> (frames changed, largest change in rad).

    Motion-capture IK often locks the MTP joint, so a rigid foot rolling off its toes would put
    them through the floor; a real foot bends there.
    """
    data = mujoco.MjData(model)
    changed = {}
    for body, joint in TOE_JOINTS.items():
        geoms = body_geoms(model, (body,)).tolist()
        jid = model.joint(joint).id
        adr = model.jnt_qposadr[jid]

        def height(q: np.ndarray, angle: float, adr: int = adr, geoms: list[int] = geoms) -> float:
            data.qpos[:] = q
            data.qpos[adr] = angle
            mujoco.mj_kinematics(model, data)
            return float(geom_bottoms(model, data, geoms).min())

        lift = max(model.jnt_range[jid], key=lambda limit: height(model.qpos0, limit))  # the end raising the toes
        frames, largest = 0, 0.0
        for q in qpos:
            if height(q, q[adr]) >= 0.0:
                continue
            low, high = q[adr], lift
            if height(q, high) < 0.0:
                low = high  # even the range's end leaves the toes below: the root offset lifts the rest
            for _ in range(iterations if low != high else 0):
                mid = 0.5 * (low + high)
                low, high = (mid, high) if height(q, mid) < 0.0 else (low, mid)
            frames, largest = frames + 1, max(largest, abs(high - q[adr]))
            q[adr] = high
        changed[joint] = (frames, largest)
    return changed


def detect_model(table: OpenSimTable) -> tuple[str, str]:
    """The model family whose conventions the table follows (`MODEL_SIGNS`), and why:
    Rajagopal's coupled `knee_angle_*_beta` columns, else the knee angles' sign in flexion.
    `ValueError` naming the `--opensim-model` flag when the knees do not tell."""
    beta = next((label for label in table.labels if re.fullmatch(r"knee_angle_[rl]_beta", label)), None)
    if beta is not None:
        return "rajagopal", f"column {beta} (only Rajagopal's knee has a coupled beta coordinate)"
    knees = [table.radians(c) for c in ("knee_angle_r", "knee_angle_l") if c in table]
    if not knees:
        raise ValueError(f"{table.path}: no knee_angle column to tell the model's conventions from")
    low, high = float(np.min(knees)), float(np.max(knees))
    span = f"knee angles span [{np.rad2deg(low):.1f}, {np.rad2deg(high):.1f}] deg"
    if low <= -KNEE_FLEXED and high <= KNEE_OVERSTRETCHED:
        return "gait2392", f"{span}: negative in flexion (gait2392, gait2354, Hamner)"
    if high >= KNEE_FLEXED and low >= -KNEE_OVERSTRETCHED:
        return "rajagopal", f"{span}: positive in flexion (Rajagopal)"
    raise ValueError(
        f"{table.path}: cannot tell the model's knee convention: {span}; say which with --opensim-model "
        f"rajagopal (knee flexion positive) or gait2392 (negative: gait2392, gait2354, Hamner) "
        f"(model= in Python)"
    )


def convert_opensim(
    table: OpenSimTable | str | Path,
    embodiment: Embodiment,
    *,
    start: float | None = None,
    end: float | None = None,
    source: str | None = None,
    license: str = "",
    fps: float | None = None,
    angles: str | None = None,
    model: str | None = None,
) -> tuple[MotionClip, ConversionReport]:
    """Convert an OpenSim coordinate table, or the .mot/.sto file to read it from (`angles` as for
    `read_opensim_table`), to a clip for the full body, optionally cut to [start, end] seconds and
    resampled to `fps` (default: the table's rate); `model` is one of `OPENSIM_MODELS` (default:
    `detect_model`). Everything is checked before any work: the
    window, the pelvis and leg columns, the angle units, the model, NaN cells; see the module
    docstring for the mapping."""
    if not isinstance(table, OpenSimTable):
        table = read_opensim_table(table, strict=False, angles=angles)
    elif angles is not None:
        raise ValueError(f"{table.path or table.name}: angles applies to a file; the table was read already")
    path = table.path if table.path is not None else Path(table.name)
    if model is not None and model not in MODEL_SIGNS:
        raise ValueError(f"{path}: unknown --opensim-model {model!r}; choose one of {', '.join(OPENSIM_MODELS)}")
    if fps is not None and not (np.isfinite(fps) and fps > 0):
        raise ValueError(f"{path}: --fps must be a positive number, got {fps}")
    t0 = table.time[0] if start is None else start
    t1 = table.time[-1] if end is None else end
    keep = (table.time >= t0 - 1e-9) & (table.time <= t1 + 1e-9)
    if keep.sum() < 2:
        raise ValueError(f"{path}: the window [{t0}, {t1}] s holds {int(keep.sum())} row(s); a clip needs 2")
    missing = [c for c in PELVIS_COORDINATES if c not in table]
    if missing:
        raise ValueError(f"{path}: no pelvis column(s) {', '.join(missing)}; the free root needs all six")
    missing = [c for c in REQUIRED_COORDINATES if c not in table]
    if missing:
        raise ValueError(f"{path}: no column(s) {', '.join(missing)}; the legs need "
                         f"{', '.join(REQUIRED_COORDINATES)}")
    mj_model = embodiment.mj_model
    if embodiment.free_joint is None:
        raise ValueError(f"embodiment {embodiment.name!r} has no free root; convert to the full body, then derive")
    absent = [b for b in (PELVIS_BODY, *GROUND_CONTACT_BODIES) if mujoco.mj_name2id(mj_model, mujoco.mjtObj.mjOBJ_BODY, b) < 0]
    absent += [j for j in TOE_JOINTS.values() if j not in embodiment.joint_names]
    if absent:
        raise ValueError(f"embodiment {embodiment.name!r} lacks {', '.join(absent)}: the converter targets MyoFullBody")
    used = [c for c in (*PELVIS_COORDINATES, *CONVERTED_COORDINATES) if c in table]
    lines = None if table.lines is None else table.lines[keep]
    table = dataclasses.replace(table, time=table.time[keep], data=table.data[keep], lines=lines)
    nonfinite = table.nonfinite(used)
    if nonfinite is not None:
        raise ValueError(f"{nonfinite}; a clip cannot hold them (cut them off with --start/--end or fill the gaps)")
    try:
        table.check_angles()
        report = ConversionReport(angles_note=table.angles_note)
        report.model, report.model_note = (model, "chosen by the caller") if model else detect_model(table)
        rate = table.rate
        if fps is not None and not np.isclose(fps, rate, rtol=1e-9, atol=0.0):
            table = table.at_rate(fps)
        else:
            fps = None
    except OpenSimFormatError as exc:
        raise ValueError(str(exc)) from None
    signs = MODEL_SIGNS[report.model]

    frames = len(table.time)
    qpos = np.tile(mj_model.qpos0, (frames, 1))
    written = set()
    for coordinate in CONVERTED_COORDINATES:
        if coordinate not in table:
            report.missing_columns.append(coordinate)
            continue
        mapping = COORDINATE_TO_JOINT[coordinate]
        if mapping.joint not in embodiment.joint_names:
            report.unused_columns[coordinate] = f"the body has no joint {mapping.joint}"
            continue
        jid = mj_model.joint(mapping.joint).id
        values = signs.get(coordinate, 1.0) * mapping.scale * table.radians(coordinate)
        qpos[:, mj_model.jnt_qposadr[jid]] = values
        written.add(mapping.joint)
        low, high = mj_model.jnt_range[jid]
        if mj_model.jnt_limited[jid] and (values.min() < low - 1e-6 or values.max() > high + 1e-6):
            report.out_of_range.append(
                f"{mapping.joint} spans [{values.min():.3f}, {values.max():.3f}] rad, range [{low:.3f}, {high:.3f}]"
            )
    driven = set(apply_joint_equalities(mj_model, qpos))
    root = next(j.qpos for j in model_joints(mj_model) if j.name == embodiment.free_joint)
    qpos[:, root] = _root_pose(mj_model, table)

    report.neutral_joints = [
        j.name for j in model_joints(mj_model) if j.name not in written | driven | {embodiment.free_joint}
    ]
    converted = set(CONVERTED_COORDINATES) | set(PELVIS_COORDINATES)
    for label in table.labels:
        if label not in converted | set(report.unused_columns):
            stem = re.sub(r"_[rl](?=_|$)", "", label)
            reason = "marker positions" if re.search(r"_t[xyz]$", label) else "no MyoFullBody counterpart"
            report.unused_columns[label] = _NOT_CONVERTED.get(stem, reason)
    _ground(mj_model, qpos, root.start + 2, report)
    problems = root_problems(qpos[:, root.start : root.start + 3], fps or rate, embodiment.free_joint)
    if problems:
        raise ValueError(f"{path}: the converted {'; '.join(problems)}; angle units: {report.angles_note} "
                         f"(if wrong, say which with --degrees or --radians)")
    _log_report(path, report)
    window = f"t = {table.time[0]:.3f}..{table.time[-1]:.3f} s"
    resampled = f", resampled from {rate:.6g} Hz" if fps is not None else ""
    clip = MotionClip(
        fps=float(f"{fps if fps is not None else rate:.9g}"),  # without the rate's rounding noise
        qpos=qpos.astype(np.float32),
        joint_names=column_names(mj_model),
        embodiment=embodiment.name,
        source=source or f"OpenSim coordinates {path.name}, {window}{resampled}, converted by mmimic.motion.convert",
        license=license,
    )
    return clip, report


def derive_clip(clip: MotionClip, embodiment: Embodiment) -> MotionClip:
    """The joints of `clip` that `embodiment` has (e.g. the arms of a full-body clip for the
    bimanual body), labelled for `embodiment`. Joints the clip lacks are filled when it loads."""
    derived = select_joints(clip, set(embodiment.joint_names))
    if not derived.joint_names:
        raise ValueError(f"the clip shares no joint with embodiment {embodiment.name!r}")
    derived.embodiment = embodiment.name
    derived.source = f"{clip.source}; joints of {embodiment.name} taken from the {clip.embodiment} clip"
    return derived


def _ground(model: mujoco.MjModel, qpos: np.ndarray, z_col: int, report: ConversionReport) -> None:
    """Put the clip on the floor z = 0, in place: a constant root height offset makes the lowest
    point of the rear feet (calcn bodies) over the whole clip touch the floor; toes that would
    then dip below it bend at the MTP joint (`lift_toes`); frames whose feet still penetrate
    (an MTP at its range's end) have their root raised by the depth, as MuscleMimic's
    retargeting does."""
    rear_feet = tuple(b for b in GROUND_CONTACT_BODIES if b not in TOE_JOINTS)
    report.height_offset = -float(lowest_points(model, qpos, body_geoms(model, rear_feet)).min())
    qpos[:, z_col] += report.height_offset
    report.lifted_toes = lift_toes(model, qpos)
    depth = np.maximum(0.0, -lowest_points(model, qpos, body_geoms(model, GROUND_CONTACT_BODIES)))
    qpos[:, z_col] += depth
    report.raised_frames = (int(np.count_nonzero(depth)), float(depth.max()))


def _root_pose(model: mujoco.MjModel, table: OpenSimTable) -> np.ndarray:
    """(T, 7) free-root position and quaternion from the pelvis coordinates; x = y = 0 at the start."""
    data = mujoco.MjData(model)
    mujoco.mj_kinematics(model, data)
    pelvis = model.body(PELVIS_BODY).id
    root_body = int(model.body_rootid[pelvis])
    root_rot = data.xmat[root_body].reshape(3, 3)
    pelvis_rot = root_rot.T @ data.xmat[pelvis].reshape(3, 3)
    pelvis_pos = root_rot.T @ (data.xpos[pelvis] - data.xpos[root_body])
    angles = np.stack([table.radians(c) for c in PELVIS_COORDINATES[:3]], axis=1)
    translation = np.stack([table.column(c) for c in PELVIS_COORDINATES[3:]], axis=1)
    pelvis_world = OPENSIM_TO_MUJOCO @ Rotation.from_euler("ZXY", angles).as_matrix()
    root_world = pelvis_world @ pelvis_rot.T
    position = translation @ OPENSIM_TO_MUJOCO.T - root_world @ pelvis_pos
    position[:, :2] -= position[0, :2]
    quat = Rotation.from_matrix(root_world).as_quat(scalar_first=True)
    quat[0] *= np.sign(quat[0, 0]) or 1.0
    for t in range(1, len(quat)):  # one hemisphere frame to frame: no sign jumps
        if quat[t] @ quat[t - 1] < 0:
            quat[t] *= -1.0
    return np.concatenate([position, quat], axis=1)


def _compact(columns: list[str]) -> str:
    """Column names with each marker's `_tx/_ty/_tz` triplet written once."""
    stems = list(dict.fromkeys(re.sub(r"_t[xyz]$", "", c) for c in columns))
    if all(f"{stem}_t{axis}" in columns for stem in stems for axis in "xyz") and len(stems) < len(columns):
        return f"{', '.join(stems)} (_tx/_ty/_tz each)"
    return ", ".join(columns)


def unused_summary(report: ConversionReport) -> dict[str, str]:
    """The report's unused columns once each: reason -> the columns, marker triplets compacted."""
    by_reason: dict[str, list[str]] = {}
    for column, reason in report.unused_columns.items():
        by_reason.setdefault(reason, []).append(column)
    return {reason: f"{len(columns)} column(s): {_compact(columns)}" for reason, columns in by_reason.items()}


def _log_report(path: Path, report: ConversionReport) -> None:
    log.info("%s: %s; %s conventions: %s", path, report.angles_note, report.model, report.model_note)
    if report.missing_columns:
        log.warning("%s: no column(s) %s: their joints stay at the rest pose", path, ", ".join(report.missing_columns))
    if report.neutral_joints:
        log.warning("%s: no source coordinate for %d joint(s), kept at the rest pose qpos0: %s",
                    path, len(report.neutral_joints), ", ".join(report.neutral_joints))
    for reason, columns in unused_summary(report).items():
        log.warning("%s: not used, %s: %s", path, reason, columns)
    for line in report.out_of_range:
        log.warning("%s: outside the joint range (kept, not clamped): %s", path, line)
    for joint, (frames, largest) in report.lifted_toes.items():
        if frames:
            log.warning("%s: %s turned in %d frame(s) (by up to %.3f rad) to keep the toes out of the floor",
                        path, joint, frames, largest)
    frames, largest = report.raised_frames
    if frames:
        log.warning("%s: root raised in %d frame(s) (by up to %.4f m) to keep the feet out of the floor",
                    path, frames, largest)
    log.info("%s: root height offset %.4f m puts the lowest rear-foot point on the floor", path, report.height_offset)
