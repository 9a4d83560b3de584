"""OpenSim tables of the older kind (SIMM headers, no inDegrees, rounded times, gait2392 knees).

Truth: the two shipped files themselves (motions/sources/opensim_legacy_mot/, SOURCE.md),
parsed here with numpy alone; their facts (degrees, 60 Hz written with 3 decimals, knee
negative in flexion) are stated in SOURCE.md and were checked by hand in the files.
"""

from __future__ import annotations

import json
import logging
import warnings
from pathlib import Path

import numpy as np
import pytest
from runner_scripts import load_runner

from mmimic.io.opensim import (
    OpenSimFormatError,
    OpenSimHeaderWarning,
    OpenSimUnitsWarning,
    read_opensim_table,
)
from mmimic.motion import convert_opensim, read_clip
from mmimic.motion.convert import detect_model

REPO = Path(__file__).resolve().parent.parent
LEGACY = REPO / "motions" / "sources" / "opensim_legacy_mot"
WALK = LEGACY / "subject01_walk1_ik.mot"
RUN = LEGACY / "runningModel_Kinematics_q.sto"
RAJAGOPAL = REPO / "motions" / "sources" / "opensim_moco_walk" / "coordinates_full_trial_100hz.mot"
SOURCE_RATES = {WALK: 60.0, RUN: 1000.0}  # SOURCE.md
COMPARED = [f"{c}_{s}" for c in ("hip_flexion", "knee_angle", "ankle_angle") for s in ("r", "l")]


def _source_radians(path: Path) -> tuple[list[str], np.ndarray]:
    """The file's labels and values with numpy alone: rows after the label line, degrees -> rad
    for the compared coordinates (SOURCE.md: both files are in degrees)."""
    lines = path.read_text().splitlines()
    end = [line.strip() for line in lines].index("endheader")
    labels = lines[end + 1].split("\t")
    data = np.loadtxt(lines[end + 2 :])
    return labels, data


def _follows_source(clip_qpos: np.ndarray, fps: float, path: Path, model) -> dict[str, tuple[float, float]]:
    """(r, RMSE in deg) of each compared joint of a clip against the source, sign-mapped
    (gait2392 knee: flexion negative) and interpolated to the clip's frames on the source's
    nominal rate."""
    labels, data = _source_radians(path)
    source_time = np.arange(len(data)) / SOURCE_RATES[path]
    clip_time = np.arange(len(clip_qpos)) / fps
    assert clip_time[-1] <= source_time[-1] + 1e-9
    out = {}
    for name in COMPARED:
        sign = -1.0 if name.startswith("knee") else 1.0
        truth = sign * np.deg2rad(np.interp(clip_time, source_time, data[:, labels.index(name)]))
        ours = clip_qpos[:, model.jnt_qposadr[model.joint(name).id]].astype(np.float64)
        out[name] = (float(np.corrcoef(truth, ours)[0, 1]), float(np.rad2deg(np.sqrt(np.mean((truth - ours) ** 2)))))
    return out


def test_shipped_with_license_and_source() -> None:
    assert {p.name for p in LEGACY.iterdir()} == {"LICENSE", "SOURCE.md", WALK.name, RUN.name}
    assert "Apache License" in (LEGACY / "LICENSE").read_text()
    assert "0435b081dc383498e217f92ca63bb97616145c14" in (LEGACY / "SOURCE.md").read_text()


@pytest.mark.parametrize(
    "path, why",
    [(WALK, "read as degrees because knee_angle_r reaches -69.67"), (RUN, "'Angles are in degrees.' says")],
)
def test_degrees_without_indegrees_decided_from_the_file_with_a_warning(path: Path, why: str) -> None:
    assert "inDegrees" not in path.read_text()[:2000]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", OpenSimHeaderWarning)
        with pytest.warns(OpenSimUnitsWarning, match="no inDegrees line") as caught:
            table = read_opensim_table(path, strict=False)
    message = next(str(w.message) for w in caught if w.category is OpenSimUnitsWarning)
    assert why in message and str(path) in message
    assert table.in_degrees is True
    labels, data = _source_radians(path)
    np.testing.assert_allclose(table.radians("hip_flexion_r"), np.deg2rad(data[:, labels.index("hip_flexion_r")]))
    np.testing.assert_array_equal(table.radians("pelvis_ty"), data[:, labels.index("pelvis_ty")])


def test_time_written_with_three_decimals_is_uniform_within_that_precision(tmp_path: Path) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        walk = read_opensim_table(WALK, strict=False)
    assert set(np.round(np.diff(walk.time), 9)) == {0.016, 0.017}  # as SOURCE.md says
    assert walk.time_resolution == pytest.approx(1e-3)
    assert walk.rate == pytest.approx(60.0, rel=1e-9)
    resampled = walk.at_rate(100.0)
    assert len(resampled.time) == 121  # 1.2 s at 100 Hz
    # A real irregularity is not hidden by the rounding: one row 10 ms late.
    text = "inDegrees=yes\nendheader\ntime\tknee_angle_r\n" + "".join(
        f"{t:.3f}\t{i}\n" for i, t in enumerate(np.arange(13) / 60.0 + np.where(np.arange(13) == 6, 0.01, 0.0))
    )
    uneven = tmp_path / "uneven60.mot"
    uneven.write_text(text)
    with pytest.raises(OpenSimFormatError, match=r"uneven60.mot: time is not uniformly sampled \(times written to 0.001 s\)"):
        _ = read_opensim_table(uneven).rate


def test_model_conventions_detected_from_the_columns() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        tables = {p: read_opensim_table(p, strict=False) for p in (WALK, RUN, RAJAGOPAL)}
    assert detect_model(tables[WALK]) == ("gait2392", "knee angles span [-69.7, 1.1] deg: negative in flexion (gait2392, gait2354, Hamner)")
    assert detect_model(tables[RUN])[0] == "gait2392"
    model, why = detect_model(tables[RAJAGOPAL])
    assert model == "rajagopal" and "knee_angle_r_beta" in why


def test_ambiguous_knees_name_the_flag(tmp_path: Path) -> None:
    """A standing trial (knees within +-5 deg) tells no convention: refused, naming the flag;
    the flag settles it."""
    path = tmp_path / "standing.mot"
    labels = ["pelvis_tilt", "pelvis_list", "pelvis_rotation", "pelvis_tx", "pelvis_ty", "pelvis_tz"]
    labels += [f"{c}_{s}" for s in "rl" for c in ("hip_flexion", "hip_adduction", "hip_rotation", "knee_angle", "ankle_angle")]
    rows = [[t / 50, *[0.0] * 4, 0.95, 0.0, *[5.0 * np.sin(t / 10)] * 10] for t in range(20)]
    path.write_text("inDegrees=yes\nendheader\n" + "\t".join(["time", *labels]) + "\n"
                    + "".join("\t".join(f"{v:.6f}" for v in row) + "\n" for row in rows))
    table = read_opensim_table(path)
    with pytest.raises(ValueError, match=r"standing.mot: cannot tell the model's knee convention.*--opensim-model"):
        detect_model(table)


def test_unused_columns_listed_once(fullbody, caplog: pytest.LogCaptureFixture) -> None:
    with warnings.catch_warnings(), caplog.at_level(logging.WARNING, logger="mmimic.motion.convert"):
        warnings.simplefilter("ignore", UserWarning)
        convert_opensim(WALK, fullbody)
    records = [r.getMessage() for r in caplog.records if "R.ASIS" in r.getMessage()]
    assert len(records) == 1
    assert "marker positions: 123 column(s)" in records[0] and "Top.Head (_tx/_ty/_tz each)" in records[0]
    assert "no column(s) elbow_flex_r, elbow_flex_l" in caplog.text  # missing optional coordinates reported


@pytest.fixture(scope="module")
def retargeted(fullbody, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("legacy_retarget")
    with warnings.catch_warnings(), pytest.MonkeyPatch.context() as patch:
        warnings.simplefilter("ignore", UserWarning)
        patch.setattr("mmimic.embodiment.load_embodiment", lambda name: fullbody)  # compiled once per session
        assert load_runner("retarget").main([str(WALK), str(RUN), "--embodiment", "fullbody", "--out", str(out)]) == 0
    return out


@pytest.mark.parametrize("path", [WALK, RUN], ids=["walk", "run"])
def test_retargeted_clip_follows_the_source(retargeted: Path, path: Path, fullbody) -> None:
    clip = read_clip(retargeted / f"{path.stem}.npz")
    assert clip.fps == 100.0
    duration = (len(_source_radians(path)[1]) - 1) / SOURCE_RATES[path]
    assert clip.num_frames == int(np.floor(duration * 100.0 + 1e-9)) + 1
    for joint, (r, rmse) in _follows_source(clip.qpos, clip.fps, path, fullbody.mj_model).items():
        assert r >= 0.99 and rmse <= 3.0, f"{path.name} {joint}: r {r:.4f}, RMSE {rmse:.2f} deg"
    knees = clip.qpos[:, [fullbody.mj_model.jnt_qposadr[fullbody.mj_model.joint(k).id] for k in ("knee_angle_r", "knee_angle_l")]]
    assert knees.max() > np.deg2rad(60)  # flexion positive on MyoFullBody: the sign was mapped
    entry = next(c for c in json.loads((retargeted / "report.json").read_text())["clips"] if c["name"] == path.stem)
    notes = " ".join(entry["details"]["notes"])
    assert "angle units: no inDegrees line; read as degrees" in notes and "gait2392 conventions" in notes


def test_convert_runner_resamples_to_the_clip_rate(tmp_path: Path, fullbody) -> None:
    out = tmp_path / "run.npz"
    motions = load_runner("motions")
    motions.load_embodiment = lambda name: fullbody  # compiled once per session
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        assert motions.main(["convert", str(RUN), "--out", str(out), "--fps", "100"]) == 0
    clip = read_clip(out)
    assert clip.fps == 100.0 and clip.num_frames == 69  # 0.683 s of 1 kHz rows
    for joint, (r, rmse) in _follows_source(clip.qpos, clip.fps, RUN, fullbody.mj_model).items():
        assert r >= 0.99 and rmse <= 3.0, f"{joint}: r {r:.4f}, RMSE {rmse:.2f} deg"
    assert motions.main(["validate", str(out)]) == 0
