"""Inverse kinematics onto the body, frame by frame, with MuJoCo C Jacobians.

Each frame solves a damped Gauss-Newton (Levenberg-Marquardt) least-squares problem in the
body's reduced coordinates (`Coupling`: free root + independent joints, driven joints computed
from the constraint polynomials):

    min_z  sum_k w_k^2 |p_k(z) - p*_k|^2 + sum_s v_s^2 |log(R_s(z) R*_s^T)|^2
           + w_anchor^2 |z - z_anchor|^2 + w_rest^2 |joints - rest|^2
           [+ w_floor^2 sum_f min(0, z_f - r_f - floor)^2]

with analytic Jacobians (`mj_jacBody` at the keypoint bodies, chained through the coupling
polynomials' derivatives), joint bounds as hard box constraints (a projected step with the
clipped coordinates held at their bound), a trust region on each step, and a warm start from
the previous frame's solution extrapolated at constant velocity (the anchor is the previous
frame: temporal smoothness). `refine` re-solves a frame with the floor term, or with some
coordinates held. The solve runs on a kinematics-only copy of the body (`kinematic_model`):
without its 2000 sites and 400 geoms `mj_kinematics` + `mj_comPos` cost 6 us instead of 35 us.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import mujoco
import numpy as np
from scipy.linalg.lapack import dposv

from mmimic.coupling import Coupling
from mmimic.motion.kinematics import kinematic_spec


@dataclass(frozen=True)
class IKSettings:
    """Weights (position residuals in m, rotations in rad) and solver limits: a step moves no
    coordinate by more than `max_step` (m or rad); a frame stops when its step is below
    `tolerance` or lowers the objective by less than `relative_decrease` of it."""

    orientation_weight: float = 0.1
    smooth_weight: float = 0.02
    rest_weight: float = 0.005
    damping: float = 1e-6
    max_step: float = 0.1
    tolerance: float = 1e-4
    relative_decrease: float = 1e-5
    max_iterations: int = 12
    first_frame_iterations: int = 200
    first_frame_rest_weight: float = 0.2
    floor_weight: float = 10.0
    refine_iterations: int = 12
    refine_anchor_weight: float = 0.1


def kinematic_model(model: mujoco.MjModel, points: Sequence[tuple[str, int, np.ndarray]] = ()) -> mujoco.MjModel:
    """A copy of `model`'s kinematic tree only: the same bodies, joints (types, axes, ranges,
    reference values) and joint equality constraints, in the same order, with unit masses and
    no geoms, sites, tendons or actuators. Its body poses equal the full model's for any qpos.
    `points` (name, body id, position in the body) add joint-less child bodies whose origins
    are those points (markers for `FrameSolver`); look bodies up by name in a model with points."""
    spec, bodies = kinematic_spec(model, inertias=False)
    for name, parent, pos in points:
        point = bodies[parent].add_body(name=name, pos=pos)
        point.explicitinertial = True
        point.mass, point.inertia = 1.0, [1e-2, 1e-2, 1e-2]
    for i in np.flatnonzero(model.eq_type == mujoco.mjtEq.mjEQ_JOINT):
        eq = spec.add_equality(
            type=mujoco.mjtEq.mjEQ_JOINT, objtype=mujoco.mjtObj.mjOBJ_JOINT, name1=model.joint(model.eq_obj1id[i]).name,
            data=model.eq_data[i], active=bool(model.eq_active0[i]),
        )
        if model.eq_obj2id[i] >= 0:
            eq.name2 = model.joint(model.eq_obj2id[i]).name
    return spec.compile()


@dataclass(frozen=True)
class FloorPoints:
    """Points that must stay above the floor: sphere centres of `radius` fixed in `bodies`
    (local coordinates `points`); a capsule gives its two end centres, a box its corners."""

    bodies: np.ndarray
    points: np.ndarray
    radius: np.ndarray


def floor_points(model: mujoco.MjModel, geoms: np.ndarray) -> FloorPoints:
    """The `FloorPoints` of sphere, capsule and box geoms (others are skipped)."""
    bodies, points, radius = [], [], []
    for g in geoms:
        rot = np.empty(9)
        mujoco.mju_quat2Mat(rot, model.geom_quat[g])
        rot, pos, size = rot.reshape(3, 3), model.geom_pos[g], model.geom_size[g]
        kind = model.geom_type[g]
        if kind == mujoco.mjtGeom.mjGEOM_SPHERE:
            local, r = [pos], size[0]
        elif kind == mujoco.mjtGeom.mjGEOM_CAPSULE:
            local, r = [pos + rot[:, 2] * size[1], pos - rot[:, 2] * size[1]], size[0]
        elif kind == mujoco.mjtGeom.mjGEOM_BOX:
            signs = np.array(np.meshgrid([-1, 1], [-1, 1], [-1, 1])).reshape(3, -1).T
            local, r = list(pos + (signs * size) @ rot.T), 0.0
        else:
            continue
        bodies += [model.geom_bodyid[g]] * len(local)
        points += local
        radius += [r] * len(local)
    return FloorPoints(np.array(bodies, dtype=np.int64), np.array(points).reshape(-1, 3), np.array(radius))


class FrameSolver:
    """Solves one frame after another; `solve` warm-starts from the frames it solved before."""

    def __init__(
        self,
        model: mujoco.MjModel,
        point_bodies: list[int],
        point_weights: np.ndarray,
        frame_bodies: list[int],
        frame_weights: np.ndarray,
        rest_qpos: np.ndarray,
        settings: IKSettings | None = None,
        floor_points: FloorPoints | None = None,
    ) -> None:
        self.model = model
        self.data = mujoco.MjData(model)
        self.coupling = Coupling(model)
        self.settings = settings = settings or IKSettings()
        self.point_bodies = [int(b) for b in point_bodies]
        self.frame_bodies = [int(b) for b in frame_bodies]
        self._jac = np.zeros((3 * (len(point_bodies) + len(frame_bodies)), model.nv))
        self._weights = np.concatenate([
            np.repeat(np.asarray(point_weights, dtype=np.float64), 3),
            np.repeat(np.asarray(frame_weights, dtype=np.float64), 3) * settings.orientation_weight,
        ])
        self.rest = self.coupling.joint_values(rest_qpos)
        size, root = self.coupling.size, self.coupling.num_root
        # the current solve's weights and the terms `_evaluate` leaves for `_linearize`
        self._rest_weight, self._anchor_weight = settings.rest_weight, settings.smooth_weight
        self._residual = np.zeros(len(self._weights))
        self._from_rest, self._from_anchor = np.zeros(size - root), np.zeros(size)
        self._floor = np.zeros(0)
        self._diag = np.diag_indices(size)
        self._joint_diag = (np.arange(root, size), np.arange(root, size))
        self.floor = floor_points
        self._floor_z: float | None = None
        self._hold = np.zeros(self.coupling.size, dtype=bool)
        self.history: list[np.ndarray] = []

    def set_point_weights(self, weights: np.ndarray) -> None:
        """New point weights (K,) for the solves that follow (0: a point without a target)."""
        self._weights[: 3 * len(self.point_bodies)] = np.repeat(np.asarray(weights, dtype=np.float64), 3)

    def residual(self, qpos: np.ndarray, points: np.ndarray, frames: np.ndarray) -> np.ndarray:
        """Unweighted residuals at `qpos`: point errors (K x 3), then rotation errors (S x 3)."""
        self._kinematics(qpos)
        return self._errors(points, frames)

    def solve(self, points: np.ndarray, frames: np.ndarray, initial: np.ndarray | None = None) -> tuple[np.ndarray, int]:
        """The pose matching keypoint targets `points` (K, 3) and body orientations `frames`
        (S, 3, 3); returns (qpos, iterations). Later frames start from the previous solutions
        extrapolated at constant velocity; the first starts from `initial`, solved first with
        a strong pull to the rest pose (`first_frame_rest_weight`) so that poorly determined
        joints (a straight arm's rotation) settle near rest rather than at a far bound."""
        s, c = self.settings, self.coupling
        if self.history:
            prev = self.history[-1]
            guess = prev if len(self.history) < 2 else c.integrate(prev, c.difference(self.history[-2], prev))
            qpos, iterations = self._minimize(guess, points, frames, prev, s.max_iterations, s.rest_weight, s.smooth_weight)
        else:
            rough, first = self._minimize(initial, points, frames, None, s.first_frame_iterations, s.first_frame_rest_weight, 0.0)
            qpos, second = self._minimize(rough, points, frames, None, s.first_frame_iterations, s.rest_weight, 0.0)
            iterations = first + second
        self.history = [*self.history[-1:], qpos]
        return qpos, iterations

    def refine(
        self,
        qpos: np.ndarray,
        anchor: np.ndarray,
        points: np.ndarray,
        frames: np.ndarray,
        floor_z: float | None = None,
        hold: np.ndarray | None = None,
        anchor_weight: float | None = None,
    ) -> np.ndarray:
        """Re-solve a frame from `qpos`, pulled towards the pose `anchor` with `anchor_weight`
        (default `refine_anchor_weight`), the reduced coordinates `hold` (a boolean mask)
        kept as they are in `qpos` and, given `floor_z`, the floor points kept at or above that
        height (a one-sided residual of weight `floor_weight`): the floor pass (the anchor is
        the frame's first solution, so the correction is the smallest that clears the floor)
        and the arm pass of OpenSim coordinate files (the anchor is the previous frame)."""
        self._floor_z = floor_z
        self._hold = np.zeros(self.coupling.size, dtype=bool) if hold is None else hold
        s = self.settings
        weight = s.refine_anchor_weight if anchor_weight is None else anchor_weight
        try:
            return self._minimize(qpos, points, frames, anchor, s.refine_iterations, s.rest_weight, weight)[0]
        finally:
            self._floor_z = None
            self._hold = np.zeros(self.coupling.size, dtype=bool)

    def _minimize(self, qpos, points, frames, anchor, limit: int, rest_weight: float, anchor_weight: float) -> tuple[np.ndarray, int]:
        """Levenberg-Marquardt from `qpos`; returns the solution and the iterations used."""
        s, c = self.settings, self.coupling
        self._rest_weight, self._anchor_weight = rest_weight, anchor_weight
        damping = s.damping
        cost = self._evaluate(qpos, points, frames, anchor)
        hessian, gradient = self._linearize(qpos, anchor)
        for iteration in range(1, limit + 1):  # noqa: B007 (returned after the loop)
            step = self._bounded_step(qpos, hessian, gradient, damping)
            largest = np.abs(step).max()
            if largest > s.max_step:  # a trust region: no leap to a far, equally good pose
                step *= s.max_step / largest
            trial = c.integrate(qpos, step)
            trial_cost = self._evaluate(trial, points, frames, anchor)
            if trial_cost <= cost:
                qpos, decrease, cost = trial, cost - trial_cost, trial_cost
                damping = max(damping / 3.0, 1e-12)
                if np.abs(step).max() < s.tolerance or decrease <= s.relative_decrease * cost:
                    break
                hessian, gradient = self._linearize(qpos, anchor)
            else:
                damping *= 10.0
                if damping > 1e6:
                    break
        return qpos, iteration

    def _kinematics(self, qpos: np.ndarray) -> None:
        self.data.qpos[:] = qpos
        mujoco.mj_kinematics(self.model, self.data)
        mujoco.mj_comPos(self.model, self.data)

    def _errors(self, points: np.ndarray, frames: np.ndarray) -> np.ndarray:
        d = self.data
        errors = np.empty(len(self._weights))
        split = 3 * len(self.point_bodies)
        errors[:split] = (d.xpos[self.point_bodies] - points).ravel()
        if len(self.frame_bodies):
            rot = d.xmat[self.frame_bodies].reshape(-1, 3, 3)
            errors[split:] = _rotation_error(rot, frames).ravel()
        return errors

    def _evaluate(self, qpos: np.ndarray, points: np.ndarray, frames: np.ndarray, anchor: np.ndarray | None) -> float:
        """The objective at `qpos` (module docstring); leaves the kinematics of `qpos` in `data`
        and the terms the linearisation reuses (weighted residuals, rest and anchor offsets)."""
        c = self.coupling
        self._kinematics(qpos)
        self._residual = self._errors(points, frames) * self._weights
        self._from_rest = c.joint_values(qpos) - self.rest
        cost = float(self._residual @ self._residual) + self._rest_weight**2 * float(self._from_rest @ self._from_rest)
        if self._floor_z is not None:
            self._floor = self._floor_residual()
            cost += float(self._floor @ self._floor)
        if anchor is not None:
            self._from_anchor = c.difference(anchor, qpos)
            cost += self._anchor_weight**2 * float(self._from_anchor @ self._from_anchor)
        return cost

    def _linearize(self, qpos: np.ndarray, anchor: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
        """Gauss-Newton Hessian and gradient (halved) of the objective at `qpos`, whose
        kinematics `_evaluate` left in `data`."""
        m, d, c, s = self.model, self.data, self.coupling, self.settings
        jac = self._jac
        for i, body in enumerate(self.point_bodies):
            mujoco.mj_jacBody(m, d, jac[3 * i : 3 * i + 3], None, body)
        base = 3 * len(self.point_bodies)
        for i, body in enumerate(self.frame_bodies):
            mujoco.mj_jacBody(m, d, None, jac[base + 3 * i : base + 3 * i + 3], body)
        velocity_map = c.velocity_map(qpos)
        jz = (jac @ velocity_map) * self._weights[:, None]
        hessian = jz.T @ jz
        gradient = jz.T @ self._residual
        if self._floor_z is not None:
            rows = np.flatnonzero(self._floor < 0)
            if rows.size:
                floor_jac = self._floor_jacobian(rows) @ velocity_map * s.floor_weight
                hessian += floor_jac.T @ floor_jac
                gradient += floor_jac.T @ self._floor[rows]
        root = c.num_root
        hessian[self._joint_diag] += self._rest_weight**2
        gradient[root:] += self._rest_weight**2 * self._from_rest
        if anchor is not None:
            hessian[self._diag] += self._anchor_weight**2
            gradient += self._anchor_weight**2 * self._from_anchor
        return hessian, gradient

    def _floor_world(self) -> np.ndarray:
        f, d = self.floor, self.data
        return d.xpos[f.bodies] + np.einsum("pij,pj->pi", d.xmat[f.bodies].reshape(-1, 3, 3), f.points)

    def _floor_residual(self) -> np.ndarray:
        """Weighted depth of each floor point below the floor (0 above it)."""
        depth = self._floor_world()[:, 2] - self.floor.radius - self._floor_z
        return np.minimum(depth, 0.0) * self.settings.floor_weight

    def _floor_jacobian(self, rows: np.ndarray) -> np.ndarray:
        """Vertical Jacobian rows (len(rows), nv) of the floor points `rows`."""
        world = self._floor_world()
        out = np.empty((len(rows), self.model.nv))
        point_jac = np.empty((3, self.model.nv))
        for i, p in enumerate(rows):
            mujoco.mj_jac(self.model, self.data, point_jac, None, world[p], int(self.floor.bodies[p]))
            out[i] = point_jac[2]
        return out

    def _bounded_step(self, qpos: np.ndarray, hessian: np.ndarray, gradient: np.ndarray, damping: float) -> np.ndarray:
        """The damped Newton step over the coordinates not held (`refine`), with joints that
        would leave their bounds held at the bound and the others re-solved."""
        c, root = self.coupling, self.coupling.num_root
        system = hessian.copy()
        system[self._diag] += damping
        held = self._hold.copy()
        step = np.zeros(c.size)
        if held.any():
            free = ~held
            step[free] = -_solve(system[np.ix_(free, free)], gradient[free])
        else:
            step = -_solve(system, gradient)
        values = c.joint_values(qpos)
        target = values + step[root:]
        clipped = (target < c.lower) | (target > c.upper)
        if clipped.any():
            step[root:] = np.where(clipped, np.clip(target, c.lower, c.upper) - values, step[root:])
            held[root:] |= clipped
            free = ~held
            rhs = -gradient[free] - system[np.ix_(free, held)] @ step[held]
            step[free] = _solve(system[np.ix_(free, free)], rhs)
        return step


def _solve(system: np.ndarray, rhs: np.ndarray) -> np.ndarray:
    """`system^-1 rhs` for a symmetric positive definite `system` (Cholesky; LU if it is not)."""
    _, solution, info = dposv(system, rhs)
    return solution if info == 0 else np.linalg.solve(system, rhs)


def _rotation_error(current: np.ndarray, target: np.ndarray) -> np.ndarray:
    """Rotation vectors (S, 3) of `current @ target^T` for rotation matrices (S, 3, 3)."""
    out = np.empty((len(current), 3))
    quat = np.empty(4)
    for i, rot in enumerate(current @ target.transpose(0, 2, 1)):
        mujoco.mju_mat2Quat(quat, rot.ravel())
        mujoco.mju_quat2Vel(out[i], quat, 1.0)
    return out
