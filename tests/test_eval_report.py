"""The report: every plot and a report.md that links them with the numbers."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
from test_eval_metrics import synthetic

from mmimic.eval.comparison import compare_gait
from mmimic.eval.human_data import load_opensim_trial
from mmimic.eval.metrics import compute_metrics
from mmimic.eval.model_gait import simulated_gait
from mmimic.eval.report import write_report
from mmimic.motion import fit_clip, read_clip
from mmimic.motion.resample import differentiate

REPO = Path(__file__).resolve().parent.parent


def test_report_with_gait_plots(fullbody, tmp_path: Path) -> None:
    clip = fit_clip(read_clip(REPO / "motions/fullbody/opensim_walk.npz"), fullbody, "clip")
    model = fullbody.mj_model
    act = np.random.default_rng(1).uniform(0, 1, (clip.qpos.shape[0], model.na))
    sim = simulated_gait(fullbody, clip.qpos, differentiate(model, clip.qpos, clip.fps), act, clip.fps, "walk")
    comparison = compare_gait(sim, load_opensim_trial(REPO / "motions/sources/opensim_moco_walk"))
    metrics = compute_metrics(synthetic(), ["walk", "run"], root_adr=0, quat_cols=[3])

    path = write_report(
        tmp_path,
        metrics,
        title="test",
        context={"checkpoint": "none"},
        gait={"walk": comparison},
        gait_skipped={"run": "no complete right stride"},
    )
    text = path.read_text()
    for image in ("errors.png", "walk_angles.png", "walk_grf.png", "walk_emg.png"):
        assert f"]({image})" in text and (tmp_path / image).stat().st_size > 5000, image
    assert "Clips not compared:\n\n- run: no complete right stride" in text
    knee = re.search(r"\| knee_angle_r \| (-?[0-9.]+) \|", text)
    assert knee and float(knee.group(1)) == float(f"{comparison.angles['knee_angle_r'].pearson_r:.3g}")
    assert "| 2 | 50.0% |" in text  # episodes, early-termination rate
