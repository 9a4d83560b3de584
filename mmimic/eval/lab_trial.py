"""A lab walking trial from its C3D file: force plates per foot for the gait comparison.

`load_c3d_trial` reads the plates (`mmimic.io.c3d.read_force_plates`) and the markers, and
gives each plate to the foot that stands on it: the foot whose markers (those the marker set
puts on calcn, talus or toes of that side) are nearest the plate's centre, horizontally, while
the plate is loaded (vertical force over `LOAD_THRESHOLD`). A foot's force is the sum of its
plates, resampled (linearly) to the marker frames; fore-aft is its horizontal part along the
pelvis markers' travel. Events come from the file's "Left/Right Foot Strike/Off" events, or
from the vertical force (`detect_gait_events`) when the file has none. A C3D file carries
markers, not joint angles: its `GaitData` has no angles (retarget the trial for the clip).
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np

from mmimic.eval.gait import SIDES, GaitData, GaitDataError, GaitEvents, detect_gait_events
from mmimic.eval.human_data import trial_body_mass
from mmimic.io.c3d import read_c3d, read_force_plates
from mmimic.io.markers import MarkerFileError
from mmimic.retarget.markers import read_marker_set
from mmimic.retarget.source import RetargetError

VICON_MAP = Path(__file__).resolve().parents[2] / "models/markers/vicon_lower_body.toml"
LOAD_THRESHOLD = 20.0
_FOOT = ("calcn", "talus", "toes")
_EVENT_NAMES = {"l": "Left", "r": "Right"}


def _file_events(events: dict[str, np.ndarray]) -> dict[str, GaitEvents] | None:
    """Heel strikes and toe-offs per side from C3D events, or None when the file has none."""
    found = {}
    for side, name in _EVENT_NAMES.items():
        strikes, offs = events.get(f"{name} Foot Strike"), events.get(f"{name} Foot Off")
        if strikes is None and offs is None:
            return None
        empty = np.zeros(0)
        found[side] = GaitEvents(strikes if strikes is not None else empty, offs if offs is not None else empty)
    return found


def load_c3d_trial(path: str | Path, body_mass: float | None = None, markers: str | Path = VICON_MAP,
                   up: str | None = None) -> GaitData:
    """The walking trial of the C3D file `path` (module docstring); `markers` is the marker set
    (.toml map or .osim) naming the foot and pelvis markers; `body_mass` (kg) is estimated from
    the plates when not given."""
    import mmimic

    path = Path(path)
    try:
        plates = read_force_plates(path, up)
        trial = read_c3d(path, up)
        marker_set = read_marker_set(markers, mmimic.load_embodiment("fullbody").mj_model)
    except (MarkerFileError, RetargetError) as exc:
        raise GaitDataError(str(exc)) from None
    notes = list(plates.notes)
    present = {label: m for label, m in marker_set.markers.items() if label in trial.labels}
    feet = {s: [k for k, m in present.items() if m.body in {f"{b}_{s}" for b in _FOOT}] for s in SIDES}
    pelvis = [k for k, m in present.items() if m.body == "pelvis"]
    for name, labels in (("right foot", feet["r"]), ("left foot", feet["l"]), ("pelvis", pelvis)):
        if not labels:
            raise GaitDataError(f"{path}: none of the {name} markers of {Path(markers).name} is in the trial; "
                                "give the marker set of this lab (--markers)")
    time = trial.start_time + np.arange(trial.num_frames) / trial.fps
    force = np.stack([[np.interp(time, plates.time, f[:, c]) for c in range(3)] for f in plates.force], axis=0)
    force = force.transpose(0, 2, 1)  # (P, T, 3)

    def mean_of(labels: list[str]) -> np.ndarray:
        with warnings.catch_warnings():  # all-NaN frames (no marker seen) stay NaN
            warnings.simplefilter("ignore", RuntimeWarning)
            return np.nanmean(np.stack([trial.marker(k) for k in labels]), axis=0)

    foot_xy = {s: mean_of(feet[s])[:, :2] for s in SIDES}
    forces = {s: np.zeros((len(time), 3)) for s in SIDES}
    for p, centre in enumerate(plates.centres):
        loaded = force[p, :, 2] > LOAD_THRESHOLD
        if not loaded.any():
            notes.append(f"force plate {p + 1}: never loaded; not used")
            continue
        distance = {s: np.nanmedian(np.linalg.norm(foot_xy[s][loaded] - centre[:2], axis=1)) for s in SIDES}
        side = min(SIDES, key=lambda s: np.inf if np.isnan(distance[s]) else distance[s])
        if np.isnan(distance[side]):
            raise GaitDataError(f"{path}: force plate {p + 1} is loaded while no foot marker is seen; cannot tell the foot")
        forces[side] += force[p]
        notes.append(f"force plate {p + 1}: {'right' if side == 'r' else 'left'} foot (median distance of the "
                     f"feet's markers from the plate centre while loaded: right {distance['r']:.2f} m, left {distance['l']:.2f} m)")
    hip = mean_of(pelvis)
    seen = np.flatnonzero(~np.isnan(hip[:, 0]))
    travel = hip[seen[-1], :2] - hip[seen[0], :2]
    direction = travel / max(np.linalg.norm(travel), 1e-9)
    grf = {s: np.stack([forces[s][:, 2], forces[s][:, :2] @ direction], axis=1) for s in SIDES}
    events = _file_events(plates.events)
    if events is None:
        events = {s: detect_gait_events(time, grf[s][:, 0]) for s in SIDES}
        notes.append("events from the plates' vertical force (the file has no foot strike/off events)")
    notes.append(f"{path.name}: a C3D trial has markers, not joint angles: angles are not compared")
    body_mass = trial_body_mass(body_mass, time, grf, events, np.interp(time, time[seen], hip[seen, 2]), notes)
    return GaitData(path.stem, "experiment", time, {}, grf, {}, events, body_mass, notes)
