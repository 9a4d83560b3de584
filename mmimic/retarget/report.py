"""`report.json`: every clip's metrics and verdict, and the overall figures, written atomically."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from mmimic.io.atomic import atomic_write
from mmimic.retarget.pipeline import RetargetResult

WORST = ("joint_limit_violation_pct", "penetration_pct", "max_penetration_m", "floating_height_m",
         "tendon_jump_rate_pct", "tendon_max_jump", "keypoint_rmse_m", "marker_rmse_m", "marker_max_error_m")


def clip_entry(name: str, source: Path, result: RetargetResult, written: Path | None,
               derived: dict[str, object] | None = None) -> dict[str, object]:
    """One clip's report: metrics, thresholds failed, where it was written (None: kept out)."""
    entry: dict[str, object] = {
        "name": name,
        "source": str(source),
        "passed": result.passed and not (derived and derived["failures"]),
        "failures": list(result.failures),
        "written": None if written is None else str(written),
        "metrics": dict(result.metrics),
        "details": dict(result.details),
    }
    if derived is not None:
        entry["derived"] = derived
    return entry


def overall(entries: list[dict[str, object]]) -> dict[str, object]:
    """Totals over the clips: counts, frames, seconds, frames per second, the worst value of
    each quality metric and the frame-weighted keypoint RMSE."""
    frames = sum(e["details"]["frames"] for e in entries)
    seconds = sum(e["details"]["seconds"] for e in entries)
    rmse = [(e["metrics"]["keypoint_rmse_m"], e["details"]["frames"]) for e in entries if "keypoint_rmse_m" in e["metrics"]]
    summary: dict[str, object] = {
        "clips": len(entries),
        "passed": sum(bool(e["passed"]) for e in entries),
        "written": sum(e["written"] is not None for e in entries),
        "frames": frames,
        "seconds": seconds,
        "fps": frames / seconds if seconds > 0 else None,
        "worst": {m: max((e["metrics"][m] for e in entries if m in e["metrics"]), default=None) for m in WORST},
    }
    if rmse:
        values, weights = zip(*rmse)
        summary["keypoint_rmse_m"] = float(np.sqrt(np.average(np.square(values), weights=weights)))
    return summary


def write_json(path: Path, content: dict[str, object]) -> None:
    """Write `content` as JSON to `path` atomically (a temporary file beside it, then a rename)."""
    with atomic_write(path, "w") as f:
        json.dump(content, f, indent=2)
        f.write("\n")
