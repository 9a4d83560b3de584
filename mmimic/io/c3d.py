"""Reader for C3D motion-capture files (markers and force plates) through ezc3d.

Markers: POINT:LABELS, POINT:RATE and POINT:UNITS from the file; a point whose residual is
negative (the C3D convention for "not seen") is NaN. The vertical axis is POINT:Y_SCREEN
(the axis a viewer draws upwards: "+Z" in most Vicon files, "+Y" in some) unless `up` is given;
a file without it needs `up`.

Force plates: ezc3d turns each plate's analog channels into a force in the lab frame
(FORCE_PLATFORM:TYPE, CHANNEL, CAL_MATRIX, CORNERS); `read_force_plates` keeps it at the
analog rate, z up, with the sign that makes a foot's load positive (some systems store the
force on the plate, some the reaction: the sign is chosen from the data and said in the notes),
each plate's centre, and the file's gait events (EVENT:LABELS / CONTEXTS / TIMES) if any.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from mmimic.io.markers import (
    MarkerFileError,
    MarkerTrial,
    to_z_up,
    unique_labels,
    unit_scale,
)

__all__ = ["ForcePlates", "read_c3d", "read_force_plates"]

_AXES = {"+Y": "y", "Y": "y", "+Z": "z", "Z": "z"}


def _open(path: Path, force_plates: bool = False):
    import ezc3d

    if not path.is_file():
        raise MarkerFileError(path, "no such file")
    try:
        return ezc3d.c3d(str(path), extract_forceplat_data=force_plates)
    except (RuntimeError, OSError, ValueError, IndexError) as exc:  # what ezc3d raises for a file it cannot parse
        raise MarkerFileError(path, f"not a readable C3D file ({exc})") from None


def _parameter(path: Path, c3d, group: str, name: str):
    try:
        return c3d["parameters"][group][name]["value"]
    except KeyError:
        raise MarkerFileError(path, f"the C3D parameter {group}:{name} is missing") from None


def _up_axis(path: Path, c3d, up: str | None) -> tuple[str, str]:
    if up is not None:
        return up, f"{up} up (as requested)"
    screen = c3d["parameters"]["POINT"].get("Y_SCREEN", {}).get("value")
    axis = _AXES.get(str(screen[0]).strip().upper()) if screen else None
    if axis is None:
        raise MarkerFileError(path, f"POINT:Y_SCREEN is {screen!r}, not +Y or +Z: pass the vertical axis (--up y|z)")
    return axis, f"{axis} up (POINT:Y_SCREEN {screen[0]})"


def read_c3d(path: str | Path, up: str | None = None) -> MarkerTrial:
    """The markers of the C3D file `path` in metres, z up (module docstring)."""
    path = Path(path)
    c3d = _open(path)
    labels = unique_labels(path, list(_parameter(path, c3d, "POINT", "LABELS")))
    fps = float(np.asarray(_parameter(path, c3d, "POINT", "RATE")).ravel()[0])
    if not (np.isfinite(fps) and fps > 0):
        raise MarkerFileError(path, f"POINT:RATE must be positive, got {fps}")
    units = _parameter(path, c3d, "POINT", "UNITS")
    scale = unit_scale(path, units[0] if units else "", "POINT:UNITS")
    points = np.asarray(c3d["data"]["points"][:3], dtype=np.float64)  # (3, M, T)
    if points.shape[1] != len(labels):
        raise MarkerFileError(path, f"POINT:LABELS names {len(labels)} points but the data has {points.shape[1]}")
    residuals = np.asarray(c3d["data"]["meta_points"]["residuals"])[0]  # (M, T)
    points[:, residuals < 0] = np.nan
    axis, how = _up_axis(path, c3d, up)
    positions = to_z_up(points.transpose(2, 1, 0) * scale, axis)
    first = int(c3d["header"]["points"]["first_frame"])
    notes = [f"{path.name}: {positions.shape[0]} frames at {fps:g} Hz, units {units[0]}, {how}"]
    return MarkerTrial(path, fps, labels, positions, first / fps, notes)


@dataclass
class ForcePlates:
    """Force plates of one trial: `force` (P, T, 3) N in the lab's z-up frame, signed so that a
    foot's load is upward (positive vertical), at `rate` Hz from `start_time` s; `centres`
    (P, 3) m, z up, of each plate's top; `events` maps "<context> <label>" (e.g. "Left Foot
    Strike") to times (s)."""

    path: Path
    rate: float
    force: np.ndarray
    centres: np.ndarray
    start_time: float = 0.0
    events: dict[str, np.ndarray] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    @property
    def vertical(self) -> np.ndarray:
        """(P, T) vertical force of each plate (N)."""
        return self.force[..., 2]

    @property
    def time(self) -> np.ndarray:
        return self.start_time + np.arange(self.force.shape[1]) / self.rate


def _events(path: Path, c3d) -> dict[str, np.ndarray]:
    group = c3d["parameters"].get("EVENT")
    if not group or "LABELS" not in group or not len(group["LABELS"]["value"]):
        return {}
    labels = list(group["LABELS"]["value"])
    contexts = list(group.get("CONTEXTS", {}).get("value", [""] * len(labels)))
    times = np.asarray(_parameter(path, c3d, "EVENT", "TIMES"), dtype=np.float64).reshape(2, -1)
    events: dict[str, list[float]] = {}
    for i, label in enumerate(labels):
        key = f"{contexts[i].strip() if i < len(contexts) else ''} {label.strip()}".strip()
        events.setdefault(key, []).append(float(times[0, i] * 60.0 + times[1, i]))  # (minutes, seconds)
    return {k: np.sort(np.array(v)) for k, v in events.items()}


def read_force_plates(path: str | Path, up: str | None = None) -> ForcePlates:
    """The force plates of the C3D file `path`: vertical force per plate and the events."""
    path = Path(path)
    c3d = _open(path, force_plates=True)
    platforms = c3d["data"].get("platform", [])
    if not platforms:
        raise MarkerFileError(path, "no force plates (FORCE_PLATFORM:USED is 0 or the group is missing)")
    axis, how = _up_axis(path, c3d, up)
    rate = float(np.asarray(_parameter(path, c3d, "ANALOG", "RATE")).ravel()[0])
    forces, centres, notes = [], [], []
    for number, plate in enumerate(platforms, start=1):
        unit, length = str(plate["unit_force"]).strip(), str(plate["unit_position"]).strip()
        if unit not in ("N", "n"):
            raise MarkerFileError(path, f"force plate {number}: force unit {unit!r}; only N is read")
        force = to_z_up(np.asarray(plate["force"], dtype=np.float64).T, axis)
        sign = 1.0 if force[:, 2].max() >= -force[:, 2].min() else -1.0
        forces.append(sign * force)
        centres.append(to_z_up(np.asarray(plate["corners"], dtype=np.float64).mean(axis=1), axis)
                       * unit_scale(path, length, f"force plate {number} position unit"))
        notes.append(f"force plate {number}: {'the' if sign > 0 else 'minus the'} vertical force the file gives ({how}), "
                     f"peak {float((sign * force[:, 2]).max()):.0f} N")
    first = int(c3d["header"]["points"]["first_frame"]) / float(np.asarray(_parameter(path, c3d, "POINT", "RATE")).ravel()[0])
    events = _events(path, c3d)
    if not events:
        notes.append(f"{path.name}: no gait events in the file")
    return ForcePlates(path, rate, np.stack(forces), np.stack(centres), first, events, notes)
