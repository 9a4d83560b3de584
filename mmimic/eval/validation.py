"""Gait validation: simulated or replayed walking against experimental walking data.

Everything meets in :class:`GaitData`: one trial on one time base with joint angles (rad, keyed
by MyoFullBody joint), ground reaction forces per foot (vertical, fore-aft; N), EMG or muscle
activations per EMG channel, and gait events per foot. It is built by

* :func:`load_opensim_trial` / :func:`load_gait120` / :func:`load_experiment`: experiments
  (OpenSim tables; events from the force plates' vertical force);
* :func:`replay_gait`: a clip replayed kinematically in the body with MuJoCo C (no dynamics,
  so no forces; events from the feet's height, see below);
* :func:`simulated_gait`: a simulated rollout; forces are the foot-floor contact forces that
  MuJoCo C computes for the recorded states, events come from their vertical component.

:func:`compare_gait` then cuts heel-strike-to-heel-strike strides of one foot in both, normalises
them to 0-100 % of the cycle and compares them per joint, per force component (in body weights)
and per EMG channel (:func:`mmimic.eval.gait.compare_curves`).

Events of a kinematic replay. A replay has no ground contact to measure: the MyoFullBody foot is
not the subject's, and with the clip's floor set by its lowest rear-foot point the heel is still
2.4-2.7 cm above the floor at the trial's force-plate heel strikes (the right foot first touches
the floor at 0.76 s, in late stance), so the contact forces of an ``mj_forward`` replay miss the
heel strikes entirely. Instead the heel (lowest point of the calcaneus collision geoms) is in
contact within ``HEEL_CONTACT_HEIGHT`` (2.5 cm, the body's heel offset measured on the shipped
trial) of the floor, debounced like force-plate contact (:func:`detect_gait_events`), and a
toe-off is the toes' first rise above ``TOE_CONTACT_HEIGHT`` after a heel strike.
docs/evaluation.md gives the timing errors on the shipped trial and their sensitivity.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import mujoco
import numpy as np

from mmimic.embodiment import Embodiment
from mmimic.eval.gait import (
    COORDINATE_TO_JOINT,
    EMG_TO_MUSCLES,
    GRAVITY,
    CurveComparison,
    GaitEvents,
    compare_curves,
    detect_gait_events,
    emg_muscles,
    grf_body_weight,
    normalize_strides,
    strides,
)
from mmimic.io.opensim import OpenSimFormatError, OpenSimTable, read_opensim_table

__all__ = [
    "FOOT_BODIES",
    "HEEL_CONTACT_HEIGHT",
    "TOE_CONTACT_HEIGHT",
    "GaitComparison",
    "GaitData",
    "GaitDataError",
    "compare_gait",
    "load_experiment",
    "load_gait120",
    "load_opensim_trial",
    "replay_gait",
    "simulated_gait",
]

SIDES = ("r", "l")
FOOT_BODIES = {"r": ("calcn_r", "toes_r"), "l": ("calcn_l", "toes_l")}
"""Heel and toe body of each foot in MyoFullBody."""
HEEL_CONTACT_HEIGHT = 0.025
"""m: a replayed heel closer to the floor is in contact (MyoFullBody's heel geometry, module docstring)."""
TOE_CONTACT_HEIGHT = 0.01
"""m: replayed toes rising above this height after a heel strike leave the floor."""
GRF_COMPONENTS = ("vertical", "fore_aft")
REQUIRED_COORDINATES = tuple(f"{c}_{s}" for s in SIDES for c in ("hip_flexion", "knee_angle", "ankle_angle"))
REQUIRED_GRF = tuple(f"ground_force_{s}_v{a}" for s in SIDES for a in "xyz")


class GaitDataError(ValueError):
    """Gait data that cannot be used: a missing or unrecognised file or column, no stride."""


@dataclass
class GaitData:
    """One walking trial on one time base (s).

    ``angles[joint]`` (T,) rad, keyed by MyoFullBody joint; ``grf[side]`` (T, 2) N, columns
    vertical (up) and fore-aft (along the direction of progression); ``emg[channel]`` (T,):
    processed EMG (experiment) or the mean activation of the channel's muscles (simulation);
    ``events[side]``; ``body_mass`` kg (None when unknown); ``kind`` is "experiment",
    "simulation" or "replay"; ``notes`` says what was assumed, estimated, resampled or skipped.
    """

    name: str
    kind: str
    time: np.ndarray
    angles: dict[str, np.ndarray]
    grf: dict[str, np.ndarray]
    emg: dict[str, np.ndarray]
    events: dict[str, GaitEvents]
    body_mass: float | None
    notes: list[str] = field(default_factory=list)

    def stride_windows(self, side: str) -> list[tuple[float, float]]:
        """Heel-strike to heel-strike windows of ``side``; GaitDataError when there is none."""
        events = self.events.get(side)
        hs = [] if events is None else [round(float(t), 3) for t in events.heel_strikes]
        if len(hs) < 2:
            foot = {"r": "right", "l": "left"}.get(side, side)
            raise GaitDataError(
                f"{self.name}: no complete {foot} stride: heel strikes at {hs} s; a stride needs two heel "
                f"strikes of the same foot ({self.kind} events from "
                f"{'the feet heights' if self.kind == 'replay' else 'the vertical ground reaction force'})"
            )
        return strides(events)


# ---------------------------------------------------------------------- experiments


def _read(path: Path, notes: list[str]) -> OpenSimTable:
    """An OpenSim table; a stale header count is noted, not fatal."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        table = read_opensim_table(path, strict=False)
    notes.extend(str(w.message) for w in caught)
    return table


def _kind_of(table: OpenSimTable) -> str | None:
    labels = set(table.labels)
    if labels & set(COORDINATE_TO_JOINT):
        return "coordinates"
    if any(label.startswith("ground_force") for label in labels):
        return "grf"
    if labels & set(EMG_TO_MUSCLES):
        return "emg"
    return None


def _require(table: OpenSimTable, columns: Sequence[str], what: str) -> None:
    missing = [c for c in columns if c not in table]
    if missing:
        raise GaitDataError(
            f"{table.path}: {what} table lacks column(s) {', '.join(missing)}; it has: {', '.join(table.labels)}"
        )


def _common_grid(tables: list[OpenSimTable], notes: list[str]) -> np.ndarray:
    """A uniform time grid at the highest rate of ``tables`` over the span they share."""
    try:
        rates = [t.rate for t in tables]
    except OpenSimFormatError as exc:
        raise GaitDataError(str(exc)) from None
    rate = max(rates)
    start = max(float(t.time[0]) for t in tables)
    end = min(float(t.time[-1]) for t in tables)
    if end - start < 2.0 / rate:
        spans = ", ".join(f"{t.path.name} [{t.time[0]:g}, {t.time[-1]:g}] s" for t in tables)
        raise GaitDataError(f"the experimental tables share no time span: {spans}")
    for table, table_rate in zip(tables, rates):
        if not math.isclose(table_rate, rate, rel_tol=1e-3):
            notes.append(
                f"{table.path}: sampled at {table_rate:g} Hz, resampled to {rate:g} Hz (the trial's "
                "highest rate) by linear interpolation"
            )
    count = int(math.floor((end - start) * rate + 1e-6)) + 1
    return start + np.arange(count) / rate


def _progression(coords: OpenSimTable, notes: list[str]) -> np.ndarray:
    """Unit horizontal direction of walking in OpenSim's y-up ground (x, z components)."""
    if "pelvis_tx" in coords and "pelvis_tz" in coords:
        step = np.array(
            [coords.data[-1, coords.index(c)] - coords.data[0, coords.index(c)] for c in ("pelvis_tx", "pelvis_tz")]
        )
        if np.linalg.norm(step) > 0:
            return step / np.linalg.norm(step)
    notes.append(f"{coords.path}: no pelvis_tx / pelvis_tz travel; fore-aft GRF taken along +x")
    return np.array([1.0, 0.0])


def _estimate_mass(
    time: np.ndarray, grf: dict[str, np.ndarray], events: dict[str, GaitEvents], pelvis_height: np.ndarray | None
) -> tuple[float | None, str]:
    """Body mass from the force plates: over a step (heel strike of one foot to the next heel strike
    of the other) in which the other foot's toe-off is recorded, both feet were on plates, so the mean
    vertical force is m (g + dv/dt) with dv the change of the pelvis' vertical velocity."""
    masses, weights, spans = [], [], []
    for a, b in (("r", "l"), ("l", "r")):
        for start in events[a].heel_strikes:
            later = events[b].heel_strikes[events[b].heel_strikes > start]
            if later.size == 0:
                continue
            end = float(later[0])
            if not np.any((events[b].toe_offs > start) & (events[b].toe_offs < end)):
                continue
            inside = (time >= start) & (time <= end)
            force = float(np.mean(grf["r"][inside, 0] + grf["l"][inside, 0]))
            accel = 0.0
            if pelvis_height is not None:
                v = np.gradient(pelvis_height, time)
                accel = float(np.interp(end, time, v) - np.interp(start, time, v)) / (end - start)
            masses.append(force / (GRAVITY + accel))
            weights.append(end - start)
            spans.append(f"{start:.3f}-{end:.3f} s")
    if not masses:
        return None, "body mass unknown: no step with both feet on the force plates; give it explicitly"
    mass = float(np.average(masses, weights=weights))
    return mass, f"body mass {mass:.1f} kg estimated from the vertical GRF over the step(s) {', '.join(spans)}"


def _experiment(
    name: str,
    coords: OpenSimTable,
    grf: OpenSimTable,
    emg: OpenSimTable | None,
    body_mass: float | None,
    notes: list[str],
) -> GaitData:
    _require(coords, REQUIRED_COORDINATES, "inverse-kinematics")
    _require(grf, REQUIRED_GRF, "ground reaction force")
    tables = [coords, grf] + ([emg] if emg is not None else [])
    time = _common_grid(tables, notes)
    coords_r, grf_r = coords.resample(time), grf.resample(time)
    direction = _progression(coords, notes)

    angles = {}
    for coordinate, mapping in COORDINATE_TO_JOINT.items():
        if coordinate in coords_r:
            angles[mapping.joint] = mapping.scale * coords_r.radians(coordinate)
    forces = {}
    for side in SIDES:
        vertical = grf_r.column(f"ground_force_{side}_vy")
        horizontal = np.stack([grf_r.column(f"ground_force_{side}_vx"), grf_r.column(f"ground_force_{side}_vz")], 1)
        forces[side] = np.stack([vertical, horizontal @ direction], axis=1)
    events = {side: detect_gait_events(time, forces[side][:, 0]) for side in SIDES}

    signals = {}
    if emg is not None:
        emg_r = emg.resample(time)
        signals = {channel: emg_r.column(channel) for channel in EMG_TO_MUSCLES if channel in emg_r}
        ignored = [label for label in emg.labels if label not in EMG_TO_MUSCLES]
        if ignored:
            notes.append(
                f"{emg.path}: column(s) {', '.join(ignored)} are not EMG channels mmimic maps "
                f"({', '.join(EMG_TO_MUSCLES)}); ignored"
            )

    if body_mass is None:
        height = coords_r.column("pelvis_ty") if "pelvis_ty" in coords_r else None
        body_mass, message = _estimate_mass(time, forces, events, height)
        notes.append(message)
    elif not (math.isfinite(body_mass) and body_mass > 0):
        raise GaitDataError(f"body_mass must be a positive number of kg, got {body_mass}")
    return GaitData(name, "experiment", time, angles, forces, signals, events, body_mass, notes)


def load_opensim_trial(directory: str | Path, body_mass: float | None = None) -> GaitData:
    """A walking trial stored as OpenSim tables in one directory (the layout of
    ``motions/sources/opensim_moco_walk``). Tables are recognised by their columns:
    inverse-kinematics coordinates (Rajagopal names; with several, the longest is used), one
    ground-reaction-force table (``ground_force_{r,l}_v{x,y,z}``) and optionally one EMG table
    (channels named as in :data:`mmimic.eval.gait.EMG_TO_MUSCLES`); other tables are ignored.
    ``body_mass`` (kg) is estimated from the force plates when not given."""
    directory = Path(directory)
    if not directory.is_dir():
        raise GaitDataError(f"{directory}: not a directory (expected an OpenSim trial directory)")
    notes: list[str] = []
    found: dict[str, list[OpenSimTable]] = {"coordinates": [], "grf": [], "emg": []}
    for path in sorted(p for p in directory.iterdir() if p.suffix in (".mot", ".sto")):
        try:
            table = _read(path, notes)
        except OpenSimFormatError as exc:
            raise GaitDataError(str(exc)) from None
        kind = _kind_of(table)
        if kind is None:
            notes.append(f"{path.name}: neither coordinates, GRF nor EMG; ignored")
        else:
            found[kind].append(table)
    for kind, what in (
        ("coordinates", "inverse-kinematics coordinates (hip_flexion_r, ...)"),
        ("grf", "ground reaction forces (ground_force_r_vy, ...)"),
    ):
        if not found[kind]:
            raise GaitDataError(f"{directory}: no .mot/.sto table of {what}")
    for kind in ("grf", "emg"):
        if len(found[kind]) > 1:
            names = ", ".join(t.path.name for t in found[kind])
            raise GaitDataError(f"{directory}: several {kind.upper()} tables ({names}); keep one")
    coords = max(found["coordinates"], key=lambda t: t.time[-1] - t.time[0])
    if len(found["coordinates"]) > 1:
        notes.append(
            f"coordinates from {coords.path.name}, the longest of "
            f"{', '.join(t.path.name for t in found['coordinates'])}"
        )
    emg = found["emg"][0] if found["emg"] else None
    return _experiment(directory.name, coords, found["grf"][0], emg, body_mass, notes)


GAIT120_IK, GAIT120_GRF, GAIT120_EMG = "_ik.mot", "_grf.mot", "_emg.sto"


def load_gait120(directory: str | Path, body_mass: float | None = None) -> list[GaitData]:
    """Steps of a Gait120-style directory: for every step ``<step>_ik.mot`` (OpenSim
    inverse-kinematics coordinates), ``<step>_grf.mot`` (force plates,
    ``ground_force_{r,l}_v{x,y,z}``) and optionally ``<step>_emg.sto`` (EMG channels named as in
    :data:`mmimic.eval.gait.EMG_TO_MUSCLES`); one :class:`GaitData` per step, sorted by name."""
    directory = Path(directory)
    steps = sorted(p.name[: -len(GAIT120_IK)] for p in directory.glob(f"*{GAIT120_IK}"))
    if not steps:
        raise GaitDataError(f"{directory}: no <step>{GAIT120_IK} files (Gait120-style layout, see docs/evaluation.md)")
    trials = []
    for step in steps:
        grf_path = directory / f"{step}{GAIT120_GRF}"
        if not grf_path.is_file():
            raise GaitDataError(f"{directory}: step {step!r} has {step}{GAIT120_IK} but no {step}{GAIT120_GRF}")
        notes: list[str] = []
        try:
            coords = _read(directory / f"{step}{GAIT120_IK}", notes)
            grf = _read(grf_path, notes)
            emg_path = directory / f"{step}{GAIT120_EMG}"
            emg = _read(emg_path, notes) if emg_path.is_file() else None
        except OpenSimFormatError as exc:
            raise GaitDataError(str(exc)) from None
        trials.append(_experiment(step, coords, grf, emg, body_mass, notes))
    return trials


def load_experiment(path: str | Path, body_mass: float | None = None) -> list[GaitData]:
    """A Gait120-style directory (any ``*_ik.mot``), an OpenSim trial directory or a C3D file
    (its force plates: :func:`mmimic.eval.lab_trial.load_c3d_trial`)."""
    path = Path(path)
    if path.is_file() and path.suffix.lower() == ".c3d":
        from mmimic.eval.lab_trial import load_c3d_trial

        return [load_c3d_trial(path, body_mass)]
    if not path.is_dir():
        raise GaitDataError(
            f"{path}: experimental data must be a directory: an OpenSim trial (coordinates, GRF and EMG "
            f"tables) or a Gait120-style directory of <step>{GAIT120_IK} / {GAIT120_GRF} / {GAIT120_EMG} files; "
            "or a C3D file with force plates"
        )
    if any(path.glob(f"*{GAIT120_IK}")):
        return load_gait120(path, body_mass)
    return [load_opensim_trial(path, body_mass)]


# ---------------------------------------------------------------------- the model side


def _foot_geoms(model: mujoco.MjModel) -> dict[str, dict[str, list[int]]]:
    """Collision geoms of each foot's heel and toe bodies: side -> {"heel": [...], "toe": [...]}."""
    feet = {}
    for side, bodies in FOOT_BODIES.items():
        parts = {}
        for part, body in zip(("heel", "toe"), bodies):
            bid = mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_BODY, body)
            if bid < 0:
                raise GaitDataError(f"the model has no body {body!r}: gait analysis needs MyoFullBody's feet")
            parts[part] = [
                g
                for g in range(model.ngeom)
                if model.geom_bodyid[g] == bid and (model.geom_contype[g] or model.geom_conaffinity[g])
            ]
        feet[side] = parts
    return feet


def _floor(model: mujoco.MjModel) -> int:
    planes = [
        g
        for g in range(model.ngeom)
        if model.geom_bodyid[g] == 0 and int(model.geom_type[g]) == int(mujoco.mjtGeom.mjGEOM_PLANE)
    ]
    if not planes:
        raise GaitDataError("the model has no floor (a plane geom of the world body)")
    return planes[0]


def _joint_angles(embodiment: Embodiment, qpos: np.ndarray) -> dict[str, np.ndarray]:
    """Every MyoFullBody joint that a Rajagopal coordinate maps onto, from qpos (T, nq)."""
    model = embodiment.mj_model
    angles = {}
    for mapping in COORDINATE_TO_JOINT.values():
        jid = mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_JOINT, mapping.joint)
        if jid >= 0 and int(model.jnt_type[jid]) in (
            int(mujoco.mjtJoint.mjJNT_HINGE),
            int(mujoco.mjtJoint.mjJNT_SLIDE),
        ):
            angles[mapping.joint] = np.asarray(qpos[:, model.jnt_qposadr[jid]], dtype=np.float64)
    return angles


def _frames(embodiment: Embodiment, qpos: np.ndarray, fps: float) -> tuple[np.ndarray, np.ndarray]:
    qpos = np.asarray(qpos, dtype=np.float64)
    nq = embodiment.mj_model.nq
    if qpos.ndim != 2 or qpos.shape[1] != nq or qpos.shape[0] < 2:
        raise GaitDataError(f"qpos must be (frames >= 2, nq = {nq}), got {qpos.shape}")
    if not (math.isfinite(fps) and fps > 0):
        raise GaitDataError(f"fps must be positive, got {fps}")
    return qpos, np.arange(qpos.shape[0]) / fps


def _crossings(time: np.ndarray, height: np.ndarray, threshold: float, downward: bool) -> np.ndarray:
    """Interpolated times at which ``height`` crosses ``threshold`` (downward or upward)."""
    below = height < threshold
    change = np.flatnonzero(below[1:] != below[:-1]) + 1
    change = change[below[change] == downward]
    h0, h1 = height[change - 1], height[change]
    return time[change - 1] + (h0 - threshold) / (h0 - h1) * (time[change] - time[change - 1])


def replay_gait(embodiment: Embodiment, qpos: np.ndarray, fps: float, name: str = "replay") -> GaitData:
    """A clip (qpos frames at ``fps``) replayed kinematically: joint angles and events from the feet's
    heights (module docstring); no forces, no EMG."""
    qpos, time = _frames(embodiment, qpos, fps)
    model = embodiment.mj_model
    data = mujoco.MjData(model)
    feet, floor = _foot_geoms(model), _floor(model)
    heights = {(side, part): np.empty(len(time)) for side in SIDES for part in ("heel", "toe")}
    for i, q in enumerate(qpos):
        data.qpos[:] = q
        mujoco.mj_kinematics(model, data)
        for (side, part), h in heights.items():
            h[i] = min(mujoco.mj_geomDistance(model, data, g, floor, 1.0, None) for g in feet[side][part])
    events = {}
    for side in SIDES:
        heel = detect_gait_events(time, -heights[(side, "heel")], threshold=-HEEL_CONTACT_HEIGHT).heel_strikes
        rises = _crossings(time, heights[(side, "toe")], TOE_CONTACT_HEIGHT, downward=False)
        # a toe-off is the toes' first rise after a heel strike (and before the next one)
        bounds = np.append(heel[1:], np.inf)
        toe = [rises[(rises > a) & (rises < b)][:1] for a, b in zip(heel, bounds)]
        events[side] = GaitEvents(heel_strikes=heel, toe_offs=np.concatenate(toe) if toe else np.empty(0))
    notes = [
        f"replay events: heel strike when the heel comes within {HEEL_CONTACT_HEIGHT * 100:g} cm of the floor, "
        f"toe-off when the toes next rise above {TOE_CONTACT_HEIGHT * 100:g} cm"
    ]
    return GaitData(
        name, "replay", time, _joint_angles(embodiment, qpos), {}, {}, events, float(model.body_subtreemass[0]), notes
    )


def _contact_forces(model: mujoco.MjModel, data: mujoco.MjData, feet: dict, floor_body: int) -> dict[str, np.ndarray]:
    """World-frame force of the floor on each foot, summed over its contacts."""
    total = {side: np.zeros(3) for side in SIDES}
    owner = {g: side for side, parts in feet.items() for geoms in parts.values() for g in geoms}
    wrench = np.zeros(6)
    for c in range(data.ncon):
        contact = data.contact[c]
        g1, g2 = int(contact.geom1), int(contact.geom2)
        if g2 in owner and model.geom_bodyid[g1] == floor_body:
            side, sign = owner[g2], 1.0
        elif g1 in owner and model.geom_bodyid[g2] == floor_body:
            side, sign = owner[g1], -1.0
        else:
            continue
        mujoco.mj_contactForce(model, data, c, wrench)
        # the contact frame's rows are its axes in world; the force acts on geom2 along +normal
        total[side] += sign * (contact.frame.reshape(3, 3).T @ wrench[:3])
    return total


def simulated_gait(
    embodiment: Embodiment,
    qpos: np.ndarray,
    qvel: np.ndarray,
    act: np.ndarray,
    fps: float,
    name: str = "simulation",
    ctrl: np.ndarray | None = None,
) -> GaitData:
    """A simulated rollout (per-step states at ``fps``): joint angles; foot-floor contact forces that
    MuJoCo C computes for each recorded state (``mj_forward``) as vertical and fore-aft GRF (fore-aft
    along the root's horizontal travel); events from the vertical force (20 N, as the force
    plates); EMG channels as the mean activation of their right-leg muscles."""
    qpos, time = _frames(embodiment, qpos, fps)
    model = embodiment.mj_model
    arrays = {"qvel": (qvel, model.nv), "act": (act, model.na)} | ({} if ctrl is None else {"ctrl": (ctrl, model.nu)})
    for label, (array, width) in arrays.items():
        if np.shape(array) != (len(time), width):
            raise GaitDataError(f"{label} must be ({len(time)}, {width}), got {np.shape(array)}")
    data = mujoco.MjData(model)
    feet = _foot_geoms(model)
    floor_body = int(model.geom_bodyid[_floor(model)])
    force = {side: np.empty((len(time), 3)) for side in SIDES}
    for i in range(len(time)):
        data.qpos[:], data.qvel[:], data.act[:] = qpos[i], qvel[i], act[i]
        data.ctrl[:] = 0.0 if ctrl is None else ctrl[i]
        mujoco.mj_forward(model, data)
        for side, f in _contact_forces(model, data, feet, floor_body).items():
            force[side][i] = f
    adr = (
        int(model.jnt_qposadr[mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_JOINT, embodiment.free_joint)])
        if embodiment.free_joint
        else None
    )
    notes = []
    direction = np.array([1.0, 0.0])
    travel = qpos[-1, adr : adr + 2] - qpos[0, adr : adr + 2] if adr is not None else np.zeros(2)
    if np.linalg.norm(travel) > 1e-6:
        direction = travel / np.linalg.norm(travel)
    else:
        notes.append("the root did not travel; fore-aft GRF taken along +x")
    grf = {side: np.stack([f[:, 2], f[:, :2] @ direction], axis=1) for side, f in force.items()}
    events = {side: detect_gait_events(time, grf[side][:, 0]) for side in SIDES}
    names = embodiment.muscle_names
    emg = {}
    act = np.asarray(act, dtype=np.float64)
    for channel in EMG_TO_MUSCLES:
        columns = [names.index(m) for m in emg_muscles(channel, "r") if m in names]
        if columns:
            emg[channel] = act[:, columns].mean(axis=1)
    return GaitData(
        name,
        "simulation",
        time,
        _joint_angles(embodiment, qpos),
        grf,
        emg,
        events,
        float(model.body_subtreemass[0]),
        notes,
    )


# ---------------------------------------------------------------------- comparison


@dataclass
class GaitComparison:
    """Simulated (or replayed) against experimental gait cycles of one foot (``side``).

    ``angles`` (rad), ``grf`` (body weights; "vertical", "fore_aft") and ``emg`` (per channel:
    activation against EMG) map names to :class:`CurveComparison`; ``sim_strides`` /
    ``exp_strides`` count the strides averaged; ``notes`` lists what was skipped and why.
    """

    side: str
    sim_strides: int
    exp_strides: int
    angles: dict[str, CurveComparison]
    grf: dict[str, CurveComparison]
    emg: dict[str, CurveComparison]
    notes: list[str]

    def summary(self) -> dict:
        """JSON-ready numbers: r and RMSE per item and the mean r per group."""

        def group(items: dict[str, CurveComparison]) -> dict:
            rows = {
                k: {"r": c.pearson_r, "rmse": c.rmse, "mean_stride_r": c.mean_stride_pearson_r}
                for k, c in items.items()
            }
            mean = float(np.mean([c.pearson_r for c in items.values()])) if items else None
            return {"items": rows, "mean_r": mean}

        return {
            "side": self.side,
            "sim_strides": self.sim_strides,
            "exp_strides": self.exp_strides,
            "angles_rad": group(self.angles),
            "grf_body_weight": group(self.grf),
            "activation_vs_emg": group(self.emg),
            "notes": list(self.notes),
        }


def _cycles(data: GaitData, windows: list[tuple[float, float]], values: np.ndarray, n_points: int) -> np.ndarray:
    return normalize_strides(data.time, values, windows, n_points)


def compare_gait(
    sim: GaitData, experiments: GaitData | Sequence[GaitData], side: str = "r", n_points: int = 101
) -> GaitComparison:
    """Stride-normalised comparison of ``sim`` with the strides of all ``experiments`` on ``side``:
    every joint angle, GRF component (normalised by each body weight) and EMG channel present in
    both. A trial without a complete stride raises :class:`GaitDataError`."""
    if side not in SIDES:
        raise GaitDataError(f"side must be 'r' or 'l', got {side!r}")
    exps = [experiments] if isinstance(experiments, GaitData) else list(experiments)
    if not exps:
        raise GaitDataError("no experimental trial to compare with")
    sim_windows = sim.stride_windows(side)
    exp_windows = [e.stride_windows(side) for e in exps]
    notes: list[str] = []
    constant: list[str] = []

    def compare(get, names: Sequence[str], group: str) -> dict[str, CurveComparison]:
        out = {}
        for key in names:
            try:
                sim_c = _cycles(sim, sim_windows, get(sim, key), n_points)
                exp_c = np.concatenate([_cycles(e, w, get(e, key), n_points) for e, w in zip(exps, exp_windows)])
                if np.ptp(sim_c.mean(axis=0)) == 0 or np.ptp(exp_c.mean(axis=0)) == 0:
                    constant.append(f"{group} {key}")
                    continue
                out[key] = compare_curves(sim_c, exp_c)
            except ValueError as exc:
                notes.append(f"{group} {key}: skipped ({exc})")
        return out

    angle_names = [j for j in sim.angles if all(j in e.angles for e in exps)]
    angles = compare(lambda d, k: d.angles[k], angle_names, "angle")

    grf: dict[str, CurveComparison] = {}
    if side in sim.grf and all(side in e.grf for e in exps):
        masses = [d.body_mass for d in (sim, *exps)]
        if any(m is None for m in masses):
            notes.append("GRF: skipped (a body mass is unknown)")
        else:
            grf = compare(
                lambda d, k: grf_body_weight(d.grf[side][:, GRF_COMPONENTS.index(k)], d.body_mass),
                GRF_COMPONENTS,
                "GRF",
            )
    else:
        notes.append(f"GRF: skipped ({sim.name if side not in sim.grf else 'an experiment'} has no forces)")

    channels = [c for c in sim.emg if all(c in e.emg for e in exps)]
    if not channels:
        notes.append("EMG: skipped (no channel in both)")
    emg = compare(lambda d, k: d.emg[k], channels, "EMG")
    if constant:
        notes.append(
            f"constant over the cycle in the simulation or the experiment, so without r: {', '.join(constant)}"
        )
    return GaitComparison(side, len(sim_windows), sum(len(w) for w in exp_windows), angles, grf, emg, notes)
