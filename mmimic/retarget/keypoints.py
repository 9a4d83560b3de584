"""The canonical keypoints and segments every source is reduced to, and where they sit on the body.

Keypoints are joint centres that every human skeleton has (hips, knees, ankles, shoulders,
elbows, wrists) plus two optional points that orient the feet and hands (the ball of the foot,
the hand's knuckles). Segments are the rigid parts whose orientation a source may also give:
pelvis, upper trunk and feet. A segment's orientation is passed on as its *canonical frame*:
the rotation whose columns are the segment's forward, left and up directions in the world,
equal to those of the whole body in its rest (standing) pose.
"""

from __future__ import annotations

import numpy as np

SIDES = ("l", "r")
REQUIRED_KEYPOINTS = tuple(
    f"{name}_{side}" for name in ("hip", "knee", "ankle", "shoulder", "elbow", "wrist") for side in SIDES
)
OPTIONAL_KEYPOINTS = tuple(f"{name}_{side}" for name in ("toe", "hand") for side in SIDES)
KEYPOINTS = REQUIRED_KEYPOINTS + OPTIONAL_KEYPOINTS
SEGMENTS = ("pelvis", "torso", "foot_l", "foot_r")

MID_HIP, MID_SHOULDER = "mid_hip", "mid_shoulder"
BONES: tuple[tuple[str, str], ...] = (
    *((MID_HIP, f"hip_{s}") for s in SIDES),
    *((f"hip_{s}", f"knee_{s}") for s in SIDES),
    *((f"knee_{s}", f"ankle_{s}") for s in SIDES),
    *((f"ankle_{s}", f"toe_{s}") for s in SIDES),
    (MID_HIP, MID_SHOULDER),
    *((MID_SHOULDER, f"shoulder_{s}") for s in SIDES),
    *((f"shoulder_{s}", f"elbow_{s}") for s in SIDES),
    *((f"elbow_{s}", f"wrist_{s}") for s in SIDES),
    *((f"wrist_{s}", f"hand_{s}") for s in SIDES),
)
"""Parent -> child pairs, parents first: the tree along which proportions are transferred."""
LEG_BONES = tuple((a, b) for a, b in BONES if a.startswith(("hip", "knee")))

FULLBODY_POINTS: dict[str, str] = {
    **{f"hip_{s}": f"femur_{s}" for s in SIDES},
    **{f"knee_{s}": f"tibia_{s}" for s in SIDES},
    **{f"ankle_{s}": f"talus_{s}" for s in SIDES},
    **{f"toe_{s}": f"toes_{s}" for s in SIDES},
    **{f"shoulder_{s}": f"humerus_{s}" for s in SIDES},
    **{f"elbow_{s}": f"ulna_{s}" for s in SIDES},
    **{f"wrist_{s}": f"lunate_{s}" for s in SIDES},
    **{f"hand_{s}": f"3proxph_{s}" for s in SIDES},
}
"""MyoFullBody body whose origin is each keypoint (joint centres; `3proxph` sits at the third
knuckle)."""
FULLBODY_SEGMENTS: dict[str, str] = {"pelvis": "pelvis", "torso": "thorax", "foot_l": "calcn_l", "foot_r": "calcn_r"}
FULLBODY_LANDMARKS: dict[str, str] = {
    "pelvis": "pelvis", "neck": "cervical_spine", "head": "head", "collar_l": "clavicle_l", "collar_r": "clavicle_r",
}
"""MyoFullBody bodies whose origins place the SMPL template skeleton's trunk joints (`amass`)."""
FULLBODY_AXES = np.array([[0.0, 1.0, 0.0], [-1.0, 0.0, 0.0], [0.0, 0.0, 1.0]])
"""MyoFullBody's canonical frame in its rest pose: forward -y, left +x, up +z (columns)."""


def midpoint(positions: dict[str, np.ndarray], name: str) -> np.ndarray:
    """A keypoint position, or the virtual `mid_hip` / `mid_shoulder` between the two sides."""
    if name in (MID_HIP, MID_SHOULDER):
        stem = name.removeprefix("mid_")
        return 0.5 * (positions[f"{stem}_l"] + positions[f"{stem}_r"])
    return positions[name]
