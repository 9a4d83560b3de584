"""Golden muscle paths: every muscle's length and moments at 12 coupling-consistent poses of each
body equal the frozen values, so an engine pin or model change cannot silently reroute a muscle.

The fixtures were made under the pinned MuJoCo (4.0.0) by

    python tests/golden/make_muscle_paths.py

Under MuJoCo 3.4-3.17 this test fails on the arm muscles whose side-site wraps the 4.0 rule
changed (docs/engine.md).
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

from mmimic.anatomy import muscle_paths

GOLDEN = Path(__file__).resolve().parent / "golden"
sys.path.insert(0, str(GOLDEN))
from make_muscle_paths import BODIES, POSES, golden_poses, load  # noqa: E402

LENGTH_TOLERANCE = 1e-6  # m: float32 storage is ~3e-8 at these lengths; a reroute moves millimetres
MOMENT_TOLERANCE = 1e-6  # m (or m/m for slides)


@pytest.mark.parametrize("body", list(BODIES))
def test_muscle_paths_match_the_golden_fixture(body: str) -> None:
    golden = np.load(GOLDEN / f"muscle_paths_{body}.npz")
    embodiment = load(body)
    assert tuple(golden["muscles"]) == embodiment.muscle_names
    qpos = golden["qpos"]
    assert qpos.shape == (POSES, embodiment.mj_model.nq)
    assert embodiment.coupling.residual(qpos) <= 1e-9  # the poses satisfy the couplings

    lengths, moments = muscle_paths(embodiment.mj_model, qpos)
    length_error = np.abs(lengths - golden["length"]).max(axis=0)
    moved = [f"{name} ({1000 * e:.2f} mm)" for name, e in zip(embodiment.muscle_names, length_error)
             if e > LENGTH_TOLERANCE]
    assert not moved, f"{body}: muscle lengths changed: {', '.join(moved)}"

    rows, cols = golden["moment_muscle"].astype(int), golden["moment_dof"].astype(int)
    frozen = np.zeros_like(moments)
    frozen[:, rows, cols] = golden["moment"]
    moment_error = np.abs(moments - frozen).max(axis=(0, 2))  # includes joints a muscle did not span
    rerouted = [name for name, e in zip(embodiment.muscle_names, moment_error) if e > MOMENT_TOLERANCE]
    assert not rerouted, f"{body}: muscle moments changed: {', '.join(rerouted)}"


def test_golden_poses_are_reproducible(fullbody) -> None:
    """The fixture's poses are the script's: initial pose first, random independent joints after."""
    golden = np.load(GOLDEN / "muscle_paths_fullbody.npz")
    assert np.array_equal(golden_poses(fullbody), golden["qpos"])
    assert np.array_equal(golden["qpos"][0], fullbody.initial_qpos())
