"""The batched simulator against MuJoCo C, and its torch views, capture, resets and overflow checks."""

from __future__ import annotations

import dataclasses

import mujoco
import numpy as np
import pytest
import torch
import warp as wp

import mmimic
from mmimic.simulator import ContactOverflowError


def run_parity(embodiment: mmimic.Embodiment, steps: int, device: str = "cpu") -> tuple[float, float]:
    """Max |dqpos| and |dact| between 4 simulator worlds on `device` and MuJoCo C under the same held random excitations."""
    sim = mmimic.Simulator(embodiment, 4, device)
    m = embodiment.mj_model
    d = mujoco.MjData(m)
    d.qpos[:] = embodiment.initial_qpos()
    generator = torch.Generator().manual_seed(0)
    dq = da = 0.0
    for _ in range(steps):
        excitation = (torch.rand(1, m.nu, generator=generator) * 2 - 1).expand(4, -1).contiguous()
        sim.step(excitation.to(sim.torch_device))
        d.ctrl[:] = excitation[0].numpy()
        mujoco.mj_step(m, d, nstep=sim.substeps)
        dq = max(dq, float(np.abs(sim.qpos.cpu().numpy() - d.qpos).max()))
        da = max(da, float(np.abs(sim.act.cpu().numpy() - d.act).max()))
    assert sim.overflow_report()["overflow_steps"] == 0
    return dq, da


def test_fullbody_parity_with_mujoco_c(fullbody: mmimic.Embodiment) -> None:
    dq, da = run_parity(fullbody, steps=50)
    assert dq <= 5e-3 and da <= 1e-4


def test_bimanual_parity_with_mujoco_c(bimanual: mmimic.Embodiment) -> None:
    dq, da = run_parity(bimanual, steps=100)
    assert dq <= 5e-3 and da <= 1e-4


def test_torch_views_share_memory(bimanual: mmimic.Embodiment) -> None:
    sim = mmimic.Simulator(bimanual, 2, "cpu")
    assert sim.qpos.data_ptr() == sim.data.qpos.ptr and sim.ctrl.data_ptr() == sim.data.ctrl.ptr
    assert sim.site_xpos.shape == (2, bimanual.mj_model.nsite, 3)
    # A velocity written through the torch view moves the joint in the next physics step.
    # Both worlds start equal; a velocity written through the torch view into world 1 moves its joint.
    sim.qvel[1, 0] = 2.0
    sim.step(torch.zeros_like(sim.ctrl))
    assert sim.qpos[1, 0] - sim.qpos[0, 0] > 1e-3
    # Writing excitation in place into `sim.ctrl` is what the captured graph reads.
    sim.ctrl.fill_(1.0)
    sim.step()
    assert torch.all(sim.act > 0)
    assert np.array_equal(sim.data.act.numpy(), sim.act.numpy())


def test_captured_and_eager_steps_are_identical(bimanual: mmimic.Embodiment) -> None:
    captured = mmimic.Simulator(bimanual, 3, "cpu", capture=True)
    eager = mmimic.Simulator(bimanual, 3, "cpu", capture=False)
    generator = torch.Generator().manual_seed(3)
    for _ in range(10):
        excitation = torch.rand(3, bimanual.num_muscles, generator=generator)
        captured.step(excitation)
        eager.step(excitation)
    assert torch.equal(captured.qpos, eager.qpos) and torch.equal(captured.act, eager.act)
    assert torch.equal(captured.actuator_force, eager.actuator_force)


def test_reset_touches_only_selected_worlds(bimanual: mmimic.Embodiment) -> None:
    sim = mmimic.Simulator(bimanual, 3, "cpu")
    reference = mmimic.Simulator(bimanual, 3, "cpu")
    excitation = torch.full((3, bimanual.num_muscles), 0.7)
    for _ in range(5):
        sim.step(excitation)
        reference.step(excitation)
    target = torch.rand(3, bimanual.mj_model.nq) * 0.2
    mask = torch.tensor([False, True, False])
    sim.reset(mask, target)
    assert torch.equal(sim.qpos[1], target[1]) and torch.all(sim.qvel[1] == 0) and torch.all(sim.act[1] == 0)
    # Derived quantities follow the new pose: MuJoCo C forward kinematics at the same qpos.
    d = mujoco.MjData(bimanual.mj_model)
    d.qpos[:] = target[1].numpy()
    mujoco.mj_kinematics(bimanual.mj_model, d)
    np.testing.assert_allclose(sim.site_xpos[1].numpy(), d.site_xpos, atol=1e-5)
    for _ in range(5):
        sim.step(excitation)
        reference.step(excitation)
    keep = ~mask
    assert torch.equal(sim.qpos[keep], reference.qpos[keep]) and torch.equal(sim.act[keep], reference.act[keep])


def test_reset_worlds_match_mujoco_c_forward(fullbody: mmimic.Embodiment) -> None:
    """Poses, muscle lengths and forces and the touch sensors of reset worlds equal mj_forward at the new state."""
    reset_worlds = [1, 3]
    sim = mmimic.Simulator(fullbody, 5, "cpu")
    excitation = torch.rand(5, fullbody.num_muscles, generator=torch.Generator().manual_seed(1))
    for _ in range(3):
        sim.step(excitation)
    mask = torch.zeros(5, dtype=torch.bool)
    mask[reset_worlds] = True
    qpos = sim.qpos.clone()
    qpos[:, 2] -= 0.003  # 3 mm lower than the stepped pose: a foot presses on the floor (touch sensor > 0)
    qvel = torch.randn(sim.qvel.shape, generator=torch.Generator().manual_seed(2)) * 0.1
    sim.reset(mask, qpos, qvel)
    m = fullbody.mj_model
    d = mujoco.MjData(m)
    touch = 0.0
    for w in reset_worlds:
        d.qpos[:], d.qvel[:] = qpos[w].numpy(), qvel[w].numpy()
        mujoco.mj_forward(m, d)
        np.testing.assert_allclose(sim.site_xpos[w].numpy(), d.site_xpos, atol=2e-5)
        np.testing.assert_allclose(sim.actuator_length[w].numpy(), d.actuator_length, atol=2e-5)
        np.testing.assert_allclose(sim.actuator_force[w].numpy(), d.actuator_force, atol=1e-3 * np.abs(d.actuator_force).max())
        touch = max(touch, float(d.sensordata[fullbody.touch_sensor_adr].max()))
        np.testing.assert_allclose(sim.sensordata[w].numpy(), d.sensordata, atol=1e-2 * max(1.0, np.abs(d.sensordata).max()))
    assert touch > 1.0  # a foot on the floor: the touch sensors were compared with contact forces


def test_overflow_is_counted_and_raised(bimanual: mmimic.Embodiment) -> None:
    tight = dataclasses.replace(bimanual, physics=dataclasses.replace(bimanual.physics, njmax=30))
    sim = mmimic.Simulator(tight, 2, "cpu", overflow_limit=2, overflow_check_interval=0)
    # The start pose needs 30 constraint rows; full excitation adds joint limits and contacts.
    sim.step(torch.ones(2, bimanual.num_muscles))
    report = sim.overflow_report()
    assert report["overflow_steps"] == 1 and report["overflow_bits"] & 1  # NEFC
    sim.step(torch.ones(2, bimanual.num_muscles))
    sim.step(torch.ones(2, bimanual.num_muscles))
    with pytest.raises(ContactOverflowError, match=r"NEFC.*in 3 control steps.*njmax=30"):
        sim.overflow_report()


def test_bad_excitation_and_device_are_refused(bimanual: mmimic.Embodiment) -> None:
    sim = mmimic.Simulator(bimanual, 2, "cpu")
    nu = bimanual.num_muscles
    with pytest.raises(ValueError, match=r"excitation has shape \(2, 5\), expected .* \(2, 126\)"):
        sim.step(torch.zeros(2, 5))
    with pytest.raises(TypeError, match="excitation has dtype torch.float64, expected torch.float32"):
        sim.step(torch.zeros(2, nu, dtype=torch.float64))
    with pytest.raises(ValueError, match="excitation is on meta"):
        sim.step(torch.zeros(2, nu, device="meta"))
    with pytest.raises(ValueError, match="num_envs must be a positive integer"):
        mmimic.Simulator(bimanual, 0, "cpu")
    with pytest.raises(ValueError, match="mask must be a bool tensor"):
        sim.reset(torch.ones(2), torch.zeros(2, bimanual.mj_model.nq))


@pytest.mark.skipif(wp.is_cuda_available(), reason="this machine has a GPU")
def test_cuda_without_gpu_is_refused(bimanual: mmimic.Embodiment) -> None:
    with pytest.raises(ValueError, match="device='cuda' was requested but Warp finds no CUDA GPU"):
        mmimic.Simulator(bimanual, 1, "cuda")
