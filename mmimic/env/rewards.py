"""The reward-term registry: built-in DeepMimic terms and users' own Warp kernels, by name.

A term is a Warp kernel `(state: WorldState, params, out: wp.array(dtype=float))` where
`params` is a float or an instance of a `wp.struct` of the term's own. `register` checks the
signature and builds `params` from keyword arguments. The registry holds no weights: those are
`EnvConfig.reward_weights` (per-body presets in `mmimic.env.config`), so environments in one
process can weigh the terms differently. An environment takes a snapshot of the registry when it
is built; a term whose resolved weight is 0 is not launched.

The total reward of a world is `max(sum_imitation w*r + max(sum_penalties w*r, floor), 0)`, and
0 if any term is non-finite (MuscleMimic, arXiv 2603.25544; docs/rewards.md).

`apply_reward_args` is the command line's `--reward-module FILE` / `--reward NAME=WEIGHT`: it
registers the modules' terms and returns the weights for `EnvConfig.reward_weights`.
"""

from __future__ import annotations

import hashlib
import importlib.util
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import warp as wp

from mmimic.kernels import reward as kernels
from mmimic.kernels.state import WorldState

SIGNATURE = "(state: WorldState, params: float | <a wp.struct>, out: wp.array(dtype=float))"


class RewardError(ValueError):
    """A reward term, reward module or --reward argument is invalid."""


@dataclass(frozen=True)
class RewardTerm:
    """A registered term: its kernel, launch parameters, and whether it is a penalty."""

    name: str
    kernel: wp.Kernel
    params: Any
    penalty: bool


_REGISTRY: dict[str, RewardTerm] = {}


def register(name: str, kernel: wp.Kernel, *, penalty: bool = False, replace: bool = False, **params: Any) -> RewardTerm:
    """Register a reward term under `name`; its weight is 0 (off) unless the body's preset or the config names it.

    `params` fills the kernel's `params` argument: for a float, at most one keyword of any name
    (default 1.0); for a `wp.struct`, one keyword per field. Penalty terms are summed and floored
    (EnvConfig.penalty_floor) before they join the imitation terms. Registering an existing
    name raises unless `replace=True`.
    """
    if not isinstance(name, str) or not name.isidentifier():
        raise RewardError(f"reward term name must be an identifier, got {name!r}")
    if name in _REGISTRY and not replace:
        raise RewardError(f"reward term {name!r} is already registered (pass replace=True to replace it)")
    params_type = _check_signature(name, kernel)
    term = RewardTerm(name, kernel, _make_params(name, params_type, params), bool(penalty))
    _REGISTRY[name] = term
    return term


def unregister(name: str) -> None:
    """Remove a registered term."""
    if name not in _REGISTRY:
        raise RewardError(f"unknown reward term {name!r}; known: {', '.join(sorted(_REGISTRY))}")
    del _REGISTRY[name]


def registered() -> dict[str, RewardTerm]:
    """A copy of the registry, name -> term."""
    return dict(_REGISTRY)


def apply_reward_args(module_paths: list[str], reward_specs: list[str]) -> dict[str, float]:
    """Import each `--reward-module` file (it calls `register`) and return each `--reward NAME=WEIGHT`
    as name -> weight, for `EnvConfig.reward_weights`."""
    for path in module_paths:
        load_reward_module(path)
    weights: dict[str, float] = {}
    for spec in reward_specs:
        name, sep, value = spec.partition("=")
        name = name.strip()
        if not sep:
            raise RewardError(f"--reward {spec!r}: expected NAME=WEIGHT")
        try:
            weights[name] = float(value)
        except ValueError:
            raise RewardError(f"--reward {spec!r}: weight {value!r} is not a number") from None
        if name not in _REGISTRY:
            raise RewardError(f"--reward {spec!r}: unknown reward term {name!r}; known: {', '.join(sorted(_REGISTRY))}")
    return weights


def load_reward_module(path: str | Path) -> None:
    """Import a Python file that registers reward terms; importing the same file again does nothing."""
    file = Path(path).expanduser().resolve()
    if not file.is_file():
        raise RewardError(f"--reward-module {path}: no such file")
    module_name = f"mmimic_reward_{file.stem}_{hashlib.sha1(str(file).encode()).hexdigest()[:8]}"
    if module_name in sys.modules:
        return
    spec = importlib.util.spec_from_file_location(module_name, file)
    if spec is None or spec.loader is None:
        raise RewardError(f"--reward-module {path}: not an importable Python file")
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    try:
        spec.loader.exec_module(module)
    except Exception as exc:
        del sys.modules[module_name]
        raise RewardError(f"--reward-module {path}: importing it failed: {type(exc).__name__}: {exc}") from exc


def _check_signature(name: str, kernel: Any) -> Any:
    """The kernel's `params` type, after checking the whole signature."""
    if not isinstance(kernel, wp.Kernel):
        raise RewardError(f"reward term {name!r}: expected a @wp.kernel {SIGNATURE}, got {type(kernel).__name__}")
    args = kernel.adj.args
    found = ", ".join(f"{a.label}: {getattr(a.type, 'key', getattr(a.type, '__name__', a.type))}" for a in args)
    out = args[2].type if len(args) == 3 else None
    if (
        len(args) != 3
        or args[0].type is not WorldState
        or not (args[1].type is wp.float32 or isinstance(args[1].type, type(WorldState)))
        or not (wp.types.is_array(out) and out.ndim == 1 and out.dtype is wp.float32)
    ):
        raise RewardError(f"reward term {name!r}: kernel {kernel.key}({found}) has the wrong signature; expected {SIGNATURE}")
    return args[1].type


def _make_params(name: str, params_type: Any, params: dict[str, Any]) -> Any:
    if params_type is wp.float32:
        if len(params) > 1 or "weight" in params:
            raise RewardError(f"reward term {name!r}: a float params takes one keyword (not 'weight': weights are "
                              f"EnvConfig.reward_weights), got {sorted(params)}")
        return float(next(iter(params.values()), 1.0))
    fields = set(params_type.vars)
    if set(params) != fields:
        raise RewardError(
            f"reward term {name!r}: params struct {params_type.key} has fields {sorted(fields)}, got keywords {sorted(params)}"
        )
    instance = params_type()
    for key, value in params.items():
        setattr(instance, key, value)
    return instance


register("qpos", kernels.qpos_reward, scale=10.0)
register("qvel", kernels.qvel_reward, scale=2.0)
register("root_pos", kernels.root_pos_reward, scale=10.0)
register("root_vel", kernels.root_vel_reward, scale=10.0)
register("rpos", kernels.rpos_reward, scale=100.0)
register("rquat", kernels.rquat_reward, scale=10.0)
register("rvel_rot", kernels.rvel_rot_reward, scale=0.1)
register("rvel_lin", kernels.rvel_lin_reward, scale=0.1)
register("action_out_of_bounds", kernels.action_out_of_bounds_penalty, penalty=True, bound=1.0)
register("action_rate", kernels.action_rate_penalty, penalty=True, scale=1.0)
register("activation_energy", kernels.activation_energy_penalty, penalty=True, scale=1.0)

__all__ = [
    "RewardError",
    "RewardTerm",
    "WorldState",
    "apply_reward_args",
    "load_reward_module",
    "register",
    "registered",
    "unregister",
]
