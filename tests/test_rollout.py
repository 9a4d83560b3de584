"""The shared rollout loop (mmimic.rollout) against a hand-written env.step loop on a twin environment."""

from __future__ import annotations

import torch
from test_env_reference import StandInMotions

import mmimic
from mmimic.rollout import Step, rollout


def test_rollout_records_what_a_plain_step_loop_sees(bimanual) -> None:
    lib = StandInMotions(bimanual, [12, 30], seed=3)  # short clips: worlds finish and restart on other clips
    config = mmimic.EnvConfig(seed=4)
    env, twin = (mmimic.ImitationEnv(bimanual, lib, 3, "cpu", config) for _ in range(2))
    actions = 0.3 * torch.randn(40, 3, env.num_actions, generator=torch.Generator().manual_seed(5))
    calls = iter(range(40))

    def policy(obs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return actions[next(calls)], obs.sum()  # a tuple whose first element is the action, like ActorCritic.act

    twin_obs = [twin.reset()]
    finished = []

    def record(step: Step) -> None:  # env's reward, done and info are its buffers: compare them now
        k = len(finished)
        assert torch.equal(step.obs, twin_obs[0]) and torch.equal(step.action, actions[k])
        assert torch.equal(step.output[1], twin_obs[0].sum())
        assert torch.equal(step.clip, twin.clip.long())
        obs, reward, done, info = twin.step(actions[k])
        assert torch.equal(step.reward, reward) and torch.equal(step.done, done)
        assert torch.equal(step.info["terminated"], info["terminated"])
        twin_obs[0] = obs.clone()
        finished.append(bool(done.any()))

    last = rollout(env, env.reset(), 40, policy, record)
    assert torch.equal(last, twin_obs[0])
    assert len(finished) == 40 and any(finished)
