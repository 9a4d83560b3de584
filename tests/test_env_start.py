"""`ImitationEnv.start_at`: episodes from a chosen clip and frame, as evaluation needs."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

import mmimic

REPO = Path(__file__).resolve().parent.parent


def test_start_at_puts_worlds_on_the_chosen_frames(fullbody: mmimic.Embodiment) -> None:
    library = mmimic.MotionLibrary(fullbody, [REPO / "motions/fullbody"], "cpu")
    env = mmimic.ImitationEnv(fullbody, library, 2, "cpu")
    steps = torch.tensor([0, 37])
    env.start_at(torch.zeros(2, dtype=torch.int64), steps)
    expected = library.qpos[library.clip_start[0] + steps].clone()
    offset = expected[:, :2].clone()
    expected[:, :2] = 0.0  # the root's x-y is re-centred on the start frame
    assert torch.equal(env.sim.qpos, expected) and torch.all(env.sim.act == 0)
    assert torch.equal(env.clip_step.long(), steps) and torch.equal(env.root_offset, offset)
    # The current reference is the start frame, re-centred the same way (env.ref_qpos, env.ref_site_pos).
    shift = torch.cat([offset, torch.zeros(2, 1)], 1)[:, None]
    assert torch.equal(env.ref_qpos, expected)
    assert torch.equal(env.ref_site_pos, library.site_xpos[library.clip_start[0] + steps] - shift)
    # The next step tracks the following frame: the first world's reward is near its maximum.
    _, reward, done, _ = env.step(torch.zeros(2, fullbody.num_muscles))
    assert not done.any() and reward.min() > 0.5
    with pytest.raises(ValueError, match="start_steps frames within them"):
        env.start_at(torch.zeros(2, dtype=torch.int64), torch.tensor([0, 10_000]))
