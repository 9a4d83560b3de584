"""Episode termination: absorbing ends and truncation, read from the `WorldState` (kernels/state.py).

Termination (MuscleMimic, arXiv 2603.25544), on the post-step state and reference frame:
absorbing when the mean relative-site deviation (or, in "world" mode, the mean world-site
deviation), the main-site (root) position deviation or the root-quaternion angle exceeds its
threshold (inf disables a check), or when an action or the observation was non-finite;
truncated when the episode reached the horizon or the motion's last frame.
"""

from __future__ import annotations

import warp as wp

from mmimic.kernels.spatial import qpos_quat, quat_angle
from mmimic.kernels.state import WorldState


@wp.struct
class TerminationParams:
    """Thresholds (inf disables one) and the horizon."""

    site_deviation: float  # m, mean over sites
    world_sites: int  # 0: relative sites 1..S-1 (site_rpos); 1: world positions of all S sites
    root_deviation: float  # m, main site against the re-centred reference
    root_angle: float  # rad, root quaternion (free root only)
    horizon: int  # control steps


@wp.func
def mean_distance(a: wp.array2d(dtype=wp.vec3), b: wp.array2d(dtype=wp.vec3), world: int) -> float:
    total = float(0.0)
    for i in range(a.shape[1]):
        total += wp.length(a[world, i] - b[world, i])
    return total / float(wp.max(a.shape[1], 1))


@wp.kernel
def terminate(
    # Model:
    params: TerminationParams,
    # Data in:
    state: WorldState,
    nonfinite_obs: wp.array(dtype=wp.bool),
    # Data out:
    terminated: wp.array(dtype=wp.bool),
    truncated: wp.array(dtype=wp.bool),
):
    """Absorbing termination and truncation (time limit or end of motion) of every world."""
    world = wp.tid()
    deviation = float(0.0)
    if params.world_sites != 0:
        deviation = mean_distance(state.site_pos, state.ref_site_pos, world)
    else:
        deviation = mean_distance(state.site_rpos, state.ref_site_rpos[0], world)
    absorbing = deviation > params.site_deviation
    root = state.root_qpos_adr
    if root >= 0:
        absorbing = absorbing or wp.length(state.site_pos[world, 0] - state.ref_site_pos[world, 0]) > params.root_deviation
        angle = quat_angle(qpos_quat(state.qpos, world, root + 3), qpos_quat(state.ref_qpos, world, root + 3))
        absorbing = absorbing or angle > params.root_angle
    absorbing = absorbing or state.nonfinite_action[world] or nonfinite_obs[world]
    last = state.clip_length[state.clip[world]] - 1
    ended = state.episode_step[world] >= params.horizon or state.clip_step[world] >= last
    terminated[world] = absorbing
    truncated[world] = ended and not absorbing
