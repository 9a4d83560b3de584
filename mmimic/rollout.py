"""The one rollout loop of training, validation, evaluation and the benchmark: a policy acting in an
`ImitationEnv` for some control steps, with nothing read to the host."""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import torch

from mmimic.env import ImitationEnv


class Step(NamedTuple):
    """One control step: the observation acted on (a copy, `env.step` overwrites the buffer; None without
    `keep_obs`), each world's clip before the step (finished worlds restart on new clips), the policy's
    output and action, and what `env.step` returned."""

    obs: torch.Tensor | None
    clip: torch.Tensor
    output: torch.Tensor | tuple[torch.Tensor, ...]
    action: torch.Tensor
    reward: torch.Tensor
    done: torch.Tensor
    info: dict


def rollout(env: ImitationEnv, obs: torch.Tensor, steps: int, policy: Callable, record: Callable[[Step], None], *,
            keep_obs: bool = True, timed: Callable[[str, Callable], object] | None = None) -> torch.Tensor:
    """Act `steps` control steps from `obs`; return the observation after the last. `policy(obs)` returns the
    action or a tuple starting with it (`ActorCritic.act`); `record` gets each `Step`; with `timed` the policy
    and the environment run as `timed("policy", fn)` and `timed("env", fn)` (the benchmark times them)."""
    run = timed or (lambda _part, fn: fn())
    for _ in range(steps):
        output = run("policy", lambda obs=obs: policy(obs))
        action = output[0] if isinstance(output, tuple) else output
        acted_on = obs.clone() if keep_obs else None
        clip = env.clip.long()
        next_obs, reward, done, info = run("env", lambda action=action: env.step(action))
        record(Step(acted_on, clip, output, action, reward, done, info))
        obs = next_obs
    return obs
