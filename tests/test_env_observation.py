"""Observation layout and every observation block against MuJoCo C and numpy (MuscleMimic, arXiv 2603.25544)."""

from __future__ import annotations

import mujoco
import numpy as np
import pytest
import torch
import warp as wp
from test_env_reference import StandInMotions, expected_observation, kinematics, reference_rows, split_observation

import mmimic

# Blocks from MuJoCo C's own step (muscle channels, touch) agree with mujoco_warp to float32 physics
# precision; blocks computed from the same state agree to float32 rounding.
TOLERANCE = {"muscle": 5e-3, "touch": 2e-2}
DEFAULT_TOLERANCE = 2e-5


def synced_step(env: mmimic.ImitationEnv, actions: torch.Tensor) -> list[mujoco.MjData]:
    """Step the env and, from the same pre-step state, MuJoCo C; per world a C MjData that holds the env's
    post-step state and its kinematics, with C's own muscle lengths/velocities/forces and sensors (which
    both engines report from the start of the last substep), or, for `derived="forward"`, C's forward
    pass at the post-step state."""
    sim, m = env.sim, env.embodiment.mj_model
    pre = [t.double().numpy().copy() for t in (sim.qpos, sim.qvel, sim.act, wp.to_torch(sim.data.qacc_warmstart))]
    env.step(actions)
    datas = []
    for w in range(env.num_envs):
        d = mujoco.MjData(m)
        d.qpos[:], d.qvel[:], d.act[:], d.qacc_warmstart[:] = (x[w] for x in pre)
        d.ctrl[:] = actions[w].clamp(-1, 1).numpy()
        mujoco.mj_step(m, d, nstep=sim.substeps)
        assert np.abs(d.qpos - sim.qpos[w].numpy()).max() < 5e-3  # physics parity, as tests/test_simulator.py
        d.qpos[:], d.qvel[:], d.act[:] = sim.qpos[w].numpy(), sim.qvel[w].numpy(), sim.act[w].numpy()
        if env.config.derived == "forward":
            mujoco.mj_forward(m, d)
        else:
            kinematics(m, d)
        datas.append(d)
    return datas


def assert_blocks_equal(env: mmimic.ImitationEnv, world: int, expected: dict[str, np.ndarray]) -> None:
    """Every block (each muscle channel on its own scale) within its tolerance relative to max(1, its peak)."""
    got = split_observation(env, env.obs[world])
    assert list(got) == list(expected), "block names or order differ"
    channels = len(env.config.muscle_channels)
    for name, value in expected.items():
        tol = next((t for key, t in TOLERANCE.items() if name.startswith(key)), DEFAULT_TOLERANCE)
        width = channels if name.startswith("muscle") else 1
        for c, (g, v) in enumerate(zip(got[name].reshape(-1, width).T, value.reshape(-1, width).T)):
            scale = max(1.0, float(np.abs(v).max(initial=0.0)))
            err = float(np.abs(g - v).max(initial=0.0))
            assert err <= tol * scale, f"world {world} block {name} (channel {c}): max error {err:.3g}, peak {scale:.3g}"


def run_and_compare(env: mmimic.ImitationEnv, lib: StandInMotions, steps: int, seed: int) -> None:
    generator = torch.Generator().manual_seed(seed)
    env.reset()
    start = env.clip_step.clone()
    for _ in range(steps):
        actions = torch.rand(env.num_envs, env.num_actions, generator=generator) * 3 - 1.5
        datas = synced_step(env, actions)
        assert not env.done.any(), "choose a seed where no world finishes during the comparison"
        frames = reference_rows(env, lib, start)
        for w, d in enumerate(datas):
            assert_blocks_equal(env, w, expected_observation(env, lib, frames, w, d))


@pytest.fixture(scope="module")
def fullbody_motions(fullbody: mmimic.Embodiment) -> StandInMotions:
    return StandInMotions(fullbody, [160, 200], seed=0)


@pytest.fixture(scope="module")
def bimanual_motions(bimanual: mmimic.Embodiment) -> StandInMotions:
    return StandInMotions(bimanual, [120, 90, 150], seed=1, weights=[1.0, 0.5, 2.0])


# The published `conf_bimanual_gmr`: 5 look-ahead frames 0.2 s apart (1597 observations), 0.25 m termination.
BIMANUAL_GMR = mmimic.EnvConfig(lookahead=5, stride=20, site_deviation=0.25)


def test_published_layout_sizes(fullbody, bimanual) -> None:
    sizes = {}
    for name, body, config in (
        ("fullbody", fullbody, None),
        ("bimanual", bimanual, None),
        ("bimanual_gmr", bimanual, BIMANUAL_GMR),
    ):
        config = config or mmimic.EnvConfig()
        resolved = config.resolve(body)
        root = (0, 0) if body.has_free_root else (-1, -1)
        sizes[name] = mmimic.env.layout.build_layout(body, resolved, *root).size
    assert sizes == {"fullbody": 2418, "bimanual": 701, "bimanual_gmr": 1597}


def test_fullbody_observation_matches_mujoco_c(fullbody, fullbody_motions) -> None:
    env = mmimic.ImitationEnv(fullbody, fullbody_motions, 3, "cpu", mmimic.EnvConfig(seed=1))
    assert env.num_obs == 2418 and env.num_actions == 354
    assert env.obs_layout[:6] == [("q_free_joint", 5), ("q_all_pos", 82), ("dq_free_joint", 6), ("dq_all_vel", 82),
                                  ("muscle_length_velocity_force_excitation_activation", 1770), ("touch", 4)]
    run_and_compare(env, fullbody_motions, steps=3, seed=0)


def test_bimanual_observation_matches_mujoco_c(bimanual, bimanual_motions) -> None:
    env = mmimic.ImitationEnv(bimanual, bimanual_motions, 3, "cpu", mmimic.EnvConfig(seed=2))
    assert env.num_obs == 701
    run_and_compare(env, bimanual_motions, steps=3, seed=1)


def test_bimanual_lookahead_observation_matches_mujoco_c(bimanual, bimanual_motions) -> None:
    env = mmimic.ImitationEnv(bimanual, bimanual_motions, 2, "cpu", BIMANUAL_GMR)
    assert env.num_obs == 1597
    run_and_compare(env, bimanual_motions, steps=2, seed=2)


def test_forward_mode_observes_the_new_state(bimanual, bimanual_motions) -> None:
    """With derived="forward" the muscle channels are those of a forward pass at the post-step state."""
    env = mmimic.ImitationEnv(bimanual, bimanual_motions, 2, "cpu", mmimic.EnvConfig(derived="forward", seed=3))
    run_and_compare(env, bimanual_motions, steps=2, seed=3)
