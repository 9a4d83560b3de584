"""Observation kernels: the reference pointer, relative site features, and one gather into the obs buffer.

Relative site quantities follow the published system (MuscleMimic, arXiv 2603.25544): for mimic
sites p_i, R_i (site -> world) and site velocities [w_i, v_i] (world frame), with site 0 the main
site and i = 1..S-1:
    rpos_i = p_i - p_0,  rangles_i = rotvec(R_0^T R_i),
    rvel_i = [ (R_0^T R_i)^T w_i - w_0,  R_0 (v_0 - v_i) ].
The simulator's site velocity is w_i = cvel_ang(parent), v_i = cvel_lin(parent) - (p_i - c_root) x w_i
with c_root the subtree centre of mass of the kinematic tree's root body.

Every observation column is described by (source, lookahead index, element index) in a table
built once by `mmimic.env.layout`; `gather_observation` fills the whole (N, num_obs) buffer in
one launch and replaces non-finite values by 0, flagging the world. Every kernel reads the
`WorldState` (kernels/state.py) and, but for the gather, updates it for the worlds in `mask`.
"""

from __future__ import annotations

import warp as wp

from mmimic.kernels.spatial import mat_to_rotvec
from mmimic.kernels.state import WorldState, recentre, reference_qpos

# Observation column sources (the `source` table of `mmimic.env.layout.ObsLayout`).
QPOS = wp.constant(0)
QVEL = wp.constant(1)
ACTUATOR_LENGTH = wp.constant(2)
ACTUATOR_VELOCITY = wp.constant(3)
ACTUATOR_FORCE = wp.constant(4)
CTRL = wp.constant(5)
ACT = wp.constant(6)
SENSOR = wp.constant(7)
SITE_RPOS = wp.constant(8)
SITE_RANGLES = wp.constant(9)
SITE_RVEL = wp.constant(10)
REF_RPOS = wp.constant(11)
REF_RANGLES = wp.constant(12)
REF_RVEL = wp.constant(13)
REF_QPOS = wp.constant(14)
REF_QVEL = wp.constant(15)
REF_QPOS_DELTA = wp.constant(16)
REF_QVEL_DELTA = wp.constant(17)
PHASE = wp.constant(18)


@wp.func
def relative_site(
    p0: wp.vec3, r0: wp.mat33, vel0: wp.spatial_vector, p: wp.vec3, r: wp.mat33, vel: wp.spatial_vector
):
    """(rpos, rangles, rvel) of a site relative to the main site, in the published frames."""
    rrel = wp.transpose(r0) * r
    angular = wp.transpose(rrel) * wp.spatial_top(vel) - wp.spatial_top(vel0)
    linear = r0 * (wp.spatial_bottom(vel0) - wp.spatial_bottom(vel))
    return p - p0, mat_to_rotvec(rrel), wp.spatial_vector(angular, linear)


@wp.func
def sim_site_velocity(p: wp.vec3, cvel: wp.spatial_vector, root_com: wp.vec3) -> wp.spatial_vector:
    """World [angular, linear] velocity of a point `p` on a body with com-based velocity `cvel`."""
    w = wp.spatial_top(cvel)
    return wp.spatial_vector(w, wp.spatial_bottom(cvel) - wp.cross(p - root_com, w))


@wp.kernel
def advance_reference(
    # Model:
    stride: int,
    # Data in:
    mask: wp.array(dtype=wp.bool),
    advance: int,
    state: WorldState,
    # Data out (through state): clip_step, episode_step, frame, ref_qpos, ref_qvel
):
    """Advance the reference pointer (clamped at the clip's last frame) when `advance` is 1, then
    write the look-ahead frame rows and the current reference state with the root x-y re-centred."""
    world = wp.tid()
    if not mask[world]:
        return
    c = state.clip[world]
    last = state.clip_length[c] - 1
    step = state.clip_step[world]
    if advance != 0:
        step = wp.min(step + 1, last)
        state.clip_step[world] = step
        state.episode_step[world] = state.episode_step[world] + 1
    for k in range(state.frame.shape[0]):
        state.frame[k, world] = state.clip_start[c] + wp.min(step + k * stride, last)
    frame = state.frame[0, world]
    for i in range(state.ref_qpos.shape[1]):
        state.ref_qpos[world, i] = reference_qpos(state, frame, world, i)
    for i in range(state.ref_qvel.shape[1]):
        state.ref_qvel[world, i] = state.lib_qvel[frame, i]


@wp.kernel
def sim_site_features(
    # Data in:
    mask: wp.array(dtype=wp.bool),
    state: WorldState,
    # Data out (through state): site_pos, site_rpos, site_rangles, site_rvel
):
    """Mimic-site world positions and relative features of the simulator, one thread per (world, site)."""
    world, s = wp.tid()
    if not mask[world]:
        return
    ids, cvel, site_xpos, site_xmat = state.site_ids, state.cvel, state.site_xpos, state.site_xmat
    com = state.subtree_com[world, state.root_body]
    p = site_xpos[world, ids[s]]
    state.site_pos[world, s] = p
    if s == 0:
        return
    p0 = site_xpos[world, ids[0]]
    vel0 = sim_site_velocity(p0, cvel[world, state.body_ids[0]], com)
    vel = sim_site_velocity(p, cvel[world, state.body_ids[s]], com)
    rpos, rangles, rvel = relative_site(p0, site_xmat[world, ids[0]], vel0, p, site_xmat[world, ids[s]], vel)
    state.site_rpos[world, s - 1] = rpos
    state.site_rangles[world, s - 1] = rangles
    state.site_rvel[world, s - 1] = rvel


@wp.kernel
def ref_site_features(
    # Data in:
    mask: wp.array(dtype=wp.bool),
    state: WorldState,
    # Data out (through state): ref_site_pos, ref_site_rpos, ref_site_rangles, ref_site_rvel
):
    """Reference mimic-site features at every look-ahead frame, one thread per (lookahead, world, site);
    `ref_site_pos` at the current frame only."""
    k, world, s = wp.tid()
    if not mask[world]:
        return
    f = state.frame[k, world]
    xpos, xmat, vel = state.lib_site_xpos, state.lib_site_xmat, state.lib_site_vel
    p = xpos[f, s]
    if k == 0:
        state.ref_site_pos[world, s] = recentre(state, world, p)
    if s == 0:
        return
    rpos, rangles, rvel = relative_site(xpos[f, 0], xmat[f, 0], vel[f, 0], p, xmat[f, s], vel[f, s])
    state.ref_site_rpos[k, world, s - 1] = rpos
    state.ref_site_rangles[k, world, s - 1] = rangles
    state.ref_site_rvel[k, world, s - 1] = rvel


@wp.func
def observation_value(state: WorldState, source: int, k: int, i: int, world: int) -> float:
    """The value of one observation column for one world."""
    if source == QPOS:
        return state.qpos[world, i]
    if source == QVEL:
        return state.qvel[world, i]
    if source == ACTUATOR_LENGTH:
        return state.actuator_length[world, i]
    if source == ACTUATOR_VELOCITY:
        return state.actuator_velocity[world, i]
    if source == ACTUATOR_FORCE:
        return state.actuator_force[world, i]
    if source == CTRL:
        return state.ctrl[world, i]
    if source == ACT:
        return state.act[world, i]
    if source == SENSOR:
        return state.sensordata[world, i]
    if source == SITE_RPOS:
        return state.site_rpos[world, i // 3][i % 3]
    if source == SITE_RANGLES:
        return state.site_rangles[world, i // 3][i % 3]
    if source == SITE_RVEL:
        return state.site_rvel[world, i // 6][i % 6]
    if source == REF_RPOS:
        return state.ref_site_rpos[k, world, i // 3][i % 3]
    if source == REF_RANGLES:
        return state.ref_site_rangles[k, world, i // 3][i % 3]
    if source == REF_RVEL:
        return state.ref_site_rvel[k, world, i // 6][i % 6]
    if source == REF_QPOS:
        return reference_qpos(state, state.frame[k, world], world, i)
    if source == REF_QVEL:
        return state.lib_qvel[state.frame[k, world], i]
    if source == REF_QPOS_DELTA:
        return state.lib_qpos[state.frame[k, world], i] - state.lib_qpos[state.frame[0, world], i]
    if source == REF_QVEL_DELTA:
        return state.lib_qvel[state.frame[k, world], i] - state.lib_qvel[state.frame[0, world], i]
    # PHASE
    return float(state.clip_step[world]) / float(wp.max(state.clip_length[state.clip[world]], 1))


@wp.kernel
def gather_observation(
    # Model (the layout's column table):
    source: wp.array(dtype=wp.int32),
    lookahead: wp.array(dtype=wp.int32),
    index: wp.array(dtype=wp.int32),
    # Data in:
    mask: wp.array(dtype=wp.bool),
    state: WorldState,
    # Data out:
    obs: wp.array2d(dtype=float),
    nonfinite_obs: wp.array(dtype=wp.bool),
):
    """Fill obs[world, column] from the column table; a non-finite value becomes 0 and flags the world
    (the flags are cleared by the caller)."""
    world, column = wp.tid()
    if not mask[world]:
        return
    value = observation_value(state, source[column], lookahead[column], index[column], world)
    if not wp.isfinite(value):
        value = 0.0
        nonfinite_obs[world] = True
    obs[world, column] = value
