"""A run that watches itself: divergence (non-finite weights or actions) stops training within the iteration it
happens in, leaves the last finite checkpoint as the newest, and says so; a full disk mid-run and a NaN policy
given to eval.py end in one sentence."""

from __future__ import annotations

import errno
import importlib.util
import json
import math
import sys
from pathlib import Path

import pytest
import torch

from mmimic.checkpoint import load_checkpoint, load_policy
from mmimic.ppo import PPO, ActorCritic

REPO = Path(__file__).resolve().parent.parent
CLIP = REPO / "motions/bimanual/opensim_walk.npz"
ENVS, STEPS = 2, 4
TINY = ["--embodiment", "bimanual", "--preset", "cpu", "--motions", str(CLIP), "--num-envs", str(ENVS),
        "--set", "network.actor_hidden=[32]", "--set", "network.critic_hidden=[32]", "--set", f"run.num_steps={STEPS}",
        "--set", "ppo.num_minibatches=2", "--set", "run.validation_interval=1", "--set", "run.validation_envs=1",
        "--set", "run.validation_steps=3"]


def runner(name: str):
    spec = importlib.util.spec_from_file_location(f"mmimic_{name}_runner", REPO / f"runners/{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def output(capsys: pytest.CaptureFixture) -> str:
    captured = capsys.readouterr()
    return " ".join((captured.out + captured.err).split())


def test_nan_learning_rate_stops_within_the_iteration(tmp_path: Path, capsys: pytest.CaptureFixture,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """The first update is sound; the second's learning rate is NaN (what `--set ppo.lr=nan` did before the
    configuration refused it): the run stops in iteration 2, and checkpoint 1 stays the newest."""
    sound = PPO.learning_rate
    monkeypatch.setattr(PPO, "learning_rate", lambda self, it: sound(self, it) if it < 1 else math.nan)
    out = tmp_path / "run"
    assert runner("train").main([*TINY, "--iterations", "4", "--out", str(out)]) == 3
    text = output(capsys)
    newest = out / "checkpoints/checkpoint_000001.pt"
    assert "training stopped: iteration 2 diverged" in text and "non-finite network weights (log_std, actor." in text, text
    assert f"the newest checkpoint, {newest}, is the last good one" in text and "Traceback" not in text, text
    assert sorted(p.name for p in (out / "checkpoints").iterdir()) == ["checkpoint_000001.pt"]
    checkpoint = load_checkpoint(newest)
    assert checkpoint["iteration"] == 1
    assert all(torch.isfinite(t).all() for t in checkpoint["actor"].values())
    load_policy(newest)  # finite: the policy loads
    records = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert [r["iteration"] for r in records] == [0, 1]  # the bad iteration is logged, for the record
    assert records[0]["errors/nonfinite_weights"] == 0 and records[1]["errors/nonfinite_weights"] > 0

    # eval.py on the diverged weights (written behind save_checkpoint's back) says the policy outputs NaN.
    payload = torch.load(newest, weights_only=True)
    payload["actor"] = {k: torch.full_like(v, math.nan) for k, v in payload["actor"].items()}
    poisoned = tmp_path / "nan.pt"
    torch.save(payload, poisoned)
    assert runner("eval").main(["--checkpoint", str(poisoned), "--motions", str(CLIP), "--num-envs", "1",
                                "--no-gait"]) == 2
    text = output(capsys)
    assert f"checkpoint {poisoned}: non-finite weights (actor." in text and "its policy outputs NaN" in text, text

    # Finite weights whose output overflows to inf: eval.py runs, and says how many steps had such actions.
    payload = torch.load(newest, weights_only=True)
    last = sorted(k for k in payload["actor"] if k.endswith("weight"))[-1]
    payload["actor"][last] = torch.full_like(payload["actor"][last], 3e38)
    overflowing = tmp_path / "overflow.pt"
    torch.save(payload, overflowing)
    report = tmp_path / "eval.json"
    assert runner("eval").main(["--checkpoint", str(overflowing), "--motions", str(CLIP), "--num-envs", "1",
                                "--no-gait", "--json", str(report)]) == 0
    text = output(capsys)
    assert "warning: the policy output NaN or inf actions in 1 control step(s)" in text, text
    assert json.loads(report.read_text())["nan_actions"] == 1


def test_non_finite_actions_above_the_limit_stop_training(tmp_path: Path, capsys: pytest.CaptureFixture,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    """One world's actions turn NaN in the second iteration: 50 % of the rollout's actions, above the 1 % limit."""
    act = ActorCritic.act
    calls = {"n": 0}

    def act_with_nan(self, obs, update_normalizer):
        calls["n"] += 1
        action, log_prob, value, mean = act(self, obs, update_normalizer)
        if calls["n"] > STEPS:
            action = action.clone()
            action[0] = math.nan
        return action, log_prob, value, mean

    monkeypatch.setattr(ActorCritic, "act", act_with_nan)
    out = tmp_path / "run"
    assert runner("train").main([*TINY, "--iterations", "3", "--out", str(out)]) == 3
    text = output(capsys)
    assert "iteration 2 diverged" in text and "50.0% of the rollout's actions were non-finite" in text, text
    assert "run.max_nonfinite_actions = 0.01" in text, text
    assert sorted(p.name for p in (out / "checkpoints").iterdir()) == ["checkpoint_000001.pt"]
    record = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()][-1]
    assert record["errors/nan_actions"] == STEPS and record["errors/nonfinite_weights"] == 0


def test_full_disk_mid_run_is_one_sentence(tmp_path: Path, capsys: pytest.CaptureFixture,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    import mmimic.checkpoint

    def full(obj: object, f: object) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(mmimic.checkpoint.torch, "save", full)
    out = tmp_path / "run"
    assert runner("train").main([*TINY, "--iterations", "1", "--out", str(out)]) == 2
    text = output(capsys)
    path = out / "checkpoints/checkpoint_000001.pt"
    assert f"error: {path}: no space left on device; free some space or write elsewhere" in text, text
    assert "Traceback" not in text and list((out / "checkpoints").iterdir()) == []
