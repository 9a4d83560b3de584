"""The motion clip format: one `.npz` per clip, read, written (atomically) and fitted to a body.

Fields (SI units, z up, MuJoCo quaternions w, x, y, z):

| field | type | |
|---|---|---|
| `fps` | float scalar | frames per second, > 0 |
| `qpos` | (T, n) float32 | T >= 2 frames |
| `joint_names` | (n,) str | the joint owning each qpos column: a free joint's 7 columns all carry its name, a ball joint's 4 |
| `embodiment` | str | the embodiment's name (`fullbody`, `bimanual`, ...) |
| `qvel` | (T, m) float32, optional | the same joints in the same order, 6 columns per free joint, 3 per ball joint, 1 otherwise; finite differences of qpos when absent |
| `source`, `license` | str, optional | free text |

Columns map onto a body by joint name, so clips survive model edits: joints the body lacks
are dropped, and the body's finger joints (its toml's `fingers.joints`) missing from a clip
are filled with the rest pose `qpos0`. Any other missing joint refuses the clip.
"""

from __future__ import annotations

import zipfile
from dataclasses import dataclass
from pathlib import Path

import mujoco
import numpy as np

from mmimic.embodiment import Embodiment
from mmimic.io.atomic import atomic_write

QUAT_TOLERANCE = 1e-3
"""A stored quaternion whose norm differs from 1 by more than this refuses the clip; within it
the quaternion is normalised (bit-exact unit quaternions, |norm - 1| <= 1e-6, are kept as stored)."""
_EXACT_UNIT = 1e-6
FPS_RANGE = (1.0, 1000.0)
"""Frame rates a clip may have: motion capture records at 30-480 Hz; a rate outside this range is a
wrong unit or field (a time step given as the rate, a rate in frames per millisecond)."""
MAX_DURATION = 3600.0
"""The longest clip in seconds: resampled to the control rate an hour is 360 000 frames per clip."""
ROOT_HEIGHT_RANGE = (-0.5, 3.0)
"""Heights (m, world z, floor at 0) a clip's free root may reach. MyoFullBody's root (the pelvis)
stands ~0.9 m up and lies ~0.1 m up; the highest jumps lift a pelvis to ~2.5 m (high-jump bar
record 2.45 m). Beyond is a unit or frame error (angles in degrees read as radians put it 207 m
up) or a body under the floor."""
ROOT_SPEED_LIMIT = 15.0
"""The fastest (m/s, frame to frame) a clip's free root may move: sprinters peak near 12.4 m/s
and a fall from 3 m lands at 7.7 m/s; faster is a unit error or a jump in the data."""
_WIDTH = {int(mujoco.mjtJoint.mjJNT_FREE): (7, 6), int(mujoco.mjtJoint.mjJNT_BALL): (4, 3)}
_DOF_WIDTH = {7: 6, 4: 3, 1: 1}


class MotionError(ValueError):
    """A clip, manifest or motion directory that cannot be used; names the path and every reason."""

    def __init__(self, path: str | Path, problems: str | list[str]) -> None:
        self.path = Path(path)
        self.problems = [problems] if isinstance(problems, str) else list(problems)
        super().__init__(f"{path}: " + "; ".join(self.problems))


@dataclass
class MotionClip:
    """One clip as stored: `qpos` columns named by `joint_names` (see the module docstring)."""

    fps: float
    qpos: np.ndarray
    joint_names: tuple[str, ...]
    embodiment: str
    qvel: np.ndarray | None = None
    source: str = ""
    license: str = ""

    @property
    def num_frames(self) -> int:
        return int(self.qpos.shape[0])

    @property
    def duration(self) -> float:
        return (self.num_frames - 1) / self.fps


@dataclass(frozen=True)
class JointColumns:
    """Where one joint lives in qpos and qvel, and whether its qpos starts with a quaternion."""

    name: str
    qpos: slice
    qvel: slice
    quat_offset: int | None  # qpos column of the quaternion inside `qpos`, None for scalar joints


@dataclass
class FittedClip:
    """A clip in a body's column order: qpos (T, nq) and optional qvel (T, nv), float64."""

    fps: float
    qpos: np.ndarray
    qvel: np.ndarray | None
    filled: tuple[str, ...]
    dropped: tuple[str, ...]


def model_joints(model: mujoco.MjModel) -> list[JointColumns]:
    """Every joint of a model with its qpos/qvel columns, in model order."""
    joints = []
    types, qadrs, vadrs = model.jnt_type.tolist(), model.jnt_qposadr.tolist(), model.jnt_dofadr.tolist()
    for j, (kind, qadr, vadr) in enumerate(zip(types, qadrs, vadrs)):
        width, dofs = _WIDTH.get(kind, (1, 1))
        name = mujoco.mj_id2name(model, mujoco.mjtObj.mjOBJ_JOINT, j)
        joints.append(JointColumns(name, slice(qadr, qadr + width), slice(vadr, vadr + dofs), {7: 3, 4: 0}.get(width)))
    return joints


def column_names(model: mujoco.MjModel) -> tuple[str, ...]:
    """The `joint_names` of a clip holding a model's full qpos."""
    names = [""] * model.nq
    for joint in model_joints(model):
        names[joint.qpos] = [joint.name] * (joint.qpos.stop - joint.qpos.start)
    return tuple(names)


def quaternion_columns(model: mujoco.MjModel) -> list[int]:
    """The first qpos column of every quaternion (free and ball joints)."""
    return [j.qpos.start + j.quat_offset for j in model_joints(model) if j.quat_offset is not None]


def select_joints(clip: MotionClip, names: set[str] | frozenset[str] | tuple[str, ...]) -> MotionClip:
    """The clip with only the joints in `names` (qpos and, when stored, qvel columns)."""
    groups = _column_groups(clip.joint_names)
    kept = [name for name in groups if name in names]
    qpos_cols = np.concatenate([np.arange(groups[n].start, groups[n].stop) for n in kept]).astype(int) if kept else []
    qvel = None
    if clip.qvel is not None and kept:
        vel = _velocity_groups(groups)
        qvel = clip.qvel[:, np.concatenate([np.arange(vel[n].start, vel[n].stop) for n in kept])]
    return MotionClip(
        fps=clip.fps,
        qpos=clip.qpos[:, qpos_cols],
        joint_names=tuple(clip.joint_names[i] for i in qpos_cols),
        embodiment=clip.embodiment,
        qvel=qvel,
        source=clip.source,
        license=clip.license,
    )


def write_clip(path: str | Path, clip: MotionClip, compressed: bool = False) -> None:
    """Write `clip` to `path` atomically (a temporary file beside it, then a rename);
    `compressed` deflates the archive (`np.savez_compressed`, read the same way)."""
    path = Path(path)
    problems = _structure_problems(clip)
    if problems:
        raise MotionError(path, problems)
    fields: dict[str, np.ndarray] = {
        "fps": np.asarray(float(clip.fps), dtype=np.float64),
        "qpos": np.ascontiguousarray(clip.qpos, dtype=np.float32),
        "joint_names": np.asarray(clip.joint_names, dtype=np.str_),
        "embodiment": np.asarray(clip.embodiment, dtype=np.str_),
        "source": np.asarray(clip.source, dtype=np.str_),
        "license": np.asarray(clip.license, dtype=np.str_),
    }
    if clip.qvel is not None:
        fields["qvel"] = np.ascontiguousarray(clip.qvel, dtype=np.float32)
    with atomic_write(path) as f:
        (np.savez_compressed if compressed else np.savez)(f, **fields)


def read_clip(path: str | Path) -> MotionClip:
    """Read a clip file; `MotionError` naming the file and every malformed or missing field."""
    path = Path(path)
    try:
        archive = np.load(path, allow_pickle=False)
    except FileNotFoundError:
        raise MotionError(path, "no such file") from None
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as exc:
        # numpy takes anything it does not recognise for a pickle and advises loading it with allow_pickle
        reason = "zero-filled, truncated or another kind of file" if "pickle" in str(exc) else exc
        raise MotionError(path, f"not a readable .npz clip ({reason})") from None
    if not isinstance(archive, np.lib.npyio.NpzFile):
        raise MotionError(path, "not a readable .npz clip (a single .npy array, not an archive)")
    try:
        with archive:
            data = {key: archive[key] for key in archive.files}
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as exc:
        raise MotionError(path, f"not a readable .npz clip ({exc})") from None

    problems = []
    fps = _scalar(data, "fps", problems, numeric=True)
    embodiment = _scalar(data, "embodiment", problems, numeric=False)
    qpos = _array(data, "qpos", problems, required=True)
    qvel = _array(data, "qvel", problems, required=False)
    names = data.get("joint_names")
    if names is None:
        problems.append("missing field 'joint_names'")
    elif names.ndim != 1 or names.dtype.kind != "U":
        problems.append(f"'joint_names' must be a 1-D array of strings, got {names.dtype} {names.shape}")
        names = None
    texts = {key: _scalar(data, key, problems, numeric=False, default="") for key in ("source", "license")}
    if problems:
        raise MotionError(path, problems)
    clip = MotionClip(
        fps=float(fps),
        qpos=qpos.astype(np.float32, copy=False),
        joint_names=tuple(str(n) for n in names),
        embodiment=str(embodiment),
        qvel=None if qvel is None else qvel.astype(np.float32, copy=False),
        source=str(texts["source"]),
        license=str(texts["license"]),
    )
    problems = _structure_problems(clip)
    if problems:
        raise MotionError(path, problems)
    return clip


def fit_problems(clip: MotionClip, embodiment: Embodiment) -> tuple[FittedClip | None, list[str]]:
    """Map a clip onto `embodiment`'s columns; returns the fitted clip (None if unusable) and
    every problem found: fps, frames, embodiment name, NaN/inf, missing joints, joint widths,
    non-unit quaternions, qvel shape."""
    problems = []
    if not (np.isfinite(clip.fps) and clip.fps > 0):
        problems.append(f"fps must be a positive number, got {clip.fps}")
    elif not FPS_RANGE[0] <= clip.fps <= FPS_RANGE[1]:
        problems.append(f"fps {clip.fps:g} is outside {FPS_RANGE[0]:g}-{FPS_RANGE[1]:g} frames per second (motion "
                        "capture records at 30-480): is the field a time step or in another unit?")
    elif clip.num_frames >= 2 and not embodiment.physics.control_dt <= clip.duration <= MAX_DURATION:
        problems.append(f"lasts {clip.duration:g} s; a clip must last from one control step of {embodiment.name!r} "
                        f"({embodiment.physics.control_dt:g} s) to {MAX_DURATION:g} s")
    if clip.num_frames < 2:
        problems.append(f"{clip.num_frames} frame(s); a clip needs at least 2")
    if clip.embodiment != embodiment.name:
        problems.append(f"made for embodiment {clip.embodiment!r}, not {embodiment.name!r}")
    problems += _nonfinite(clip.qpos, "qpos", clip.joint_names)
    if clip.qvel is not None:
        problems += _nonfinite(clip.qvel, "qvel", None)

    model = embodiment.mj_model
    groups = _column_groups(clip.joint_names)
    joints = model_joints(model)
    body_names = {j.name for j in joints}
    missing = [j.name for j in joints if j.name not in groups and j.name not in embodiment.finger_joints]
    if missing:
        problems.append(f"missing joint(s) {', '.join(missing)}")
    for joint in joints:
        cols = groups.get(joint.name)
        width = joint.qpos.stop - joint.qpos.start
        if cols is not None and cols.stop - cols.start != width:
            problems.append(f"joint {joint.name!r} has {cols.stop - cols.start} qpos column(s), the body's has {width}")
    if clip.qvel is not None:
        expected = sum(_DOF_WIDTH.get(c.stop - c.start, 0) for c in groups.values())
        if clip.qvel.shape != (clip.num_frames, expected):
            problems.append(f"qvel has shape {clip.qvel.shape}, expected ({clip.num_frames}, {expected}) for these joints")
        bad = sorted(n for n, c in groups.items() if (c.stop - c.start) not in _DOF_WIDTH)
        if bad:
            problems.append(f"cannot place qvel of joint(s) with unusual column counts: {', '.join(bad)}")
    for name, cols in groups.items():
        offset = {7: 3, 4: 0}.get(cols.stop - cols.start)
        if offset is not None:
            problems += _quaternion_problems(clip.qpos[:, cols.start + offset : cols.start + offset + 4], name)
    root = groups.get(embodiment.free_joint) if embodiment.free_joint else None
    if not problems and root is not None and root.stop - root.start == 7:
        problems += root_problems(clip.qpos[:, root.start : root.start + 3], clip.fps, embodiment.free_joint)
    if problems:
        return None, problems

    qpos = np.tile(model.qpos0, (clip.num_frames, 1))
    qvel = None if clip.qvel is None else np.zeros((clip.num_frames, model.nv))
    vel_cols = _velocity_groups(groups) if clip.qvel is not None else {}
    filled = []
    for joint in joints:
        cols = groups.get(joint.name)
        if cols is None:
            filled.append(joint.name)
            continue
        qpos[:, joint.qpos] = clip.qpos[:, cols]
        if qvel is not None:
            qvel[:, joint.qvel] = clip.qvel[:, vel_cols[joint.name]]
        if joint.quat_offset is not None:
            start = joint.qpos.start + joint.quat_offset
            _normalise(qpos[:, start : start + 4])
    dropped = tuple(n for n in groups if n not in body_names)
    return FittedClip(float(clip.fps), qpos, qvel, tuple(filled), dropped), []


def fit_clip(clip: MotionClip, embodiment: Embodiment, path: str | Path) -> FittedClip:
    """`fit_problems`, raising `MotionError` naming `path` and every problem."""
    fitted, problems = fit_problems(clip, embodiment)
    if fitted is None:
        raise MotionError(path, problems)
    return fitted


def check_clip(path: str | Path, embodiment: Embodiment) -> list[str]:
    """Every problem of the clip file at `path` for `embodiment` (empty when it loads)."""
    try:
        clip = read_clip(path)
    except MotionError as exc:
        return exc.problems
    return fit_problems(clip, embodiment)[1]


# ---------------------------------------------------------------------- helpers


def _scalar(data: dict[str, np.ndarray], key: str, problems: list[str], *, numeric: bool, default: str | None = None):
    value = data.get(key)
    if value is None:
        if default is None:
            problems.append(f"missing field {key!r}")
        return default
    ok = value.ndim == 0 and (value.dtype.kind in "iuf" if numeric else value.dtype.kind == "U")
    if not ok:
        kind = "a number" if numeric else "a string"
        problems.append(f"field {key!r} must be {kind} scalar, got {value.dtype} {value.shape}")
        return default
    return value[()]


def _array(data: dict[str, np.ndarray], key: str, problems: list[str], *, required: bool) -> np.ndarray | None:
    value = data.get(key)
    if value is None:
        if required:
            problems.append(f"missing field {key!r}")
        return None
    if value.ndim != 2 or value.dtype.kind not in "iuf":
        problems.append(f"field {key!r} must be a 2-D array of numbers, got {value.dtype} {value.shape}")
        return None
    return value


def _structure_problems(clip: MotionClip) -> list[str]:
    problems = []
    if clip.qpos.ndim != 2:
        return [f"qpos must be 2-D (frames x columns), got shape {clip.qpos.shape}"]
    if len(clip.joint_names) != clip.qpos.shape[1]:
        problems.append(f"joint_names has {len(clip.joint_names)} entries for {clip.qpos.shape[1]} qpos columns")
    if clip.qvel is not None and (clip.qvel.ndim != 2 or clip.qvel.shape[0] != clip.qpos.shape[0]):
        problems.append(f"qvel has shape {clip.qvel.shape}, qpos {clip.qpos.shape}: frame counts differ")
    seen, previous = set(), None
    for name in clip.joint_names:
        if name != previous and name in seen:
            problems.append(f"the columns of joint {name!r} are not contiguous")
            break
        seen.add(name)
        previous = name
    return problems


def _column_groups(names: tuple[str, ...]) -> dict[str, slice]:
    groups: dict[str, slice] = {}
    start = 0
    for i in range(1, len(names) + 1):
        if i == len(names) or names[i] != names[start]:
            groups[names[start]] = slice(start, i)
            start = i
    return groups


def _velocity_groups(groups: dict[str, slice]) -> dict[str, slice]:
    out, adr = {}, 0
    for name, cols in groups.items():
        width = _DOF_WIDTH[cols.stop - cols.start]
        out[name] = slice(adr, adr + width)
        adr += width
    return out


def _nonfinite(values: np.ndarray, field: str, names: tuple[str, ...] | None) -> list[str]:
    bad = ~np.isfinite(values)
    if not bad.any():
        return []
    frame, col = (int(i) for i in np.argwhere(bad)[0])
    where = f"column {col} ({names[col]!r})" if names else f"column {col}"
    return [f"{field} has {int(bad.sum())} NaN/inf value(s), the first at frame {frame}, {where}"]


def root_problems(position: np.ndarray, fps: float, joint: str) -> list[str]:
    """The free root's height outside `ROOT_HEIGHT_RANGE` or speed above `ROOT_SPEED_LIMIT`."""
    problems = []
    height = position[:, 2].astype(np.float64)
    low, high = ROOT_HEIGHT_RANGE
    outside = (height < low) | (height > high)
    if outside.any():
        frame = int(np.argmax(outside))
        problems.append(f"root {joint!r} height {height[frame]:.4g} m at frame {frame} ({int(outside.sum())} frame(s)) "
                        f"is outside the plausible {low:g}..{high:g} m")
    if len(position) > 1 and np.isfinite(fps) and fps > 0:
        speed = np.linalg.norm(np.diff(position.astype(np.float64), axis=0), axis=1) * fps
        frame = int(np.argmax(speed))
        if speed[frame] > ROOT_SPEED_LIMIT:
            problems.append(f"root {joint!r} moves at {speed[frame]:.4g} m/s between frames {frame} and {frame + 1}, "
                            f"faster than the plausible {ROOT_SPEED_LIMIT:g} m/s")
    return problems


def _quaternion_problems(quat: np.ndarray, joint: str) -> list[str]:
    error = np.nan_to_num(np.abs(np.linalg.norm(quat, axis=1) - 1.0))  # NaN rows: reported as non-finite
    if error.max() <= QUAT_TOLERANCE:
        return []
    frame = int(np.argmax(error))
    norm = np.linalg.norm(quat[frame])
    return [f"joint {joint!r} quaternion is not unit: norm {norm:.6g} at frame {frame} (tolerance {QUAT_TOLERANCE:g})"]


def _normalise(quat: np.ndarray) -> None:
    """Normalise unit-within-tolerance quaternions in place; exactly stored ones stay as they are."""
    norm = np.linalg.norm(quat, axis=1, keepdims=True)
    if np.abs(norm - 1.0).max() > _EXACT_UNIT:
        quat /= norm
