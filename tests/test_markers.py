"""Markers to motion: TRC/C3D trials through registration and marker IK, against OpenSim's own IK."""

from __future__ import annotations

import json
import re
from pathlib import Path

import mujoco
import numpy as np
import pytest
from runner_scripts import load_runner

import mmimic
import mmimic.embodiment
from mmimic.io.c3d import read_force_plates
from mmimic.io.markers import MarkerTrial
from mmimic.io.opensim import read_opensim_table
from mmimic.motion import read_clip
from mmimic.retarget import RetargetError
from mmimic.retarget.marker_ik import prepare_markers, read_trial, solve_markers
from mmimic.retarget.markers import read_ik_tasks, read_marker_set

REPO = Path(__file__).resolve().parents[1]
MOCO = REPO / "motions/sources/opensim_moco_walk"
C3D = REPO / "motions/sources/opensim_c3d_walk/test_walking.c3d"
VICON_MAP = REPO / "models/markers/vicon_lower_body.toml"


@pytest.fixture(scope="module")
def body(fullbody):
    return fullbody.mj_model, fullbody.initial_qpos()


@pytest.fixture(scope="module")
def moco(body):
    model, _ = body
    trial = read_trial(MOCO / "markers_walk.trc")
    marker_set = read_marker_set(MOCO / "subject_walk_scaled.osim", model)
    tasks, _ = read_ik_tasks(MOCO / "ik_tasks_walk.xml")
    return trial, marker_set, tasks


def _compare(model, qpos, reference: Path, start: float, bounds) -> dict[str, tuple[float, float]]:
    """(r, RMSE deg) per joint of `qpos` (100 Hz from `start` s) against an OpenSim IK table, checked against `bounds`."""
    table = read_opensim_table(reference).resample(start + np.arange(len(qpos)) / 100.0)
    found = {}
    for name, min_r, max_rmse in bounds:
        for side in ("r", "l"):
            joint = f"{name}_{side}"
            ours, theirs = qpos[:, model.jnt_qposadr[model.joint(joint).id]], table.radians(joint)
            found[joint] = (float(np.corrcoef(ours, theirs)[0, 1]), float(np.degrees(np.sqrt(np.mean((ours - theirs) ** 2)))))
            assert found[joint][0] >= min_r, (reference.name, joint, found[joint])
            if max_rmse is not None:
                assert found[joint][1] <= max_rmse, (reference.name, joint, found[joint])
    return found


@pytest.fixture
def runner(monkeypatch, fullbody):
    monkeypatch.setattr(mmimic.embodiment, "load_embodiment", lambda name: fullbody)
    return load_runner("retarget")


def test_trc_walk_follows_opensim_ik(body, runner, tmp_path):
    """The Moco walk's markers through runners/retarget.py (no static trial: registered on the
    first second) against OpenSim's IK with the same model, markers and task set (OpenSim 4.6,
    shipped: SOURCE.md), and against the upstream coordinates_full_trial_100hz.mot (the issue's
    bounds). The latter does not fit this model's markers (its pose misses the PSIS markers by
    2.6-3.5 cm, its pelvis tilt is 6.1 deg RMS off OpenSim 4.6's IK of them, whose right hip
    flexion is 7.7 deg RMS off it), so its right hip is the tightest bound (docs/retargeting.md)."""
    model, _ = body
    out = tmp_path / "out"
    argv = [str(MOCO / "markers_walk.trc"), "--markers", str(MOCO / "subject_walk_scaled.osim"),
            "--ik-tasks", str(MOCO / "ik_tasks_walk.xml"), "--embodiment", "fullbody", "--out", str(out)]
    assert runner.main(argv) == 0
    (entry,) = json.loads((out / "report.json").read_text())["clips"]
    metrics, errors = entry["metrics"], entry["details"]["marker_errors_m"]
    assert metrics["marker_rmse_m"] < 0.012 and metrics["marker_max_error_m"] < 0.05
    assert errors["R.ASIS"]["rms_m"] <= errors["R.ASIS"]["max_m"] < 0.04 and errors["R.ASIS"]["missing_frames"] == 0
    assert any("subtalar_angle_r" in note for note in entry["details"]["notes"])  # welded in the model, held
    qpos = read_clip(out / "markers_walk.npz").qpos.astype(np.float64)
    bounds = [("hip_flexion", 0.95, 6.0), ("knee_angle", 0.95, 6.0), ("ankle_angle", 0.98, None)]
    _compare(model, qpos, MOCO / "ik_opensim46_scaled_model.mot", 0.0, bounds)
    bounds[2] = ("ankle_angle", 0.9, None)
    _compare(model, qpos, MOCO / "coordinates_full_trial_100hz.mot", 0.0, bounds)


def test_locked_coordinates_are_held_at_their_myofullbody_joints(body, tmp_path):
    """A locked OpenSim coordinate is held at the MyoFullBody joint COORDINATE_TO_JOINT maps it to
    (lumbar_extension -> flex_extension at default / 1.875); one the body lacks is named, not held."""
    model, _ = body
    text = (MOCO / "subject_walk_scaled.osim").read_text()
    for name, value in (("lumbar_extension", "0.3"), ("pelvis_tilt", "0.1")):
        start = text.index(f'<Coordinate name="{name}">')
        end = text.index("</Coordinate>", start)
        block = re.sub(r"<locked>\s*\w+\s*</locked>", "<locked>true</locked>", text[start:end])
        block = re.sub(r"<default_value>[^<]*</default_value>", f"<default_value>{value}</default_value>", block)
        text = text[:start] + block + text[end:]
    path = tmp_path / "locked.osim"
    path.write_text(text)
    marker_set = read_marker_set(path, model)
    assert marker_set.held["flex_extension"] == pytest.approx(0.3 / 1.875)
    assert "lumbar_extension" not in marker_set.held
    assert any("pelvis_tilt have no joint in the body" in note for note in marker_set.notes)


def test_runner_refuses_markers_without_a_marker_set(runner, capsys, tmp_path):
    out = tmp_path / "out"
    assert runner.main([str(C3D), "--embodiment", "fullbody", "--out", str(out)]) == 1
    assert "--markers" in capsys.readouterr().err
    assert not out.exists()


def _foot_positions(model: mujoco.MjModel, qpos: np.ndarray) -> np.ndarray:
    data = mujoco.MjData(model)
    feet = [model.body("calcn_l").id, model.body("calcn_r").id]
    out = np.empty((len(qpos), 2, 3))
    for t, q in enumerate(qpos):
        data.qpos[:] = q
        mujoco.mj_kinematics(model, data)
        out[t] = data.xpos[feet]
    return out


def test_c3d_vicon_walk_walks_and_plates_read(body):
    model, rest = body
    marker_set = read_marker_set(VICON_MAP, model)
    trial = read_trial(C3D)
    assert trial.fps == 250.0 and len(trial.labels) == 40
    motion = prepare_markers(trial, marker_set, model, rest)
    qpos, _, metrics = solve_markers(motion, model, rest, 100.0)
    assert metrics["marker_rmse_m"] < 0.025
    feet = _foot_positions(model, qpos)
    travel = qpos[-1, :2] - qpos[0, :2]
    direction = travel / np.linalg.norm(travel)
    speed = np.linalg.norm(travel) / ((len(qpos) - 1) / 100.0)
    assert 0.5 < speed < 2.0  # m/s, a walk on the unscaled body
    lead = (feet[:, 0, :2] - feet[:, 1, :2]) @ direction  # left ahead of right > 0
    changes = np.flatnonzero(np.diff(np.sign(lead)) != 0)
    assert len(changes) >= 3  # the feet alternate (4 times in these 1.9 s)
    # the heels' lead (m) as the subject's heel markers show it, on the unscaled body
    heels = motion.positions[:, [motion.labels.index("LCAL"), motion.labels.index("RCAL")], :2]
    marked = ((heels[:, 0] - heels[:, 1]) @ direction) / motion.leg_scale
    assert abs(lead.max() - np.nanmax(marked)) < 0.05 and abs(lead.min() - np.nanmin(marked)) < 0.05
    plates = read_force_plates(C3D)
    assert plates.vertical.shape[0] == 2 and plates.rate == 2000.0
    peaks = plates.vertical.max(axis=1)
    assert np.all((peaks > 500) & (peaks < 1500))


def _trial(source: MarkerTrial, positions: np.ndarray | None = None, labels: list[str] | None = None) -> MarkerTrial:
    labels = labels or list(source.labels)
    columns = [source.labels.index(label) for label in labels]
    return MarkerTrial(source.path, source.fps, labels,
                       source.positions[:, columns].copy() if positions is None else positions, 0.0, [])


def test_bad_marker_input(body, moco, tmp_path):
    model, rest = body
    trial, marker_set, tasks = moco
    bare = tmp_path / "bare.osim"
    bare.write_text("<OpenSimDocument><Model name='m'><BodySet/></Model></OpenSimDocument>")
    with pytest.raises(RetargetError, match="MarkerSet"):
        read_marker_set(bare, model)
    wrong = tmp_path / "wrong.toml"
    wrong.write_text('[markers.LASI]\nbody = "hip_bone_l"\nlocation = [0, 0, 0]\n')
    with pytest.raises(RetargetError, match="hip_bone_l"):
        read_marker_set(wrong, model)
    without_knee = _trial(trial, labels=[label for label in trial.labels if label != "R.Knee"])
    with pytest.raises(RetargetError, match="R.Knee"):
        prepare_markers(without_knee, marker_set, model, rest, tasks, static=_trial(trial))
    gap = trial.positions.copy()
    for label in ("R.ASIS", "L.ASIS", "R.PSIS", "L.PSIS"):
        gap[100:110, trial.labels.index(label)] = np.nan
    with pytest.raises(RetargetError, match="frames 101-110"):
        prepare_markers(_trial(trial, gap), marker_set, model, rest, tasks)
    gap = trial.positions.copy()
    gap[50:60, trial.labels.index("R.Knee")] = np.nan
    motion = prepare_markers(_trial(trial, gap), marker_set, model, rest, tasks)
    assert any("R.Knee 10" in note for note in motion.notes)
    _, details, _ = solve_markers(motion, model, rest, 100.0)
    assert details["marker_errors_m"]["R.Knee"]["missing_frames"] == 10


def test_c3d_plates_per_foot_for_gait_comparison(monkeypatch, fullbody):
    """The C3D trial's plates go to the foot standing on them (checked against the feet's own
    marker speeds: the loaded foot is the still one) and reach the gait comparison."""
    from mmimic.eval.gait import GaitDataError
    from mmimic.eval.human_data import load_experiment

    monkeypatch.setattr(mmimic, "load_embodiment", lambda name: fullbody)
    (trial,) = load_experiment(C3D, body_mass=70.0)
    assert trial.angles == {} and set(trial.grf) == {"l", "r"}
    markers = read_trial(C3D)
    plates = read_force_plates(C3D)
    for plate, side in ((0, "l"), (1, "r")):
        loaded = np.interp(trial.time, plates.time, plates.vertical[plate]) > 100.0
        np.testing.assert_allclose(trial.grf[side][loaded, 0], np.interp(trial.time, plates.time, plates.vertical[plate])[loaded],
                                   rtol=1e-6)
        speed = {s: np.nanmedian(np.linalg.norm(np.gradient(markers.marker(f"{s.upper()}CAL")[:, :2], axis=0),
                                                axis=1)[loaded]) * markers.fps for s in ("l", "r")}
        other = "r" if side == "l" else "l"
        assert speed[side] < 0.2 < speed[other], (plate, speed)
        assert len(trial.events[side].heel_strikes) == 1
    with pytest.raises(GaitDataError, match="no complete"):
        trial.stride_windows("r")  # one plate strike per foot: no heel-strike-to-heel-strike stride


def test_c3d_experiment_takes_the_labs_marker_set(monkeypatch, fullbody, tmp_path):
    """A C3D experiment's feet are told apart by the marker set given with --markers: a set whose
    labels the trial lacks is refused naming the flag; a directory experiment refuses the flag."""
    from mmimic.eval.gait import GaitDataError
    from mmimic.eval.human_data import load_experiment

    monkeypatch.setattr(mmimic, "load_embodiment", lambda name: fullbody)
    other_lab = tmp_path / "other_lab.toml"
    other_lab.write_text('[markers.RHEEL]\nbody = "calcn_r"\nlocation = [0.0, 0.0, 0.0]\n')
    with pytest.raises(GaitDataError, match=r"right foot markers of other_lab.toml.*--markers"):
        load_experiment(C3D, body_mass=70.0, markers=other_lab)
    with pytest.raises(GaitDataError, match="C3D experiment only"):
        load_experiment(tmp_path, markers=other_lab)


def test_static_trial_registration_agrees_with_first_frames(body, moco):
    """Registering on a static trial (here 0.3 s of the walk's middle, every marker seen) gives
    the legs the scale the first-frames registration gives, and the same markers placed."""
    model, rest = body
    trial, marker_set, tasks = moco
    static = MarkerTrial(trial.path.with_name("static.trc"), trial.fps, list(trial.labels),
                         trial.positions[100:130].copy(), 0.0, [])
    from_static = prepare_markers(trial, marker_set, model, rest, tasks, static=static)
    from_start = prepare_markers(trial, marker_set, model, rest, tasks)
    assert any("static trial static.trc" in note for note in from_static.notes)
    assert from_static.leg_scale == pytest.approx(from_start.leg_scale, rel=0.02)
    assert from_static.labels == from_start.labels
    for a, b in zip(from_static.markers, from_start.markers):
        assert np.linalg.norm(a.location - b.location) < 0.03, a.label


def test_trc_units_axes_and_header_checks(tmp_path):
    """The same markers written in metres read equal to the millimetre file; y-up becomes z-up
    (the pelvis markers stand about 1 m high); a header that disagrees with the data is refused."""
    source = MOCO / "markers_walk.trc"
    mm = read_trial(source)
    lines = source.read_text().splitlines()
    rows = []
    for line in lines[5:]:
        fields = line.split("\t")
        rows.append("\t".join(fields[:2] + [f"{float(v) / 1000:.9f}" if v.strip() else "" for v in fields[2:]]))
    metres = tmp_path / "metres.trc"
    metres.write_text("\n".join([*lines[:2], lines[2].replace(" mm", " m"), *lines[3:5], *rows]) + "\n")
    np.testing.assert_allclose(read_trial(metres).positions, mm.positions, atol=1e-9)
    pelvis = mm.positions[:, [mm.labels.index(k) for k in ("R.ASIS", "L.ASIS", "R.PSIS", "L.PSIS")], 2]
    assert 0.85 < pelvis.mean() < 1.15
    assert np.allclose(read_trial(source, "z").positions[..., 1], mm.positions[..., 2])
    wrong = tmp_path / "wrong.trc"
    wrong.write_text("\n".join([*lines[:2], lines[2].replace("41", "40", 1), *lines[3:]]) + "\n")
    with pytest.raises(RetargetError, match="NumMarkers"):
        read_trial(wrong)


def test_cluster_marker_unseen_at_registration_is_refused(body):
    """A marker without a location must be seen in the registration frames to be placed."""
    model, rest = body
    trial = read_trial(C3D)
    positions = trial.positions.copy()
    positions[:, trial.labels.index("LTH1")] = np.nan
    blind = MarkerTrial(trial.path, trial.fps, list(trial.labels), positions, 0.0, [])
    with pytest.raises(RetargetError, match="LTH1 have no location"):
        prepare_markers(blind, read_marker_set(VICON_MAP, model), model, rest)


def test_c3d_events_come_from_the_file(monkeypatch, fullbody, tmp_path):
    """Foot strike/off events written in the C3D (EVENT group, minutes and seconds) are the
    trial's events; without them the plates' force decides (the test above)."""
    import ezc3d

    from mmimic.eval.human_data import load_experiment

    c3d = ezc3d.c3d(str(C3D))
    c3d.add_parameter("EVENT", "USED", [2])
    c3d.add_parameter("EVENT", "LABELS", ["Foot Strike", "Foot Off"])
    c3d.add_parameter("EVENT", "CONTEXTS", ["Left", "Right"])
    c3d.add_parameter("EVENT", "TIMES", np.array([[0.0, 0.0], [1.3, 2.2]]))
    path = tmp_path / "with_events.c3d"
    c3d.write(str(path))
    plates = read_force_plates(path)
    assert set(plates.events) == {"Left Foot Strike", "Right Foot Off"}
    monkeypatch.setattr(mmimic, "load_embodiment", lambda name: fullbody)
    (trial,) = load_experiment(path, body_mass=70.0)
    np.testing.assert_allclose(trial.events["l"].heel_strikes, [1.3], atol=1e-5)
    np.testing.assert_allclose(trial.events["r"].toe_offs, [2.2], atol=1e-5)
    assert not any("from the plates" in note for note in trial.notes)
