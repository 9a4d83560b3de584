"""Simulated (or replayed) against experimental walking: :func:`compare_gait` cuts
heel-strike-to-heel-strike strides of one foot in both :class:`mmimic.eval.gait.GaitData`,
normalises them to 0-100 % of the cycle and compares them per joint, per force component (in body
weights) and per EMG channel (:func:`mmimic.eval.gait.compare_curves`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from mmimic.eval.gait import (
    SIDES,
    CurveComparison,
    GaitData,
    GaitDataError,
    compare_curves,
    grf_body_weight,
    normalize_strides,
)

__all__ = ["GaitComparison", "compare_gait"]

GRF_COMPONENTS = ("vertical", "fore_aft")


@dataclass
class GaitComparison:
    """Simulated (or replayed) against experimental gait cycles of one foot (``side``).

    ``angles`` (rad), ``grf`` (body weights; "vertical", "fore_aft") and ``emg`` (per channel:
    activation against EMG) map names to :class:`CurveComparison`; ``sim_strides`` /
    ``exp_strides`` count the strides averaged; ``notes`` lists what was skipped and why.
    """

    side: str
    sim_strides: int
    exp_strides: int
    angles: dict[str, CurveComparison]
    grf: dict[str, CurveComparison]
    emg: dict[str, CurveComparison]
    notes: list[str]

    def summary(self) -> dict:
        """JSON-ready numbers: r and RMSE per item and the mean r per group."""

        def group(items: dict[str, CurveComparison]) -> dict:
            rows = {
                k: {"r": c.pearson_r, "rmse": c.rmse, "mean_stride_r": c.mean_stride_pearson_r}
                for k, c in items.items()
            }
            mean = float(np.mean([c.pearson_r for c in items.values()])) if items else None
            return {"items": rows, "mean_r": mean}

        return {
            "side": self.side,
            "sim_strides": self.sim_strides,
            "exp_strides": self.exp_strides,
            "angles_rad": group(self.angles),
            "grf_body_weight": group(self.grf),
            "activation_vs_emg": group(self.emg),
            "notes": list(self.notes),
        }


def compare_gait(
    sim: GaitData, experiments: GaitData | Sequence[GaitData], side: str = "r", n_points: int = 101
) -> GaitComparison:
    """Stride-normalised comparison of ``sim`` with the strides of all ``experiments`` on ``side``:
    every joint angle, GRF component (normalised by each body weight) and EMG channel present in
    both. A trial without a complete stride raises :class:`GaitDataError`."""
    if side not in SIDES:
        raise GaitDataError(f"side must be 'r' or 'l', got {side!r}")
    exps = [experiments] if isinstance(experiments, GaitData) else list(experiments)
    if not exps:
        raise GaitDataError("no experimental trial to compare with")
    sim_windows = sim.stride_windows(side)
    exp_windows = [e.stride_windows(side) for e in exps]
    notes: list[str] = []
    constant: list[str] = []

    def compare(get, names: Sequence[str], group: str) -> dict[str, CurveComparison]:
        out = {}
        for key in names:
            try:
                sim_c = normalize_strides(sim.time, get(sim, key), sim_windows, n_points)
                exp_c = np.concatenate(
                    [normalize_strides(e.time, get(e, key), w, n_points) for e, w in zip(exps, exp_windows)]
                )
                if np.ptp(sim_c.mean(axis=0)) == 0 or np.ptp(exp_c.mean(axis=0)) == 0:
                    constant.append(f"{group} {key}")
                    continue
                out[key] = compare_curves(sim_c, exp_c)
            except ValueError as exc:
                notes.append(f"{group} {key}: skipped ({exc})")
        return out

    angle_names = [j for j in sim.angles if all(j in e.angles for e in exps)]
    angles = compare(lambda d, k: d.angles[k], angle_names, "angle")

    grf: dict[str, CurveComparison] = {}
    if side in sim.grf and all(side in e.grf for e in exps):
        masses = [d.body_mass for d in (sim, *exps)]
        if any(m is None for m in masses):
            notes.append("GRF: skipped (a body mass is unknown)")
        else:
            grf = compare(
                lambda d, k: grf_body_weight(d.grf[side][:, GRF_COMPONENTS.index(k)], d.body_mass),
                GRF_COMPONENTS,
                "GRF",
            )
    else:
        notes.append(f"GRF: skipped ({sim.name if side not in sim.grf else 'an experiment'} has no forces)")

    channels = [c for c in sim.emg if all(c in e.emg for e in exps)]
    if channels and side != "r":  # EMG_TO_MUSCLES maps right-leg muscles
        notes.append("EMG: skipped (the channels are right-leg muscles; compared over right-foot cycles only)")
        channels = []
    elif not channels:
        notes.append("EMG: skipped (no channel in both)")
    emg = compare(lambda d, k: d.emg[k], channels, "EMG")
    if constant:
        notes.append(
            f"constant over the cycle in the simulation or the experiment, so without r: {', '.join(constant)}"
        )
    return GaitComparison(side, len(sim_windows), sum(len(w) for w in exp_windows), angles, grf, emg, notes)
