"""Control-step behaviour: resets of finished worlds only, truncation, bad actions, capture, configuration."""

from __future__ import annotations

import math

import mujoco
import numpy as np
import pytest
import torch
from test_env_observation import assert_blocks_equal
from test_env_reference import StandInMotions, expected_observation, reference_rows

import mmimic


def push(env: mmimic.ImitationEnv, world: int) -> None:
    """Move a world 1.1 m (root x) or 1.1 rad (bimanual shoulder elevation) off its current state."""
    body = env.embodiment
    column = 0 if body.has_free_root else int(body.mj_model.joint("shoulder_elv_r").qposadr[0])
    env.sim.qpos[world, column] += 1.1


@pytest.mark.parametrize("body_name", ["bimanual", "fullbody"])
def test_reset_touches_only_finished_worlds(body_name: str, request) -> None:
    body = request.getfixturevalue(body_name)
    lib = StandInMotions(body, [200, 240], seed=14)
    config = mmimic.EnvConfig(seed=15)
    steady = mmimic.ImitationEnv(body, lib, 3, "cpu", config)
    pushed = mmimic.ImitationEnv(body, lib, 3, "cpu", config)
    generator = torch.Generator().manual_seed(16)
    world0_return = 0.0
    for step in range(4):
        actions = torch.rand(3, steady.num_actions, generator=generator)
        if step == 2:
            push(pushed, 0)
        _, r0, done0, _ = steady.step(actions)
        _, r1, done1, info = pushed.step(actions)
        assert not done0.any()
        assert done1.tolist() == ([True, False, False] if step == 2 else [False] * 3)
        others = slice(1, 3)
        for a, b in ((steady.sim.qpos, pushed.sim.qpos), (steady.sim.qvel, pushed.sim.qvel), (steady.sim.act, pushed.sim.act),
                     (steady.obs, pushed.obs), (r0, r1)):
            assert torch.equal(a[others], b[others])
        if step <= 2:
            world0_return += float(r1[0])
        if step == 2:
            assert info["terminated"][0] and int(info["episode_length"][0]) == 3
            assert float(info["episode_return"][0]) == pytest.approx(world0_return, rel=1e-6)
            check_reset_world(pushed, lib, 0)


def check_reset_world(env: mmimic.ImitationEnv, lib: StandInMotions, world: int) -> None:
    """The world holds its new start frame (root x-y re-centred to 0, zero activation and excitation) and the
    observation of that state computed by MuJoCo C."""
    row = int(lib.clip_start[env.clip[world]] + env.clip_step[world])
    qpos = lib.qpos[row].clone()
    if env.embodiment.has_free_root:
        qpos[:2] = 0.0
    assert torch.equal(env.sim.qpos[world], qpos) and torch.equal(env.sim.qvel[world], lib.qvel[row])
    assert not env.sim.act[world].any() and not env.sim.ctrl[world].any()
    m = env.embodiment.mj_model
    d = mujoco.MjData(m)
    d.qpos[:], d.qvel[:] = qpos.numpy(), lib.qvel[row].numpy()
    mujoco.mj_forward(m, d)
    frames = reference_rows(env, lib, env.clip_step)
    assert_blocks_equal(env, world, expected_observation(env, lib, frames, world, d))


def test_time_limit_and_end_of_motion_truncate(bimanual) -> None:
    lib = StandInMotions(bimanual, [4, 30], seed=17)
    env = mmimic.ImitationEnv(bimanual, lib, 4, "cpu", mmimic.EnvConfig(horizon=3, site_deviation=math.inf, seed=18))
    zeros = torch.zeros(4, env.num_actions)
    steps, returns = torch.zeros(4, dtype=torch.int32), torch.zeros(4)
    for _ in range(8):
        before, length = env.clip_step.clone(), lib.clip_length[env.clip.long()]
        _, reward, done, info = env.step(zeros)
        steps += 1
        returns += reward
        ended = (before + 1 >= length - 1) | (steps >= 3)
        assert torch.equal(info["truncated"], ended) and torch.equal(done, ended) and not info["terminated"].any()
        assert torch.equal(info["episode_length"][done], steps[done])
        torch.testing.assert_close(info["episode_return"][done], returns[done])
        steps[done], returns[done] = 0, 0.0
    assert torch.equal(env.clip_step, torch.minimum(env.clip_step, (lib.clip_length[env.clip.long()] - 1).int()))


@pytest.fixture(scope="module")
def bimanual_env(bimanual) -> mmimic.ImitationEnv:
    return mmimic.ImitationEnv(bimanual, StandInMotions(bimanual, [100], seed=19), 3, "cpu")


def test_bad_actions_are_named(bimanual_env) -> None:
    env = bimanual_env
    with pytest.raises(ValueError, match=r"actions have shape \(2, 5\), expected \(num_envs, num_actions\) = \(3, 126\)"):
        env.step(torch.zeros(2, 5))
    with pytest.raises(TypeError, match="actions have dtype torch.float64, expected torch.float32"):
        env.step(torch.zeros(3, 126, dtype=torch.float64))
    with pytest.raises(TypeError, match="actions must be a torch.Tensor"):
        env.step(np.zeros((3, 126), dtype=np.float32))
    with pytest.raises(ValueError, match="actions are on meta, the environment on cpu"):
        env.step(torch.zeros(3, 126, device="meta"))


def test_nan_actions_terminate_and_nothing_nan_comes_out(bimanual) -> None:
    lib = StandInMotions(bimanual, [100], seed=20)
    given = mmimic.ImitationEnv(bimanual, lib, 3, "cpu", mmimic.EnvConfig(seed=21))
    zeroed = mmimic.ImitationEnv(bimanual, lib, 3, "cpu", mmimic.EnvConfig(seed=21))
    actions = torch.rand(3, given.num_actions, generator=torch.Generator().manual_seed(22))
    bad, clean = actions.clone(), actions.clone()
    bad[1, 7] = float("nan")
    bad[1, 9] = float("inf")
    clean[1] = 0.0
    obs, reward, done, info = given.step(bad)
    assert info["nan_actions"].tolist() == [False, True, False]
    assert info["terminated"].tolist() == [False, True, False] and done[1]
    assert torch.isfinite(obs).all() and torch.isfinite(reward).all()
    _, _, done_clean, info_clean = zeroed.step(clean)
    assert not done_clean.any()
    for name, term in info["reward_terms"].items():  # the simulator saw zeros in world 1
        assert torch.equal(term, info_clean["reward_terms"][name]), name
    # A non-finite simulator state is zeroed in the observation, terminates the world, and the world restarts.
    given.sim.qvel[2, 0] = float("nan")
    obs, reward, done, info = given.step(actions)
    assert info["nan_obs"][2] and info["terminated"][2] and not info["nan_actions"].any()
    assert torch.isfinite(obs).all() and torch.isfinite(reward).all() and torch.isfinite(given.sim.qpos).all()


def test_captured_and_eager_steps_are_identical(bimanual) -> None:
    lib = StandInMotions(bimanual, [60, 80], seed=23)
    captured = mmimic.ImitationEnv(bimanual, lib, 3, "cpu", mmimic.EnvConfig(seed=24))
    eager = mmimic.ImitationEnv(bimanual, lib, 3, "cpu", mmimic.EnvConfig(seed=24, capture=False))
    assert captured.captured == ["reset", "step"] and eager.captured == []
    generator = torch.Generator().manual_seed(25)
    for step in range(5):
        actions = torch.rand(3, captured.num_actions, generator=generator)
        if step == 1:
            push(captured, 2), push(eager, 2)
        a, b = captured.step(actions), eager.step(actions)
        for x, y in zip(a[:3], b[:3]):
            assert torch.equal(x, y)
        assert torch.equal(captured.sim.qpos, eager.sim.qpos)
    captured.reset(), eager.reset()
    assert torch.equal(captured.obs, eager.obs)


def test_configuration(fullbody, bimanual) -> None:
    train = mmimic.EnvConfig.for_embodiment(fullbody)
    assert (train.site_deviation, train.root_deviation, train.root_angle, train.horizon) == (1.0, 1.0, 1.0, 1000)
    validation = mmimic.EnvConfig.for_embodiment(fullbody).for_validation().resolve(fullbody)
    assert (validation.site_deviation, validation.root_deviation, validation.root_angle) == (0.5, math.inf, math.inf)
    arm = mmimic.EnvConfig.for_embodiment(bimanual)
    assert arm.site_deviation == 0.05 and arm.site_deviation_world and arm.muscle_channels == ("force", "activation")
    assert mmimic.EnvConfig.for_validation(arm).resolve(bimanual).site_deviation == math.inf
    assert sum(w for n, w in mmimic.EnvConfig.for_embodiment(fullbody).reward_weights.items()
               if not mmimic.rewards.registered()[n].penalty) == pytest.approx(1.21)
    with pytest.raises(ValueError, match=r"unknown environment option\(s\) \['horizn'\]"):
        mmimic.EnvConfig.for_embodiment(fullbody, horizn=10)
    with pytest.raises(ValueError, match="EnvConfig.goal 'concise' needs a free root"):
        mmimic.EnvConfig(goal="concise").resolve(bimanual)
    with pytest.raises(ValueError, match="motions.fps is 30"):
        lib = StandInMotions(bimanual, [10], seed=26)
        lib.fps = 30
        mmimic.ImitationEnv(bimanual, lib, 1, "cpu")


def test_motion_paths_load_a_library(bimanual) -> None:
    """A clip path is read into a MotionLibrary on the environment's device: its first frame is the reference."""
    from pathlib import Path

    clip = Path(__file__).resolve().parent.parent / "motions/bimanual/opensim_walk.npz"
    env = mmimic.ImitationEnv(bimanual, clip, 2, "cpu")
    library = mmimic.MotionLibrary(bimanual, [clip], "cpu")
    assert env.reference.qpos.shape[0] == library.num_frames
    env.start_at(torch.zeros(2, dtype=torch.int64))
    assert torch.equal(env.sim.qpos, library.qpos[:1].expand(2, -1))
