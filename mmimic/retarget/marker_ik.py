"""Markers to motion: registration to the body, then weighted marker inverse kinematics.

`prepare_markers` checks a trial against its marker set and registers the markers to the body,
in the spirit of OpenSim's Scale tool, on the first `REGISTRATION_SECONDS` of the static trial
(or, without one, of the trial):

1. *scale*: the body's bodies are scaled one by one (a body's scale multiplies its children's
   offsets and its markers' locations) to fit the markers of known location, starting from
   the marker set's own scales (an OpenSim model scaled to its subject): alternately every
   frame of the window is solved by IK, in order as the trial is, and the scales by linear
   least squares on `REGISTRATION_FRAMES` of them (the marker positions of a fixed pose are
   affine in the scales), each scale pulled weakly
   (`SCALE_PRIOR`) towards a common one, so bodies the markers do not measure follow the rest;
2. *place*: markers without a location (tracking clusters) or not `fixed` are moved to where
   the window's frames see them, averaged in their body's frame.

Joints the marker set's model does not move (an OpenSim model's welded subtalar joint, a
locked coordinate) are held at its values, so the other joints take the motion as they did
in that model's own IK.

`solve_markers` then solves every output frame by the project's IK (`ik.FrameSolver`:
damped least squares with MuJoCo C Jacobians, joint limits, coupled joints computed, warm
start and smoothness) with each marker a point body on the scaled body, weighted by the IK
task set (OpenSim's weights multiply squared errors: the solver's weight is their square
root, normalised to a mean of 1); a marker missing in a frame weighs 0 there. The clip keeps
the joint angles; the root's translation is divided by the legs' scale so strides fit the
unscaled body, and the ground pass (`pipeline`) puts it on the floor.

Frames: the trial is cut to the frames where the pelvis is seen (3 of its markers or hip
joint centres) and at least half the weighted markers are: leading and trailing frames outside
are dropped with a note, a gap inside is an error naming its frames.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import mujoco
import numpy as np

from mmimic.io.markers import MarkerTrial
from mmimic.motion.kinematics import per_frame, posed
from mmimic.motion.resample import interpolate_columns, output_frames
from mmimic.retarget.ik import FrameSolver, IKSettings, kinematic_model
from mmimic.retarget.markers import Marker, MarkerSet
from mmimic.retarget.source import RetargetError

REGISTRATION_SECONDS = 1.0
"""The registration window: about a gait cycle of a walk, so the joints move through their range."""
REGISTRATION_FRAMES = 20
"""Frames of the window, evenly spaced, the scales are fitted on (every frame of it is solved, in order)."""
REGISTRATION_ROUNDS = 4
SCALE_PRIOR = 0.05
"""Weight (m per unit of scale, per registration frame) pulling each body's scale towards the common scale."""
SCALE_RANGE = (0.6, 1.6)
PELVIS = "pelvis"
MIN_PRESENT = 0.5
LEG_BODIES = ("femur_l", "femur_r", "tibia_l", "tibia_r")


@dataclass
class MarkerMotion:
    """A checked, registered marker trial: what `Retargeter.run` takes for markers.

    `positions` (T, M, 3) m z up (NaN: missing) of the used `markers`, `weights` (M,) the
    solver's weights; `scales` per body name, `leg_scale` the legs' mean scale; `held` the
    joints the marker set's model does not move, at their values (rad)."""

    path: Path
    fps: float
    markers: list[Marker]
    positions: np.ndarray
    weights: np.ndarray
    scales: dict[str, float]
    leg_scale: float
    held: dict[str, float]
    source_frames: int
    first_frame: int
    reader: str
    notes: list[str] = field(default_factory=list)

    @property
    def labels(self) -> list[str]:
        return [m.label for m in self.markers]

    @property
    def num_frames(self) -> int:
        return int(self.positions.shape[0])


def _weights(trial: MarkerTrial, marker_set: MarkerSet, tasks: dict[str, float] | None, notes: list[str]) -> dict[str, float]:
    """Weight per used label (trial and set); the labels left out are noted."""
    common = [label for label in trial.labels if label in marker_set.markers]
    if not common:
        raise RetargetError(trial.path, f"none of its {len(trial.labels)} markers ({', '.join(trial.labels[:8])}, ...) "
                            f"is in the marker set {marker_set.path.name}: the marker set does not fit the trial")
    unused = [label for label in trial.labels if label not in marker_set.markers]
    if unused:
        notes.append(f"{trial.path.name}: markers not in the marker set, not used: {', '.join(unused)}")
    absent = [label for label in marker_set.markers if label not in trial.labels]
    if absent:
        notes.append(f"{marker_set.path.name}: markers not in the trial: {', '.join(absent)}")
    if tasks is None:
        return {label: 1.0 for label in common}
    weights = {label: tasks.get(label, 0.0) for label in common}
    unlisted = [label for label in common if label not in tasks]
    if unlisted:
        notes.append(f"IK task set: no task for {', '.join(unlisted)} (weight 0, as in OpenSim)")
    if not any(weights.values()):
        raise RetargetError(trial.path, "every marker of the trial weighs 0 in the IK task set")
    return weights


def _usable_frames(trial: MarkerTrial, markers: list[Marker], weights: np.ndarray, model: mujoco.MjModel, notes: list[str]) -> slice:
    """The frames the trial is cut to (module docstring); an error for a gap inside them."""
    present = ~np.isnan(trial.positions[..., 0])
    columns = [trial.labels.index(m.label) for m in markers]
    present = present[:, columns]
    pelvis = [i for i, m in enumerate(markers) if m.location is not None and (
        m.body == PELVIS or (model.body(model.body(m.body).parentid[0]).name == PELVIS and not np.any(m.location)))]
    weighted = weights > 0
    seen = (present[:, pelvis].sum(axis=1) >= 3) & (present[:, weighted].sum(axis=1) >= MIN_PRESENT * weighted.sum())
    if not seen.any():
        raise RetargetError(trial.path, "no frame shows the pelvis (3 of its markers or hip joint centres: "
                            f"{', '.join(markers[i].label for i in pelvis) or 'none in the marker set'}) and half the weighted markers")
    first, last = int(np.argmax(seen)), int(len(seen) - np.argmax(seen[::-1]) - 1)
    inside = np.flatnonzero(~seen[first : last + 1]) + first
    if inside.size:
        raise RetargetError(trial.path, f"frames {inside[0] + 1}-{inside[-1] + 1} (of {len(seen)}) lose the pelvis or half the "
                            "weighted markers inside the trial: fill the gap or cut the trial there")
    if first > 0 or last < len(seen) - 1:
        notes.append(f"{trial.path.name}: frames {first + 1}-{last + 1} of {len(seen)} used; the others do not show "
                     "the pelvis and half the weighted markers")
    gaps = {markers[i].label: int((~present[first : last + 1, i]).sum()) for i in range(len(markers))}
    gaps = {k: v for k, v in gaps.items() if v}
    if gaps:
        notes.append("marker gaps (frames solved without them): " + ", ".join(f"{k} {v}" for k, v in gaps.items()))
    return slice(first, last + 1)


class _ScaledBody:
    """The kinematic body with a point body per marker, scaled in place (`apply`)."""

    def __init__(self, model: mujoco.MjModel, markers: list[Marker]) -> None:
        self.base = kinematic_model(model)
        self.model = kinematic_model(model, [(f"marker:{m.label}", model.body(m.body).id, np.zeros(3)) for m in markers])
        self.ids = [self.model.body(f"marker:{m.label}").id for m in markers]
        self.names = [self.base.body(b).name for b in range(self.base.nbody)]
        tree = [self.model.body(n).id for n in self.names]
        self.tree = np.array(tree)
        self.parent_name = {n: self.names[self.base.body_parentid[b]] for b, n in enumerate(self.names)}
        self.offsets = self.base.body_pos.copy()
        self.bodies = [m.body for m in markers]
        free = np.flatnonzero(self.model.jnt_type == mujoco.mjtJoint.mjJNT_FREE)
        if free.size != 1:
            raise ValueError("marker IK needs a body with one free root joint")
        self.root = int(self.model.jnt_qposadr[free[0]])
        # qpos column of the free root position (its quaternion follows)
        self.root_body = int(self.model.jnt_bodyid[free[0]])

    def apply(self, scales: dict[str, float], locations: list[np.ndarray]) -> None:
        """Scale every body's children offsets by its scale and place the markers."""
        for b, name in enumerate(self.names[1:], start=1):
            self.model.body_pos[self.tree[b]] = self.offsets[b] * scales[self.parent_name[name]]
        for i, (body, location) in enumerate(zip(self.bodies, locations)):
            self.model.body_pos[self.ids[i]] = location * scales[body]


def _initial_pose(body: _ScaledBody, rest: np.ndarray, observed: np.ndarray, known: np.ndarray) -> np.ndarray:
    """The rest pose moved rigidly (Kabsch) onto the markers seen in the first frame."""
    data = posed(body.model, rest)
    use = known & ~np.isnan(observed[:, 0])
    model_points, seen = data.xpos[np.array(body.ids)[use]], observed[use]
    mc, sc = model_points.mean(0), seen.mean(0)
    u, _, vt = np.linalg.svd((model_points - mc).T @ (seen - sc))
    turn = (u @ np.diag([1.0, 1.0, np.sign(np.linalg.det(u @ vt))]) @ vt).T
    qpos, r = rest.copy(), body.root
    qpos[r : r + 3] = sc + turn @ (data.xpos[body.root_body] - mc)
    mujoco.mju_mat2Quat(qpos[r + 3 : r + 7], (turn @ data.xmat[body.root_body].reshape(3, 3)).ravel())
    return qpos


def _solver(body: _ScaledBody, weights: np.ndarray, rest: np.ndarray, settings: IKSettings,
            held: dict[str, float]) -> FrameSolver:
    """The IK of the marker bodies, the joints `held` bounded to their values."""
    solver = FrameSolver(body.model, body.ids, weights, [], np.zeros(0), rest, settings)
    coupling, joints = solver.coupling, [int(j) for j in solver.coupling.joint_ids]
    for name, value in held.items():
        joint = body.model.joint(name).id
        if joint in joints:
            i = joints.index(joint)
            coupling.lower[i] = coupling.upper[i] = float(np.clip(value, coupling.lower[i], coupling.upper[i]))
    return solver


def _solve_frames(body: _ScaledBody, solver: FrameSolver, rest: np.ndarray, positions: np.ndarray,
                  weights: np.ndarray) -> np.ndarray:
    """IK of every frame of `positions` (T, M, 3) in order, from the rest pose moved onto the
    first frame; a missing marker weighs 0 in its frame."""
    solver.history = []  # a new sequence: the first frame is solved from `start`
    start = _initial_pose(body, rest, positions[0], weights > 0)
    qpos = np.empty((len(positions), body.model.nq))
    for t, frame in enumerate(positions):
        missing = np.isnan(frame[:, 0])
        solver.set_point_weights(np.where(missing, 0.0, weights))
        qpos[t] = solver.solve(np.where(missing[:, None], 0.0, frame), np.zeros((0, 3, 3)), start)[0]
    return qpos


def _marker_positions(body: _ScaledBody, qpos: np.ndarray) -> np.ndarray:
    return per_frame(body.model, qpos, lambda data: data.xpos[body.ids])


def _fit_scales(body: _ScaledBody, qpos: np.ndarray, observed: np.ndarray, weights: np.ndarray,
                locations: list[np.ndarray], known: np.ndarray) -> dict[str, float]:
    """Least-squares body scales for the poses `qpos` (K, nq) (module docstring, step 1)."""
    names = body.names[1:]
    k, m = len(qpos), len(body.ids)
    zero = {n: 0.0 for n in body.names}
    body.apply(zero, locations)
    base = _marker_positions(body, qpos)
    columns = {}
    for name in names:
        body.apply(zero | {name: 1.0}, locations)
        effect = (_marker_positions(body, qpos) - base).reshape(k, m * 3)
        if np.abs(effect).max() > 1e-9:  # bodies that move no marker take the common scale
            columns[name] = effect
    names, columns = list(columns), list(columns.values())
    use = (known & (weights > 0))[None, :] & ~np.isnan(observed[..., 0])
    row_weight = np.repeat(np.where(use, weights[None, :], 0.0), 3, axis=1)  # (K, 3M)
    target = np.nan_to_num((observed - base).reshape(k, m * 3))
    n_scale = len(names)
    # unknowns: scales, the common scale, a root shift per frame
    a = np.zeros((k * m * 3 + n_scale, n_scale + 1 + 3 * k))
    b = np.zeros(k * m * 3 + n_scale)
    for f in range(k):
        rows = slice(f * m * 3, (f + 1) * m * 3)
        a[rows, :n_scale] = np.stack([c[f] for c in columns], axis=1) * row_weight[f][:, None]
        a[rows, n_scale + 1 + 3 * f : n_scale + 4 + 3 * f] = np.tile(np.eye(3), (m, 1)) * row_weight[f][:, None]
        b[rows] = target[f] * row_weight[f]
    prior = SCALE_PRIOR * math.sqrt(k)
    a[k * m * 3 :, :n_scale] = prior * np.eye(n_scale)
    a[k * m * 3 :, n_scale] = -prior
    solution = np.linalg.solve(a.T @ a, a.T @ b)  # normal equations: the prior rows make it full rank
    common = float(np.clip(solution[n_scale], *SCALE_RANGE))
    return {n: common for n in body.names} | {n: float(np.clip(s, *SCALE_RANGE)) for n, s in zip(names, solution[:n_scale])}


def _place(body: _ScaledBody, qpos: np.ndarray, observed: np.ndarray, scales: dict[str, float], index: int) -> np.ndarray | None:
    """The generic location of marker `index` averaged over the frames that see it (step 2)."""
    data = mujoco.MjData(body.model)
    parent = body.model.body_parentid[body.ids[index]]
    local = []
    for q, x in zip(qpos, observed[:, index]):
        if np.isnan(x[0]):
            continue
        data.qpos[:] = q
        mujoco.mj_kinematics(body.model, data)
        local.append(data.xmat[parent].reshape(3, 3).T @ (x - data.xpos[parent]))
    if not local:
        return None
    return np.mean(local, axis=0) / scales[body.bodies[index]]


def prepare_markers(
    trial: MarkerTrial,
    marker_set: MarkerSet,
    model: mujoco.MjModel,
    rest: np.ndarray,
    tasks: dict[str, float] | None = None,
    static: MarkerTrial | None = None,
    settings: IKSettings | None = None,
) -> MarkerMotion:
    """Check `trial` against `marker_set` and register the markers to `model` (module docstring)."""
    settings = settings or IKSettings()
    notes = list(trial.notes) + list(marker_set.notes)
    by_label = _weights(trial, marker_set, tasks, notes)
    markers = [marker_set.markers[label] for label in by_label]
    raw = np.array(list(by_label.values()))
    weights = np.sqrt(raw / raw[raw > 0].mean())
    if static is not None:
        lacking = [m.label for m in markers if m.label not in static.labels and (m.location is None or not m.fixed)]
        if lacking:
            raise RetargetError(static.path, f"the static trial lacks the markers {', '.join(lacking)}, which registration "
                                "must place; record them in the static trial or leave them out of the marker set")
        registered = [m.label for m in marker_set.markers.values() if m.label in static.labels]
        missing = [label for label in registered if label not in trial.labels and tasks is not None and tasks.get(label, 0) > 0]
        if tasks is None:
            missing = [label for label in registered if label not in trial.labels]
        if missing:
            raise RetargetError(trial.path, f"the trial lacks the static trial's markers {', '.join(missing)}: "
                                "a trial of another marker set or session? (or leave them out of the IK tasks)")
    used = _usable_frames(trial, markers, weights, model, notes)
    positions = trial.positions[used][:, [trial.labels.index(m.label) for m in markers]]

    body = _ScaledBody(model, markers)
    if static is None:
        reg = positions[: max(2, round(REGISTRATION_SECONDS * trial.fps))]
        notes.append(f"registration on the trial's first {len(reg) / trial.fps:.2f} s (no static trial)")
    else:
        frames = static.positions[:, [static.labels.index(m.label) if m.label in static.labels else 0 for m in markers]]
        frames[:, [m.label not in static.labels for m in markers]] = np.nan
        reg = frames[: max(2, round(REGISTRATION_SECONDS * static.fps))]
        notes.append(f"registration on the static trial {static.path.name}" + (
            f"'s first {len(reg) / static.fps:.2f} s" if len(reg) < len(frames) else ""))
    chosen = np.unique(np.linspace(0, len(reg) - 1, min(REGISTRATION_FRAMES, len(reg))).round().astype(int))
    known = np.array([m.location is not None for m in markers])
    if (known & (weights > 0)).sum() < 4:
        raise RetargetError(marker_set.path, "fewer than 4 weighted markers of known location: registration "
                            "needs anatomical markers or joint centres with a location")
    locations = [m.location if m.location is not None else np.zeros(3) for m in markers]
    scales = {n: marker_set.scales.get(n, marker_set.typical_scale) for n in body.names}
    reg_weights = np.where(known, weights, 0.0)
    solver = _solver(body, reg_weights, rest, settings, marker_set.held)
    for _ in range(REGISTRATION_ROUNDS):
        body.apply(scales, locations)
        qpos = _solve_frames(body, solver, rest, reg, reg_weights)
        scales = _fit_scales(body, qpos[chosen], reg[chosen], weights, locations, known)
    body.apply(scales, locations)
    qpos = _solve_frames(body, solver, rest, reg, reg_weights)
    unplaced = []
    for i, m in enumerate(markers):
        if m.location is None or not m.fixed:
            placed = _place(body, qpos, reg, scales, i)
            if placed is None:
                unplaced.append(m.label)
            else:
                locations[i] = placed
    if unplaced:
        raise RetargetError(trial.path if static is None else static.path,
                            f"markers {', '.join(unplaced)} have no location and are not seen in the registration frames")
    markers = [Marker(m.label, m.body, loc, m.fixed) for m, loc in zip(markers, locations)]
    legs = [scales[b] for b in LEG_BODIES if b in scales]
    leg_scale = float(np.mean(legs)) if legs else scales[body.names[0]]
    measured = sorted({m.body for m in markers})
    notes.append("body scales: " + ", ".join(f"{b} {scales[b]:.3f}" for b in measured) + f"; legs {leg_scale:.3f}")
    return MarkerMotion(trial.path, trial.fps, markers, positions, weights, scales, leg_scale, dict(marker_set.held),
                        trial.num_frames, used.start, "markers", notes)


def solve_markers(motion: MarkerMotion, model: mujoco.MjModel, rest: np.ndarray, fps: float,
                  settings: IKSettings | None = None, progress=None) -> tuple[np.ndarray, dict[str, object], dict[str, float]]:
    """(qpos (T, nq) of the unscaled body at `fps`, details, metrics) of a prepared trial."""
    settings = settings or IKSettings()
    body = _ScaledBody(model, motion.markers)
    body.apply(motion.scales, [m.location for m in motion.markers])
    times = np.arange(output_frames(motion.num_frames, motion.fps, fps)) / fps
    source = np.arange(motion.num_frames) / motion.fps
    targets = interpolate_columns(times, source, motion.positions.reshape(motion.num_frames, -1))
    targets = targets.reshape(len(times), -1, 3)
    solver = _solver(body, motion.weights, rest, settings, motion.held)
    qpos = np.empty((len(times), body.model.nq))
    start = _initial_pose(body, rest, targets[0], motion.weights > 0)
    iterations = 0
    for t, frame in enumerate(targets):
        missing = np.isnan(frame[:, 0])
        solver.set_point_weights(np.where(missing, 0.0, motion.weights))
        qpos[t], used = solver.solve(np.where(missing[:, None], 0.0, frame), np.zeros((0, 3, 3)), start)
        iterations += used
        if progress is not None and (t % 50 == 49 or t == len(times) - 1):
            progress(t % 50 + 1)
    errors = np.linalg.norm(_marker_positions(body, qpos) - targets, axis=-1)  # NaN where missing
    per_marker = {}
    for i, label in enumerate(motion.labels):
        e = errors[:, i][~np.isnan(errors[:, i])]
        per_marker[label] = {
            "weight": float(motion.weights[i]),
            "rms_m": float(np.sqrt(np.mean(e**2))) if e.size else None,
            "max_m": float(e.max()) if e.size else None,
            "missing_frames": int(len(errors) - e.size),
        }
    weighted = errors[:, motion.weights > 0]
    weighted = weighted[~np.isnan(weighted)]
    qpos[:, body.root : body.root + 3] /= motion.leg_scale
    details = {
        "reader": motion.reader,
        "source_frames": motion.source_frames,
        "source_fps": motion.fps,
        "first_source_frame": motion.first_frame + 1,
        "ik_iterations_per_frame": iterations / len(times),
        "body_scales": {b: motion.scales[b] for b in sorted({m.body for m in motion.markers})},
        "leg_scale": motion.leg_scale,
        "held_joints": dict(motion.held),
        "marker_errors_m": per_marker,
    }
    metrics = {"marker_rmse_m": float(np.sqrt(np.mean(weighted**2))), "marker_max_error_m": float(weighted.max())}
    return qpos, details, metrics


MARKER_SUFFIXES = (".trc", ".c3d")


def read_trial(path: str | Path, up: str | None = None) -> MarkerTrial:
    """A TRC or C3D marker trial (`up`: the file's vertical axis, default from the file or
    OpenSim's y for TRC); a file problem is a `RetargetError`."""
    from mmimic.io.c3d import read_c3d
    from mmimic.io.markers import MarkerFileError
    from mmimic.io.trc import read_trc

    path = Path(path)
    if path.suffix.lower() not in MARKER_SUFFIXES:
        raise RetargetError(path, f"a marker trial is a {' or '.join(MARKER_SUFFIXES)} file")
    try:
        return read_trc(path, up or "y") if path.suffix.lower() == ".trc" else read_c3d(path, up)
    except MarkerFileError as exc:
        raise RetargetError(path, str(exc).removeprefix(f"{path}: ")) from None
