"""Experimental walking data as :class:`mmimic.eval.gait.GaitData`: OpenSim trial directories,
Gait120-style step directories and (through :mod:`mmimic.eval.lab_trial`) C3D files.

Joint angles come from the inverse-kinematics coordinates (:data:`mmimic.io.opensim.COORDINATE_TO_JOINT`),
vertical and fore-aft ground reaction forces from the force plates, EMG per channel of
:data:`mmimic.eval.gait.EMG_TO_MUSCLES`; events from the plates' vertical force; all resampled onto
one grid at the trial's highest rate.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from mmimic.eval.gait import (
    EMG_TO_MUSCLES,
    GRAVITY,
    SIDES,
    GaitData,
    GaitDataError,
    GaitEvents,
    detect_gait_events,
)
from mmimic.io.opensim import COORDINATE_TO_JOINT, OpenSimFormatError, OpenSimTable, read_opensim_table

__all__ = ["load_experiment", "load_gait120", "load_opensim_trial", "trial_body_mass"]

COMPARED_COORDINATES = tuple(f"{c}_{s}" for s in SIDES for c in ("hip_flexion", "knee_angle", "ankle_angle"))
REQUIRED_GRF = tuple(f"ground_force_{s}_v{a}" for s in SIDES for a in "xyz")


def _read(path: Path, notes: list[str]) -> OpenSimTable:
    """An OpenSim table; a stale header count is noted, not fatal; a bad file is a GaitDataError."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            table = read_opensim_table(path, strict=False)
        except OpenSimFormatError as exc:
            raise GaitDataError(str(exc)) from None
    notes.extend(str(w.message) for w in caught)
    return table


def _kind_of(table: OpenSimTable) -> str | None:
    labels = set(table.labels)
    if labels & set(COORDINATE_TO_JOINT):
        return "coordinates"
    if any(label.startswith("ground_force") for label in labels):
        return "grf"
    if labels & set(EMG_TO_MUSCLES):
        return "emg"
    return None


def _require(table: OpenSimTable, columns: Sequence[str], what: str) -> None:
    missing = [c for c in columns if c not in table]
    if missing:
        raise GaitDataError(
            f"{table.path}: {what} table lacks column(s) {', '.join(missing)}; it has: {', '.join(table.labels)}"
        )


def _common_grid(tables: list[OpenSimTable], notes: list[str]) -> np.ndarray:
    """A uniform time grid at the highest rate of ``tables`` over the span they share."""
    try:
        rates = [t.rate for t in tables]
    except OpenSimFormatError as exc:
        raise GaitDataError(str(exc)) from None
    rate = max(rates)
    start = max(float(t.time[0]) for t in tables)
    end = min(float(t.time[-1]) for t in tables)
    if end - start < 2.0 / rate:
        spans = ", ".join(f"{t.path.name} [{t.time[0]:g}, {t.time[-1]:g}] s" for t in tables)
        raise GaitDataError(f"the experimental tables share no time span: {spans}")
    for table, table_rate in zip(tables, rates):
        if not math.isclose(table_rate, rate, rel_tol=1e-3):
            notes.append(
                f"{table.path}: sampled at {table_rate:g} Hz, resampled to {rate:g} Hz (the trial's "
                "highest rate) by linear interpolation"
            )
    count = int(math.floor((end - start) * rate + 1e-6)) + 1
    return start + np.arange(count) / rate


def _progression(coords: OpenSimTable, notes: list[str]) -> np.ndarray:
    """Unit horizontal direction of walking in OpenSim's y-up ground (x, z components)."""
    if "pelvis_tx" in coords and "pelvis_tz" in coords:
        step = np.array(
            [coords.data[-1, coords.index(c)] - coords.data[0, coords.index(c)] for c in ("pelvis_tx", "pelvis_tz")]
        )
        if np.linalg.norm(step) > 0:
            return step / np.linalg.norm(step)
    notes.append(f"{coords.path}: no pelvis_tx / pelvis_tz travel; fore-aft GRF taken along +x")
    return np.array([1.0, 0.0])


def trial_body_mass(
    body_mass: float | None,
    time: np.ndarray,
    grf: dict[str, np.ndarray],
    events: dict[str, GaitEvents],
    pelvis_height: np.ndarray | None,
    notes: list[str],
) -> float | None:
    """``body_mass`` (kg) when given, else estimated from the force plates (said in ``notes``): over a
    step (heel strike of one foot to the next heel strike of the other) in which the other foot's
    toe-off is recorded, both feet were on plates, so the mean vertical force is m (g + dv/dt) with dv
    the change of the pelvis' vertical velocity. None when no such step exists."""
    if body_mass is not None:
        if not (math.isfinite(body_mass) and body_mass > 0):
            raise GaitDataError(f"body_mass must be a positive number of kg, got {body_mass}")
        return body_mass
    masses, weights, spans = [], [], []
    for a, b in (("r", "l"), ("l", "r")):
        for start in events[a].heel_strikes:
            later = events[b].heel_strikes[events[b].heel_strikes > start]
            if later.size == 0:
                continue
            end = float(later[0])
            if not np.any((events[b].toe_offs > start) & (events[b].toe_offs < end)):
                continue
            inside = (time >= start) & (time <= end)
            force = float(np.mean(grf["r"][inside, 0] + grf["l"][inside, 0]))
            accel = 0.0
            if pelvis_height is not None:
                v = np.gradient(pelvis_height, time)
                accel = float(np.interp(end, time, v) - np.interp(start, time, v)) / (end - start)
            masses.append(force / (GRAVITY + accel))
            weights.append(end - start)
            spans.append(f"{start:.3f}-{end:.3f} s")
    if not masses:
        notes.append("body mass unknown: no step with both feet on the force plates; give it explicitly")
        return None
    mass = float(np.average(masses, weights=weights))
    notes.append(f"body mass {mass:.1f} kg estimated from the vertical GRF over the step(s) {', '.join(spans)}")
    return mass


def _experiment(
    name: str,
    coords: OpenSimTable,
    grf: OpenSimTable,
    emg: OpenSimTable | None,
    body_mass: float | None,
    notes: list[str],
) -> GaitData:
    _require(coords, COMPARED_COORDINATES, "inverse-kinematics")
    _require(grf, REQUIRED_GRF, "ground reaction force")
    tables = [coords, grf] + ([emg] if emg is not None else [])
    time = _common_grid(tables, notes)
    coords_r, grf_r = coords.resample(time), grf.resample(time)
    direction = _progression(coords, notes)

    angles = {}
    for coordinate, mapping in COORDINATE_TO_JOINT.items():
        if coordinate in coords_r:
            angles[mapping.joint] = mapping.scale * coords_r.radians(coordinate)
    forces = {}
    for side in SIDES:
        vertical = grf_r.column(f"ground_force_{side}_vy")
        horizontal = np.stack([grf_r.column(f"ground_force_{side}_vx"), grf_r.column(f"ground_force_{side}_vz")], 1)
        forces[side] = np.stack([vertical, horizontal @ direction], axis=1)
    events = {side: detect_gait_events(time, forces[side][:, 0]) for side in SIDES}

    signals = {}
    if emg is not None:
        emg_r = emg.resample(time)
        signals = {channel: emg_r.column(channel) for channel in EMG_TO_MUSCLES if channel in emg_r}
        ignored = [label for label in emg.labels if label not in EMG_TO_MUSCLES]
        if ignored:
            notes.append(
                f"{emg.path}: column(s) {', '.join(ignored)} are not EMG channels mmimic maps "
                f"({', '.join(EMG_TO_MUSCLES)}); ignored"
            )

    height = coords_r.column("pelvis_ty") if "pelvis_ty" in coords_r else None
    body_mass = trial_body_mass(body_mass, time, forces, events, height, notes)
    return GaitData(name, "experiment", time, angles, forces, signals, events, body_mass, notes)


def load_opensim_trial(directory: str | Path, body_mass: float | None = None) -> GaitData:
    """A walking trial stored as OpenSim tables in one directory (the layout of
    ``motions/sources/opensim_moco_walk``). Tables are recognised by their columns:
    inverse-kinematics coordinates (Rajagopal names; with several, the longest is used), one
    ground-reaction-force table (``ground_force_{r,l}_v{x,y,z}``) and optionally one EMG table
    (channels named as in :data:`mmimic.eval.gait.EMG_TO_MUSCLES`); other tables are ignored.
    ``body_mass`` (kg) is estimated from the force plates when not given."""
    directory = Path(directory)
    if not directory.is_dir():
        raise GaitDataError(f"{directory}: not a directory (expected an OpenSim trial directory)")
    notes: list[str] = []
    found: dict[str, list[OpenSimTable]] = {"coordinates": [], "grf": [], "emg": []}
    for path in sorted(p for p in directory.iterdir() if p.suffix in (".mot", ".sto")):
        table = _read(path, notes)
        kind = _kind_of(table)
        if kind is None:
            notes.append(f"{path.name}: neither coordinates, GRF nor EMG; ignored")
        else:
            found[kind].append(table)
    for kind, what in (
        ("coordinates", "inverse-kinematics coordinates (hip_flexion_r, ...)"),
        ("grf", "ground reaction forces (ground_force_r_vy, ...)"),
    ):
        if not found[kind]:
            raise GaitDataError(f"{directory}: no .mot/.sto table of {what}")
    for kind in ("grf", "emg"):
        if len(found[kind]) > 1:
            names = ", ".join(t.path.name for t in found[kind])
            raise GaitDataError(f"{directory}: several {kind.upper()} tables ({names}); keep one")
    coords = max(found["coordinates"], key=lambda t: t.time[-1] - t.time[0])
    if len(found["coordinates"]) > 1:
        notes.append(
            f"coordinates from {coords.path.name}, the longest of "
            f"{', '.join(t.path.name for t in found['coordinates'])}"
        )
    emg = found["emg"][0] if found["emg"] else None
    return _experiment(directory.name, coords, found["grf"][0], emg, body_mass, notes)


GAIT120_IK, GAIT120_GRF, GAIT120_EMG = "_ik.mot", "_grf.mot", "_emg.sto"


def load_gait120(directory: str | Path, body_mass: float | None = None) -> list[GaitData]:
    """Steps of a Gait120-style directory: for every step ``<step>_ik.mot`` (OpenSim
    inverse-kinematics coordinates), ``<step>_grf.mot`` (force plates,
    ``ground_force_{r,l}_v{x,y,z}``) and optionally ``<step>_emg.sto`` (EMG channels named as in
    :data:`mmimic.eval.gait.EMG_TO_MUSCLES`); one :class:`GaitData` per step, sorted by name."""
    directory = Path(directory)
    steps = sorted(p.name[: -len(GAIT120_IK)] for p in directory.glob(f"*{GAIT120_IK}"))
    if not steps:
        raise GaitDataError(f"{directory}: no <step>{GAIT120_IK} files (Gait120-style layout, see docs/evaluation.md)")
    trials = []
    for step in steps:
        grf_path = directory / f"{step}{GAIT120_GRF}"
        if not grf_path.is_file():
            raise GaitDataError(f"{directory}: step {step!r} has {step}{GAIT120_IK} but no {step}{GAIT120_GRF}")
        notes: list[str] = []
        coords = _read(directory / f"{step}{GAIT120_IK}", notes)
        grf = _read(grf_path, notes)
        emg_path = directory / f"{step}{GAIT120_EMG}"
        emg = _read(emg_path, notes) if emg_path.is_file() else None
        trials.append(_experiment(step, coords, grf, emg, body_mass, notes))
    return trials


def load_experiment(path: str | Path, body_mass: float | None = None, markers: str | Path | None = None,
                    up: str | None = None) -> list[GaitData]:
    """A Gait120-style directory (any ``*_ik.mot``), an OpenSim trial directory or a C3D file (its force
    plates, feet told apart by the marker set `markers` with vertical axis `up`:
    :func:`mmimic.eval.lab_trial.load_c3d_trial`)."""
    path = Path(path)
    if path.is_file() and path.suffix.lower() == ".c3d":
        from mmimic.eval.lab_trial import VICON_MAP, load_c3d_trial

        return [load_c3d_trial(path, body_mass, markers or VICON_MAP, up)]
    if markers is not None or up is not None:
        raise GaitDataError(f"{path}: --markers and --up apply to a C3D experiment only")
    if not path.is_dir():
        raise GaitDataError(
            f"{path}: experimental data must be a directory: an OpenSim trial (coordinates, GRF and EMG "
            f"tables) or a Gait120-style directory of <step>{GAIT120_IK} / {GAIT120_GRF} / {GAIT120_EMG} files; "
            "or a C3D file with force plates"
        )
    if any(path.glob(f"*{GAIT120_IK}")):
        return load_gait120(path, body_mass)
    return [load_opensim_trial(path, body_mass)]
