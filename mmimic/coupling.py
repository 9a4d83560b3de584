"""Reduced coordinates of a body whose joints are coupled by joint equality constraints.

MyoFullBody couples 51 joints (knee translations and rotations, patella, the lumbar levels, the
shoulder girdle, the abdomen) and MyoBimanualArm 22 (the shoulder girdle) to a driving joint by
quartic polynomials, `q1 - q1_0 = c0 + c1 d + ... + c4 d^4` with `d = q2 - q2_0` (a constant
without a driver). `Coupling.complete` is the one place mmimic computes driven joints from their
drivers: the initial pose, the motion library's frames (hence every reset), the profiler's start
state and the test and golden poses all go through it, so the constraints hold to rounding.

For retargeting, `Coupling` also parameterises the body by its free root (6 velocity
coordinates) and the *independent* hinge and slide joints only. Each independent joint's bounds
are its own range narrowed to where every joint it drives stays inside its range; for nonlinear
(fitted) polynomials up to a slack of `SLACK` of the driven joint's range: MyoFullBody's knee
polynomials leave their driven joints' ranges by up to 0.70 % of the range inside the knee's own
range (knee_angle_rotation2 above 0.77 rad), so honouring both exactly would lock the knee.
`expand` (the IK's step) holds a driven joint at its limit where its polynomial passes it:
limits hold exactly, and the constraint is off by at most the slack (`residual` measures it);
`complete` honours the constraint exactly instead.
"""

from __future__ import annotations

import mujoco
import numpy as np

_BOUND_SAMPLES = 8001
SLACK = 0.01
"""Fraction of a driven joint's range a nonlinear polynomial may pass its limits by before the driver is bounded."""


class Coupling:
    """Reduced coordinates `z` (root velocity coordinates, then independent joints) of `model`."""

    def __init__(self, model: mujoco.MjModel) -> None:
        self.model = model
        driven_by = {
            int(model.eq_obj1id[i]): i
            for i in range(model.neq)
            if model.eq_type[i] == mujoco.mjtEq.mjEQ_JOINT and model.eq_active0[i]
        }
        types = model.jnt_type
        free = [j for j in range(model.njnt) if types[j] == mujoco.mjtJoint.mjJNT_FREE]
        if len(free) > 1 or np.any(types == mujoco.mjtJoint.mjJNT_BALL):
            raise ValueError("coupled coordinates support bodies with at most one free joint and no ball joints")
        self.root_dofs = np.arange(model.jnt_dofadr[free[0]], model.jnt_dofadr[free[0]] + 6) if free else np.arange(0)
        self.num_root = len(self.root_dofs)
        independent = [j for j in range(model.njnt) if j not in free and j not in driven_by]
        self.joint_ids = np.array(independent, dtype=np.int64)
        self.joint_qpos = model.jnt_qposadr[self.joint_ids].astype(np.int64)
        self.joint_dofs = model.jnt_dofadr[self.joint_ids].astype(np.int64)
        self.size = self.num_root + len(independent)
        column = {j: self.num_root + i for i, j in enumerate(independent)}
        joints = np.array(list(driven_by), dtype=np.int64)
        eqs = np.array(list(driven_by.values()), dtype=np.int64)
        drivers = model.eq_obj2id[eqs].astype(np.int64)
        for joint, driver in zip(joints, drivers):
            if driver >= 0 and driver not in column:
                raise ValueError(f"joint {model.joint(int(joint)).name!r} is driven by {model.joint(int(driver)).name!r}, "
                                 "which is itself driven or free; chained couplings are not supported")
        self.has_driver = drivers >= 0
        self.driven_ids = joints
        self.driven_qpos = model.jnt_qposadr[joints].astype(np.int64)
        self.driven_dofs = model.jnt_dofadr[joints].astype(np.int64)
        self.driver_column = np.array([column.get(int(d), -1) for d in drivers], dtype=np.int64)
        self.driver_qpos = np.where(self.has_driver, model.jnt_qposadr[np.maximum(drivers, 0)], 0).astype(np.int64)
        self.coef = model.eq_data[eqs, :5].copy()
        self.offset = model.qpos0[self.driven_qpos].copy()
        self.driver_offset = np.where(self.has_driver, model.qpos0[self.driver_qpos], 0.0)
        limited = model.jnt_limited[joints].astype(bool)
        self.driven_lower = np.where(limited, model.jnt_range[joints, 0], -np.inf)
        self.driven_upper = np.where(limited, model.jnt_range[joints, 1], np.inf)
        self.lower, self.upper = self._bounds()
        self._slope_coef = self.coef[:, 1:] * np.arange(1, 5)
        self._rows, self._cols = self.driven_dofs[self.has_driver], self.driver_column[self.has_driver]
        self._map = np.zeros((model.nv, self.size))
        self._map[self.root_dofs, np.arange(self.num_root)] = 1.0
        self._map[self.joint_dofs, np.arange(self.num_root, self.size)] = 1.0

    def complete(self, qpos: np.ndarray) -> np.ndarray:
        """Set every driven joint of `qpos` (nq,) or (T, nq) from its driver exactly, in place;
        returns `qpos`. A driven joint may end up past its range by at most `SLACK` of it
        (module docstring) when its driver is inside the driver's bounds."""
        qpos[..., self.driven_qpos] = self._polynomial(qpos)
        return qpos

    def expand(self, qpos: np.ndarray) -> None:
        """Set every driven joint of `qpos` (nq,) or (T, nq) from its driver, held inside its
        range, in place (the IK's step: limits exact, constraints up to the slack)."""
        qpos[..., self.driven_qpos] = np.clip(self._polynomial(qpos), self.driven_lower, self.driven_upper)

    def residual(self, qpos: np.ndarray) -> float:
        """The largest |q1 - polynomial(q2)| over the constraints and frames of `qpos` (..., nq)."""
        return float(np.abs(qpos[..., self.driven_qpos] - self._polynomial(qpos)).max(initial=0.0))

    def velocity_map(self, qpos: np.ndarray) -> np.ndarray:
        """(nv, size) matrix taking reduced velocities to joint velocities at `qpos` (a view
        that the next call overwrites)."""
        self._map[self._rows, self._cols] = _horner(self._slope_coef, self._delta(qpos))[self.has_driver]
        return self._map

    def joint_values(self, qpos: np.ndarray) -> np.ndarray:
        """The independent joints' values in `qpos` (..., nq)."""
        return qpos[..., self.joint_qpos]

    def integrate(self, qpos: np.ndarray, dz: np.ndarray) -> np.ndarray:
        """`qpos` moved by the reduced step `dz`, joints clipped to their bounds, driven joints set."""
        out = qpos.copy()
        if self.num_root:
            vel = np.zeros(self.model.nv)
            vel[self.root_dofs] = dz[: self.num_root]
            mujoco.mj_integratePos(self.model, out, vel, 1.0)
        out[self.joint_qpos] = np.clip(qpos[self.joint_qpos] + dz[self.num_root :], self.lower, self.upper)
        self.expand(out)
        return out

    def difference(self, qpos_from: np.ndarray, qpos_to: np.ndarray) -> np.ndarray:
        """Reduced coordinates of the step from `qpos_from` to `qpos_to`."""
        vel = np.zeros(self.model.nv)
        mujoco.mj_differentiatePos(self.model, vel, 1.0, qpos_from, qpos_to)
        return np.concatenate([vel[self.root_dofs], vel[self.joint_dofs]])

    def _delta(self, qpos: np.ndarray) -> np.ndarray:
        return np.where(self.has_driver, qpos[..., self.driver_qpos] - self.driver_offset, 0.0)

    def _polynomial(self, qpos: np.ndarray) -> np.ndarray:
        return self.offset + _horner(self.coef, self._delta(qpos))

    def _bounds(self) -> tuple[np.ndarray, np.ndarray]:
        """Each independent joint's range narrowed to where all the joints it drives stay in
        range (module docstring): the feasible interval, on a fine grid, holding its rest value."""
        m = self.model
        lower = np.where(m.jnt_limited[self.joint_ids], m.jnt_range[self.joint_ids, 0], -np.inf)
        upper = np.where(m.jnt_limited[self.joint_ids], m.jnt_range[self.joint_ids, 1], np.inf)
        for i, joint in enumerate(self.joint_ids):
            children = np.flatnonzero((self.driver_column == self.num_root + i) & np.isfinite(self.driven_lower))
            if not children.size:
                continue
            low, high = (lower[i], upper[i]) if m.jnt_limited[joint] else (-np.pi, np.pi)
            grid = np.linspace(low, high, _BOUND_SAMPLES)
            feasible = np.ones_like(grid, dtype=bool)
            for d in children:
                values = self.offset[d] + _horner(self.coef[d], grid - self.driver_offset[d])
                width = self.driven_upper[d] - self.driven_lower[d]
                slack = SLACK * width if np.any(self.coef[d, 2:]) else 0.0
                feasible &= (values >= self.driven_lower[d] - slack) & (values <= self.driven_upper[d] + slack)
            if not feasible.any():
                raise ValueError(f"joint {m.joint(int(joint)).name!r}: no value keeps the joints it drives in range")
            candidates = np.flatnonzero(feasible)
            rest = int(np.argmin(np.abs(grid - np.clip(m.qpos0[self.joint_qpos[i]], low, high))))
            rest = int(candidates[np.argmin(np.abs(candidates - rest))])
            first, last = rest, rest
            while first > 0 and feasible[first - 1]:
                first -= 1
            while last < len(grid) - 1 and feasible[last + 1]:
                last += 1
            lower[i], upper[i] = grid[first], grid[last]
        return lower, upper


def _horner(coef: np.ndarray, x: np.ndarray) -> np.ndarray:
    """Polynomials with coefficients `coef` (..., n), lowest power first, at `x` (broadcast)."""
    powers = np.asarray(x)[..., None] ** np.arange(coef.shape[-1])
    return np.sum(coef * powers, axis=-1)
