"""Small kernels of the simulator: per-world state writes and overflow bookkeeping."""

from __future__ import annotations

import warp as wp


@wp.kernel
def set_state(
    mask: wp.array(dtype=wp.bool),
    qpos_in: wp.array2d(dtype=float),
    qvel_in: wp.array2d(dtype=float),
    qpos: wp.array2d(dtype=float),
    qvel: wp.array2d(dtype=float),
):
    """Copy the given positions and velocities into the selected worlds."""
    world = wp.tid()
    if not mask[world]:
        return
    for i in range(qpos.shape[1]):
        qpos[world, i] = qpos_in[world, i]
    for i in range(qvel.shape[1]):
        qvel[world, i] = qvel_in[world, i]


@wp.kernel
def collect_overflow(
    severe: int,
    overflow: wp.array(dtype=wp.int32),
    seen_bits: wp.array(dtype=wp.int32),
    overflowing_worlds: wp.array(dtype=wp.int32),
):
    """Fold this step's sticky overflow flags into per-world history, count overflowing worlds, clear the flags."""
    world = wp.tid()
    bits = overflow[world] & severe
    if bits != 0:
        seen_bits[world] = seen_bits[world] | bits
        wp.atomic_add(overflowing_worlds, 0, 1)
    overflow[world] = 0


@wp.kernel
def count_overflow_step(overflowing_worlds: wp.array(dtype=wp.int32), overflow_steps: wp.array(dtype=wp.int32)):
    """Count the control step as overflowing if any world overflowed, then clear the world count."""
    if overflowing_worlds[0] > 0:
        overflow_steps[0] = overflow_steps[0] + 1
    overflowing_worlds[0] = 0
