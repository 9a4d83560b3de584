"""Independent truth for the environment tests: a stand-in motion library replayed through MuJoCo C,
and numpy implementations of the published relative-site, observation and reward formulas
(MuscleMimic, arXiv 2603.25544). Other test_env_* modules import from here."""

from __future__ import annotations

import mujoco
import numpy as np
import torch
from scipy.spatial.transform import Rotation

import mmimic

FPS = 100


class StandInMotions:
    """The MotionLibrary contract, filled by MuJoCo C kinematics of smooth random joint trajectories.

    Dependent joints of joint equalities follow their polynomial, so frames satisfy the model's couplings.
    """

    def __init__(self, embodiment: mmimic.Embodiment, lengths: list[int], seed: int = 0, weights: list[float] | None = None) -> None:
        m = embodiment.mj_model
        d = mujoco.MjData(m)
        rng = np.random.default_rng(seed)
        qpos = np.concatenate([_trajectory(m, embodiment.initial_qpos(), n, rng) for n in lengths])
        starts = np.cumsum([0] + lengths[:-1])
        qvel = np.zeros((len(qpos), m.nv))
        for s, n in zip(starts, lengths):
            for t in range(s, s + n):  # central differences, one-sided at the clip's ends
                a, b = max(t - 1, s), min(t + 1, s + n - 1)
                mujoco.mj_differentiatePos(m, qvel[t], (b - a) / FPS, qpos[a], qpos[b])
        sites = embodiment.mimic_site_ids
        xpos, xmat, vel = [], [], []
        for q, v in zip(qpos, qvel):
            d.qpos[:], d.qvel[:] = q, v
            kinematics(m, d)
            p, r, sv = site_frames(embodiment, d)
            xpos.append(p), xmat.append(r), vel.append(sv)
        f32 = lambda x: torch.as_tensor(np.asarray(x), dtype=torch.float32)  # noqa: E731
        self.fps = FPS
        self.num_clips = len(lengths)
        self.clip_start = torch.as_tensor(starts, dtype=torch.int64)
        self.clip_length = torch.as_tensor(lengths, dtype=torch.int64)
        self.clip_weight = f32(weights or [1.0] * len(lengths))
        self.qpos, self.qvel = f32(qpos), f32(qvel)
        self.site_xpos, self.site_xmat, self.site_vel = f32(xpos), f32(xmat), f32(vel)
        assert len(sites) == self.site_xpos.shape[1]

    def sample_clips(self, n: int, generator: torch.Generator) -> torch.Tensor:
        return torch.multinomial(self.clip_weight, n, replacement=True, generator=generator)


def _trajectory(m: mujoco.MjModel, base: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    t = np.arange(n)[:, None] / FPS
    q = np.tile(base, (n, 1)).astype(np.float64)
    for j in range(m.njnt):
        adr, kind = m.jnt_qposadr[j], int(m.jnt_type[j])
        if kind == mujoco.mjtJoint.mjJNT_FREE:
            q[:, adr] += 0.8 * t[:, 0] + rng.uniform(-1, 1)
            q[:, adr + 1] += 0.05 * np.sin(3 * t[:, 0]) + rng.uniform(-1, 1)
            q[:, adr + 2] += -0.055 + 0.02 * np.sin(6 * t[:, 0])  # the keyframe's feet hover 5 cm above the floor
            yaw = rng.uniform(-np.pi, np.pi) + 0.3 * np.sin(2 * t[:, 0])
            pitch = 0.1 * np.sin(4 * t[:, 0])
            turn = Rotation.from_euler("zy", np.stack([yaw, pitch], 1))
            root = Rotation.from_quat(base[adr + 3 : adr + 7], scalar_first=True)
            q[:, adr + 3 : adr + 7] = (turn * root).as_quat(scalar_first=True)
        else:  # hinge or slide
            scale = 0.3 if kind == mujoco.mjtJoint.mjJNT_HINGE else 0.01
            wave = scale * np.sin(2 * np.pi * rng.uniform(0.3, 1.5) * t[:, 0] + rng.uniform(0, 2 * np.pi))
            q[:, adr] = base[adr] + wave
            if m.jnt_limited[j]:
                q[:, adr] = np.clip(q[:, adr], *m.jnt_range[j])
    for e in range(m.neq):
        if int(m.eq_type[e]) == mujoco.mjtEq.mjEQ_JOINT:
            j1, j2 = m.eq_obj1id[e], m.eq_obj2id[e]
            a1 = m.jnt_qposadr[j1]
            x = q[:, m.jnt_qposadr[j2]] - m.qpos0[m.jnt_qposadr[j2]] if j2 >= 0 else np.zeros(n)
            c = m.eq_data[e, :5]
            q[:, a1] = m.qpos0[a1] + c[0] + c[1] * x + c[2] * x**2 + c[3] * x**3 + c[4] * x**4
    return q


def kinematics(m: mujoco.MjModel, d: mujoco.MjData) -> None:
    """Positions, centre of mass and body velocities of the current qpos/qvel (no dynamics)."""
    mujoco.mj_kinematics(m, d)
    mujoco.mj_comPos(m, d)
    mujoco.mj_comVel(m, d)


def site_frames(embodiment: mmimic.Embodiment, d: mujoco.MjData) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Mimic-site positions (S,3), rotations (S,3,3) and world [angular, linear] velocities (S,6) (motion/kinematics.py)."""
    ids = embodiment.mimic_site_ids
    p = d.site_xpos[ids].copy()
    r = d.site_xmat[ids].reshape(-1, 3, 3).copy()
    cvel = d.cvel[embodiment.mimic_body_ids]
    w = cvel[:, :3]
    v = cvel[:, 3:] - np.cross(p - d.subtree_com[embodiment.root_body_id], w)
    return p, r, np.concatenate([w, v], 1)


def relative_features(p: np.ndarray, r: np.ndarray, vel: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """site_rpos, site_rangles, site_rvel (sites 1..S-1) exactly as kernels/observation.py writes them."""
    rrel = np.einsum("kj,ikl->ijl", r[0], r[1:])  # R_0^T R_i
    rpos = p[1:] - p[0]
    rangles = Rotation.from_matrix(rrel).as_rotvec()
    ang = np.einsum("ikj,ik->ij", rrel, vel[1:, :3]) - vel[0, :3]
    lin = np.einsum("jk,ik->ij", r[0], vel[0, 3:] - vel[1:, 3:])
    return rpos, rangles, np.concatenate([ang, lin], 1)


def quat_angle(a: np.ndarray, b: np.ndarray) -> float:
    a, b = a / np.linalg.norm(a), b / np.linalg.norm(b)
    return 2 * np.arccos(np.clip(abs(np.dot(a, b)), 0, 1))


def reward_terms(embodiment: mmimic.Embodiment, sim: dict, ref: dict, action: np.ndarray, last_action: np.ndarray) -> dict[str, float]:
    """Every built-in term (unweighted) of docs/rewards.md for one world; `sim`/`ref` hold qpos, qvel and rel features."""
    root = embodiment.has_free_root
    quat = np.zeros(len(sim["qpos"]), bool)
    if root:
        quat[3:7] = True
    out = {}
    dq = sim["qpos"][~quat] - ref["qpos"][~quat]
    err = np.mean(dq**2) + (quat_angle(sim["qpos"][3:7], ref["qpos"][3:7]) if root else 0.0)
    out["qpos"] = np.exp(-10 * err)
    out["qvel"] = np.exp(-2 * np.mean((sim["qvel"] - ref["qvel"]) ** 2))
    if root:
        out["root_pos"] = np.exp(-10 * np.mean((sim["qpos"][:3] - ref["qpos"][:3]) ** 2))

        def local(x):
            rot = Rotation.from_quat(x["qpos"][3:7], scalar_first=True).as_matrix()
            return np.concatenate([rot.T @ x["qvel"][:3], x["qvel"][3:6]])

        out["root_vel"] = np.exp(-10 * np.mean((local(sim) - local(ref)) ** 2))
    else:
        out["root_pos"] = out["root_vel"] = 0.0
    out["rpos"] = np.exp(-100 * np.mean((sim["rpos"] - ref["rpos"]) ** 2))
    out["rquat"] = np.exp(-10 * np.mean((sim["rangles"] - ref["rangles"]) ** 2))
    out["rvel_rot"] = np.exp(-0.1 * np.mean((sim["rvel"][:, :3] - ref["rvel"][:, :3]) ** 2))
    out["rvel_lin"] = np.exp(-0.1 * np.mean((sim["rvel"][:, 3:] - ref["rvel"][:, 3:]) ** 2))
    excess = np.maximum(action - 1, 0) + np.maximum(-1 - action, 0)
    out["action_out_of_bounds"] = -np.sum(excess**2) / len(action)
    out["action_rate"] = -np.sum((action - last_action) ** 2)
    out["activation_energy"] = -np.mean(sim["act"] ** 2)
    return out


def test_standin_site_velocity_is_the_derivative_of_site_position(bimanual: mmimic.Embodiment) -> None:
    """The truth's site velocities agree with central differences of its site positions and rotations."""
    lib = StandInMotions(bimanual, [40], seed=1)
    p, r, vel = lib.site_xpos.double().numpy(), lib.site_xmat.double().numpy(), lib.site_vel.double().numpy()
    lin = (p[2:] - p[:-2]) * FPS / 2
    assert np.abs(lin - vel[1:-1, :, 3:]).max() < 2e-2 * np.abs(lin).max()
    # omega^ = dR/dt R^T
    dr = (r[2:] - r[:-2]) * FPS / 2
    skew = np.einsum("tsij,tskj->tsik", dr, r[1:-1])
    ang = np.stack([skew[..., 2, 1], skew[..., 0, 2], skew[..., 1, 0]], -1)
    assert np.abs(ang - vel[1:-1, :, :3]).max() < 2e-2 * np.abs(ang).max()


def reference_rows(env: mmimic.ImitationEnv, lib: StandInMotions, start: torch.Tensor) -> dict[str, np.ndarray]:
    """Library rows of every world's current and look-ahead frames, and its root x-y offset, from the env's pointer."""
    clip = env.clip.numpy().astype(int)
    step = env.clip_step.numpy().astype(int)
    first = lib.clip_start.numpy()[clip]
    last = lib.clip_length.numpy()[clip] - 1
    k = np.arange(env.config.lookahead)[:, None]
    rows = first + np.minimum(step + k * env.config.stride, last)
    offset = np.zeros((env.num_envs, 2))
    if env.embodiment.has_free_root:
        offset = lib.qpos.double().numpy()[first + start.numpy(), :2]
    return {"rows": rows, "offset": offset, "phase": step / lib.clip_length.numpy()[clip]}


def reference_state(lib: StandInMotions, row: int, offset: np.ndarray, root: bool) -> dict[str, np.ndarray]:
    """Reference qpos (root x-y re-centred), qvel and relative site features of one library row."""
    qpos = lib.qpos.double().numpy()[row].copy()
    if root:
        qpos[:2] -= offset
    site_pos = lib.site_xpos.double().numpy()[row]
    rpos, rangles, rvel = relative_features(site_pos, lib.site_xmat.double().numpy()[row], lib.site_vel.double().numpy()[row])
    shift = np.array([offset[0], offset[1], 0.0]) if root else np.zeros(3)
    return {"qpos": qpos, "qvel": lib.qvel.double().numpy()[row], "site_pos": site_pos - shift,
            "rpos": rpos, "rangles": rangles, "rvel": rvel}


def simulator_state(embodiment: mmimic.Embodiment, d: mujoco.MjData) -> dict[str, np.ndarray]:
    """The state and relative site features held in a MuJoCo C MjData (after `kinematics`)."""
    p, r, vel = site_frames(embodiment, d)
    rpos, rangles, rvel = relative_features(p, r, vel)
    return {"qpos": d.qpos.copy(), "qvel": d.qvel.copy(), "act": d.act.copy(), "site_pos": p,
            "rpos": rpos, "rangles": rangles, "rvel": rvel}


def expected_observation(env: mmimic.ImitationEnv, lib: StandInMotions, frames: dict, world: int, d: mujoco.MjData) -> dict[str, np.ndarray]:
    """The observation blocks of mmimic/env/layout.py for one world, from MuJoCo C data `d` and the library."""
    e, c = env.embodiment, env.config
    root = e.has_free_root
    sim = simulator_state(e, d)
    rows = frames["rows"][:, world]
    refs = [reference_state(lib, row, frames["offset"][world], root) for row in rows]
    channels = {"length": d.actuator_length, "velocity": d.actuator_velocity, "force": d.actuator_force,
                "excitation": d.ctrl, "activation": d.act}
    blocks = {}
    if root:
        blocks["q_free_joint"] = d.qpos[2:7]
        blocks["q_all_pos"] = d.qpos[7:]
        blocks["dq_free_joint"] = d.qvel[:6]
        blocks["dq_all_vel"] = d.qvel[6:]
    else:
        blocks["q_all_pos"] = d.qpos
        blocks["dq_all_vel"] = d.qvel
    blocks["muscle_" + "_".join(c.muscle_channels)] = np.stack([channels[k] for k in c.muscle_channels], 1).ravel()
    if c.touch:
        blocks["touch"] = d.sensordata[e.touch_sensor_adr]
    blocks["goal_site_rpos"] = sim["rpos"].ravel()
    blocks["goal_site_rangles"] = sim["rangles"].ravel()
    blocks["goal_site_rvel"] = sim["rvel"].ravel()
    lib_qpos, lib_qvel = lib.qpos.double().numpy(), lib.qvel.double().numpy()
    if c.goal == "concise":
        blocks["goal_ref_site_rpos"] = refs[0]["rpos"].ravel()
        blocks["goal_lookahead"] = np.concatenate([
            np.concatenate([lib_qpos[rows[k], :3] - lib_qpos[rows[0], :3], lib_qvel[rows[k], :6] - lib_qvel[rows[0], :6],
                            refs[k]["rpos"].ravel()])
            for k in range(1, len(rows))
        ])
    else:
        for name, key in (("goal_ref_qpos", "qpos"), ("goal_ref_qvel", "qvel"), ("goal_ref_site_rpos", "rpos"),
                          ("goal_ref_site_rangles", "rangles"), ("goal_ref_site_rvel", "rvel")):
            blocks[name] = np.concatenate([ref[key].ravel() for ref in refs])
    blocks["goal_phase"] = np.array([frames["phase"][world]])
    return blocks


def split_observation(env: mmimic.ImitationEnv, row: torch.Tensor) -> dict[str, np.ndarray]:
    """One observation row cut into the env's named blocks."""
    sizes = [size for _, size in env.obs_layout]
    parts = np.split(row.double().numpy(), np.cumsum(sizes)[:-1])
    return {name: part for (name, _), part in zip(env.obs_layout, parts)}


def total_reward(terms: dict[str, float], weights: dict[str, float], penalties: set[str]) -> float:
    """max(sum of weighted imitation terms + max(sum of weighted penalties, -1), 0) (docs/rewards.md)."""
    gain = sum(weights[k] * v for k, v in terms.items() if k not in penalties and k in weights)
    cost = sum(weights[k] * v for k, v in terms.items() if k in penalties and k in weights)
    return max(gain + max(cost, -1.0), 0.0)
