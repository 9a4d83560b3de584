"""The batched muscle-driven simulator: N MuJoCo worlds on mujoco_warp, muscles from mmimic's kernels.

One control step is `substeps` physics steps with the excitation held, recorded as a Warp
graph on the first `step` and replayed (CUDA graph on a GPU, Warp's record-and-replay on the CPU). Every state
array is exposed as a torch tensor that shares memory with the Warp array, so writes are
visible both ways without copies.
"""

from __future__ import annotations

import copy
import logging

import mujoco
import mujoco_warp as mjw
import numpy as np
import torch
import warp as wp

from mmimic.device import resolve_device
from mmimic.embodiment import Embodiment, load_embodiment
from mmimic.kernels import simulator as sim_kernels
from mmimic.muscles import MuscleModel, make_muscle_model
from mmimic.streams import TorchStreams

log = logging.getLogger(__name__)

# Overflows that make the physics wrong. Hitting the solver's iteration cap is expected with
# the published 4 / 8 iterations and is not counted.
SEVERE_OVERFLOW = int(mjw.OverflowType.ALL) & ~int(mjw.OverflowType.ITERATIONS) & ~int(mjw.OverflowType.LS_ITERATIONS)


class ContactOverflowError(RuntimeError):
    """The per-world contact or constraint budget overflowed in too many control steps."""


def warp_model(embodiment: Embodiment) -> mujoco.MjModel:
    """A copy of the embodiment's model whose muscles MuJoCo leaves to user callbacks."""
    mjm = copy.deepcopy(embodiment.mj_model)
    muscles = mjm.actuator_dyntype == mujoco.mjtDyn.mjDYN_MUSCLE
    mjm.actuator_dyntype[muscles] = mujoco.mjtDyn.mjDYN_USER
    mjm.actuator_gaintype[muscles] = mujoco.mjtGain.mjGAIN_USER
    mjm.actuator_biastype[muscles] = mujoco.mjtBias.mjBIAS_USER
    return mjm


def check_controls(
    value: object, name: str, plural: bool, expected: tuple[int, int], columns: str, owner: str, device: torch.device
) -> None:
    """Raise a clear error unless `value` (called `name`) is a float32 torch tensor of shape
    `expected` = (num_envs, `columns`) on `device`, the device of `owner`."""
    has, is_ = ("have", "are") if plural else ("has", "is")
    if not isinstance(value, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor of shape {expected}, got {type(value).__name__}")
    if value.dtype != torch.float32:
        raise TypeError(f"{name} {has} dtype {value.dtype}, expected torch.float32")
    if tuple(value.shape) != expected:
        raise ValueError(f"{name} {has} shape {tuple(value.shape)}, expected (num_envs, {columns}) = {expected}")
    if value.device != device:
        raise ValueError(f"{name} {is_} on {value.device}, {owner} on {device}")


class Simulator:
    """`num_envs` worlds of one embodiment stepping together on `device`.

    `step(excitation)` advances one control step. The torch views (`qpos`, `qvel`, `act`,
    `ctrl`, `actuator_force`, ...) alias the simulator's memory: derived quantities (poses,
    forces) come from the last forward pass, i.e. the start of the last substep, as in MuJoCo.

    Every launch and graph replay runs on torch's current stream (`torch_stream()`). The
    `launch_*` methods take Warp arrays and do no checks: they are the entry points for a caller
    recording its own graph (the environment); `step` and `reset` are their checked torch wrappers.
    """

    def __init__(
        self,
        embodiment: Embodiment | str,
        num_envs: int,
        device: str | None = None,
        *,
        muscle_model: str | MuscleModel | None = None,
        overflow_limit: int = 100,
        overflow_check_interval: int = 100,
        capture: bool = True,
    ) -> None:
        if isinstance(num_envs, bool) or not isinstance(num_envs, int) or num_envs <= 0:
            raise ValueError(f"num_envs must be a positive integer, got {num_envs!r}")
        self.embodiment = load_embodiment(embodiment) if isinstance(embodiment, str) else embodiment
        self.device = resolve_device(device)
        self.num_envs = num_envs
        physics = self.embodiment.physics
        self.substeps = physics.substeps
        self.control_dt = physics.control_dt
        self.overflow_limit = overflow_limit
        self.overflow_check_interval = overflow_check_interval
        self._steps_since_check = 0
        self._streams = TorchStreams(wp.device_to_torch(self.device))

        if muscle_model is None or isinstance(muscle_model, str):
            muscle_model = make_muscle_model(muscle_model or self.embodiment.muscle_model, physics.timestep)
        self.muscle_model = muscle_model

        with wp.ScopedDevice(self.device):
            mjm = warp_model(self.embodiment)
            mjd = mujoco.MjData(mjm)
            mjd.qpos[:] = self.embodiment.initial_qpos()
            mujoco.mj_forward(mjm, mjd)
            self.model = mjw.put_model(mjm)
            self.model.opt.warn_overflow = 0  # overflows are surfaced by `overflow_report`, not printed
            self.model.callback.act_gain = self.muscle_model.force
            try:
                self.data = mjw.put_data(mjm, mjd, nworld=num_envs, nconmax=physics.nconmax, njmax=physics.njmax)
            except ValueError as exc:
                toml = self.embodiment.directory / "embodiment.toml"
                raise ValueError(f"{toml}: [contacts] budget too small for the start pose: {exc}") from exc
            self.muscle_model.allocate(num_envs, mjm.nu, wp.get_device())
            self._overflowing_worlds = wp.zeros(1, dtype=wp.int32)
            self._overflow_steps = wp.zeros(1, dtype=wp.int32)
            self._overflow_bits = wp.zeros(num_envs, dtype=wp.int32)
            with self.torch_stream():
                self.launch_forward()
        self._capture = capture
        self._graph: wp.Graph | None = None  # recorded by the first `step`, so a caller that records its own graph pays nothing
        self._make_views()
        self._warned_overflow = False

    def _make_views(self) -> None:
        d = self.data
        view = wp.to_torch
        self.qpos, self.qvel, self.act, self.ctrl = view(d.qpos), view(d.qvel), view(d.act), view(d.ctrl)
        self.act_dot = view(d.act_dot)
        self.actuator_force = view(d.actuator_force)
        self.actuator_length = view(d.actuator_length)
        self.actuator_velocity = view(d.actuator_velocity)
        self.xpos, self.xquat = view(d.xpos), view(d.xquat)
        self.site_xpos, self.site_xmat = view(d.site_xpos), view(d.site_xmat)
        self.cvel, self.subtree_com = view(d.cvel), view(d.subtree_com)
        self.sensordata = view(d.sensordata)
        self.time = view(d.time)
        self.torch_device = self.qpos.device

    @property
    def muscle_state(self) -> dict[str, torch.Tensor]:
        """The muscle model's own state (e.g. fatigue compartments) as torch views."""
        return self.muscle_model.state()

    def torch_stream(self) -> wp.ScopedStream:
        """Make Warp launch on torch's current stream of the simulator's device (nothing on a CPU)."""
        return self._streams.scope()

    def launch_control_step(self) -> None:
        """Launch the kernels of one control step on the current device and stream, without checks.

        `step` replays them as the simulator's graph; a caller capturing a larger graph (the
        environment's single graph per control step) records them inside its own capture.
        """
        for _ in range(self.substeps):
            mjw.step(self.model, self.data)
            self.muscle_model.advance(self.model, self.data)
        wp.launch(
            sim_kernels.collect_overflow,
            dim=self.num_envs,
            inputs=[SEVERE_OVERFLOW],
            outputs=[self.data.overflow, self._overflow_bits, self._overflowing_worlds],
        )
        wp.launch(sim_kernels.count_overflow_step, dim=1, outputs=[self._overflowing_worlds, self._overflow_steps])

    def step(self, excitation: torch.Tensor | None = None) -> None:
        """Advance one control step; `excitation` (num_envs x num_muscles, float32) is held over the substeps.

        With `excitation=None` the current contents of `sim.ctrl` are used (write into it in place).
        """
        if excitation is not None:
            check_controls(excitation, "excitation", False, tuple(self.ctrl.shape), "num_muscles", "the simulator", self.torch_device)
            self.ctrl.copy_(excitation)
        with wp.ScopedDevice(self.device):
            if self._capture and self._graph is None:
                with wp.ScopedCapture() as graph_capture:  # on Warp's stream: torch's legacy default stream cannot be captured
                    self.launch_control_step()
                self._graph = graph_capture.graph
            with self.torch_stream():
                if self._graph is not None:
                    wp.capture_launch(self._graph)
                else:
                    self.launch_control_step()
        self._steps_since_check += 1
        if self.overflow_check_interval and self._steps_since_check >= self.overflow_check_interval:
            self.overflow_report()

    def reset(self, mask: torch.Tensor, qpos: torch.Tensor, qvel: torch.Tensor | None = None) -> None:
        """Reset the worlds where `mask` is true to (`qpos`, `qvel`) with zero activation and excitation.

        `qpos` is (num_envs, nq) and `qvel` (num_envs, nv) (zero when None); rows of worlds not
        selected are ignored and those worlds keep their state. Derived quantities are recomputed.
        """
        n, nq, nv = self.num_envs, self.qpos.shape[1], self.qvel.shape[1]
        if mask.shape != (n,) or mask.dtype != torch.bool or mask.device != self.torch_device:
            raise ValueError(f"mask must be a bool tensor of shape ({n},) on {self.torch_device}, got {mask.dtype} {tuple(mask.shape)} on {mask.device}")
        if qvel is None:
            qvel = torch.zeros(n, nv, device=self.torch_device)
        for name, tensor, width in (("qpos", qpos, nq), ("qvel", qvel, nv)):
            if tensor.shape != (n, width) or tensor.dtype != torch.float32 or tensor.device != self.torch_device:
                raise ValueError(f"{name} must be float32 of shape ({n}, {width}) on {self.torch_device}, got {tensor.dtype} {tuple(tensor.shape)} on {tensor.device}")
            bad = (mask & ~torch.isfinite(tensor).all(dim=1)).nonzero().flatten().tolist()  # one host read per reset
            if bad:
                raise ValueError(f"{name} has NaN or inf in the row(s) of world(s) {bad[:8]} selected by mask; nothing was reset")
        with wp.ScopedDevice(self.device), self.torch_stream():
            view = wp.from_torch
            self.launch_reset(view(mask.contiguous(), dtype=wp.bool), view(qpos.contiguous()), view(qvel.contiguous()))
            self.launch_forward()

    def launch_reset(self, mask: wp.array, qpos: wp.array, qvel: wp.array) -> None:
        """Launch the state reset of the worlds in `mask` (bool, num_envs) to `qpos` / `qvel` (2-D float), without checks.

        Only kernels and memsets, so it may be recorded inside a conditional graph body. Derived
        quantities are left as they were: follow with `launch_forward`, outside any conditional body.
        """
        mjw.reset_data(self.model, self.data, reset=mask)
        wp.launch(sim_kernels.copy_selected_rows, dim=self.data.qpos.shape, inputs=[mask, qpos], outputs=[self.data.qpos])
        wp.launch(sim_kernels.copy_selected_rows, dim=self.data.qvel.shape, inputs=[mask, qvel], outputs=[self.data.qvel])
        self.muscle_model.reset(mask)

    def launch_forward(self) -> None:
        """Launch a forward pass of every world: poses, forces, contacts and sensors of the current state.

        mujoco_warp allocates solver and collision scratch on every call, which CUDA forbids inside a
        conditional graph body (`wp.capture_if` / `wp.capture_while`): launch it only outside them.
        """
        mjw.forward(self.model, self.data)

    def overflow_report(self) -> dict[str, int]:
        """Read the overflow counters (one small device-to-host copy) and raise past the limit.

        Returns the number of control steps in which some world overflowed its contact or
        constraint budget, and the overflow kinds seen (bitmask of `mujoco_warp.OverflowType`).
        """
        self._steps_since_check = 0
        with wp.ScopedDevice(self.device), self.torch_stream():
            steps = int(self._overflow_steps.numpy()[0])
            bits = int(np.bitwise_or.reduce(self._overflow_bits.numpy()))
        kinds = ", ".join(t.name for t in mjw.OverflowType if t.value and t.value & bits and t.name != "ALL")
        if steps and not self._warned_overflow:
            log.warning("contact/constraint budget overflowed in %d control steps (%s); physics in those worlds is wrong", steps, kinds)
            self._warned_overflow = True
        if steps > self.overflow_limit:
            physics = self.embodiment.physics
            raise ContactOverflowError(
                f"{self.embodiment.name}: overflow ({kinds}) in {steps} control steps, more than overflow_limit="
                f"{self.overflow_limit}; raise [contacts] nconmax={physics.nconmax} / njmax={physics.njmax} in "
                f"{self.embodiment.directory / 'embodiment.toml'}"
            )
        return {"overflow_steps": steps, "overflow_bits": bits}
