"""Checkpoints: one ``.pt`` file, written atomically, readable with ``torch.load(weights_only=True)``.

Contents: a format marker and version, the network architecture, actor / critic / ``log_std`` /
observation-normaliser state, optimiser state, optional reward-normaliser state, iteration and
environment-step counters, the resolved configuration, the observation layout (name and size of
every block), the embodiment's name and model hash, and free ``extra`` data.
"""

from __future__ import annotations

import zipfile
from collections import OrderedDict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn

from mmimic.io.atomic import atomic_write
from mmimic.ppo.networks import ActorCritic, Policy
from mmimic.ppo.normalizer import ReturnNormalizer
from mmimic.ppo.optim import HybridOptimizer

FORMAT = "mmimic-checkpoint"
VERSION = 1
REQUIRED_KEYS = (
    "architecture",
    "actor",
    "critic",
    "log_std",
    "obs_normalizer",
    "optimizer",
    "reward_normalizer",
    "iteration",
    "env_steps",
    "config",
    "obs_layout",
    "embodiment",
    "model_hash",
    "extra",
)


class CheckpointError(RuntimeError):
    """A checkpoint file is missing, unreadable, foreign, or does not fit the environment."""


def _check_plain(value: Any, where: str) -> None:
    """Raises TypeError unless ``value`` is built from plain dicts with str keys, lists, tuples, str,
    int, float, bool, None and tensors: what ``torch.load(weights_only=True)`` reads back (exact types,
    so e.g. str subclasses and numpy scalars are refused)."""
    if type(value) in (dict, OrderedDict):
        for key, item in value.items():
            if type(key) is not str:
                raise TypeError(f"{where} has a non-str key {key!r}; checkpoint dicts need str keys")
            _check_plain(item, f"{where}[{key!r}]")
    elif type(value) in (list, tuple):
        for i, item in enumerate(value):
            _check_plain(item, f"{where}[{i}]")
    elif not (value is None or type(value) in (str, int, float, bool) or isinstance(value, torch.Tensor)):
        raise TypeError(
            f"{where} is a {type(value).__module__}.{type(value).__qualname__}; a checkpoint holds only "
            "dicts, lists, tuples, str, int, float, bool, None and tensors"
        )


def save_checkpoint(
    path: str | Path,
    *,
    actor_critic: ActorCritic,
    optimizer: HybridOptimizer | None,
    iteration: int,
    env_steps: int,
    config: dict,
    obs_layout: Sequence[tuple[str, int]],
    embodiment_name: str,
    model_hash: str,
    reward_normalizer: ReturnNormalizer | None = None,
    extra: dict | None = None,
) -> Path:
    """Writes one checkpoint file atomically and returns its path.

    ``obs_layout`` must add up to the network's observation size (else ValueError); ``config`` and
    ``extra`` must be plain data (see ``_check_plain``), else TypeError naming the offending entry.
    """
    path = Path(path)
    layout = [[str(name), int(size)] for name, size in obs_layout]
    obs_dim = actor_critic.architecture["obs_dim"]
    if sum(size for _, size in layout) != obs_dim:
        raise ValueError(f"obs_layout adds up to {sum(s for _, s in layout)}, the network takes {obs_dim} observations")
    payload = {
        "format": FORMAT,
        "version": VERSION,
        "torch_version": str(torch.__version__),
        "architecture": dict(actor_critic.architecture),
        "actor": actor_critic.actor.state_dict(),
        "critic": actor_critic.critic.state_dict(),
        "log_std": actor_critic.log_std.detach(),
        "obs_normalizer": actor_critic.obs_normalizer.state_dict(),
        "optimizer": None if optimizer is None else optimizer.state_dict(),
        "reward_normalizer": None if reward_normalizer is None else reward_normalizer.state_dict(),
        "iteration": int(iteration),
        "env_steps": int(env_steps),
        "config": config,
        "obs_layout": layout,
        "embodiment": str(embodiment_name),
        "model_hash": str(model_hash),
        "extra": {} if extra is None else extra,
    }
    _check_plain(payload, "checkpoint")
    bad = nonfinite_weights(actor_critic)
    if bad:
        raise ValueError(f"{path}: refusing to write a checkpoint with non-finite weights ({', '.join(bad)})")
    with atomic_write(path) as f:
        torch.save(payload, f)
    return path


def load_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> dict:
    """Reads a checkpoint written by ``save_checkpoint``; a missing, truncated, corrupt or foreign
    file raises CheckpointError naming the path and the problem."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path}: no such file")
    if not zipfile.is_zipfile(path):  # torch.save writes a zip archive; its errors for anything else mislead
        raise CheckpointError(f"checkpoint {path}: not a torch checkpoint archive (truncated or corrupt, or another "
                              "kind of file); give a checkpoint_*.pt written by runners/train.py")
    try:
        data = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as exc:
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]
        raise CheckpointError(
            f"checkpoint {path}: not readable as a weights-only torch file (truncated or corrupt?): {first}"
        ) from exc
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise CheckpointError(f"checkpoint {path}: not an mmimic checkpoint (no 'format': '{FORMAT}' marker)")
    if data.get("version") != VERSION:
        raise CheckpointError(f"checkpoint {path}: format version {data.get('version')!r}, this mmimic reads {VERSION}")
    missing = [key for key in REQUIRED_KEYS if key not in data]
    if missing:
        raise CheckpointError(f"checkpoint {path}: missing entries {missing}")
    return data


def restore_actor_critic(checkpoint: dict, actor_critic: ActorCritic) -> None:
    """Loads the checkpoint's actor, critic, ``log_std`` and normaliser into ``actor_critic``
    (same architecture required, else CheckpointError)."""
    if checkpoint["architecture"] != actor_critic.architecture:
        raise CheckpointError(
            f"checkpoint architecture {checkpoint['architecture']} differs from the model's {actor_critic.architecture}"
        )
    actor_critic.actor.load_state_dict(checkpoint["actor"])
    actor_critic.critic.load_state_dict(checkpoint["critic"])
    actor_critic.obs_normalizer.load_state_dict(checkpoint["obs_normalizer"])
    with torch.no_grad():
        actor_critic.log_std.copy_(checkpoint["log_std"])


def actor_critic_from_checkpoint(checkpoint: dict, device: str | torch.device = "cpu") -> ActorCritic:
    """Rebuilds the ActorCritic from the architecture stored in the checkpoint and loads its state."""
    actor_critic = ActorCritic(**checkpoint["architecture"]).to(device)
    restore_actor_critic(checkpoint, actor_critic)
    return actor_critic


def weight_tensors(actor_critic: ActorCritic) -> dict[str, torch.Tensor]:
    """The floating-point parameters and observation-normaliser statistics of `actor_critic`, by name."""
    named = [*actor_critic.named_parameters(), *actor_critic.obs_normalizer.named_buffers(prefix="obs_normalizer")]
    return {name: tensor for name, tensor in named if tensor.is_floating_point()}


def nonfinite_weights(actor_critic: ActorCritic) -> list[str]:
    """Names of the `weight_tensors` holding NaN or inf (one host read each)."""
    return [name for name, tensor in weight_tensors(actor_critic).items() if not bool(torch.isfinite(tensor).all())]


class CheckedPolicy(Policy):
    """A `Policy` that refuses observations of the wrong width or dtype with a ValueError naming both."""

    def __init__(self, actor_critic: ActorCritic, sample: bool) -> None:
        super().__init__(actor_critic.obs_normalizer, actor_critic.actor, actor_critic.log_std, sample)
        self.obs_dim = actor_critic.architecture["obs_dim"]

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        if not isinstance(obs, torch.Tensor) or obs.dtype != torch.float32 or obs.ndim == 0 or obs.shape[-1] != self.obs_dim:
            got = f"{obs.dtype} {tuple(obs.shape)}" if isinstance(obs, torch.Tensor) else type(obs).__name__
            raise ValueError(f"the policy takes float32 observations of shape (..., {self.obs_dim}), got {got}")
        return super().forward(obs)


def load_policy(path: str | Path, device: str | torch.device = "cpu", sample: bool = False) -> nn.Module:
    """An inference module mapping raw observations (float32, (..., obs_dim)) to actions, normaliser
    included: the Gaussian mean by default, a sample from the policy with ``sample=True``. A checkpoint
    whose weights are not finite (its policy would output NaN) raises CheckpointError."""
    checkpoint = load_checkpoint(path, map_location=device)
    actor_critic = actor_critic_from_checkpoint(checkpoint, device)
    bad = nonfinite_weights(actor_critic)
    if bad:
        raise CheckpointError(f"checkpoint {path}: non-finite weights ({', '.join(bad[:4])}{' ...' if len(bad) > 4 else ''}); "
                              "its policy outputs NaN; use an earlier checkpoint of the run")
    return CheckedPolicy(actor_critic, sample).eval()


def check_compatible(
    checkpoint: dict,
    *,
    obs_layout: Sequence[tuple[str, int]],
    embodiment_name: str,
    model_hash: str,
) -> None:
    """Raises CheckpointError listing every difference between the checkpoint's embodiment name,
    model hash and observation layout and those of the current environment."""
    problems = []
    if checkpoint["embodiment"] != embodiment_name:
        problems.append(f"embodiment '{checkpoint['embodiment']}' (environment: '{embodiment_name}')")
    if checkpoint["model_hash"] != model_hash:
        problems.append(f"model hash {checkpoint['model_hash']} (environment: {model_hash})")
    saved = [(str(n), int(s)) for n, s in checkpoint["obs_layout"]]
    current = [(str(n), int(s)) for n, s in obs_layout]
    for i in range(max(len(saved), len(current))):
        a = saved[i] if i < len(saved) else None
        b = current[i] if i < len(current) else None
        if a != b:
            problems.append(f"observation block {i} is {a} (environment: {b})")
    if problems:
        raise CheckpointError("checkpoint does not fit the environment: " + "; ".join(problems))
