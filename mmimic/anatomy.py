"""Muscle paths: lengths and moment arms of an embodiment's muscles, checked against OpenSim.

`muscle_paths` evaluates MuJoCo C at coupling-consistent poses; `moment_arms` turns actuator
moments into moment arms about the independent joints, with OpenSim's sign (-dL/dq) and every
coupled joint (patella, knee translations) followed through its polynomial. `leg_sweeps` moves
hip flexion, knee angle and ankle angle one at a time from the neutral pose, as
`tests/golden/make_opensim_golden.py` does on OpenSim's Rajagopal-family model, and
`compare_with_opensim` / `plot_anatomy` put the two side by side (docs/engine.md discusses them).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import mujoco
import numpy as np

from mmimic.coupling import Coupling
from mmimic.embodiment import Embodiment
from mmimic.motion.kinematics import posed

OPENSIM_GOLDEN = Path(__file__).resolve().parent / "data" / "opensim_leg_paths.json"
"""Lengths and moment arms of `LEG_MUSCLES` over `SWEEPS` from OpenSim 4.6 (made by tests/golden/make_opensim_golden.py)."""

LEG_MUSCLES = (
    "recfem_r", "vasint_r", "vaslat_r", "vasmed_r", "bflh_r", "bfsh_r", "semimem_r", "semiten_r",
    "glmax1_r", "glmax2_r", "glmax3_r", "iliacus_r", "psoas_r", "gasmed_r", "gaslat_r", "soleus_r", "tibant_r",
)
"""The major right-leg muscles, named alike in MyoFullBody and the Rajagopal model."""

SWEEPS: dict[str, tuple[float, ...]] = {
    "hip_flexion_r": tuple(float(d) for d in np.linspace(-30.0, 110.0, 15)),
    "knee_angle_r": tuple(float(d) for d in np.linspace(0.0, 120.0, 13)),
    "ankle_angle_r": tuple(float(d) for d in np.linspace(-40.0, 30.0, 15)),
}
"""Joint -> angles (degrees) it is swept through, every other joint at its neutral value."""


def muscle_paths(model: mujoco.MjModel, qpos: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Actuator lengths (P, nu) and moments dL/dqvel (P, nu, nv) of `model` at poses `qpos` (P, nq),
    from MuJoCo C's position stage."""
    qpos = np.atleast_2d(qpos)
    data = mujoco.MjData(model)
    lengths = np.zeros((len(qpos), model.nu))
    moments = np.zeros((len(qpos), model.nu, model.nv))
    for i, q in enumerate(qpos):
        data.qpos[:] = q
        mujoco.mj_fwdPosition(model, data)
        lengths[i] = data.actuator_length
        mujoco.mju_sparse2dense(moments[i], data.actuator_moment, data.moment_rownnz, data.moment_rowadr,
                                data.moment_colind)
    return lengths, moments


def moment_arms(coupling: Coupling, qpos: np.ndarray, moments: np.ndarray) -> np.ndarray:
    """Moment arms (P, nu, J) about the independent joints `coupling.joint_ids` at poses `qpos`
    (P, nq) from `moments` (P, nu, nv): -dL/dq with driven joints moving with their drivers."""
    arms = np.empty((len(qpos), moments.shape[1], len(coupling.joint_ids)))
    for i, q in enumerate(qpos):
        arms[i] = -(moments[i] @ coupling.velocity_map(q))[:, coupling.num_root:]
    return arms


def neutral_pose(embodiment: Embodiment) -> np.ndarray:
    """Every joint at its reference value (`qpos0`), the couplings completed: OpenSim's default pose."""
    return embodiment.coupling.complete(embodiment.mj_model.qpos0.copy())


@dataclass(frozen=True)
class LegSweep:
    """Lengths and moment arms (M muscles, K angles) of `muscles` while `joint` moves through `degrees`."""

    joint: str
    degrees: np.ndarray
    muscles: tuple[str, ...]
    length: np.ndarray
    moment_arm: np.ndarray


def leg_sweeps(embodiment: Embodiment, muscles: tuple[str, ...] = LEG_MUSCLES) -> dict[str, LegSweep]:
    """`SWEEPS` on `embodiment` from its neutral pose: one `LegSweep` per joint."""
    m, coupling = embodiment.mj_model, embodiment.coupling
    missing = [name for name in muscles if name not in embodiment.muscle_names]
    if missing:
        raise ValueError(f"embodiment {embodiment.name!r} lacks the muscles {', '.join(missing)}")
    rows = [embodiment.muscle_names.index(name) for name in muscles]
    sweeps = {}
    for joint, degrees in SWEEPS.items():
        jid = m.joint(joint).id
        column = list(coupling.joint_ids).index(jid)
        qpos = np.tile(neutral_pose(embodiment), (len(degrees), 1))
        qpos[:, m.jnt_qposadr[jid]] = np.radians(degrees)
        coupling.complete(qpos)
        lengths, moments = muscle_paths(m, qpos)
        arms = moment_arms(coupling, qpos, moments)
        sweeps[joint] = LegSweep(joint, np.array(degrees), muscles, lengths[:, rows].T, arms[:, rows, column].T)
    return sweeps


def read_opensim_golden(path: Path = OPENSIM_GOLDEN) -> dict[str, LegSweep]:
    """The OpenSim sweeps stored by `tests/golden/make_opensim_golden.py`."""
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no OpenSim golden data (run tests/golden/make_opensim_golden.py)")
    data = json.loads(path.read_text())
    muscles = tuple(data["muscles"])
    return {
        joint: LegSweep(joint, np.array(s["degrees"]), muscles, np.array(s["length"]), np.array(s["moment_arm"]))
        for joint, s in data["sweeps"].items()
    }


SEGMENT_OF = {
    **dict.fromkeys(("recfem_r", "vasint_r", "vaslat_r", "vasmed_r", "bflh_r", "bfsh_r", "semimem_r", "semiten_r"), "femur"),
    **dict.fromkeys(("glmax1_r", "glmax2_r", "glmax3_r", "iliacus_r", "psoas_r"), "pelvis"),
    **dict.fromkeys(("gasmed_r", "gaslat_r", "soleus_r", "tibant_r"), "tibia"),
}
"""The segment whose size a muscle's length and moment arms are scaled by between the two bodies."""


def segment_sizes(embodiment: Embodiment) -> dict[str, float]:
    """Hip width and hip-knee, knee-ankle joint-centre distances (m) at the neutral pose."""
    m = embodiment.mj_model
    data = posed(m, neutral_pose(embodiment))
    centre = {name: data.xanchor[m.joint(name).id].copy()
              for name in ("hip_flexion_r", "hip_flexion_l", "knee_angle_r", "ankle_angle_r")}
    return {
        "pelvis": float(np.linalg.norm(centre["hip_flexion_r"] - centre["hip_flexion_l"])),
        "femur": float(np.linalg.norm(centre["knee_angle_r"] - centre["hip_flexion_r"])),
        "tibia": float(np.linalg.norm(centre["ankle_angle_r"] - centre["knee_angle_r"])),
    }


@dataclass(frozen=True)
class AnatomyComparison:
    """mmimic's and OpenSim's sweeps of the same muscles; `scale` (M,) takes mmimic's sizes to
    OpenSim's (OpenSim segment / mmimic segment, per `SEGMENT_OF`).

    `length_error[joint]` (M,): the largest |scaled mmimic length / OpenSim length - 1| over the
    sweep. `arm_error[joint]` (M,): the largest |scaled mmimic moment arm - OpenSim's| (m), NaN
    for a muscle that does not span the joint (OpenSim moment arm under 1 mm throughout)."""

    mmimic: dict[str, LegSweep]
    opensim: dict[str, LegSweep]
    scale: np.ndarray
    length_error: dict[str, np.ndarray]
    arm_error: dict[str, np.ndarray]


def compare_with_opensim(embodiment: Embodiment, golden: Path = OPENSIM_GOLDEN) -> AnatomyComparison:
    """Sweep `embodiment`'s leg muscles as the OpenSim golden data and measure the agreement."""
    reference = read_opensim_golden(golden)
    muscles = next(iter(reference.values())).muscles
    ours = leg_sweeps(embodiment, muscles)
    theirs_size = json.loads(golden.read_text())["segments"]
    our_size = segment_sizes(embodiment)
    scale = np.array([theirs_size[SEGMENT_OF[m]] / our_size[SEGMENT_OF[m]] for m in muscles])
    length_error, arm_error = {}, {}
    for joint, theirs in reference.items():
        mine = ours[joint]
        length_error[joint] = np.abs(mine.length * scale[:, None] / theirs.length - 1.0).max(axis=1)
        spans = np.abs(theirs.moment_arm).max(axis=1) > 1e-3
        error = np.abs(mine.moment_arm * scale[:, None] - theirs.moment_arm).max(axis=1)
        arm_error[joint] = np.where(spans, error, np.nan)
    return AnatomyComparison(ours, reference, scale, length_error, arm_error)


def plot_anatomy(comparison: AnatomyComparison, directory: Path, prefix: str = "anatomy_") -> list[Path]:
    """One PNG per muscle, `<prefix><muscle>.png` in `directory`: scaled mmimic against OpenSim,
    length (top) and moment arm (bottom) over each sweep. Returns the paths written."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    directory.mkdir(parents=True, exist_ok=True)
    joints = list(comparison.opensim)
    paths = []
    for k, muscle in enumerate(next(iter(comparison.opensim.values())).muscles):
        fig, axes = plt.subplots(2, len(joints), figsize=(3.2 * len(joints), 4.6), squeeze=False)
        for c, joint in enumerate(joints):
            mine, theirs = comparison.mmimic[joint], comparison.opensim[joint]
            for r, (field, unit) in enumerate((("length", "length (m)"), ("moment_arm", "moment arm (m)"))):
                ax = axes[r, c]
                ax.plot(theirs.degrees, getattr(theirs, field)[k], color="0.25", label="OpenSim 4.6 (Rajagopal)")
                ax.plot(mine.degrees, getattr(mine, field)[k] * comparison.scale[k], color="tab:red",
                        label="mmimic, scaled")
                ax.set_xlabel(f"{joint} (deg)", fontsize=8)
                ax.tick_params(labelsize=7)
                if c == 0:
                    ax.set_ylabel(unit, fontsize=8)
        axes[0, 0].legend(fontsize=7)
        segment = SEGMENT_OF.get(muscle, "?")
        fig.suptitle(f"{muscle}: mmimic x {comparison.scale[k]:.3f} ({segment} size) vs OpenSim", fontsize=9)
        fig.tight_layout()
        path = directory / f"{prefix}{muscle}.png"
        fig.savefig(path, dpi=72)
        plt.close(fig)
        paths.append(path)
    return paths


def anatomy_markdown(comparison: AnatomyComparison, directory: Path) -> str:
    """A report section: the largest disagreement per muscle and sweep, and the per-muscle plots
    written into `directory` (linked by file name)."""
    joints = list(comparison.opensim)
    paths = plot_anatomy(comparison, directory)
    header = ["muscle", *(f"{j} length" for j in joints), *(f"{j} moment arm (mm)" for j in joints)]
    rows = []
    for k, muscle in enumerate(next(iter(comparison.opensim.values())).muscles):
        lengths = [f"{comparison.length_error[j][k]:.1%}" for j in joints]
        arms = ["-" if np.isnan(comparison.arm_error[j][k]) else f"{1000 * comparison.arm_error[j][k]:.1f}" for j in joints]
        rows.append([muscle, *lengths, *arms])
    table = "\n".join("| " + " | ".join(r) + " |" for r in [header, ["---"] * len(header), *rows])
    return (
        "## Muscle paths against OpenSim (Rajagopal model, segment-scaled)\n\n"
        "Largest relative length difference and moment-arm difference over each sweep.\n\n"
        f"{table}\n\n" + "".join(f"![{p.stem}]({p.name})\n" for p in paths)
    )
