"""Reward terms as Warp kernels.

Every term is a kernel with the same signature,

    @wp.kernel
    def term(state: WorldState, params: <float or a wp.struct of the term's own>, out: wp.array(dtype=float))

launched with one thread per world (`world = wp.tid()`), reading the post-step `WorldState`
(kernels/state.py; the reference's relative site features at index 0, the current frame) and
writing one float to `out[world]`. The built-in DeepMimic terms below are written exactly like a
user's own (docs/rewards.md) and are registered by `mmimic.env.rewards`. Imitation terms return
exp(-scale * error) with the error of the published system (MuscleMimic, arXiv 2603.25544); penalties return a value <= 0.
"""

from __future__ import annotations

import warp as wp

from mmimic.kernels.spatial import qpos_quat, quat_angle, quat_to_mat
from mmimic.kernels.state import WorldState


@wp.func
def sum_squared_difference(a: wp.array2d(dtype=float), b: wp.array2d(dtype=float), world: int) -> float:
    total = float(0.0)
    for i in range(a.shape[1]):
        d = a[world, i] - b[world, i]
        total += d * d
    return total


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
def qpos_reward(state: WorldState, params: float, out: wp.array(dtype=float)):
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
def qvel_reward(state: WorldState, params: float, out: wp.array(dtype=float)):
    """exp(-scale * mean squared error of all qvel)."""
    world = wp.tid()
    total = sum_squared_difference(state.qvel, state.ref_qvel, world)
    out[world] = wp.exp(-params * total / float(wp.max(state.qvel.shape[1], 1)))


@wp.kernel
def root_pos_reward(state: WorldState, params: float, out: wp.array(dtype=float)):
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
def root_vel_reward(state: WorldState, params: float, out: wp.array(dtype=float)):
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
def rpos_reward(state: WorldState, params: float, out: wp.array(dtype=float)):
    """exp(-scale * mean squared error of the relative site positions)."""
    world = wp.tid()
    out[world] = wp.exp(-params * mean_squared_vec3(state.site_rpos, state.ref_site_rpos[0], world))


@wp.kernel
def rquat_reward(state: WorldState, params: float, out: wp.array(dtype=float)):
    """exp(-scale * mean squared error of the relative site rotation vectors)."""
    world = wp.tid()
    out[world] = wp.exp(-params * mean_squared_vec3(state.site_rangles, state.ref_site_rangles[0], world))


@wp.kernel
def rvel_rot_reward(state: WorldState, params: float, out: wp.array(dtype=float)):
    """exp(-scale * mean squared error of the angular part of the relative site velocities)."""
    world = wp.tid()
    out[world] = wp.exp(-params * mean_squared_rvel(state.site_rvel, state.ref_site_rvel[0], world, 0))


@wp.kernel
def rvel_lin_reward(state: WorldState, params: float, out: wp.array(dtype=float)):
    """exp(-scale * mean squared error of the linear part of the relative site velocities)."""
    world = wp.tid()
    out[world] = wp.exp(-params * mean_squared_rvel(state.site_rvel, state.ref_site_rvel[0], world, 1))


@wp.kernel
def action_out_of_bounds_penalty(state: WorldState, params: float, out: wp.array(dtype=float)):
    """-mean over actions of the squared excess beyond [-bound, bound] (params = bound)."""
    world = wp.tid()
    total = float(0.0)
    for j in range(state.action.shape[1]):
        a = state.action[world, j]
        excess = wp.max(a - params, 0.0) + wp.max(-params - a, 0.0)
        total += excess * excess
    out[world] = -total / float(wp.max(state.action.shape[1], 1))


@wp.kernel
def action_rate_penalty(state: WorldState, params: float, out: wp.array(dtype=float)):
    """-scale * sum of squared changes of the action since the last step."""
    world = wp.tid()
    out[world] = -params * sum_squared_difference(state.action, state.last_action, world)


@wp.kernel
def activation_energy_penalty(state: WorldState, params: float, out: wp.array(dtype=float)):
    """-scale * mean squared muscle activation."""
    world = wp.tid()
    total = float(0.0)
    for j in range(state.act.shape[1]):
        total += state.act[world, j] * state.act[world, j]
    out[world] = -params * total / float(wp.max(state.act.shape[1], 1))


@wp.kernel
def combine_rewards(
    # Model (per active term; the configuration's floor):
    weights: wp.array(dtype=float),
    is_penalty: wp.array(dtype=wp.int32),
    penalty_floor: float,
    # Data in and out (a non-finite term becomes 0):
    terms: wp.array2d(dtype=float),
    # Data out:
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
