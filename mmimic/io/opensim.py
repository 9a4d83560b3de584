"""Reader for OpenSim text tables (``.mot`` / ``.sto``); :data:`COORDINATE_TO_JOINT` maps their
Rajagopal coordinates onto MyoFullBody joints.

An OpenSim table is a text file with a header, a line ``endheader``, a line of column
labels and rows of numbers::

    grf_walk                 <- table name (first header line without '=')
    version=1
    nRows=4778               <- number of data rows
    nColumns=19              <- number of columns, the time column included
    inDegrees=no             <- whether rotational coordinates are in degrees
    endheader
    time  ground_force_r_vx  ground_force_r_vy ...
    0     0                  0                 ...

Columns are separated by tabs or other whitespace. The first column is time. Labels of the
form ``/jointset/<joint>/<coord>/value`` (OpenSim 4 state tables) are reduced to the
coordinate name ``<coord>``; all other labels are kept as written.

Everything that does not fit is refused with :class:`OpenSimFormatError`, a ``ValueError``
whose message starts with the file's path and says what was expected.

Units: ``inDegrees=yes`` applies only to rotational coordinates. OpenSim leaves
translations (``*_tx``, ``*_ty``, ``*_tz``), coupled coordinates (Rajagopal's
``knee_angle_r_beta``, stored in radians even in a degrees file) and non-coordinate columns
(forces, moments, centres of pressure, EMG) as they are; :meth:`OpenSimTable.radians`
follows the same rule (:func:`is_rotational`).

Older files (SIMM headers, OpenSim 1.x/2.x) often lack ``inDegrees`` although their angles
are in degrees. Without the line the units are decided from the file, with an
:class:`OpenSimUnitsWarning` saying why: a header comment ("Angles are in degrees."), or a
joint angle beyond half a turn, which radians cannot have (no human joint turns more than
pi rad; the joints are the body models' hip, knee, ankle, subtalar, mtp, lumbar, arm, elbow,
pro_sup and wrist coordinates; the pelvis' rotations, which can wind, are left out). An
``inDegrees=no`` table with such values is a contradiction. Where nothing decides, or the
file contradicts itself, the table's angles stay unreadable (``in_degrees is None``;
:meth:`OpenSimTable.radians` refuses them, naming the ``angles`` argument and the runners'
``--degrees`` / ``--radians`` flags) until the caller says which.

Time: written times are often rounded (60 Hz written with 3 decimals steps 0.016/0.017 s).
The rows count as uniformly sampled when every time lies within that written precision of
the uniform grid through the first and last time; :attr:`OpenSimTable.rate` is the grid's.
"""

from __future__ import annotations

import dataclasses
import math
import re
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

__all__ = [
    "COORDINATE_TO_JOINT",
    "JointMapping",
    "OpenSimFormatError",
    "OpenSimHeaderWarning",
    "OpenSimTable",
    "OpenSimUnitsWarning",
    "coordinate_name",
    "is_rotational",
    "read_opensim_table",
]


class OpenSimFormatError(ValueError):
    """An OpenSim table that cannot be read, or a request it cannot satisfy."""


class OpenSimHeaderWarning(UserWarning):
    """A header count (``nRows`` / ``nColumns``) that disagrees with the data, or a repeated
    column label, read with ``strict=False``."""


class OpenSimUnitsWarning(UserWarning):
    """A table without ``inDegrees`` whose angle units were decided from the file."""


_JOINTSET_VALUE = re.compile(r"^/jointset/[^/]+/([^/]+)/value$")
# Column names that are not rotational coordinates: translations, coupled coordinates, and
# force-plate / dynamics / muscle-signal columns.
_TRANSLATION = re.compile(r"_t[xyz]$")
_COUPLED = re.compile(r"_beta$")
_NOT_A_COORDINATE = re.compile(
    r"force|moment|torque|_p[xyz]$|_v[xyz]$|emg|activation|excitation", re.IGNORECASE
)
# Tolerance on a time's distance from the uniform grid, relative to the step, for a table
# written at full precision to count as uniformly sampled.
_UNIFORM_RTOL = 1e-3
# Rounded times: the written precision counts only while it is this small against the step
# (60 Hz at 3 decimals: 0.06); coarser, a rounded time could hide any unevenness.
_ROUNDING_FRACTION = 0.1
_MAX_DECIMALS = 9
# Header comments about the angle units, as OpenSim 1.x/2.x wrote them ("Angles are in degrees.").
_DEGREES_COMMENT = re.compile(r"\bangles?\b.*\bin degrees\b", re.IGNORECASE)
_RADIANS_COMMENT = re.compile(r"\bangles?\b.*\bin radians\b", re.IGNORECASE)
# Anatomical joint coordinates of the OpenSim body models (Rajagopal, gait2392/2354, Hamner):
# none turns past half a turn. The root's rotations (pelvis_*) can wind, so are not among them.
_JOINT_COORDINATE = re.compile(r"^(hip|knee|ankle|subtalar|mtp|lumbar|arm|elbow|pro_sup|wrist)_")
ANGLE_CHOICES = ("degrees", "radians")
"""Values of the ``angles`` argument of :func:`read_opensim_table`."""


def coordinate_name(label: str) -> str:
    """``/jointset/<joint>/<coord>/value`` -> ``<coord>``; any other label unchanged."""
    match = _JOINTSET_VALUE.match(label)
    return match.group(1) if match else label


def is_rotational(label: str) -> bool:
    """Whether a column holds a rotational coordinate, i.e. one that ``inDegrees=yes``
    puts in degrees.

    Not rotational: ``time``; translations (``*_tx``, ``*_ty``, ``*_tz``); coupled
    coordinates (``*_beta``: OpenSim writes them unconverted); forces, moments, torques,
    centres of pressure (``*_px``/``*_py``/``*_pz``, ``*_vx``/``*_vy``/``*_vz``) and
    EMG / activation / excitation columns. Everything else is taken to be an angle.
    """
    name = coordinate_name(label)
    if name.lower() == "time":
        return False
    if _TRANSLATION.search(name) or _COUPLED.search(name):
        return False
    return _NOT_A_COORDINATE.search(name) is None


@dataclass(frozen=True, eq=False)
class OpenSimTable:
    """One OpenSim table: ``data[i, j]`` is column ``labels[j]`` at ``time[i]``.

    ``time`` (T,) and ``data`` (T, C) are float64; ``labels`` excludes the time column.
    ``in_degrees`` is whether the angles are in degrees: the header's ``inDegrees``, the
    caller's choice, or decided from the file; None where that is undecided or contradicted
    (``angles_note`` says why, and :meth:`radians` refuses angles). ``header`` holds all
    ``key=value`` header entries as strings. ``path`` is the file read (None for tables
    built in memory). ``time_resolution`` is the precision the times were written with (s;
    0 for full precision) and ``lines`` the file line of each row (None once resampled).
    """

    name: str
    time: np.ndarray
    labels: list[str]
    data: np.ndarray
    in_degrees: bool | None
    path: Path | None = None
    header: dict[str, str] = field(default_factory=dict)
    angles_note: str = ""
    time_resolution: float = 0.0
    lines: np.ndarray | None = None

    def __post_init__(self) -> None:
        time = np.asarray(self.time, dtype=np.float64)
        data = np.asarray(self.data, dtype=np.float64)
        if time.ndim != 1:
            raise OpenSimFormatError(f"{self._where()}: time must be 1-D, got shape {time.shape}")
        if data.ndim != 2 or data.shape != (time.shape[0], len(self.labels)):
            raise OpenSimFormatError(
                f"{self._where()}: data must have shape (len(time), len(labels)) = "
                f"({time.shape[0]}, {len(self.labels)}), got {data.shape}"
            )
        object.__setattr__(self, "time", time)
        object.__setattr__(self, "data", data)
        object.__setattr__(self, "labels", list(self.labels))

    # ------------------------------------------------------------------ access

    def _where(self) -> str:
        return str(self.path) if self.path is not None else f"table '{self.name}'"

    def __contains__(self, name: object) -> bool:
        return name in self.labels

    def index(self, name: str) -> int:
        """Column index of ``name``; :class:`OpenSimFormatError` listing the available
        columns if there is none."""
        try:
            return self.labels.index(name)
        except ValueError:
            raise OpenSimFormatError(
                f"{self._where()}: no column '{name}'; available columns: "
                + ", ".join(self.labels)
            ) from None

    def column(self, name: str) -> np.ndarray:
        """A copy of column ``name`` (T,), in the file's units."""
        return self.data[:, self.index(name)].copy()

    def radians(self, name: str) -> np.ndarray:
        """Column ``name`` in SI units: degrees converted to radians when the table is in
        degrees and the column is a rotational coordinate (:func:`is_rotational`); every
        other column (translations in m, forces, ...) is returned unchanged. Angles of a
        table whose units are undecided are refused (:meth:`check_angles`)."""
        values = self.column(name)
        if not is_rotational(name):
            return values
        self.check_angles()
        return np.deg2rad(values) if self.in_degrees else values

    def check_angles(self) -> None:
        """:class:`OpenSimFormatError` naming the ways to settle it when the table's angle
        units are undecided or contradicted (``in_degrees is None``)."""
        if self.in_degrees is None:
            raise OpenSimFormatError(
                f"{self._where()}: angle units unknown: {self.angles_note}; say which with "
                f"--degrees or --radians (angles='degrees' or 'radians' in Python)"
            )

    def nonfinite(self, names: list[str]) -> str | None:
        """A sentence locating every NaN/inf cell of columns ``names`` (per row: file line,
        time and columns, the first ten rows), or None when they are all finite."""
        columns = [self.index(name) for name in names]
        bad = ~np.isfinite(self.data[:, columns])
        rows = np.flatnonzero(bad.any(axis=1))
        if rows.size == 0:
            return None
        described = []
        for r in rows[:10]:
            cells = ", ".join(f"{names[c]}={self.data[r, columns[c]]}" for c in np.flatnonzero(bad[r]))
            where = f"line {self.lines[r]}" if self.lines is not None else f"row {r}"
            described.append(f"{where} (t={self.time[r]:.6g} s): {cells}")
        more = f"; and {rows.size - 10} more row(s)" if rows.size > 10 else ""
        return (
            f"{self._where()}: {int(bad.sum())} NaN/inf value(s) in {rows.size} row(s): "
            + "; ".join(described) + more
        )

    # ------------------------------------------------------------------ sampling

    @property
    def rate(self) -> float:
        """Sampling rate in Hz: (rows - 1) / span. :class:`OpenSimFormatError` if the table has
        fewer than two rows or is not uniformly sampled: a time farther from the uniform grid
        through the first and last time than 0.1 % of the step or, for rounded times (see
        ``time_resolution``), than the precision they were written with."""
        count = self.time.shape[0]
        if count < 2:
            raise OpenSimFormatError(f"{self._where()}: a sampling rate needs at least 2 rows")
        step = (self.time[-1] - self.time[0]) / (count - 1)
        rounding = self.time_resolution if self.time_resolution <= _ROUNDING_FRACTION * step else 0.0
        allowed = max(_UNIFORM_RTOL * step, rounding * (1.0 + 1e-6))
        offsets = np.abs(self.time - (self.time[0] + step * np.arange(count)))
        if float(offsets.max()) > allowed:
            steps = np.diff(self.time)
            worst = int(np.argmax(np.abs(steps - step)))
            precision = f" (times written to {rounding:g} s)" if rounding else ""
            raise OpenSimFormatError(
                f"{self._where()}: time is not uniformly sampled{precision}: mean step {step:.6g} s, "
                f"but step {steps[worst]:.6g} s between t={self.time[worst]:.6g} and "
                f"t={self.time[worst + 1]:.6g}"
            )
        return 1.0 / step

    def at_rate(self, fps: float) -> OpenSimTable:
        """The table resampled to ``fps`` (linear interpolation) on its uniform time base
        (row i at ``time[0] + i / rate``, so rounded times do not jitter the samples), from
        the first time over the whole span: nothing is extrapolated."""
        if not (math.isfinite(fps) and fps > 0):
            raise OpenSimFormatError(f"{self._where()}: the rate to resample to must be positive, got {fps}")
        rate = self.rate
        count = self.time.shape[0]
        source = np.arange(count) / rate
        target = np.arange(math.floor((count - 1) * fps / rate + 1e-9) + 1) / fps
        data = np.stack([np.interp(target, source, self.data[:, j]) for j in range(self.data.shape[1])], axis=1)
        return dataclasses.replace(self, time=self.time[0] + target, data=data.reshape(len(target), -1),
                                   time_resolution=0.0, lines=None)

    def resample(self, new_time: np.ndarray) -> OpenSimTable:
        """A new table with every column linearly interpolated at ``new_time``.

        ``new_time`` must be 1-D, finite and inside ``[time[0], time[-1]]`` (up to 1e-9 s):
        nothing is extrapolated.
        """
        new_time = np.asarray(new_time, dtype=np.float64)
        if new_time.ndim != 1 or new_time.shape[0] == 0:
            raise OpenSimFormatError(
                f"{self._where()}: new_time must be a non-empty 1-D array, got shape "
                f"{new_time.shape}"
            )
        if not np.all(np.isfinite(new_time)):
            raise OpenSimFormatError(f"{self._where()}: new_time contains NaN or inf")
        t0, t1 = self.time[0], self.time[-1]
        eps = 1e-9
        if new_time.min() < t0 - eps or new_time.max() > t1 + eps:
            raise OpenSimFormatError(
                f"{self._where()}: new_time spans [{new_time.min():.6g}, {new_time.max():.6g}] s, "
                f"outside the table's [{t0:.6g}, {t1:.6g}] s; resample does not extrapolate"
            )
        query = np.clip(new_time, t0, t1)  # only removes the <= 1e-9 s rounding excess
        data = np.empty((query.shape[0], self.data.shape[1]), dtype=np.float64)
        for j in range(self.data.shape[1]):
            data[:, j] = np.interp(query, self.time, self.data[:, j])
        return dataclasses.replace(self, time=new_time.copy(), data=data, time_resolution=0.0, lines=None)


# ---------------------------------------------------------------------- reading


def _parse_bool(path: Path, key: str, value: str) -> bool:
    lowered = value.strip().lower()
    if lowered in ("yes", "true", "1"):
        return True
    if lowered in ("no", "false", "0"):
        return False
    raise OpenSimFormatError(f"{path}: header '{key}={value}': expected yes or no")


def _parse_count(path: Path, key: str, value: str) -> int:
    try:
        count = int(value.strip())
    except ValueError:
        raise OpenSimFormatError(
            f"{path}: header '{key}={value}': expected a non-negative integer"
        ) from None
    if count < 0:
        raise OpenSimFormatError(f"{path}: header '{key}={value}': expected a non-negative integer")
    return count


def _split_labels(line: str) -> list[str]:
    # OpenSim separates labels with tabs; a label could then hold a space. Files written
    # by other tools use runs of spaces.
    parts = line.strip().split("\t") if "\t" in line else line.split()
    return [part.strip() for part in parts]


def _time_resolution(time: np.ndarray) -> float:
    """The precision the times were written with: 10**-d for the fewest decimals d that
    hold every time (0.0 when more than ``_MAX_DECIMALS`` are needed)."""
    for decimals in range(_MAX_DECIMALS + 1):
        scaled = time * 10.0**decimals
        if np.all(np.abs(scaled - np.round(scaled)) <= 1e-6):
            return 10.0**-decimals
    return 0.0


def _angle_units(
    header: dict[str, str], comments: list[str], labels: list[str], data: np.ndarray, angles: str | None,
    path: Path,
) -> tuple[bool | None, str, bool]:
    """(in degrees or None when undecided, why, whether to warn); module docstring."""
    if angles is not None:
        return angles == "degrees", f"read in {angles} as the caller said", False
    joints = [j for j, label in enumerate(labels) if is_rotational(label) and _JOINT_COORDINATE.match(label)]
    beyond = ""
    if joints:
        magnitude = np.where(np.isfinite(data[:, joints]), np.abs(data[:, joints]), 0.0)
        row, col = np.unravel_index(int(np.argmax(magnitude)), magnitude.shape)
        if magnitude[row, col] > math.pi:
            beyond = (f"{labels[joints[col]]} reaches {data[row, joints[col]]:.4g}, more than any joint "
                      f"turns in radians (pi)")
    if "inDegrees" in header:
        declared = _parse_bool(path, "inDegrees", header["inDegrees"])
        if not declared and beyond:
            return None, f"the header says inDegrees=no, but {beyond}: the angles look like degrees", False
        return declared, f"inDegrees={header['inDegrees']}", False
    degrees_comment = next((c for c in comments if _DEGREES_COMMENT.search(c)), None)
    radians_comment = next((c for c in comments if _RADIANS_COMMENT.search(c)), None)
    if degrees_comment is not None and radians_comment is None:
        return True, f"no inDegrees line; read as degrees, as the header comment {degrees_comment!r} says", True
    if radians_comment is not None and degrees_comment is None and not beyond:
        return False, f"no inDegrees line; read as radians, as the header comment {radians_comment!r} says", True
    if beyond and radians_comment is None:
        return True, f"no inDegrees line; read as degrees because {beyond}", True
    if not any(is_rotational(label) for label in labels):
        return False, "no angle columns", False
    if beyond:
        return None, f"the header comment {radians_comment!r} says radians, but {beyond}", False
    return None, ("no inDegrees line, no header comment on the units, and every joint angle is "
                  "within +-pi, as radians or small angles in degrees could be"), False


def read_opensim_table(path: str | Path, *, strict: bool = True, angles: str | None = None) -> OpenSimTable:
    """Read an OpenSim ``.mot`` / ``.sto`` table.

    With ``strict=True`` (default) a header ``nRows`` / ``nColumns`` (or the older
    ``datarows`` / ``datacolumns``) that disagrees with the data is an error. With
    ``strict=False`` it is an :class:`OpenSimHeaderWarning` and the data are trusted: use
    this for files whose header is known to be stale (e.g. the Moco example
    ``coordinates.sto``, whose header says ``nColumns=40`` for 32 columns). Every other
    problem is an error in both modes. Repeated column labels (older files repeat the
    ``ground_force_*`` labels per force plate) are likewise an error, or numbered
    (``ground_force_vx (2)``) with a warning.

    ``angles`` ("degrees" or "radians") settles the angle units whatever the header says;
    None (default) takes them from ``inDegrees`` or decides them from the file (module
    docstring). NaN and inf cells are read as they are (:meth:`OpenSimTable.nonfinite`).
    """
    path = Path(path)
    if angles is not None and angles not in ANGLE_CHOICES:
        raise OpenSimFormatError(f"{path}: angles must be one of {', '.join(ANGLE_CHOICES)}, got {angles!r}")
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise OpenSimFormatError(f"{path}: no such file") from None
    except UnicodeDecodeError as exc:
        raise OpenSimFormatError(f"{path}: not a UTF-8 text file ({exc})") from None
    lines = text.splitlines()

    end = next((i for i, line in enumerate(lines) if line.strip().lower() == "endheader"), None)
    if end is None:
        raise OpenSimFormatError(f"{path}: no 'endheader' line; not an OpenSim .sto/.mot table")

    name = ""
    header: dict[str, str] = {}
    comments: list[str] = []
    for i, line in enumerate(lines[:end]):
        stripped = line.strip()
        if not stripped:
            continue
        if "=" in stripped:
            key, value = stripped.split("=", 1)
            header[key.strip()] = value.strip()
        elif i == 0:
            name = stripped
        else:  # free-text lines describe the table (e.g. "Angles are in degrees.")
            comments.append(stripped)

    if "inDegrees" in header:
        _parse_bool(path, "inDegrees", header["inDegrees"])  # refuse a malformed value early
    declared_rows, declared_cols = (  # (the key the header uses, its count) or None
        next(((key, _parse_count(path, key, header[key])) for key in keys if key in header), None)
        for keys in (("nRows", "datarows"), ("nColumns", "datacolumns"))
    )

    # Column labels: the first non-blank line after endheader.
    body = [(i + 1, line) for i, line in enumerate(lines) if i > end and line.strip()]
    if not body:
        raise OpenSimFormatError(f"{path}: no column-label line after 'endheader'")
    label_line_no, label_line = body[0]
    raw_labels = _split_labels(label_line)
    if any(not label for label in raw_labels):
        raise OpenSimFormatError(f"{path}: line {label_line_no}: empty column label")
    if raw_labels[0].lower() != "time":
        raise OpenSimFormatError(
            f"{path}: line {label_line_no}: the first column must be 'time', got '{raw_labels[0]}'"
        )
    labels = [coordinate_name(label) for label in raw_labels[1:]]
    seen: dict[str, int] = {}
    for i, label in enumerate(labels):
        if label in seen:
            # Older files repeat labels (one set of ground_force_* columns per force plate).
            if strict:
                raise OpenSimFormatError(
                    f"{path}: line {label_line_no}: column '{label}' appears twice "
                    f"(read with strict=False to number the repeats)"
                )
            seen[label] += 1
            labels[i] = f"{label} ({seen[label]})"
        else:
            seen[label] = 1
    repeated = [label for label in labels if label not in seen]
    if repeated:
        warnings.warn(f"{path}: repeated column labels numbered: {', '.join(repeated)}",
                      OpenSimHeaderWarning, stacklevel=2)

    rows = body[1:]
    if not rows:
        raise OpenSimFormatError(f"{path}: no data rows after the column labels")
    n_cols = len(raw_labels)
    values = np.empty((len(rows), n_cols), dtype=np.float64)
    for r, (line_no, line) in enumerate(rows):
        cells = line.split()
        if len(cells) != n_cols:
            raise OpenSimFormatError(
                f"{path}: line {line_no}: {len(cells)} values, but {n_cols} column labels "
                f"(time + {n_cols - 1})"
            )
        try:
            values[r] = np.array(cells, dtype=np.float64)
        except ValueError:
            for c, cell in enumerate(cells):
                try:
                    float(cell)
                except ValueError:
                    raise OpenSimFormatError(
                        f"{path}: line {line_no}, column '{raw_labels[c]}': "
                        f"'{cell}' is not a number"
                    ) from None
            raise  # unreachable: numpy and float() accept the same strings

    def disagree(message: str) -> None:
        if strict:
            raise OpenSimFormatError(
                f"{path}: {message} (read with strict=False to trust the data)"
            )
        warnings.warn(f"{path}: {message}; trusting the data", OpenSimHeaderWarning, stacklevel=3)

    if declared_rows is not None and declared_rows[1] != len(rows):
        disagree(
            f"header says {declared_rows[0]}={declared_rows[1]}, but the file has "
            f"{len(rows)} data rows"
        )
    if declared_cols is not None and declared_cols[1] != n_cols:
        disagree(
            f"header says {declared_cols[0]}={declared_cols[1]}, but the file has {n_cols} columns "
            f"(time included)"
        )

    time = values[:, 0]
    if not np.all(np.isfinite(time)):
        bad = int(np.argmin(np.isfinite(time)))
        raise OpenSimFormatError(f"{path}: line {rows[bad][0]}: time is {time[bad]}")
    steps = np.diff(time)
    if np.any(steps <= 0):
        bad = int(np.argmax(steps <= 0))
        raise OpenSimFormatError(
            f"{path}: time is not strictly increasing: t={time[bad]:.9g} (line {rows[bad][0]}) "
            f"is followed by t={time[bad + 1]:.9g} (line {rows[bad + 1][0]})"
        )

    data = values[:, 1:].copy()
    in_degrees, angles_note, warn = _angle_units(header, comments, labels, data, angles, path)
    if warn:
        warnings.warn(f"{path}: {angles_note}", OpenSimUnitsWarning, stacklevel=2)
    return OpenSimTable(
        name=name or path.stem,
        time=time.copy(),
        labels=labels,
        data=data,
        in_degrees=in_degrees,
        path=path,
        header=header,
        angles_note=angles_note,
        time_resolution=_time_resolution(time),
        lines=np.array([line_no for line_no, _ in rows]),
    )


# ---------------------------------------------------------------------- coordinates -> MyoFullBody joints


@dataclass(frozen=True)
class JointMapping:
    """How a Rajagopal coordinate becomes a MyoFullBody joint: ``q_myo = scale * q_rajagopal``
    (radians). ``scale`` is +1 where the joint has the same name, axis, sign and zero."""

    joint: str
    scale: float
    note: str = ""


_SAME = "same name, axis and sign (MyoLeg descends from Rajagopal 2016)"
# With the lumbar equality constraints (flex_extension drives L1..L5 with factors 0.185,
# 0.204, 0.231, 0.255) the torso turns 1.875 x flex_extension relative to the pelvis about
# the pelvis z axis (1.8645 x lat_bending about x, 1.1356 x axial_rotation about y), while
# Rajagopal's lumbar_* coordinates are the whole torso-pelvis angles.
_LUMBAR = "MyoFullBody spreads it over five lumbar levels; small-angle equivalent"

COORDINATE_TO_JOINT: dict[str, JointMapping] = {
    **{
        f"{coordinate}_{side}": JointMapping(f"{coordinate}_{side}", 1.0, _SAME)
        for side in ("r", "l")
        for coordinate in (
            "hip_flexion", "hip_adduction", "hip_rotation", "knee_angle",
            "ankle_angle", "subtalar_angle", "mtp_angle",
        )
    },
    "lumbar_extension": JointMapping("flex_extension", 1.0 / 1.875, _LUMBAR),
    "lumbar_bending": JointMapping("lat_bending", 1.0 / 1.8645, _LUMBAR),
    "lumbar_rotation": JointMapping("axial_rotation", 1.0 / 1.1356, _LUMBAR),
    "elbow_flex_r": JointMapping("elbow_flex_r", 1.0, "same name, flexion positive"),
    "elbow_flex_l": JointMapping("elbow_flex_l", 1.0, "same name, flexion positive"),
    "pro_sup_r": JointMapping("pro_sup_r", 1.0, "same name; zero and sign not verified"),
    "pro_sup_l": JointMapping("pro_sup_l", 1.0, "same name; zero and sign not verified"),
    "wrist_flex_r": JointMapping("flexion_r", 1.0, "MoBL-ARMS name; sign not verified"),
    "wrist_flex_l": JointMapping("flexion_l", 1.0, "MoBL-ARMS name; sign not verified"),
    "wrist_dev_r": JointMapping("deviation_r", 1.0, "MoBL-ARMS name; sign not verified"),
    "wrist_dev_l": JointMapping("deviation_l", 1.0, "MoBL-ARMS name; sign not verified"),
}
"""Rajagopal coordinate -> MyoFullBody joint. Not listed, because no single joint matches:
``pelvis_*`` (the MyoFullBody root is a free joint: position and quaternion, and its world
is z-up facing -y where OpenSim is y-up facing +x), ``arm_flex/arm_add/arm_rot_*`` (Rajagopal's
ball shoulder against MoBL-ARMS's elv_angle / shoulder_elv / shoulder_rot with a coupled
shoulder girdle) and ``knee_angle_*_beta`` (the patella follows knee_angle_* through equality
constraints in MyoFullBody)."""
