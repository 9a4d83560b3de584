"""`runners/train.py` end to end on the CPU: run directory, checkpoints, resume, fine-tune, bad input."""

from __future__ import annotations

import importlib.util
import json
import math
import os
import signal
import subprocess
import sys
import time
import tomllib
from pathlib import Path

import pytest
import torch

import mmimic
from mmimic.checkpoint import load_checkpoint
from mmimic.ppo import PPO, ActorCritic
from mmimic.train.config import ConfigError, TrainConfig, resolve_config
from mmimic.train.trainer import Trainer, load_for_resume

REPO = Path(__file__).resolve().parent.parent
TINY = ["--set", "network.actor_hidden=[32]", "--set", "network.critic_hidden=[32]",
        "--set", "run.validation_envs=2", "--set", "run.validation_steps=5", "--set", "run.num_steps=4",
        "--set", "ppo.num_minibatches=2"]


def load_runner():
    spec = importlib.util.spec_from_file_location("mmimic_train_runner", REPO / "runners/train.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def tiny_config(iterations: int, validation_interval: int):
    config = resolve_config("bimanual", "cpu", overrides=[
        "network.actor_hidden=[32]", "network.critic_hidden=[32]", "run.validation_envs=2", "run.validation_steps=5",
        "run.num_steps=4", "ppo.num_minibatches=2", "run.num_envs=3", f"run.iterations={iterations}",
        f"run.validation_interval={validation_interval}",
    ])
    return config


def test_config_toml_round_trip(tmp_path: Path) -> None:
    """config.toml, parsed by tomllib, is the checkpoint's dict, and read back as --config gives the same tree;
    a checkpoint written before `env` was typed (options as a dict, no seed) still loads."""
    config = resolve_config("bimanual", "cpu", overrides=[
        "env.site_deviation=0.25", "env.reward_weights.rpos=3", 'env.muscle_channels=["force"]', "run.seed=7"])
    path = tmp_path / "config.toml"
    config.to_toml(path)
    assert tomllib.loads(path.read_text()) == config.to_dict() and list(tmp_path.iterdir()) == [path]
    assert resolve_config("bimanual", "cpu", path) == config == TrainConfig.from_dict(config.to_dict())
    assert config.to_dict()["env"] == {"muscle_channels": ["force"], "reward_weights": {"rpos": 3},
                                       "site_deviation": 0.25}
    old = TrainConfig.from_dict({**config.to_dict(), "env": {"site_deviation": 0.25}})
    assert old.env == mmimic.EnvConfig(site_deviation=0.25) and old.env.seed is None  # the trainer uses run.seed


def test_stored_num_updates_is_accepted_and_ignored(tmp_path: Path) -> None:
    """`ppo.num_updates`, which earlier versions stored, is derived now (the run's iterations are the
    horizon of `ppo.anneal_lr`): a checkpoint's config or a config.toml holding it loads as if it were
    absent; a misspelt key beside it is still refused."""
    config = resolve_config("fullbody", "fullbody", overrides=["run.iterations=300"])
    stored = config.to_dict()
    assert "num_updates" not in stored["ppo"]
    assert TrainConfig.from_dict({**stored, "ppo": {**stored["ppo"], "num_updates": 300}}) == config
    path = tmp_path / "old_config.toml"
    path.write_text("[run]\niterations = 300\n\n[ppo]\nnum_updates = 12500\n")
    assert resolve_config("fullbody", "fullbody", path) == config
    assert resolve_config("fullbody", "fullbody", overrides=["ppo.num_updates=7", "run.iterations=300"]) == config
    with pytest.raises(ConfigError, match="unknown key 'ppo.num_update'"):
        resolve_config("fullbody", "fullbody", overrides=["ppo.num_update=7"])
    ppo = PPO(ActorCritic(4, 2, [8], [8], 1.0), config.ppo, "cpu", num_updates=config.run.iterations)
    assert ppo.learning_rate(150) == pytest.approx(config.ppo.lr / 2)
    with pytest.raises(ValueError, match="ppo.anneal_lr decays the learning rate over the run"):
        PPO(ActorCritic(4, 2, [8], [8], 1.0), config.ppo, "cpu")


def test_timesteps_give_the_run_length_without_overwriting_iterations() -> None:
    """`run.timesteps` is the run's length in environment steps of all ranks: the iterations follow from it,
    rounded up, for the number of ranks; the configuration keeps `run.iterations` as given."""
    config = resolve_config("bimanual", "cpu", overrides=["run.num_envs=3", "run.num_steps=4", "run.timesteps=100"])
    assert config.run.iterations == resolve_config("bimanual", "cpu").run.iterations
    assert (config.run.num_iterations(), config.run.num_iterations(2)) == (9, 5)  # ceil(100 / 12), ceil(100 / 24)
    assert TrainConfig.from_dict(config.to_dict()).run.num_iterations(2) == 5


def test_run_directory_and_policy_export(tmp_path: Path) -> None:
    out = tmp_path / "run"
    runner = load_runner()
    assert runner.main(["--embodiment", "bimanual", "--preset", "cpu", "--num-envs", "3", "--iterations", "2",
                        "--set", "run.validation_interval=1", "--out", str(out), *TINY]) == 0
    assert (out / "config.toml").is_file()
    lines = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert [r["iteration"] for r in lines] == [0, 1] and lines[-1]["env_steps"] == 2 * 3 * 4
    assert {"reward/total", "reward/qpos", "ppo/loss/value", "sps", "validation/reward/total"} <= lines[-1].keys()
    assert list((out / "tensorboard").glob("events.*"))
    checkpoints = sorted((out / "checkpoints").glob("checkpoint_*.pt"))
    assert [c.name for c in checkpoints] == ["checkpoint_000001.pt", "checkpoint_000002.pt"]
    raw = torch.load(checkpoints[-1], weights_only=True)
    assert raw["iteration"] == 2 and raw["embodiment"] == "bimanual"

    # The exported policy maps raw observations to the trainer's deterministic actions.
    checkpoint = load_checkpoint(checkpoints[-1], map_location="cpu")
    config = resolve_config("bimanual", "cpu", overrides=[o for o in TINY if o != "--set"] + ["run.num_envs=3"])
    trainer = Trainer(config, tmp_path / "probe", "cpu", init_checkpoint=checkpoint)
    obs = trainer.env.reset().clone()
    policy = mmimic.load_policy(checkpoints[-1])
    assert torch.equal(policy(obs), trainer.actor_critic.policy()(obs))


def test_resume_restores_iteration_schedule_and_normaliser(tmp_path: Path) -> None:
    straight = Trainer(tiny_config(4, 2), tmp_path / "straight", "cpu")
    straight.train()
    at_two = load_checkpoint(tmp_path / "straight/checkpoints/checkpoint_000002.pt", map_location="cpu")

    stopped = Trainer(tiny_config(4, 2), tmp_path / "stopped", "cpu")
    stopped.config.run.iterations = 2  # stop half way, as Ctrl-C after iteration 2 would
    stopped.train()
    checkpoint, run_dir = load_for_resume(tmp_path / "stopped")
    assert run_dir == tmp_path / "stopped"
    resumed = Trainer(tiny_config(4, 2), run_dir, "cpu", init_checkpoint=checkpoint,
                      resume=True)
    assert resumed.iteration == 2 and resumed.env_steps == at_two["env_steps"]
    assert resumed.ppo.learning_rate(resumed.iteration) == straight.ppo.learning_rate(2)
    normalizer = resumed.actor_critic.obs_normalizer
    for key in ("mean", "var", "count"):
        assert torch.equal(getattr(normalizer, key), at_two["obs_normalizer"][key])
    resumed.train()
    assert resumed.iteration == 4


def test_sigkill_leaves_no_truncated_checkpoint_and_resumes(tmp_path: Path) -> None:
    out = tmp_path / "killed"
    command = [sys.executable, str(REPO / "runners/train.py"), "--embodiment", "bimanual", "--preset", "cpu",
               "--num-envs", "3", "--iterations", "1000", "--set", "run.validation_interval=1", "--out", str(out), *TINY]
    process = subprocess.Popen(command, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                               env={**os.environ, "PYTHONUNBUFFERED": "1"})
    try:
        deadline = time.time() + 240
        while len(list((out / "checkpoints").glob("checkpoint_*.pt"))) < 2 and time.time() < deadline:
            time.sleep(0.2)
        os.kill(process.pid, signal.SIGKILL)
    finally:
        process.wait()
    files = sorted((out / "checkpoints").iterdir())
    assert files and all(f.suffix == ".pt" for f in files)  # no temporary leftovers
    for f in files:
        load_checkpoint(f, map_location="cpu")  # each one complete
    last = int(files[-1].stem.split("_")[1])
    checkpoint, _ = load_for_resume(out)
    assert checkpoint["iteration"] == last


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--preset", "huge"], "--preset 'huge' is not one of"),
        (["--set", "ppo.lr=fast"], "ppo.lr must be float"),
        (["--set", "run.horizon=3"], "unknown key 'run.horizon'"),
        (["--motions", str(REPO / "motions/fullbody")], "fullbody"),
        (["--reward", "nonsense=1"], "nonsense"),
    ],
)
def test_bad_input_is_refused_before_training(tmp_path: Path, args: list[str], message: str) -> None:
    runner = load_runner()
    out = tmp_path / "bad"
    code = runner.main(["--embodiment", "bimanual", "--iterations", "1", "--out", str(out), *TINY, *args])
    assert code == 2 and not (out / "checkpoints").exists()


def test_finetune_checks_the_checkpoint_embodiment(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    trainer = Trainer(tiny_config(1, 1), tmp_path / "base", "cpu")
    saved = trainer.train()
    payload = torch.load(saved, weights_only=True)
    payload["model_hash"] = "0" * 16
    foreign = tmp_path / "other.pt"
    torch.save(payload, foreign)
    runner = load_runner()
    code = runner.main(["--embodiment", "bimanual", "--finetune", str(foreign), "--reset-std", "0.5",
                        "--iterations", "1", "--out", str(tmp_path / "ft"), *TINY])
    assert code == 2 and "hash" in capsys.readouterr().out.lower()
    code = runner.main(["--embodiment", "bimanual", "--finetune", str(saved), "--reset-std", "0.5",
                        "--iterations", "1", "--num-envs", "3", "--out", str(tmp_path / "ft2"), *TINY])
    tuned = torch.load(tmp_path / "ft2/checkpoints/checkpoint_000001.pt", weights_only=True)
    assert code == 0 and tuned["iteration"] == 1
    assert math.isclose(math.exp(float(tuned["log_std"][0])), 0.5, rel_tol=0.2)
