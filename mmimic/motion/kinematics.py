"""Batched forward kinematics of motion frames on the device with mujoco_warp.

Frames are processed as worlds, `chunk` at a time: `kinematics`, `com_pos` and `com_vel` give
site poses and com-based body velocities, from which the mimic sites' spatial velocities follow
as in MuscleMimic (arXiv 2603.25544):
`w_i = cvel_ang(parent_i)`, `v_i = cvel_lin(parent_i) - (p_i - subtree_com[root]) x w_i`.

The engine runs a kinematic copy of the body (`site_model`): the same bodies, joints and
inertias, the mimic sites, and none of the geoms, muscle-path sites, tendons or actuators, whose
poses the library never reads (MyoFullBody: 17 sites instead of 2038, no geoms instead of 416).
Poses, com and velocities are those of the full model (tests compare with MuJoCo C on it).
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable
from dataclasses import dataclass

import mujoco
import mujoco_warp as mjw
import numpy as np
import torch
import warp as wp

from mmimic.embodiment import Embodiment
from mmimic.motion.quaternion import quat_mul

log = logging.getLogger(__name__)


@dataclass
class SiteTrajectory:
    """Mimic-site quantities per frame, world frame: positions (F, S, 3), rotation matrices
    (F, S, 3, 3, site -> world, row-major), quaternions (F, S, 4) and velocities (F, S, 6) [w, v]."""

    xpos: torch.Tensor
    xmat: torch.Tensor
    xquat: torch.Tensor
    vel: torch.Tensor


def _warp_scope(device: torch.device) -> contextlib.ExitStack:
    """Make Warp launch on `device`, on torch's current stream when it is a GPU."""
    wp.init()
    stack = contextlib.ExitStack()
    stack.enter_context(wp.ScopedDevice(wp.device_from_torch(device)))
    if device.type == "cuda":
        stack.enter_context(wp.ScopedStream(wp.stream_from_torch(device)))
    return stack


def posed(model: mujoco.MjModel, qpos: np.ndarray) -> mujoco.MjData:
    """A new MjData of `model` at `qpos` after MuJoCo kinematics (on the host)."""
    data = mujoco.MjData(model)
    data.qpos[:] = qpos
    mujoco.mj_kinematics(model, data)
    return data


def per_frame(model: mujoco.MjModel, qpos: np.ndarray, read: Callable[[mujoco.MjData], object]) -> np.ndarray:
    """(T, ...) what `read` takes from an MjData posed by MuJoCo kinematics (on the host) at each
    frame of `qpos` (T, nq), copied; `read` may run further stages (e.g. `mj_tendon`) first."""
    data = mujoco.MjData(model)
    values = []
    for q in qpos:
        data.qpos[:] = q
        mujoco.mj_kinematics(model, data)
        values.append(np.array(read(data)))
    return np.stack(values)


def kinematic_spec(model: mujoco.MjModel, inertias: bool) -> tuple[mujoco.MjSpec, list[mujoco.MjsBody]]:
    """A spec of `model`'s kinematic tree only, and its bodies by id: the same bodies (poses; with
    `inertias` the model's, else 1 kg each) and joints (types, positions, axes, ranges, hinge/slide
    `ref` = qpos0), in the same order, so the same qpos and qvel layout; nothing else."""
    spec = mujoco.MjSpec()
    spec.compiler.degree = False
    bodies = [spec.worldbody]
    for b in range(1, model.nbody):
        body = bodies[int(model.body_parentid[b])].add_body(
            name=model.body(b).name, pos=model.body_pos[b], quat=model.body_quat[b], explicitinertial=True
        )
        if inertias:
            body.mass, body.ipos, body.iquat = model.body_mass[b], model.body_ipos[b], model.body_iquat[b]
            body.inertia = model.body_inertia[b]
        else:
            body.mass, body.inertia = 1.0, [1e-2, 1e-2, 1e-2]
        bodies.append(body)
        for j in range(model.body_jntadr[b], model.body_jntadr[b] + model.body_jntnum[b]):
            kind = mujoco.mjtJoint(model.jnt_type[j])
            joint = body.add_joint(name=model.joint(j).name, type=kind)
            if kind != mujoco.mjtJoint.mjJNT_FREE:
                joint.pos, joint.axis, joint.range = model.jnt_pos[j], model.jnt_axis[j], model.jnt_range[j]
                joint.limited = mujoco.mjtLimited.mjLIMITED_TRUE if model.jnt_limited[j] else mujoco.mjtLimited.mjLIMITED_FALSE
            if kind in (mujoco.mjtJoint.mjJNT_HINGE, mujoco.mjtJoint.mjJNT_SLIDE):
                joint.ref = model.qpos0[model.jnt_qposadr[j]]
    return spec, bodies


def site_model(embodiment: Embodiment) -> tuple[mujoco.MjModel, list[int]]:
    """A model with the embodiment's kinematic tree (`kinematic_spec`, inertias kept) and mimic sites
    only, and the mimic sites' ids in it. The embodiment's own model when the copy cannot be made
    (mocap bodies, a compile error)."""
    m = embodiment.mj_model
    if m.nmocap:
        return m, list(embodiment.mimic_site_ids)
    spec, bodies = kinematic_spec(m, inertias=True)
    for site in embodiment.mimic_site_ids:
        bodies[int(m.site_bodyid[site])].add_site(name=m.site(site).name, pos=m.site_pos[site], quat=m.site_quat[site])
    try:
        copy = spec.compile()
    except ValueError as exc:
        log.info("kinematic copy of %s not compiled (%s); the full model computes the sites", embodiment.name, exc)
        return m, list(embodiment.mimic_site_ids)
    same = copy.nq == m.nq and copy.nv == m.nv and all(copy.body(b).name == m.body(b).name for b in range(m.nbody))
    if not same:
        return m, list(embodiment.mimic_site_ids)
    return copy, [copy.site(m.site(s).name).id for s in embodiment.mimic_site_ids]


def site_kinematics(embodiment: Embodiment, qpos: torch.Tensor, qvel: torch.Tensor, chunk: int | None = None) -> SiteTrajectory:
    """Mimic-site poses and velocities for every frame of `qpos` (F, nq) and `qvel` (F, nv),
    float32 on one device; the results live on the same device. `chunk` frames go through
    the engine at a time as worlds (default 4096 on a GPU, 256 on the CPU, where Warp runs the
    worlds one after another and a smaller chunk saves allocation)."""
    model, mimic_sites = site_model(embodiment)
    device = qpos.device
    frames = qpos.shape[0]
    chunk = chunk or (4096 if device.type == "cuda" else 256)
    worlds = max(1, min(chunk, frames))
    site_ids = torch.as_tensor(mimic_sites, dtype=torch.int64, device=device)
    body_ids = torch.as_tensor(embodiment.mimic_body_ids, dtype=torch.int64, device=device)
    local_quat = torch.as_tensor(model.site_quat[mimic_sites], dtype=torch.float32, device=device)
    num_sites = site_ids.shape[0]
    out = SiteTrajectory(
        xpos=torch.empty(frames, num_sites, 3, device=device),
        xmat=torch.empty(frames, num_sites, 3, 3, device=device),
        xquat=torch.empty(frames, num_sites, 4, device=device),
        vel=torch.empty(frames, num_sites, 6, device=device),
    )
    with _warp_scope(device):
        m = mjw.put_model(model)
        d = mjw.make_data(model, nworld=worlds, nconmax=1, njmax=1)
        d_qpos, d_qvel = wp.to_torch(d.qpos), wp.to_torch(d.qvel)
        site_xpos, site_xmat = wp.to_torch(d.site_xpos), wp.to_torch(d.site_xmat)
        xquat, cvel, subtree_com = wp.to_torch(d.xquat), wp.to_torch(d.cvel), wp.to_torch(d.subtree_com)
        for start in range(0, frames, worlds):
            n = min(worlds, frames - start)
            rows = slice(start, start + n)
            d_qpos[:n].copy_(qpos[rows])
            d_qvel[:n].copy_(qvel[rows])
            mjw.kinematics(m, d)
            mjw.com_pos(m, d)
            mjw.com_vel(m, d)
            pos = site_xpos[:n].index_select(1, site_ids)
            body_vel = cvel[:n].index_select(1, body_ids)
            w = body_vel[..., :3]
            offset = pos - subtree_com[:n, embodiment.root_body_id].unsqueeze(1)
            out.xpos[rows] = pos
            out.xmat[rows] = site_xmat[:n].index_select(1, site_ids)
            out.xquat[rows] = quat_mul(xquat[:n].index_select(1, body_ids), local_quat)
            out.vel[rows, :, :3] = w
            out.vel[rows, :, 3:] = body_vel[..., 3:] - torch.linalg.cross(offset, w, dim=-1)
    return out
