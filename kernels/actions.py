"""Action intake: the policy's actions become the step's `action` and the muscles' excitations.

A world given a non-finite action is flagged (the environment terminates it), and its action is
replaced by zeros; ctrl = clip(action, -1, 1) (MuscleMimic, arXiv 2603.25544).
"""

from __future__ import annotations

import warp as wp


@wp.kernel
def flag_nonfinite_actions(
    # Data in:
    actions: wp.array2d(dtype=float),
    # Data out:
    nonfinite: wp.array(dtype=wp.bool),
):
    """nonfinite[world] = True if any action of the world is NaN or infinite."""
    world = wp.tid()
    bad = bool(False)
    for j in range(actions.shape[1]):
        if not wp.isfinite(actions[world, j]):
            bad = True
    nonfinite[world] = bad


@wp.kernel
def write_controls(
    # Data in:
    actions: wp.array2d(dtype=float),
    nonfinite: wp.array(dtype=wp.bool),
    # Data out:
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
