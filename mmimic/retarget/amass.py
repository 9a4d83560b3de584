"""Reader for AMASS motions (SMPL-H / SMPL-X parameters in `.npz`), with or without body-model files.

Fields: `poses` (T, 156) SMPL-H or (T, 165) SMPL-X axis-angle rotations (root first; the first
22 joints are the body), `trans` (T, 3) metres, `betas`, `gender`, and the rate as
`mocap_framerate` or `mocap_frame_rate`. The world is z up; the body model's own frame is
y up with the body facing +z and its left at +x.

Two paths, reported in `SourceMotion.reader`:

* **smplx** (`model_dir` given, holding the user's own licence-gated SMPL-H/SMPL-X files, which
  mmimic never ships or downloads): the shape parameters and a global scale are fitted once so
  that the body model's bone lengths match the embodiment's (Adam on the joint regressor's
  rest joints, `fit_shape`); forward kinematics of the motion runs through `smplx` with the
  fitted shape, and the root trajectory is scaled by the fitted/subject leg-length ratio.
* **template** (no model files): the SMPL joint tree with rest offsets taken from the
  embodiment's own joint centres in a T-pose (the arms laid out sideways as SMPL's rest pose
  holds them), so AMASS rotations still apply; the subject's size is unknown, so the root
  trajectory keeps its metres.
"""

from __future__ import annotations

import functools
import pickle
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import smplx
import torch
from scipy.optimize import least_squares
from scipy.spatial.transform import Rotation
from smplx.lbs import batch_rigid_transform, blend_shapes, vertices2joints

from mmimic.retarget.keypoints import BONES, LEG_BONES, SIDES
from mmimic.retarget.skeleton import Skeleton, canonical_axes, forward_kinematics
from mmimic.retarget.source import RetargetError, SourceMotion, read_npz

BODY_JOINTS = 22
SMPL_PARENTS = np.array([-1, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 9, 9, 12, 13, 14, 16, 17, 18, 19])
SMPL_NAMES = (
    "pelvis", "left_hip", "right_hip", "spine1", "left_knee", "right_knee", "spine2", "left_ankle", "right_ankle",
    "spine3", "left_foot", "right_foot", "neck", "left_collar", "right_collar", "head", "left_shoulder",
    "right_shoulder", "left_elbow", "right_elbow", "left_wrist", "right_wrist",
)
_SIDE = {"l": "left", "r": "right"}
KEYPOINT_JOINTS = {
    f"{kp}_{s}": SMPL_NAMES.index(f"{_SIDE[s]}_{joint}")
    for s in SIDES
    for kp, joint in (("hip", "hip"), ("knee", "knee"), ("ankle", "ankle"), ("toe", "foot"),
                      ("shoulder", "shoulder"), ("elbow", "elbow"), ("wrist", "wrist"))
}
SEGMENT_JOINTS = {"pelvis": 0, "torso": 9, "foot_l": 7, "foot_r": 8}
MIDDLE_KNUCKLE = {"smplh": {"l": 25, "r": 40}, "smplx": {"l": 28, "r": 43}}
"""Joint index of each hand's middle-finger base (its knuckle) in the SMPL-H / SMPL-X trees."""
POSE_WIDTH = {156: "smplh", 165: "smplx"}
REST_AXES = canonical_axes(np.array([0.0, 0.0, 1.0]), np.array([1.0, 0.0, 0.0]), np.array([0.0, 1.0, 0.0]))
SHAPE_PRIOR = 0.01
"""Weight (m per unit) pulling the fitted shape parameters towards the mean shape."""
SPINE_FRACTIONS = {"spine1": 0.23, "spine2": 0.49, "spine3": 0.59}
"""Where SMPL's spine joints sit between its pelvis and neck joints (its mean shape)."""


@dataclass
class AmassMotion:
    """The arrays of an AMASS file: poses (T, 3J), trans (T, 3), betas, gender, fps."""

    path: Path
    poses: np.ndarray
    trans: np.ndarray
    betas: np.ndarray
    gender: str
    fps: float

    @property
    def model_type(self) -> str:
        return POSE_WIDTH.get(self.poses.shape[1], "smplh")

    def rotations(self, joints: int) -> np.ndarray:
        """Local rotation matrices (T, joints, 3, 3) of the first `joints` joints."""
        aa = self.poses[:, : 3 * joints].reshape(-1, 3)
        return Rotation.from_rotvec(aa).as_matrix().reshape(len(self.poses), joints, 3, 3)


def load_amass(path: str | Path) -> AmassMotion:
    """Read an AMASS `.npz`; `RetargetError` naming the file and the missing or malformed field."""
    path = Path(path)
    data = read_npz(path)
    if "poses" not in data:
        raise RetargetError(path, "no 'poses' array (an AMASS file holds poses (frames, 156 or 165), trans and a frame rate)")
    poses = np.asarray(data["poses"], dtype=np.float64)
    if poses.ndim != 2 or poses.shape[1] < 3 * BODY_JOINTS or poses.shape[1] % 3:
        raise RetargetError(path, f"'poses' must be (frames, 156) SMPL-H or (frames, 165) SMPL-X, got {poses.shape}")
    if poses.shape[0] == 0:
        raise RetargetError(path, "zero frames in 'poses'")
    if "trans" not in data:
        raise RetargetError(path, "no 'trans' array (root translation, frames x 3)")
    trans = np.asarray(data["trans"], dtype=np.float64)
    if trans.shape != (poses.shape[0], 3):
        raise RetargetError(path, f"'trans' must be ({poses.shape[0]}, 3) like 'poses', got {trans.shape}")
    rate = next((data[k] for k in ("mocap_framerate", "mocap_frame_rate") if k in data), None)
    if rate is None:
        raise RetargetError(path, "no frame rate ('mocap_framerate' or 'mocap_frame_rate')")
    fps = float(rate)
    if poses.shape[0] < 2:
        raise RetargetError(path, f"{poses.shape[0]} frame(s); a clip needs at least 2")
    if not (np.all(np.isfinite(poses)) and np.all(np.isfinite(trans)) and np.isfinite(fps) and fps > 0):
        raise RetargetError(path, "NaN/inf in poses or trans, or a frame rate that is not positive")
    betas = np.asarray(data.get("betas", np.zeros(0)), dtype=np.float64).ravel()
    gender = str(data["gender"]) if "gender" in data else "neutral"
    gender = gender.removeprefix("b'").removesuffix("'").lower()
    return AmassMotion(path, poses, trans, betas, gender if gender in ("male", "female") else "neutral", fps)


# ---------------------------------------------------------------------- template path


def template_skeleton(points: dict[str, np.ndarray]) -> tuple[Skeleton, dict[str, np.ndarray]]:
    """SMPL's 22-joint tree with the embodiment's proportions, in SMPL's rest frame (y up,
    facing +z): `points` are the embodiment's rest keypoints and landmarks (`pelvis`, `neck`,
    `head`, `collar_l/_r`, see `keypoints.FULLBODY_LANDMARKS`) in its canonical coordinates
    (forward, left, up). The spine joints divide pelvis-neck as in SMPL's mean shape; the arms
    lie sideways (SMPL's T-pose) with the embodiment's lengths. Returns the skeleton and each
    hand's knuckle offset from its wrist."""
    smpl = {k: np.array([v[1], v[2], v[0]]) for k, v in points.items()}  # (left, up, forward)
    pelvis = np.array([0.0, smpl["pelvis"][1], 0.0])  # above the mid-hip point, at the pelvis body's height
    rest: dict[str, np.ndarray] = {"pelvis": pelvis, "neck": smpl["neck"], "head": smpl["head"]}
    for name, fraction in SPINE_FRACTIONS.items():
        rest[name] = smpl["pelvis"] + fraction * (smpl["neck"] - smpl["pelvis"])
    hands = {}
    for s in SIDES:
        side, out = _SIDE[s], np.array([1.0 if s == "l" else -1.0, 0.0, 0.0])
        for joint in ("hip", "knee", "ankle", "shoulder"):
            rest[f"{side}_{joint}"] = smpl[f"{joint}_{s}"]
        rest[f"{side}_foot"] = smpl[f"toe_{s}"]
        rest[f"{side}_collar"] = smpl[f"collar_{s}"]
        upper = np.linalg.norm(points[f"elbow_{s}"] - points[f"shoulder_{s}"])
        fore = np.linalg.norm(points[f"wrist_{s}"] - points[f"elbow_{s}"])
        rest[f"{side}_elbow"] = rest[f"{side}_shoulder"] + upper * out
        rest[f"{side}_wrist"] = rest[f"{side}_elbow"] + fore * out
        hands[s] = np.linalg.norm(points[f"hand_{s}"] - points[f"wrist_{s}"]) * out
    positions = np.stack([rest[n] for n in SMPL_NAMES])
    offsets = positions - positions[np.maximum(SMPL_PARENTS, 0)]
    offsets[0] = 0.0
    return Skeleton(SMPL_NAMES, SMPL_PARENTS, offsets), hands


def read_amass_template(path: str | Path, skeleton: Skeleton, hands: dict[str, np.ndarray]) -> SourceMotion:
    """AMASS rotations applied to a template skeleton (`template_skeleton`)."""
    motion = load_amass(path)
    local = motion.rotations(BODY_JOINTS)
    pos, rot = forward_kinematics(skeleton, local, motion.trans)
    wrists = {s: KEYPOINT_JOINTS[f"wrist_{s}"] for s in hands}
    return _source_motion(
        motion, pos, rot, {f"hand_{s}": pos[:, j] + rot[:, j] @ hands[s] for s, j in wrists.items()},
        "template skeleton: no body-model files",
        ("template skeleton: the subject's size is unknown without body-model files; the root keeps its metres",),
    )


def _source_motion(
    motion: AmassMotion, pos: np.ndarray, rot: np.ndarray, hands: dict[str, np.ndarray], how: str,
    notes: tuple[str, ...] = (),
) -> SourceMotion:
    """The keypoints (`KEYPOINT_JOINTS` and the `hands` positions) and segment frames of posed
    joints (`pos` (T, J, 3), `rot` (T, J, 3, 3)); `how` says which path posed them."""
    return SourceMotion(
        path=motion.path,
        fps=motion.fps,
        positions={k: pos[:, j] for k, j in KEYPOINT_JOINTS.items()} | hands,
        frames={s: rot[:, j] @ REST_AXES for s, j in SEGMENT_JOINTS.items()},
        reader=f"amass ({motion.model_type}, {how})",
        notes=list(notes),
    )


# ---------------------------------------------------------------------- smplx path


def find_model_file(model_dir: str | Path, model_type: str, gender: str) -> Path:
    """The SMPL-H / SMPL-X model file for `gender` (else neutral) in `model_dir`, in smplx's
    layouts (`<type>/<TYPE>_<GENDER>.npz|pkl`, `<TYPE>_<GENDER>.npz|pkl`, `<type>/<gender>/model.npz`)."""
    model_dir = Path(model_dir)
    if not model_dir.is_dir():
        raise RetargetError(model_dir, "the --smpl-model directory does not exist")
    tried = []
    for g in dict.fromkeys((gender, "neutral")):
        for candidate in (
            *(model_dir / model_type / f"{model_type.upper()}_{g.upper()}.{ext}" for ext in ("npz", "pkl")),
            *(model_dir / f"{model_type.upper()}_{g.upper()}.{ext}" for ext in ("npz", "pkl")),
            model_dir / model_type / g / "model.npz",
        ):
            if candidate.is_file():
                return candidate
            tried.append(str(candidate.relative_to(model_dir)))
    raise RetargetError(model_dir, f"no {model_type.upper()} model file for gender {gender!r}; looked for {', '.join(tried)}")


class BodyModel:
    """A user's SMPL-H / SMPL-X model loaded through `smplx`. Its rest joints are linear in the
    shape parameters (`rest + directions @ betas`: the joint regressor applied to smplx's shape
    blend, precomputed once), so a shape fit costs milliseconds."""

    def __init__(self, model_file: Path, model_type: str, num_betas: int) -> None:
        kind = smplx.SMPLX if model_type == "smplx" else smplx.SMPLH
        try:
            model = kind(
                model_path=str(model_file), ext=model_file.suffix[1:], num_betas=num_betas, use_pca=False, dtype=torch.float64
            )
        except (OSError, ValueError, KeyError, AttributeError, TypeError, AssertionError, pickle.UnpicklingError) as exc:
            raise RetargetError(model_file, f"smplx cannot load this {model_type.upper()} model ({exc})") from None
        self.file = model_file
        self.parents = model.parents.clone()
        with torch.no_grad():
            self.rest = vertices2joints(model.J_regressor, model.v_template[None])[0].numpy()
            eye = torch.eye(model.shapedirs.shape[-1], dtype=torch.float64)
            self.directions = vertices2joints(model.J_regressor, blend_shapes(eye, model.shapedirs)).permute(1, 2, 0).numpy()
        points = {k: j for k, j in KEYPOINT_JOINTS.items()} | {f"hand_{s}": j for s, j in MIDDLE_KNUCKLE[model_type].items()}
        ends = np.zeros((2, len(BONES), len(self.rest)))  # parent, child weights per bone
        for i, bone in enumerate(BONES):
            for end, name in enumerate(bone):
                for joint in _sides(name, points):
                    ends[end, i, joint] += 1.0 / len(_sides(name, points))
        self._bone_ends = ends

    @property
    def num_betas(self) -> int:
        return int(self.directions.shape[-1])

    def rest_joints(self, betas: np.ndarray) -> np.ndarray:
        """Rest joint positions (J, 3) for shape `betas` (num_betas,)."""
        return self.rest + self.directions @ betas

    def bone_lengths(self, joints: np.ndarray) -> np.ndarray:
        """Lengths (len(BONES),) of the canonical bones (`keypoints.BONES`) of rest joints (J, 3)."""
        return np.linalg.norm(self._bone_ends[1] @ joints - self._bone_ends[0] @ joints, axis=-1)

    def fit_shape(self, target: dict[tuple[str, str], float]) -> tuple[np.ndarray, float]:
        """Shape parameters and a global scale whose bone lengths best match `target` (m):
        Levenberg-Marquardt on the length errors, with a small pull of the shape to the mean."""
        goal = np.array([target[bone] for bone in BONES])

        def residual(x: np.ndarray) -> np.ndarray:
            betas, log_scale = x[:-1], x[-1]
            error = np.exp(log_scale) * self.bone_lengths(self.rest_joints(betas)) - goal
            return np.concatenate([error, SHAPE_PRIOR * betas])

        fit = least_squares(residual, np.zeros(self.num_betas + 1), method="lm")
        return fit.x[:-1], float(np.exp(fit.x[-1]))

    def leg_length(self, betas: np.ndarray) -> float:
        """Hip-knee plus knee-ankle length, averaged over the sides, for shape `betas`."""
        lengths = self.bone_lengths(self.rest_joints(betas))
        return float(sum(lengths[i] for i, bone in enumerate(BONES) if bone in LEG_BONES)) / len(SIDES)

    def forward(self, local: np.ndarray, betas: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """World joint positions relative to the root (T, J, 3) and rotations (T, J, 3, 3),
        by smplx's rigid-transform chain."""
        with torch.no_grad():
            joints = torch.as_tensor(self.rest_joints(betas)).expand(len(local), -1, -1)
            rot = torch.as_tensor(local, dtype=torch.float64)
            posed, transforms = batch_rigid_transform(rot, joints, self.parents, dtype=torch.float64)
        return (posed - posed[:, :1]).numpy(), transforms[..., :3, :3].numpy()


def _sides(name: str, points: dict[str, int]) -> list[int]:
    """The joints a canonical point averages: itself, or both sides for `mid_hip`/`mid_shoulder`."""
    if name.startswith("mid_"):
        return [points[f"{name.removeprefix('mid_')}_{s}"] for s in SIDES]
    return [points[name]]


@functools.lru_cache(maxsize=8)
def _fitted_model(model_file: Path, model_type: str, num_betas: int, lengths: tuple[float, ...]) -> tuple[BodyModel, np.ndarray, float]:
    """A body model and its shape fitted to bone `lengths` (in `BONES` order), once per run."""
    model = BodyModel(model_file, model_type, num_betas)
    betas, scale = model.fit_shape(dict(zip(BONES, lengths)))
    return model, betas, scale


def read_amass_smplx(path: str | Path, model_dir: str | Path, body_lengths: dict[tuple[str, str], float]) -> SourceMotion:
    """AMASS through the user's body model with its shape fitted to `body_lengths` (module docstring)."""
    motion = load_amass(path)
    joints = 52 if motion.model_type == "smplh" else 55
    if motion.poses.shape[1] < 3 * joints:
        raise RetargetError(path, f"'poses' has {motion.poses.shape[1]} columns; {motion.model_type.upper()} needs {3 * joints}")
    model_file = find_model_file(model_dir, motion.model_type, motion.gender)
    model, fitted, scale = _fitted_model(
        model_file, motion.model_type, max(len(motion.betas), 10), tuple(body_lengths[b] for b in BONES)
    )
    subject = np.zeros(model.num_betas)
    subject[: min(len(motion.betas), model.num_betas)] = motion.betas[: model.num_betas]
    ratio = scale * model.leg_length(fitted) / model.leg_length(subject)
    relative, rot = model.forward(motion.rotations(joints), fitted)
    root = ratio * (motion.trans + model.rest_joints(subject)[0])
    pos = root[:, None] + scale * relative
    hands = {f"hand_{s}": pos[:, j] for s, j in MIDDLE_KNUCKLE[motion.model_type].items()}
    return _source_motion(
        motion, pos, rot, hands, f"smplx body model {model.file.name}, shape fitted: scale {scale:.3f}"
    )
