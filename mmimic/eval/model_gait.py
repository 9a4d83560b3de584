"""The model side of the gait comparison: walking of the body as :class:`mmimic.eval.gait.GaitData`.

* :func:`replay_gait`: a clip replayed kinematically in the body with MuJoCo C (no dynamics,
  so no forces; events from the feet's height, see below);
* :func:`simulated_gait`: a simulated rollout; forces are the foot-floor contact forces that
  MuJoCo C computes for the recorded states, events come from their vertical component.

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

import mujoco
import numpy as np

from mmimic.embodiment import Embodiment
from mmimic.eval.gait import (
    EMG_TO_MUSCLES,
    SIDES,
    GaitData,
    GaitDataError,
    GaitEvents,
    crossing_times,
    detect_gait_events,
)
from mmimic.io.opensim import COORDINATE_TO_JOINT

__all__ = ["FOOT_BODIES", "HEEL_CONTACT_HEIGHT", "TOE_CONTACT_HEIGHT", "replay_gait", "simulated_gait"]

FOOT_BODIES = {"r": ("calcn_r", "toes_r"), "l": ("calcn_l", "toes_l")}
"""Heel and toe body of each foot in MyoFullBody."""
HEEL_CONTACT_HEIGHT = 0.025
"""m: a replayed heel closer to the floor is in contact (MyoFullBody's heel geometry, module docstring)."""
TOE_CONTACT_HEIGHT = 0.01
"""m: replayed toes rising above this height after a heel strike leave the floor."""


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
        toes = heights[(side, "toe")]
        low = toes < TOE_CONTACT_HEIGHT
        rises = crossing_times(time, toes, TOE_CONTACT_HEIGHT, np.flatnonzero(low[:-1] & ~low[1:]) + 1)
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
    for channel, muscles in EMG_TO_MUSCLES.items():
        columns = [names.index(m) for m in muscles if m in names]
        if columns:
            emg[channel] = act[:, columns].mean(axis=1)
    mass = float(model.body_subtreemass[0])
    return GaitData(name, "simulation", time, _joint_angles(embodiment, qpos), grf, emg, events, mass, notes)
