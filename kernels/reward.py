"""Reward terms as Warp kernels, and the struct they read.

Every term is a kernel with the same signature,

    @wp.kernel
    def term(state: RewardState, params: <float or a wp.struct of the term's own>, out: wp.array(dtype=float))

launched with one thread per world (`world = wp.tid()`), writing one float to `out[world]`. The
built-in DeepMimic terms below are written exactly like a user's own (docs/rewards.md) and are
registered by `mmimic.env.rewards`. Imitation terms return exp(-scale * error) with the error of
the published system (MuscleMimic, arXiv 2603.25544); penalties return a value <= 0.
"""

from __future__ import annotations

import warp as wp

from mmimic.kernels.spatial import qpos_quat, quat_angle, quat_to_mat


@wp.struct
class RewardState:
    """What a reward term may read: the post-step simulator state and the post-step reference frame.

    Arrays are indexed [world, ...]. S mimic sites in the embodiment's order, site 0 the main
    site; the relative features cover sites 1..S-1 (kernels/observation.py).
    """

    qpos: wp.array2d(dtype=float)  # (N, nq) simulator joint positions
    qvel: wp.array2d(dtype=float)  # (N, nv) simulator joint velocities (free root: linear world, angular local)
    act: wp.array2d(dtype=float)  # (N, nu) muscle activations
    ctrl: wp.array2d(dtype=float)  # (N, nu) excitations as applied, the action clipped to [-1, 1]
    actuator_force: wp.array2d(dtype=float)  # (N, nu) muscle forces (N, negative pulls) of the last forward pass
    sensordata: wp.array2d(dtype=float)  # (N, nsensordata) of the last forward pass
    site_pos: wp.array2d(dtype=wp.vec3)  # (N, S) mimic-site world positions
    site_rpos: wp.array2d(dtype=wp.vec3)  # (N, S-1) positions relative to the main site (world frame)
    site_rangles: wp.array2d(dtype=wp.vec3)  # (N, S-1) rotation vectors of R_0^T R_i
    site_rvel: wp.array2d(dtype=wp.spatial_vector)  # (N, S-1) relative [angular, linear] velocities
    ref_qpos: wp.array2d(dtype=float)  # (N, nq) reference, root x-y re-centred on the episode's start frame
    ref_qvel: wp.array2d(dtype=float)  # (N, nv) reference
    ref_site_pos: wp.array2d(dtype=wp.vec3)  # (N, S) reference, root x-y re-centred
    ref_site_rpos: wp.array2d(dtype=wp.vec3)  # (N, S-1)
    ref_site_rangles: wp.array2d(dtype=wp.vec3)  # (N, S-1)
    ref_site_rvel: wp.array2d(dtype=wp.spatial_vector)  # (N, S-1)
    action: wp.array2d(dtype=float)  # (N, A) the policy's action as given (non-finite actions zeroed)
    last_action: wp.array2d(dtype=float)  # (N, A) the previous step's action, zero after a reset
    frame: wp.array2d(dtype=wp.int32)  # (L, N) motion-library rows: [0] current frame, [k] look-ahead k
    episode_step: wp.array(dtype=wp.int32)  # (N,) control steps taken in the episode, 1 on the first
    root_qpos_adr: int  # qpos address of the free root joint (x y z qw qx qy qz); -1 for a fixed base
    root_qvel_adr: int  # qvel address of the free root joint (vx vy vz world, wx wy wz local); -1 if none


@wp.func
def mean_squared_vec3(a: wp.array2d(dtype=wp.vec3), b: wp.array2d(dtype=wp.vec3), world: int) -> float:
    total = float(0.0)
    for i in range(a.shape[1]):
        d = a[world, i] - b[world, i]
        total += wp.dot(d, d)
    return total / float(wp.max(3 * a.shape[1], 1))


@wp.func
def mean_squared_rvel(
    a: wp.array2d(dtype=wp.spatial_vector), b: wp.array2d(dtype=wp.spatial_vector), world: int, linear: int
) -> float:
    total = float(0.0)
    for i in range(a.shape[1]):
        d = a[world, i] - b[world, i]
        part = wp.spatial_top(d)
        if linear != 0:
            part = wp.spatial_bottom(d)
        total += wp.dot(part, part)
    return total / float(wp.max(3 * a.shape[1], 1))


@wp.func
def root_local_velocity(qpos: wp.array2d(dtype=float), qvel: wp.array2d(dtype=float), world: int, qadr: int, vadr: int):
    """The free root's (linear, angular) velocity, both in the root frame."""
    rot = quat_to_mat(qpos_quat(qpos, world, qadr + 3))
    linear = wp.vec3(qvel[world, vadr], qvel[world, vadr + 1], qvel[world, vadr + 2])
    angular = wp.vec3(qvel[world, vadr + 3], qvel[world, vadr + 4], qvel[world, vadr + 5])
    return wp.transpose(rot) * linear, angular


@wp.kernel
def qpos_reward(state: RewardState, params: float, out: wp.array(dtype=float)):
    """exp(-scale * (mean squared error of non-quaternion qpos + root-quaternion angle in rad))."""
    world = wp.tid()
    root = state.root_qpos_adr
    total = float(0.0)
    count = int(0)
    for i in range(state.qpos.shape[1]):
        if root < 0 or i < root + 3 or i >= root + 7:
            d = state.qpos[world, i] - state.ref_qpos[world, i]
            total += d * d
            count += 1
    error = total / float(wp.max(count, 1))
    if root >= 0:
        error += quat_angle(qpos_quat(state.qpos, world, root + 3), qpos_quat(state.ref_qpos, world, root + 3))
    out[world] = wp.exp(-params * error)


@wp.kernel
def qvel_reward(state: RewardState, params: float, out: wp.array(dtype=float)):
    """exp(-scale * mean squared error of all qvel)."""
    world = wp.tid()
    total = float(0.0)
    for i in range(state.qvel.shape[1]):
        d = state.qvel[world, i] - state.ref_qvel[world, i]
        total += d * d
    out[world] = wp.exp(-params * total / float(wp.max(state.qvel.shape[1], 1)))


@wp.kernel
def root_pos_reward(state: RewardState, params: float, out: wp.array(dtype=float)):
    """exp(-scale * mean squared error of the root position); 0 for a fixed base."""
    world = wp.tid()
    root = state.root_qpos_adr
    if root < 0:
        out[world] = 0.0
        return
    total = float(0.0)
    for i in range(3):
        d = state.qpos[world, root + i] - state.ref_qpos[world, root + i]
        total += d * d
    out[world] = wp.exp(-params * total / 3.0)


@wp.kernel
def root_vel_reward(state: RewardState, params: float, out: wp.array(dtype=float)):
    """exp(-scale * mean squared error of the root's linear and angular velocity in its own frame); 0 for a fixed base."""
    world = wp.tid()
    qadr = state.root_qpos_adr
    vadr = state.root_qvel_adr
    if qadr < 0:
        out[world] = 0.0
        return
    lin, ang = root_local_velocity(state.qpos, state.qvel, world, qadr, vadr)
    ref_lin, ref_ang = root_local_velocity(state.ref_qpos, state.ref_qvel, world, qadr, vadr)
    dl = lin - ref_lin
    da = ang - ref_ang
    out[world] = wp.exp(-params * (wp.dot(dl, dl) + wp.dot(da, da)) / 6.0)


@wp.kernel
def rpos_reward(state: RewardState, params: float, out: wp.array(dtype=float)):
    """exp(-scale * mean squared error of the relative site positions)."""
    world = wp.tid()
    out[world] = wp.exp(-params * mean_squared_vec3(state.site_rpos, state.ref_site_rpos, world))


@wp.kernel
def rquat_reward(state: RewardState, params: float, out: wp.array(dtype=float)):
    """exp(-scale * mean squared error of the relative site rotation vectors)."""
    world = wp.tid()
    out[world] = wp.exp(-params * mean_squared_vec3(state.site_rangles, state.ref_site_rangles, world))


@wp.kernel
def rvel_rot_reward(state: RewardState, params: float, out: wp.array(dtype=float)):
    """exp(-scale * mean squared error of the angular part of the relative site velocities)."""
    world = wp.tid()
    out[world] = wp.exp(-params * mean_squared_rvel(state.site_rvel, state.ref_site_rvel, world, 0))


@wp.kernel
def rvel_lin_reward(state: RewardState, params: float, out: wp.array(dtype=float)):
    """exp(-scale * mean squared error of the linear part of the relative site velocities)."""
    world = wp.tid()
    out[world] = wp.exp(-params * mean_squared_rvel(state.site_rvel, state.ref_site_rvel, world, 1))


@wp.kernel
def action_out_of_bounds_penalty(state: RewardState, params: float, out: wp.array(dtype=float)):
    """-mean over actions of the squared excess beyond [-bound, bound] (params = bound)."""
    world = wp.tid()
    total = float(0.0)
    for j in range(state.action.shape[1]):
        a = state.action[world, j]
        excess = wp.max(a - params, 0.0) + wp.max(-params - a, 0.0)
        total += excess * excess
    out[world] = -total / float(wp.max(state.action.shape[1], 1))


@wp.kernel
def action_rate_penalty(state: RewardState, params: float, out: wp.array(dtype=float)):
    """-scale * sum of squared changes of the action since the last step."""
    world = wp.tid()
    total = float(0.0)
    for j in range(state.action.shape[1]):
        d = state.action[world, j] - state.last_action[world, j]
        total += d * d
    out[world] = -params * total


@wp.kernel
def activation_energy_penalty(state: RewardState, params: float, out: wp.array(dtype=float)):
    """-scale * mean squared muscle activation."""
    world = wp.tid()
    total = float(0.0)
    for j in range(state.act.shape[1]):
        a = state.act[world, j]
        total += a * a
    out[world] = -params * total / float(wp.max(state.act.shape[1], 1))


@wp.kernel
def combine_rewards(
    weights: wp.array(dtype=float),
    is_penalty: wp.array(dtype=wp.int32),
    penalty_floor: float,
    terms: wp.array2d(dtype=float),
    reward: wp.array(dtype=float),
):
    """reward = max(sum of weighted imitation terms + max(sum of weighted penalties, floor), 0).

    A non-finite term is logged as 0 and makes the world's reward 0.
    """
    world = wp.tid()
    gain = float(0.0)
    cost = float(0.0)
    finite = int(1)
    for t in range(terms.shape[0]):
        value = terms[t, world]
        if not wp.isfinite(value):
            terms[t, world] = 0.0
            finite = 0
        elif is_penalty[t] != 0:
            cost += weights[t] * value
        else:
            gain += weights[t] * value
    total = wp.max(gain + wp.max(cost, penalty_floor), 0.0)
    if finite == 0 or not wp.isfinite(total):
        total = 0.0
    reward[world] = total
