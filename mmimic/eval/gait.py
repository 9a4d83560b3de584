"""Gait-cycle analysis of experimental and simulated walking (numpy only).

* :class:`GaitData`: one trial (experiment, simulation or replay) on one time base, what the
  loaders (:mod:`mmimic.eval.human_data`, :mod:`mmimic.eval.lab_trial`) and the model side
  (:mod:`mmimic.eval.model_gait`) build and :mod:`mmimic.eval.comparison` compares.
* :func:`detect_gait_events`: heel strikes and toe-offs from a vertical ground reaction
  force, by threshold crossings with debouncing and sub-sample timing.
* :func:`strides`, :func:`normalize_cycle`, :func:`normalize_strides`: heel-strike to
  heel-strike windows, resampled on 0..100 % of the gait cycle.
* :func:`grf_body_weight`: force in body weights.
* :func:`compare_curves`: Pearson r and RMSE between simulated and experimental cycles.
* :data:`EMG_TO_MUSCLES`: EMG channels of the OpenSim Moco walking trial
  (``motions/sources/opensim_moco_walk/electromyography.sto``) to MyoFullBody right-leg
  actuators (Rajagopal coordinates map onto joints by :data:`mmimic.io.opensim.COORDINATE_TO_JOINT`).

Conventions: times in seconds; a gait cycle starts at a heel strike (0 %) and ends at the
next heel strike of the same foot (100 %). Bad input raises ``ValueError`` naming the
argument; nothing is clamped or extrapolated.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

__all__ = [
    "EMG_TO_MUSCLES",
    "GRAVITY",
    "SIDES",
    "CurveComparison",
    "GaitData",
    "GaitDataError",
    "GaitEvents",
    "compare_curves",
    "crossing_times",
    "detect_gait_events",
    "grf_body_weight",
    "normalize_cycle",
    "normalize_strides",
    "strides",
]

GRAVITY = 9.81  # m/s^2, the value used for body-weight normalisation
SIDES = ("r", "l")


# ---------------------------------------------------------------------- events


@dataclass(frozen=True, eq=False)
class GaitEvents:
    """Event times (s) of one foot, each sorted ascending.

    A heel strike is the force rising above the threshold, a toe-off falling below it. A
    contact already under way at the first sample has no heel strike, one still under way
    at the last sample has no toe-off.
    """

    heel_strikes: np.ndarray
    toe_offs: np.ndarray


def _as_time(time: np.ndarray) -> np.ndarray:
    t = np.asarray(time, dtype=np.float64)
    if t.ndim != 1 or t.shape[0] < 2:
        raise ValueError(f"time must be 1-D with at least 2 samples, got shape {t.shape}")
    if not np.all(np.isfinite(t)):
        raise ValueError("time contains NaN or inf")
    if np.any(np.diff(t) <= 0):
        raise ValueError("time must be strictly increasing")
    return t


def crossing_times(time: np.ndarray, values: np.ndarray, threshold: float, index: np.ndarray) -> np.ndarray:
    """Times at which ``values`` cross ``threshold`` between samples ``index - 1`` and ``index``,
    linearly interpolated."""
    v0, v1 = values[index - 1], values[index]
    return time[index - 1] + (threshold - v0) / (v1 - v0) * (time[index] - time[index - 1])


def detect_gait_events(
    time: np.ndarray,
    vertical_force: np.ndarray,
    threshold: float = 20.0,
    min_stance: float = 0.2,
    min_swing: float = 0.2,
) -> GaitEvents:
    """Heel strikes and toe-offs of one foot from its vertical ground reaction force.

    Contact is ``vertical_force > threshold`` (N; OpenSim files are y-up, so the vertical
    force is the ``*_vy`` column). Crossing times are linearly interpolated between samples.
    Debouncing: contacts separated by a gap shorter than ``min_swing`` seconds are merged
    (a flicker of the force below the threshold is not a toe-off), then contacts shorter
    than ``min_stance`` seconds are dropped (a spike is not a stance).
    """
    t = _as_time(time)
    f = np.asarray(vertical_force, dtype=np.float64)
    if f.shape != t.shape:
        raise ValueError(f"vertical_force must have the shape of time {t.shape}, got {f.shape}")
    if not np.all(np.isfinite(f)):
        raise ValueError("vertical_force contains NaN or inf")
    if min_stance < 0 or min_swing < 0:
        raise ValueError(f"min_stance and min_swing must be >= 0, got {min_stance}, {min_swing}")

    contact = f > threshold
    change = np.flatnonzero(contact[1:] != contact[:-1]) + 1  # first sample of a new state
    # Contact intervals as [start, end] times; None marks a record boundary (no event).
    intervals: list[list[float | None]] = []
    if contact[0]:
        intervals.append([None, None])
    for i, when in zip(change, crossing_times(t, f, threshold, change)):
        if contact[i]:
            intervals.append([float(when), None])
        else:
            intervals[-1][1] = float(when)

    merged: list[list[float | None]] = []
    for interval in intervals:
        if merged and interval[0] is not None and merged[-1][1] is not None \
                and interval[0] - merged[-1][1] < min_swing:
            merged[-1][1] = interval[1]
        else:
            merged.append(list(interval))

    kept = []
    for start, end in merged:
        # A contact cut by the record boundary has an unknown duration: keep it unless the
        # part seen is a complete too-short contact.
        if start is not None and end is not None and end - start < min_stance:
            continue
        kept.append((start, end))

    heel = np.array([s for s, _ in kept if s is not None], dtype=np.float64)
    toe = np.array([e for _, e in kept if e is not None], dtype=np.float64)
    return GaitEvents(heel_strikes=heel, toe_offs=toe)


# ---------------------------------------------------------------------- cycles


def strides(events: GaitEvents) -> list[tuple[float, float]]:
    """Heel-strike to next heel-strike windows ``(start, end)`` in seconds."""
    hs = np.asarray(events.heel_strikes, dtype=np.float64)
    return [(float(a), float(b)) for a, b in zip(hs[:-1], hs[1:])]


def normalize_cycle(
    time: np.ndarray, values: np.ndarray, start: float, end: float, n_points: int = 101
) -> np.ndarray:
    """``values`` (T,) or (T, C) linearly resampled at ``n_points`` instants evenly spread
    from ``start`` (0 %) to ``end`` (100 %); returns (n_points,) or (n_points, C).

    The window must lie inside ``time`` (up to 1e-9 s); nothing is extrapolated.
    """
    t = _as_time(time)
    v = np.asarray(values, dtype=np.float64)
    if v.ndim not in (1, 2) or v.shape[0] != t.shape[0]:
        raise ValueError(
            f"values must have shape (T,) or (T, C) with T = len(time) = {t.shape[0]}, "
            f"got {v.shape}"
        )
    if int(n_points) != n_points or n_points < 2:
        raise ValueError(f"n_points must be an integer >= 2, got {n_points}")
    if not (np.isfinite(start) and np.isfinite(end) and end > start):
        raise ValueError(f"need finite start < end, got start={start}, end={end}")
    eps = 1e-9
    if start < t[0] - eps or end > t[-1] + eps:
        raise ValueError(
            f"cycle [{start:.6g}, {end:.6g}] s is outside the data's [{t[0]:.6g}, {t[-1]:.6g}] s"
        )
    query = np.clip(np.linspace(start, end, int(n_points)), t[0], t[-1])
    if v.ndim == 1:
        return np.interp(query, t, v)
    return np.stack([np.interp(query, t, v[:, c]) for c in range(v.shape[1])], axis=1)


def normalize_strides(
    time: np.ndarray,
    values: np.ndarray,
    windows: list[tuple[float, float]],
    n_points: int = 101,
) -> np.ndarray:
    """Every window of :func:`strides` normalised: (S, n_points) or (S, n_points, C)."""
    if len(windows) == 0:
        raise ValueError("windows is empty: no complete stride (need two heel strikes)")
    return np.stack([normalize_cycle(time, values, a, b, n_points) for a, b in windows])


def grf_body_weight(force: np.ndarray, body_mass: float) -> np.ndarray:
    """Force (N) in body weights: ``force / (body_mass * 9.81)``."""
    if not (np.isfinite(body_mass) and body_mass > 0):
        raise ValueError(f"body_mass must be a positive number of kg, got {body_mass}")
    return np.asarray(force, dtype=np.float64) / (body_mass * GRAVITY)


class GaitDataError(ValueError):
    """Gait data that cannot be used: a missing or unrecognised file or column, no stride."""


@dataclass
class GaitData:
    """One walking trial on one time base (s).

    ``angles[joint]`` (T,) rad, keyed by MyoFullBody joint; ``grf[side]`` (T, 2) N, columns
    vertical (up) and fore-aft (along the direction of progression); ``emg[channel]`` (T,):
    processed EMG (experiment) or the mean activation of the channel's muscles (simulation);
    ``events[side]``; ``body_mass`` kg (None when unknown); ``kind`` is "experiment",
    "simulation" or "replay"; ``notes`` says what was assumed, estimated, resampled or skipped.
    """

    name: str
    kind: str
    time: np.ndarray
    angles: dict[str, np.ndarray]
    grf: dict[str, np.ndarray]
    emg: dict[str, np.ndarray]
    events: dict[str, GaitEvents]
    body_mass: float | None
    notes: list[str] = field(default_factory=list)

    def stride_windows(self, side: str) -> list[tuple[float, float]]:
        """Heel-strike to heel-strike windows of ``side``; GaitDataError when there is none."""
        events = self.events.get(side)
        hs = [] if events is None else [round(float(t), 3) for t in events.heel_strikes]
        if len(hs) < 2:
            foot = {"r": "right", "l": "left"}.get(side, side)
            raise GaitDataError(
                f"{self.name}: no complete {foot} stride: heel strikes at {hs} s; a stride needs two heel "
                f"strikes of the same foot ({self.kind} events from "
                f"{'the feet heights' if self.kind == 'replay' else 'the vertical ground reaction force'})"
            )
        return strides(events)


# ---------------------------------------------------------------------- comparison


@dataclass(frozen=True, eq=False)
class CurveComparison:
    """Simulated against experimental gait-cycle curves.

    ``pearson_r`` and ``rmse`` compare the stride-averaged curves ``sim_mean`` and
    ``exp_mean``. ``stride_pearson_r`` holds r of each simulated stride against
    ``exp_mean`` and ``mean_stride_pearson_r`` their plain mean. ``exp_sd`` is the
    experimental between-stride standard deviation (ddof=1), None with a single stride.
    """

    pearson_r: float
    rmse: float
    sim_mean: np.ndarray
    exp_mean: np.ndarray
    exp_sd: np.ndarray | None
    stride_pearson_r: np.ndarray
    mean_stride_pearson_r: float


def _cycles(array: np.ndarray, name: str) -> np.ndarray:
    a = np.asarray(array, dtype=np.float64)
    if a.ndim == 1:
        a = a[None, :]
    if a.ndim != 2 or a.shape[0] == 0 or a.shape[1] < 2:
        raise ValueError(
            f"{name} must have shape (n_points,) or (strides, n_points), got {a.shape}"
        )
    if not np.all(np.isfinite(a)):
        raise ValueError(f"{name} contains NaN or inf")
    return a


def _pearson(a: np.ndarray, b: np.ndarray, what: str) -> float:
    da, db = a - a.mean(), b - b.mean()
    na, nb = np.sqrt(np.sum(da * da)), np.sqrt(np.sum(db * db))
    if na == 0 or nb == 0:
        raise ValueError(f"Pearson r is undefined for {what}: a curve is constant")
    return float(np.sum(da * db) / (na * nb))


def compare_curves(sim_cycles: np.ndarray, exp_cycles: np.ndarray) -> CurveComparison:
    """Compare simulated cycles (S1, P) with experimental cycles (S2, P); a 1-D input is one
    stride. Both must be sampled on the same P points of the cycle."""
    sim = _cycles(sim_cycles, "sim_cycles")
    exp = _cycles(exp_cycles, "exp_cycles")
    if sim.shape[1] != exp.shape[1]:
        raise ValueError(
            f"sim_cycles and exp_cycles need the same number of cycle points, got "
            f"{sim.shape[1]} and {exp.shape[1]}"
        )
    sim_mean, exp_mean = sim.mean(axis=0), exp.mean(axis=0)
    exp_sd = exp.std(axis=0, ddof=1) if exp.shape[0] > 1 else None
    per_stride = np.array(
        [_pearson(s, exp_mean, f"simulated stride {k}") for k, s in enumerate(sim)]
    )
    return CurveComparison(
        pearson_r=_pearson(sim_mean, exp_mean, "the stride-averaged curves"),
        rmse=float(np.sqrt(np.mean((sim_mean - exp_mean) ** 2))),
        sim_mean=sim_mean,
        exp_mean=exp_mean,
        exp_sd=exp_sd,
        stride_pearson_r=per_stride,
        mean_stride_pearson_r=float(per_stride.mean()),
    )


# ---------------------------------------------------------------------- name mappings

# EMG channel of electromyography.sto -> MyoFullBody actuators (right leg). The channels
# are the right leg's: the OpenSim Moco example that ships this file
# (example3DWalking/exampleMocoInverse.cpp) tracks soleus -> soleus_r, gastrocnemius ->
# gasmed_r and gaslat_r, tibialis_anterior -> tibant_r. The MyoFullBody leg muscles carry
# the Rajagopal et al. (2016) names, so the surface electrode sites map onto them directly:
# a channel maps to every muscle (head / compartment) under the electrode, and a
# simulated "channel" is the mean activation of its muscles.
EMG_TO_MUSCLES: dict[str, tuple[str, ...]] = {
    "soleus": ("soleus_r",),
    "gastrocnemius": ("gasmed_r", "gaslat_r"),
    "tibialis_anterior": ("tibant_r",),
    # semitendinosus and semimembranosus lie under a medial-hamstrings electrode
    "medial_hamstrings": ("semimem_r", "semiten_r"),
    # the superficial long head; the short head (bfsh_r) lies deep to it
    "biceps_femoris": ("bflh_r",),
    "vastus_lateralis": ("vaslat_r",),
    "vastus_medius": ("vasmed_r",),  # vastus medialis
    "rectus_femoris": ("recfem_r",),
    "gluteus_maximus": ("glmax1_r", "glmax2_r", "glmax3_r"),
    "gluteus_medius": ("glmed1_r", "glmed2_r", "glmed3_r"),
}
