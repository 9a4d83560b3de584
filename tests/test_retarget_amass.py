"""AMASS through the runner: the template-skeleton path and the smplx path with a synthetic model.

The SMPL-H model written here is clearly synthetic (one vertex per joint at a rough human
layout, random shape directions); real SMPL files are licence-gated and never shipped or fetched.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from runner_scripts import load_runner

import mmimic.embodiment
from mmimic.motion import check_clip
from mmimic.retarget.amass import SMPL_PARENTS

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture
def runner(monkeypatch, fullbody, bimanual):
    """The runner, loading the session's embodiments instead of compiling them again."""
    bodies = {"fullbody": fullbody, "bimanual": bimanual}
    monkeypatch.setattr(mmimic.embodiment, "load_embodiment", lambda name: bodies[name])
    return load_runner("retarget")


def synthetic_amass(path: Path, frames: int = 90, fps: float = 60.0) -> Path:
    """An AMASS-format SMPL-H clip: walking-like hip, knee and arm swing, moving along -y."""
    t = np.arange(frames) / fps
    phase = 2 * np.pi * t
    poses = np.zeros((frames, 156))
    poses[:, 0] = np.pi / 2  # the body model's y-up frame into the z-up world
    poses[:, 3], poses[:, 6] = -0.3 * np.sin(phase), 0.3 * np.sin(phase)  # hips (x axis)
    poses[:, 12], poses[:, 15] = 0.4 * (1 + np.sin(phase + 1)), 0.4 * (1 - np.sin(phase + 1))  # knees
    poses[:, 3 * 16 + 2], poses[:, 3 * 17 + 2] = -1.2, 1.2  # arms down from SMPL's T-pose
    poses[:, 3 * 18 + 1], poses[:, 3 * 19 + 1] = -0.5, 0.5  # elbows bent
    trans = np.stack([np.zeros(frames), -1.0 * t, 0.9 + 0.01 * np.sin(2 * phase)], axis=1)
    np.savez(path, poses=poses, trans=trans, betas=np.zeros(16), gender="neutral", mocap_framerate=fps)
    return path


def synthetic_smplh(directory: Path, betas: int = 10) -> Path:
    """A synthetic SMPL-H model file in smplx's format (`smplh/SMPLH_NEUTRAL.npz`): 52 joints,
    one vertex each, an identity joint regressor and skinning, random shape directions."""
    rng = np.random.default_rng(0)
    body = np.array([  # rough joint centres, y up, facing +z, left at +x (metres)
        [0.0, 0.93, 0.0], [0.08, 0.85, 0.0], [-0.08, 0.85, 0.0], [0.0, 1.05, -0.01], [0.09, 0.45, 0.01],
        [-0.09, 0.45, 0.01], [0.0, 1.18, -0.01], [0.09, 0.06, -0.02], [-0.09, 0.06, -0.02], [0.0, 1.24, 0.0],
        [0.1, 0.0, 0.12], [-0.1, 0.0, 0.12], [0.0, 1.5, -0.02], [0.07, 1.42, -0.01], [-0.07, 1.42, -0.01],
        [0.0, 1.6, 0.03], [0.18, 1.43, -0.02], [-0.18, 1.43, -0.02], [0.46, 1.43, -0.03], [-0.46, 1.43, -0.03],
        [0.72, 1.43, -0.03], [-0.72, 1.43, -0.03],
    ])
    fingers, parents = [], list(SMPL_PARENTS)
    for wrist, sign in ((20, 1.0), (21, -1.0)):  # 5 fingers x 3 joints per hand, SMPL-H order
        for finger in range(5):
            for k in range(3):
                fingers.append(body[wrist] + [sign * (0.05 + 0.025 * k), 0.0, 0.02 * (finger - 2)])
                parents.append(wrist if k == 0 else len(body) + len(fingers) - 2)
    joints = np.vstack([body, fingers])
    count = len(joints)
    path = directory / "smplh" / "SMPLH_NEUTRAL.npz"
    path.parent.mkdir(parents=True)
    np.savez(
        path,
        v_template=joints,
        shapedirs=0.01 * rng.standard_normal((count, 3, betas)),
        posedirs=np.zeros((count, 3, 9 * (count - 1))),
        J_regressor=np.eye(count),
        weights=np.eye(count),
        kintree_table=np.stack([parents, np.arange(count)]).astype(np.int64),
        f=np.array([[0, 1, 2]]),
        hands_componentsl=np.eye(45), hands_componentsr=np.eye(45),
        hands_meanl=np.zeros(45), hands_meanr=np.zeros(45),
        note=np.array("synthetic test model, not SMPL-H"),
    )
    return path


@pytest.mark.parametrize("with_model", [False, True], ids=["template", "smplx"])
def test_amass_clip_becomes_a_valid_clip(runner, tmp_path: Path, fullbody, bimanual, with_model: bool) -> None:
    source = synthetic_amass(tmp_path / "walk.npz")
    out = tmp_path / "out"
    args = [str(source), "--embodiment", "fullbody", "--out", str(out)]
    if with_model:
        synthetic_smplh(tmp_path / "models")
        args += ["--smpl-model", str(tmp_path / "models")]
    assert runner.main(args) == 0
    assert check_clip(out / "walk.npz", fullbody) == []
    report = json.loads((out / "report.json").read_text())
    entry = report["clips"][0]
    assert ("smplx body model" in entry["details"]["reader"]) == with_model
    assert ("template skeleton" in entry["details"]["reader"]) != with_model
    assert entry["passed"] and entry["metrics"]["keypoint_rmse_m"] < 0.025
    assert report["overall"]["written"] == 1 and report["overall"]["fps"] > 0
    assert sorted(p.name for p in out.iterdir()) == ["report.json", "walk.npz"]
    # the same source for the bimanual body: the arm joints, valid for it
    arms = tmp_path / "arms"
    assert runner.main([*args[:2], "bimanual", "--out", str(arms), *args[5:]]) == 0
    assert check_clip(arms / "walk.npz", bimanual) == []


def test_failing_clips_are_kept_out_unless_asked(runner, monkeypatch, tmp_path: Path, fullbody) -> None:
    import mmimic.retarget
    from mmimic.retarget import Retargeter, Thresholds

    strict = Thresholds(keypoint_rmse_m=1e-6)
    monkeypatch.setattr(mmimic.retarget, "Retargeter", lambda body: Retargeter(body, thresholds=strict))
    source = synthetic_amass(tmp_path / "walk.npz", frames=30)
    assert runner.main([str(source), "--embodiment", "fullbody", "--out", str(tmp_path / "a")]) == 1
    report = json.loads((tmp_path / "a/report.json").read_text())
    assert not report["clips"][0]["passed"] and report["clips"][0]["written"] is None
    assert "keypoint_rmse_m" in report["clips"][0]["failures"][0]
    assert not (tmp_path / "a/walk.npz").exists()
    assert runner.main([str(source), "--embodiment", "fullbody", "--out", str(tmp_path / "b"), "--keep-failing"]) == 0
    assert check_clip(tmp_path / "b/walk.npz", fullbody) == []
