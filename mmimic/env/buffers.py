"""Every device buffer of an `ImitationEnv`, allocated in one place: the `WorldState` its kernels read
(kernels/state.py, where each field is documented) and what a step writes besides it."""

from __future__ import annotations

import numpy as np
import warp as wp

from mmimic.env.config import EnvConfig
from mmimic.env.layout import ObsLayout
from mmimic.env.reference import ReferenceArrays
from mmimic.env.rewards import RewardTerm
from mmimic.kernels.state import WorldState
from mmimic.kernels.termination import TerminationParams
from mmimic.simulator import Simulator

SIMULATOR_FIELDS = ("qpos", "qvel", "act", "ctrl", "actuator_length", "actuator_velocity", "actuator_force",
                    "sensordata", "site_xpos", "site_xmat", "cvel", "subtree_com")


class EnvBuffers:
    """`state` (WorldState) plus the step's inputs, outputs and reset scratch, all (N, ...) on the current device."""

    def __init__(self, sim: Simulator, reference: ReferenceArrays, config: EnvConfig, layout: ObsLayout,
                 terms: list[RewardTerm], root: tuple[int, int]) -> None:
        n, e = sim.num_envs, sim.embodiment
        m, z = e.mj_model, wp.zeros
        a, sites, look = m.nu, len(e.mimic_sites), config.lookahead
        s = WorldState()
        for name in SIMULATOR_FIELDS:
            setattr(s, name, getattr(sim.data, name))
        s.lib_qpos, s.lib_qvel = reference.qpos, reference.qvel
        s.lib_site_xpos, s.lib_site_xmat, s.lib_site_vel = reference.site_xpos, reference.site_xmat, reference.site_vel
        s.clip_start, s.clip_length, s.clip_cdf = reference.clip_start, reference.clip_length, reference.clip_cdf
        rel, ref_rel = (n, sites - 1), (look, n, sites - 1)
        owned = {
            "site_pos": (n, sites), "site_rpos": rel, "site_rangles": rel, "site_rvel": rel,
            "frame": (look, n), "ref_qpos": (n, m.nq), "ref_qvel": (n, m.nv), "ref_site_pos": (n, sites),
            "ref_site_rpos": ref_rel, "ref_site_rangles": ref_rel, "ref_site_rvel": ref_rel,
            "clip": n, "clip_step": n, "episode_step": n, "root_offset": n, "action": (n, a), "last_action": (n, a),
            "nonfinite_action": n,
        }
        for name, shape in owned.items():
            setattr(s, name, z(shape, dtype=WorldState.vars[name].type.dtype))
        s.site_ids = wp.array(e.mimic_site_ids, dtype=wp.int32)
        s.body_ids = wp.array(e.mimic_body_ids, dtype=wp.int32)
        s.root_body = e.root_body_id
        s.root_qpos_adr, s.root_qvel_adr = root
        self.state = s

        self.all = wp.ones(n, dtype=wp.bool)
        self.actions = z((n, a), dtype=float)  # as given to `step`
        self.obs_source = wp.array(layout.source, dtype=wp.int32)
        self.obs_lookahead = wp.array(layout.lookahead, dtype=wp.int32)
        self.obs_index = wp.array(layout.index, dtype=wp.int32)
        self.obs = z((n, layout.size), dtype=float)
        self.nonfinite_obs = z(n, dtype=wp.bool)
        self.weights = wp.array([config.reward_weights[t.name] for t in terms], dtype=float)
        self.is_penalty = wp.array([int(t.penalty) for t in terms], dtype=wp.int32)
        self.terms = z((len(terms), n), dtype=float)
        self.reward = z(n, dtype=float)
        self.termination = TerminationParams()
        t = self.termination
        t.site_deviation, t.world_sites = config.site_deviation, int(bool(config.site_deviation_world))
        t.root_deviation, t.root_angle, t.horizon = config.root_deviation, config.root_angle, config.horizon
        self.terminated = z(n, dtype=wp.bool)
        self.truncated = z(n, dtype=wp.bool)
        self.done = z(n, dtype=wp.bool)
        self.episode_return = z(n, dtype=float)
        self.finished_return = z(n, dtype=float)
        self.finished_length = z(n, dtype=wp.int32)
        self.done_count = z(1, dtype=wp.int32)
        seeds = np.random.default_rng(config.seed).integers(0, 2**32, size=n, dtype=np.uint64)
        self.rng = wp.array(seeds.astype(np.uint32), dtype=wp.uint32)
        self.qpos_target = z((n, m.nq), dtype=float)
        self.qvel_target = z((n, m.nv), dtype=float)
