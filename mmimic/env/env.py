"""The batched motion-imitation environment of MuscleMimic (arXiv 2603.25544) on the simulator's device.

One control step is one captured Warp graph, replayed without host synchronisation:
  1. intake: flag worlds with a non-finite action, zero their actions, ctrl = clip(action, -1, 1);
  2. physics: `substeps` physics steps with ctrl held (the simulator's kernels);
  3. evaluate: recompute derived quantities (`EnvConfig.derived`), advance the reference pointer
     (clamped at the clip's last frame), build observations, termination, every reward term and
     the total on the post-step state and post-step reference frame, bookkeeping, then, only if
     some world finished (a conditional graph node), the reference-state reset of the finished
     worlds; then a forward pass of every world and the new observations of the finished ones
     (autoreset).

CUDA forbids memory allocation inside a conditional graph body, and mujoco_warp's forward pass
allocates solver and collision scratch on every call, so the reset's forward pass runs after the
conditional node, in every step. mujoco_warp's forward takes no world mask: it always covered
every world, so with thousands of worlds, where some world finishes in nearly every step, this
costs nothing; on a CPU with few worlds it adds about one substep to the steps without a reset.
It leaves the state and the next step's physics unchanged (forward does not touch the warm start);
observations and rewards are computed before it, as `derived` says, and after `step` the
simulator's views (`env.sim.actuator_force`, ...) hold the forward pass of the new state.

`EnvConfig.derived`: after `mj_step` MuJoCo's derived quantities (site poses, body velocities,
muscle lengths and forces, sensors) belong to the start of the last substep. The default
"kinematics" recomputes poses, the centre of mass and body velocities (mjw.kinematics, com_pos,
com_vel) so that site features, rewards and termination see exactly the new qpos/qvel, and
leaves muscle lengths, velocities, forces and touch sensors one substep (2 ms) behind, as
MuJoCo and the published system report them (the published system also leaves the site
features behind). "forward" runs a full forward pass instead: every observation at the new
state, for about one more substep of cost. A reset world always gets a full forward pass.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import mujoco
import mujoco_warp as mjw
import numpy as np
import torch
import warp as wp

from mmimic.embodiment import Embodiment
from mmimic.env.buffers import EnvBuffers
from mmimic.env.config import EnvConfig
from mmimic.env.layout import build_layout
from mmimic.env.reference import MotionSource, reference_arrays
from mmimic.env.rewards import registered
from mmimic.kernels import actions as action_kernels
from mmimic.kernels import observation as obs_kernels
from mmimic.kernels import reset as reset_kernels
from mmimic.kernels import reward as reward_kernels
from mmimic.kernels import termination as term_kernels
from mmimic.motion import MotionLibrary
from mmimic.simulator import Simulator, check_controls


class ImitationEnv:
    """`num_envs` worlds of `embodiment` imitating `motions`; all tensors live on the device.

    `motions` is a `MotionLibrary` (any `MotionSource`) or motion directories / `.npz` clips, read
    into a library of their training clips on the environment's device.

    `reset()` and `step(actions)` return views of the environment's own buffers: they stay
    valid and are overwritten by the next call (clone what you keep). `info` holds:
    `terminated` (absorbing: deviation from the reference, non-finite action or observation),
    `truncated` (time limit or end of motion, and not terminated), `nan_actions` (a non-finite
    action was given; it was replaced by zeros and the world terminated), `nan_obs` (a
    non-finite observation was replaced by 0; the world terminated), `reward_terms` (name ->
    (N,) **unweighted** value of each active term; `reward_weights` has the weights),
    `episode_return` / `episode_length` (of the episodes that ended this step, valid where done).

    Also exposed: `obs_layout` (block name, size), `num_obs`, `num_actions`, the resolved
    `config`, `reward_weights` (active terms), `captured` (phases replayed as graphs), the
    simulator `sim`, and per-world views `clip`, `clip_step` (frame within the clip), `frame`
    (motion-library row of the current reference frame), `root_offset` (the start frame's root
    x-y subtracted from the reference), and the current reference with that offset removed,
    `ref_qpos` (N, nq) and `ref_site_pos` (N, S, 3) (mimic sites, world frame). Physics
    overflows are counted, not checked, during steps: call `env.sim.overflow_report()` once per iteration (it reads two counters from the device).
    """

    def __init__(
        self,
        embodiment: Embodiment | str,
        motions: MotionSource | str | Path | Sequence[str | Path],
        num_envs: int,
        device: str | None = None,
        config: EnvConfig | None = None,
    ) -> None:
        self.sim = Simulator(embodiment, num_envs, device, overflow_check_interval=0)
        self.embodiment = self.sim.embodiment
        self.num_envs = num_envs
        self.device = self.sim.device
        self.torch_device = self.sim.torch_device
        self.config = (config or EnvConfig()).resolve(self.embodiment)
        m = self.embodiment.mj_model
        if len(self.embodiment.mimic_sites) < 2:
            raise ValueError(f"embodiment {self.embodiment.name!r}: imitation needs at least 2 mimic sites")
        self.root_qpos_adr, self.root_qvel_adr = _root_addresses(m)
        if isinstance(motions, (str, Path, list, tuple)):  # motion directories or .npz files
            sources = [motions] if isinstance(motions, (str, Path)) else list(motions)
            motions = MotionLibrary(self.embodiment, sources, self.torch_device, split="train")
        self.reference = reference_arrays(motions, self.embodiment, self.sim.control_dt, self.torch_device)
        layout = build_layout(self.embodiment, self.config, self.root_qpos_adr, self.root_qvel_adr)
        self.obs_layout: list[tuple[str, int]] = list(layout.blocks)
        self.num_obs = layout.size
        self.num_actions = int(m.nu)
        terms = registered()
        self.terms = [terms[name] for name, w in self.config.reward_weights.items() if w != 0.0]
        self.reward_weights = {t.name: self.config.reward_weights[t.name] for t in self.terms}
        with wp.ScopedDevice(self.device):
            # Resets run inside a conditional graph node when some world finished (always when eager).
            self._conditional = self.config.capture and (wp.get_device().is_cpu or wp.is_conditional_graph_supported())
            root = (self.root_qpos_adr, self.root_qvel_adr)
            self._buf = EnvBuffers(self.sim, self.reference, self.config, layout, self.terms, root)
            with self.sim.torch_stream():
                # One eager pass loads every kernel module (no module loads inside a GPU capture), then
                # the first episodes start.
                self._control_step()
                self._reset_worlds(self._buf.all)
            self._graphs = self._capture() if self.config.capture else None
        self._make_views()

    # ----------------------------------------------------------------------------------- public

    def reset(self) -> torch.Tensor:
        """Start a new episode in every world; returns the observation buffer (N, num_obs)."""
        with wp.ScopedDevice(self.device), self.sim.torch_stream():
            self._run("reset", lambda: self._reset_worlds(self._buf.all))
        return self.obs

    def start_at(self, clip_ids: torch.Tensor, start_steps: torch.Tensor | None = None) -> torch.Tensor:
        """Start a new episode in every world at frame `start_steps` (default 0) of clip `clip_ids`.

        As a reference-state reset (root x-y re-centred, zero activation) but with the clip and
        frame chosen, e.g. to evaluate every clip from its first frame. Returns the observation buffer.
        """
        n = self.num_envs
        ids = torch.as_tensor(clip_ids, device=self.torch_device, dtype=torch.int64)
        steps = torch.zeros(n, dtype=torch.int64, device=self.torch_device) if start_steps is None else \
            torch.as_tensor(start_steps, device=self.torch_device, dtype=torch.int64)
        lengths = wp.to_torch(self.reference.clip_length).to(torch.int64)
        if ids.shape != (n,) or steps.shape != (n,):
            raise ValueError(f"clip_ids and start_steps must have shape ({n},), got {tuple(ids.shape)} and {tuple(steps.shape)}")
        if bool(((ids < 0) | (ids >= lengths.numel())).any()) or bool(((steps < 0) | (steps >= lengths[ids.clamp(0, lengths.numel() - 1)])).any()):
            raise ValueError("clip_ids must name clips of the motion library and start_steps frames within them")
        self.reset()  # a plain reset first: each world's random stream advances as at any reset
        b, clips, starts = self._buf, ids.to(torch.int32), steps.to(torch.int32)
        with wp.ScopedDevice(self.device), self.sim.torch_stream():
            wp.launch(reset_kernels.start_episodes, dim=n, inputs=[wp.from_torch(clips), wp.from_torch(starts),
                      b.state], outputs=[b.episode_return, b.qpos_target, b.qvel_target])
            self.sim.launch_reset(b.all, b.qpos_target, b.qvel_target)
            self._first_observation(b.all)
        return self.obs

    def step(self, actions: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, dict]:
        """Apply `actions` (N x num_actions, float32, on the device) for one control step.

        Returns (obs, reward, done, info); finished worlds are already reset and `obs` holds
        their first observation of the new episode.
        """
        check_controls(actions, "actions", True, (self.num_envs, self.num_actions), "num_actions", "the environment", self.torch_device)
        with wp.ScopedDevice(self.device), self.sim.torch_stream():
            self._actions.copy_(actions)
            self._run("step", self._control_step)
        return self.obs, self.reward, self.done, self.info

    def set_clip_weights(self, weights: torch.Tensor) -> None:
        """From now on resets draw clip c with probability weights[c] / weights.sum(); `weights` (C,) on
        the device, non-negative with a positive sum (not checked: that would sync), 0 never drawn.

        The clip CDF that the captured reset reads is rewritten in place by torch operations on
        torch's current stream, so a training loop can reweight every iteration without a host sync.
        """
        cdf = wp.to_torch(self.reference.clip_cdf)
        if weights.shape != cdf.shape or weights.device != cdf.device:
            raise ValueError(f"clip weights must have shape {tuple(cdf.shape)} on {cdf.device}, got "
                             f"{tuple(weights.shape)} on {weights.device}")
        total = torch.cumsum(weights.double(), 0)
        cdf.copy_(total / total[-1])  # exactly 1 from the last clip of positive weight on

    @property
    def captured(self) -> list[str]:
        """Names of the phases replayed as captured Warp graphs (empty when capture is off)."""
        return sorted(self._graphs or {})

    # ---------------------------------------------------------------------------------- views

    def _make_views(self) -> None:
        t, b, s = wp.to_torch, self._buf, self._buf.state
        self._actions = t(b.actions)
        self.obs, self.reward, self.done = t(b.obs), t(b.reward), t(b.done)
        self.clip, self.clip_step, self.frame, self.root_offset = t(s.clip), t(s.clip_step), t(s.frame)[0], t(s.root_offset)
        self.ref_qpos, self.ref_site_pos = t(s.ref_qpos), t(s.ref_site_pos)
        terms = t(b.terms)
        self.info = {
            "terminated": t(b.terminated),
            "truncated": t(b.truncated),
            "nan_actions": t(s.nonfinite_action),
            "nan_obs": t(b.nonfinite_obs),
            "reward_terms": {term.name: terms[i] for i, term in enumerate(self.terms)},
            "episode_return": t(b.finished_return),
            "episode_length": t(b.finished_length),
        }

    # ----------------------------------------------------------------------------- the phases

    def _control_step(self) -> None:
        self._intake()
        self.sim.launch_control_step()
        self._evaluate()

    def _intake(self) -> None:
        n, a, b = self.num_envs, self.num_actions, self._buf
        s = b.state
        wp.launch(action_kernels.flag_nonfinite_actions, dim=n, inputs=[b.actions], outputs=[s.nonfinite_action])
        wp.launch(action_kernels.write_controls, dim=(n, a), inputs=[b.actions, s.nonfinite_action],
                  outputs=[s.action, s.ctrl])

    def _evaluate(self) -> None:
        n, b = self.num_envs, self._buf
        s = b.state
        self._refresh_derived()
        b.nonfinite_obs.zero_()
        self._observe(self._buf.all, advance=1)
        wp.launch(term_kernels.terminate, dim=n, inputs=[b.termination, s, b.nonfinite_obs],
                  outputs=[b.terminated, b.truncated])
        for i, term in enumerate(self.terms):
            wp.launch(term.kernel, dim=n, inputs=[s, term.params, b.terms[i]])
        wp.launch(reward_kernels.combine_rewards, dim=n, inputs=[b.weights, b.is_penalty, self.config.penalty_floor],
                  outputs=[b.terms, b.reward])
        b.done_count.zero_()
        wp.launch(reset_kernels.finish_step, dim=n, inputs=[b.reward, b.terminated, b.truncated, s],
                  outputs=[b.done, b.episode_return, b.finished_return, b.finished_length, b.done_count])
        if self._conditional:
            wp.capture_if(b.done_count, on_true=lambda: self._restart(b.done))
        else:
            self._restart(b.done)
        self._first_observation(b.done)

    def _refresh_derived(self) -> None:
        m, d = self.sim.model, self.sim.data
        if self.config.derived == "forward":
            mjw.forward(m, d)
        else:
            mjw.kinematics(m, d)
            mjw.com_pos(m, d)
            mjw.com_vel(m, d)

    def _observe(self, mask: wp.array, advance: int) -> None:
        """Reference frames, site features and the observation of the worlds in `mask`."""
        n, b = self.num_envs, self._buf
        s, sites = b.state, len(self.embodiment.mimic_sites)
        wp.launch(obs_kernels.advance_reference, dim=n, inputs=[self.config.stride, mask, advance, s])
        wp.launch(obs_kernels.sim_site_features, dim=(n, sites), inputs=[mask, s])
        wp.launch(obs_kernels.ref_site_features, dim=(self.config.lookahead, n, sites), inputs=[mask, s])
        wp.launch(obs_kernels.gather_observation, dim=(n, self.num_obs),
                  inputs=[b.obs_source, b.obs_lookahead, b.obs_index, mask, s], outputs=[b.obs, b.nonfinite_obs])

    def _reset_worlds(self, mask: wp.array) -> None:
        """Reference-state initialisation of the worlds in `mask` and their first observation."""
        self._restart(mask)
        self._first_observation(mask)

    def _restart(self, mask: wp.array) -> None:
        """Draw a start frame for the worlds in `mask` and set their state to it.

        Kernels only: legal in a conditional graph body."""
        b = self._buf
        wp.launch(reset_kernels.draw_episodes, dim=self.num_envs, inputs=[mask, b.state],
                  outputs=[b.rng, b.episode_return, b.qpos_target, b.qvel_target])
        self.sim.launch_reset(mask, b.qpos_target, b.qvel_target)

    def _first_observation(self, mask: wp.array) -> None:
        """A forward pass of every world (never inside a conditional body: it allocates), then the observation of `mask`."""
        self.sim.launch_forward()
        self._observe(mask, advance=0)

    # ------------------------------------------------------------------------ capture, launch

    def _capture(self) -> dict:
        graphs = {}
        for name, phase in (("step", self._control_step), ("reset", lambda: self._reset_worlds(self._buf.all))):
            with wp.ScopedCapture() as capture:
                phase()
            graphs[name] = capture.graph
        return graphs

    def _run(self, name: str, phase) -> None:
        if self._graphs is None:
            phase()
        else:
            wp.capture_launch(self._graphs[name])


def _root_addresses(m: mujoco.MjModel) -> tuple[int, int]:
    """qpos and qvel addresses of the free root joint, or (-1, -1) for a fixed base."""
    free = np.flatnonzero(m.jnt_type == mujoco.mjtJoint.mjJNT_FREE)
    if free.size == 0:
        return -1, -1
    if free.size > 1:
        raise ValueError(f"imitation supports at most one free joint (the root), the model has {free.size}")
    return int(m.jnt_qposadr[free[0]]), int(m.jnt_dofadr[free[0]])


