"""runners/motions.py: list, inspect, validate (every problem), convert and derive."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from runner_scripts import load_runner
from test_motion_clip import walking_like_clip

import mmimic
from mmimic.motion import read_clip, write_clip

REPO = Path(__file__).resolve().parent.parent
TRIAL = REPO / "motions" / "sources" / "opensim_moco_walk" / "coordinates_full_trial_100hz.mot"


@pytest.fixture(scope="module")
def runner():
    return load_runner("motions")


def test_list_and_inspect_the_default_sets(runner, capsys: pytest.CaptureFixture) -> None:
    assert runner.main(["list", str(REPO / "motions" / "fullbody")]) == 0
    out = capsys.readouterr().out
    for text in ("fullbody/opensim_walk", "238", "2.37", "100", "Rajagopal"):
        assert text in out
    assert runner.main(["inspect", str(REPO / "motions" / "fullbody"), str(REPO / "motions" / "bimanual")]) == 0
    out = capsys.readouterr().out
    assert "bimanual/opensim_walk" in out and "train" in out and "derived" in out
    assert runner.main(["validate", str(REPO / "motions" / "fullbody"), str(REPO / "motions" / "bimanual")]) == 0
    shipped = len(list((REPO / "motions").glob("*/*.npz")))
    assert f"{shipped} clip(s) valid" in capsys.readouterr().out


def test_validate_lists_every_problem(runner, tmp_path: Path, fullbody: mmimic.Embodiment, capsys: pytest.CaptureFixture) -> None:
    good = walking_like_clip(fullbody)
    write_clip(tmp_path / "good.npz", good)
    nan = walking_like_clip(fullbody)
    nan.qpos[4, 20] = np.nan
    write_clip(tmp_path / "nan.npz", nan)
    slow = walking_like_clip(fullbody)
    slow.fps, slow.qpos = 0.0, slow.qpos[:1]
    write_clip(tmp_path / "slow.npz", slow)
    (tmp_path / "broken.npz").write_bytes(b"garbage")
    (tmp_path / "manifest.toml").write_text("[clips.ghost]\nweight = -1\n")

    assert runner.main(["validate", str(tmp_path)]) == 1
    out = capsys.readouterr().out
    expected = [
        ("nan.npz", "NaN/inf"),
        ("slow.npz", "fps must be a positive number"),
        ("slow.npz", "1 frame(s)"),
        ("broken.npz", "not a readable .npz clip"),
        ("manifest.toml", "clips.ghost names a clip with no file"),
        ("manifest.toml", "clips.ghost.weight must be a finite number >= 0"),
    ]
    lines = out.splitlines()
    for name, reason in expected:
        assert any(name in line and reason in line for line in lines), (name, reason, out)
    assert "6 problem(s) in 4 clip(s)" in out
    assert not any("good.npz" in line for line in lines)

    assert runner.main(["validate", str(tmp_path / "good.npz"), "--embodiment", "bimanual"]) == 1
    out = capsys.readouterr().out
    assert "made for embodiment 'fullbody', not 'bimanual'" in out and "1 problem(s)" in out
    empty = tmp_path / "empty"
    empty.mkdir()
    assert runner.main(["validate", str(empty), str(tmp_path / "nowhere")]) == 1
    out = capsys.readouterr().out
    assert "no .npz clips in this directory" in out and "no such file or directory" in out


def test_convert_and_derive(runner, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    out_path = tmp_path / "walk" / "stride.npz"
    assert runner.main(["convert", str(TRIAL), "--embodiment", "fullbody", "--out", str(out_path), "--start", "0.267", "--end", "1.412", "--license", "Apache-2.0"]) == 0
    clip = read_clip(out_path)
    assert clip.num_frames == 115 and clip.embodiment == "fullbody" and clip.license == "Apache-2.0"
    assert "coordinates_full_trial_100hz.mot" in clip.source
    arms = tmp_path / "arms" / "stride.npz"
    assert runner.main(["derive", str(out_path), "--embodiment", "bimanual", "--out", str(arms)]) == 0
    assert len(read_clip(arms).joint_names) == 36
    assert runner.main(["convert", str(tmp_path / "none.mot"), "--out", str(tmp_path / "x.npz")]) == 1
    assert "none.mot: no such file" in capsys.readouterr().out


def test_inspect_runs_as_a_script() -> None:
    result = subprocess.run(
        [sys.executable, "runners/motions.py", "inspect", "motions/fullbody"], cwd=REPO, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    assert "fullbody/opensim_walk" in result.stdout
