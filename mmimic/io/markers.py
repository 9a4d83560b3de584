"""Marker trajectories as the TRC and C3D readers return them (`MarkerTrial`).

Positions are in metres, z up, one row per frame; a marker missing in a frame is NaN there.
Lab files come y-up (OpenSim's TRC convention: x forward, y up, z right) or z-up (most C3D
files, their POINT:Y_SCREEN says so); `to_z_up` turns y-up coordinates into z-up ones by a
+90 degree rotation about x, so x stays forward, y-up's up becomes z and its right becomes -y.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

UNITS = {"mm": 1e-3, "cm": 1e-2, "m": 1.0, "meters": 1.0, "millimeters": 1e-3}
"""Metres per length unit as TRC headers and C3D POINT:UNITS write them (lower case)."""
UP_AXES = ("y", "z")


class MarkerFileError(ValueError):
    """A marker file that cannot be read; the message names the file and the problem."""

    def __init__(self, path: str | Path, problem: str) -> None:
        super().__init__(f"{path}: {problem}")


@dataclass
class MarkerTrial:
    """Marker trajectories of one trial: `positions` (T, M, 3) m, z up, NaN where a marker is
    missing; `labels` (M,) in file order; `start_time` s of the first frame; `notes` say how
    units and axes were decided."""

    path: Path
    fps: float
    labels: list[str]
    positions: np.ndarray
    start_time: float = 0.0
    notes: list[str] = field(default_factory=list)

    @property
    def num_frames(self) -> int:
        return int(self.positions.shape[0])

    def marker(self, label: str) -> np.ndarray:
        """(T, 3) trajectory of `label`."""
        return self.positions[:, self.labels.index(label)]


def unit_scale(path: Path, unit: str, field_name: str) -> float:
    """Metres per `unit` (a TRC Units / C3D POINT:UNITS value); an error naming the field otherwise."""
    key = unit.strip().lower()
    if key not in UNITS:
        raise MarkerFileError(path, f"{field_name} {unit!r} is not a length unit mmimic knows ({', '.join(UNITS)})")
    return UNITS[key]


def to_z_up(positions: np.ndarray, up: str) -> np.ndarray:
    """`positions` (..., 3) with `up` ("y" or "z") as the vertical axis, in z-up coordinates."""
    if up == "z":
        return positions
    if up == "y":
        return np.stack([positions[..., 0], -positions[..., 2], positions[..., 1]], axis=-1)
    raise ValueError(f"up axis must be one of {', '.join(UP_AXES)}, got {up!r}")


def unique_labels(path: Path, labels: list[str]) -> list[str]:
    """`labels` stripped; an error naming duplicates or empty labels."""
    labels = [label.strip() for label in labels]
    if any(not label for label in labels):
        raise MarkerFileError(path, f"an empty marker label (position {next(i for i, x in enumerate(labels) if not x) + 1})")
    seen, repeated = set(), []
    for label in labels:
        if label in seen:
            repeated.append(label)
        seen.add(label)
    if repeated:
        raise MarkerFileError(path, f"marker label(s) {', '.join(sorted(set(repeated)))} appear more than once")
    return labels
