"""Running statistics against closed-form numpy moments of the whole stream."""

import os
import tempfile

import numpy as np
import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from mmimic.ppo import ReturnNormalizer, RunningMeanStd


def prior_and_stream_moments(data, prior_count, prior_mean=0.0, prior_var=1.0, batch_var_eps=0.0):
    """Mean and variance of the stream ``data`` (N x ...) together with a prior pseudo-sample of
    weight ``prior_count``; ``batch_var_eps`` adds eps per real sample to the squared deviations."""
    n = data.shape[0]
    total = prior_count + n
    mean = (prior_count * prior_mean + data.sum(0)) / total
    m2 = prior_count * (prior_var + (prior_mean - mean) ** 2) + ((data - mean) ** 2).sum(0) + batch_var_eps * n
    return mean, m2 / total


def test_running_mean_std_matches_concatenated_stream():
    rng = np.random.default_rng(0)
    batches = [rng.normal(loc=i, scale=1 + i, size=(size, 5)) for i, size in enumerate((3, 64, 1, 17, 250))]
    rms = RunningMeanStd(5)
    for b in batches:
        rms.update(torch.as_tensor(b, dtype=torch.float32))
    data = np.concatenate(batches)
    mean, var = prior_and_stream_moments(data, 1e-6, batch_var_eps=1e-6)
    np.testing.assert_allclose(rms.mean.numpy(), mean, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(rms.var.numpy(), var, rtol=1e-5)
    np.testing.assert_allclose(rms.var.numpy(), data.var(0), rtol=1e-5)  # the prior and eps are negligible
    assert rms.count.item() == pytest.approx(data.shape[0] + 1e-6, rel=1e-12)
    x = torch.randn(4, 5)
    torch.testing.assert_close(rms.normalize(x), (x - rms.mean) / torch.sqrt(rms.var + 1e-8))


def test_running_mean_std_leading_dims_and_scalar_shape():
    rms = RunningMeanStd((2, 3), initial_count=1e-4, batch_var_eps=0.0)
    x = torch.randn(4, 5, 2, 3)
    rms.update(x)
    mean, var = prior_and_stream_moments(x.reshape(-1, 2, 3).double().numpy(), 1e-4)
    np.testing.assert_allclose(rms.mean.numpy(), mean, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(rms.var.numpy(), var, rtol=1e-5)
    scalar = RunningMeanStd(())
    scalar.update(torch.tensor([1.0, 3.0]))
    assert scalar.mean.shape == () and abs(scalar.mean.item() - 2.0) < 1e-5


def test_return_normalizer_matches_numpy_reference():
    rng = np.random.default_rng(1)
    num_envs, num_steps, gamma = 16, 60, 0.99
    rewards = rng.normal(0.5, 2.0, size=(num_steps, num_envs)).astype(np.float32)
    dones = rng.random((num_steps, num_envs)) < 0.05
    norm = ReturnNormalizer(num_envs, gamma)
    g = np.zeros(num_envs)
    history = []
    for t in range(num_steps):
        g = g * gamma * (1.0 - dones[t]) + rewards[t]
        history.append(g.copy())
        _, var = prior_and_stream_moments(np.concatenate(history), 1e-4)
        expected = rewards[t] / np.sqrt(var + 1e-8)
        got = norm(torch.from_numpy(rewards[t]), torch.from_numpy(dones[t]))
        np.testing.assert_allclose(got.numpy(), expected, rtol=2e-5)
    np.testing.assert_allclose(norm.returns.numpy(), g, rtol=1e-5)


def _distributed_worker(rank, world_size, init_file, batches, out_dir):
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=world_size)
    try:
        rms = RunningMeanStd(3)
        rms.enable_all_reduce()
        rets = ReturnNormalizer(2)
        rets.enable_all_reduce()
        for step in batches[rank]:
            rms.update(step)
            rets(step[:2, 0], torch.zeros(2, dtype=torch.bool))
        torch.save({"rms": rms.state_dict(), "rets": rets.return_rms.state_dict()}, os.path.join(out_dir, f"{rank}.pt"))
    finally:
        dist.destroy_process_group()


def test_all_reduce_merges_statistics_of_two_gloo_ranks():
    rng = np.random.default_rng(2)
    batches = [
        [torch.as_tensor(rng.normal(r, 1 + r, size=(n, 3)), dtype=torch.float32) for n in (5, 9)] for r in range(2)
    ]
    with tempfile.TemporaryDirectory() as tmp:
        mp.spawn(_distributed_worker, args=(2, os.path.join(tmp, "init"), batches, tmp), nprocs=2, join=True)
        states = [torch.load(os.path.join(tmp, f"{r}.pt"), weights_only=True) for r in range(2)]
    for key in ("mean", "var", "count"):
        torch.testing.assert_close(states[0]["rms"][key], states[1]["rms"][key], rtol=0, atol=0)
    # step by step the global batch is the union of the ranks' batches
    single = RunningMeanStd(3)
    for step in range(2):
        single.update(torch.cat([batches[0][step], batches[1][step]]))
    for key in ("mean", "var"):
        torch.testing.assert_close(states[0]["rms"][key], getattr(single, key), rtol=1e-5, atol=1e-6)
    assert states[0]["rms"]["count"].item() == single.count.item() == pytest.approx(28 + 1e-6, rel=1e-12)
    assert states[0]["rets"]["count"].item() == pytest.approx(8 + 1e-4, rel=1e-12)
