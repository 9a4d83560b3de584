"""Observation kernels: reference-frame bookkeeping, relative site features, and one gather into the obs buffer.

Relative site quantities follow the published system (MuscleMimic, arXiv 2603.25544): for mimic
sites p_i, R_i (site -> world) and site velocities [w_i, v_i] (world frame), with site 0 the main
site and i = 1..S-1:
    rpos_i = p_i - p_0,  rangles_i = rotvec(R_0^T R_i),
    rvel_i = [ (R_0^T R_i)^T w_i - w_0,  R_0 (v_0 - v_i) ].
The simulator's site velocity is w_i = cvel_ang(parent), v_i = cvel_lin(parent) - (p_i - c_root) x w_i
with c_root the subtree centre of mass of the kinematic tree's root body.

Every observation column is described by (source, lookahead index, element index) in a table
built once by `mmimic.env.layout`; `gather_observation` fills the whole (N, num_obs) buffer in
one launch and replaces non-finite values by 0, flagging the world.
"""

from __future__ import annotations

import warp as wp

from mmimic.kernels.spatial import mat_to_rotvec

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


@wp.struct
class ObsSources:
    """Every array an observation column can read. Reference features are (lookahead, world, site)."""

    qpos: wp.array2d(dtype=float)
    qvel: wp.array2d(dtype=float)
    actuator_length: wp.array2d(dtype=float)
    actuator_velocity: wp.array2d(dtype=float)
    actuator_force: wp.array2d(dtype=float)
    ctrl: wp.array2d(dtype=float)
    act: wp.array2d(dtype=float)
    sensordata: wp.array2d(dtype=float)
    site_rpos: wp.array2d(dtype=wp.vec3)
    site_rangles: wp.array2d(dtype=wp.vec3)
    site_rvel: wp.array2d(dtype=wp.spatial_vector)
    ref_rpos: wp.array3d(dtype=wp.vec3)
    ref_rangles: wp.array3d(dtype=wp.vec3)
    ref_rvel: wp.array3d(dtype=wp.spatial_vector)
    frames: wp.array2d(dtype=wp.int32)
    root_offset: wp.array(dtype=wp.vec2)
    lib_qpos: wp.array2d(dtype=float)
    lib_qvel: wp.array2d(dtype=float)
    clip: wp.array(dtype=wp.int32)
    clip_step: wp.array(dtype=wp.int32)
    clip_length: wp.array(dtype=wp.int32)
    root_qpos_adr: int


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
def reference_frames(
    mask: wp.array(dtype=wp.bool),
    advance: int,
    stride: int,
    clip: wp.array(dtype=wp.int32),
    clip_start: wp.array(dtype=wp.int32),
    clip_length: wp.array(dtype=wp.int32),
    root_offset: wp.array(dtype=wp.vec2),
    root_qpos_adr: int,
    lib_qpos: wp.array2d(dtype=float),
    lib_qvel: wp.array2d(dtype=float),
    clip_step: wp.array(dtype=wp.int32),
    episode_step: wp.array(dtype=wp.int32),
    frames: wp.array2d(dtype=wp.int32),
    ref_qpos: wp.array2d(dtype=float),
    ref_qvel: wp.array2d(dtype=float),
):
    """Advance the reference pointer (clamped at the clip's last frame) when `advance` is 1, then
    write the look-ahead frame rows and the current reference state with the root x-y re-centred."""
    world = wp.tid()
    if not mask[world]:
        return
    c = clip[world]
    last = clip_length[c] - 1
    step = clip_step[world]
    if advance != 0:
        step = wp.min(step + 1, last)
        clip_step[world] = step
        episode_step[world] = episode_step[world] + 1
    for k in range(frames.shape[0]):
        frames[k, world] = clip_start[c] + wp.min(step + k * stride, last)
    frame = frames[0, world]
    for i in range(ref_qpos.shape[1]):
        ref_qpos[world, i] = lib_qpos[frame, i]
    if root_qpos_adr >= 0:
        offset = root_offset[world]
        ref_qpos[world, root_qpos_adr] = lib_qpos[frame, root_qpos_adr] - offset[0]
        ref_qpos[world, root_qpos_adr + 1] = lib_qpos[frame, root_qpos_adr + 1] - offset[1]
    for i in range(ref_qvel.shape[1]):
        ref_qvel[world, i] = lib_qvel[frame, i]


@wp.kernel
def sim_site_features(
    mask: wp.array(dtype=wp.bool),
    site_ids: wp.array(dtype=wp.int32),
    body_ids: wp.array(dtype=wp.int32),
    root_body: int,
    site_xpos: wp.array2d(dtype=wp.vec3),
    site_xmat: wp.array2d(dtype=wp.mat33),
    cvel: wp.array2d(dtype=wp.spatial_vector),
    subtree_com: wp.array2d(dtype=wp.vec3),
    site_pos: wp.array2d(dtype=wp.vec3),
    site_rpos: wp.array2d(dtype=wp.vec3),
    site_rangles: wp.array2d(dtype=wp.vec3),
    site_rvel: wp.array2d(dtype=wp.spatial_vector),
):
    """Mimic-site world positions and relative features of the simulator, one thread per (world, site)."""
    world, s = wp.tid()
    if not mask[world]:
        return
    com = subtree_com[world, root_body]
    p = site_xpos[world, site_ids[s]]
    site_pos[world, s] = p
    if s == 0:
        return
    p0 = site_xpos[world, site_ids[0]]
    vel0 = sim_site_velocity(p0, cvel[world, body_ids[0]], com)
    vel = sim_site_velocity(p, cvel[world, body_ids[s]], com)
    rpos, rangles, rvel = relative_site(
        p0, site_xmat[world, site_ids[0]], vel0, p, site_xmat[world, site_ids[s]], vel
    )
    site_rpos[world, s - 1] = rpos
    site_rangles[world, s - 1] = rangles
    site_rvel[world, s - 1] = rvel


@wp.kernel
def ref_site_features(
    mask: wp.array(dtype=wp.bool),
    frames: wp.array2d(dtype=wp.int32),
    root_offset: wp.array(dtype=wp.vec2),
    lib_site_xpos: wp.array2d(dtype=wp.vec3),
    lib_site_xmat: wp.array2d(dtype=wp.mat33),
    lib_site_vel: wp.array2d(dtype=wp.spatial_vector),
    ref_site_pos: wp.array2d(dtype=wp.vec3),
    ref_rpos: wp.array3d(dtype=wp.vec3),
    ref_rangles: wp.array3d(dtype=wp.vec3),
    ref_rvel: wp.array3d(dtype=wp.spatial_vector),
):
    """Reference mimic-site features at every look-ahead frame, one thread per (lookahead, world, site).

    `ref_site_pos` (current frame only) has the root x-y offset of the episode's start frame removed.
    """
    k, world, s = wp.tid()
    if not mask[world]:
        return
    f = frames[k, world]
    p = lib_site_xpos[f, s]
    if k == 0:
        offset = root_offset[world]
        ref_site_pos[world, s] = p - wp.vec3(offset[0], offset[1], 0.0)
    if s == 0:
        return
    rpos, rangles, rvel = relative_site(
        lib_site_xpos[f, 0], lib_site_xmat[f, 0], lib_site_vel[f, 0], p, lib_site_xmat[f, s], lib_site_vel[f, s]
    )
    ref_rpos[k, world, s - 1] = rpos
    ref_rangles[k, world, s - 1] = rangles
    ref_rvel[k, world, s - 1] = rvel


@wp.func
def observation_value(src: ObsSources, source: int, k: int, i: int, world: int) -> float:
    """The value of one observation column for one world."""
    if source == QPOS:
        return src.qpos[world, i]
    if source == QVEL:
        return src.qvel[world, i]
    if source == ACTUATOR_LENGTH:
        return src.actuator_length[world, i]
    if source == ACTUATOR_VELOCITY:
        return src.actuator_velocity[world, i]
    if source == ACTUATOR_FORCE:
        return src.actuator_force[world, i]
    if source == CTRL:
        return src.ctrl[world, i]
    if source == ACT:
        return src.act[world, i]
    if source == SENSOR:
        return src.sensordata[world, i]
    if source == SITE_RPOS:
        return src.site_rpos[world, i // 3][i % 3]
    if source == SITE_RANGLES:
        return src.site_rangles[world, i // 3][i % 3]
    if source == SITE_RVEL:
        return src.site_rvel[world, i // 6][i % 6]
    if source == REF_RPOS:
        return src.ref_rpos[k, world, i // 3][i % 3]
    if source == REF_RANGLES:
        return src.ref_rangles[k, world, i // 3][i % 3]
    if source == REF_RVEL:
        return src.ref_rvel[k, world, i // 6][i % 6]
    if source == REF_QPOS:
        value = src.lib_qpos[src.frames[k, world], i]
        root = src.root_qpos_adr
        if root >= 0 and (i == root or i == root + 1):
            value = value - src.root_offset[world][i - root]
        return value
    if source == REF_QVEL:
        return src.lib_qvel[src.frames[k, world], i]
    if source == REF_QPOS_DELTA:
        return src.lib_qpos[src.frames[k, world], i] - src.lib_qpos[src.frames[0, world], i]
    if source == REF_QVEL_DELTA:
        return src.lib_qvel[src.frames[k, world], i] - src.lib_qvel[src.frames[0, world], i]
    # PHASE
    return float(src.clip_step[world]) / float(wp.max(src.clip_length[src.clip[world]], 1))


@wp.kernel
def gather_observation(
    mask: wp.array(dtype=wp.bool),
    source: wp.array(dtype=wp.int32),
    lookahead: wp.array(dtype=wp.int32),
    index: wp.array(dtype=wp.int32),
    src: ObsSources,
    obs: wp.array2d(dtype=float),
    nonfinite_obs: wp.array(dtype=wp.bool),
):
    """Fill obs[world, column] from the column table; a non-finite value becomes 0 and flags the world
    (the flags are cleared by the caller)."""
    world, column = wp.tid()
    if not mask[world]:
        return
    value = observation_value(src, source[column], lookahead[column], index[column], world)
    if not wp.isfinite(value):
        value = 0.0
        nonfinite_obs[world] = True
    obs[world, column] = value
