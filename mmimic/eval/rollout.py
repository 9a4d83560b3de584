"""Evaluation rollouts: every clip once from its first frame to its last, batched, deterministic policy.

Clips run ``num_envs`` at a time in one :class:`mmimic.env.ImitationEnv` built from the
checkpoint's own environment settings with the published validation termination (overridable).
Each world starts at frame 0 of its clip, the policy's mean action drives it, and the episode
ends at the clip's last frame (truncation) or at an absorbing termination. States are copied
each step to host memory without synchronising the device (pinned buffers on a GPU).

The environment resets a finished world inside ``step``, so the post-step state of an episode's
last step is not observable: trajectories hold the start state and the states after every
step but the last (``valid``), while return, length and termination come from the episode.
"""

from __future__ import annotations

import dataclasses
import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from mmimic.checkpoint import check_compatible, load_checkpoint, load_policy
from mmimic.embodiment import Embodiment, load_embodiment
from mmimic.env import EnvConfig, ImitationEnv, apply_reward_args
from mmimic.eval.metrics import EvaluationMetrics, RolloutArrays, compute_metrics
from mmimic.motion import MotionLibrary
from mmimic.motion.clip import column_names, quaternion_columns
from mmimic.rollout import Step, rollout
from mmimic.simulator import resolve_device

__all__ = [
    "EvalSetup",
    "EvaluationResult",
    "TerminationThresholds",
    "Trajectories",
    "evaluate",
    "export_npz",
    "prepare",
    "reference_frames",
]

MUSCLE_ARRAYS = ("ctrl", "act", "actuator_force")
"""Simulator views recorded with ``record_muscles``."""


@dataclass(frozen=True)
class TerminationThresholds:
    """Termination overrides (m / rad; inf disables one); None keeps the validation default."""

    site_deviation: float | None = None
    root_deviation: float | None = None
    root_angle: float | None = None
    no_termination: bool = False

    def apply(self, config: EnvConfig) -> EnvConfig:
        if self.no_termination:
            return dataclasses.replace(config, site_deviation=math.inf, root_deviation=math.inf, root_angle=math.inf)
        changes = {k: v for k, v in dataclasses.asdict(self).items() if k != "no_termination" and v is not None}
        return dataclasses.replace(config, **changes)


@dataclass
class Trajectories:
    """Per-clip rollouts padded to T + 1 instants: index 0 is the start state (frame 0), index k the
    state after step k, compared with clip frame k. Arrays are numpy, (E, T + 1, ...) with E clips.

    ``valid`` marks recorded states; ``qpos``/``qvel``/``site_pos`` and the reference
    ``ref_qpos``/``ref_qvel``/``ref_site_pos`` (root x-y re-centred like the simulation);
    ``touch`` (the embodiment's touch sensors, N); with muscles recorded, ``ctrl`` (the excitation
    held during the step that led to the state), ``act`` (activation) and ``actuator_force`` (N);
    ``reward`` of each step (index 0 is 0).
    """

    clip_names: list[str]
    fps: float
    arrays: dict[str, np.ndarray]
    valid: np.ndarray
    episode_length: np.ndarray
    episode_return: np.ndarray
    terminated: np.ndarray
    clip_length: np.ndarray

    def rollout_arrays(self) -> RolloutArrays:
        """The post-step part as :class:`RolloutArrays` for :func:`compute_metrics`."""
        a = self.arrays
        return RolloutArrays(
            qpos=a["qpos"][:, 1:],
            ref_qpos=a["ref_qpos"][:, 1:],
            qvel=a["qvel"][:, 1:],
            ref_qvel=a["ref_qvel"][:, 1:],
            site_pos=a["site_pos"][:, 1:],
            ref_site_pos=a["ref_site_pos"][:, 1:],
            valid=self.valid[:, 1:],
            episode_length=self.episode_length,
            episode_return=self.episode_return,
            terminated=self.terminated,
            clip_length=self.clip_length,
        )

    def clip(self, index: int) -> dict[str, np.ndarray]:
        """The valid instants of one clip (the states form a contiguous run from index 0)."""
        count = int(self.valid[index].sum())
        return {name: array[index, :count] for name, array in self.arrays.items()}


@dataclass
class EvaluationResult:
    """Metrics, trajectories and what they were computed with."""

    checkpoint: Path
    embodiment: Embodiment
    config: EnvConfig
    metrics: EvaluationMetrics
    trajectories: Trajectories
    nan_actions: int = 0
    """Control steps, over all clips, whose action held NaN or inf (replaced by zeros, the episode terminated)."""


class _Recorder:
    """Host buffers (T + 1, N, ...) filled by asynchronous copies, one instant at a time."""

    def __init__(self, steps: int, sources: dict[str, torch.Tensor]) -> None:
        pin = next(iter(sources.values())).device.type == "cuda"
        self.sources = sources
        self.buffers = {
            name: torch.zeros((steps + 1, *src.shape), dtype=src.dtype, pin_memory=pin) for name, src in sources.items()
        }

    def record(self, index: int) -> None:
        for name, src in self.sources.items():
            self.buffers[name][index].copy_(src, non_blocking=True)


def _run_chunk(
    env: ImitationEnv, library: MotionLibrary, policy: torch.nn.Module, clip_ids: torch.Tensor, muscles: bool
) -> dict[str, np.ndarray]:
    """One batch of clips (one world each; surplus worlds repeat the last clip and are dropped)."""
    n = clip_ids.shape[0]
    ids = torch.cat([clip_ids, clip_ids[-1:].expand(env.num_envs - n)])
    steps = int(library.clip_length[ids].max()) - 1
    sim = env.sim
    site_ids = torch.as_tensor(env.embodiment.mimic_site_ids, dtype=torch.int64, device=env.torch_device)
    touch = torch.as_tensor(env.embodiment.touch_sensor_adr, dtype=torch.int64, device=env.torch_device)
    alive = torch.ones(env.num_envs, dtype=torch.bool, device=env.torch_device)
    length = torch.zeros(env.num_envs, dtype=torch.int64, device=env.torch_device)
    ret = torch.zeros(env.num_envs, device=env.torch_device)
    terminated = torch.zeros(env.num_envs, dtype=torch.bool, device=env.torch_device)
    nan_actions = torch.zeros(env.num_envs, dtype=torch.int64, device=env.torch_device)
    # per-instant sources, refreshed in place before each record
    current = {
        "qpos": sim.qpos,
        "qvel": sim.qvel,
        "site_pos": torch.zeros(env.num_envs, len(site_ids), 3, device=env.torch_device),
        "touch": torch.zeros(env.num_envs, len(touch), device=env.torch_device),
        "valid": alive.clone(),
        "reward": torch.zeros(env.num_envs, device=env.torch_device),
    }
    if muscles:
        current |= {name: getattr(sim, name) for name in MUSCLE_ARRAYS}
    recorder = _Recorder(steps, current)

    def refresh() -> None:
        current["site_pos"].copy_(sim.site_xpos[:, site_ids])
        current["touch"].copy_(sim.sensordata[:, touch])

    instants = itertools.count(1)  # instant 0 is the start state

    def record(step: Step) -> None:
        reward, done, info = step.reward, step.done, step.info
        nan_actions.add_(info["nan_actions"] & alive)
        finishing = alive & done
        ret.add_(torch.where(alive, reward, torch.zeros_like(reward)))
        length.add_(alive.long())
        terminated.logical_or_(finishing & info["terminated"])
        alive.logical_and_(~done)
        refresh()
        current["valid"].copy_(alive)
        current["reward"].copy_(torch.where(alive | finishing, reward, torch.zeros_like(reward)))
        recorder.record(next(instants))

    obs = env.start_at(ids)
    refresh()
    recorder.record(0)
    with torch.no_grad():
        for first in range(1, steps + 1, 50):  # stop early, checked every 50 steps, once every episode ended
            obs = rollout(env, obs, min(50, steps + 1 - first), policy, record, keep_obs=False)
            if not bool(alive.any()):
                break
    if env.torch_device.type == "cuda":
        torch.cuda.current_stream(env.torch_device).synchronize()
    out = {name: buf.numpy().swapaxes(0, 1)[:n] for name, buf in recorder.buffers.items()}
    out["valid"][:, 0] = True
    out["episode_length"] = length[:n].cpu().numpy()
    out["episode_return"] = ret[:n].cpu().numpy()
    out["terminated"] = terminated[:n].cpu().numpy()
    out["nan_actions"] = nan_actions[:n].cpu().numpy()
    return out


def reference_frames(library: MotionLibrary, clips: torch.Tensor, count: int, root: int) -> dict[str, np.ndarray]:
    """Frames 0..count-1 of each clip in ``clips`` (clamped at its last frame) with the clip's first
    frame's root x-y removed: ``ref_qpos`` (C, count, nq), ``ref_qvel``, ``ref_site_pos`` (C, count, S, 3)."""
    clips = clips.to(library.device, torch.int64)
    steps = torch.arange(count, device=library.device)
    rows = library.frame_index(clips.repeat_interleave(count), steps.repeat(clips.shape[0])).view(-1, count)
    qpos = library.qpos[rows].double().cpu().numpy()
    sites = library.site_xpos[rows].double().cpu().numpy()
    if root >= 0:
        offset = qpos[:, :1, root : root + 2].copy()
        qpos[..., root : root + 2] -= offset
        sites[..., :2] -= offset[:, :, None]
    return {"ref_qpos": qpos, "ref_qvel": library.qvel[rows].double().cpu().numpy(), "ref_site_pos": sites}


def _env_config(checkpoint: dict, embodiment: Embodiment, thresholds: TerminationThresholds, horizon: int) -> EnvConfig:
    settings = dict(checkpoint.get("config", {}).get("env", {}))
    settings["horizon"] = horizon
    base = EnvConfig.for_embodiment(embodiment, **settings).for_validation()
    return thresholds.apply(base)


@dataclass
class EvalSetup:
    """A checkpoint's policy in an evaluation environment over a motion library."""

    checkpoint: Path
    embodiment: Embodiment
    library: MotionLibrary
    env: ImitationEnv
    policy: torch.nn.Module


def prepare(
    checkpoint_path: str | Path,
    motions: Sequence[str | Path],
    *,
    num_envs: int = 64,
    device: str | None = None,
    thresholds: TerminationThresholds = TerminationThresholds(),
    embodiment: str | Path | None = None,
    categories: Sequence[str] | None = None,
) -> EvalSetup:
    """Load the checkpoint, its body (or ``embodiment``) and ``motions``, and build an environment of
    at most ``num_envs`` worlds with the checkpoint's settings (and reward modules), the validation
    termination with ``thresholds`` applied and a horizon as long as the longest clip. Empty
    ``motions`` means the run's training motions (every split); ``categories`` keeps the clips of
    those manifest categories. A checkpoint that does not fit
    raises :class:`mmimic.CheckpointError`, a clip made for another body
    :class:`mmimic.motion.MotionError`."""
    if num_envs < 1:
        raise ValueError(f"num_envs must be positive, got {num_envs}")
    env_device = resolve_device(device)  # first: a GPU Warp cannot use stops the run before any work
    path = Path(checkpoint_path)
    checkpoint = load_checkpoint(path)
    trained = checkpoint.get("config", {})
    apply_reward_args(list(trained.get("reward_modules", [])), [])  # the run's kernels; weights: its env config
    body = load_embodiment(embodiment or trained.get("embodiment") or checkpoint["embodiment"])
    sources = list(motions) or list(trained.get("motions", []))
    if not sources:
        raise ValueError(f"checkpoint {path} records no training motions; name the motions to evaluate")
    library = MotionLibrary(body, [Path(m) for m in sources], torch.device(env_device), categories=categories)
    config = _env_config(checkpoint, body, thresholds, int(library.clip_length.max()))
    env = ImitationEnv(body, library, min(num_envs, library.num_clips), env_device, config)
    check_compatible(checkpoint, obs_layout=env.obs_layout, embodiment_name=body.name, model_hash=body.model_hash)
    return EvalSetup(path, body, library, env, load_policy(path, env.torch_device))


def evaluate(setup: EvalSetup, record_muscles: bool = False) -> EvaluationResult:
    """Run every clip of the setup's library once from its first frame with the deterministic
    policy, ``env.num_envs`` clips at a time, and compute :mod:`mmimic.eval.metrics`."""
    env, library = setup.env, setup.library
    chunks = []
    for start in range(0, library.num_clips, env.num_envs):
        ids = torch.arange(start, min(start + env.num_envs, library.num_clips), device=env.torch_device)
        chunks.append(_run_chunk(env, library, setup.policy, ids, record_muscles))
    per_clip = _pad_and_join(chunks)
    root = env.root_qpos_adr
    per_clip |= reference_frames(library, torch.arange(library.num_clips), per_clip["qpos"].shape[1], root)
    scalars = {key: per_clip.pop(key) for key in ("valid", "episode_length", "episode_return", "terminated", "nan_actions")}
    trajectories = Trajectories(
        clip_names=list(library.clip_names),
        fps=float(library.fps),
        arrays=per_clip,
        valid=scalars["valid"].astype(bool),
        episode_length=scalars["episode_length"],
        episode_return=scalars["episode_return"],
        terminated=scalars["terminated"].astype(bool),
        clip_length=library.clip_length.cpu().numpy(),
    )
    metrics = compute_metrics(
        trajectories.rollout_arrays(),
        trajectories.clip_names,
        root,
        quaternion_columns(setup.embodiment.mj_model),
        categories=library.clip_categories,
        splits=library.clip_splits,
    )
    return EvaluationResult(setup.checkpoint, setup.embodiment, env.config, metrics, trajectories,
                            int(scalars["nan_actions"].sum()))


def _pad_and_join(chunks: list[dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    """Concatenate chunks along clips, padding the time axis (axis 1) of per-instant arrays."""
    longest = max(c["qpos"].shape[1] for c in chunks)
    joined = {}
    for key in chunks[0]:
        parts = []
        for chunk in chunks:
            a = chunk[key]
            if a.ndim >= 2 and key not in ("episode_length", "episode_return", "terminated"):
                pad = [(0, 0), (0, longest - a.shape[1])] + [(0, 0)] * (a.ndim - 2)
                a = np.pad(a, pad)
            parts.append(a)
        joined[key] = np.concatenate(parts)
    return joined


def export_npz(path: str | Path, result: EvaluationResult) -> Path:
    """Write the trajectories to ``path`` (.npz): every per-instant array (E, T + 1, ...), ``valid``,
    the episode arrays, ``clip_names``, ``fps``, and the body's ``joint_names`` (per qpos column),
    ``muscle_names`` and ``touch_sensors``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    t = result.trajectories
    body = result.embodiment
    np.savez_compressed(
        path,
        **t.arrays,
        valid=t.valid,
        episode_length=t.episode_length,
        episode_return=t.episode_return,
        terminated=t.terminated,
        clip_length=t.clip_length,
        clip_names=np.asarray(t.clip_names, dtype=np.str_),
        fps=np.asarray(t.fps),
        joint_names=np.asarray(column_names(body.mj_model), dtype=np.str_),
        muscle_names=np.asarray(body.muscle_names, dtype=np.str_),
        touch_sensors=np.asarray(body.touch_sensors, dtype=np.str_),
        embodiment=np.asarray(body.name, dtype=np.str_),
    )
    return path
