"""Coupling-consistent states: the initial pose, clip frames, resets and random poses satisfy the
joint-equality polynomials, measured by MuJoCo C's own equality-constraint residual (`efc_pos`)."""

from __future__ import annotations

from pathlib import Path

import mujoco
import numpy as np
import pytest
import torch

import mmimic
from mmimic.coupling import Coupling

REPO = Path(__file__).resolve().parent.parent
TOLERANCE = 1e-6


def mujoco_equality_residual(model: mujoco.MjModel, qpos: np.ndarray) -> float:
    """The largest |efc_pos| of MuJoCo's equality rows at each pose of `qpos` (nq,) or (T, nq)."""
    data = mujoco.MjData(model)
    worst = 0.0
    for q in np.atleast_2d(qpos):
        data.qpos[:] = q
        mujoco.mj_forward(model, data)
        rows = data.efc_type[: data.nefc] == mujoco.mjtConstraint.mjCNSTR_EQUALITY
        assert rows.sum() == model.neq, "every joint equality gives one constraint row"
        worst = max(worst, float(np.abs(data.efc_pos[: data.nefc][rows]).max()))
    return worst


@pytest.fixture(scope="module")
def fullbody_416() -> mmimic.Embodiment:
    return mmimic.load_embodiment("fullbody", remove_fingers=False)


@pytest.mark.parametrize("body", ["fullbody", "fullbody_416", "bimanual"])
def test_initial_pose_satisfies_the_couplings(body: str, request: pytest.FixtureRequest) -> None:
    embodiment: mmimic.Embodiment = request.getfixturevalue(body)
    m = embodiment.mj_model
    qpos = embodiment.initial_qpos()
    assert mujoco_equality_residual(m, qpos) <= TOLERANCE
    assert embodiment.coupling.residual(qpos) <= TOLERANCE
    raw = m.key_qpos[embodiment.keyframe] if embodiment.keyframe is not None else m.qpos0
    if body.startswith("fullbody"):  # the shipped keyframe leaves the patella off: the test sees it
        assert mujoco_equality_residual(m, raw) == pytest.approx(0.0524192, abs=1e-6)
    independent = embodiment.coupling.joint_qpos
    assert np.array_equal(qpos[independent], raw[independent])  # only driven joints move


def test_complete_sets_driven_joints_from_random_drivers(fullbody: mmimic.Embodiment) -> None:
    m = fullbody.mj_model
    coupling = Coupling(m)
    rng = np.random.default_rng(3)
    qpos = np.tile(fullbody.initial_qpos(), (6, 1))
    low, high = coupling.lower, coupling.upper
    qpos[:, coupling.joint_qpos] = rng.uniform(np.maximum(low, -np.pi), np.minimum(high, np.pi), (6, low.size))
    before = qpos.copy()
    assert mujoco_equality_residual(m, qpos) > 0.01  # random drivers break the couplings ...
    out = coupling.complete(qpos)
    assert out is qpos and mujoco_equality_residual(m, qpos) <= 1e-9  # ... and completion restores them
    moved = np.flatnonzero(np.any(qpos != before, axis=0))
    assert set(moved) <= set(coupling.driven_qpos)


def test_clip_frames_and_env_resets_satisfy_the_couplings(fullbody: mmimic.Embodiment) -> None:
    # A retargeted clip holding driven joints at their limits, a 30 Hz clip stored on a 2^-16 grid
    # (resampled on load; residual 5e-3 as stored) and the converted OpenSim walk.
    clips = [REPO / "motions/fullbody" / f"{name}.npz" for name in ("cmu_07_01_walk", "cmu_05_10", "opensim_walk")]
    library = mmimic.MotionLibrary(fullbody, clips, "cpu")
    frames = library.qpos.double().numpy()
    assert fullbody.coupling.residual(frames) <= TOLERANCE  # float32 storage of exact completions
    assert mujoco_equality_residual(fullbody.mj_model, frames[::97]) <= TOLERANCE

    env = mmimic.ImitationEnv(fullbody, library, 4, "cpu", mmimic.EnvConfig(seed=5))
    for _ in range(3):
        env.reset()
        assert fullbody.coupling.residual(env.sim.qpos.double().numpy()) <= TOLERANCE
    env.start_at(torch.zeros(4, dtype=torch.int64), torch.tensor([0, 11, 40, 77]))
    assert mujoco_equality_residual(fullbody.mj_model, env.sim.qpos.double().numpy()) <= TOLERANCE
