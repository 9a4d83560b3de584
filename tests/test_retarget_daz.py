"""The Daz/Aiko3 BVH naming, the T-pose drop and the frame-rate override (on a shipped excerpt of
CMU 02_01, `tests/data/cmu_daz/`), the source catalog and the shipped CMU motion sets."""

from __future__ import annotations

import hashlib
import json
import shutil
import tomllib
from pathlib import Path

import numpy as np
import pytest
from runner_scripts import load_runner

from mmimic.motion.clip import MotionError, read_clip
from mmimic.motion.manifest import MANIFEST, collect_clips, manifest_problems, write_manifest
from mmimic.retarget import RetargetError, read_bvh, read_name_map
from mmimic.retarget.bvh import DAZ_MAP
from mmimic.retarget.catalog import assign_splits, check_sources, read_catalog

REPO = Path(__file__).resolve().parents[1]
EXCERPT = REPO / "tests/data/cmu_daz/02_01_excerpt.bvh"
CATALOG = REPO / "motions/sources/cmu_daz_bvh/clips.toml"
MAPPED = {  # canonical keypoint -> Daz joint, written out here rather than taken from DAZ_MAP
    "hip_l": "lThigh", "knee_l": "lShin", "ankle_l": "lFoot", "toe_l": "lFoot_End",
    "shoulder_l": "lShldr", "elbow_l": "lForeArm", "wrist_l": "lHand", "hand_l": "lMid1",
    "hip_r": "rThigh", "knee_r": "rShin", "ankle_r": "rFoot", "toe_r": "rFoot_End",
    "shoulder_r": "rShldr", "elbow_r": "rForeArm", "wrist_r": "rHand", "hand_r": "rMid1",
}


def _axis_rotation(axis: str, degrees: float) -> np.ndarray:
    c, s = np.cos(np.radians(degrees)), np.sin(np.radians(degrees))
    return {
        "X": np.array([[1, 0, 0], [0, c, -s], [0, s, c]]),
        "Y": np.array([[c, 0, s], [0, 1, 0], [-s, 0, c]]),
        "Z": np.array([[c, -s, 0], [s, c, 0], [0, 0, 1]]),
    }[axis]


def _bvh_world_positions(path: Path) -> tuple[list[dict[str, np.ndarray]], float]:
    """Every file frame's joint (and End Site) positions in the file's own units and axes, by a
    plain recursive BVH walk written for this test (BVH: each joint's rotation is the product of
    its channel rotations in the listed order; End Sites named `<parent>_End`)."""
    head, _, motion = path.read_text().partition("MOTION")
    tokens = head.split()
    joints: list[tuple[str, str | None, np.ndarray, list[str]]] = []
    stack: list[str] = []
    i = 0
    while i < len(tokens):
        word = tokens[i]
        if word in ("ROOT", "JOINT"):
            name = tokens[i + 1]
            offset = np.array([float(v) for v in tokens[i + 4 : i + 7]])
            count = int(tokens[i + 8])
            joints.append((name, stack[-1] if stack else None, offset, tokens[i + 9 : i + 9 + count]))
            stack.append(name)
            i += 9 + count
        elif word == "End":
            offset = np.array([float(v) for v in tokens[i + 4 : i + 7]])
            joints.append((f"{stack[-1]}_End", stack[-1], offset, []))
            i += 8
        elif word == "}":
            stack.pop()
            i += 1
        else:
            i += 1
    lines = [line for line in motion.strip().splitlines() if line.strip()]
    frame_time = float(lines[1].split(":")[1])
    frames = []
    for line in lines[2:]:
        values = iter(float(v) for v in line.split())
        world: dict[str, tuple[np.ndarray, np.ndarray]] = {}
        for name, parent, offset, channels in joints:
            rotation, position = np.eye(3), offset.copy()
            for channel in channels:
                value = next(values)
                if channel.endswith("rotation"):
                    rotation = rotation @ _axis_rotation(channel[0], value)
                elif parent is None:
                    position["XYZ".index(channel[0])] = value
            if parent is not None:
                parent_rot, parent_pos = world[parent]
                position, rotation = parent_pos + parent_rot @ offset, parent_rot @ rotation
            world[name] = (rotation, position)
        frames.append({name: pos for name, (_, pos) in world.items()})
    return frames, frame_time


def test_daz_name_map_keypoints_match_the_files_own_kinematics() -> None:
    motion = read_bvh(EXCERPT)  # no name map given: the built-in Daz naming is recognised
    assert "Daz/Aiko3" in motion.reader
    frames, _ = _bvh_world_positions(EXCERPT)
    assert set(MAPPED) == set(motion.positions)
    for t in (0, 29, motion.num_frames - 1):
        for keypoint, joint in MAPPED.items():
            x, y, z = frames[t + 5][joint] / 100.0  # file frame t + 5 (T-pose and blend dropped); cm -> m
            np.testing.assert_allclose(motion.positions[keypoint][t], [x, -z, y], atol=1e-9)  # y up -> z up
    # a standing figure: hips above knees above ankles, shoulders above hips (z up, metres)
    first = {k: v[0] for k, v in motion.positions.items()}
    for side in "lr":
        heights = [first[f"{joint}_{side}"][2] for joint in ("shoulder", "hip", "knee", "ankle")]
        assert heights == sorted(heights, reverse=True)
    assert 0.7 < first["hip_l"][2] < 1.1


def test_tpose_and_blend_frames_are_dropped_and_kept_only_when_the_map_says_so(tmp_path: Path) -> None:
    frames, frame_time = _bvh_world_positions(EXCERPT)
    assert len(frames) == 61 and DAZ_MAP.skip_frames == 5
    tpose = frames[0]  # file frame 0: arms straight out at shoulder height (cm, y up)
    assert abs(tpose["lHand"][1] - tpose["lShldr"][1]) < 5 and np.linalg.norm(tpose["lHand"] - tpose["rHand"]) > 120
    wrist = np.array([f["lHand"] for f in frames]) / 100.0
    speed = np.linalg.norm(np.diff(wrist, axis=0), axis=1) / frame_time  # m/s between file frames
    assert speed[:4].min() > 10.0 and speed[5:].max() < 5.0  # frames 1-4 blend out of the T-pose
    motion = read_bvh(EXCERPT)
    assert motion.num_frames == 56
    span = np.linalg.norm(motion.positions["wrist_l"] - motion.positions["wrist_r"], axis=1)
    assert span.max() < 0.8  # every kept frame is walking, arms down

    name_map = tmp_path / "daz_keep_tpose.toml"
    name_map.write_text(
        'scale = 0.01\nskip_frames = 0\n[keypoints]\n' + "".join(f'{k} = "{v}"\n' for k, v in MAPPED.items())
    )
    kept = read_bvh(EXCERPT, read_name_map(name_map))
    assert kept.num_frames == 61
    np.testing.assert_allclose(kept.positions["wrist_l"][5:], motion.positions["wrist_l"], atol=1e-12)
    name_map.write_text(name_map.read_text().replace("skip_frames = 0", "skip_frames = -1"))
    with pytest.raises(RetargetError, match="skip_frames must be a non-negative integer"):
        read_name_map(name_map)


def test_units_and_up_axis_are_checked_against_the_files_rest_pose(tmp_path: Path) -> None:
    keypoints = "[keypoints]\n" + "".join(f'{k} = "{v}"\n' for k, v in MAPPED.items())
    name_map = tmp_path / "map.toml"
    name_map.write_text('scale = 0.01\nup = "z"\n' + keypoints)
    with pytest.raises(RetargetError, match=r"legs run along \+y .* says up = 'z'"):
        read_bvh(EXCERPT, read_name_map(name_map))
    name_map.write_text("scale = 1.0\n" + keypoints)  # centimetres read as metres
    with pytest.raises(RetargetError, match=r"legs are 82 m long .*wrong units\? \(--scale\)"):
        read_bvh(EXCERPT, read_name_map(name_map))
    with pytest.raises(RetargetError, match="wrong units"):
        read_bvh(EXCERPT, scale=0.001)


def test_frame_rate_override() -> None:
    _, frame_time = _bvh_world_positions(EXCERPT)
    header = read_bvh(EXCERPT)
    assert header.fps == pytest.approx(1.0 / frame_time) and header.fps == pytest.approx(120.0, rel=1e-5)
    slow = read_bvh(EXCERPT, fps=60.0)
    assert slow.fps == 60.0
    for keypoint in MAPPED:  # the same poses, at another rate
        np.testing.assert_array_equal(slow.positions[keypoint], header.positions[keypoint])
    with pytest.raises(RetargetError, match="frame-rate override must be positive"):
        read_bvh(EXCERPT, fps=0.0)
    salsa = [c for c in read_catalog(CATALOG).clips if c.label == "dance (salsa)"]
    assert salsa and all(c.fps == 60.0 for c in salsa)  # the upstream readme's rate, not the header's
    assert all(c.fps is None for c in read_catalog(CATALOG).clips if c.label != "dance (salsa)")


def test_catalog_splits_and_source_check(tmp_path: Path) -> None:
    catalog = read_catalog(CATALOG)
    assert len(catalog.clips) == 123
    split = assign_splits(catalog)
    assert split == assign_splits(catalog)
    for category in {c.category for c in catalog.clips}:
        members = [c.name for c in catalog.clips if c.category == category]
        assert sum(split[n] == "test" for n in members) == int(np.floor(0.1 * len(members) + 0.5))
    assert all(split[c.name] == "train" for c in catalog.clips if c.cmu_trial in catalog.train_only)

    raw = tmp_path / "raw"
    raw.mkdir()
    shutil.copy(EXCERPT, raw / "a.bvh")
    digest = hashlib.sha1(EXCERPT.read_bytes()).hexdigest()
    entry = ('file = "a.bvh"\nrepository = "r"\ncommit = "c"\npath = "p"\ncategory = "walk"\ndescription = "d"\n')
    (tmp_path / "c.toml").write_text(f'[clips.ok]\n{entry}sha1 = "{digest}"\n[clips.bad]\n{entry}sha1 = "{"0" * 40}"\n')
    problems = check_sources(read_catalog(tmp_path / "c.toml"), raw)
    assert len(problems) == 1 and "clips.bad" in problems[0] and digest in problems[0]
    (tmp_path / "c.toml").write_text('[clips.x]\nfile = "a.bvh"\ncategory = "Walk"\nfps = -1\n')
    with pytest.raises(RetargetError) as info:
        read_catalog(tmp_path / "c.toml")
    for reason in ("clips.x: missing 'sha1'", "clips.x.category must be a lowercase identifier", "clips.x.fps must be"):
        assert reason in str(info.value)


def test_manifest_category_fields_and_writer(tmp_path: Path) -> None:
    for name in ("a", "b"):
        shutil.copy(REPO / "motions/fullbody/opensim_walk.npz", tmp_path / f"{name}.npz")
    clips = {"a": {"weight": 2.0, "split": "test", "category": "walk", "description": "q \"x\"", "sha1": "a" * 40,
                   "source": "repo@c:p"}}
    write_manifest(tmp_path, clips, "header\nline two")
    assert (tmp_path / MANIFEST).read_text().startswith("# header\n# line two\n")
    a, b = collect_clips([tmp_path])
    assert (a.category, a.split, a.weight, a.description) == ("walk", "test", 2.0, 'q "x"')
    assert (a.sha1, a.source) == ("a" * 40, "repo@c:p")
    assert b.category == "other" and b.split == "train"
    with pytest.raises(MotionError, match="clips.a.category must be a lowercase identifier"):
        write_manifest(tmp_path, {"a": {"category": "Walk Fast"}})
    assert manifest_problems(tmp_path)[1] == []  # the failed write left the manifest as it was


def _shipped(directory: str) -> dict[str, dict]:
    with (REPO / "motions" / directory / MANIFEST).open("rb") as f:
        return tomllib.load(f)["clips"]


def test_shipped_cmu_sets() -> None:
    catalog = read_catalog(CATALOG)
    report = json.loads((CATALOG.parent / "report.json").read_text())
    fullbody, bimanual = _shipped("fullbody"), _shipped("bimanual")
    for name, table, minimum in (("fullbody", fullbody, 100), ("bimanual", bimanual, 60)):
        retargeted = {c.name for c in catalog.clips if c.name in table}
        failed = {e["name"] for e in report[name]["clips"] if not e["passed"]}
        assert len(retargeted) >= minimum
        assert retargeted | failed == {c.name for c in catalog.clips}  # every clip shipped or listed as failing
        for clip in catalog.clips:
            if clip.name in table:
                assert (table[clip.name]["sha1"], table[clip.name]["category"]) == (clip.sha1, clip.category)
    seconds = 0.0
    for name in fullbody:
        with np.load(REPO / "motions/fullbody" / f"{name}.npz") as clip:
            seconds += (len(clip["qpos"]) - 1) / float(clip["fps"])
    assert seconds >= 600.0
    assert sum(entry["split"] == "test" for entry in fullbody.values()) >= 8
    assert {"walk", "run", "jump", "dance", "sport"} <= {entry["category"] for entry in fullbody.values()}


@pytest.mark.slow  # loads both bodies and retargets: about 15 s alone on 2 cores, more under load
def test_build_motions_runner_on_the_excerpt(tmp_path: Path) -> None:
    runner = load_runner("build_motions")
    raw, fullbody, bimanual = (tmp_path / d for d in ("raw", "fullbody", "bimanual"))
    for d in (raw, fullbody, bimanual):
        d.mkdir()
    shutil.copy(EXCERPT, raw / "walk.bvh")
    shutil.copy(REPO / "motions/fullbody/opensim_walk.npz", fullbody)
    (fullbody / MANIFEST).write_text('[clips.opensim_walk]\ncategory = "walk"\n')
    digest = hashlib.sha1(EXCERPT.read_bytes()).hexdigest()
    catalog = tmp_path / "clips.toml"
    catalog.write_text(f'[clips.cmu_02_01]\nfile = "walk.bvh"\nsha1 = "{digest}"\nrepository = "https://github.com/r"\n'
                       'commit = "c"\npath = "02/02_01.bvh"\ncategory = "walk"\ndescription = "walk"\nfps = 60.0\n')
    args = [str(catalog), "--raw", str(raw), "--fullbody", str(fullbody), "--bimanual", str(bimanual)]
    args += ["--arm-motion", "1"]
    assert runner.main(args) == 0
    clip = read_clip(fullbody / "cmu_02_01.npz")
    assert clip.fps == 30.0 and clip.qvel is None
    assert clip.num_frames == int(55 / 60.0 * 30.0 + 1e-9) + 1  # 56 source frames at the 60 fps override
    assert np.all(np.round(clip.qpos.astype(np.float64) * 2**16) == clip.qpos.astype(np.float64) * 2**16)
    assert "may not be resold" in clip.license
    ours, walk = collect_clips([fullbody])
    assert walk.name.endswith("opensim_walk") and walk.category == "walk"  # other clips' entries are kept
    assert (ours.category, ours.split, ours.sha1) == ("walk", "train", digest)
    assert ours.source == "https://github.com/r@c:02/02_01.bvh"
    assert collect_clips([bimanual])[0].category == "walk"
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["fullbody"]["clips"][0]["details"]["source_fps"] == 60.0

    (raw / "walk.bvh").write_text(EXCERPT.read_text().replace("Frames: 61", "Frames: 61 "))
    assert runner.main(args) == 1  # another SHA-1: refused before any work
