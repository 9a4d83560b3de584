"""Marker sets: where each lab marker sits on the body, from an OpenSim model or a marker map.

A `MarkerSet` places every marker on a MyoFullBody body at a location in that body's frame,
in the *generic* body's proportions (MyoFullBody's bodies carry the Rajagopal model's frames:
x forward, y up, z right in the rest pose), or leaves the location to be found at registration
(`location is None`: a tracking marker such as a thigh-cluster marker).

* `read_osim_markers`: an OpenSim model's ``<MarkerSet>`` (OpenSim 4 ``socket_parent_frame``
  or OpenSim 3 ``body``). Bodies are matched by name (Rajagopal, gait2392 and Hamner share
  pelvis, femur_r, tibia_r, talus_r, calcn_r, toes_r, patella_r, torso, humerus_r, ulna_r,
  radius_r; their ``hand_r`` is MyoFullBody's ``lunate_r``). A model scaled to its subject
  has its markers where the subject's segments put them: each body's scale, the length of the
  joint offsets to its children over MyoFullBody's (the JointSet's parent-frame translations,
  or OpenSim 3's ``location_in_parent``), turns them into generic locations.
* `read_marker_map`: mmimic's own TOML map for lab marker sets (``models/markers/*.toml``)::

      [markers.LASI]
      body = "pelvis"
      location = [0.014, 0.033, -0.136]   # m, in the body's frame (omit: found at registration)
      [markers.LHJC]
      joint_centre = "femur_l"           # the origin of the body: the joint that moves it

* `read_ik_tasks`: the weights of an OpenSim IK task set (``<IKMarkerTask>`` apply / weight).
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path

import mujoco
import numpy as np

from mmimic.io.opensim import COORDINATE_TO_JOINT, JointMapping
from mmimic.retarget.source import RetargetError, read_toml

BODY_ALIASES = {"hand_r": "lunate_r", "hand_l": "lunate_l"}
"""OpenSim body names whose MyoFullBody body has another name."""


@dataclass(frozen=True)
class Marker:
    """One marker: MyoFullBody body, generic location in its frame (None: found at
    registration) and whether registration keeps it where it is (`fixed`)."""

    label: str
    body: str
    location: np.ndarray | None
    fixed: bool = True


@dataclass
class MarkerSet:
    """Markers by label, read from `path`; `scales` the source model's body scales over
    MyoFullBody's where it has them (registration starts there, else at `typical_scale`);
    `notes` say what was assumed."""

    path: Path
    markers: dict[str, Marker]
    notes: list[str] = field(default_factory=list)
    scales: dict[str, float] = field(default_factory=dict)
    typical_scale: float = 1.0
    held: dict[str, float] = field(default_factory=dict)
    """MyoFullBody joints the source model does not move (welded or locked), at their values (rad)."""


def _body(model: mujoco.MjModel, path: Path, label: str, name: str) -> str:
    name = BODY_ALIASES.get(name, name)
    if mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_BODY, name) < 0:
        raise RetargetError(path, f"marker {label!r}: body {name!r} is not a MyoFullBody body, so the marker "
                            "cannot be placed (map it in a marker-map TOML, or leave it out)")
    return name


def _vector(path: Path, text: str | None, what: str) -> np.ndarray:
    try:
        values = np.array([float(v) for v in (text or "").split()])
    except ValueError:
        values = np.zeros(0)
    if values.shape != (3,) or not np.all(np.isfinite(values)):
        raise RetargetError(path, f"{what}: expected three numbers, got {text!r}")
    return values


def _parse_xml(path: Path) -> ET.Element:
    if not path.is_file():
        raise RetargetError(path, "no such file")
    try:
        return ET.parse(path).getroot()
    except ET.ParseError as exc:
        raise RetargetError(path, f"not readable XML ({exc})") from None


def _osim_body_scales(root: ET.Element, model: mujoco.MjModel, path: Path) -> dict[str, float]:
    """Each OpenSim body's scale over MyoFullBody's: its child-joint offsets' lengths over those
    of MyoFullBody's same-named parent-child pairs (module docstring)."""
    offsets: list[tuple[str, str, np.ndarray]] = []  # (parent body, child body, child origin in parent)
    for joints in root.iter("JointSet"):  # OpenSim 4
        for joint in joints.find("objects") or []:
            frames = {f.get("name"): f for f in joint.iter("PhysicalOffsetFrame")}
            parent, child = frames.get(joint.findtext("socket_parent_frame")), frames.get(joint.findtext("socket_child_frame"))
            if parent is None or child is None:
                continue
            p_body = (parent.findtext("socket_parent") or "").rsplit("/", 1)[-1]
            c_body = (child.findtext("socket_parent") or "").rsplit("/", 1)[-1]
            vector = _vector(path, parent.findtext("translation"), f"joint {joint.get('name')!r} translation")
            offsets.append((p_body, c_body, vector - _vector(path, child.findtext("translation"), "translation")))
    for body in root.iter("Body"):  # OpenSim 3: the joint sits in its child body
        for joint in body.iter("Joint"):
            for kind in joint:
                parent, location = kind.findtext("parent_body"), kind.findtext("location_in_parent")
                if parent and location:
                    offsets.append((parent, body.get("name", ""), _vector(path, location, "location_in_parent")))
    ratios: dict[str, list[float]] = {}
    for parent, child, vector in offsets:
        p, c = BODY_ALIASES.get(parent, parent), BODY_ALIASES.get(child, child)
        pid, cid = (mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_BODY, n) for n in (p, c))
        if pid < 0 or cid < 0 or model.body_parentid[cid] != pid or np.linalg.norm(model.body_pos[cid]) < 0.05:
            continue
        ratios.setdefault(parent, []).append(float(np.linalg.norm(vector) / np.linalg.norm(model.body_pos[cid])))
    return {body: float(np.mean(r)) for body, r in ratios.items()}


WELDED_COORDINATES = {f"{joint}_{side}": f"{joint}_angle_{side}" for joint in ("subtalar", "mtp") for side in ("l", "r")}
"""OpenSim joints a model may weld (Rajagopal's subtalar) -> the MyoFullBody joint they would move."""


def _held_joints(root: ET.Element, model: mujoco.MjModel) -> tuple[dict[str, float], list[str]]:
    """MyoFullBody joints the OpenSim model welds (`WELDED_COORDINATES`, at 0) or whose coordinate it
    locks (at its default value, rad, mapped by `COORDINATE_TO_JOINT`), and the locked coordinates
    the body has no joint for."""
    held = {WELDED_COORDINATES[j.get("name", "")]: 0.0 for j in root.iter("WeldJoint") if j.get("name") in WELDED_COORDINATES}
    unmatched = []
    for coordinate in root.iter("Coordinate"):
        if (coordinate.findtext("locked") or "").strip().lower() == "true":
            name = coordinate.get("name", "")
            mapping = COORDINATE_TO_JOINT.get(name, JointMapping(name, 1.0))
            held[mapping.joint] = mapping.scale * float(coordinate.findtext("default_value") or 0.0)
            if mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_JOINT, mapping.joint) < 0:
                unmatched.append(name)
    return {j: v for j, v in held.items() if mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_JOINT, j) >= 0}, unmatched


def read_osim_markers(path: str | Path, model: mujoco.MjModel) -> MarkerSet:
    """The ``<MarkerSet>`` of the OpenSim model `path`, placed on `model`'s bodies."""
    path = Path(path)
    root = _parse_xml(path)
    elements = [m for s in root.iter("MarkerSet") for m in s.iter("Marker")]
    if not elements:
        raise RetargetError(path, "the model has no <MarkerSet> with markers; give a model with markers or a "
                            "marker map (--markers MAP.toml)")
    scales = _osim_body_scales(root, model, path)
    typical = float(np.median(list(scales.values()))) if scales else 1.0
    markers, unscaled = {}, set()
    for element in elements:
        label = element.get("name", "")
        frame = element.findtext("socket_parent_frame") or element.findtext("body") or ""
        source_body = frame.rsplit("/", 1)[-1]
        if not source_body:
            raise RetargetError(path, f"marker {label!r} names no body (socket_parent_frame or body)")
        body = _body(model, path, label, source_body)
        if source_body not in scales:
            unscaled.add(source_body)
        location = _vector(path, element.findtext("location"), f"marker {label!r} location") / scales.get(source_body, typical)
        fixed = (element.findtext("fixed") or "true").strip().lower() != "false"
        markers[label] = Marker(label, body, location, fixed)
    notes = [f"{path.name}: {len(markers)} markers; body scales of the model over MyoFullBody "
             + ", ".join(f"{b} {s:.3f}" for b, s in sorted(scales.items()))]
    if unscaled:
        notes.append(f"{path.name}: bodies {', '.join(sorted(unscaled))} have no joint offset to measure; "
                     f"their markers are taken at the typical scale {typical:.3f}")
    held, unmatched = _held_joints(root, model)
    if held:
        notes.append(f"{path.name}: the model welds or locks {', '.join(held)}; held there")
    if unmatched:
        notes.append(f"{path.name}: locked coordinates {', '.join(unmatched)} have no joint in the body; not held")
    return MarkerSet(path, markers, notes, {BODY_ALIASES.get(b, b): s for b, s in scales.items()}, typical, held)


def read_marker_map(path: str | Path, model: mujoco.MjModel) -> MarkerSet:
    """A marker-map TOML (module docstring) placed on `model`'s bodies."""
    path = Path(path)
    table = read_toml(path, "marker map").get("markers")
    if not isinstance(table, dict) or not table:
        raise RetargetError(path, "no [markers.<label>] tables: the marker map is empty")
    markers = {}
    for label, entry in table.items():
        if not isinstance(entry, dict):
            raise RetargetError(path, f"markers.{label}: expected a table with body/location or joint_centre")
        unknown = set(entry) - {"body", "location", "joint_centre", "fixed"}
        if unknown:
            raise RetargetError(path, f"markers.{label}: unknown field(s) {', '.join(sorted(unknown))}")
        if ("body" in entry) == ("joint_centre" in entry):
            raise RetargetError(path, f"markers.{label}: give either body (with an optional location) or joint_centre")
        if "joint_centre" in entry:
            body, location = _body(model, path, label, str(entry["joint_centre"])), np.zeros(3)
        else:
            body = _body(model, path, label, str(entry["body"]))
            location = entry.get("location")
            if location is not None:
                location = _vector(path, " ".join(str(v) for v in location), f"markers.{label}.location")
        fixed = bool(entry.get("fixed", location is not None))
        markers[label] = Marker(label, body, location, fixed)
    return MarkerSet(path, markers, [f"{path.name}: {len(markers)} markers"])


def read_marker_set(path: str | Path, model: mujoco.MjModel) -> MarkerSet:
    """An OpenSim model (.osim) or a marker map (.toml), by suffix."""
    path = Path(path)
    if path.suffix.lower() == ".osim":
        return read_osim_markers(path, model)
    if path.suffix.lower() == ".toml":
        return read_marker_map(path, model)
    raise RetargetError(path, "a marker set is an OpenSim model (.osim) or a marker map (.toml)")


def read_ik_tasks(path: str | Path) -> tuple[dict[str, float], list[str]]:
    """Marker weights of an OpenSim IK task set (a marker not applied weighs 0), and notes."""
    path = Path(path)
    root = _parse_xml(path)
    weights, notes = {}, []
    for task in root.iter("IKMarkerTask"):
        name = task.get("name", "")
        apply = (task.findtext("apply") or "true").strip().lower() != "false"
        try:
            weight = float(task.findtext("weight") or 0.0)
        except ValueError:
            raise RetargetError(path, f"IKMarkerTask {name!r}: weight {task.findtext('weight')!r} is not a number") from None
        if not (np.isfinite(weight) and weight >= 0):
            raise RetargetError(path, f"IKMarkerTask {name!r}: weight must be zero or positive, got {weight}")
        weights[name] = weight if apply else 0.0
    if not weights:
        raise RetargetError(path, "no <IKMarkerTask> in the file (an OpenSim IK task set)")
    coordinates = [t.get("name", "") for t in root.iter("IKCoordinateTask")]
    if coordinates:
        notes.append(f"{path.name}: coordinate tasks ({', '.join(coordinates)}) are not used")
    return weights, notes
