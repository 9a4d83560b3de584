"""Episode ends and starts: bookkeeping of finished episodes and the reference-state initialisation.

Both live here because one arms the other: `finish_step` closes the step's episodes and counts
them (the count is the condition of the graph's reset node), and the reset starts the next ones.
Reference-state initialisation (MuscleMimic, arXiv 2603.25544): each world in the mask draws a
clip with probability proportional to its weight and a start frame uniformly among the clip's
frames, from its own random stream (`draw_episodes`), or is given them (`start_episodes`), and
gets the start frame's qpos (root x-y re-centred to 0) and qvel as its new state. Zeroing
activations, excitations and the muscle model's own state is the simulator's reset.
"""

from __future__ import annotations

import warp as wp

from mmimic.kernels.state import WorldState, reference_qpos


@wp.kernel
def finish_step(
    # Data in:
    reward: wp.array(dtype=float),
    terminated: wp.array(dtype=wp.bool),
    truncated: wp.array(dtype=wp.bool),
    state: WorldState,
    # Data out (and state.last_action):
    done: wp.array(dtype=wp.bool),
    episode_return: wp.array(dtype=float),
    finished_return: wp.array(dtype=float),
    finished_length: wp.array(dtype=wp.int32),
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
        finished_length[world] = state.episode_step[world]
        wp.atomic_add(done_count, 0, 1)
    for j in range(state.action.shape[1]):
        state.last_action[world, j] = state.action[world, j]


@wp.func
def begin_episode(state: WorldState, world: int, clip: int, start: int, episode_return: wp.array(dtype=float),
                  qpos_target: wp.array2d(dtype=float), qvel_target: wp.array2d(dtype=float)):
    """Start the world's episode at frame `start` of `clip`: its bookkeeping in `state` and its new qpos/qvel."""
    frame = state.clip_start[clip] + start
    root = state.root_qpos_adr
    offset = wp.vec2(0.0, 0.0)
    if root >= 0:
        offset = wp.vec2(state.lib_qpos[frame, root], state.lib_qpos[frame, root + 1])
    state.clip[world] = clip
    state.clip_step[world] = start
    state.root_offset[world] = offset
    state.episode_step[world] = 0
    episode_return[world] = 0.0
    for j in range(state.last_action.shape[1]):
        state.last_action[world, j] = 0.0
    for i in range(qpos_target.shape[1]):
        qpos_target[world, i] = reference_qpos(state, frame, world, i)
    for i in range(qvel_target.shape[1]):
        qvel_target[world, i] = state.lib_qvel[frame, i]


@wp.kernel
def draw_episodes(
    # Data in:
    mask: wp.array(dtype=wp.bool),
    state: WorldState,
    # Data out (and state's clip, clip_step, root_offset, episode_step, last_action):
    rng: wp.array(dtype=wp.uint32),
    episode_return: wp.array(dtype=float),
    qpos_target: wp.array2d(dtype=float),
    qvel_target: wp.array2d(dtype=float),
):
    """Draw (clip, start frame) for each world in `mask` and begin its episode there."""
    world = wp.tid()
    if not mask[world]:
        return
    seed = rng[world]
    u = wp.randf(seed)
    lo = int(0)
    hi = state.clip_cdf.shape[0] - 1
    while lo < hi:  # first clip whose cumulative weight exceeds u
        mid = (lo + hi) // 2
        if state.clip_cdf[mid] > u:
            hi = mid
        else:
            lo = mid + 1
    length = state.clip_length[lo]
    start = wp.min(int(wp.randf(seed) * float(length)), length - 1)
    rng[world] = seed
    begin_episode(state, world, lo, start, episode_return, qpos_target, qvel_target)


@wp.kernel
def start_episodes(
    # Data in:
    clips: wp.array(dtype=wp.int32),
    starts: wp.array(dtype=wp.int32),
    state: WorldState,
    # Data out (and state's clip, clip_step, root_offset, episode_step, last_action):
    episode_return: wp.array(dtype=float),
    qpos_target: wp.array2d(dtype=float),
    qvel_target: wp.array2d(dtype=float),
):
    """Begin every world's episode at frame starts[world] of clip clips[world] (checked by the caller)."""
    world = wp.tid()
    begin_episode(state, world, clips[world], starts[world], episode_return, qpos_target, qvel_target)
