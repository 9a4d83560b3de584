"""The 3CC-r fatigue muscle against an independent numpy integration and closed forms."""

from __future__ import annotations

import mujoco
import numpy as np
import torch
import warp as wp

import mmimic
from mmimic.kernels import muscle
from mmimic.muscles import FatigueMuscle, FatigueRates

DT = 0.002


def numpy_3ccr(target: np.ndarray, steps: int, tau: tuple[float, float], rates: FatigueRates) -> np.ndarray:
    """Reference integration of MA, MR, MF (rows) for a held target load; returns (steps + 1, 3, n)."""
    n = target.size
    ma, mr, mf = np.zeros(n), np.ones(n), np.zeros(n)
    out = [np.stack([ma, mr, mf])]
    for _ in range(steps):
        level = 0.5 + 1.5 * ma
        recruit = ma < target
        flow = np.where(recruit, np.minimum(target - ma, mr) / (tau[0] * level), (target - ma) * level / tau[1])
        rr = np.where(recruit, rates.recovery, rates.recovery * rates.rest_multiplier)
        low = np.maximum(-ma / DT + rates.fatigue * ma, (mr - 1) / DT + rr * mf)
        high = np.minimum((1 - ma) / DT + rates.fatigue * ma, mr / DT + rr * mf)
        flow = np.clip(flow, low, high)
        ma, mr, mf = ma + DT * (flow - rates.fatigue * ma), mr + DT * (rr * mf - flow), mf + DT * (rates.fatigue * ma - rr * mf)
        out.append(np.stack([ma, mr, mf]))
    return np.array(out)


def run_kernel(target: np.ndarray, steps: int, tau: tuple[float, float], rates: FatigueRates) -> np.ndarray:
    model = FatigueMuscle(DT, rates)
    n = target.size
    model.allocate(1, n, wp.get_device("cpu"))
    act = wp.zeros((1, n), dtype=float, device="cpu")
    ctrl = wp.array(target[None].astype(np.float32), device="cpu")
    dynprm = np.zeros((1, n, 10), np.float32)
    dynprm[..., :2] = tau
    dynprm = wp.array(dynprm, dtype=muscle.vec10, device="cpu")
    out = [np.stack([act.numpy()[0], model.resting.numpy()[0], model.fatigued.numpy()[0]])]
    for _ in range(steps):
        wp.launch(muscle.fatigue_advance, dim=(1, n), inputs=[DT, model.params, dynprm, ctrl],
                  outputs=[act, model.resting, model.fatigued], device="cpu")
        out.append(np.stack([act.numpy()[0], model.resting.numpy()[0], model.fatigued.numpy()[0]]))
    return np.array(out)


def test_compartments_match_numpy_and_conserve_units() -> None:
    rates = FatigueRates(fatigue=0.5, recovery=0.05, rest_multiplier=10.0)
    target = np.array([0.0, 0.2, 0.6, 1.0])
    ours = run_kernel(target, 1500, (0.01, 0.04), rates)
    truth = numpy_3ccr(target, 1500, (0.01, 0.04), rates)
    np.testing.assert_allclose(ours, truth, atol=2e-4)
    np.testing.assert_allclose(ours.sum(axis=1), 1.0, atol=1e-4)
    assert ours.min() >= -1e-6 and ours.max() <= 1 + 1e-6


def test_sustained_excitation_loses_force_and_rest_recovers_it() -> None:
    rates = FatigueRates(fatigue=0.5, recovery=0.05, rest_multiplier=10.0)
    held = run_kernel(np.array([1.0]), 2500, (0.01, 0.04), rates)[:, :, 0]  # 5 s at full excitation
    active, fatigued = held[:, 0], held[:, 2]
    peak = active.max()
    assert peak > 0.9 and active[-1] < 0.6 * peak  # force = gain * MA + bias falls with MA
    assert np.all(np.diff(fatigued) >= -1e-7)
    # At rest (MA ~ 0 after deactivation), MF decays as exp(-r R t): the Euler product of (1 - dt r R).
    model = FatigueMuscle(DT, rates)
    model.allocate(1, 1, wp.get_device("cpu"))
    act = wp.array(held[-1:, 0:1].astype(np.float32), device="cpu")
    model.resting.assign(held[-1:, 1:2].astype(np.float32))
    model.fatigued.assign(held[-1:, 2:3].astype(np.float32))
    dynprm = wp.array(np.array([[[0.01, 0.04] + [0.0] * 8]], np.float32), dtype=muscle.vec10, device="cpu")
    zero = wp.zeros((1, 1), dtype=float, device="cpu")
    history = []
    for _ in range(1000):
        wp.launch(muscle.fatigue_advance, dim=(1, 1), inputs=[DT, model.params, dynprm, zero],
                  outputs=[act, model.resting, model.fatigued], device="cpu")
        history.append(model.fatigued.numpy()[0, 0])
    decay = 1 - DT * rates.recovery * rates.rest_multiplier
    np.testing.assert_allclose(history[-1] / history[499], decay**500, rtol=1e-3)
    assert history[-1] < 0.7 * fatigued[-1]


def test_low_load_fatigue_follows_closed_form() -> None:
    """With ample resting units MA tracks TL and MF(t) = F TL / R (1 - exp(-R t))."""
    rates = FatigueRates(fatigue=0.2, recovery=0.1, rest_multiplier=1.0)
    target = 0.1
    mf = run_kernel(np.array([target]), 1000, (0.01, 0.04), rates)[-1, 2, 0]
    t = 1000 * DT
    expected = rates.fatigue * target / rates.recovery * (1 - np.exp(-rates.recovery * t))
    np.testing.assert_allclose(mf, expected, rtol=0.05)


def test_without_fatigue_it_is_mujocos_muscle(bimanual: mmimic.Embodiment) -> None:
    """Zero fatigue and recovery rates reduce 3CC-r to MuJoCo's activation dynamics, in the full simulator."""
    none = FatigueMuscle(DT, FatigueRates(fatigue=0.0, recovery=0.0, rest_multiplier=1.0))
    sim = mmimic.Simulator(bimanual, 2, "cpu", muscle_model=none)
    m = bimanual.mj_model
    d = mujoco.MjData(m)
    generator = torch.Generator().manual_seed(1)
    for _ in range(20):
        excitation = torch.rand(1, m.nu, generator=generator).expand(2, -1).contiguous()
        sim.step(excitation)
        d.ctrl[:] = excitation[0].numpy()
        mujoco.mj_step(m, d, nstep=sim.substeps)
    np.testing.assert_allclose(sim.act[0].numpy(), d.act, atol=1e-4)
    np.testing.assert_allclose(sim.qpos[0].numpy(), d.qpos, atol=5e-3)


def test_fatigue_state_is_part_of_the_world_and_resets(bimanual: mmimic.Embodiment) -> None:
    sim = mmimic.Simulator(bimanual, 2, "cpu", muscle_model="fatigue")
    for _ in range(10):
        sim.step(torch.ones(2, bimanual.num_muscles))
    state = sim.muscle_state
    assert torch.all(state["fatigued"] > 0) and torch.all(state["resting"] < 1)
    sim.reset(torch.tensor([True, False]), sim.qpos.clone())
    assert torch.all(state["fatigued"][0] == 0) and torch.all(state["resting"][0] == 1)
    assert torch.all(state["fatigued"][1] > 0) and torch.all(sim.act[0] == 0)
