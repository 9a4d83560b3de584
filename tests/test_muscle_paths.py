"""Golden muscle paths: every muscle's length and moments at 12 coupling-consistent poses of each
body equal the frozen values, so an engine pin or model change cannot silently reroute a muscle.

The fixtures were made under the pinned MuJoCo (4.0.0) by

    python tests/golden/make_muscle_paths.py

Under MuJoCo 3.4-3.17 this test fails on the arm muscles whose side-site wraps the 4.0 rule
changed (docs/engine.md).
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

from mmimic.anatomy import muscle_paths

GOLDEN = Path(__file__).resolve().parent / "golden"
sys.path.insert(0, str(GOLDEN))
from make_muscle_paths import BODIES, POSES, golden_poses, load  # noqa: E402

LENGTH_TOLERANCE = 1e-6  # m: float32 storage is ~3e-8 at these lengths; a reroute moves millimetres
MOMENT_TOLERANCE = 1e-6  # m (or m/m for slides)


@pytest.mark.parametrize("body", list(BODIES))
def test_muscle_paths_match_the_golden_fixture(body: str) -> None:
    golden = np.load(GOLDEN / f"muscle_paths_{body}.npz")
    embodiment = load(body)
    assert tuple(golden["muscles"]) == embodiment.muscle_names
    qpos = golden["qpos"]
    assert qpos.shape == (POSES, embodiment.mj_model.nq)
    assert embodiment.coupling.residual(qpos) <= 1e-9  # the poses satisfy the couplings

    lengths, moments = muscle_paths(embodiment.mj_model, qpos)
    length_error = np.abs(lengths - golden["length"]).max(axis=0)
    moved = [f"{name} ({1000 * e:.2f} mm)" for name, e in zip(embodiment.muscle_names, length_error)
             if e > LENGTH_TOLERANCE]
    assert not moved, f"{body}: muscle lengths changed: {', '.join(moved)}"

    rows, cols = golden["moment_muscle"].astype(int), golden["moment_dof"].astype(int)
    frozen = np.zeros_like(moments)
    frozen[:, rows, cols] = golden["moment"]
    moment_error = np.abs(moments - frozen).max(axis=(0, 2))  # includes joints a muscle did not span
    rerouted = [name for name, e in zip(embodiment.muscle_names, moment_error) if e > MOMENT_TOLERANCE]
    assert not rerouted, f"{body}: muscle moments changed: {', '.join(rerouted)}"


def test_golden_poses_are_reproducible(fullbody) -> None:
    """The fixture's poses are the script's: initial pose first, random independent joints after."""
    golden = np.load(GOLDEN / "muscle_paths_fullbody.npz")
    assert np.array_equal(golden_poses(fullbody), golden["qpos"])
    assert np.array_equal(golden["qpos"][0], fullbody.initial_qpos())


def _arc_side(model, data, tendon: str, geom: str, side_site: str) -> float:
    """Cosine between the middle of `tendon`'s arc on the cylinder `geom` and the direction of
    `side_site`, both in the plane across the cylinder's axis (1: the arc is on the site's side)."""
    t, g, s = model.tendon(tendon).id, model.geom(geom).id, model.site(side_site).id
    adr, num = data.ten_wrapadr[t], data.ten_wrapnum[t]
    points, objects = data.wrap_xpos.reshape(-1, 3)[adr : adr + num], data.wrap_obj.ravel()[adr : adr + num]
    tangent = points[objects == g]
    assert len(tangent) == 2, f"{tendon} does not wrap {geom}"
    frame, centre = data.geom_xmat[g].reshape(3, 3), data.geom_xpos[g]
    a, b = ((frame.T @ (p - centre)) * [1, 1, 0] for p in tangent)
    chord = (a + b) / np.linalg.norm(a + b)
    straight = np.linalg.norm(b - a)  # a wrap past 180 degrees has its middle opposite the chord's
    arc = data.ten_length[t] - np.sum(np.linalg.norm(np.diff(points, axis=0), axis=1)) + straight
    middle = -chord if arc / model.geom_size[g, 0] > np.pi else chord
    site = (frame.T @ (data.site_xpos[s] - centre)) * [1, 1, 0]
    return float(middle @ site / np.linalg.norm(site))


@pytest.mark.parametrize("body", ["bimanual", "fullbody"])
def test_humerus_side_sites_put_every_wrap_on_their_side(body: str, request: pytest.FixtureRequest) -> None:
    """Teres major and latissimus dorsi 1-3 wrap the humerus cylinder TMAJ_LAThum on the side of
    their side sites (the 3.x paths); the shipped sites made 4.0 wrap TMAJ and LAT2 the other way."""
    import mujoco

    embodiment = request.getfixturevalue(body)
    m = embodiment.mj_model
    data = mujoco.MjData(m)
    for q in golden_poses(embodiment)[:4]:
        data.qpos[:] = q
        mujoco.mj_fwdPosition(m, data)
        for muscle in ("TMAJ", "LAT1", "LAT2", "LAT3"):
            for suffix in ("", "_left"):
                cosine = _arc_side(m, data, f"{muscle}_tendon{suffix}", f"TMAJ_LAThum_cylinder{suffix}",
                                   f"TMAJ_LAThum_cylinder_{muscle}_1_sidesite{suffix}")
                assert cosine > 0.0, (muscle + suffix, cosine)  # shipped sites: TMAJ -0.26, LAT2 -0.24


def test_site_positions_naming_an_unknown_site_is_refused(tmp_path: Path) -> None:
    import mmimic
    from mmimic.embodiment import MODELS_DIR, EmbodimentError

    toml = (MODELS_DIR / "bimanual" / "embodiment.toml").read_text()
    (tmp_path / "embodiment.toml").write_text(toml + '\n[[site_positions]]\nname = "no_such_site"\npos = [0, 0, 0]\n')
    with pytest.raises(EmbodimentError, match="site_positions\\[4\\] names site 'no_such_site'"):
        mmimic.load_embodiment(tmp_path)
    (tmp_path / "embodiment.toml").write_text(toml + '\n[[site_positions]]\nname = "SUP_SUP-P1"\npos = [0, 0]\n')
    with pytest.raises(EmbodimentError, match="3-number 'pos'"):
        mmimic.load_embodiment(tmp_path)


def test_warp_simulator_follows_the_golden_paths(bimanual) -> None:
    """mujoco_warp (float32, the Warp CPU device) puts every bimanual muscle at its golden length
    at the 12 golden poses, the moved side sites included."""
    import torch

    import mmimic

    golden = np.load(GOLDEN / "muscle_paths_bimanual.npz")
    sim = mmimic.Simulator(bimanual, POSES, "cpu")
    qpos = torch.from_numpy(golden["qpos"]).to(torch.float32)
    sim.reset(torch.ones(POSES, dtype=torch.bool), qpos, torch.zeros_like(sim.qvel))
    error = np.abs(sim.actuator_length.numpy() - golden["length"]).max(axis=0)
    assert error.max() <= 2e-5, [(n, e) for n, e in zip(bimanual.muscle_names, error) if e > 2e-5]
