"""mmimic's muscle functions against MuJoCo C's `mju_muscleGain`, `mju_muscleBias` and `mju_muscleDynamics`."""

from __future__ import annotations

import mujoco
import numpy as np
import warp as wp

import mmimic
from mmimic.kernels import muscle


@wp.kernel
def evaluate(
    length: wp.array(dtype=float),
    velocity: wp.array(dtype=float),
    ctrl: wp.array(dtype=float),
    act: wp.array(dtype=float),
    model: muscle.MuscleParams,
    out: wp.array2d(dtype=float),
):
    i = wp.tid()
    lengthrange, acc0 = model.lengthrange[0, i], model.acc0[0, i]
    out[i, 0] = muscle.muscle_gain(length[i], velocity[i], lengthrange, acc0, model.gainprm[0, i])
    out[i, 1] = muscle.muscle_bias(length[i], lengthrange, acc0, model.biasprm[0, i])
    out[i, 2] = muscle.muscle_activation_rate(ctrl[i], act[i], model.dynprm[0, i])


def grid_for(embodiment: mmimic.Embodiment, per_muscle: int, seed: int) -> dict[str, np.ndarray]:
    """Random lengths across and beyond each muscle's range, velocities up to +-2 vmax*L0, and activations."""
    m = embodiment.mj_model
    rng = np.random.default_rng(seed)
    idx = np.repeat(np.arange(m.nu), per_muscle)
    lr = m.actuator_lengthrange[idx]
    span = lr[:, 1] - lr[:, 0]
    optimal = span / (m.actuator_gainprm[idx, 1] - m.actuator_gainprm[idx, 0])
    grid = {
        "length": lr[:, 0] + span * rng.uniform(-0.3, 1.3, idx.size),
        "velocity": optimal * m.actuator_gainprm[idx, 6] * rng.uniform(-2.0, 2.0, idx.size),
        "ctrl": rng.uniform(-1.0, 1.5, idx.size),
        "act": rng.uniform(-0.1, 1.1, idx.size),
    }
    # Both implementations see the same float32-representable inputs.
    return {"idx": idx} | {k: v.astype(np.float32).astype(np.float64) for k, v in grid.items()}


def check_against_mujoco(embodiment: mmimic.Embodiment, dynprm_override: np.ndarray | None = None) -> None:
    m = embodiment.mj_model
    g = grid_for(embodiment, per_muscle=40, seed=1)
    idx = g["idx"]
    dynprm = m.actuator_dynprm[idx].copy()
    if dynprm_override is not None:
        dynprm[:, :3] = dynprm_override
    f32 = lambda a: wp.array(np.asarray(a, dtype=np.float32), device="cpu")  # noqa: E731
    out = wp.zeros((idx.size, 3), dtype=float, device="cpu")
    row = lambda a, dtype=float: wp.array(np.asarray(a, dtype=np.float32)[None], dtype=dtype, device="cpu")  # noqa: E731
    params = muscle.MuscleParams()
    params.lengthrange, params.acc0 = row(m.actuator_lengthrange[idx], wp.vec2), row(m.actuator_acc0[idx])
    params.gainprm, params.biasprm = row(m.actuator_gainprm[idx], muscle.vec10), row(m.actuator_biasprm[idx], muscle.vec10)
    params.dynprm = row(dynprm, muscle.vec10)
    wp.launch(evaluate, dim=idx.size, inputs=[f32(g["length"]), f32(g["velocity"]), f32(g["ctrl"]), f32(g["act"]), params],
              outputs=[out], device="cpu")
    ours = out.numpy().astype(np.float64)
    truth = np.array([
        (mujoco.mju_muscleGain(g["length"][k], g["velocity"][k], m.actuator_lengthrange[i], m.actuator_acc0[i], m.actuator_gainprm[i, :9]),
         mujoco.mju_muscleBias(g["length"][k], m.actuator_lengthrange[i], m.actuator_acc0[i], m.actuator_biasprm[i, :9]),
         mujoco.mju_muscleDynamics(g["ctrl"][k], g["act"][k], dynprm[k, :3]))
        for k, i in enumerate(idx)
    ])
    peak = np.abs(m.actuator_gainprm[idx, 2])
    # float32 inputs and arithmetic: relative to each muscle's peak force, and to the rate scale 1/tau.
    np.testing.assert_allclose(ours[:, 0], truth[:, 0], rtol=0, atol=1e-5 * peak.max())
    assert np.all(np.abs(ours[:, 0] - truth[:, 0]) <= 2e-5 * peak)
    assert np.all(np.abs(ours[:, 1] - truth[:, 1]) <= 2e-5 * peak * np.maximum(1.0, np.abs(truth[:, 1]) / peak))
    rate_scale = 1.0 / np.minimum(dynprm[:, 0], dynprm[:, 1])
    assert np.all(np.abs(ours[:, 2] - truth[:, 2]) <= 1e-5 * rate_scale * 3.0)
    # The grid reaches every branch: zero and saturated force-velocity, passive force beyond (1 + lmax) / 2.
    assert (truth[:, 0] == 0).any() and (truth[:, 1] < 0).any() and (truth[:, 2] > 0).any() and (truth[:, 2] < 0).any()


def test_muscle_functions_equal_mujoco_fullbody(fullbody: mmimic.Embodiment) -> None:
    check_against_mujoco(fullbody)


def test_muscle_functions_equal_mujoco_bimanual_with_smoothing(bimanual: mmimic.Embodiment) -> None:
    check_against_mujoco(bimanual)
    check_against_mujoco(bimanual, dynprm_override=np.array([0.01, 0.04, 0.3]))


def test_biasprm_differs_from_gainprm_for_two_muscles(fullbody: mmimic.Embodiment) -> None:
    m = fullbody.mj_model
    differ = [fullbody.muscle_names[i] for i in range(m.nu) if not np.array_equal(m.actuator_gainprm[i], m.actuator_biasprm[i])]
    assert differ == ["SUPSP", "SUPSP_left"]


def test_each_parameter_reads_its_own_world_batch(bimanual: mmimic.Embodiment) -> None:
    """Only gainprm batched over 2 worlds (world 1 at half the peak force, another lmin): both worlds' forces
    and activation rates equal MuJoCo C's with that world's parameters (the others have one row)."""
    m = bimanual.mj_model
    rng = np.random.default_rng(3)
    nu = m.nu
    gainprm = np.stack([m.actuator_gainprm, m.actuator_gainprm])
    gainprm[1, :, 2] *= 0.5
    gainprm[1, :, 4] = 0.6
    lr = m.actuator_lengthrange
    length = lr[:, 0] + (lr[:, 1] - lr[:, 0]) * rng.uniform(0.0, 1.0, (2, nu))
    velocity, ctrl, act = rng.uniform(-0.5, 0.5, (2, nu)), rng.uniform(0, 1, (2, nu)), rng.uniform(0, 1, (2, nu))
    inputs = {k: np.asarray(v, np.float32).astype(np.float64) for k, v in
              {"length": length, "velocity": velocity, "ctrl": ctrl, "act": act}.items()}
    arr = lambda a, dtype=float: wp.array(np.asarray(a, dtype=np.float32), dtype=dtype, device="cpu")  # noqa: E731
    params = muscle.MuscleParams()
    params.lengthrange, params.acc0 = arr(lr[None], wp.vec2), arr(m.actuator_acc0[None])
    params.gainprm, params.biasprm = arr(gainprm, muscle.vec10), arr(m.actuator_biasprm[None], muscle.vec10)
    params.dynprm = arr(m.actuator_dynprm[None], muscle.vec10)
    data = muscle.MuscleData()
    data.ctrl, data.act = arr(inputs["ctrl"]), arr(inputs["act"])
    data.actuator_length, data.actuator_velocity = arr(inputs["length"]), arr(inputs["velocity"])
    data.act_dot, data.actuator_force = arr(np.zeros((2, nu))), arr(np.zeros((2, nu)))
    wp.launch(muscle.mujoco_muscle_force, dim=(2, nu), inputs=[params, data], device="cpu")
    for w in range(2):
        x = {k: v[w] for k, v in inputs.items()}
        force = [mujoco.mju_muscleGain(x["length"][i], x["velocity"][i], lr[i], m.actuator_acc0[i], gainprm[w, i, :9])
                 * x["act"][i] + mujoco.mju_muscleBias(x["length"][i], lr[i], m.actuator_acc0[i], m.actuator_biasprm[i, :9])
                 for i in range(nu)]
        rate = [mujoco.mju_muscleDynamics(x["ctrl"][i], x["act"][i], m.actuator_dynprm[i, :3]) for i in range(nu)]
        peak = np.abs(gainprm[w, :, 2]) + np.abs(m.actuator_biasprm[:, 2])
        assert np.all(np.abs(data.actuator_force.numpy()[w] - force) <= 2e-5 * peak), f"world {w}"
        np.testing.assert_allclose(data.act_dot.numpy()[w], rate, rtol=1e-4, atol=1e-4)
