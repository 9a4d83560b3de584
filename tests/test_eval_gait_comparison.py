"""The gait comparison: the shipped walking clip replayed in MyoFullBody against its OpenSim trial,
the experimental loaders and their errors, and the simulated-rollout side."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from mmimic.eval.comparison import compare_gait
from mmimic.eval.gait import EMG_TO_MUSCLES, GaitData, GaitDataError
from mmimic.eval.human_data import load_experiment, load_gait120, load_opensim_trial
from mmimic.eval.model_gait import replay_gait, simulated_gait
from mmimic.io.opensim import read_opensim_table
from mmimic.motion import fit_clip, read_clip
from mmimic.motion.resample import differentiate

REPO = Path(__file__).resolve().parent.parent
TRIAL = REPO / "motions" / "sources" / "opensim_moco_walk"
CLIP = REPO / "motions" / "fullbody" / "opensim_walk.npz"
FORCE_PLATE_RIGHT_HS = (0.267, 1.412)
FORCE_PLATE_LEFT_HS = 0.836


@pytest.fixture(scope="module")
def trial() -> GaitData:
    return load_opensim_trial(TRIAL)


@pytest.fixture(scope="module")
def clip(fullbody):
    return fit_clip(read_clip(CLIP), fullbody, CLIP)


def write_table(path: Path, time: np.ndarray, columns: dict[str, np.ndarray], in_degrees: bool = False) -> None:
    """A minimal OpenSim table."""
    labels = ["time", *columns]
    rows = np.column_stack([time, *columns.values()])
    degrees = "yes" if in_degrees else "no"
    header = f"{path.stem}\nversion=1\nnRows={len(time)}\nnColumns={len(labels)}\ninDegrees={degrees}\nendheader\n"
    body = "\n".join("\t".join(f"{v:.10g}" for v in row) for row in rows)
    path.write_text(header + "\t".join(labels) + "\n" + body + "\n")


def copy_table(source: Path, target: Path, drop: tuple[str, ...] = (), every: int = 1) -> None:
    table = read_opensim_table(source, strict=False)
    columns = {label: table.data[::every, i] for i, label in enumerate(table.labels) if label not in drop}
    write_table(target, table.time[::every], columns, table.in_degrees)


# ---------------------------------------------------------------------- must show


def test_replayed_clip_matches_force_plate_events_and_coordinates(fullbody, clip, trial) -> None:
    replay = replay_gait(fullbody, clip.qpos, clip.fps, "opensim_walk")
    right = replay.events["r"].heel_strikes
    assert len(right) == 2
    assert np.abs(right - FORCE_PLATE_RIGHT_HS).max() < 0.020
    assert np.abs(replay.events["l"].heel_strikes - FORCE_PLATE_LEFT_HS).min() < 0.020
    # the trial's own events, from its force plates
    assert np.abs(trial.events["r"].heel_strikes - FORCE_PLATE_RIGHT_HS).max() < 0.001

    comparison = compare_gait(replay, trial, side="r")
    assert comparison.sim_strides == 1 and comparison.exp_strides == 1
    for joint in ("hip_flexion_r", "knee_angle_r", "ankle_angle_r"):
        assert comparison.angles[joint].pearson_r >= 0.99, joint
    assert not comparison.grf and not comparison.emg  # a replay has neither
    assert any("no forces" in note for note in comparison.notes)


# ---------------------------------------------------------------------- experimental loaders


def test_opensim_trial_loader(trial) -> None:
    assert trial.kind == "experiment"
    assert set(trial.emg) == set(EMG_TO_MUSCLES)
    assert trial.body_mass == pytest.approx(85.3, abs=0.5)  # estimated from the plates
    peak = trial.grf["r"][:, 0].max() / (trial.body_mass * 9.81)
    assert 1.0 < peak < 1.3  # the first vertical peak of walking, in body weights
    joined = " ".join(trial.notes)
    assert "coordinates_full_trial_100hz.mot, the longest" in joined
    assert "nColumns=40" in joined  # the stale header of coordinates.sto, trusted and said
    assert "resampled to 2000 Hz" in joined
    assert load_opensim_trial(TRIAL, body_mass=84.0).body_mass == 84.0


def gait120_step(directory: Path, step: str, *, emg_every: int = 1, drop_ik: tuple[str, ...] = ()) -> None:
    copy_table(TRIAL / "coordinates_full_trial_100hz.mot", directory / f"{step}_ik.mot", drop=drop_ik)
    shutil.copy(TRIAL / "grf_walk.mot", directory / f"{step}_grf.mot")
    copy_table(TRIAL / "electromyography.sto", directory / f"{step}_emg.sto", every=emg_every)


def test_gait120_directory_resamples_a_different_rate_and_says_so(tmp_path: Path, trial) -> None:
    gait120_step(tmp_path, "step01")
    gait120_step(tmp_path, "step02", emg_every=2)  # EMG at 1000 Hz
    steps = load_experiment(tmp_path)
    assert [s.name for s in steps] == ["step01", "step02"]
    assert not any("step01_emg" in n for n in steps[0].notes)
    assert any("step02_emg.sto: sampled at 1000 Hz, resampled to 2000 Hz" in n for n in steps[1].notes)
    assert np.allclose(steps[1].emg["soleus"], steps[0].emg["soleus"], atol=0.02)
    comparison = compare_gait(trial, steps)  # one stride against two
    assert comparison.exp_strides == 2 and comparison.angles["knee_angle_r"].exp_sd is not None


def test_missing_column_names_file_and_column(tmp_path: Path) -> None:
    gait120_step(tmp_path, "step01", drop_ik=("knee_angle_r",))
    with pytest.raises(GaitDataError, match=r"step01_ik\.mot: inverse-kinematics table lacks column\(s\) knee_angle_r"):
        load_gait120(tmp_path)


def test_unrecognised_inputs(tmp_path: Path) -> None:
    with pytest.raises(GaitDataError, match="must be a directory"):
        load_experiment(tmp_path / "nothing.mot")
    (tmp_path / "notes.txt").write_text("hello")
    with pytest.raises(GaitDataError, match="no .mot/.sto table of inverse-kinematics"):
        load_experiment(tmp_path)
    (tmp_path / "broken.mot").write_text("no header at all\n1 2 3\n")
    with pytest.raises(GaitDataError, match="broken.mot: no 'endheader'"):
        load_experiment(tmp_path)
    step = tmp_path / "g120"
    step.mkdir()
    copy_table(TRIAL / "coordinates_full_trial_100hz.mot", step / "s1_ik.mot")
    with pytest.raises(GaitDataError, match="s1_ik.mot but no s1_grf.mot"):
        load_experiment(step)


def test_strideless_trial_is_a_clear_error(tmp_path: Path, trial) -> None:
    grf = read_opensim_table(TRIAL / "grf_walk.mot")
    keep = grf.time < 1.2  # one right heel strike only
    write_table(tmp_path / "grf.mot", grf.time[keep], {c: grf.data[keep, i] for i, c in enumerate(grf.labels)})
    shutil.copy(TRIAL / "coordinates_full_trial_100hz.mot", tmp_path)
    short = load_opensim_trial(tmp_path)
    with pytest.raises(GaitDataError, match=r"no complete right stride: heel strikes at \[0.267\] s"):
        compare_gait(trial, short)


# ---------------------------------------------------------------------- the simulated side


def test_simulated_gait_forces_events_and_activations(fullbody, clip, trial) -> None:
    """The replayed states as if simulated: contact forces of MuJoCo C, events from them, and
    EMG channels as mean activations of their muscles; the comparison covers every group."""
    model = fullbody.mj_model
    qvel = differentiate(model, clip.qpos, clip.fps)
    rng = np.random.default_rng(0)
    act = rng.uniform(0.0, 1.0, (clip.qpos.shape[0], model.na))
    sim = simulated_gait(fullbody, clip.qpos, qvel, act, clip.fps, "states")
    assert sim.body_mass == pytest.approx(84.27, abs=0.01)
    vertical = sim.grf["r"][:, 0]
    assert vertical.min() >= 0.0 and vertical.max() > 100.0  # the floor pushes up
    assert len(sim.events["r"].heel_strikes) >= 2
    muscles = [fullbody.muscle_names.index(m) for m in EMG_TO_MUSCLES["gastrocnemius"]]
    assert np.allclose(sim.emg["gastrocnemius"], act[:, muscles].mean(axis=1))

    comparison = compare_gait(sim, trial)
    assert set(comparison.grf) == {"vertical", "fore_aft"}
    assert set(comparison.emg) == set(EMG_TO_MUSCLES)
    summary = comparison.summary()
    assert summary["grf_body_weight"]["mean_r"] is not None
    left = compare_gait(sim, sim, side="l")  # right-leg EMG over left-foot cycles would mislead
    assert left.grf and not left.emg and any("right-leg muscles" in note for note in left.notes)
    with pytest.raises(GaitDataError, match="act must be"):
        simulated_gait(fullbody, clip.qpos, qvel, act[:, :3], clip.fps)
