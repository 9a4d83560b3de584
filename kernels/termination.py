"""Action intake, episode termination and per-episode bookkeeping.

Termination (MuscleMimic, arXiv 2603.25544), on the post-step state and reference frame:
absorbing when the mean relative-site deviation (or, in "world" mode, the mean world-site
deviation), the main-site (root) position deviation or the root-quaternion angle exceeds its
threshold (inf disables a check), or when an action or the observation was non-finite;
truncated when the episode reached the horizon or the motion's last frame.
"""

from __future__ import annotations

import warp as wp

from mmimic.kernels.reward import RewardState
from mmimic.kernels.spatial import qpos_quat, quat_angle


@wp.struct
class TerminationParams:
    """Thresholds (inf disables one) and the horizon."""

    site_deviation: float  # m, mean over sites
    world_sites: int  # 0: relative sites 1..S-1 (site_rpos); 1: world positions of all S sites
    root_deviation: float  # m, main site against the re-centred reference
    root_angle: float  # rad, root quaternion (free root only)
    horizon: int  # control steps


@wp.kernel
def flag_nonfinite_actions(actions: wp.array2d(dtype=float), nonfinite: wp.array(dtype=wp.bool)):
    """nonfinite[world] = True if any action of the world is NaN or infinite."""
    world = wp.tid()
    bad = bool(False)
    for j in range(actions.shape[1]):
        if not wp.isfinite(actions[world, j]):
            bad = True
    nonfinite[world] = bad


@wp.kernel
def write_controls(
    actions: wp.array2d(dtype=float),
    nonfinite: wp.array(dtype=wp.bool),
    action: wp.array2d(dtype=float),
    ctrl: wp.array2d(dtype=float),
):
    """Keep the action (zeroed for a world with a non-finite action) and write ctrl = clip(action, -1, 1)."""
    world, j = wp.tid()
    a = actions[world, j]
    if nonfinite[world]:
        a = 0.0
    action[world, j] = a
    ctrl[world, j] = wp.clamp(a, -1.0, 1.0)


@wp.func
def mean_distance(a: wp.array2d(dtype=wp.vec3), b: wp.array2d(dtype=wp.vec3), world: int) -> float:
    total = float(0.0)
    for i in range(a.shape[1]):
        total += wp.length(a[world, i] - b[world, i])
    return total / float(wp.max(a.shape[1], 1))


@wp.kernel
def terminate(
    state: RewardState,
    params: TerminationParams,
    clip: wp.array(dtype=wp.int32),
    clip_step: wp.array(dtype=wp.int32),
    clip_length: wp.array(dtype=wp.int32),
    nonfinite_action: wp.array(dtype=wp.bool),
    nonfinite_obs: wp.array(dtype=wp.bool),
    terminated: wp.array(dtype=wp.bool),
    truncated: wp.array(dtype=wp.bool),
):
    """Absorbing termination and truncation (time limit or end of motion) of every world."""
    world = wp.tid()
    deviation = float(0.0)
    if params.world_sites != 0:
        deviation = mean_distance(state.site_pos, state.ref_site_pos, world)
    else:
        deviation = mean_distance(state.site_rpos, state.ref_site_rpos, world)
    absorbing = deviation > params.site_deviation
    root = state.root_qpos_adr
    if root >= 0:
        absorbing = absorbing or wp.length(state.site_pos[world, 0] - state.ref_site_pos[world, 0]) > params.root_deviation
        angle = quat_angle(qpos_quat(state.qpos, world, root + 3), qpos_quat(state.ref_qpos, world, root + 3))
        absorbing = absorbing or angle > params.root_angle
    absorbing = absorbing or nonfinite_action[world] or nonfinite_obs[world]
    ended = state.episode_step[world] >= params.horizon or clip_step[world] >= clip_length[clip[world]] - 1
    terminated[world] = absorbing
    truncated[world] = ended and not absorbing


@wp.kernel
def finish_step(
    reward: wp.array(dtype=float),
    terminated: wp.array(dtype=wp.bool),
    truncated: wp.array(dtype=wp.bool),
    episode_step: wp.array(dtype=wp.int32),
    action: wp.array2d(dtype=float),
    done: wp.array(dtype=wp.bool),
    episode_return: wp.array(dtype=float),
    finished_return: wp.array(dtype=float),
    finished_length: wp.array(dtype=wp.int32),
    last_action: wp.array2d(dtype=float),
    done_count: wp.array(dtype=wp.int32),
):
    """done = terminated or truncated; accumulate the return; report finished episodes; remember the action."""
    world = wp.tid()
    finished = terminated[world] or truncated[world]
    done[world] = finished
    total = episode_return[world] + reward[world]
    episode_return[world] = total
    finished_return[world] = 0.0
    finished_length[world] = 0
    if finished:
        finished_return[world] = total
        finished_length[world] = episode_step[world]
        wp.atomic_add(done_count, 0, 1)
    for j in range(action.shape[1]):
        last_action[world, j] = action[world, j]
