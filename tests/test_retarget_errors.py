"""Bad input: a clear error naming the file and the problem, and nothing written to --out."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
from runner_scripts import load_runner

import mmimic.embodiment

REPO = Path(__file__).resolve().parent.parent
CMU_BVH = REPO / "motions/sources/cmu_bvh/131_01.bvh"


@pytest.fixture
def runner(monkeypatch, fullbody, bimanual):
    bodies = {"fullbody": fullbody, "bimanual": bimanual}
    monkeypatch.setattr(mmimic.embodiment, "load_embodiment", lambda name: bodies[name])
    return load_runner("retarget")


def bvh_text(frames: int = 20) -> tuple[str, list[str]]:
    """The CMU clip's hierarchy and its first `frames` motion lines."""
    head, motion = CMU_BVH.read_text().split("MOTION")
    lines = motion.strip().splitlines()
    return head, lines[2 : 2 + frames]


def write_bvh(path: Path, head: str, rows: list[str], declared: int) -> Path:
    path.write_text(f"{head}MOTION\nFrames: {declared}\nFrame Time: 0.0083333\n" + "\n".join(rows) + "\n")
    return path


def amass_without_poses(tmp: Path) -> list[str]:
    path = tmp / "no_poses.npz"
    np.savez(path, trans=np.zeros((10, 3)), mocap_framerate=60.0)
    return [str(path)]


def amass_zero_frames(tmp: Path) -> list[str]:
    path = tmp / "empty.npz"
    np.savez(path, poses=np.zeros((0, 156)), trans=np.zeros((0, 3)), mocap_framerate=60.0)
    return [str(path)]


def bvh_malformed(tmp: Path) -> list[str]:
    head, rows = bvh_text()
    broken = head.replace("JOINT LeftKnee\n\t\t\t{", "JOINT LeftKnee\n", 1)  # a joint without its brace
    return [str(write_bvh(tmp / "malformed.bvh", broken, rows, len(rows)))]


def bvh_frame_count(tmp: Path) -> list[str]:
    head, rows = bvh_text()
    return [str(write_bvh(tmp / "short.bvh", head, rows, len(rows) + 5))]


def bvh_zero_frames(tmp: Path) -> list[str]:
    head, _ = bvh_text()
    return [str(write_bvh(tmp / "empty.bvh", head, [], 0))]


def bvh_unknown_skeleton(tmp: Path) -> list[str]:
    head, rows = bvh_text()
    renamed = head.replace("Left", "Links").replace("Right", "Rechts")
    return [str(write_bvh(tmp / "unknown.bvh", renamed, rows, len(rows)))]


def missing_model_dir(tmp: Path) -> list[str]:
    path = tmp / "walk.npz"
    np.savez(path, poses=np.zeros((10, 156)), trans=np.zeros((10, 3)), mocap_framerate=60.0)
    return [str(path), "--smpl-model", str(tmp / "no_such_models")]


@pytest.mark.parametrize(
    ("make", "named", "message"),
    [
        (amass_without_poses, "no_poses.npz", "no 'poses' array"),
        (amass_zero_frames, "empty.npz", "zero frames"),
        (bvh_malformed, "malformed.bvh", "malformed hierarchy"),
        (bvh_frame_count, "short.bvh", "Frames: 25, the file holds 20 frame line"),
        (bvh_zero_frames, "empty.bvh", "zero frames"),
        (bvh_unknown_skeleton, "unknown.bvh", "unknown skeleton.*--name-map"),
        (missing_model_dir, "no_such_models", "--smpl-model directory does not exist"),
    ],
    ids=["amass-no-poses", "amass-zero-frames", "bvh-hierarchy", "bvh-frame-count", "bvh-zero-frames",
         "unknown-skeleton", "missing-smpl-model"],
)
def test_bad_input_names_file_and_problem_and_writes_nothing(runner, capsys, tmp_path: Path, make, named, message) -> None:
    inputs = tmp_path / "inputs"
    inputs.mkdir()
    args = make(inputs)
    out = tmp_path / "out"
    good = str(REPO / "motions/sources/cmu_amp/amp_humanoid_run.npz")  # a good source beside the bad one
    assert runner.main([good, *args, "--embodiment", "fullbody", "--out", str(out)]) == 1
    error = " ".join(capsys.readouterr().err.split())
    assert named in error
    assert re.search(message, error), error
    assert not out.exists()
