"""Reader for BVH motion capture: any skeleton, through a joint-name map; CMU and Daz namings built in.

A name map (`--name-map FILE`, TOML) says which BVH joint is each canonical keypoint and,
optionally, which joint's rotation orients each segment, and the file's up axis::

    up = "y"                       # the BVH's up axis, "y" (default) or "z"
    scale = 0.01                   # metres per file length unit (default 1)
    skip_frames = 1                # leading frames that are not motion (an added T-pose), dropped
    [keypoints]                    # required: hip, knee, ankle, shoulder, elbow, wrist (_l, _r)
    hip_l = "LeftUpLeg"            # optional: toe_l/_r (ball of the foot), hand_l/_r (knuckles)
    [segments]                     # optional: pelvis, torso, foot_l, foot_r
    pelvis = "Hips"

Without a map, the skeleton must use one of the built-in namings (`BUILTIN_MAPS`): B. Hahne's
3dsMax- and MotionBuilder-friendly conversions of the CMU database, whose lengths are CMU ASF
units (`CMU_SCALE` metres each, CMU FAQ), and his Daz-friendly one on the Daz/Aiko3 rig
(centimetres, y up, frame 0 an added T-pose, frames 1-4 a blend out of it). The up axis and
scale are checked against the file's rest pose. Rotations are in degrees, applied in the order
the CHANNELS line lists them; End Sites become joints named `<parent>_End`. The file's frame
time may be overridden (`fps`): some conversions carry a wrong header.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy.spatial.transform import Rotation

from mmimic.retarget.keypoints import KEYPOINTS, SEGMENTS, SIDES
from mmimic.retarget.skeleton import Y_UP_TO_Z_UP, Skeleton, canonical_axes, forward_kinematics, source_motion
from mmimic.retarget.source import RetargetError, SourceMotion, read_toml

CMU_SCALE = 2.54 / 100 / 0.45
"""Metres per CMU ASF length unit (1/0.45 inch)."""
_AXES = {"X": 0, "Y": 1, "Z": 2}
REST_LEG_M = (0.3, 1.5)
"""Plausible hip-to-ankle height (m) of a rest pose: checks a file's units."""
_SIDE = {"l": "Left", "r": "Right"}


@dataclass(frozen=True)
class NameMap:
    """Canonical keypoint -> BVH joint, segment -> BVH joint, the up axis and the default scale."""

    name: str
    keypoints: dict[str, str]
    segments: dict[str, str]
    up: str = "y"
    scale: float = 1.0
    skip_frames: int = 0


CMU_MAPS = (
    NameMap(
        "CMU (3dsMax-friendly names)",
        {
            **{f"{kp}_{s}": f"{_SIDE[s]}{joint}" for s in SIDES for kp, joint in (
                ("hip", "Hip"), ("knee", "Knee"), ("ankle", "Ankle"), ("toe", "Toe"),
                ("shoulder", "Shoulder"), ("elbow", "Elbow"), ("wrist", "Wrist"),
            )},
            "hand_l": "LFingers",
            "hand_r": "RFingers",
        },
        {"pelvis": "Hips", "torso": "Chest2", "foot_l": "LeftAnkle", "foot_r": "RightAnkle"},
        scale=CMU_SCALE,
    ),
    NameMap(
        "CMU (MotionBuilder-friendly names)",
        {
            f"{kp}_{s}": f"{_SIDE[s]}{joint}" for s in SIDES for kp, joint in (
                ("hip", "UpLeg"), ("knee", "Leg"), ("ankle", "Foot"), ("toe", "ToeBase"),
                ("shoulder", "Arm"), ("elbow", "ForeArm"), ("wrist", "Hand"), ("hand", "FingerBase"),
            )
        },
        {"pelvis": "Hips", "torso": "Spine1", "foot_l": "LeftFoot", "foot_r": "RightFoot"},
        scale=CMU_SCALE,
    ),
)

DAZ_MAP = NameMap(
    "Daz/Aiko3 (CMU Daz-friendly conversion)",
    {
        f"{kp}_{s}": f"{s}{joint}" for s in SIDES for kp, joint in (
            ("hip", "Thigh"), ("knee", "Shin"), ("ankle", "Foot"), ("toe", "Foot_End"),
            ("shoulder", "Shldr"), ("elbow", "ForeArm"), ("wrist", "Hand"), ("hand", "Mid1"),
        )
    },
    {"pelvis": "hip", "torso": "chest", "foot_l": "lFoot", "foot_r": "rFoot"},
    scale=0.01,
    skip_frames=5,
)
"""The Daz/Aiko3 rig of Hahne's Daz-friendly CMU release: centimetres, y up; frame 0 is an added
T-pose and frames 1-4 the conversion's blend out of it (the wrists move at 20-30 m/s between
them in most files: docs/retargeting.md), so the motion starts at frame 5. `Foot_End` (the
foot's End Site, 12 cm ahead of the ankle) stands for the ball of the foot."""
BUILTIN_MAPS = (*CMU_MAPS, DAZ_MAP)


@dataclass
class BvhFile:
    """A parsed BVH: the skeleton, each joint's channels, and the motion table (frames, channels)."""

    skeleton: Skeleton
    channels: list[list[str]]
    frame_time: float
    values: np.ndarray


def parse_bvh(path: str | Path) -> BvhFile:
    """Parse a BVH file; `RetargetError` naming the file and the first problem found."""
    path = Path(path)
    try:
        text = path.read_text()
    except (OSError, UnicodeDecodeError) as exc:
        raise RetargetError(path, f"cannot read the file ({exc})") from None
    head, sep, motion = text.partition("MOTION")
    if not sep:
        raise RetargetError(path, "no MOTION section")
    tokens = head.split()
    if not tokens or tokens[0] != "HIERARCHY":
        raise RetargetError(path, "the file does not start with HIERARCHY")
    names: list[str] = []
    parents: list[int] = []
    offsets: list[list[float]] = []
    channels: list[list[str]] = []
    pos = _parse_joint(path, tokens, 1, -1, names, parents, offsets, channels)
    if pos != len(tokens):
        raise RetargetError(path, f"malformed hierarchy: unexpected {tokens[pos]!r} after the root joint's closing brace")
    skeleton = Skeleton(tuple(names), np.array(parents), np.array(offsets, dtype=np.float64))
    frame_time, values = _parse_motion(path, motion, sum(len(c) for c in channels))
    return BvhFile(skeleton, channels, frame_time, values)


def _parse_joint(path, tokens, pos, parent, names, parents, offsets, channels) -> int:
    """Parse `ROOT|JOINT name { OFFSET .. CHANNELS .. children }` from `tokens[pos]`; returns the
    position after its closing brace."""

    label = tokens[pos + 1] if pos + 1 < len(tokens) else "at the end"

    def expect(word: str, at: int) -> None:
        found = tokens[at] if at < len(tokens) else "the end of the hierarchy"
        if found != word:
            raise RetargetError(path, f"malformed hierarchy: expected {word!r} in joint {label!r}, found {found!r}")

    kind = tokens[pos] if pos < len(tokens) else "nothing"
    if kind not in ("ROOT", "JOINT") or (kind == "ROOT") != (parent < 0):
        raise RetargetError(path, f"malformed hierarchy: expected {'ROOT' if parent < 0 else 'JOINT'}, found {kind!r}")
    if pos + 2 >= len(tokens):
        raise RetargetError(path, "malformed hierarchy: the file ends inside a joint")
    name = tokens[pos + 1]
    if name in names:
        raise RetargetError(path, f"malformed hierarchy: joint {name!r} appears twice")
    expect("{", pos + 2)
    index = len(names)
    names.append(name)
    parents.append(parent)
    offsets.append(_numbers(path, tokens, pos + 3, name))
    pos += 7
    expect("CHANNELS", pos)
    try:
        count = int(tokens[pos + 1])
    except (IndexError, ValueError):
        raise RetargetError(path, f"malformed hierarchy: joint {name!r} has no channel count") from None
    listed = tokens[pos + 2 : pos + 2 + count]
    bad = [c for c in listed if c[:1] not in _AXES or c[1:] not in ("position", "rotation")]
    if len(listed) != count or bad:
        raise RetargetError(path, f"malformed hierarchy: joint {name!r} lists channels {listed} (count {count})")
    channels.append(listed)
    pos += 2 + count
    while pos < len(tokens) and tokens[pos] != "}":
        if tokens[pos] == "End":
            expect("Site", pos + 1)
            expect("{", pos + 2)
            names.append(f"{name}_End")
            parents.append(index)
            offsets.append(_numbers(path, tokens, pos + 3, f"{name}'s End Site"))
            channels.append([])
            expect("}", pos + 7)
            pos += 8
        else:
            pos = _parse_joint(path, tokens, pos, index, names, parents, offsets, channels)
    expect("}", pos)
    return pos + 1


def _numbers(path: Path, tokens: list[str], pos: int, owner: str) -> list[float]:
    if pos >= len(tokens) or tokens[pos] != "OFFSET":
        raise RetargetError(path, f"malformed hierarchy: {owner} has no OFFSET")
    try:
        values = [float(t) for t in tokens[pos + 1 : pos + 4]]
    except ValueError:
        values = []
    if len(values) != 3:
        raise RetargetError(path, f"malformed hierarchy: {owner}'s OFFSET needs three numbers")
    return values


def _parse_motion(path: Path, text: str, width: int) -> tuple[float, np.ndarray]:
    lines = [line for line in text.strip().splitlines() if line.strip()]
    try:
        frames_key, frames_value = lines[0].split(":")
        time_key, time_value = lines[1].split(":")
        frames = int(frames_value)
        frame_time = float(time_value)
        if frames_key.strip() != "Frames" or time_key.strip() != "Frame Time":
            raise ValueError
    except (IndexError, ValueError):
        raise RetargetError(path, "MOTION must start with 'Frames: N' and 'Frame Time: seconds'") from None
    if frames < 1:
        raise RetargetError(path, f"zero frames (Frames: {frames})")
    if not frame_time > 0:
        raise RetargetError(path, f"Frame Time must be positive, got {frame_time}")
    rows = lines[2:]
    if len(rows) != frames:
        raise RetargetError(path, f"the header says Frames: {frames}, the file holds {len(rows)} frame line(s)")
    try:
        values = np.array([[float(v) for v in row.split()] for row in rows])
    except ValueError:
        raise RetargetError(path, "a frame line holds something that is not a number") from None
    if values.ndim != 2 or values.shape[1] != width:
        counts = sorted({len(row.split()) for row in rows})
        raise RetargetError(path, f"each frame needs {width} values (the hierarchy's channels), found {counts}")
    return frame_time, values


def read_name_map(path: str | Path) -> NameMap:
    """Read a TOML name map (module docstring); `RetargetError` naming the file and the field."""
    path = Path(path)
    table = read_toml(path, "name map")
    unknown = sorted(set(table) - {"up", "scale", "skip_frames", "keypoints", "segments"})
    if unknown:
        raise RetargetError(
            path, f"unknown key(s) {', '.join(unknown)} (expected up, scale, skip_frames, [keypoints], [segments])"
        )
    keypoints, segments = table.get("keypoints", {}), table.get("segments", {})
    for field, entries, allowed in (("keypoints", keypoints, KEYPOINTS), ("segments", segments, SEGMENTS)):
        if not isinstance(entries, dict) or not all(isinstance(v, str) for v in entries.values()):
            raise RetargetError(path, f"[{field}] must map names to BVH joint names (strings)")
        bad = sorted(set(entries) - set(allowed))
        if bad:
            raise RetargetError(path, f"[{field}] has unknown name(s) {', '.join(bad)} (known: {', '.join(allowed)})")
    up, scale = table.get("up", "y"), table.get("scale", 1.0)
    if up not in ("y", "z"):
        raise RetargetError(path, f"up must be \"y\" or \"z\", got {up!r}")
    if isinstance(scale, bool) or not isinstance(scale, (int, float)) or not scale > 0:
        raise RetargetError(path, f"scale must be a positive number, got {scale!r}")
    skip = table.get("skip_frames", 0)
    if isinstance(skip, bool) or not isinstance(skip, int) or skip < 0:
        raise RetargetError(path, f"skip_frames must be a non-negative integer, got {skip!r}")
    return NameMap(path.name, dict(keypoints), dict(segments), up, float(scale), skip)


def read_bvh(
    path: str | Path, name_map: NameMap | None = None, scale: float | None = None, fps: float | None = None
) -> SourceMotion:
    """Read a BVH clip into canonical keypoints, without the name map's `skip_frames`; `scale`
    (metres per file unit) overrides the name map's, `fps` the file's frame time. `RetargetError`
    for a malformed file, a skeleton no name map fits or too few frames."""
    path = Path(path)
    if fps is not None and not (np.isfinite(fps) and fps > 0):
        raise RetargetError(path, f"the frame-rate override must be positive, got {fps}")
    bvh = parse_bvh(path)
    names = set(bvh.skeleton.names)
    if name_map is None:
        name_map = next((m for m in BUILTIN_MAPS if set(m.keypoints.values()) <= names), None)
        if name_map is None:
            raise RetargetError(
                path, "unknown skeleton: its joint names match no built-in naming (CMU, Daz); pass --name-map FILE"
            )
    missing = sorted({*name_map.keypoints.values(), *name_map.segments.values()} - names)
    if missing:
        raise RetargetError(path, f"the name map {name_map.name} names joint(s) the file lacks: {', '.join(missing)}")
    if len(bvh.values) < name_map.skip_frames + 2:
        raise RetargetError(path, f"{len(bvh.values)} frame(s), {name_map.skip_frames} of them skipped by the name "
                            f"map {name_map.name}; a clip needs at least 2 more")
    bvh.values = bvh.values[name_map.skip_frames :]
    units = name_map.scale if scale is None else scale
    skeleton = Skeleton(bvh.skeleton.names, bvh.skeleton.parents, bvh.skeleton.offsets * units)
    rest_axes = _rest_axes(path, skeleton, name_map, units)
    local, root = _local_motion(bvh, units)
    pos, rot = forward_kinematics(skeleton, local, root)
    up_to_z = Y_UP_TO_Z_UP if name_map.up == "y" else np.eye(3)
    pos, rot = pos @ up_to_z.T, up_to_z @ rot
    return source_motion(
        path, 1.0 / bvh.frame_time if fps is None else fps, skeleton, pos, rot, name_map.keypoints, name_map.segments,
        rest_axes, f"bvh ({name_map.name})",
    )


def _local_motion(bvh: BvhFile, units: float) -> tuple[np.ndarray, np.ndarray]:
    """Local rotations (T, J, 3, 3) and the root position (T, 3) from the channel table;
    position channels of non-root joints are added to their offsets (folded into the root here)."""
    frames, joints = bvh.values.shape[0], len(bvh.skeleton.names)
    local = np.tile(np.eye(3), (frames, joints, 1, 1))
    root = np.zeros((frames, 3))
    column = 0
    for j, listed in enumerate(bvh.channels):
        rot_axes = "".join(c[0] for c in listed if c.endswith("rotation"))
        rot_cols = [column + i for i, c in enumerate(listed) if c.endswith("rotation")]
        for i, c in enumerate(listed):
            if c.endswith("position") and bvh.skeleton.parents[j] < 0:
                root[:, _AXES[c[0]]] = bvh.values[:, column + i] * units
        if rot_axes:
            local[:, j] = Rotation.from_euler(rot_axes.upper(), bvh.values[:, rot_cols], degrees=True).as_matrix()
        column += len(listed)
    return local, root


def _rest_axes(path: Path, skeleton: Skeleton, name_map: NameMap, units: float) -> np.ndarray:
    """The body's forward, left and up axes in the file's rest pose: left from the right hip to
    the left hip, up the file's up axis made perpendicular to it, forward = left x up.
    `RetargetError` when the rest pose contradicts the up axis (its legs, ankles to hips, must
    run along it) or the units (hip to ankle must be `REST_LEG_M` metres)."""
    rest, _ = forward_kinematics(skeleton, np.tile(np.eye(3), (1, len(skeleton.names), 1, 1)), np.zeros((1, 3)))
    joint = {k: rest[0, skeleton.index(name_map.keypoints[k])] for k in ("hip_l", "hip_r", "ankle_l", "ankle_r")}
    leg = 0.5 * (joint["hip_l"] + joint["hip_r"] - joint["ankle_l"] - joint["ankle_r"])
    axis = int(np.argmax(np.abs(leg)))
    if "xyz"[axis] != name_map.up or leg[axis] <= 0:
        direction = f"{'+' if leg[axis] > 0 else '-'}{'xyz'[axis]}"
        raise RetargetError(path, f"the rest pose's legs run along {direction} (ankles to hips), but the name "
                            f"map {name_map.name} says up = {name_map.up!r}")
    length = float(np.linalg.norm(leg))
    if not REST_LEG_M[0] <= length <= REST_LEG_M[1]:
        raise RetargetError(path, f"the rest pose's legs are {length:.3g} m long ({length / units:.4g} file units "
                            f"x scale {units:g}); expected {REST_LEG_M[0]}-{REST_LEG_M[1]} m: wrong units? (--scale)")
    left = rest[0, skeleton.index(name_map.keypoints["hip_l"])] - rest[0, skeleton.index(name_map.keypoints["hip_r"])]
    up = np.eye(3)[1 if name_map.up == "y" else 2]
    left = left - (left @ up) * up
    if np.linalg.norm(left) < 1e-9:
        raise RetargetError(path, "the rest pose's hips coincide: cannot tell left from right")
    left /= np.linalg.norm(left)
    return canonical_axes(np.cross(left, up), left, up)
