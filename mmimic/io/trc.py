"""Reader for TRC marker files (``.trc``, the text format of OpenSim and many motion-capture systems).

A TRC file is tab separated::

    PathFileType  4  (X/Y/Z)  walk.trc
    DataRate  CameraRate  NumFrames  NumMarkers  Units  OrigDataRate ...
    100       100         238        41          mm     100          ...
    Frame#  Time  R.ASIS  <tab>  <tab>  L.ASIS ...
            X1    Y1      Z1     X2 ...
    1       0.00  -652.6  1529.5 -94.5  ...

Rate and units come from the header (`DataRate`, `Units`); a marker missing in a frame is an
empty field (or NaN) and is read as NaN. TRC files carry no axis field; OpenSim writes them
y up, the default here, and ``up="z"`` reads a z-up file.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from mmimic.io.markers import (
    MarkerFileError,
    MarkerTrial,
    to_z_up,
    unique_labels,
    unit_scale,
)

__all__ = ["read_trc"]


def _header(path: Path, lines: list[str]) -> dict[str, str]:
    if len(lines) < 5 or not lines[0].startswith("PathFileType"):
        raise MarkerFileError(path, "not a TRC file (expected a first line 'PathFileType ...' and 5 header lines)")
    keys, values = lines[1].split(), lines[2].split()  # fields may be separated by several tabs
    header = dict(zip(keys, values))
    for key in ("DataRate", "NumFrames", "NumMarkers", "Units"):
        if key not in header:
            raise MarkerFileError(path, f"the header has no {key} (line 2 names the fields, line 3 their values)")
    return header


def read_trc(path: str | Path, up: str = "y") -> MarkerTrial:
    """The markers of the TRC file `path` in metres, z up (`up`: the file's vertical axis)."""
    path = Path(path)
    if not path.is_file():
        raise MarkerFileError(path, "no such file")
    lines = path.read_text(errors="replace").splitlines()
    header = _header(path, lines)
    try:
        fps, num_markers, num_frames = float(header["DataRate"]), int(header["NumMarkers"]), int(header["NumFrames"])
    except ValueError:
        raise MarkerFileError(path, f"DataRate {header['DataRate']!r}, NumMarkers {header['NumMarkers']!r} and "
                              f"NumFrames {header['NumFrames']!r} must be numbers (line 3)") from None
    if not (np.isfinite(fps) and fps > 0):
        raise MarkerFileError(path, f"DataRate must be positive, got {fps}")
    scale = unit_scale(path, header["Units"], "Units")
    names = lines[3].split("\t")
    if len(names) < 2 or names[0].strip() != "Frame#" or names[1].strip() != "Time":
        raise MarkerFileError(path, "line 4 must start with the columns Frame# and Time")
    labels = unique_labels(path, [n for n in names[2:] if n.strip()])
    if len(labels) != num_markers:
        raise MarkerFileError(path, f"NumMarkers is {num_markers} but line 4 names {len(labels)} markers")
    width = 2 + 3 * num_markers
    rows, times = [], []
    for number, line in enumerate(lines[5:], start=6):
        if not line.strip():
            continue
        fields = line.split("\t")
        if len(fields) > width and any(f.strip() for f in fields[width:]):
            raise MarkerFileError(path, f"line {number}: {len(fields)} fields, more than the {width} of {num_markers} markers")
        fields = (fields + [""] * width)[:width]
        try:
            values = [float(f) if f.strip() else np.nan for f in fields[1:]]
        except ValueError as exc:
            raise MarkerFileError(path, f"line {number}: not a number ({exc})") from None
        times.append(values[0])
        rows.append(values[1:])
    if len(rows) < 2:
        raise MarkerFileError(path, f"{len(rows)} frame(s) of data; a trial needs at least 2")
    positions = np.asarray(rows, dtype=np.float64).reshape(len(rows), num_markers, 3) * scale
    notes = [f"{path.name}: {len(rows)} frames at {fps:g} Hz, units {header['Units']}, {up} up"]
    if num_frames != len(rows):
        notes.append(f"{path.name}: NumFrames says {header['NumFrames']}, the file has {len(rows)} rows; all rows read")
    start = times[0] if np.isfinite(times[0]) else 0.0
    return MarkerTrial(path, fps, labels, to_z_up(positions, up), float(start), notes)
