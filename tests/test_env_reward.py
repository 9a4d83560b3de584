"""Reward terms and termination against numpy (MuscleMimic, arXiv 2603.25544), perfect tracking,
user reward kernels from the command line, and the registry's errors."""

from __future__ import annotations

import re
import textwrap
from pathlib import Path

import mujoco
import pytest
import torch
import warp as wp
from test_env_reference import (
    StandInMotions,
    kinematics,
    reference_rows,
    reference_state,
    reward_terms,
    simulator_state,
    total_reward,
)

import mmimic
from mmimic.env import rewards

DOCS = Path(__file__).resolve().parent.parent / "docs" / "rewards.md"
ALL_TERMS_ON = {"action_rate": 0.002, "activation_energy": 0.05, "root_pos": 0.1, "root_vel": 0.1}


@pytest.fixture
def new_terms_unregistered():
    """Unregister the kernels a test registers (the registry of kernels is process-wide; weights are not)."""
    before = rewards.registered()
    yield
    for name in set(rewards.registered()) - set(before):
        rewards.unregister(name)


def check_rewards(body: mmimic.Embodiment, lib: StandInMotions, steps: int) -> None:
    """Every built-in term, the total and the termination flags equal the numpy formulas on the env's own state."""
    env = mmimic.ImitationEnv(body, lib, 3, "cpu", mmimic.EnvConfig(reward_weights=ALL_TERMS_ON, seed=4))
    assert set(env.info["reward_terms"]) == set(rewards.registered())
    penalties = {name for name, term in rewards.registered().items() if term.penalty}
    generator = torch.Generator().manual_seed(5)
    env.reset()
    start = env.clip_step.clone()
    last = torch.zeros(env.num_envs, env.num_actions)
    m, d = body.mj_model, mujoco.MjData(body.mj_model)
    for _ in range(steps):
        actions = torch.rand(env.num_envs, env.num_actions, generator=generator) * 3 - 1.5
        _, reward, done, info = env.step(actions)
        assert not done.any(), "choose a seed where no world finishes during the comparison"
        frames = reference_rows(env, lib, start)
        for w in range(env.num_envs):
            d.qpos[:], d.qvel[:], d.act[:] = env.sim.qpos[w].numpy(), env.sim.qvel[w].numpy(), env.sim.act[w].numpy()
            kinematics(m, d)
            sim = simulator_state(body, d)
            ref = reference_state(lib, frames["rows"][0, w], frames["offset"][w], body.has_free_root)
            expected = reward_terms(body, sim, ref, actions[w].double().numpy(), last[w].double().numpy())
            got = {name: float(value[w]) for name, value in info["reward_terms"].items()}
            for name, value in expected.items():
                assert got[name] == pytest.approx(value, rel=1e-4, abs=1e-6), f"world {w} term {name}"
            assert float(reward[w]) == pytest.approx(total_reward(expected, env.reward_weights, penalties), rel=1e-5, abs=1e-6)
        last = actions
    assert env.captured == ["reset", "step"]


def test_fullbody_rewards_match_numpy(fullbody: mmimic.Embodiment) -> None:
    check_rewards(fullbody, StandInMotions(fullbody, [150, 180], seed=3), steps=2)


def test_bimanual_rewards_match_numpy(bimanual: mmimic.Embodiment) -> None:
    check_rewards(bimanual, StandInMotions(bimanual, [150, 180], seed=3), steps=3)


def inject_reference(env: mmimic.ImitationEnv, lib: StandInMotions, shift: dict[int, tuple[int, float]]) -> None:
    """Replace the physics step by writing each world's next reference frame into the simulator
    (perfect tracking); `shift` moves world w's qpos column c by x (a push off the reference)."""
    rows = lib.clip_start[env.clip.long()] + torch.minimum(env.clip_step.long() + 1, lib.clip_length[env.clip.long()] - 1)
    qpos, qvel = lib.qpos[rows].clone(), lib.qvel[rows].clone()
    if env.embodiment.has_free_root:
        qpos[:, :2] -= env.root_offset
    for w, (c, x) in shift.items():
        qpos[w, c] += x
    all_worlds = torch.ones(env.num_envs, dtype=torch.bool)
    env.sim.launch_control_step = lambda: env.sim.reset(all_worlds, qpos, qvel)


@pytest.mark.parametrize("body_name", ["fullbody", "bimanual"])
def test_perfect_tracking_is_maximal_and_a_push_terminates(body_name: str, request) -> None:
    body = request.getfixturevalue(body_name)
    lib = StandInMotions(body, [200, 220], seed=6)
    env = mmimic.ImitationEnv(body, lib, 3, "cpu", mmimic.EnvConfig(seed=7, capture=False))  # eager: physics replaced
    env.reset()
    zeros = torch.zeros(env.num_envs, env.num_actions)
    imitation = [name for name in env.reward_weights if not rewards.registered()[name].penalty]
    maximum = sum(env.reward_weights[name] for name in imitation)
    for _ in range(3):
        inject_reference(env, lib, {})
        _, reward, done, info = env.step(zeros)
        assert not done.any()
        for name in imitation:
            assert torch.all(info["reward_terms"][name] > 1 - 1e-5), name
        torch.testing.assert_close(reward, torch.full_like(reward, maximum), rtol=1e-5, atol=1e-5)
    # A push of 1.1 m (full body: root x; bimanual: a shoulder joint by 1.1 rad) is absorbing, not a truncation.
    push = (0, 1.1) if body.has_free_root else (int(body.mj_model.joint("shoulder_elv_r").qposadr[0]), 1.1)
    inject_reference(env, lib, {1: push})
    _, _, done, info = env.step(zeros)
    assert done.tolist() == [False, True, False]
    assert info["terminated"].tolist() == [False, True, False] and not info["truncated"].any()


def docs_example() -> str:
    """The reward module written out in docs/rewards.md (its first python block)."""
    match = re.search(r"```python\n(.*?)```", DOCS.read_text(), re.S)
    assert match, "docs/rewards.md has no python example"
    return match.group(1)


def test_user_reward_module_from_the_command_line(fullbody, tmp_path, new_terms_unregistered) -> None:
    """The docs' example, loaded from a file outside the package, adds exactly weight x term to the reward."""
    module = tmp_path / "my_rewards.py"
    module.write_text(docs_example())
    command = re.search(r"--reward-module \S+ --reward (\w+)=([\d.]+)", DOCS.read_text())
    name, weight = command.group(1), float(command.group(2))
    lib = StandInMotions(fullbody, [150], seed=8)
    plain = mmimic.ImitationEnv(fullbody, lib, 2, "cpu", mmimic.EnvConfig(seed=9))
    weights = mmimic.apply_reward_args([str(module)], [f"{name}={weight}"])
    assert weights == {name: weight}
    extended = mmimic.ImitationEnv(fullbody, lib, 2, "cpu", mmimic.EnvConfig(reward_weights=weights, seed=9))
    assert extended.reward_weights[name] == weight and name not in plain.info["reward_terms"]
    generator = torch.Generator().manual_seed(10)
    for _ in range(3):
        actions = torch.rand(2, extended.num_actions, generator=generator)
        r0 = plain.step(actions)[1].clone()
        r1, _, info = extended.step(actions)[1:]
        term = info["reward_terms"][name]
        assert torch.all(term != 0)
        torch.testing.assert_close(r1 - r0, weight * term, rtol=0, atol=2e-6)


@wp.kernel
def bad_values(state: rewards.WorldState, params: float, out: wp.array(dtype=float)):
    world = wp.tid()
    out[world] = -params
    if world == 0:
        out[world] = wp.nan


def test_penalty_floor_and_nan(bimanual, new_terms_unregistered) -> None:
    """Penalties are floored at -1 before joining the imitation terms; a NaN term zeroes the world's reward."""
    lib = StandInMotions(bimanual, [150], seed=11)
    rewards.register("bad_values", bad_values, penalty=True, scale=5.0)
    env = mmimic.ImitationEnv(bimanual, lib, 3, "cpu", mmimic.EnvConfig(reward_weights={"bad_values": 1.0}, seed=12))
    _, reward, _, info = env.step(torch.zeros(3, env.num_actions))
    terms = info["reward_terms"]
    imitation = sum(env.reward_weights[n] * terms[n] for n in terms if not rewards.registered()[n].penalty)
    assert reward[0] == 0 and terms["bad_values"][0] == 0
    torch.testing.assert_close(reward[1:], (imitation[1:] - 1.0).clamp(min=0))
    assert torch.all(torch.isfinite(reward))


def write(tmp_path: Path, name: str, source: str) -> str:
    path = tmp_path / name
    path.write_text(textwrap.dedent(source))
    return str(path)


def test_reward_argument_errors(tmp_path, new_terms_unregistered) -> None:
    with pytest.raises(rewards.RewardError, match="no_such_file.py: no such file"):
        mmimic.apply_reward_args([str(tmp_path / "no_such_file.py")], [])
    broken = write(tmp_path, "broken.py", "import not_a_module_anywhere\n")
    with pytest.raises(rewards.RewardError, match=r"broken\.py: importing it failed: ModuleNotFoundError"):
        mmimic.apply_reward_args([broken], [])
    wrong = write(tmp_path, "wrong.py", """
        import warp as wp
        from mmimic.env.rewards import WorldState, register

        @wp.kernel
        def two_arguments(state: WorldState, out: wp.array(dtype=float)):
            out[wp.tid()] = 1.0

        register("two_arguments", two_arguments)
    """)
    with pytest.raises(rewards.RewardError, match=r"wrong\.py: .*two_arguments.*wrong signature; expected \(state: WorldState"):
        mmimic.apply_reward_args([wrong], [])
    with pytest.raises(rewards.RewardError, match="unknown reward term 'nosuch'; known: .*qpos"):
        mmimic.apply_reward_args([], ["nosuch=1"])
    with pytest.raises(rewards.RewardError, match="expected NAME=WEIGHT"):
        mmimic.apply_reward_args([], ["qpos"])
    with pytest.raises(rewards.RewardError, match="'heavy' is not a number"):
        mmimic.apply_reward_args([], ["qpos=heavy"])


@wp.kernel
def two_dimensional_out(state: rewards.WorldState, params: float, out: wp.array2d(dtype=float)):
    out[wp.tid(), 0] = params


def test_register_errors() -> None:
    with pytest.raises(rewards.RewardError, match="two_dimensional_out.*wrong signature"):
        rewards.register("flat", two_dimensional_out)
    with pytest.raises(rewards.RewardError, match="expected a @wp.kernel"):
        rewards.register("python_function", lambda state, params, out: None)
    with pytest.raises(rewards.RewardError, match="'qpos' is already registered"):
        rewards.register("qpos", bad_values)
    with pytest.raises(rewards.RewardError, match="one keyword"):
        rewards.register("two_scales", bad_values, scale=1.0, bound=2.0)
    with pytest.raises(rewards.RewardError, match="not 'weight': weights are EnvConfig.reward_weights"):
        rewards.register("weighted", bad_values, weight=1.0)
    with pytest.raises(ValueError, match=r"unknown reward terms \['nosuch'\]"):
        mmimic.EnvConfig(reward_weights={"nosuch": 1.0}).resolve(mmimic.load_embodiment("bimanual"))


def test_command_line_switches_a_builtin_off(bimanual) -> None:
    config = mmimic.EnvConfig.for_embodiment(bimanual, reward_weights=mmimic.apply_reward_args([], ["qpos=0", "rpos=3"]))
    assert config.reward_weights["qpos"] == 0.0 and config.reward_weights["rpos"] == 3.0
    lib = StandInMotions(bimanual, [50], seed=13)
    env = mmimic.ImitationEnv(bimanual, lib, 2, "cpu", config)
    assert "qpos" not in env.info["reward_terms"] and env.reward_weights["rpos"] == 3.0


def test_two_environments_in_one_process_have_their_own_weights(bimanual) -> None:
    """Weights belong to each environment's config: the command line's weights reach only the env built
    with them, and each env's total is its own weights times the same per-term values."""
    lib = StandInMotions(bimanual, [150], seed=14)
    heavy = mmimic.apply_reward_args([], ["qpos=0", "rpos=3", "action_rate=0.5"])
    envs = [mmimic.ImitationEnv(bimanual, lib, 3, "cpu", mmimic.EnvConfig(reward_weights=w, seed=15)) for w in ({}, heavy)]
    published = mmimic.EnvConfig.for_embodiment(bimanual).reward_weights
    assert envs[0].reward_weights == {k: w for k, w in published.items() if w != 0}
    assert envs[1].reward_weights == {k: w for k, w in {**published, **heavy}.items() if w != 0}
    assert "qpos" not in envs[1].reward_weights and envs[1].reward_weights["rpos"] == 3.0
    assert mmimic.EnvConfig.for_embodiment(bimanual).reward_weights == published  # nothing left behind
    penalties = {name for name, term in rewards.registered().items() if term.penalty}
    generator = torch.Generator().manual_seed(16)
    for _ in range(2):
        actions = torch.rand(3, envs[0].num_actions, generator=generator) * 2 - 0.5
        totals = []
        for env in envs:
            _, reward, _, info = env.step(actions)
            terms = {name: value.double().numpy() for name, value in info["reward_terms"].items()}
            expected = [total_reward({n: v[w] for n, v in terms.items()}, env.reward_weights, penalties) for w in range(3)]
            torch.testing.assert_close(reward.double(), torch.tensor(expected, dtype=torch.float64), rtol=1e-5, atol=1e-6)
            totals.append(reward.clone())
        assert not torch.allclose(totals[0], totals[1])
