"""Throughput measurements: the simulator, the environment, training, and MuJoCo C as the CPU baseline."""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import resource
import time
from collections.abc import Callable
from dataclasses import dataclass

import mujoco
import torch
import warp as wp

from mmimic.device import device_memory
from mmimic.embodiment import Embodiment
from mmimic.env import ImitationEnv
from mmimic.ppo import PPO, ActorCritic, RolloutStorage
from mmimic.ppo.storage import Minibatch
from mmimic.rollout import Step, rollout
from mmimic.simulator import Simulator
from mmimic.train.config import NetworkConfig, PPOConfig, TrainConfig


@dataclass
class Throughput:
    """One measurement: world control steps per second over `steps` timed control steps."""

    steps_per_second: float
    seconds_per_step: float
    steps: int


def synchronize(device: str) -> None:
    """Wait for queued device work (a no-op on the CPU, where Warp launches are synchronous)."""
    if device.startswith("cuda"):
        wp.synchronize_device(device)
        torch.cuda.synchronize()


def peak_memory_bytes(device: str) -> int:
    """Peak memory so far: device memory on a GPU (torch's allocator plus Warp's), resident set size on the CPU."""
    if device.startswith("cuda"):
        used = device_memory(device)
        return max(used["torch_peak"] + used["warp_current"], used["device_used"])
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def _timed_steps(step: Callable[[torch.Tensor], object], inputs: torch.Tensor, warmup: int, device: str) -> Throughput:
    """Run `step` on each row of `inputs`; time all but the first `warmup` (world control steps per second)."""
    for k in range(warmup):
        step(inputs[k])
    synchronize(device)
    start = time.perf_counter()
    for k in range(warmup, inputs.shape[0]):
        step(inputs[k])
    synchronize(device)
    elapsed = time.perf_counter() - start
    steps = inputs.shape[0] - warmup
    return Throughput(inputs.shape[1] * steps / elapsed, elapsed / steps, steps)


def simulator_throughput(sim: Simulator, steps: int, warmup: int = 3, seed: int = 0) -> Throughput:
    """Physics-only control steps per second: captured substeps with random excitations held per step."""
    generator = torch.Generator(device=sim.torch_device).manual_seed(seed)
    excitations = torch.rand((warmup + steps, *sim.ctrl.shape), generator=generator, device=sim.torch_device)
    return _timed_steps(sim.step, excitations, warmup, sim.device)


def mujoco_c_throughput(embodiment: Embodiment, steps: int, seed: int = 0) -> Throughput:
    """Single-thread MuJoCo C on one world: control steps (substeps with held random excitation) per second."""
    m = embodiment.mj_model
    d = mujoco.MjData(m)
    d.qpos[:] = embodiment.initial_qpos()
    generator = torch.Generator().manual_seed(seed)
    excitations = torch.rand(steps, m.nu, generator=generator, dtype=torch.float64).numpy()
    substeps = embodiment.physics.substeps
    start = time.perf_counter()
    for k in range(steps):
        d.ctrl[:] = excitations[k]
        mujoco.mj_step(m, d, nstep=substeps)
    elapsed = time.perf_counter() - start
    return Throughput(steps / elapsed, elapsed / steps, steps)


@dataclass
class EnvThroughput(Throughput):
    """An environment measurement, with the mean number of worlds reset per control step (warmup included)."""

    resets_per_step: float


def env_throughput(env: ImitationEnv, steps: int, warmup: int = 3, seed: int = 0) -> EnvThroughput:
    """Environment control steps per second: physics plus mmimic's observation, reward, termination and reset kernels."""
    generator = torch.Generator(device=env.torch_device).manual_seed(seed)
    actions = torch.rand((warmup + steps, env.num_envs, env.num_actions), generator=generator, device=env.torch_device)
    env.reset()
    resets = torch.zeros((), dtype=torch.int64, device=env.torch_device)

    def step(action: torch.Tensor) -> None:
        resets.add_(env.step(action)[2].sum())  # stays on the device: no synchronisation per step

    timed = _timed_steps(step, actions, warmup, env.device)
    return EnvThroughput(timed.steps_per_second, timed.seconds_per_step, timed.steps, float(resets) / (warmup + steps))


@dataclass
class TrainingBreakdown:
    """Seconds per training iteration spent in each part, and the resulting throughput."""

    physics: float
    kernels: float
    policy: float
    update: float
    other: float
    steps_per_iteration: int

    @property
    def total(self) -> float:
        return self.physics + self.kernels + self.policy + self.update + self.other

    @property
    def steps_per_second(self) -> float:
        return self.steps_per_iteration / self.total


def training_throughput(env: ImitationEnv, config: TrainConfig, iterations: int, physics_seconds_per_step: float) -> TrainingBreakdown:
    """Rollouts with policy inference plus the PPO update of `config`, timed part by part.

    Timing each part synchronises the device between parts; physics is attributed from the
    physics-only measurement and the rest of the environment step counts as mmimic's kernels.
    """
    run = config.run
    device = env.torch_device
    network = config.network
    actor_critic = ActorCritic(env.num_obs, env.num_actions, network.actor_hidden, network.critic_hidden,
                               network.init_std, residual=network.residual).to(device)
    ppo = PPO(actor_critic, config.ppo, device, num_updates=run.num_iterations())
    storage = RolloutStorage(run.num_steps, env.num_envs, env.num_obs, env.num_actions, device)
    totals = dict.fromkeys(("env", "policy", "update", "iteration"), 0.0)

    def timed(key: str, fn):
        synchronize(env.device)
        start = time.perf_counter()
        result = fn()
        synchronize(env.device)
        totals[key] += time.perf_counter() - start
        return result

    def store(step: Step) -> None:
        _, log_prob, value, _ = step.output
        storage.add(step.obs, step.action, log_prob, value, step.reward, step.done, step.info["terminated"])

    act = functools.partial(actor_critic.act, update_normalizer=True)
    obs = env.reset()
    for iteration in range(iterations + 1):  # the first iteration warms up and is not counted
        if iteration == 1:
            totals = dict.fromkeys(totals, 0.0)
        synchronize(env.device)
        started = time.perf_counter()
        obs = rollout(env, obs, run.num_steps, act, store, timed=timed)
        timed("update", lambda obs=obs, it=iteration: (ppo.compute_returns(storage, obs), ppo.update(storage, it)))
        storage.clear()
        synchronize(env.device)
        totals["iteration"] += time.perf_counter() - started
    env_steps = run.num_steps * iterations
    physics = min(physics_seconds_per_step * env_steps, totals["env"])
    return TrainingBreakdown(
        physics=physics / iterations,
        kernels=(totals["env"] - physics) / iterations,
        policy=totals["policy"] / iterations,
        update=totals["update"] / iterations,
        other=max(totals["iteration"] - totals["env"] - totals["policy"] - totals["update"], 0.0) / iterations,
        steps_per_iteration=run.num_steps * env.num_envs,
    )


# Operators that only make a view or read metadata: no kernel runs for them.
_VIEW_OPS = frozenset(
    f"aten::{name}" for name in (
        "view", "_unsafe_view", "reshape", "t", "transpose", "permute", "expand", "as_strided", "unsqueeze",
        "squeeze", "select", "slice", "split", "split_with_sizes", "unbind", "chunk", "narrow", "alias", "detach",
        "view_as", "expand_as", "empty", "empty_like", "empty_strided", "resolve_conj", "resolve_neg", "lift_fresh",
        "result_type", "numpy_T", "mT", "matrix_H", "_reshape_alias", "set_",
    )
)


def minibatch_update_ops(num_obs: int, num_actions: int, network: NetworkConfig, ppo_config: PPOConfig,
                         batch_size: int = 64, seed: int = 0, compiled: bool = False) -> dict[str, int]:
    """Operators dispatched by one PPO minibatch update, counted with torch.profiler on the CPU.

    Counts the outermost aten operators (views left out), each one or a few kernel launches on a GPU,
    plus, with ``compiled``, the kernels inductor generated for the compiled step (the step then runs
    through ``torch.compile`` and costs minutes of compilation first). Returns ``minibatch`` (the whole
    step: forward, backward, clipping, optimiser), ``generated`` (inductor's kernels among them) and,
    eager only, ``optimizer`` (the optimiser step alone). The count depends on the layer shapes, not on
    ``batch_size`` or the data.
    """
    torch.manual_seed(seed)
    actor_critic = ActorCritic(num_obs, num_actions, network.actor_hidden, network.critic_hidden, network.init_std,
                               residual=network.residual)
    ppo = PPO(actor_critic, dataclasses.replace(ppo_config, compile="on" if compiled else "off"), "cpu")
    batch = Minibatch(torch.randn(batch_size, num_obs), torch.randn(batch_size, num_actions),
                      torch.randn(batch_size), torch.randn(batch_size), torch.randn(batch_size),
                      torch.randn(batch_size))
    context = contextlib.nullcontext()
    if compiled:  # imported here: heavy, and needed only to name each kernel inductor generates
        from torch._inductor import config as inductor_config

        context = inductor_config.patch({"cpp.enable_kernel_profile": True})
    with context:
        ppo.minibatch_step(batch)  # a first step builds lazy state (and compiles); the second is counted
        counts = step_ops(ppo, batch)
    if not compiled:
        with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) as prof:
            ppo.optimizer.step(torch.ones((), dtype=torch.bool))  # the step's gradients
        counts["optimizer"] = _kernel_ops(prof.events())
    return counts


def step_ops(ppo: PPO, batch: Minibatch) -> dict[str, int]:
    """``minibatch`` and ``generated`` of `minibatch_update_ops` for one more step of ``ppo`` on ``batch``
    (a compiled step must have been compiled with inductor's ``cpp.enable_kernel_profile`` for its
    generated kernels to be seen)."""
    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) as prof:
        ppo.minibatch_step(batch)
    generated = sum(1 for e in prof.events() if _is_generated_kernel(e))
    return {"minibatch": _kernel_ops(prof.events()) + generated, "generated": generated}


def _kernel_ops(events) -> int:
    """Outermost aten operators that are not views: what the Python code and autograd dispatch, each of
    them one or a few kernels on a GPU (a `_foreach_` operator one fused multi-tensor kernel)."""
    return sum(1 for e in events if e.name.startswith("aten::") and e.name not in _VIEW_OPS and not _inside_aten(e))


def _is_generated_kernel(event) -> bool:
    """A kernel inductor generated (C++ on the CPU), recorded under its name with `cpp.enable_kernel_profile`."""
    return "cpp_fused" in event.name and not _inside_aten(event)


def _inside_aten(event) -> bool:
    parent = event.cpu_parent
    while parent is not None:
        if parent.name.startswith("aten::"):
            return True
        parent = parent.cpu_parent
    return False
