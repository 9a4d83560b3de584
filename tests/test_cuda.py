"""On a GPU (skipped without one; `bash runners/gpu_acceptance.sh` runs them): MuJoCo C parity, captured ==
eager, no host synchronisation in an environment step, torch streams, the device choice, load_policy,
Warp's memory in the reports, and the batched Muon update."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
import warp as wp
from test_checkpoint import save, trained
from test_ppo_muon import muon_reference
from test_simulator import run_parity

import mmimic
from mmimic.checkpoint import load_policy
from mmimic.device import device_memory, resolve_device
from mmimic.ppo import Muon

pytestmark = pytest.mark.cuda

REPO = Path(__file__).resolve().parent.parent
CUDA = "cuda:0"


def bimanual_env(num_envs: int, capture: bool = True, seed: int = 3) -> mmimic.ImitationEnv:
    config = mmimic.EnvConfig(seed=seed, capture=capture)
    return mmimic.ImitationEnv("bimanual", REPO / "motions" / "bimanual", num_envs, CUDA, config)


def random_actions(env: mmimic.ImitationEnv, steps: int, seed: int = 0) -> torch.Tensor:
    generator = torch.Generator(device=env.torch_device).manual_seed(seed)
    return torch.rand((steps, env.num_envs, env.num_actions), generator=generator, device=env.torch_device)


@pytest.mark.parametrize(("body_name", "steps"), [("fullbody", 50), ("bimanual", 100)])
def test_parity_with_mujoco_c_on_cuda(body_name: str, steps: int, request) -> None:
    dq, da = run_parity(request.getfixturevalue(body_name), steps, device=CUDA)
    assert dq <= 5e-3 and da <= 1e-4  # the CPU test's tolerances


def test_captured_env_equals_eager_on_cuda() -> None:
    """The step graph with its conditional reset node gives what the eager launches give. GPU contact
    ordering is not deterministic (atomics), so equal to float32 rounding, not bitwise."""
    captured, eager = bimanual_env(64), bimanual_env(64, capture=False)
    assert captured.captured == ["reset", "step"] and eager.captured == []
    captured.sim.qpos[:8] += 1.1  # pushed far off the reference: these worlds end and reset within the graph
    eager.sim.qpos[:8] += 1.1
    resets = 0
    for actions in random_actions(captured, 10):
        (obs_c, rew_c, done_c, _), (obs_e, rew_e, done_e, _) = captured.step(actions), eager.step(actions)
        assert torch.equal(done_c, done_e)
        torch.testing.assert_close(obs_c, obs_e, atol=1e-4, rtol=1e-4)
        torch.testing.assert_close(rew_c, rew_e, atol=1e-4, rtol=1e-4)
        resets += int(done_c.sum())
    assert resets >= 8


def test_env_step_does_not_synchronise_the_host() -> None:
    env = bimanual_env(32)
    actions = random_actions(env, 3)
    env.step(actions[0])  # first replay outside the check
    torch.cuda.synchronize()
    torch.cuda.set_sync_debug_mode("error")
    try:
        for a in actions[1:]:
            obs, reward, _, _ = env.step(a)
    finally:
        torch.cuda.set_sync_debug_mode(0)
    assert torch.isfinite(obs).all() and torch.isfinite(reward).all()


def test_env_on_a_side_stream_equals_the_default_stream() -> None:
    """Under torch.cuda.stream(s) the action copy, the graph and the reads are ordered on s."""
    default, side = bimanual_env(256), bimanual_env(256)
    actions = random_actions(default, 20)
    for a in actions:
        default.step(a)
    stream = torch.cuda.Stream()
    stream.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(stream):
        outputs = []
        for a in actions:
            scaled = a * 1.0  # written on the side stream just before the step reads it
            obs, reward, done, _ = side.step(scaled)
            outputs.append((obs.clone(), reward.clone(), done.clone()))  # read on the side stream
    torch.cuda.current_stream().wait_stream(stream)
    torch.cuda.synchronize()
    torch.testing.assert_close(side.obs, default.obs, atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(side.sim.qpos, default.sim.qpos, atol=1e-4, rtol=1e-4)
    assert torch.equal(outputs[-1][0], side.obs)


def test_resolve_device_on_a_gpu(monkeypatch) -> None:
    monkeypatch.delenv("LOCAL_RANK", raising=False)
    assert resolve_device(None) == "cuda:0" and resolve_device("cuda") == "cuda:0"
    monkeypatch.setenv("LOCAL_RANK", "0")
    assert resolve_device("cuda") == "cuda:0" and torch.cuda.current_device() == 0


def test_load_policy_on_cuda(tmp_path, monkeypatch) -> None:
    ac, ppo = trained()
    path = save(tmp_path / "ckpt.pt", ac, ppo)
    obs = torch.randn(64, 12) * 4 + 2
    on_gpu = load_policy(path, CUDA)
    assert all(p.device.type == "cuda" for p in on_gpu.parameters())
    monkeypatch.setattr(torch.backends.cuda.matmul, "allow_tf32", False)
    torch.testing.assert_close(on_gpu(obs.to(CUDA)).cpu(), load_policy(path)(obs), atol=1e-5, rtol=1e-5)


def test_device_memory_includes_warp() -> None:
    before = device_memory(CUDA)
    block = wp.zeros(64 * 2**20, dtype=wp.uint8, device=CUDA)  # 64 MiB through Warp's allocator only
    after = device_memory(CUDA)
    assert after["warp_current"] - before["warp_current"] >= 64 * 2**20
    assert after["warp_peak"] >= after["warp_current"] and after["device_used"] >= after["warp_current"]
    del block


def test_batched_muon_on_cuda_matches_the_published_rule(monkeypatch) -> None:
    monkeypatch.setattr(torch.backends.cuda.matmul, "allow_tf32", False)
    rng = np.random.default_rng(1)
    shapes = [(64, 32), (64, 32), (32, 64)]
    w0 = [rng.standard_normal(s).astype(np.float32) for s in shapes]
    grads = [[rng.standard_normal(s).astype(np.float32) for s in shapes] for _ in range(3)]
    params = [torch.nn.Parameter(torch.from_numpy(w.copy()).to(CUDA)) for w in w0]
    opt = Muon(params, 0.5, weight_decay=1e-3)
    for step_grads in grads:
        for p, g in zip(params, step_grads):
            p.grad = torch.from_numpy(g).to(CUDA)
        opt.step(torch.ones((), dtype=torch.bool, device=CUDA))
    for i, (p, w) in enumerate(zip(params, w0)):
        expected = muon_reference(w.astype(np.float64), [g[i].astype(np.float64) for g in grads], 0.5, weight_decay=1e-3)
        np.testing.assert_allclose((p.detach().cpu().numpy() - w) / 0.5, (expected - w) / 0.5, atol=1e-4)
