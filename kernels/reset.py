"""Reference-state initialisation of the worlds selected by a mask (MuscleMimic, arXiv 2603.25544).

Each selected world draws a clip with probability proportional to its weight and a start frame
uniformly among the clip's frames, from its own random stream, and gets the start frame's qpos
(root x-y re-centred to 0) and qvel as its new state. Zeroing activations, excitations and the
muscle model's own state is the simulator's reset.
"""

from __future__ import annotations

import warp as wp


@wp.kernel
def sample_reference_starts(
    mask: wp.array(dtype=wp.bool),
    clip_cdf: wp.array(dtype=float),
    clip_start: wp.array(dtype=wp.int32),
    clip_length: wp.array(dtype=wp.int32),
    lib_qpos: wp.array2d(dtype=float),
    lib_qvel: wp.array2d(dtype=float),
    root_qpos_adr: int,
    rng: wp.array(dtype=wp.uint32),
    clip: wp.array(dtype=wp.int32),
    clip_step: wp.array(dtype=wp.int32),
    root_offset: wp.array(dtype=wp.vec2),
    episode_step: wp.array(dtype=wp.int32),
    episode_return: wp.array(dtype=float),
    last_action: wp.array2d(dtype=float),
    qpos_target: wp.array2d(dtype=float),
    qvel_target: wp.array2d(dtype=float),
):
    """Draw (clip, start frame) for each selected world and write its new episode state and target qpos/qvel."""
    world = wp.tid()
    if not mask[world]:
        return
    state = rng[world]
    u = wp.randf(state)
    lo = int(0)
    hi = clip_cdf.shape[0] - 1
    while lo < hi:  # first clip whose cumulative weight exceeds u
        mid = (lo + hi) // 2
        if clip_cdf[mid] > u:
            hi = mid
        else:
            lo = mid + 1
    length = clip_length[lo]
    start = wp.min(int(wp.randf(state) * float(length)), length - 1)
    rng[world] = state

    frame = clip_start[lo] + start
    offset = wp.vec2(0.0, 0.0)
    if root_qpos_adr >= 0:
        offset = wp.vec2(lib_qpos[frame, root_qpos_adr], lib_qpos[frame, root_qpos_adr + 1])
    clip[world] = lo
    clip_step[world] = start
    root_offset[world] = offset
    episode_step[world] = 0
    episode_return[world] = 0.0
    for j in range(last_action.shape[1]):
        last_action[world, j] = 0.0
    for i in range(qpos_target.shape[1]):
        qpos_target[world, i] = lib_qpos[frame, i]
    if root_qpos_adr >= 0:
        qpos_target[world, root_qpos_adr] = lib_qpos[frame, root_qpos_adr] - offset[0]
        qpos_target[world, root_qpos_adr + 1] = lib_qpos[frame, root_qpos_adr + 1] - offset[1]
    for i in range(qvel_target.shape[1]):
        qvel_target[world, i] = lib_qvel[frame, i]
