"""Training configuration: the published presets, a CPU demonstration preset, and overrides.

One tree of typed dataclasses (`env` is an `EnvConfig`). `resolve_config` starts from a preset,
applies an optional TOML file (tables named like the fields), then `section.key=value` overrides from
the command line, and refuses unknown keys or ill-typed values by name; `TrainConfig.to_toml` writes it.
"""

from __future__ import annotations

import dataclasses
import json
import math
import tomllib
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mmimic.cli import nearest
from mmimic.embodiment import MODELS_DIR
from mmimic.env.config import EnvConfig
from mmimic.io.atomic import atomic_write
from mmimic.ppo import PPOConfig

DEFAULT_MOTIONS = MODELS_DIR.parent / "motions"


class ConfigError(ValueError):
    """A preset, TOML file or override names an unknown key or gives a value of the wrong type."""


DERIVED_KEYS = ("ppo.num_updates",)
"""Keys that earlier versions stored and that are now derived (the anneal horizon is the run's
iterations, `RunConfig.num_iterations`): accepted when read (checkpoints, config.toml, overrides)
and ignored."""


@dataclass
class NetworkConfig:
    """Actor and critic MLPs (LayerNorm-SiLU blocks) or the gated residual variant."""

    actor_hidden: list[int] = field(default_factory=lambda: [1024] * 16)
    critic_hidden: list[int] = field(default_factory=lambda: [1024] * 16)
    residual: bool = False
    init_std: float = 3.0


@dataclass
class RunConfig:
    """Rollout shape, length of the run, validation and checkpointing."""

    num_envs: int = 8192
    num_steps: int = 20
    iterations: int = 12500  # the run's length, unless timesteps is positive (`num_iterations`)
    timesteps: int = 0  # when positive: the run's length in environment steps of all ranks
    seed: int = 0
    normalize_reward: bool = True
    validation_interval: int = 125
    validation_envs: int = 100
    validation_steps: int = 500
    keep_checkpoints: int = 10
    max_nonfinite_actions: float = 0.01  # stop training when a larger fraction of a rollout's actions is NaN/inf

    def num_iterations(self, world_size: int = 1) -> int:
        """The run's PPO iterations: `iterations`, or with a positive `timesteps` the fewest iterations
        of `num_envs` x `num_steps` on each of `world_size` ranks that reach it."""
        if self.timesteps > 0:
            return max(1, math.ceil(self.timesteps / (self.num_envs * self.num_steps * world_size)))
        return self.iterations


@dataclass
class SamplingConfig:
    """Failure-weighted clip sampling (`mmimic.train.sampling`; docs/training.md). On
    by default; a set of one clip samples it alone either way."""

    failure_weighted: bool = True
    smoothing: float = 0.2  # EMA weight of the newest iteration's counts, in (0, 1]
    exponent: float = 1.0  # priority = failure rate ** exponent (0: the manifest weights alone)
    uniform_mix: float = 0.1  # share drawn by the manifest weights alone, in [0, 1]
    prior_episodes: float = 10.0  # starting EMA of finished episodes per clip
    prior_terminations: float = 5.0  # starting EMA of early terminations per clip (rate 0.5)


@dataclass
class TrainConfig:
    """Everything a training run needs besides the motions and the output directory."""

    embodiment: str
    preset: str
    network: NetworkConfig
    ppo: PPOConfig
    run: RunConfig
    env: EnvConfig = field(default_factory=EnvConfig)  # env.seed None: the run's seed
    motions: list[str] = field(default_factory=list)
    reward_modules: list[str] = field(default_factory=list)
    categories: list[str] = field(default_factory=list)  # manifest categories to train on (empty: all)
    sampling: SamplingConfig = field(default_factory=SamplingConfig)

    def to_dict(self) -> dict[str, Any]:
        """Plain data for checkpoints; `env` holds only the options changed from `EnvConfig()`."""
        default = EnvConfig()
        env = {k: list(v) if isinstance(v, tuple) else v for k, v in vars(self.env).items() if v != getattr(default, k)}
        return {**dataclasses.asdict(self), "env": env}

    def to_toml(self, path: Path) -> None:
        """Write `to_dict` as TOML to `path` (atomically: a temporary file, then a rename)."""
        with atomic_write(Path(path), "w") as f:
            f.write(_to_toml(self.to_dict()))

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainConfig:
        """Rebuild a configuration saved with `to_dict` (e.g. from a checkpoint)."""
        return cls(
            embodiment=data["embodiment"],
            preset=data["preset"],
            network=NetworkConfig(**data["network"]),
            ppo=PPOConfig(**{k: v for k, v in data["ppo"].items() if f"ppo.{k}" not in DERIVED_KEYS}),
            run=RunConfig(**data["run"]),
            env=EnvConfig(**data.get("env", {})),
            motions=list(data.get("motions", [])),
            reward_modules=list(data.get("reward_modules", [])),
            categories=list(data.get("categories", [])),
            sampling=SamplingConfig(**data.get("sampling", {})),
        )


def _fullbody(residual: bool) -> TrainConfig:
    hidden = [1408, 2688, 2688, 2688, 2688, 2688, 1408, 768, 384] if residual else [1024] * 16
    return TrainConfig(
        embodiment="fullbody",
        preset="fullbody-resnet" if residual else "fullbody",
        network=NetworkConfig(actor_hidden=hidden, critic_hidden=list(hidden), residual=residual, init_std=3.0),
        ppo=PPOConfig(num_minibatches=128, anneal_lr=True, muon_weight_decay=0.0),
        run=RunConfig(num_envs=8192, num_steps=20, iterations=12500, seed=1 if residual else 0,
                      validation_envs=100, keep_checkpoints=10),
    )


def _bimanual() -> TrainConfig:
    return TrainConfig(
        embodiment="bimanual",
        preset="bimanual",
        network=NetworkConfig(actor_hidden=[1024] * 4, critic_hidden=[1024] * 4, init_std=0.2),
        ppo=PPOConfig(num_minibatches=32, anneal_lr=False, muon_weight_decay=1e-3),
        run=RunConfig(num_envs=8192, num_steps=10, iterations=25000, validation_envs=20, keep_checkpoints=5),
    )


def _cpu_demo(embodiment: str) -> TrainConfig:
    """A few minutes on a laptop CPU: few worlds, small networks, a finite run."""
    base = _bimanual() if embodiment == "bimanual" else _fullbody(residual=False)
    base.preset = "cpu"
    base.network.actor_hidden = [256, 256]
    base.network.critic_hidden = [256, 256]
    base.run = dataclasses.replace(base.run, num_envs=16, iterations=40, validation_interval=20, validation_envs=4,
                                   validation_steps=50, keep_checkpoints=3)
    base.ppo = dataclasses.replace(base.ppo, num_minibatches=4)
    return base


PRESETS = {
    "fullbody": lambda embodiment: _fullbody(residual=False),
    "fullbody-resnet": lambda embodiment: _fullbody(residual=True),
    "bimanual": lambda embodiment: _bimanual(),
    "cpu": _cpu_demo,
}


def preset_for(embodiment: str, on_gpu: bool) -> str:
    """The default preset: the published one on a GPU, the CPU demonstration otherwise."""
    if not on_gpu:
        return "cpu"
    return "bimanual" if embodiment == "bimanual" else "fullbody"


def resolve_config(
    embodiment: str, preset: str, toml_path: Path | None = None, overrides: list[str] | None = None
) -> TrainConfig:
    """Preset, then the TOML file, then `section.key=value` overrides."""
    if preset not in PRESETS:
        raise ConfigError(f"--preset {preset!r} is not one of {', '.join(PRESETS)}")
    config = PRESETS[preset](embodiment)
    config.embodiment = embodiment
    config.motions = [str(DEFAULT_MOTIONS / Path(embodiment).name)]
    if toml_path is not None:
        try:
            with Path(toml_path).open("rb") as f:
                table = tomllib.load(f)
        except OSError as exc:
            raise ConfigError(f"--config {toml_path}: {exc.strerror or exc}") from exc
        except UnicodeDecodeError:
            raise ConfigError(f"--config {toml_path}: not a text file (a TOML file of overrides is expected)") from None
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"--config {toml_path}: malformed TOML: {exc}") from exc
        _apply_table(config, table, str(toml_path))
    for item in overrides or []:
        key, sep, raw = item.partition("=")
        if not sep:
            raise ConfigError(f"--set {item!r}: expected section.key=value")
        try:
            value = tomllib.loads(f"v = {raw}")["v"]
        except tomllib.TOMLDecodeError:
            value = raw  # a bare word is a string
        _set(config, key.strip().split("."), value, f"--set {item}")
    check_config(config)
    return config


def _positive_int(v: Any) -> bool:
    return v >= 1


# The range of every numeric or named value: a test on the (already type-checked) value, and the
# range as the error states it.
RULES: dict[str, tuple[Any, str]] = {
    "network.actor_hidden": (lambda v: len(v) >= 1 and all(h >= 1 for h in v), "a non-empty list of layer sizes >= 1"),
    "network.critic_hidden": (lambda v: len(v) >= 1 and all(h >= 1 for h in v), "a non-empty list of layer sizes >= 1"),
    "network.init_std": (lambda v: math.isfinite(v) and v > 0, "> 0 and finite"),
    "ppo.gamma": (lambda v: 0 < v <= 1, "in (0, 1]"),
    "ppo.lam": (lambda v: 0 <= v <= 1, "in [0, 1]"),
    "ppo.clip_eps": (lambda v: math.isfinite(v) and v > 0, "> 0 and finite"),
    "ppo.value_clip_eps": (lambda v: math.isfinite(v) and v > 0, "> 0 and finite"),
    "ppo.vf_coef": (lambda v: math.isfinite(v) and v >= 0, ">= 0 and finite"),
    "ppo.ent_coef": (lambda v: math.isfinite(v) and v >= 0, ">= 0 and finite"),
    "ppo.num_minibatches": (_positive_int, ">= 1"),
    "ppo.update_epochs": (_positive_int, ">= 1"),
    "ppo.max_grad_norm": (lambda v: math.isfinite(v) and v > 0, "> 0 and finite"),
    "ppo.lr": (lambda v: math.isfinite(v) and v >= 0, ">= 0 and finite (0 switches learning off)"),
    "ppo.optimizer": (lambda v: v in ("muon", "adam"), "'muon' or 'adam'"),
    "ppo.muon_weight_decay": (lambda v: math.isfinite(v) and v >= 0, ">= 0 and finite"),
    "ppo.compile": (lambda v: v in ("auto", "on", "off"), "'auto' (on for cuda, off for cpu), 'on' or 'off'"),
    "run.num_envs": (_positive_int, ">= 1"),
    "run.num_steps": (_positive_int, ">= 1"),
    "run.iterations": (_positive_int, ">= 1"),
    "run.timesteps": (lambda v: v >= 0, ">= 0 (0: use run.iterations)"),
    "run.seed": (lambda v: v >= 0, ">= 0"),
    "run.validation_interval": (_positive_int, ">= 1"),
    "run.validation_envs": (_positive_int, ">= 1"),
    "run.validation_steps": (_positive_int, ">= 1"),
    "run.keep_checkpoints": (_positive_int, ">= 1"),
    "sampling.smoothing": (lambda v: 0 < v <= 1, "in (0, 1]"),
    "sampling.exponent": (lambda v: 0 <= v <= 10, "in [0, 10]"),
    "sampling.uniform_mix": (lambda v: 0 <= v <= 1, "in [0, 1]"),
    "sampling.prior_episodes": (lambda v: math.isfinite(v) and v > 0, "> 0 and finite"),
    "sampling.prior_terminations": (lambda v: math.isfinite(v) and v >= 0, ">= 0 and finite"),
    "run.max_nonfinite_actions": (lambda v: 0 <= v <= 1, "a fraction in [0, 1]"),
}


def check_config(config: TrainConfig) -> None:
    """ConfigError naming the first value out of its range (`RULES`) and the range."""
    for dotted, (ok, expected) in RULES.items():
        section, name = dotted.split(".")
        value = getattr(getattr(config, section), name)
        if not ok(value):
            raise ConfigError(f"{dotted} must be {expected}, got {value!r}")


def _apply_table(config: Any, table: dict[str, Any], source: str, prefix: tuple[str, ...] = ()) -> None:
    for key, value in table.items():
        path = (*prefix, key)
        if isinstance(value, dict):
            _apply_table(config, value, source, path)
        else:
            _set(config, list(path), value, source)


def _set(config: Any, path: list[str], value: Any, source: str) -> None:
    if ".".join(path) in DERIVED_KEYS:
        return
    target, kind = config, type(config)
    for part in path[:-1]:
        if not dataclasses.is_dataclass(target) or not hasattr(target, part):
            known = [f.name for f in dataclasses.fields(target)] if dataclasses.is_dataclass(target) else []
            raise ConfigError(f"{source}: unknown configuration section {'.'.join(path[:-1])!r}{nearest(part, known)}")
        target, kind = getattr(target, part), typing.get_type_hints(type(target))[part]
    name = path[-1]
    if isinstance(target, dict):  # env.reward_weights: the names are checked by the environment, the values here
        target[name] = _coerce(value, typing.get_args(kind)[1], f"{source}: {'.'.join(path)}")
        return
    fields = {f.name: f for f in dataclasses.fields(target)}
    if name not in fields:
        raise ConfigError(f"{source}: unknown key {'.'.join(path)!r}{nearest(name, fields)}; known: {', '.join(fields)}")
    kind = typing.get_type_hints(type(target))[name]
    setattr(target, name, _coerce(value, kind, f"{source}: {'.'.join(path)}"))


def _coerce(value: Any, kind: Any, where: str) -> Any:
    if typing.get_origin(kind) is types.UnionType:  # `T | None` (EnvConfig): None is never given
        kind = next(k for k in typing.get_args(kind) if k is not type(None))
    origin = typing.get_origin(kind)
    if origin in (list, tuple):  # list[T] or tuple[T, ...], kept as the list TOML gives
        item = typing.get_args(kind)[0]
        if not isinstance(value, list):
            raise ConfigError(f"{where} must be a list, got {value!r}")
        return [_coerce(v, item, where) for v in value]
    if kind is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if kind in (int, float, bool, str) and (not isinstance(value, kind) or (kind is int and isinstance(value, bool))):
        raise ConfigError(f"{where} must be {kind.__name__}, got {value!r}")
    return value


def _to_toml(data: dict, prefix: str = "") -> str:
    """TOML text of nested tables of scalars and lists (JSON strings, lists and booleans are TOML; floats as repr)."""
    scalars = "".join(f"{k} = {repr(v) if isinstance(v, float) else json.dumps(v)}\n" for k, v in data.items()
                      if not isinstance(v, dict))
    tables = "".join("\n" + _to_toml(v, f"{prefix}{k}.") for k, v in data.items() if isinstance(v, dict))
    return (f"[{prefix[:-1]}]\n" if prefix else "") + scalars + tables
