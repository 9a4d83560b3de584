"""`MotionLibrary`: every clip of some motion sets as flat tensors on one device.

Clips are fitted to the embodiment by joint name, resampled to the control rate, made to
satisfy the joint-equality couplings (`mmimic.coupling`, so every reset state does), given
velocities by MuJoCo position differencing when they carry none, concatenated frame by frame
(`clip_start`, `clip_length`), and their mimic-site poses and velocities derived once by
batched forward kinematics on the device. Lookups and sampling are batched torch operations
over any number of environments: no Python loop over clips or environments.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from mmimic.embodiment import Embodiment
from mmimic.motion.clip import MotionError, fit_clip, quaternion_columns, read_clip
from mmimic.motion.kinematics import site_kinematics
from mmimic.motion.manifest import ClipEntry, collect_clips
from mmimic.motion.quaternion import quat_to_mat, slerp
from mmimic.motion.resample import differentiate, frame_weights, interpolate, quaternion_index, resample

log = logging.getLogger(__name__)


@dataclass
class MotionFrame:
    """Reference frames for a batch of B environments (world frame, MuJoCo conventions)."""

    qpos: torch.Tensor  # (B, nq)
    qvel: torch.Tensor  # (B, nv)
    site_xpos: torch.Tensor  # (B, S, 3)
    site_xmat: torch.Tensor  # (B, S, 3, 3) site -> world, row-major
    site_vel: torch.Tensor  # (B, S, 6) [angular, linear]


class MotionLibrary:
    """Clips of `sources` (motion directories or single .npz files) for `embodiment` on `device`.

    `split` keeps only the manifest's "train" or "test" clips (clips without a split are train),
    `categories` only the clips of those manifest categories (`MotionError` naming the known ones
    for an unknown category). Per clip: `clip_names`, `clip_categories`, `clip_splits`, and
    `clip_category_id` (C,) indexing the sorted `categories` on the device; `clip_weight` is the
    manifest weight normalised to sum 1 (a weight of 0 is never drawn).
    Frame `k` of clip `c` is row `clip_start[c] + k` of the flat arrays `qpos`, `qvel`,
    `site_xpos`, `site_xmat` and `site_vel`; every clip runs at `fps`, the control rate.
    """

    def __init__(
        self,
        embodiment: Embodiment,
        sources: Sequence[str | Path],
        device: str | torch.device = "cpu",
        *,
        split: str | None = None,
        categories: Sequence[str] | None = None,
    ) -> None:
        self.embodiment = embodiment
        self.device = torch.empty(0, device=device).device  # canonical, e.g. cuda -> cuda:0
        self.fps = 1.0 / embodiment.physics.control_dt
        entries = select_clips(sources, split, categories)
        qpos, qvel = self._load(entries)
        lengths = [q.shape[0] for q in qpos]

        self.clip_names = [e.name for e in entries]
        self.clip_categories = [e.category for e in entries]
        self.clip_splits = [e.split for e in entries]
        self.categories = sorted(set(self.clip_categories))
        self.clip_category_id = torch.tensor(
            [self.categories.index(c) for c in self.clip_categories], dtype=torch.int64, device=self.device
        )
        self.num_clips = len(entries)
        self.num_frames = int(sum(lengths))
        self.clip_length = torch.tensor(lengths, dtype=torch.int64, device=self.device)
        self.clip_start = torch.cumsum(self.clip_length, 0) - self.clip_length
        weights = torch.tensor([e.weight for e in entries], dtype=torch.float64)
        if not weights.sum() > 0:
            where = ", ".join(str(s) for s in ([sources] if isinstance(sources, (str, Path)) else sources))
            raise MotionError(where, "every selected clip has manifest weight 0: there is nothing to sample")
        self.clip_weight = (weights / weights.sum()).to(torch.float32).to(self.device)
        self.qpos = torch.from_numpy(np.concatenate(qpos)).to(self.device, torch.float32)
        self.qvel = torch.from_numpy(np.concatenate(qvel)).to(self.device, torch.float32)
        sites = site_kinematics(embodiment, self.qpos, self.qvel)
        self.site_xpos, self.site_xmat, self.site_vel = sites.xpos, sites.xmat, sites.vel
        self._site_quat = sites.xquat
        self._quat_index = quaternion_index(quaternion_columns(embodiment.mj_model), self.device)

    def _load(self, entries: list[ClipEntry]) -> tuple[list[np.ndarray], list[np.ndarray]]:
        """Every clip fitted, resampled to `fps`, its coupled joints computed from their drivers
        (`Coupling.complete`: clips store them to float32 or hold them at their limits, and
        resampling interpolates them linearly) and given velocities (host, float64)."""
        model = self.embodiment.mj_model
        quat_cols = quaternion_columns(model)
        filled: dict[tuple[str, ...], int] = {}
        dropped: dict[tuple[str, ...], int] = {}
        all_qpos, all_qvel = [], []
        for entry in entries:
            fitted = fit_clip(read_clip(entry.path), self.embodiment, entry.path)
            qpos, qvel = fitted.qpos, fitted.qvel
            if not math.isclose(fitted.fps, self.fps, rel_tol=1e-9):
                qpos, qvel = resample(qpos, qvel, fitted.fps, self.fps, quat_cols)
            qpos = self.embodiment.coupling.complete(qpos.copy())  # resets start from these frames
            if qvel is None:
                qvel = differentiate(model, qpos, self.fps)
            all_qpos.append(qpos)
            all_qvel.append(qvel)
            if fitted.filled:
                filled[fitted.filled] = filled.get(fitted.filled, 0) + 1
            if fitted.dropped:
                dropped[fitted.dropped] = dropped.get(fitted.dropped, 0) + 1
        for joints, count in filled.items():
            log.warning(
                "%d clip(s) lack the %s joint(s) %s; they follow the rest pose qpos0",
                count, self.embodiment.name, ", ".join(joints),
            )
        for joints, count in dropped.items():
            log.info("%d clip(s) carry joint(s) the %s body lacks, dropped: %s", count, self.embodiment.name, ", ".join(joints))
        return all_qpos, all_qvel

    @property
    def duration(self) -> torch.Tensor:
        """(C,) seconds from each clip's first to last frame."""
        return (self.clip_length - 1).to(torch.float32) / self.fps

    def frame_index(self, clip_ids: torch.Tensor, steps: torch.Tensor) -> torch.Tensor:
        """Global frame rows of step `steps` in clips `clip_ids`, clamped into each clip (int64)."""
        last = self.clip_length[clip_ids] - 1
        return self.clip_start[clip_ids] + torch.minimum(steps.to(torch.int64).clamp(min=0), last)

    def lookup(self, clip_ids: torch.Tensor, times: torch.Tensor) -> MotionFrame:
        """Reference frames at `times` (s) in clips `clip_ids`, interpolated between the frames
        around each time: linear for positions and velocities, SLERP for quaternions and site
        orientations. Times outside a clip give its first or last frame."""
        i0, i1, alpha = frame_weights(times.to(torch.float32), self.fps, self.clip_length[clip_ids])
        start = self.clip_start[clip_ids]
        g0, g1 = start + i0, start + i1
        a = alpha.view(-1, 1, 1)
        site_quat = slerp(self._site_quat[g0], self._site_quat[g1], a)
        return MotionFrame(
            qpos=interpolate(self.qpos[g0], self.qpos[g1], alpha, self._quat_index),
            qvel=torch.lerp(self.qvel[g0], self.qvel[g1], alpha.unsqueeze(-1)),
            site_xpos=torch.lerp(self.site_xpos[g0], self.site_xpos[g1], a),
            site_xmat=quat_to_mat(site_quat),
            site_vel=torch.lerp(self.site_vel[g0], self.site_vel[g1], a),
        )

    def sample_clips(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """`n` clip ids drawn with replacement by `clip_weight` (int64, on the library's device)."""
        return torch.multinomial(self.clip_weight, n, replacement=True, generator=generator)


def select_clips(
    sources: Sequence[str | Path], split: str | None = None, categories: Sequence[str] | None = None
) -> list[ClipEntry]:
    """`collect_clips` of `sources` keeping `split` (None: all) and `categories` (None or empty: all).

    Categories are checked against every clip of the sources, whatever its split: `MotionError`
    listing the known categories for an unknown one, and naming the selection when it is empty."""
    entries = collect_clips(sources, None)
    wanted = list(categories or [])
    known = sorted({e.category for e in entries})
    unknown = [c for c in wanted if c not in known]
    where = ", ".join(str(s) for s in ([sources] if isinstance(sources, (str, Path)) else sources))
    if unknown:
        raise MotionError(where, f"unknown categor{'y' if len(unknown) == 1 else 'ies'} {', '.join(map(repr, unknown))}; "
                                 f"the clips' categories are {', '.join(known)}")
    selected = [e for e in entries if (split is None or e.split == split) and (not wanted or e.category in wanted)]
    if not selected:
        what = " and ".join(filter(None, [f"split {split!r}" if split else "", f"categories {', '.join(wanted)}" if wanted else ""]))
        raise MotionError(where, f"no clips with {what} in these sources")
    return selected
