"""GAE and rollout storage against plain numpy loops."""

import numpy as np
import pytest
import torch

from mmimic.ppo import RolloutStorage


def gae_reference(rewards, values, last_values, dones, absorbing, gamma, lam):
    """Scalar double loop over envs and reversed time, float64."""
    num_steps, num_envs = rewards.shape
    adv = np.zeros((num_steps, num_envs))
    for e in range(num_envs):
        next_adv = 0.0
        for t in reversed(range(num_steps)):
            next_value = values[t + 1, e] if t + 1 < num_steps else last_values[e]
            delta = rewards[t, e] + gamma * next_value * (1.0 - absorbing[t, e]) - values[t, e]
            next_adv = delta + gamma * lam * (1.0 - dones[t, e]) * next_adv
            adv[t, e] = next_adv
    return adv, adv + values


def fill(storage, rng, rewards, values, dones, absorbing):
    for t in range(storage.num_steps):
        storage.add(
            torch.as_tensor(rng.standard_normal((storage.num_envs, storage.obs.shape[-1])), dtype=torch.float32),
            torch.as_tensor(rng.standard_normal((storage.num_envs, storage.actions.shape[-1])), dtype=torch.float32),
            torch.as_tensor(rng.standard_normal(storage.num_envs), dtype=torch.float32),
            torch.as_tensor(values[t], dtype=torch.float32),
            torch.as_tensor(rewards[t], dtype=torch.float32),
            torch.as_tensor(dones[t]),
            torch.as_tensor(absorbing[t]),
        )


def test_gae_matches_numpy_loop_with_absorbing_and_time_limit_ends():
    rng = np.random.default_rng(0)
    num_steps, num_envs, gamma, lam = 12, 9, 0.99, 0.95
    rewards = rng.standard_normal((num_steps, num_envs))
    values = rng.standard_normal((num_steps, num_envs))
    last_values = rng.standard_normal(num_envs)
    dones = rng.random((num_steps, num_envs)) < 0.25
    absorbing = dones & (rng.random((num_steps, num_envs)) < 0.5)  # the rest: time limit / end of motion
    assert absorbing.any() and (dones & ~absorbing).any()
    rewards, values, last_values = (x.astype(np.float32).astype(np.float64) for x in (rewards, values, last_values))

    storage = RolloutStorage(num_steps, num_envs, 3, 2, "cpu")
    fill(storage, rng, rewards, values, dones, absorbing)
    storage.compute_gae(torch.as_tensor(last_values, dtype=torch.float32), gamma, lam)

    adv, ret = gae_reference(rewards, values, last_values, dones.astype(float), absorbing.astype(float), gamma, lam)
    np.testing.assert_allclose(storage.advantages.numpy(), adv, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(storage.returns.numpy(), ret, rtol=1e-5, atol=1e-5)


def test_gae_closed_form_without_dones():
    """With no episode end, A_t = sum_k (gamma lam)^k delta_{t+k}."""
    rng = np.random.default_rng(1)
    num_steps, gamma, lam = 6, 0.9, 0.8
    rewards = rng.standard_normal((num_steps, 1)).astype(np.float32)
    values = rng.standard_normal((num_steps, 1)).astype(np.float32)
    last = np.float32(0.7)
    storage = RolloutStorage(num_steps, 1, 1, 1, "cpu")
    fill(storage, rng, rewards, values, np.zeros((num_steps, 1), bool), np.zeros((num_steps, 1), bool))
    storage.compute_gae(torch.tensor([last]), gamma, lam)
    next_values = np.append(values[1:, 0], last)
    deltas = rewards[:, 0] + gamma * next_values - values[:, 0]
    expected = [sum((gamma * lam) ** k * deltas[t + k] for k in range(num_steps - t)) for t in range(num_steps)]
    np.testing.assert_allclose(storage.advantages[:, 0].numpy(), expected, rtol=1e-5, atol=1e-6)


def test_minibatches_cover_every_sample_once_and_keep_rows_aligned():
    num_steps, num_envs = 4, 6
    storage = RolloutStorage(num_steps, num_envs, 2, 1, "cpu")
    ids = torch.arange(num_steps * num_envs, dtype=torch.float32).view(num_steps, num_envs)
    for t in range(num_steps):
        storage.add(
            ids[t, :, None].expand(num_envs, 2),
            -ids[t, :, None],
            ids[t] * 2,
            ids[t] * 3,
            torch.zeros(num_envs),
            torch.zeros(num_envs, dtype=torch.bool),
            torch.zeros(num_envs, dtype=torch.bool),
        )
    storage.advantages.copy_(ids * 4)
    storage.returns.copy_(ids * 5)
    seen = []
    batches = list(storage.minibatches(3))
    assert len(batches) == 3
    for b in batches:
        assert b.obs.shape == (8, 2) and b.actions.shape == (8, 1)
        i = b.obs[:, 0]
        for tensor, scale in (
            (b.obs[:, 1], 1),
            (b.actions[:, 0], -1),
            (b.log_probs, 2),
            (b.values, 3),
            (b.advantages, 4),
            (b.returns, 5),
        ):
            torch.testing.assert_close(tensor, i * scale)
        seen += i.tolist()
    assert sorted(seen) == list(range(num_steps * num_envs))
    with pytest.raises(ValueError, match="does not divide"):
        next(storage.minibatches(5))


def test_storage_refuses_overfill_and_early_gae():
    storage = RolloutStorage(1, 2, 1, 1, "cpu")
    with pytest.raises(RuntimeError, match="fill it"):
        storage.compute_gae(torch.zeros(2), 0.99, 0.95)
    args = (
        torch.zeros(2, 1),
        torch.zeros(2, 1),
        torch.zeros(2),
        torch.zeros(2),
        torch.zeros(2),
        torch.zeros(2, dtype=torch.bool),
        torch.zeros(2, dtype=torch.bool),
    )
    storage.add(*args)
    with pytest.raises(RuntimeError, match="full"):
        storage.add(*args)
    storage.clear()
    storage.add(*args)
