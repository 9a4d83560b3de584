"""Throughput measurements: control steps per second of the batched simulator and of MuJoCo C."""

from __future__ import annotations

import resource
import time
from dataclasses import dataclass

import mujoco
import torch
import warp as wp

from mmimic.embodiment import Embodiment
from mmimic.simulator import Simulator


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
        free, total = torch.cuda.mem_get_info()
        return max(torch.cuda.max_memory_allocated(), total - free)
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def simulator_throughput(sim: Simulator, steps: int, warmup: int = 3, seed: int = 0) -> Throughput:
    """Physics-only control steps per second: captured substeps with random excitations held per step."""
    generator = torch.Generator(device=sim.torch_device).manual_seed(seed)
    excitations = torch.rand((warmup + steps, *sim.ctrl.shape), generator=generator, device=sim.torch_device)
    for k in range(warmup):
        sim.step(excitations[k])
    synchronize(sim.device)
    start = time.perf_counter()
    for k in range(warmup, warmup + steps):
        sim.step(excitations[k])
    synchronize(sim.device)
    elapsed = time.perf_counter() - start
    return Throughput(sim.num_envs * steps / elapsed, elapsed / steps, steps)


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
