"""Evaluation report: PNG plots and a one-page ``report.md`` linking them with the numbers.

* ``errors.png``: per-clip tracking errors and frame coverage (bars);
* ``groups.png``: the same per motion category and per train/test split, with the early
  termination rate (when the clips have more than one category or split);
* ``<clip>_angles.png``: joint angles over the gait cycle, simulated mean (and its strides)
  against the experimental mean with a ±1 SD band, in degrees;
* ``<clip>_grf.png``: vertical and fore-aft ground reaction force in body weights;
* ``<clip>_emg.png``: muscle activation against EMG per channel, each curve scaled to its peak
  (Pearson r is unaffected by the scaling).
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from mmimic.anatomy import AnatomyComparison, anatomy_markdown  # noqa: E402
from mmimic.eval.comparison import GaitComparison  # noqa: E402
from mmimic.eval.gait import CurveComparison  # noqa: E402
from mmimic.eval.metrics import ERROR_METRICS, EvaluationMetrics  # noqa: E402

__all__ = [
    "ERROR_LABELS", "SHORT_LABELS", "plot_angles", "plot_emg", "plot_errors", "plot_grf", "plot_groups", "write_report",
]

ERROR_LABELS = {
    "err_root_xyz": "root position RMSE (m)",
    "err_root_yaw": "root yaw error (rad)",
    "err_joint_pos": "joint position RMSE (rad)",
    "err_joint_vel": "joint velocity RMSE (rad/s)",
    "err_rpos": "relative site RMSE (m)",
    "err_site_abs": "MPJPE (m)",
}
SHORT_LABELS = {
    "err_root_xyz": "root m",
    "err_root_yaw": "yaw rad",
    "err_joint_pos": "qpos rad",
    "err_joint_vel": "qvel rad/s",
    "err_rpos": "rpos m",
    "err_site_abs": "MPJPE m",
}
SIM_COLOR, EXP_COLOR = "tab:red", "0.25"


def _slug(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name)


def _grid(count: int, columns: int, size: tuple[float, float] = (3.2, 2.4)):
    rows = max(1, math.ceil(count / columns))
    cols = min(columns, max(count, 1))
    fig, axes = plt.subplots(rows, cols, figsize=(size[0] * cols, size[1] * rows), squeeze=False)
    for ax in axes.flat[count:]:
        ax.set_visible(False)
    return fig, list(axes.flat)


def _bar_panels(path: Path, labels: list[str], panels: list[tuple], bar_width: float) -> Path:
    """One bar chart per panel ``(title, values, colour(s), overall)``, one bar per label, the overall
    value as a dashed line when finite."""
    fig, axes = _grid(len(panels), 3, (max(3.2, bar_width * len(labels) + 1.5), 2.6))
    x = np.arange(len(labels))
    for ax, (title, values, color, overall) in zip(axes, panels):
        ax.bar(x, np.nan_to_num(values), color=color)
        if math.isfinite(overall):
            ax.axhline(overall, color="k", lw=0.8, ls="--", label=f"overall {overall:.3g}")
            ax.legend(fontsize=7)
        ax.set_title(title, fontsize=9)
        ax.set_xticks(x, labels, rotation=60, ha="right", fontsize=7)
    return _save(fig, path)


def plot_errors(metrics: EvaluationMetrics, path: Path) -> Path:
    """Bars of every error metric and the frame coverage, one bar per clip."""
    clips = metrics.per_clip
    keys = [k for k in ERROR_METRICS if any(math.isfinite(m[k]) for m in clips.values())]
    panels = [(ERROR_LABELS[k], [m[k] for m in clips.values()], "tab:blue", metrics.overall[k]) for k in keys]
    coverage = [m["coverage"] for m in clips.values()]
    panels.append(("frame coverage", coverage, "tab:green", metrics.overall["frame_coverage"]))
    return _bar_panels(path, list(clips), panels, 0.35)


def plot_groups(metrics: EvaluationMetrics, path: Path) -> Path:
    """Bars of every error metric, the frame coverage and the early termination rate, one bar per
    category (blue) and per split (orange), each labelled with its clip count."""
    groups = [(f"{name} ({m['episodes']:.0f})", m, "tab:blue") for name, m in metrics.per_category.items()]
    groups += [(f"{name} ({m['episodes']:.0f})", m, "tab:orange") for name, m in metrics.per_split.items()]
    keys = [k for k in ERROR_METRICS if any(math.isfinite(m[k]) for _, m, _ in groups)]
    keys += ["frame_coverage", "early_termination_rate"]
    titles = {**ERROR_LABELS, "frame_coverage": "frame coverage", "early_termination_rate": "early termination rate"}
    colors = [c for _, _, c in groups]
    panels = [(titles[k], [m[k] for _, m, _ in groups], colors, metrics.overall[k]) for k in keys]
    return _bar_panels(path, [label for label, _, _ in groups], panels, 0.4)


def _curve(ax, comparison: CurveComparison, scale: float) -> None:
    cycle = np.linspace(0, 100, comparison.exp_mean.shape[0])
    if comparison.exp_sd is not None:
        ax.fill_between(
            cycle,
            scale * (comparison.exp_mean - comparison.exp_sd),
            scale * (comparison.exp_mean + comparison.exp_sd),
            color=EXP_COLOR,
            alpha=0.2,
            lw=0,
            label="experiment ±1 SD",
        )
    ax.plot(cycle, scale * comparison.exp_mean, color=EXP_COLOR, ls="--", label="experiment")
    ax.plot(cycle, scale * comparison.sim_mean, color=SIM_COLOR, label="simulation")
    ax.set_xlim(0, 100)
    ax.set_xlabel("gait cycle (%)", fontsize=8)
    ax.tick_params(labelsize=7)


def _save(fig, path: Path, legend_ax=None) -> Path:
    if legend_ax is not None:
        legend_ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def _ordered_joints(comparison: GaitComparison) -> list[str]:
    side = comparison.side
    first = [f"{j}_{side}" for j in ("hip_flexion", "knee_angle", "ankle_angle")]
    return [j for j in first if j in comparison.angles] + [j for j in comparison.angles if j not in first]


def _plot_curves(curves: dict[str, CurveComparison], path: Path, title: str, scale: float, unit: str,
                 columns: int, size: tuple[float, float] = (3.2, 2.4)) -> Path:
    """One panel per curve (keyed by its panel title), ``scale`` times the values in ``unit``."""
    fig, axes = _grid(len(curves), columns, size)
    for ax, (name, c) in zip(axes, curves.items()):
        _curve(ax, c, scale)
        ax.set_title(f"{name}  r={c.pearson_r:.2f}", fontsize=9)
        ax.set_ylabel(unit, fontsize=8)
    fig.suptitle(title, fontsize=10)
    return _save(fig, path, axes[0])


def plot_angles(comparison: GaitComparison, path: Path, title: str = "") -> Path:
    """Joint angles (degrees) over the gait cycle, sagittal hip, knee and ankle first."""
    curves = {joint: comparison.angles[joint] for joint in _ordered_joints(comparison)}
    return _plot_curves(curves, path, title, 180.0 / math.pi, "deg", 4)


def plot_grf(comparison: GaitComparison, path: Path, title: str = "") -> Path:
    """Vertical and fore-aft ground reaction force (body weights) over the gait cycle."""
    curves = {f"{k.replace('_', '-')} GRF": c for k, c in comparison.grf.items()}
    return _plot_curves(curves, path, title, 1.0, "body weights", 2, (4.0, 2.8))


def plot_emg(comparison: GaitComparison, path: Path, title: str = "") -> Path:
    """Activation against EMG per channel, each curve scaled to its own peak."""
    fig, axes = _grid(len(comparison.emg), 5, (2.8, 2.2))
    for ax, (channel, c) in zip(axes, comparison.emg.items()):
        cycle = np.linspace(0, 100, c.exp_mean.shape[0])
        exp_peak = max(float(np.max(np.abs(c.exp_mean))), 1e-12)
        sim_peak = max(float(np.max(np.abs(c.sim_mean))), 1e-12)
        if c.exp_sd is not None:
            ax.fill_between(
                cycle,
                (c.exp_mean - c.exp_sd) / exp_peak,
                (c.exp_mean + c.exp_sd) / exp_peak,
                color=EXP_COLOR,
                alpha=0.2,
                lw=0,
                label="EMG ±1 SD",
            )
        ax.plot(cycle, c.exp_mean / exp_peak, color=EXP_COLOR, ls="--", label="EMG")
        ax.plot(cycle, c.sim_mean / sim_peak, color=SIM_COLOR, label="activation")
        ax.set_xlim(0, 100)
        ax.set_title(f"{channel}  r={c.pearson_r:.2f}", fontsize=8)
        ax.set_xlabel("gait cycle (%)", fontsize=7)
        ax.tick_params(labelsize=6)
    fig.suptitle(f"{title} (each curve / its peak)", fontsize=10)
    return _save(fig, path, axes[0])


def _fmt(value: float | None, digits: int = 3) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "–"
    return f"{value:.{digits}g}"


def _table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def _gait_section(clip: str, comparison: GaitComparison, images: dict[str, str]) -> str:
    s = comparison.summary()
    foot = "right" if comparison.side == "r" else "left"
    means = [_fmt(s[group]["mean_r"], 2) for group in ("angles_rad", "grf_body_weight", "activation_vs_emg")]
    text = [
        f"### {clip}\n",
        f"{s['sim_strides']} simulated and {s['exp_strides']} experimental {foot} stride(s). Mean r: joint angles "
        f"{means[0]}, GRF {means[1]}, activation vs EMG {means[2]}.\n",
    ]
    rows = [
        [j, _fmt(comparison.angles[j].pearson_r, 3), _fmt(math.degrees(comparison.angles[j].rmse), 3)]
        for j in _ordered_joints(comparison)
    ]
    rows += [[f"GRF {k}", _fmt(c.pearson_r, 3), f"{_fmt(c.rmse, 3)} BW"] for k, c in comparison.grf.items()]
    rows += [[f"EMG {k}", _fmt(c.pearson_r, 3), "–"] for k, c in comparison.emg.items()]
    text.append(_table(["quantity", "r", "RMSE (deg)"], rows))
    text += [f"![{kind}]({name})\n" for kind, name in images.items()]
    text += [f"- {note}" for note in comparison.notes]
    return "\n".join(text)


def write_report(
    directory: str | Path,
    metrics: EvaluationMetrics,
    *,
    title: str,
    context: dict[str, str],
    gait: dict[str, GaitComparison] | None = None,
    gait_skipped: dict[str, str] | None = None,
    notes: Sequence[str] = (),
    anatomy: AnatomyComparison | None = None,
) -> Path:
    """Write every plot and ``report.md`` into ``directory``; returns the report's path.

    ``context`` lists facts shown first (checkpoint, body, termination, ...); ``gait`` holds the
    comparison of each clip with experimental data, ``gait_skipped`` why other
    clips were not; ``anatomy`` (`mmimic.anatomy.compare_with_opensim`) adds the muscle paths
    against OpenSim with one plot per muscle.
    """
    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    md = [f"# {title}\n", "".join(f"- {k}: {v}\n" for k, v in context.items())]
    overall = metrics.overall
    md.append("## Tracking (every clip from its first frame)\n")
    md.append(
        _table(
            ["episodes", "early termination", "frame coverage", "mean return", "mean length", *ERROR_LABELS.values()],
            [
                [
                    _fmt(overall["episodes"]),
                    f"{overall['early_termination_rate']:.1%}",
                    f"{overall['frame_coverage']:.1%}",
                    _fmt(overall["mean_return"], 4),
                    _fmt(overall["mean_length"], 4),
                    *(_fmt(overall[k]) for k in ERROR_LABELS),
                ]
            ],
        )
    )
    for kind, groups in (("category", metrics.per_category), ("split", metrics.per_split)):
        if groups:
            md.append(f"By {kind}:\n")
            md.append(_table([kind, "clips", "early termination", "frame coverage", "mean return", "mean length",
                              *SHORT_LABELS.values()],
                             [[name, _fmt(m["episodes"]), f"{m['early_termination_rate']:.1%}",
                               f"{m['frame_coverage']:.1%}", _fmt(m["mean_return"], 4), _fmt(m["mean_length"], 4),
                               *(_fmt(m[k]) for k in ERROR_LABELS)] for name, m in groups.items()]))
    if len(metrics.per_category) > 1 or len(metrics.per_split) > 1:
        md.append(f"![per-category and per-split errors]({plot_groups(metrics, out / 'groups.png').name})\n")
    md.append(
        _table(
            ["clip", "frames", "steps", "terminated", "coverage", "return", *SHORT_LABELS.values()],
            [
                [
                    name,
                    _fmt(m["clip_frames"], 6),
                    _fmt(m["length"], 6),
                    "yes" if m["terminated"] else "no",
                    f"{m['coverage']:.1%}",
                    _fmt(m["return"], 4),
                    *(_fmt(m[k]) for k in ERROR_LABELS),
                ]
                for name, m in metrics.per_clip.items()
            ],
        )
    )
    md.append(f"![per-clip errors]({plot_errors(metrics, out / 'errors.png').name})\n")

    if gait or gait_skipped:
        md.append("## Gait cycle against experimental data\n")
    for clip, comparison in (gait or {}).items():
        stem = _slug(clip)
        images = {"joint angles": plot_angles(comparison, out / f"{stem}_angles.png", f"{clip}: joint angles").name}
        if comparison.grf:
            images["ground reaction forces"] = plot_grf(comparison, out / f"{stem}_grf.png", f"{clip}: GRF").name
        if comparison.emg:
            images["activation vs EMG"] = plot_emg(
                comparison, out / f"{stem}_emg.png", f"{clip}: activation vs EMG"
            ).name
        md.append(_gait_section(clip, comparison, images))
    if gait_skipped:
        md.append("Clips not compared:\n\n" + "".join(f"- {clip}: {reason}\n" for clip, reason in gait_skipped.items()))
    if anatomy is not None:
        md.append(anatomy_markdown(anatomy, out))
    if notes:
        md.append("## Notes\n" + "".join(f"- {n}\n" for n in notes))
    path = out / "report.md"
    path.write_text("\n".join(md))
    return path
