"""The clip format: exact round trips, fitting by joint name, and every bad input refused."""

from __future__ import annotations

import logging
from pathlib import Path

import mujoco
import numpy as np
import pytest

import mmimic
from mmimic.motion import MotionClip, MotionError, MotionLibrary, column_names, derive_clip, read_clip, write_clip
from mmimic.motion.clip import check_clip


def walking_like_clip(embodiment: mmimic.Embodiment, frames: int = 20, fps: float = 100.0, seed: int = 0) -> MotionClip:
    """Joints drifting smoothly around the rest pose, the root turning about z and moving."""
    m = embodiment.mj_model
    rng = np.random.default_rng(seed)
    t = np.arange(frames)[:, None] / fps
    qpos = np.tile(m.qpos0, (frames, 1)) + 0.2 * np.sin(2 * np.pi * t * rng.uniform(0.5, 2.0, m.nq) + rng.uniform(0, 6, m.nq))
    if embodiment.free_joint is not None:
        yaw = 0.8 * t[:, 0]
        qpos[:, 0:3] = np.stack([0.3 * t[:, 0], -1.2 * t[:, 0], 0.95 + 0.02 * np.sin(6 * t[:, 0])], axis=1)
        qpos[:, 3:7] = np.stack([np.cos(yaw / 2), 0.1 * np.ones(frames), 0.05 * np.ones(frames), np.sin(yaw / 2)], axis=1)
        qpos[:, 3:7] /= np.linalg.norm(qpos[:, 3:7], axis=1, keepdims=True)
    qpos = embodiment.coupling.complete(qpos.astype(np.float32).astype(np.float64))  # coupled joints follow, as on load
    return MotionClip(fps=fps, qpos=qpos.astype(np.float32), joint_names=column_names(m), embodiment=embodiment.name,
                      source="test", license="CC0")


def test_write_read_round_trip_is_exact(tmp_path: Path, fullbody: mmimic.Embodiment) -> None:
    clip = walking_like_clip(fullbody)
    clip.qvel = np.random.default_rng(1).normal(size=(clip.num_frames, fullbody.mj_model.nv)).astype(np.float32)
    write_clip(tmp_path / "a.npz", clip)
    back = read_clip(tmp_path / "a.npz")
    assert np.array_equal(back.qpos, clip.qpos) and back.qpos.dtype == np.float32
    assert np.array_equal(back.qvel, clip.qvel)
    assert (back.fps, back.joint_names, back.embodiment, back.source, back.license) == (
        clip.fps, clip.joint_names, clip.embodiment, clip.source, clip.license
    )
    assert back.joint_names[:7] == ("root",) * 7
    assert [p.name for p in tmp_path.iterdir()] == ["a.npz"]  # no temporary file left behind

    library = MotionLibrary(fullbody, [tmp_path / "a.npz"])
    assert np.array_equal(library.qpos.numpy(), clip.qpos)
    assert np.array_equal(library.qvel.numpy(), clip.qvel)


def test_derived_clip_keeps_the_shared_joints_with_velocities(fullbody: mmimic.Embodiment, bimanual: mmimic.Embodiment) -> None:
    clip = walking_like_clip(fullbody)
    clip.qvel = np.arange(clip.num_frames * fullbody.mj_model.nv, dtype=np.float32).reshape(clip.num_frames, -1)
    arms = derive_clip(clip, bimanual)
    assert arms.embodiment == "bimanual" and len(arms.joint_names) == 36 and arms.qvel.shape == (clip.num_frames, 36)
    m = fullbody.mj_model
    for joint in ("elbow_flex_l", "shoulder_rot_r"):
        i = arms.joint_names.index(joint)
        np.testing.assert_array_equal(arms.qpos[:, i], clip.qpos[:, m.jnt_qposadr[m.joint(joint).id]])
        np.testing.assert_array_equal(arms.qvel[:, i], clip.qvel[:, m.jnt_dofadr[m.joint(joint).id]])


def test_write_replaces_atomically(tmp_path: Path, fullbody: mmimic.Embodiment) -> None:
    path = tmp_path / "a.npz"
    write_clip(path, walking_like_clip(fullbody, seed=0))
    second = walking_like_clip(fullbody, seed=1)
    write_clip(path, second)
    assert np.array_equal(read_clip(path).qpos, second.qpos)
    bad = MotionClip(fps=100.0, qpos=np.zeros((3, 4), np.float32), joint_names=("a",) * 3, embodiment="fullbody")
    with pytest.raises(MotionError, match="joint_names has 3 entries for 4 qpos columns"):
        write_clip(path, bad)
    assert np.array_equal(read_clip(path).qpos, second.qpos)
    assert [p.name for p in tmp_path.iterdir()] == ["a.npz"]


def _refused(path: Path, embodiment: mmimic.Embodiment, *reasons: str) -> str:
    with pytest.raises(MotionError) as info:
        MotionLibrary(embodiment, [path])
    message = str(info.value)
    assert str(path) in message
    for reason in reasons:
        assert reason in message, message
    return message


@pytest.mark.parametrize(
    "edit, reasons",
    [
        ("nan", ["NaN/inf", "frame 3", "'knee_angle_r'"]),
        ("missing_joint", ["missing joint(s)", "knee_angle_r", "ankle_angle_l"]),
        ("quaternion", ["joint 'root' quaternion is not unit", "norm 1.1"]),
        ("one_frame", ["1 frame(s); a clip needs at least 2"]),
        ("zero_fps", ["fps must be a positive number, got 0.0"]),
        ("negative_fps", ["fps must be a positive number, got -30.0"]),
        ("wrong_embodiment", ["made for embodiment 'bimanual', not 'fullbody'"]),
    ],
)
def test_bad_clip_is_refused_with_path_and_reason(tmp_path: Path, fullbody: mmimic.Embodiment, edit: str, reasons: list[str]) -> None:
    clip = walking_like_clip(fullbody)
    m = fullbody.mj_model
    if edit == "nan":
        clip.qpos[3, m.jnt_qposadr[m.joint("knee_angle_r").id]] = np.nan
    elif edit == "missing_joint":
        drop = {m.jnt_qposadr[m.joint(j).id] for j in ("knee_angle_r", "ankle_angle_l")}
        keep = [i for i in range(m.nq) if i not in drop]
        clip = MotionClip(clip.fps, clip.qpos[:, keep], tuple(clip.joint_names[i] for i in keep), clip.embodiment)
    elif edit == "quaternion":
        clip.qpos[5, 3:7] *= 1.1
    elif edit == "one_frame":
        clip.qpos = clip.qpos[:1]
    elif edit == "zero_fps":
        clip.fps = 0.0
    elif edit == "negative_fps":
        clip.fps = -30.0
    elif edit == "wrong_embodiment":
        clip.embodiment = "bimanual"
    path = tmp_path / f"{edit}.npz"
    write_clip(path, clip)
    _refused(path, fullbody, *reasons)


def test_every_problem_of_a_clip_is_reported(tmp_path: Path, fullbody: mmimic.Embodiment) -> None:
    clip = walking_like_clip(fullbody)
    clip.fps = -1.0
    clip.qpos[2, 10] = np.inf
    clip.embodiment = "other"
    write_clip(tmp_path / "bad.npz", clip)
    problems = check_clip(tmp_path / "bad.npz", fullbody)
    assert len(problems) == 3 and any("fps" in p for p in problems) and any("inf" in p for p in problems)


def test_nearly_unit_quaternion_is_normalised(tmp_path: Path, fullbody: mmimic.Embodiment) -> None:
    clip = walking_like_clip(fullbody)
    clip.qpos[:, 3:7] *= 1.0005
    write_clip(tmp_path / "a.npz", clip)
    library = MotionLibrary(fullbody, [tmp_path])
    np.testing.assert_allclose(library.qpos[:, 3:7].norm(dim=1).numpy(), 1.0, atol=1e-6)


def test_unreadable_files_are_refused(tmp_path: Path, fullbody: mmimic.Embodiment) -> None:
    garbage = tmp_path / "garbage.npz"
    garbage.write_bytes(b"\x00\x01 not a zip archive at all")
    _refused(garbage, fullbody, "not a readable .npz clip")
    text = tmp_path / "text.npz"
    text.write_text("time qpos\n0 1\n")
    _refused(text, fullbody, "not a readable .npz clip")
    array = tmp_path / "array.npy"
    np.save(array, np.zeros((3, 3)))
    _refused(array, fullbody, "a single .npy array, not an archive")
    _refused(tmp_path / "missing.npz", fullbody, "no such file or directory")
    fields = tmp_path / "fields.npz"
    np.savez(fields, fps=np.float64(100.0), qpos=np.zeros((3, 89), np.float32))
    _refused(fields, fullbody, "missing field 'embodiment'", "missing field 'joint_names'")
    empty = tmp_path / "empty"
    empty.mkdir()
    _refused(empty, fullbody, "no .npz clips in this directory")


def test_fingers_are_dropped_or_filled_and_said_once(
    tmp_path: Path, fullbody: mmimic.Embodiment, bimanual: mmimic.Embodiment, caplog: pytest.LogCaptureFixture
) -> None:
    with_fingers = mmimic.load_embodiment("fullbody", remove_fingers=False)
    assert with_fingers.mj_model.nq == fullbody.mj_model.nq + 40
    write_clip(tmp_path / "fingers" / "a.npz", walking_like_clip(with_fingers))
    library = MotionLibrary(fullbody, [tmp_path / "fingers"])
    assert library.qpos.shape == (20, fullbody.mj_model.nq)

    # Arms without fingers (two clips) into the bimanual arm, whose fingers stay.
    arms = tmp_path / "arms"
    for seed in (0, 1):
        full = walking_like_clip(fullbody, seed=seed)
        keep = [i for i, n in enumerate(full.joint_names) if n in bimanual.joint_names]
        write_clip(arms / f"c{seed}.npz", MotionClip(100.0, full.qpos[:, keep], tuple(full.joint_names[i] for i in keep), "bimanual"))
    with caplog.at_level(logging.INFO, logger="mmimic"):
        library = MotionLibrary(bimanual, [arms])
    fill = [r for r in caplog.records if "rest pose qpos0" in r.getMessage()]
    assert len(fill) == 1 and "2 clip(s)" in fill[0].getMessage() and "cmc_flexion_r" in fill[0].getMessage()
    m = bimanual.mj_model
    finger = m.jnt_qposadr[m.joint("mcp2_flexion_r").id]
    elbow = m.jnt_qposadr[m.joint("elbow_flex_r").id]
    assert np.all(library.qpos[:, finger].numpy() == np.float32(m.qpos0[finger]))
    assert library.qpos[:, elbow].std() > 0.01


def test_manifest_weights_splits_and_problems(tmp_path: Path, fullbody: mmimic.Embodiment) -> None:
    for name in ("a", "b", "c"):
        write_clip(tmp_path / f"{name}.npz", walking_like_clip(fullbody))
    (tmp_path / "manifest.toml").write_text(
        '[clips.a]\nweight = 3.0\nsplit = "train"\n[clips.b]\nsplit = "test"\ndescription = "held out"\n'
    )
    library = MotionLibrary(fullbody, [tmp_path])
    assert library.clip_names == [f"{tmp_path.name}/{n}" for n in "abc"]
    np.testing.assert_allclose(library.clip_weight.numpy(), [0.6, 0.2, 0.2])
    assert MotionLibrary(fullbody, [tmp_path], split="train").num_clips == 2
    assert MotionLibrary(fullbody, [tmp_path], split="test").clip_names == [f"{tmp_path.name}/b"]

    (tmp_path / "manifest.toml").write_text('[clips.a]\nsplit = "test"\n[clips.b]\nsplit = "test"\n[clips.c]\nsplit = "test"\n')
    with pytest.raises(MotionError, match="no clips with split 'train'"):
        MotionLibrary(fullbody, [tmp_path], split="train")
    (tmp_path / "manifest.toml").write_text('[clips.a]\nweight = -1\nsplit = "dev"\n[clips.zzz]\n')
    with pytest.raises(MotionError) as info:
        MotionLibrary(fullbody, [tmp_path])
    for reason in ("manifest.toml", "clips.a.weight must be a finite number >= 0", "clips.a.split must be one of", "clips.zzz names a clip with no file"):
        assert reason in str(info.value)


def test_clip_columns_follow_model_joints(fullbody: mmimic.Embodiment) -> None:
    names = column_names(fullbody.mj_model)
    m = fullbody.mj_model
    assert len(names) == m.nq
    for j in range(m.njnt):
        assert names[m.jnt_qposadr[j]] == m.joint(j).name
    assert m.jnt_type[0] == mujoco.mjtJoint.mjJNT_FREE
