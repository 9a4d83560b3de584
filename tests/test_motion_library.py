"""MotionLibrary: site kinematics against MuJoCo C, interpolation against scipy, batched lookups."""

from __future__ import annotations

from pathlib import Path

import mujoco
import numpy as np
import pytest
import torch
from scipy.spatial.transform import Rotation, Slerp
from test_motion_clip import walking_like_clip
from torch.utils._python_dispatch import TorchDispatchMode

import mmimic
from mmimic.motion import MotionClip, MotionLibrary, write_clip


@pytest.fixture(scope="module")
def library(tmp_path_factory: pytest.TempPathFactory, fullbody: mmimic.Embodiment) -> MotionLibrary:
    directory = tmp_path_factory.mktemp("clips")
    write_clip(directory / "a.npz", walking_like_clip(fullbody, frames=30, seed=0))
    write_clip(directory / "b.npz", walking_like_clip(fullbody, frames=45, seed=1))
    (directory / "manifest.toml").write_text("[clips.b]\nweight = 3.0\n")
    return MotionLibrary(fullbody, [directory])


def _mujoco_frame(model: mujoco.MjModel, qpos: np.ndarray, qvel: np.ndarray) -> mujoco.MjData:
    data = mujoco.MjData(model)
    data.qpos[:], data.qvel[:] = qpos, qvel
    mujoco.mj_kinematics(model, data)
    mujoco.mj_comPos(model, data)
    mujoco.mj_comVel(model, data)
    return data


def test_layout(library: MotionLibrary, fullbody: mmimic.Embodiment) -> None:
    assert library.fps == 100.0 and library.num_clips == 2 and library.num_frames == 75
    assert library.clip_start.tolist() == [0, 30] and library.clip_length.tolist() == [30, 45]
    assert library.clip_start.dtype == library.clip_length.dtype == torch.int64
    np.testing.assert_allclose(library.clip_weight.numpy(), [0.25, 0.75])
    sites = len(fullbody.mimic_sites)
    assert library.site_xpos.shape == (75, sites, 3) and library.site_xmat.shape == (75, sites, 3, 3)
    assert library.site_vel.shape == (75, sites, 6) and library.qvel.shape == (75, fullbody.mj_model.nv)


def test_sites_match_mujoco_c(library: MotionLibrary, fullbody: mmimic.Embodiment) -> None:
    m = fullbody.mj_model
    for frame in range(0, library.num_frames, 4):
        d = _mujoco_frame(m, library.qpos[frame].double().numpy(), library.qvel[frame].double().numpy())
        np.testing.assert_allclose(library.site_xpos[frame].numpy(), d.site_xpos[fullbody.mimic_site_ids], atol=1e-5)
        np.testing.assert_allclose(
            library.site_xmat[frame].numpy(), d.site_xmat[fullbody.mimic_site_ids].reshape(-1, 3, 3), atol=1e-5
        )
        for k, site in enumerate(fullbody.mimic_site_ids):
            expected = np.zeros(6)
            mujoco.mj_objectVelocity(m, d, mujoco.mjtObj.mjOBJ_SITE, int(site), expected, 0)  # [w, v] world frame
            np.testing.assert_allclose(library.site_vel[frame, k].numpy(), expected, atol=1e-4)


def test_qvel_is_mujoco_position_differencing(library: MotionLibrary, fullbody: mmimic.Embodiment) -> None:
    m = fullbody.mj_model
    q = library.qpos.double().numpy()
    for frame in (0, 7, 29, 30, 50, 74):
        first = frame in (0, 30)
        last = frame in (29, 74)
        a, b = (frame, frame + 1) if first else (frame - 1, frame) if last else (frame - 1, frame + 1)
        expected = np.zeros(m.nv)
        mujoco.mj_differentiatePos(m, expected, (b - a) / 100.0, q[a], q[b])
        np.testing.assert_allclose(library.qvel[frame].numpy(), expected, rtol=1e-5, atol=1e-4)


def test_lookup_interpolates_like_an_independent_reference(library: MotionLibrary) -> None:
    clip_ids = torch.tensor([0, 1, 1, 0, 1])
    times = torch.tensor([0.123, 0.005, 0.3371, 0.0, 0.4399])
    frame = library.lookup(clip_ids, times)
    for i in range(len(clip_ids)):
        position = times[i].item() * 100.0
        k = int(np.floor(position))
        alpha = position - k
        g = library.clip_start[clip_ids[i]].item() + k
        q0, q1 = library.qpos[g].double().numpy(), library.qpos[g + 1].double().numpy()
        expected = (1 - alpha) * q0 + alpha * q1
        pair = Rotation.from_quat(np.stack([q0[3:7], q1[3:7]]), scalar_first=True)
        expected[3:7] = Slerp([0.0, 1.0], pair)(alpha).as_quat(scalar_first=True)
        if expected[3] * frame.qpos[i, 3].item() < 0:
            expected[3:7] *= -1
        np.testing.assert_allclose(frame.qpos[i].numpy(), expected, atol=2e-6)
        v0, v1 = library.qvel[g].double().numpy(), library.qvel[g + 1].double().numpy()
        np.testing.assert_allclose(frame.qvel[i].numpy(), (1 - alpha) * v0 + alpha * v1, rtol=1e-5, atol=1e-5)
        p0, p1 = library.site_xpos[g].double().numpy(), library.site_xpos[g + 1].double().numpy()
        np.testing.assert_allclose(frame.site_xpos[i].numpy(), (1 - alpha) * p0 + alpha * p1, atol=2e-6)
        s0, s1 = library.site_vel[g].double().numpy(), library.site_vel[g + 1].double().numpy()
        np.testing.assert_allclose(frame.site_vel[i].numpy(), (1 - alpha) * s0 + alpha * s1, rtol=1e-5, atol=1e-5)
        for s in range(library.site_xmat.shape[1]):
            pair = Rotation.from_matrix(np.stack([library.site_xmat[g, s].double().numpy(), library.site_xmat[g + 1, s].double().numpy()]))
            np.testing.assert_allclose(frame.site_xmat[i, s].numpy(), Slerp([0.0, 1.0], pair)(alpha).as_matrix(), atol=1e-5)


def test_lookup_at_frames_and_outside_clips(library: MotionLibrary) -> None:
    frame = library.lookup(torch.tensor([1, 1, 0]), torch.tensor([0.07, 99.0, -1.0]))
    rows = library.frame_index(torch.tensor([1, 1, 0]), torch.tensor([7, 10_000, -3]))
    assert rows.tolist() == [37, 74, 0] and rows.dtype == torch.int64
    np.testing.assert_allclose(frame.qpos.numpy(), library.qpos[rows].numpy(), atol=2e-6)
    np.testing.assert_allclose(frame.site_xmat.numpy(), library.site_xmat[rows].numpy(), atol=2e-6)


class _CountOps(TorchDispatchMode):
    def __init__(self) -> None:
        super().__init__()
        self.ops = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        self.ops += 1
        return func(*args, **(kwargs or {}))


def test_batched_lookup_does_no_per_environment_work(library: MotionLibrary) -> None:
    generator = torch.Generator().manual_seed(0)
    counts = []
    for batch in (64, 4096):
        clip_ids = library.sample_clips(batch, generator)
        times = torch.rand(batch, generator=generator) * 0.5
        with _CountOps() as counter:
            frame = library.lookup(clip_ids, times)
        counts.append(counter.ops)
        assert frame.qpos.shape == (batch, library.qpos.shape[1]) and frame.site_xmat.shape[0] == batch
    assert counts[0] == counts[1]  # the same torch ops for 64 and 4096 environments


def test_sample_clips_follows_weights(library: MotionLibrary) -> None:
    ids = library.sample_clips(20_000, torch.Generator().manual_seed(1))
    assert ids.dtype == torch.int64 and ids.device == library.device
    assert abs((ids == 1).float().mean().item() - 0.75) < 0.02


def test_resampling_to_the_control_rate(tmp_path: Path, fullbody: mmimic.Embodiment) -> None:
    m = fullbody.mj_model
    fps, frames, omega, speed = 30.0, 16, 1.5, 0.8
    t = np.arange(frames) / fps
    qpos = np.tile(m.qpos0, (frames, 1))
    qpos[:, 1] = -speed * t
    qpos[:, 3:7] = np.stack([np.cos(omega * t / 2), 0 * t, 0 * t, np.sin(omega * t / 2)], axis=1)
    knee = m.jnt_qposadr[m.joint("knee_angle_r").id]
    qpos[:, knee] = 0.3 + 0.5 * t
    write_clip(tmp_path / "slow.npz", MotionClip(fps, qpos.astype(np.float32), mmimic.motion.column_names(m), "fullbody"))
    library = MotionLibrary(fullbody, [tmp_path])
    new_t = np.arange(library.num_frames) / 100.0
    assert library.num_frames == int(np.floor((frames - 1) * 100 / fps + 1e-9)) + 1 == 51
    np.testing.assert_allclose(library.qpos[:, 1].numpy(), -speed * new_t, atol=1e-6)
    np.testing.assert_allclose(library.qpos[:, knee].numpy(), 0.3 + 0.5 * new_t, atol=1e-6)
    expected = np.stack([np.cos(omega * new_t / 2), 0 * new_t, 0 * new_t, np.sin(omega * new_t / 2)], axis=1)
    np.testing.assert_allclose(library.qpos[:, 3:7].numpy(), expected, atol=1e-6)  # SLERP is exact for steady turns
    np.testing.assert_allclose(library.qvel[:, 5].numpy(), omega, atol=1e-3)
    np.testing.assert_allclose(library.qvel[:, m.jnt_dofadr[m.joint("knee_angle_r").id]].numpy(), 0.5, atol=1e-3)


def test_bimanual_library_has_a_fixed_base(bimanual: mmimic.Embodiment) -> None:
    library = MotionLibrary(bimanual, [Path(__file__).resolve().parent.parent / "motions" / "bimanual"])
    assert library.qpos.shape[1] == bimanual.mj_model.nq == 76
    d = _mujoco_frame(bimanual.mj_model, library.qpos[100].double().numpy(), library.qvel[100].double().numpy())
    np.testing.assert_allclose(library.site_xpos[100].numpy(), d.site_xpos[bimanual.mimic_site_ids], atol=1e-5)


@pytest.mark.parametrize("name", ["fullbody", "bimanual"])
def test_kinematic_copy_gives_the_full_models_sites_bit_for_bit(name: str, request, library: MotionLibrary,
                                                                monkeypatch) -> None:
    """The library's engine runs a copy without geoms, muscle-path sites or tendons; the same engine on
    the full model gives identical site poses and velocities."""
    from mmimic.motion import kinematics

    body = request.getfixturevalue(name)
    copy, sites = kinematics.site_model(body)
    assert copy is not body.mj_model and copy.ngeom == 0 and copy.nsite == len(body.mimic_sites)
    assert [copy.site(s).name for s in sites] == list(body.mimic_sites)
    rng = np.random.default_rng(0)
    m = body.mj_model
    qpos = torch.tensor(m.qpos0 + 0.2 * rng.normal(size=(24, m.nq)), dtype=torch.float32)
    if name == "fullbody":  # the library's frames: unit root quaternions
        qpos = library.qpos[:24]
    qvel = torch.tensor(rng.normal(size=(qpos.shape[0], m.nv)), dtype=torch.float32)
    fast = kinematics.site_kinematics(body, qpos, qvel)
    monkeypatch.setattr(kinematics, "site_model", lambda e: (e.mj_model, list(e.mimic_site_ids)))
    full = kinematics.site_kinematics(body, qpos, qvel)
    for field in ("xpos", "xmat", "xquat", "vel"):
        assert torch.equal(getattr(fast, field), getattr(full, field)), field
