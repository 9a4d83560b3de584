"""Swappable muscle models: how excitation becomes activation and activation becomes force.

A muscle model owns its per-world state (beyond MuJoCo's `act`) and launches two Warp kernels
per physics substep: `force` inside mujoco_warp's actuation stage (activation rate and
actuator force) and `advance` after the substep (integrates activation and its own state).
The simulator gives MuJoCo user-defined dynamics, gain and bias for every muscle, so nothing
of MuJoCo's built-in muscle runs. New models register with `register_muscle_model`.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import mujoco_warp as mjw
import torch
import warp as wp

from mmimic.kernels import muscle as kernels


class MuscleModel(ABC):
    """Activation dynamics and force of all muscles of all worlds."""

    def allocate(self, nworld: int, nu: int, device: wp.context.Device) -> None:  # noqa: B027
        """Create the model's own state arrays (none by default)."""

    @abstractmethod
    def force(self, m: mjw.Model, d: mjw.Data) -> None:
        """Write `d.act_dot` and `d.actuator_force` from ctrl, act, length and velocity."""

    @abstractmethod
    def advance(self, m: mjw.Model, d: mjw.Data) -> None:
        """Integrate the activation (and the model's own state) over one physics substep."""

    def reset(self, mask: wp.array) -> None:  # noqa: B027
        """Restore the model's own state in the worlds selected by `mask` (MuJoCo's act is reset by the simulator)."""

    def state(self) -> dict[str, torch.Tensor]:
        """The model's own state as torch views (name -> (nworld, nu))."""
        return {}


def warp_struct(struct: Any, source: object, prefix: str = "") -> Any:
    """An instance of the Warp struct `struct` whose every field is the attribute `prefix + field` of `source`."""
    instance = struct()
    for field in struct.vars:
        setattr(instance, field, getattr(source, prefix + field))
    return instance


def muscle_arrays(m: mjw.Model, d: mjw.Data) -> list:
    """The muscle parameters of `m` and the muscle arrays of `d`, as the force kernels read them."""
    return [warp_struct(kernels.MuscleParams, m, "actuator_"), warp_struct(kernels.MuscleData, d)]


class MujocoMuscle(MuscleModel):
    """MuJoCo's muscle: first-order activation dynamics and Hill-type force-length-velocity force."""

    def __init__(self, timestep: float) -> None:
        self.timestep = timestep

    def force(self, m: mjw.Model, d: mjw.Data) -> None:
        wp.launch(kernels.mujoco_muscle_force, dim=(d.nworld, m.nu), inputs=muscle_arrays(m, d))

    def advance(self, m: mjw.Model, d: mjw.Data) -> None:
        wp.launch(kernels.euler_activation, dim=(d.nworld, m.nu), inputs=[self.timestep, d.act_dot], outputs=[d.act])


@dataclass(frozen=True)
class FatigueRates:
    """3CC-r rates in 1/s. Defaults are MyoSuite's: F and R identified for elbow torque, r = 150."""

    fatigue: float = 0.00912
    recovery: float = 0.1 * 0.00094
    rest_multiplier: float = 10.0 * 15.0


class FatigueMuscle(MuscleModel):
    """MuJoCo's Hill force driven by the active fraction of a three-compartment fatigue model (3CC-r).

    State per muscle: `resting` (MR) and `fatigued` (MF); the activation `act` is the active
    fraction MA. Sustained excitation moves units into the fatigued pool, which caps the force;
    at rest they recover `rest_multiplier` times faster.
    """

    def __init__(self, timestep: float, rates: FatigueRates | None = None) -> None:
        self.timestep = timestep
        self.rates = rates or FatigueRates()
        self.params = warp_struct(kernels.FatigueParams, self.rates)

    def allocate(self, nworld: int, nu: int, device: wp.context.Device) -> None:
        self.resting = wp.ones((nworld, nu), dtype=float, device=device)
        self.fatigued = wp.zeros((nworld, nu), dtype=float, device=device)

    def force(self, m: mjw.Model, d: mjw.Data) -> None:
        wp.launch(
            kernels.fatigue_muscle_force,
            dim=(d.nworld, m.nu),
            inputs=[self.timestep, self.params, *muscle_arrays(m, d), self.resting, self.fatigued],
        )

    def advance(self, m: mjw.Model, d: mjw.Data) -> None:
        wp.launch(
            kernels.fatigue_advance,
            dim=(d.nworld, m.nu),
            inputs=[self.timestep, self.params, m.actuator_dynprm, d.ctrl],
            outputs=[d.act, self.resting, self.fatigued],
        )

    def reset(self, mask: wp.array) -> None:
        wp.launch(kernels.reset_fatigue, dim=self.resting.shape, inputs=[mask], outputs=[self.resting, self.fatigued])

    def state(self) -> dict[str, torch.Tensor]:
        return {"resting": wp.to_torch(self.resting), "fatigued": wp.to_torch(self.fatigued)}


MuscleModelFactory = Callable[[float], MuscleModel]
_REGISTRY: dict[str, MuscleModelFactory] = {"mujoco": MujocoMuscle, "fatigue": FatigueMuscle}


def register_muscle_model(name: str, factory: MuscleModelFactory) -> None:
    """Make a muscle model available by name; `factory(timestep)` builds it."""
    _REGISTRY[name] = factory


def muscle_model_names() -> list[str]:
    """Names of the registered muscle models."""
    return sorted(_REGISTRY)


def make_muscle_model(name: str, timestep: float) -> MuscleModel:
    """Build the muscle model registered under `name`."""
    if name not in _REGISTRY:
        raise ValueError(f"unknown muscle model {name!r}; known: {', '.join(sorted(_REGISTRY))}")
    return _REGISTRY[name](timestep)
