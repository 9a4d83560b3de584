"""Batched forward kinematics of motion frames on the device with mujoco_warp.

Frames are processed as worlds, `chunk` at a time: `kinematics`, `com_pos` and `com_vel` give
site poses and com-based body velocities, from which the mimic sites' spatial velocities follow
as in MuscleMimic (reference/musclemimic.md §2.4):
`w_i = cvel_ang(parent_i)`, `v_i = cvel_lin(parent_i) - (p_i - subtree_com[root]) x w_i`.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass

import mujoco_warp as mjw
import torch
import warp as wp

from mmimic.embodiment import Embodiment
from mmimic.motion.quaternion import quat_mul


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


def site_kinematics(embodiment: Embodiment, qpos: torch.Tensor, qvel: torch.Tensor, chunk: int | None = None) -> SiteTrajectory:
    """Mimic-site poses and velocities for every frame of `qpos` (F, nq) and `qvel` (F, nv),
    float32 on one device; the results live on the same device. `chunk` frames go through
    the engine at a time as worlds (default 4096 on a GPU, 256 on the CPU, where Warp runs the
    worlds one after another and a smaller chunk saves allocation)."""
    model = embodiment.mj_model
    device = qpos.device
    frames = qpos.shape[0]
    chunk = chunk or (4096 if device.type == "cuda" else 256)
    worlds = max(1, min(chunk, frames))
    site_ids = torch.as_tensor(embodiment.mimic_site_ids, dtype=torch.int64, device=device)
    body_ids = torch.as_tensor(embodiment.mimic_body_ids, dtype=torch.int64, device=device)
    local_quat = torch.as_tensor(model.site_quat[embodiment.mimic_site_ids], dtype=torch.float32, device=device)
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
