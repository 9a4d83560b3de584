"""OpenSim input that must not become a wrong clip (issue 17): NaN cells, missing columns, angle
units the header gets wrong or leaves out, and clips whose root leaves the plausible range.
Each goes through the runners and ends in a non-zero exit naming the file and the column or
flag; the cases a flag settles are checked against the conversion of the unmodified file."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest
from runner_scripts import load_runner

from mmimic.motion import read_clip, write_clip

REPO = Path(__file__).resolve().parent.parent
TRIAL = REPO / "motions" / "sources" / "opensim_moco_walk" / "coordinates_full_trial_100hz.mot"  # inDegrees=yes
SHIPPED = REPO / "motions" / "fullbody" / "opensim_walk.npz"


@pytest.fixture(scope="module")
def motions(fullbody):
    """runners/motions.py with the session's compiled body (compiling it per call costs seconds)."""
    module = load_runner("motions")
    module.load_embodiment = lambda name: fullbody if name == "fullbody" else pytest.fail(f"unexpected body {name}")
    return module


def _table() -> tuple[list[str], list[str], list[list[str]]]:
    """The trial's header lines (through endheader), labels and rows of cells, as written."""
    lines = TRIAL.read_text().splitlines()
    end = lines.index("endheader")
    return lines[: end + 1], lines[end + 1].split("\t"), [line.split() for line in lines[end + 2 :]]


def _write(path: Path, header: list[str], labels: list[str], rows: list[list[str]]) -> Path:
    header = [f"nColumns={len(labels)}" if line.startswith("nColumns") else line for line in header]
    path.write_text("\n".join([*header, "\t".join(labels), *("\t".join(r) for r in rows)]) + "\n")
    return path


def _convert(motions, source: Path, out: Path, *flags: str) -> int:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        return motions.main(["convert", str(source), "--out", str(out), *flags])


@pytest.fixture(scope="module")
def original(motions, tmp_path_factory: pytest.TempPathFactory) -> np.ndarray:
    out = tmp_path_factory.mktemp("original") / "walk.npz"
    assert _convert(motions, TRIAL, out) == 0
    return read_clip(out).qpos


def test_nan_cell_is_refused_with_its_line_and_column(motions, tmp_path: Path, capsys) -> None:
    header, labels, rows = _table()
    rows[40][labels.index("knee_angle_r")] = "nan"
    source = _write(tmp_path / "nan_cell.mot", header, labels, rows)
    out = tmp_path / "nan.npz"
    assert _convert(motions, source, out) == 1
    text = " ".join(capsys.readouterr().out.split())
    line = len(header) + 1 + 40 + 1  # header, label line, 40 rows before it
    assert f"nan_cell.mot: 1 NaN/inf value(s) in 1 row(s): line {line} (t=0.4 s): knee_angle_r=nan" in text
    assert not out.exists()


def _nan_root(header, labels, rows):
    rows[7][labels.index("pelvis_ty")] = "NaN"
    return header, "pelvis_ty=nan"


def _says_radians(header, labels, rows):
    return ["inDegrees=no" if line == "inDegrees=yes" else line for line in header], "inDegrees=no, but"


@pytest.mark.parametrize("spoil", [_nan_root, _says_radians], ids=["nan_cell", "indegrees_no"])
def test_retarget_writes_nothing_from_a_spoiled_table(fullbody, tmp_path: Path, capsys, monkeypatch, spoil) -> None:
    monkeypatch.setattr("mmimic.embodiment.load_embodiment", lambda name: fullbody)
    header, labels, rows = _table()
    header, expected = spoil(header, labels, rows)
    source = _write(tmp_path / "spoiled.mot", header, labels, rows)
    out = tmp_path / "out"
    assert load_runner("retarget").main([str(source), "--embodiment", "fullbody", "--out", str(out)]) == 1
    text = " ".join(capsys.readouterr().err.split())
    assert "spoiled.mot" in text and expected in text and "nothing written" in text
    assert not out.exists() or not list(out.glob("*.npz"))


@pytest.mark.parametrize("column", ["knee_angle_r", "pelvis_ty"])
def test_missing_column_is_named(motions, tmp_path: Path, capsys, column: str) -> None:
    header, labels, rows = _table()
    j = labels.index(column)
    source = _write(tmp_path / "missing.mot", header, labels[:j] + labels[j + 1 :], [r[:j] + r[j + 1 :] for r in rows])
    assert _convert(motions, source, tmp_path / "x.npz") == 1
    text = " ".join(capsys.readouterr().out.split())
    assert "missing.mot: no" in text and column in text
    assert not (tmp_path / "x.npz").exists()


def test_indegrees_no_on_degrees_is_refused_and_the_flag_settles_it(motions, original, tmp_path: Path, capsys) -> None:
    header, labels, rows = _table()
    header = ["inDegrees=no" if line == "inDegrees=yes" else line for line in header]
    source = _write(tmp_path / "says_radians.mot", header, labels, rows)
    out = tmp_path / "walk.npz"
    assert _convert(motions, source, out) == 1
    text = " ".join(capsys.readouterr().out.split())
    assert "says_radians.mot: angle units unknown: the header says inDegrees=no, but" in text
    assert "--degrees or --radians" in text and not out.exists()
    assert _convert(motions, source, out, "--degrees") == 0
    np.testing.assert_array_equal(read_clip(out).qpos, original)


def test_degrees_without_indegrees_read_as_degrees_with_a_warning(motions, original, tmp_path: Path) -> None:
    header, labels, rows = _table()
    source = _write(tmp_path / "no_units.mot", [line for line in header if not line.startswith("inDegrees")], labels, rows)
    out = tmp_path / "walk.npz"
    with pytest.warns(UserWarning, match=r"no_units.mot: no inDegrees line; read as degrees because \w+ reaches"):
        assert motions.main(["convert", str(source), "--out", str(out)]) == 0
    np.testing.assert_array_equal(read_clip(out).qpos, original)


def test_undecidable_units_name_the_flags(motions, original, tmp_path: Path, capsys) -> None:
    """The trial in radians without an inDegrees line: every joint within +-pi, no comment:
    refused; --radians settles it (the same clip up to the 1e-12 rad written precision)."""
    header, labels, rows = _table()
    angle = [not (label.endswith(("_tx", "_ty", "_tz", "_beta")) or label == "time") for label in labels]
    rows = [[f"{np.deg2rad(float(c)):.15f}" if a else c for c, a in zip(r, angle)] for r in rows]
    source = _write(tmp_path / "unknown_units.mot", [line for line in header if not line.startswith("inDegrees")], labels, rows)
    out = tmp_path / "walk.npz"
    assert _convert(motions, source, out) == 1
    text = " ".join(capsys.readouterr().out.split())
    assert "unknown_units.mot: angle units unknown: no inDegrees line" in text and "--degrees or --radians" in text
    assert _convert(motions, source, out, "--radians") == 0
    np.testing.assert_allclose(read_clip(out).qpos, original, atol=1e-5)


def test_degrees_forced_to_radians_never_becomes_a_clip(motions, tmp_path: Path, capsys) -> None:
    """Degrees read as radians (what the issue saw: the root 207 m up) are caught by the clip's
    root range even when the user insists."""
    out = tmp_path / "walk.npz"
    assert _convert(motions, TRIAL, out, "--radians") == 1
    text = " ".join(capsys.readouterr().out.split())
    assert "coordinates_full_trial_100hz.mot: the converted root 'root' height" in text
    assert "outside the plausible -0.5..3 m" in text and "read in radians as the caller said" in text
    assert not out.exists()


def test_units_flags_exclude_each_other(motions) -> None:
    with pytest.raises(SystemExit) as info:
        motions.main(["convert", str(TRIAL), "--out", "x.npz", "--degrees", "--radians"])
    assert info.value.code == 2


@pytest.mark.parametrize(
    "change, message",
    [
        (lambda q: q[:, 2] + 207.0, "height 207.9 m at frame 0 (238 frame(s))"),  # the clip
        (lambda q: q[:, 2] - 1.5, "outside the plausible -0.5..3 m"),
        (lambda q: np.where(np.arange(len(q)) >= 100, q[:, 2] + 0.5, q[:, 2]), "m/s between frames 99 and 100, faster"),
    ],
    ids=["207m_up", "under_floor", "teleport"],
)
def test_validate_refuses_an_implausible_root(motions, tmp_path: Path, capsys, change, message: str) -> None:
    clip = read_clip(SHIPPED)
    qpos = clip.qpos.copy()
    qpos[:, 2] = change(qpos)
    clip.qpos = qpos
    path = tmp_path / "bad_root.npz"
    write_clip(path, clip)
    assert motions.main(["validate", str(path)]) == 1
    text = " ".join(capsys.readouterr().out.split())
    assert "bad_root.npz" in text and message in text
