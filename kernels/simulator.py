"""Small kernels of the simulator: per-world state writes and overflow bookkeeping."""

from __future__ import annotations

import warp as wp


@wp.kernel
def copy_selected_rows(mask: wp.array(dtype=wp.bool), source: wp.array2d(dtype=float), target: wp.array2d(dtype=float)):
    """Copy row `world` of `source` into `target` where `mask[world]` (launch over target's shape)."""
    world, i = wp.tid()
    if mask[world]:
        target[world, i] = source[world, i]


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
