"""From a source motion to a checked full-body clip: targets, IK, ground pass, velocities, quality.

    retargeter = Retargeter(load_embodiment("fullbody"))
    result = retargeter.run(read_amp("walk.npz"))   # RetargetResult: clip, metrics, failures
    arms = derive(result, load_embodiment("bimanual"))

The IK runs at the output rate (100 Hz, the control rate) on targets resampled from the
source, so every output frame is an IK solution that honours the limits and couplings.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import mujoco
import numpy as np

from mmimic.coupling import Coupling
from mmimic.embodiment import Embodiment
from mmimic.motion import MotionClip, column_names, derive_clip, fit_clip
from mmimic.motion.floor import collision_geoms, ground, lowest_points
from mmimic.motion.kinematics import posed
from mmimic.motion.resample import differentiate, output_frames
from mmimic.retarget.ik import FrameSolver, IKSettings, floor_points, kinematic_model
from mmimic.retarget.keypoints import FULLBODY_LANDMARKS, FULLBODY_POINTS, FULLBODY_SEGMENTS, MID_HIP, SIDES, midpoint
from mmimic.retarget.marker_ik import MarkerMotion, solve_markers
from mmimic.retarget.opensim import CoordinateMotion, read_coordinates
from mmimic.retarget.quality import Thresholds, clip_quality
from mmimic.retarget.source import RetargetError, SourceMotion
from mmimic.retarget.targets import Targets, body_geometry, body_targets

OUTPUT_FPS = 100.0
FLOOR_TOLERANCE = 0.003
"""How far (m) a foot may dip below the rear feet's floor before its frame is re-solved; the
final ground pass lifts the rest. MyoFullBody's toes reach 2 mm below its heels in the rest pose."""
_MULTI_DOF = (mujoco.mjtJoint.mjJNT_FREE, mujoco.mjtJoint.mjJNT_BALL)
HAND_WEIGHT = 0.5
"""IK weight of the knuckle keypoints (others 1): they orient the hand, whose wrist joints are
the least certain part of any source."""


@dataclass
class RetargetResult:
    """A retargeted clip with its metrics (`quality` docstring) and the thresholds it fails."""

    clip: MotionClip
    metrics: dict[str, float]
    failures: list[str]
    details: dict[str, object] = field(default_factory=dict)

    @property
    def passed(self) -> bool:
        return not self.failures


class Retargeter:
    """Retargets source motions onto a full body (free root; MyoFullBody's keypoint bodies)."""

    def __init__(
        self,
        embodiment: Embodiment,
        settings: IKSettings | None = None,
        thresholds: Thresholds | None = None,
        fps: float = OUTPUT_FPS,
        quantum: float | None = None,
    ) -> None:
        """`quantum` (rad or m): round the stored qpos to multiples of it (smaller files once
        deflated; the metrics are those of the rounded clip); None stores float32 as solved."""
        if not embodiment.has_free_root:
            raise RetargetError(embodiment.directory, f"embodiment {embodiment.name!r} has no free root; "
                                "retarget onto the full body and derive the clip (derive)")
        model = embodiment.mj_model
        missing = sorted({*FULLBODY_POINTS.values(), *FULLBODY_SEGMENTS.values(), *FULLBODY_LANDMARKS.values()}
                         - {model.body(b).name for b in range(model.nbody)})
        if missing:
            raise RetargetError(embodiment.directory, f"the body lacks the keypoint bodies {', '.join(missing)}")
        self.embodiment = embodiment
        self.settings = settings or IKSettings()
        self.thresholds = thresholds or Thresholds()
        self.fps = fps
        if quantum is not None and not quantum > 0:
            raise ValueError(f"quantum must be positive or None, got {quantum}")
        self.quantum = quantum
        self.ik_model = kinematic_model(model)
        self.rest = embodiment.initial_qpos()
        self.points = {k: model.body(b).id for k, b in FULLBODY_POINTS.items()}
        self.segments = {s: model.body(b).id for s, b in FULLBODY_SEGMENTS.items()}
        landmarks = {k: model.body(b).id for k, b in FULLBODY_LANDMARKS.items()}
        self.geometry = body_geometry(self.ik_model, self.rest, self.points, self.segments, landmarks)
        self.coupling = Coupling(self.ik_model)
        self.height_column = int(model.jnt_qposadr[model.joint(embodiment.free_joint).id]) + 2
        rear_feet = [self.segments[f"foot_{s}"] for s in SIDES]
        feet = rear_feet + [self.points[f"toe_{s}"] for s in SIDES]
        self.rear_foot_geoms = np.array([g for g in collision_geoms(model) if model.geom_bodyid[g] in rear_feet])
        self.foot_geoms = np.array([g for g in collision_geoms(model) if model.geom_bodyid[g] in feet])
        self.floor_points = floor_points(model, self.foot_geoms)

    def read_coordinates(self, path: str | Path, *, angles: str | None = None, model: str | None = None) -> CoordinateMotion:
        """An OpenSim coordinate file on the body at the output rate (`opensim` module); `angles`
        and `model` settle the angle units and the model's conventions where the file does not."""
        return read_coordinates(path, self.embodiment, self.ik_model, self.fps, self.settings, angles=angles, model=model)

    def output_frames(self, motion: SourceMotion | CoordinateMotion | MarkerMotion) -> int:
        """How many frames the clip of `motion` will have."""
        if isinstance(motion, CoordinateMotion):
            return len(motion.qpos)
        return output_frames(motion.num_frames, motion.fps, self.fps)

    def run(
        self,
        motion: SourceMotion | CoordinateMotion | MarkerMotion,
        progress: Callable[[int], None] | None = None,
        read_seconds: float = 0.0,
    ) -> RetargetResult:
        """Retarget a source read by a reader (or `read_coordinates`, or markers prepared by
        `marker_ik.prepare_markers`); `progress(n)` is called
        as frames are solved; `read_seconds`, the time reading took, counts in the fps."""
        start = time.perf_counter() - read_seconds
        if isinstance(motion, CoordinateMotion):
            if progress is not None:
                progress(len(motion.qpos))
            details = {"reader": "opensim coordinates", "source_frames": motion.source_frames, "source_fps": motion.source_fps}
            return self._finish(motion.qpos, start, motion.path, "opensim coordinates", motion.notes, details, {})
        if isinstance(motion, MarkerMotion):
            qpos, details, metrics = solve_markers(motion, self.embodiment.mj_model, self.rest, self.fps, self.settings, progress)
            return self._finish(qpos, start, motion.path, motion.reader, motion.notes, details, metrics)
        source = motion
        targets = body_targets(source, self.geometry, self.fps)
        names, segments = list(targets.positions), list(targets.frames)
        points = np.stack([targets.positions[k] for k in names], axis=1)
        frames = np.stack([targets.frames[s] for s in segments], axis=1) if segments else np.zeros((targets.num_frames, 0, 3, 3))
        solver = FrameSolver(
            self.ik_model,
            [self.points[k] for k in names],
            np.array([HAND_WEIGHT if k.startswith("hand") else 1.0 for k in names]),
            [self.segments[s] for s in segments],
            np.ones(len(segments)),
            self.rest,
            self.settings,
            self.floor_points,
        )
        initial = self._initial_pose(targets)
        qpos = np.empty((targets.num_frames, self.ik_model.nq))
        iterations = 0
        for t in range(targets.num_frames):
            qpos[t], used = solver.solve(points[t], frames[t], initial)
            iterations += used
            if progress is not None and (t % 50 == 49 or t == targets.num_frames - 1):
                progress(t % 50 + 1)
        refined = self._floor_pass(solver, qpos, points, frames)
        errors = np.stack([
            np.linalg.norm(solver.residual(q, p, f)[: 3 * len(names)].reshape(-1, 3), axis=1)
            for q, p, f in zip(qpos, points, frames)
        ])
        details = {
            "reader": source.reader,
            "source_frames": source.num_frames,
            "source_fps": source.fps,
            "ik_iterations_per_frame": iterations / targets.num_frames,
            "floor_refined_frames": refined,
            "keypoint_rmse_per_keypoint_m": {k: float(np.sqrt(np.mean(errors[:, i] ** 2))) for i, k in enumerate(names)},
            "proportion_rmse_m": targets.proportion_rmse,
            "root_scale": targets.scale,
        }
        return self._finish(qpos, start, source.path, source.reader, source.notes, details,
                            {"keypoint_rmse_m": float(np.sqrt(np.mean(errors**2)))})

    def _floor_pass(self, solver: FrameSolver, qpos: np.ndarray, points: np.ndarray, frames: np.ndarray) -> int:
        """Re-solve, in place, the frames whose feet would go through the floor found under the
        rear feet (`ground` on the calcn geoms), keeping every foot point above it
        (`FrameSolver.refine`, the smallest change of the frame's solution that clears the
        floor: the toes bend up at the MTP joint, the ankle and knee give a little): a source
        foot pitched over its toes does that where the body's toes are longer. Returns the
        number of frames re-solved."""
        model = self.embodiment.mj_model
        grounded = qpos.copy()
        ground(model, grounded, self.height_column, self.fps, self.rear_foot_geoms)
        depth = -lowest_points(model, grounded, self.foot_geoms)
        bad = depth > FLOOR_TOLERANCE
        floor = qpos[:, self.height_column] - grounded[:, self.height_column]
        coupling, change = solver.coupling, None
        root = np.arange(coupling.size) < coupling.num_root  # the limbs move, not the whole body
        for t in np.flatnonzero(bad):
            # start from the change the previous frame needed, if it needed one
            start = qpos[t] if change is None or not bad[t - 1] else coupling.integrate(qpos[t], change)
            refined = solver.refine(start, qpos[t], points[t], frames[t], float(floor[t]), root)
            change = coupling.difference(qpos[t], refined)
            qpos[t] = refined
        return int(bad.sum())

    def _finish(
        self,
        qpos: np.ndarray,
        start: float,
        path: Path,
        reader: str,
        notes: list[str],
        details: dict[str, object],
        metrics: dict[str, float],
    ) -> RetargetResult:
        """Ground pass, float32 storage (on the `quantum` grid), velocities, then the quality
        metrics of the stored clip."""
        model = self.embodiment.mj_model
        floor = ground(model, qpos, self.height_column, self.fps)
        stored = (qpos if self.quantum is None else np.round(qpos / self.quantum) * self.quantum).astype(np.float32)
        qvel = differentiate(model, stored.astype(np.float64), self.fps)
        elapsed = time.perf_counter() - start
        metrics = clip_quality(model, self.rest, stored.astype(np.float64), floor=True) | metrics
        metrics["fps"] = len(stored) / elapsed
        clip = MotionClip(
            fps=self.fps,
            qpos=stored,
            joint_names=column_names(model),
            embodiment=self.embodiment.name,
            qvel=qvel.astype(np.float32),
            source=f"{path.name} ({reader}), retargeted to {self.embodiment.name} by mmimic.retarget",
        )
        details |= {
            "frames": len(stored),
            "seconds": elapsed,
            "equality_residual_max": self.coupling.residual(stored.astype(np.float64)),
            "ground_correction_m": [floor.lowest_correction, floor.highest_correction],
            "notes": list(notes),
        }
        return RetargetResult(clip, metrics, self.thresholds.failures(metrics), details)

    def _initial_pose(self, targets: Targets) -> np.ndarray:
        """The rest pose turned like the first frame's pelvis target (or facing along its hips)
        with its mid-hip point on the first frame's."""
        data = posed(self.ik_model, self.rest)
        pelvis = data.xmat[self.segments["pelvis"]].reshape(3, 3)
        if "pelvis" in targets.frames:
            turn = targets.frames["pelvis"][0] @ pelvis.T
        else:
            left = targets.positions["hip_l"][0] - targets.positions["hip_r"][0]
            angle = np.arctan2(left[1], left[0])
            turn = np.array([[np.cos(angle), -np.sin(angle), 0.0], [np.sin(angle), np.cos(angle), 0.0], [0.0, 0.0, 1.0]])
        rest_mid = midpoint({k: data.xpos[b] for k, b in self.points.items()}, MID_HIP)
        target_mid = midpoint({k: v[0] for k, v in targets.positions.items()}, MID_HIP)
        qpos = self.rest.copy()
        root = data.xpos[self.embodiment.root_body_id]
        qpos[self.height_column - 2 : self.height_column + 1] = target_mid + turn @ (root - rest_mid)
        quat = np.empty(4)
        mujoco.mju_mat2Quat(quat, (turn @ data.xmat[self.embodiment.root_body_id].reshape(3, 3)).ravel())
        qpos[self.height_column + 1 : self.height_column + 5] = quat
        return qpos


def derive(result: RetargetResult, embodiment: Embodiment, thresholds: Thresholds | None = None) -> RetargetResult:
    """The clip of `embodiment` (e.g. the bimanual arms) taken by joint name from a full-body
    result, with velocities by MuJoCo position differencing on `embodiment` (its finger
    joints, absent from the clip, at rest) and its own joint-limit and tendon metrics."""
    clip = result.clip
    without_qvel = MotionClip(clip.fps, clip.qpos, clip.joint_names, clip.embodiment, None, clip.source, clip.license)
    derived = derive_clip(without_qvel, embodiment)
    fitted = fit_clip(derived, embodiment, clip.source)
    model = embodiment.mj_model
    qvel = differentiate(model, fitted.qpos, fitted.fps)
    columns = [model.jnt_dofadr[model.joint(name).id] for name in derived.joint_names]
    if any(model.jnt_type[model.joint(name).id] in _MULTI_DOF for name in derived.joint_names):
        raise RetargetError(embodiment.directory, "derive takes hinge and slide joints only")
    derived.qvel = qvel[:, columns].astype(np.float32)
    metrics = clip_quality(model, embodiment.initial_qpos(), fitted.qpos, floor=embodiment.has_free_root)
    failures = (thresholds or Thresholds()).failures(metrics)
    return RetargetResult(derived, metrics, failures, {"frames": derived.num_frames})


