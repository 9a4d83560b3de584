"""Ctrl-C on `runners/train.py`: the run stops after the current iteration, saves a checkpoint, exits 0,
and `--resume RUN_DIR` continues from that checkpoint."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import torch
from runner_scripts import load_runner

from mmimic.checkpoint import load_checkpoint

REPO = Path(__file__).resolve().parent.parent
ENVS, STEPS, MINIBATCHES = 3, 4, 2
TINY = ["--set", "network.actor_hidden=[32]", "--set", "network.critic_hidden=[32]",
        "--set", "run.validation_envs=2", "--set", "run.validation_steps=5", "--set", f"run.num_steps={STEPS}",
        "--set", f"ppo.num_minibatches={MINIBATCHES}"]


def metrics(run_dir: Path) -> list[dict]:
    path = run_dir / "metrics.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.is_file() else []


def test_ctrl_c_saves_exits_cleanly_and_resumes(tmp_path: Path) -> None:
    out = tmp_path / "run"
    # No validation checkpoint in reach: the only checkpoint is the one Ctrl-C writes.
    command = [sys.executable, str(REPO / "runners/train.py"), "--embodiment", "bimanual", "--preset", "cpu",
               "--num-envs", str(ENVS), "--iterations", "100000", "--set", "run.validation_interval=100000",
               "--out", str(out), *TINY]
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "COLUMNS": "400"}
    process = subprocess.Popen(command, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.time() + 240
        while len(metrics(out)) < 2 and process.poll() is None and time.time() < deadline:
            time.sleep(0.2)
        assert process.poll() is None, "the run ended before it could be interrupted"
        assert len(metrics(out)) >= 2, "no training iterations within 240 s"
        process.send_signal(signal.SIGINT)
        output, _ = process.communicate(timeout=120)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()

    assert process.returncode == 0, output[-3000:]
    match = re.search(r"stopped by Ctrl-C after iteration (\d+); saved", output)
    assert match, output[-3000:]
    stopped_at = int(match.group(1))
    assert stopped_at >= 2 and "Traceback" not in output

    # The checkpoint of the iteration it stopped at is the run's only one, complete, and matches the log.
    files = sorted((out / "checkpoints").iterdir())
    assert [f.name for f in files] == [f"checkpoint_{stopped_at:06d}.pt"]
    checkpoint = load_checkpoint(files[0])
    assert checkpoint["iteration"] == stopped_at and checkpoint["env_steps"] == stopped_at * ENVS * STEPS
    assert [r["iteration"] for r in metrics(out)] == list(range(stopped_at))
    assert torch.load(files[0], weights_only=True)["format"] == "mmimic-checkpoint"

    # Resuming the run directory continues from that checkpoint: counters, log and optimiser state.
    assert load_runner("train").main(["--resume", str(out), "--iterations", str(stopped_at + 2)]) == 0
    resumed = load_checkpoint(out / f"checkpoints/checkpoint_{stopped_at + 2:06d}.pt")
    assert resumed["iteration"] == stopped_at + 2
    assert resumed["env_steps"] == (stopped_at + 2) * ENVS * STEPS
    records = metrics(out)
    assert [r["iteration"] for r in records] == list(range(stopped_at + 2))
    assert [r["env_steps"] for r in records] == [(i + 1) * ENVS * STEPS for i in range(stopped_at + 2)]
    # Muon's step counter went on from the saved one (a fresh optimiser would be at 2 x minibatches).
    steps = resumed["optimizer"]["parts"]["muon"]["step"]
    assert int(steps) == (stopped_at + 2) * MINIBATCHES
    # The normaliser kept counting from the checkpoint's statistics.
    count = float(resumed["obs_normalizer"]["count"])
    assert round(count) == (stopped_at + 2) * ENVS * STEPS
