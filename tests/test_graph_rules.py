"""CUDA's graph rules, enforced on the CPU where Warp's record-and-replay would let them pass.

1. No memory allocation inside a conditional graph body (`wp.capture_if` / `wp.capture_while`):
   CUDA refuses such a graph. Warp's CPU capture records every conditional body through
   `_apic_capture_branch`; the hook counts the device allocator's calls made meanwhile.
2. No torch operation inside a Warp capture: it would run once at record time, never at replay.
3. Warp work on torch's current stream, one cached Warp stream per torch stream.
"""

from __future__ import annotations

import traceback
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
import warp as wp
from test_env_reference import StandInMotions
from torch.overrides import TorchFunctionMode
from torch.utils._python_dispatch import TorchDispatchMode
from warp._src import context as warp_context

import mmimic
from mmimic.streams import TorchStreams

WARP_DIR = str(Path(wp.__file__).parent)


def _caller() -> str:
    """The innermost frame outside Warp and this file, as `file:line function`."""
    for frame in reversed(traceback.extract_stack()):
        if not frame.filename.startswith(WARP_DIR) and frame.filename != __file__:
            return f"{Path(frame.filename).name}:{frame.lineno} {frame.name}"
    return "?"


class ConditionalAllocations:
    """Records where Warp allocates device memory while a conditional graph body is being recorded."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.bodies = 0
        self.sites: list[str] = []
        self._depth = 0
        record_branch = warp_context._apic_capture_branch

        def branch(callback, **kwargs):
            self.bodies += 1
            self._depth += 1
            try:
                return record_branch(callback, **kwargs)
            finally:
                self._depth -= 1

        allocator = wp.get_device("cpu").get_allocator()
        allocate = allocator.allocate

        def counted(size_in_bytes: int) -> int:
            if self._depth:
                self.sites.append(_caller())
            return allocate(size_in_bytes)

        monkeypatch.setattr(warp_context, "_apic_capture_branch", branch)
        monkeypatch.setattr(allocator, "allocate", counted)


class TorchOpsInCaptures:
    """Records every torch function and aten op called between `wp.capture_begin` and `wp.capture_end`."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.captures = 0
        self.ops: list[str] = []
        ops = self.ops

        class Functions(TorchFunctionMode):
            def __torch_function__(self, func, types, args=(), kwargs=None):
                ops.append(f"{getattr(func, '__name__', func)} at {_caller()}")
                return func(*args, **(kwargs or {}))

        class Dispatch(TorchDispatchMode):
            def __torch_dispatch__(self, func, types, args=(), kwargs=None):
                ops.append(f"{func} at {_caller()}")
                return func(*args, **(kwargs or {}))

        begin, end = wp.capture_begin, wp.capture_end
        modes: list = []

        def capture_begin(*args, **kwargs):
            begin(*args, **kwargs)
            self.captures += 1
            modes[:] = [Functions(), Dispatch()]
            for mode in modes:
                mode.__enter__()

        def capture_end(*args, **kwargs):
            for mode in reversed(modes):
                mode.__exit__(None, None, None)
            modes.clear()
            return end(*args, **kwargs)

        monkeypatch.setattr(wp, "capture_begin", capture_begin)
        monkeypatch.setattr(wp, "capture_end", capture_end)


def _build(body: mmimic.Embodiment) -> mmimic.ImitationEnv:
    return mmimic.ImitationEnv(body, StandInMotions(body, [30, 40], seed=3), 2, "cpu", mmimic.EnvConfig(seed=4))


@pytest.mark.parametrize("body_name", ["bimanual", "fullbody"])
def test_recorded_graphs_obey_cuda_rules(body_name: str, request, monkeypatch) -> None:
    """The environment's step and reset graphs and the simulator's graph: no allocation in a conditional body, no torch op."""
    body = request.getfixturevalue(body_name)
    allocations = ConditionalAllocations(monkeypatch)
    torch_ops = TorchOpsInCaptures(monkeypatch)
    env = _build(body)
    mmimic.Simulator(body, 2, "cpu").step()  # records the simulator's graph
    assert not allocations.sites, f"{len(allocations.sites)} allocations inside conditional graph bodies: {allocations.sites}"
    assert not torch_ops.ops, f"torch operations inside a Warp capture: {torch_ops.ops}"
    assert env.captured == ["reset", "step"]
    assert allocations.bodies >= 2  # the environment's reset node and mujoco_warp's collision node were recorded
    assert torch_ops.captures == 3  # the environment's two graphs and the simulator's, none for the environment's simulator


def test_a_forward_pass_in_the_reset_node_is_caught(bimanual, monkeypatch) -> None:
    """The check fails when the reset's forward pass is put back inside the conditional node."""
    restart = mmimic.ImitationEnv._restart

    def restart_with_forward(env: mmimic.ImitationEnv, mask: wp.array) -> None:
        restart(env, mask)
        env.sim.launch_forward()

    monkeypatch.setattr(mmimic.ImitationEnv, "_restart", restart_with_forward)
    allocations = ConditionalAllocations(monkeypatch)
    _build(bimanual)
    assert any("solver.py" in site for site in allocations.sites), allocations.sites


def test_one_warp_stream_per_torch_stream() -> None:
    made: list[int] = []

    def make(torch_stream) -> object:
        made.append(torch_stream.cuda_stream)
        return object()

    streams = TorchStreams(torch.device("cuda", 0), make)
    first = streams.warp_stream(SimpleNamespace(cuda_stream=11))
    assert streams.warp_stream(SimpleNamespace(cuda_stream=11)) is first  # a new torch handle object, the same stream
    assert streams.warp_stream(SimpleNamespace(cuda_stream=22)) is not first
    assert made == [11, 22]
    TorchStreams(torch.device("cuda", 0), make).warp_stream(SimpleNamespace(cuda_stream=11))
    assert made == [11, 22, 11]  # each owner keeps its own cache
    assert TorchStreams(torch.device("cpu"), make).current() is None and made == [11, 22, 11]


def test_every_entry_point_runs_on_torchs_stream(bimanual, monkeypatch) -> None:
    """Simulator step/reset/overflow_report and environment step/reset/start_at enter the stream scope."""
    env = _build(bimanual)
    sim = env.sim
    scopes = []
    real = TorchStreams.scope

    def scope(self: TorchStreams) -> wp.ScopedStream:
        scopes.append(self)
        return real(self)

    monkeypatch.setattr(TorchStreams, "scope", scope)
    entry_points = {
        "env.step": lambda: env.step(torch.zeros(2, env.num_actions)),
        "env.reset": env.reset,
        "env.start_at": lambda: env.start_at(torch.tensor([0, 1])),
        "sim.step": sim.step,
        "sim.reset": lambda: sim.reset(torch.tensor([True, False]), sim.qpos.clone()),
        "sim.overflow_report": sim.overflow_report,
    }
    for name, call in entry_points.items():
        before = len(scopes)
        call()
        assert len(scopes) > before, f"{name} launched outside torch's stream"
    assert all(s is sim._streams for s in scopes)  # one cache, the simulator's
