"""Learning on the CPU, the rollout's bookkeeping, and the examples of docs/training.md run as written."""

from __future__ import annotations

import importlib.util
import json
import math
import re
import shlex
import statistics
from pathlib import Path

import pytest
import torch

import mmimic
from mmimic.checkpoint import load_checkpoint
from mmimic.train.config import resolve_config
from mmimic.train.trainer import EpisodeStats, Trainer

REPO = Path(__file__).resolve().parent.parent
DOCS = REPO / "docs" / "training.md"
TINY = ["network.actor_hidden=[32]", "network.critic_hidden=[32]", "run.num_envs=3", "run.num_steps=4",
        "ppo.num_minibatches=2", "run.validation_envs=2", "run.validation_steps=5"]


def load_runner():
    spec = importlib.util.spec_from_file_location("mmimic_train_runner", REPO / "runners/train.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def doc_blocks(language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", DOCS.read_text(), re.S)


def records(run_dir: Path) -> list[dict]:
    return [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Trainer, Path]:
    """A two-iteration run: the trainer and its last checkpoint."""
    trainer = Trainer(resolve_config("bimanual", "cpu", overrides=[*TINY, "run.iterations=2"]),
                      tmp_path_factory.mktemp("tiny") / "run", "cpu")
    return trainer, trainer.train()


def test_rollout_stores_the_observation_each_action_was_taken_from(tmp_path: Path) -> None:
    """The environment overwrites its observation buffer in step(): the storage must hold the
    observation the policy acted on, not the next one (with the next one, PPO trains the policy
    and the critic on shifted observations and learns nothing)."""
    trainer = Trainer(resolve_config("bimanual", "cpu", overrides=[*TINY, "run.iterations=1"]), tmp_path / "run", "cpu")
    seen: list[torch.Tensor] = []
    act = trainer.actor_critic.act

    def recording_act(obs: torch.Tensor, update_normalizer: bool):
        seen.append(obs.clone())
        return act(obs, update_normalizer=update_normalizer)

    trainer.actor_critic.act = recording_act
    last = trainer._rollout(trainer.env.reset(), EpisodeStats(trainer.device))
    assert torch.equal(trainer.storage.obs, torch.stack(seen))
    assert not torch.equal(trainer.storage.obs[-1], last)  # the bootstrap observation is the next one


def test_ten_line_example_drives_the_simulator(tiny_run: tuple[Trainer, Path]) -> None:
    """The docs' example, run on a checkpoint, drives the environment with the trainer's policy."""
    trainer, saved = tiny_run
    (example,) = [block for block in doc_blocks("python") if "load_policy" in block]
    assert len([line for line in example.splitlines() if line.strip()]) <= 12
    code, count = re.subn(r'checkpoint = "[^"]+"', f"checkpoint = {str(saved)!r}", example)
    assert count == 1
    namespace: dict = {}
    exec(compile(code, str(DOCS), "exec"), namespace)
    env, obs, reward = namespace["env"], namespace["obs"], namespace["reward"]
    assert isinstance(env, mmimic.ImitationEnv) and env.obs_layout == trainer.env.obs_layout
    assert obs.shape == (4, env.num_obs) and reward.shape == (4,) and torch.isfinite(reward).all()
    probe = trainer.env.reset().clone()
    assert torch.equal(namespace["policy"](probe), trainer.actor_critic.deterministic(probe))


def test_plot_example_draws_the_run(tiny_run: tuple[Trainer, Path], tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    import matplotlib

    matplotlib.use("Agg")
    trainer, _ = tiny_run
    (example,) = [block for block in doc_blocks("python") if "savefig" in block]
    code, count = re.subn(r'run = "[^"]+"', f"run = {str(trainer.paths.root)!r}", example)
    assert count == 1
    exec(compile(code, str(DOCS), "exec"), {})
    png = trainer.paths.root / "curve.png"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_toml_example_equals_the_set_example(tmp_path: Path) -> None:
    """The docs' `--set` command line and its TOML file resolve to the same configuration."""
    (toml_text,) = doc_blocks("toml")
    command = next(block for block in doc_blocks("bash") if "--set ppo.optimizer" in block)
    args = shlex.split(command.replace("\\\n", " "))
    overrides = [args[i + 1] for i, arg in enumerate(args) if arg == "--set"]
    assert len(overrides) == 4
    path = tmp_path / "my_run.toml"
    path.write_text(toml_text)
    from_toml = resolve_config("bimanual", "cpu", path)
    from_set = resolve_config("bimanual", "cpu", overrides=overrides)
    assert from_toml.to_dict() == from_set.to_dict()
    assert from_set.ppo.lr == 3e-4 and from_set.ppo.optimizer == "adam"
    assert from_set.network.actor_hidden == [512, 512] and from_set.env == {"site_deviation": 0.25}


# The CPU demonstration of docs/benchmarks.md, shortened to 70 iterations (about 2 minutes on 2 cores).
DEMO = ["--embodiment", "bimanual", "--preset", "cpu", "--motions", str(REPO / "motions/bimanual/opensim_walk.npz"),
        "--num-envs", "32", "--set", "ppo.lr=2e-3", "--set", "ppo.num_minibatches=8", "--set", "ppo.gamma=0.9",
        "--set", "ppo.lam=0.9"]


@pytest.mark.slow
def test_cpu_demo_learns_to_track_the_shipped_clip_longer(tmp_path: Path) -> None:
    """70 iterations of the bimanual CPU demonstration on the shipped clip (22 400 environment steps).

    What a CPU learns in minutes is to stay inside the 5 cm termination bound longer. Measured
    (mean of iterations 60-69 over mean of iterations 0-9): episode length x1.67 and episode
    return x1.58 in this exact run (it is deterministic on one machine: the first 70 iterations
    of the benchmark run), x2.2-3.0 and x2.0-2.7 with two other action-noise streams; the
    thresholds 1.4 and 1.3 leave that margin. The critic's explained variance goes from about
    0.1 to 0.81-0.93 (best 10-iteration mean). The mean reward per step of the training rollouts
    goes *down* (3.38 in the first 3 iterations, 3.18 in the last 10 here, 3.02-3.09 with the
    other streams) because longer episodes spend more steps far from their
    reset state; tracking at a fixed episode age is what the validation rollouts measure
    (docs/benchmarks.md), too noisy with 4 worlds to assert here.
    """
    out = tmp_path / "demo"
    assert load_runner().main([*DEMO, "--iterations", "70", "--out", str(out)]) == 0
    rows = records(out)
    assert [r["iteration"] for r in rows] == list(range(70))
    length = [r["episode/length"] for r in rows]
    returns = [r["episode/return"] for r in rows]
    assert None not in length and None not in returns
    assert statistics.mean(length[-10:]) > 1.4 * statistics.mean(length[:10]), length
    assert statistics.mean(returns[-10:]) > 1.3 * statistics.mean(returns[:10]), returns
    explained = [r["ppo/explained_variance"] for r in rows]
    assert statistics.mean(explained[:3]) < 0.2
    assert max(statistics.mean(explained[i : i + 10]) for i in range(0, 70, 10)) > 0.6, explained
    assert all(math.isfinite(r["reward/total"]) for r in rows)
    assert sum(r["ppo/skipped"] for r in rows) == 0 and sum(r["errors/nan_actions"] for r in rows) == 0
    assert load_checkpoint(out / "checkpoints/checkpoint_000070.pt")["iteration"] == 70
