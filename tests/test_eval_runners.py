"""`runners/eval.py` and `runners/play.py` on a checkpoint of a short CPU training run."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import imageio.v2 as imageio
import numpy as np
import pytest
import torch
from runner_scripts import load_runner

import mmimic
from mmimic.checkpoint import save_checkpoint
from mmimic.motion import MotionLibrary
from mmimic.ppo import ActorCritic

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def bimanual_checkpoint(tmp_path_factory) -> Path:
    """Two PPO iterations of two bimanual worlds with tiny networks."""
    out = tmp_path_factory.mktemp("train") / "run"
    options = "--embodiment bimanual --preset cpu --num-envs 2 --iterations 2 --device cpu".split()
    options += ["--motions", str(REPO / "motions" / "bimanual" / "opensim_walk.npz")]
    tiny = ["--set", "network.actor_hidden=[32]", "--set", "network.critic_hidden=[32]"]
    assert load_runner("train").main([*options, *tiny, "--out", str(out)]) == 0
    (checkpoint,) = sorted((out / "checkpoints").glob("checkpoint_*.pt"))
    return checkpoint


def test_eval_writes_metrics_report_and_export(bimanual_checkpoint: Path, tmp_path: Path) -> None:
    out_json, report, export = tmp_path / "eval.json", tmp_path / "report", tmp_path / "traj.npz"
    args = ["--checkpoint", str(bimanual_checkpoint), "--num-envs", "2", "--device", "cpu"]
    outputs = ["--json", str(out_json), "--report", str(report), "--export", str(export)]
    assert load_runner("eval").main(args + outputs) == 0  # no --motions: the run's training motions
    result = json.loads(out_json.read_text())
    overall = result["metrics"]["overall"]
    assert overall["episodes"] == 1 and 0.0 <= overall["frame_coverage"] <= 1.0
    assert overall["err_root_xyz"] is None  # fixed base
    for key in ("err_joint_pos", "err_joint_vel", "err_rpos", "err_site_abs", "mean_return", "mean_length"):
        assert np.isfinite(overall[key]), key
    assert "site deviation off" in result["termination"]  # bimanual validation: no termination
    assert result["motions"] == "the run's training motions"

    text = (report / "report.md").read_text()
    assert "](errors.png)" in text and (report / "errors.png").stat().st_size > 1000
    assert "Muscle paths against OpenSim" not in text  # the arms have no leg muscles to compare

    data = np.load(export)
    e, t = data["valid"].shape
    assert e == 1 and data["qpos"].shape == (1, t, 76) and data["act"].shape == (1, t, 126)
    for key in ("qvel", "ctrl", "actuator_force", "touch", "ref_qpos", "ref_qvel", "site_pos", "reward"):
        assert data[key].shape[:2] == (1, t), key
    # index 0 is the clip's first frame exactly; the states form one run of the episode's length
    assert np.allclose(data["qpos"][0, 0], data["ref_qpos"][0, 0], atol=1e-6)
    assert np.allclose(data["site_pos"][0, 0], data["ref_site_pos"][0, 0], atol=1e-5)
    length = int(data["episode_length"][0])
    assert data["valid"][0].sum() == length  # the start state + every post-step state but the last
    assert list(data["clip_names"]) == ["bimanual/opensim_walk"]


def test_eval_refuses_another_embodiment(bimanual_checkpoint: Path, capsys) -> None:
    eval_main = load_runner("eval").main
    common = ["--checkpoint", str(bimanual_checkpoint), "--device", "cpu"]
    assert eval_main([*common, "--motions", str(REPO / "motions" / "fullbody")]) == 2
    assert "made for embodiment 'fullbody', not 'bimanual'" in capsys.readouterr().out
    assert eval_main([*common, "--motions", str(REPO / "motions" / "fullbody"), "--embodiment", "fullbody"]) == 2
    out = capsys.readouterr().out
    assert "does not fit the environment" in out and "embodiment 'bimanual'" in out and "Traceback" not in out


def test_eval_fullbody_reports_a_strideless_rollout(fullbody, tmp_path: Path) -> None:
    """An untrained full body falls: the gait comparison is skipped with the reason, nothing crashes."""
    library = MotionLibrary(fullbody, [REPO / "motions" / "fullbody"], "cpu")
    env = mmimic.ImitationEnv(fullbody, library, 1, "cpu", mmimic.EnvConfig())
    torch.manual_seed(0)
    actor_critic = ActorCritic(env.num_obs, env.num_actions, [16], [16], 0.5)
    checkpoint = save_checkpoint(
        tmp_path / "fullbody.pt",
        actor_critic=actor_critic,
        optimizer=None,
        iteration=0,
        env_steps=0,
        config={"embodiment": "fullbody", "env": {}},
        obs_layout=env.obs_layout,
        embodiment_name=fullbody.name,
        model_hash=fullbody.model_hash,
    )
    out_json = tmp_path / "eval.json"
    walk = REPO / "motions" / "fullbody" / "opensim_walk.npz"
    args = ["--checkpoint", str(checkpoint), "--motions", str(walk), "--device", "cpu"]
    assert load_runner("eval").main([*args, "--json", str(out_json), "--report", str(tmp_path / "r")]) == 0
    result = json.loads(out_json.read_text())
    assert result["metrics"]["overall"]["early_termination_rate"] == 1.0
    (reason,) = result["gait_skipped"].values()
    assert "no complete right stride" in reason
    assert any("body mass" in note for note in result["experiment_notes"])
    report = (tmp_path / "r" / "report.md").read_text()
    assert "Clips not compared:" in report
    assert "## Muscle paths against OpenSim" in report  # the full body's leg muscles, checked against OpenSim
    assert (tmp_path / "r" / "anatomy_recfem_r.png").stat().st_size > 1000


def test_play_writes_a_playable_mp4(bimanual_checkpoint: Path, tmp_path: Path) -> None:
    video = tmp_path / "play.mp4"
    env = {**os.environ, "MUJOCO_GL": "egl"}
    clip = REPO / "motions" / "bimanual" / "opensim_walk.npz"
    small = "--steps 8 --fps 25 --width 96 --height 64 --msaa 0 --device cpu".split()
    command = [sys.executable, str(REPO / "runners" / "play.py"), "--checkpoint", str(bimanual_checkpoint)]
    command += ["--motion", str(clip), "--video", str(video), *small]
    done = subprocess.run(
        command,
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    reader = imageio.get_reader(video)
    frame = reader.get_data(0)
    reader.close()
    assert frame.shape == (64, 96, 3) and frame.std() > 1.0  # a rendered image, not a blank


def test_play_ghost_is_the_clips_reference_at_each_recorded_state(bimanual_checkpoint: Path) -> None:
    """The ghost's poses are the clip's frames 0, 1, ... (re-centred as evaluation re-centres them), one per state."""
    from mmimic.eval.rollout import TerminationThresholds, prepare, reference_frames

    clip = REPO / "motions" / "bimanual" / "opensim_walk.npz"
    setup = prepare(bimanual_checkpoint, [clip], num_envs=1, device="cpu",
                    thresholds=TerminationThresholds(no_termination=True))
    frames = load_runner("play")._play(setup, 6)
    assert frames.steps == 6 and len(frames.ref_qpos) == len(frames.qpos) == 7
    truth = reference_frames(setup.library, torch.zeros(1), 7, setup.env.root_qpos_adr)["ref_qpos"][0]
    np.testing.assert_allclose(np.array(frames.ref_qpos), truth, rtol=0, atol=1e-6)
