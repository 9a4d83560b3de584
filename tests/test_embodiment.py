"""Embodiments against the unedited MJCF loaded independently with MuJoCo C."""

from __future__ import annotations

import shutil
from pathlib import Path

import mujoco
import musclemimic_models
import numpy as np
import pytest

import mmimic
from mmimic.embodiment import EmbodimentError
from mmimic.motion.clip import model_joints

REPO = Path(__file__).resolve().parent.parent


def raw_model(name: str) -> mujoco.MjModel:
    return mujoco.MjModel.from_xml_path(str(musclemimic_models.get_xml_path(name)))


def test_fullbody_matches_published_edits(fullbody: mmimic.Embodiment) -> None:
    m, raw = fullbody.mj_model, raw_model("myofullbody")
    assert (m.nq, m.nv, m.nu, m.njnt) == (89, 88, 354, 83)
    assert raw.nu - m.nu == 62 and raw.njnt - m.njnt == 40
    # Every remaining muscle keeps its tendon; every tendon naming a removed muscle is gone.
    removed = {raw.actuator(i).name for i in range(raw.nu)} - set(fullbody.muscle_names)
    tendons = {m.tendon(i).name for i in range(m.ntendon)}
    assert not any(r in t for r in removed for t in tendons)
    assert m.ntendon == raw.ntendon - sum(any(r in raw.tendon(i).name for r in removed) for i in range(raw.ntendon))
    assert len(fullbody.mimic_sites) == 17 and fullbody.mimic_sites[0] == "pelvis_mimic"
    assert fullbody.free_joint == "root" and fullbody.has_free_root
    columns = {joint.name: joint.qpos for joint in model_joints(m)}
    assert columns["root"] == slice(0, 7) and columns[fullbody.joint_names[1]] == slice(7, 8)
    assert np.all(m.actuator_ctrlrange == [-1.0, 1.0]) and np.all(m.actuator_ctrllimited == 1)
    assert m.opt.timestep == 0.002 and fullbody.physics.substeps == 5
    assert fullbody.physics.control_dt == pytest.approx(0.01)
    assert m.opt.solver == mujoco.mjtSolver.mjSOL_NEWTON and m.opt.integrator == mujoco.mjtIntegrator.mjINT_EULER
    assert m.opt.disableflags & mujoco.mjtDisableBit.mjDSBL_EULERDAMP
    assert (fullbody.physics.nconmax, fullbody.physics.njmax) == (96, 512)
    assert list(fullbody.touch_sensor_adr) == [318, 319, 320, 321]


def test_fullbody_sites_sit_at_body_origins(fullbody: mmimic.Embodiment) -> None:
    m = fullbody.mj_model
    d = mujoco.MjData(m)
    d.qpos[:] = fullbody.initial_qpos()
    mujoco.mj_kinematics(m, d)
    np.testing.assert_allclose(d.site_xpos[fullbody.mimic_site_ids], d.xpos[fullbody.mimic_body_ids], atol=1e-12)
    assert [m.body(b).name for b in fullbody.mimic_body_ids[:3]] == ["pelvis", "lumbar1", "head"]


def test_keyframe_survives_finger_removal(fullbody: mmimic.Embodiment) -> None:
    m, raw = fullbody.mj_model, raw_model("myofullbody")
    for joint in model_joints(m):
        ours, theirs = joint.qpos, raw.jnt_qposadr[raw.joint(joint.name).id]
        np.testing.assert_array_equal(m.key_qpos[0][ours], raw.key_qpos[0][theirs : theirs + ours.stop - ours.start])


def test_bimanual_keeps_fingers_and_switches(bimanual: mmimic.Embodiment) -> None:
    m = bimanual.mj_model
    assert (m.nq, m.nu) == (76, 126) and not bimanual.fingers_removed
    assert len(bimanual.mimic_sites) == 7 and bimanual.free_joint is None
    assert (bimanual.physics.nconmax, bimanual.physics.njmax) == (16, 128)
    without = mmimic.load_embodiment("bimanual", remove_fingers=True)
    assert (without.mj_model.nq, without.num_muscles) == (36, 64)
    with_fingers = mmimic.load_embodiment("fullbody", remove_fingers=False)
    assert (with_fingers.mj_model.nq, with_fingers.num_muscles) == (129, 416)
    assert with_fingers.model_hash != mmimic.load_embodiment("fullbody").model_hash


def user_directory(tmp_path: Path, toml_edit=lambda s: s) -> Path:
    """A user's own embodiment directory: the bimanual toml beside its own copy of the XML tree."""
    model_dir = Path(musclemimic_models.get_xml_path("bimanual")).parent.parent
    shutil.copytree(model_dir, tmp_path / "model")
    toml = (REPO / "models/bimanual/embodiment.toml").read_text()
    toml = toml.replace('package = "bimanual"', 'file = "model/arm/myoarm_bimanual.xml"').replace('"bimanual"', '"myarm"')
    (tmp_path / "embodiment.toml").write_text(toml_edit(toml))
    return tmp_path


def test_user_directory_loads_like_a_shipped_one(tmp_path: Path, bimanual: mmimic.Embodiment) -> None:
    mine = mmimic.load_embodiment(user_directory(tmp_path))
    assert mine.name == "myarm" and mine.xml_path.is_relative_to(tmp_path)
    assert mine.mj_model.nu == bimanual.mj_model.nu and mine.mimic_sites == bimanual.mimic_sites


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda s: s.replace("[physics]", "[physics\n"), "malformed TOML"),
        (lambda s: s.replace("timestep = 0.002", ""), "missing required field 'physics.timestep'"),
        (lambda s: s.replace("substeps = 5", 'substeps = "five"'), "field 'physics.substeps' must be int"),
        (lambda s: s.replace('body = "thorax"', 'body = "nowhere"'), "names body 'nowhere'"),
        (lambda s: s.replace('model = "mujoco"', 'model = "springs"'), "muscles.model = 'springs'"),
        (lambda s: s.replace("myoarm_bimanual.xml", "missing.xml"), "model.file 'model/arm/missing.xml' does not exist"),
        (lambda s: s.replace("njmax = 128", "njmax = 0"), "njmax must be positive"),
    ],
)
def test_bad_toml_is_refused_with_file_and_field(tmp_path: Path, edit, message: str) -> None:
    directory = user_directory(tmp_path, edit)
    with pytest.raises(EmbodimentError, match=message) as info:
        mmimic.load_embodiment(directory)
    assert str(directory) in str(info.value)


def test_malformed_xml_is_refused(tmp_path: Path) -> None:
    directory = user_directory(tmp_path)
    (directory / "model/arm/myoarm_bimanual.xml").write_text("<mujoco><worldbody><body></mujoco>")
    with pytest.raises(EmbodimentError, match="myoarm_bimanual.xml: MuJoCo could not parse"):
        mmimic.load_embodiment(directory)


def test_unknown_name_and_empty_directory(tmp_path: Path) -> None:
    with pytest.raises(EmbodimentError, match="unknown embodiment 'quadruped'.*bimanual, fullbody"):
        mmimic.load_embodiment("quadruped")
    with pytest.raises(EmbodimentError, match="no embodiment.toml in this directory"):
        mmimic.load_embodiment(tmp_path)
