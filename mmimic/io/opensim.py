"""Reader for OpenSim text tables (``.mot`` / ``.sto``).

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
"""

from __future__ import annotations

import dataclasses
import re
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

__all__ = [
    "OpenSimFormatError",
    "OpenSimHeaderWarning",
    "OpenSimTable",
    "coordinate_name",
    "is_rotational",
    "read_opensim_table",
]


class OpenSimFormatError(ValueError):
    """An OpenSim table that cannot be read, or a request it cannot satisfy."""


class OpenSimHeaderWarning(UserWarning):
    """A header count (``nRows`` / ``nColumns``) that disagrees with the data, read with
    ``strict=False``."""


_JOINTSET_VALUE = re.compile(r"^/jointset/[^/]+/([^/]+)/value$")
# Column names that are not rotational coordinates: translations, coupled coordinates, and
# force-plate / dynamics / muscle-signal columns.
_TRANSLATION = re.compile(r"_t[xyz]$")
_COUPLED = re.compile(r"_beta$")
_NOT_A_COORDINATE = re.compile(
    r"force|moment|torque|_p[xyz]$|_v[xyz]$|emg|activation|excitation", re.IGNORECASE
)
# Relative tolerance on the spread of time steps for a table to count as uniformly sampled.
_UNIFORM_RTOL = 1e-3


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
    ``in_degrees`` is the header's ``inDegrees`` (False when absent). ``header`` holds all
    ``key=value`` header entries as strings. ``path`` is the file read (None for tables
    built in memory, e.g. by :meth:`resample`'s caller).
    """

    name: str
    time: np.ndarray
    labels: list[str]
    data: np.ndarray
    in_degrees: bool
    path: Path | None = None
    header: dict[str, str] = field(default_factory=dict)

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
        """Column ``name`` in SI units: degrees converted to radians when the table is
        ``inDegrees=yes`` and the column is a rotational coordinate (:func:`is_rotational`);
        every other column (translations in m, forces, ...) is returned unchanged."""
        values = self.column(name)
        if self.in_degrees and is_rotational(name):
            return np.deg2rad(values)
        return values

    # ------------------------------------------------------------------ sampling

    @property
    def rate(self) -> float:
        """Sampling rate in Hz. :class:`OpenSimFormatError` if the table has fewer than two
        rows or its time steps differ by more than 0.1 % of the median step."""
        if self.time.shape[0] < 2:
            raise OpenSimFormatError(f"{self._where()}: a sampling rate needs at least 2 rows")
        steps = np.diff(self.time)
        median = float(np.median(steps))
        spread = float(np.max(np.abs(steps - median)))
        if spread > _UNIFORM_RTOL * median:
            worst = int(np.argmax(np.abs(steps - median)))
            raise OpenSimFormatError(
                f"{self._where()}: time is not uniformly sampled: median step {median:.6g} s, "
                f"but step {steps[worst]:.6g} s between t={self.time[worst]:.6g} and "
                f"t={self.time[worst + 1]:.6g}"
            )
        return 1.0 / median

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
        return dataclasses.replace(self, time=new_time.copy(), data=data)


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


def read_opensim_table(path: str | Path, *, strict: bool = True) -> OpenSimTable:
    """Read an OpenSim ``.mot`` / ``.sto`` table.

    With ``strict=True`` (default) a header ``nRows`` / ``nColumns`` (or the older
    ``datarows`` / ``datacolumns``) that disagrees with the data is an error. With
    ``strict=False`` it is an :class:`OpenSimHeaderWarning` and the data are trusted: use
    this for files whose header is known to be stale (e.g. the Moco example
    ``coordinates.sto``, whose header says ``nColumns=40`` for 32 columns). Every other
    problem is an error in both modes.
    """
    path = Path(path)
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
    for i, line in enumerate(lines[:end]):
        stripped = line.strip()
        if not stripped:
            continue
        if "=" in stripped:
            key, value = stripped.split("=", 1)
            header[key.strip()] = value.strip()
        elif i == 0:
            name = stripped
        # other free-text header lines are descriptions; OpenSim ignores them too

    in_degrees = False
    if "inDegrees" in header:
        in_degrees = _parse_bool(path, "inDegrees", header["inDegrees"])
    declared_rows = declared_cols = None
    for key in ("nRows", "datarows"):
        if key in header:
            declared_rows = (key, _parse_count(path, key, header[key]))
            break
    for key in ("nColumns", "datacolumns"):
        if key in header:
            declared_cols = (key, _parse_count(path, key, header[key]))
            break

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
    seen: set[str] = set()
    for label in labels:
        if label in seen:
            raise OpenSimFormatError(
                f"{path}: line {label_line_no}: column '{label}' appears twice"
            )
        seen.add(label)

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

    return OpenSimTable(
        name=name or path.stem,
        time=time.copy(),
        labels=labels,
        data=values[:, 1:].copy(),
        in_degrees=in_degrees,
        path=path,
        header=header,
    )
