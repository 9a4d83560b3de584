"""Checkpoint format: round trip, policy export, refusal of bad files, atomic writes."""

import os

import numpy as np
import pytest
import torch

import mmimic.checkpoint as ckpt_mod
from mmimic.checkpoint import (
    CheckpointError,
    actor_critic_from_checkpoint,
    check_compatible,
    load_checkpoint,
    load_policy,
    restore_actor_critic,
    save_checkpoint,
)
from mmimic.ppo import PPO, ActorCritic, PPOConfig, ReturnNormalizer, RolloutStorage

LAYOUT = [("qpos", 5), ("qvel", 4), ("goal", 3)]


def trained(residual=False, seed=0):
    """A small actor-critic after a few normaliser updates and one PPO update."""
    torch.manual_seed(seed)
    hidden = [16, 24, 24] if residual else [16, 16]
    ac = ActorCritic(12, 3, hidden, [16], init_std=0.2, residual=residual)
    ppo = PPO(ac, PPOConfig(num_minibatches=2, lr=1e-2), "cpu")
    storage = RolloutStorage(2, 8, 12, 3, "cpu")
    for _ in range(2):
        obs = torch.randn(8, 12) * 4 + 2
        a, lp, v, _ = ac.act(obs, update_normalizer=True)
        storage.add(obs, a, lp, v, torch.randn(8), torch.rand(8) < 0.3, torch.zeros(8, dtype=torch.bool))
    ppo.compute_returns(storage, torch.randn(8, 12))
    ppo.update(storage, 0)
    return ac, ppo


def save(path, ac, ppo, **overrides):
    kwargs = dict(
        actor_critic=ac,
        optimizer=ppo.optimizer,
        iteration=7,
        env_steps=12345,
        config={"ppo": {"lr": 4e-4, "hidden": [16, 16]}, "seed": 0, "note": None, "pair": (1, 2)},
        obs_layout=LAYOUT,
        embodiment_name="myobimanualarm",
        model_hash="abc123",
        extra={"wall_time": 1.5},
    )
    kwargs.update(overrides)
    return save_checkpoint(path, **kwargs)


def test_round_trip_with_weights_only(tmp_path):
    ac, ppo = trained()
    rewards = ReturnNormalizer(8)
    rewards(torch.randn(8), torch.zeros(8, dtype=torch.bool))
    path = save(tmp_path / "ckpt.pt", ac, ppo, reward_normalizer=rewards)
    raw = torch.load(path, weights_only=True)
    assert raw["format"] == "mmimic-checkpoint" and raw["version"] == 1
    data = load_checkpoint(path)
    assert data["iteration"] == 7 and data["env_steps"] == 12345
    assert data["obs_layout"] == [["qpos", 5], ["qvel", 4], ["goal", 3]]
    assert data["embodiment"] == "myobimanualarm" and data["model_hash"] == "abc123"
    assert data["config"]["ppo"]["hidden"] == [16, 16] and data["extra"] == {"wall_time": 1.5}

    fresh = ActorCritic(12, 3, [16, 16], [16], init_std=0.2)
    restore_actor_critic(data, fresh)
    for (name, a), b in zip(ac.state_dict().items(), fresh.state_dict().values()):
        assert torch.equal(a, b), name
    fresh_ppo = PPO(fresh, PPOConfig(num_minibatches=2), "cpu")
    fresh_ppo.optimizer.load_state_dict(data["optimizer"])
    assert torch.equal(fresh_ppo.optimizer.parts["adam"].exp_avg, ppo.optimizer.parts["adam"].exp_avg)
    restored = ReturnNormalizer(8)
    restored.load_state_dict(data["reward_normalizer"])
    assert torch.equal(restored.returns, rewards.returns)

    with pytest.raises(CheckpointError, match="architecture"):
        restore_actor_critic(data, ActorCritic(12, 3, [16, 8], [16], init_std=0.2))


@pytest.mark.parametrize("residual", [False, True])
def test_load_policy_reproduces_deterministic_actions_exactly(tmp_path, residual):
    ac, ppo = trained(residual)
    path = save(tmp_path / "ckpt.pt", ac, ppo)
    obs = torch.randn(32, 12) * 4 + 2
    policy = load_policy(path)
    assert isinstance(policy, torch.nn.Module) and not policy.training
    assert torch.equal(policy(obs), ac.policy()(obs))
    count = policy.obs_normalizer.count.clone()
    policy(obs)
    assert torch.equal(policy.obs_normalizer.count, count)  # inference never updates statistics

    stochastic = load_policy(path, sample=True)
    torch.manual_seed(5)
    sampled = stochastic(obs)
    torch.manual_seed(5)
    expected = ac.policy()(obs) + torch.exp(ac.log_std) * torch.randn(32, 3)
    torch.testing.assert_close(sampled, expected)
    assert actor_critic_from_checkpoint(load_checkpoint(path)).architecture["residual"] is residual


def test_truncated_corrupt_foreign_and_missing_files_are_refused(tmp_path):
    ac, ppo = trained()
    path = save(tmp_path / "good.pt", ac, ppo)
    blob = path.read_bytes()
    for name, data in (("half.pt", blob[: len(blob) // 2]), ("tail.pt", blob[:-20]), ("junk.pt", b"not a torch file")):
        (tmp_path / name).write_bytes(data)
        with pytest.raises(CheckpointError, match=rf"{name}.*truncated or corrupt"):
            load_checkpoint(tmp_path / name)
    torch.save({"state_dict": ac.state_dict()}, tmp_path / "foreign.pt")
    torch.save(torch.zeros(3), tmp_path / "tensor.pt")
    for name in ("foreign.pt", "tensor.pt"):
        with pytest.raises(CheckpointError, match=rf"{name}.*not an mmimic checkpoint"):
            load_checkpoint(tmp_path / name)
    with pytest.raises(CheckpointError, match=r"missing\.pt: no such file"):
        load_policy(tmp_path / "missing.pt")
    torch.save({"format": "mmimic-checkpoint", "version": 99}, tmp_path / "future.pt")
    with pytest.raises(CheckpointError, match="version 99"):
        load_checkpoint(tmp_path / "future.pt")


def test_atomic_write_leaves_no_temporary_files(tmp_path, monkeypatch):
    ac, ppo = trained()
    path = save(tmp_path / "ckpt.pt", ac, ppo)
    save(path, ac, ppo, iteration=8)  # overwrite in place
    assert os.listdir(tmp_path) == ["ckpt.pt"] and load_checkpoint(path)["iteration"] == 8

    def failing_save(obj, f):
        f.write(b"partial")
        raise OSError("disk full")

    monkeypatch.setattr(ckpt_mod.torch, "save", failing_save)
    with pytest.raises(OSError, match="disk full"):
        save(path, ac, ppo, iteration=9)
    monkeypatch.undo()
    assert os.listdir(tmp_path) == ["ckpt.pt"] and load_checkpoint(path)["iteration"] == 8


def test_bad_content_is_refused_before_writing(tmp_path):
    ac, ppo = trained()
    with pytest.raises(TypeError, match=r"checkpoint\['config'\]\['lr'\] is a numpy.float32"):
        save(tmp_path / "a.pt", ac, ppo, config={"lr": np.float32(1e-3)})
    with pytest.raises(ValueError, match="adds up to 11"):
        save(tmp_path / "a.pt", ac, ppo, obs_layout=[("qpos", 11)])
    assert os.listdir(tmp_path) == []


def test_check_compatible_names_every_difference(tmp_path):
    ac, ppo = trained()
    path = save(tmp_path / "ckpt.pt", ac, ppo)
    check_compatible(load_checkpoint(path), obs_layout=LAYOUT, embodiment_name="myobimanualarm", model_hash="abc123")
    with pytest.raises(CheckpointError) as err:
        check_compatible(
            load_checkpoint(path),
            obs_layout=[("qpos", 5), ("qvel", 5), ("goal", 3), ("touch", 2)],
            embodiment_name="myofullbody",
            model_hash="zzz",
        )
    message = str(err.value)
    for part in (
        "embodiment 'myobimanualarm'",
        "myofullbody",
        "model hash abc123",
        "block 1 is ('qvel', 4)",
        "block 3 is None",
    ):
        assert part in message
    assert "block 0" not in message and "block 2" not in message
