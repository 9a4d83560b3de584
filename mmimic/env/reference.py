"""The motion library as the environment reads it: validated once, viewed as Warp arrays without copies."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import torch
import warp as wp

from mmimic.embodiment import Embodiment

WARP_DTYPES = {"qpos": wp.float32, "qvel": wp.float32, "site_xpos": wp.vec3, "site_xmat": wp.mat33, "site_vel": wp.spatial_vector}


class MotionSource(Protocol):
    """What the environment needs of a motion library (`mmimic.MotionLibrary`), all on the env's device.

    Frames of all clips are concatenated: clip c is rows clip_start[c] .. clip_start[c] + clip_length[c] - 1.
    Sites are the embodiment's mimic sites in its order; `site_xmat` is site -> world, row-major;
    `site_vel` is the world [angular, linear] site velocity (MuscleMimic's; kernels/observation.py).
    """

    fps: float
    num_clips: int
    clip_start: torch.Tensor  # (C,) int64
    clip_length: torch.Tensor  # (C,) int64
    clip_weight: torch.Tensor  # (C,) float32
    qpos: torch.Tensor  # (F, nq) float32
    qvel: torch.Tensor  # (F, nv) float32
    site_xpos: torch.Tensor  # (F, S, 3) float32
    site_xmat: torch.Tensor  # (F, S, 3, 3) float32
    site_vel: torch.Tensor  # (F, S, 6) float32


@dataclass
class ReferenceArrays:
    """Warp views of the library's frames (sharing its memory) plus int32 clip tables and the clip CDF."""

    tensors: list[torch.Tensor]  # keeps the viewed memory alive
    qpos: wp.array
    qvel: wp.array
    site_xpos: wp.array
    site_xmat: wp.array
    site_vel: wp.array
    clip_start: wp.array
    clip_length: wp.array
    clip_cdf: wp.array


def reference_arrays(motions: MotionSource, embodiment: Embodiment, control_dt: float, device: torch.device) -> ReferenceArrays:
    """Check `motions` against the embodiment and the control rate, and view it for the kernels."""
    m = embodiment.mj_model
    sites = len(embodiment.mimic_sites)
    fps = getattr(motions, "fps", None)
    if not isinstance(fps, (int, float)) or abs(fps * control_dt - 1.0) > 1e-6:
        raise ValueError(f"motions.fps is {fps!r}; the environment steps at {1.0 / control_dt:g} Hz and needs motions at that rate")
    frames = _tensor(motions, "qpos", torch.float32, device).shape[0]
    expected = {
        "qpos": (frames, m.nq),
        "qvel": (frames, m.nv),
        "site_xpos": (frames, sites, 3),
        "site_xmat": (frames, sites, 3, 3),
        "site_vel": (frames, sites, 6),
    }
    views = {}
    tensors = []
    for name, shape in expected.items():
        tensor = _tensor(motions, name, torch.float32, device)
        if tuple(tensor.shape) != shape:
            raise ValueError(f"motions.{name} has shape {tuple(tensor.shape)}, expected {shape} ({embodiment.name}: nq {m.nq}, nv {m.nv}, {sites} mimic sites)")
        tensor = tensor.contiguous()
        tensors.append(tensor)
        views[name] = wp.from_torch(tensor, dtype=WARP_DTYPES[name])

    start = _tensor(motions, "clip_start", torch.int64, device)
    length = _tensor(motions, "clip_length", torch.int64, device)
    weight = _tensor(motions, "clip_weight", torch.float32, device)
    clips = start.shape[0]
    if clips == 0 or start.shape != (clips,) or length.shape != (clips,) or weight.shape != (clips,):
        raise ValueError(f"motions.clip_start / clip_length / clip_weight must have one entry per clip, got shapes {tuple(start.shape)}, {tuple(length.shape)}, {tuple(weight.shape)}")
    if bool((length < 1).any()) or bool((start < 0).any()) or bool(((start + length) > frames).any()):
        raise ValueError(f"motions.clip_start / clip_length describe clips outside the {frames} frames")
    if not bool(torch.isfinite(weight).all()) or bool((weight < 0).any()) or not float(weight.sum()) > 0:
        raise ValueError("motions.clip_weight must be finite, non-negative and not all zero")
    cdf = torch.cumsum(weight.double(), 0)
    cdf = (cdf / cdf[-1]).float()
    cdf[-1] = 1.0
    tables = [start.to(torch.int32), length.to(torch.int32), cdf]
    tensors.extend(tables)
    return ReferenceArrays(
        tensors=tensors,
        qpos=views["qpos"],
        qvel=views["qvel"],
        site_xpos=views["site_xpos"],
        site_xmat=views["site_xmat"],
        site_vel=views["site_vel"],
        clip_start=wp.from_torch(tables[0]),
        clip_length=wp.from_torch(tables[1]),
        clip_cdf=wp.from_torch(tables[2]),
    )


def _tensor(motions: MotionSource, name: str, dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    tensor = getattr(motions, name, None)
    if not isinstance(tensor, torch.Tensor):
        raise ValueError(f"motions.{name} must be a torch.Tensor, got {type(tensor).__name__}")
    if tensor.dtype != dtype or tensor.device != device:
        raise ValueError(f"motions.{name} must be {dtype} on {device}, got {tensor.dtype} on {tensor.device}")
    return tensor
