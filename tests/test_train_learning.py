"""Learning on the CPU, and the examples of docs/training.md run as written."""

from __future__ import annotations

import json
import re
import shlex
import statistics
from pathlib import Path

import pytest
import torch

import mmimic
from mmimic.train.config import resolve_config
from mmimic.train.trainer import EpisodeStats, Trainer

REPO = Path(__file__).resolve().parent.parent
DOCS = REPO / "docs" / "training.md"


TINY = ["network.actor_hidden=[32]", "network.critic_hidden=[32]", "run.num_envs=3", "run.num_steps=4",
        "ppo.num_minibatches=2", "run.iterations=1", "run.validation_envs=2", "run.validation_steps=5"]


def test_rollout_stores_the_observation_each_action_was_taken_from(tmp_path: Path) -> None:
    """The environment overwrites its observation buffer in step(): the storage must hold the
    observation the policy acted on (not the next one), else PPO learns nothing."""
    trainer = Trainer(resolve_config("bimanual", "cpu", overrides=TINY), tmp_path / "run", "cpu")
    seen: list[torch.Tensor] = []
    act = trainer.actor_critic.act

    def recording_act(obs: torch.Tensor, update_normalizer: bool):
        seen.append(obs.clone())
        return act(obs, update_normalizer=update_normalizer)

    trainer.actor_critic.act = recording_act
    last = trainer._rollout(trainer.env.reset(), EpisodeStats(trainer.device))
    assert torch.equal(trainer.storage.obs, torch.stack(seen))
    assert not torch.equal(trainer.storage.obs[-1], last)  # the bootstrap observation is the next one


def doc_blocks(language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", DOCS.read_text(), re.S)


def test_ten_line_example_drives_the_simulator(tmp_path: Path) -> None:
    """The docs' example, run on a checkpoint of a short run, drives the environment with the policy."""
    trainer = Trainer(resolve_config("bimanual", "cpu", overrides=TINY), tmp_path / "run", "cpu")
    saved = trainer.train()
    (example,) = [block for block in doc_blocks("python") if "load_policy" in block]
    assert len([line for line in example.splitlines() if line.strip()]) <= 12
    code, count = re.subn(r'checkpoint = "[^"]+"', f"checkpoint = {str(saved)!r}", example)
    assert count == 1
    namespace: dict = {}
    exec(compile(code, str(DOCS), "exec"), namespace)
    env, obs, reward = namespace["env"], namespace["obs"], namespace["reward"]
    assert isinstance(env, mmimic.ImitationEnv) and env.obs_layout == trainer.env.obs_layout
    assert obs.shape == (4, env.num_obs) and reward.shape == (4,) and torch.isfinite(reward).all()
    # The policy in the example is the trainer's deterministic policy.
    probe = trainer.env.reset().clone()
    assert torch.equal(namespace["policy"](probe), trainer.actor_critic.deterministic(probe))


def test_toml_example_equals_the_set_example(tmp_path: Path) -> None:
    """The docs' `--set` command line and its TOML file resolve to the same configuration."""
    (toml_text,) = doc_blocks("toml")
    command = next(block for block in doc_blocks("bash") if "--set" in block)
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
