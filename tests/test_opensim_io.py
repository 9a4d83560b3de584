"""mmimic.io.opensim against the shipped OpenSim Moco walking trial and malformed files.

Facts used as truth were counted by hand in the files under
motions/sources/opensim_moco_walk/ (header lines, first and last data rows).
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest

from mmimic.io.opensim import (
    OpenSimFormatError,
    OpenSimHeaderWarning,
    OpenSimTable,
    coordinate_name,
    is_rotational,
    read_opensim_table,
)

DATA = Path(__file__).resolve().parents[1] / "motions" / "sources" / "opensim_moco_walk"


def _coordinates_sto() -> OpenSimTable:
    # Its header is stale (nColumns=40 for 32 columns), see test_stale_header_*.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", OpenSimHeaderWarning)
        return read_opensim_table(DATA / "coordinates.sto", strict=False)


# --------------------------------------------------------------------- shipped files


def test_every_shipped_file_is_present_and_small():
    names = {p.name for p in DATA.iterdir()}
    assert {
        "LICENSE", "SOURCE.md", "UPSTREAM_README.txt", "coordinates.sto",
        "coordinates_full_trial_100hz.mot", "electromyography.sto", "grf_walk.mot",
        "id_walk.sto", "markers_walk.trc",
    } <= names
    for p in DATA.iterdir():
        assert p.stat().st_size < 3 * 2**20, p


@pytest.mark.parametrize(
    "file, name, n_rows, n_columns, t_first, t_last, rate, in_degrees",
    [
        ("grf_walk.mot", "grf_walk", 4778, 19, 0.0, 2.3885, 2000.0, False),
        ("electromyography.sto", "Electromyography", 4780, 11, 0.0, 2.3895, 2000.0, False),
        (
            "id_walk.sto", "Inverse Dynamics Generalized Forces",
            1350, 32, 0.45, 1.799, 1000.0, False,
        ),
        ("coordinates_full_trial_100hz.mot", "Coordinates", 238, 40, 0.0, 2.37, 100.0, True),
    ],
)
def test_shipped_table_matches_hand_counted_facts(
    file, name, n_rows, n_columns, t_first, t_last, rate, in_degrees
):
    table = read_opensim_table(DATA / file)
    assert table.name == name
    assert table.path == DATA / file
    assert table.time.shape == (n_rows,)
    assert table.data.shape == (n_rows, n_columns - 1)  # nColumns counts time
    assert len(table.labels) == n_columns - 1
    assert table.data.dtype == np.float64
    assert table.time[0] == pytest.approx(t_first, abs=1e-12)
    assert table.time[-1] == pytest.approx(t_last, abs=1e-12)
    assert table.rate == pytest.approx(rate, rel=1e-9)
    assert table.in_degrees is in_degrees
    assert table.header["nRows"] == str(n_rows)


def test_grf_first_and_last_rows_as_written():
    table = read_opensim_table(DATA / "grf_walk.mot")
    # first data row: "0 0 0 0 331.7057913303967 0 92.3592385601652 0 0 0 0 0 0 153.43..."
    assert table.labels[:4] == [
        "ground_force_r_vx", "ground_force_r_vy", "ground_force_r_vz", "ground_force_r_px",
    ]
    assert table.column("ground_force_r_px")[0] == 331.7057913303967
    assert table.column("ground_force_r_pz")[0] == 92.3592385601652
    assert table.column("ground_force_l_px")[-1] == 133.084353113688
    assert table.column("ground_force_l_pz")[-1] == -278.601175680691


def test_emg_labels_are_the_ten_channels():
    table = read_opensim_table(DATA / "electromyography.sto")
    assert table.labels == [
        "soleus", "gastrocnemius", "tibialis_anterior", "medial_hamstrings", "biceps_femoris",
        "vastus_lateralis", "vastus_medius", "rectus_femoris", "gluteus_maximus",
        "gluteus_medius",
    ]
    # each channel is normalised to a maximum of 1 (UPSTREAM_README.txt)
    np.testing.assert_allclose(table.data.max(axis=0), 1.0, atol=1e-12)


def test_stale_header_is_refused_in_strict_mode_and_warned_otherwise():
    path = DATA / "coordinates.sto"
    with pytest.raises(OpenSimFormatError, match=r"nColumns=40.*32 columns") as info:
        read_opensim_table(path)
    assert str(path) in str(info.value)
    with pytest.warns(OpenSimHeaderWarning, match="nColumns=40"):
        table = read_opensim_table(path, strict=False)
    assert table.time.shape == (1350,)
    assert len(table.labels) == 31
    assert table.time[0] == pytest.approx(0.45) and table.time[-1] == pytest.approx(1.799)


def test_jointset_labels_reduced_to_coordinate_names():
    table = _coordinates_sto()
    assert table.labels[:7] == [
        "pelvis_tilt", "pelvis_list", "pelvis_rotation", "pelvis_tx", "pelvis_ty", "pelvis_tz",
        "hip_flexion_r",
    ]
    assert table.labels[-2:] == ["knee_angle_r_beta", "knee_angle_l_beta"]
    assert not any(label.startswith("/") for label in table.labels)
    # first row, hip_flexion_r as written in the file
    assert table.column("hip_flexion_r")[0] == 0.3965801380677928
    assert coordinate_name("/jointset/hip_r/hip_flexion_r/value") == "hip_flexion_r"
    speed = "/jointset/hip_r/hip_flexion_r/speed"
    assert coordinate_name(speed) == speed
    assert coordinate_name("/forceset/soleus_r/activation") == "/forceset/soleus_r/activation"


def test_degrees_file_in_radians_agrees_with_the_radians_file():
    """coordinates_full_trial_100hz.mot (IK, degrees, 100 Hz) and coordinates.sto (IK + RRA,
    radians, 1 kHz) are two processings of the same trial: measured agreement over the 135
    shared instants is RMS <= 0.021 rad, max <= 0.073 rad (ankle_angle_l) for angles and
    <= 0.01 m for pelvis translations. A missing or misapplied degree conversion is off by
    a factor of 57 and fails by far."""
    degrees = read_opensim_table(DATA / "coordinates_full_trial_100hz.mot")
    radians = _coordinates_sto()
    inside = (degrees.time >= radians.time[0]) & (degrees.time <= radians.time[-1])
    shared = degrees.time[inside]
    assert shared.shape == (135,)
    reference = radians.resample(shared)
    compared = 0
    for label in radians.labels:
        if label.endswith("_beta"):
            continue  # see test_coupled_beta_coordinates_are_never_converted
        ours = degrees.radians(label)[inside]
        theirs = reference.column(label)
        if label.endswith(("_tx", "_ty", "_tz")):
            assert np.max(np.abs(ours - theirs)) < 0.015, label
        else:
            assert np.max(np.abs(ours - theirs)) < 0.1, label
            assert np.sqrt(np.mean((ours - theirs) ** 2)) < 0.03, label
        compared += 1
    assert compared == 29
    # the comparison discriminates: the unconverted column is far off
    knee_deg = degrees.column("knee_angle_r")[inside]
    assert np.max(np.abs(knee_deg - reference.column("knee_angle_r"))) > 30


def test_coupled_beta_coordinates_are_never_converted():
    """Rajagopal's knee_angle_*_beta is coupled to knee_angle_* (equal values). OpenSim
    writes it unconverted: in the degrees file it is in radians (equal to knee_angle_r
    in radians to the file's 8 decimals)."""
    degrees = read_opensim_table(DATA / "coordinates_full_trial_100hz.mot")
    for side in ("r", "l"):
        np.testing.assert_allclose(
            degrees.radians(f"knee_angle_{side}_beta"), degrees.radians(f"knee_angle_{side}"),
            atol=1e-7,
        )
    # Upstream quirk kept as is: coordinates.sto says inDegrees=no, yet its beta columns hold
    # the knee angle in degrees. The reader does not second-guess an inDegrees=no table.
    radians = _coordinates_sto()
    np.testing.assert_allclose(
        radians.radians("knee_angle_r_beta"), np.rad2deg(radians.column("knee_angle_r")),
        atol=1e-9,
    )


def test_radians_leaves_translations_and_non_coordinates_alone():
    degrees = read_opensim_table(DATA / "coordinates_full_trial_100hz.mot")
    np.testing.assert_array_equal(degrees.radians("pelvis_tx"), degrees.column("pelvis_tx"))
    np.testing.assert_allclose(
        degrees.radians("hip_flexion_r"), np.deg2rad(degrees.column("hip_flexion_r"))
    )
    grf = read_opensim_table(DATA / "grf_walk.mot")
    np.testing.assert_array_equal(grf.radians("ground_force_r_vy"), grf.column("ground_force_r_vy"))


@pytest.mark.parametrize(
    "label, expected",
    [
        ("hip_flexion_r", True), ("pelvis_tilt", True), ("lumbar_extension", True),
        ("/jointset/walker_knee_r/knee_angle_r/value", True),
        ("pelvis_tx", False), ("pelvis_ty", False), ("pelvis_tz", False),
        ("knee_angle_r_beta", False), ("time", False),
        ("ground_force_r_vy", False), ("ground_force_r_px", False), ("ground_torque_r_x", False),
        ("hip_flexion_r_moment", False), ("pelvis_tx_force", False),
        ("/forceset/soleus_r/activation", False),
    ],
)
def test_is_rotational(label, expected):
    assert is_rotational(label) is expected


def test_missing_column_lists_the_available_ones():
    table = read_opensim_table(DATA / "electromyography.sto")
    with pytest.raises(OpenSimFormatError, match="no column 'semitendinosus'") as info:
        table.column("semitendinosus")
    message = str(info.value)
    assert str(DATA / "electromyography.sto") in message
    assert "soleus" in message and "gluteus_medius" in message
    assert isinstance(info.value, ValueError)


# --------------------------------------------------------------------- written files


def _write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


GOOD = """demo
version=1
nRows=3
nColumns=3
inDegrees=yes
endheader
time\tknee_angle_r\tpelvis_tx
0.0\t90.0\t1.0
0.5\t45.0\t2.0
1.0\t0.0\t3.0
"""


def test_small_table_round_trip_and_resample(tmp_path):
    table = read_opensim_table(_write(tmp_path / "good.mot", GOOD))
    assert table.name == "demo" and table.in_degrees
    np.testing.assert_allclose(table.radians("knee_angle_r"), [np.pi / 2, np.pi / 4, 0.0])
    assert table.rate == pytest.approx(2.0)
    half = table.resample(np.array([0.25, 0.75, 1.0]))
    np.testing.assert_allclose(half.column("knee_angle_r"), [67.5, 22.5, 0.0])
    np.testing.assert_allclose(half.column("pelvis_tx"), [1.5, 2.5, 3.0])
    assert half.in_degrees and half.labels == table.labels
    with pytest.raises(OpenSimFormatError, match="extrapolate"):
        table.resample(np.array([0.5, 1.5]))


def test_space_separated_table(tmp_path):
    text = "endheader\n  time   a   /jointset/j/q/value\n 0  1  2\n 1  3  4\n"
    table = read_opensim_table(_write(tmp_path / "spaces.sto", text))
    assert table.labels == ["a", "q"] and not table.in_degrees
    np.testing.assert_array_equal(table.data, [[1, 2], [3, 4]])


def test_nonuniform_sampling_has_no_rate(tmp_path):
    text = "endheader\ntime\tx\n0\t0\n0.1\t0\n0.3\t0\n"
    table = read_opensim_table(_write(tmp_path / "uneven.sto", text))
    with pytest.raises(OpenSimFormatError, match="not uniformly sampled"):
        _ = table.rate


@pytest.mark.parametrize(
    "text, match",
    [
        ("version=1\nnRows=1\ntime\tx\n0\t1\n", "no 'endheader'"),
        ("endheader\ntime\tx\ty\n0\t1\t2\n1\t1\n", r"line 4: 2 values, but 3 column labels"),
        ("nRows=3\nendheader\ntime\tx\n0\t1\n1\t2\n", "nRows=3.*2 data rows"),
        ("nColumns=4\nendheader\ntime\tx\n0\t1\n1\t2\n", "nColumns=4.*2 columns"),
        ("endheader\ntime\tx\n0\t1\n1\tabc\n", r"line 4, column 'x': 'abc' is not a number"),
        ("endheader\ntime\tx\n0\t1\n1\t2\n0.5\t3\n", "not strictly increasing"),
        ("endheader\ntime\tx\n0\t1\n0\t2\n", "not strictly increasing"),
        ("endheader\nframe\tx\n0\t1\n", "first column must be 'time'"),
        ("endheader\ntime\t/jointset/a/q/value\tq\n0\t1\t2\n", "'q' appears twice"),
        ("inDegrees=maybe\nendheader\ntime\tx\n0\t1\n", "inDegrees=maybe"),
        ("nRows=two\nendheader\ntime\tx\n0\t1\n", "nRows=two"),
        ("endheader\ntime\tx\n", "no data rows"),
        ("endheader\n\n", "no column-label line"),
    ],
)
def test_malformed_file_is_refused_with_its_name(tmp_path, text, match):
    path = _write(tmp_path / "broken_table.sto", text)
    with pytest.raises(OpenSimFormatError, match=match) as info:
        read_opensim_table(path)
    assert str(path) in str(info.value)


def test_header_counts_only_warn_when_not_strict(tmp_path):
    path = _write(tmp_path / "stale.sto", "nRows=5\nendheader\ntime\tx\n0\t1\n1\t2\n")
    with pytest.warns(OpenSimHeaderWarning, match="nRows=5"):
        table = read_opensim_table(path, strict=False)
    assert table.time.shape == (2,)
    # structural errors stay errors
    bad = _write(tmp_path / "ragged.sto", "endheader\ntime\tx\n0\t1\t2\n")
    with pytest.raises(OpenSimFormatError, match="ragged.sto"):
        read_opensim_table(bad, strict=False)


def test_missing_file_is_named(tmp_path):
    path = tmp_path / "absent.mot"
    with pytest.raises(OpenSimFormatError, match="absent.mot: no such file"):
        read_opensim_table(path)
