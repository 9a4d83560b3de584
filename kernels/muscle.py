"""Muscle activation dynamics and Hill-type force as Warp functions and kernels.

The default model equals MuJoCo's muscle (`mju_muscleDynamics`, `mju_muscleGain`,
`mju_muscleBias` in MuJoCo's `engine_util_misc.c`). Parameters are read per actuator from
the model: `gainprm` for the active force, `biasprm` for the passive force (they differ for a
few muscles), `dynprm` for the activation time constants.

The fatigue model is the three-compartment controller 3CC-r (Looft, Vieira & Hamer 2018, as
MyoSuite offers it): motor units are active (MA), resting (MR) or fatigued (MF), and
MA + MR + MF = 1. The active fraction MA takes the place of the activation, so with zero
fatigue and recovery rates the model reduces exactly to MuJoCo's activation dynamics.
"""

from __future__ import annotations

import warp as wp

vec10 = wp.types.vector(length=10, dtype=wp.float32)

MINVAL = 1.0e-15


@wp.func
def muscle_gain_length(length: float, lmin: float, lmax: float) -> float:
    """Active force-length curve: four quadratic pieces, 1 at the optimal length, 0 outside [lmin, lmax]."""
    if length < lmin or length > lmax:
        return 0.0
    a = 0.5 * (lmin + 1.0)
    b = 0.5 * (1.0 + lmax)
    if length <= a:
        x = (length - lmin) / wp.max(MINVAL, a - lmin)
        return 0.5 * x * x
    if length <= 1.0:
        x = (1.0 - length) / wp.max(MINVAL, 1.0 - a)
        return 1.0 - 0.5 * x * x
    if length <= b:
        x = (length - 1.0) / wp.max(MINVAL, b - 1.0)
        return 1.0 - 0.5 * x * x
    x = (lmax - length) / wp.max(MINVAL, lmax - b)
    return 0.5 * x * x


@wp.func
def muscle_peak_force(prm: vec10, acc0: float) -> float:
    """The peak isometric force; a negative `force` parameter means scale / acc0."""
    force = prm[2]
    if force < 0.0:
        force = prm[3] / wp.max(MINVAL, acc0)
    return force


@wp.func
def muscle_normalized_length(length: float, lengthrange: wp.vec2, prm: vec10) -> wp.vec2:
    """Normalised length L (the compiled length range mapped onto [range0, range1]) and the optimal length L0."""
    optimal = (lengthrange[1] - lengthrange[0]) / wp.max(MINVAL, prm[1] - prm[0])
    normalized = prm[0] + (length - lengthrange[0]) / wp.max(MINVAL, optimal)
    return wp.vec2(normalized, optimal)


@wp.func
def muscle_gain(length: float, velocity: float, lengthrange: wp.vec2, acc0: float, prm: vec10) -> float:
    """Active force per unit activation: -F0 * FL(L) * FV(V) (negative: the muscle pulls)."""
    lo = muscle_normalized_length(length, lengthrange, prm)
    normalized_velocity = velocity / wp.max(MINVAL, lo[1] * prm[6])
    fvmax = prm[8]
    y = fvmax - 1.0
    fv = fvmax
    if normalized_velocity <= -1.0:
        fv = 0.0
    elif normalized_velocity <= 0.0:
        fv = (normalized_velocity + 1.0) * (normalized_velocity + 1.0)
    elif normalized_velocity <= y:
        fv = fvmax - (y - normalized_velocity) * (y - normalized_velocity) / wp.max(MINVAL, y)
    fl = muscle_gain_length(lo[0], prm[4], prm[5])
    return -muscle_peak_force(prm, acc0) * fl * fv


@wp.func
def muscle_bias(length: float, lengthrange: wp.vec2, acc0: float, prm: vec10) -> float:
    """Passive force: zero below the optimal length, quadratic up to (1 + lmax) / 2, then linear."""
    normalized = muscle_normalized_length(length, lengthrange, prm)[0]
    b = 0.5 * (1.0 + prm[5])
    if normalized <= 1.0:
        return 0.0
    scale = -muscle_peak_force(prm, acc0) * prm[7]
    if normalized <= b:
        x = (normalized - 1.0) / wp.max(MINVAL, b - 1.0)
        return scale * 0.5 * x * x
    x = (normalized - b) / wp.max(MINVAL, b - 1.0)
    return scale * (0.5 + x)


@wp.func
def activation_time_constant(excitation_change: float, activation: float, dynprm: vec10) -> float:
    """Time constant of the activation ODE: faster activation and slower deactivation at high activation."""
    level = 0.5 + 1.5 * wp.clamp(activation, 0.0, 1.0)
    tau_act = dynprm[0] * level
    tau_deact = dynprm[1] / level
    width = dynprm[2]
    if width < MINVAL:
        if excitation_change > 0.0:
            return tau_act
        return tau_deact
    x = wp.clamp(excitation_change / width + 0.5, 0.0, 1.0)
    smooth = x * x * x * (3.0 * x * (2.0 * x - 5.0) + 10.0)
    return tau_deact + (tau_act - tau_deact) * smooth


@wp.func
def muscle_activation_rate(ctrl: float, activation: float, dynprm: vec10) -> float:
    """d(activation)/dt for an excitation `ctrl` (clamped to [0, 1])."""
    change = wp.clamp(ctrl, 0.0, 1.0) - activation
    return change / wp.max(MINVAL, activation_time_constant(change, activation, dynprm))


@wp.struct
class MuscleParams:
    """MuJoCo's per-muscle model parameters, each (nbatch, nu) with its own nbatch (1 unless batched over
    worlds); world w reads row w % nbatch of each."""

    lengthrange: wp.array2d(dtype=wp.vec2)
    acc0: wp.array2d(dtype=float)
    gainprm: wp.array2d(dtype=vec10)
    biasprm: wp.array2d(dtype=vec10)
    dynprm: wp.array2d(dtype=vec10)


@wp.struct
class MuscleData:
    """mujoco_warp's per-world muscle arrays, each (nworld, nu): the force kernels write act_dot and actuator_force."""

    ctrl: wp.array2d(dtype=float)
    act: wp.array2d(dtype=float)
    actuator_length: wp.array2d(dtype=float)
    actuator_velocity: wp.array2d(dtype=float)
    act_dot: wp.array2d(dtype=float)
    actuator_force: wp.array2d(dtype=float)


@wp.func
def world_dynprm(model: MuscleParams, world: int, muscle: int) -> vec10:
    """The activation parameters of `muscle` in `world`."""
    return model.dynprm[world % model.dynprm.shape[0], muscle]


@wp.func
def hill_force(model: MuscleParams, data: MuscleData, world: int, muscle: int, activation: float) -> float:
    """Actuator force gain * activation + bias of `muscle` in `world`, each parameter from its own row for the world."""
    length = data.actuator_length[world, muscle]
    lengthrange = model.lengthrange[world % model.lengthrange.shape[0], muscle]
    acc0 = model.acc0[world % model.acc0.shape[0], muscle]
    gainprm = model.gainprm[world % model.gainprm.shape[0], muscle]
    gain = muscle_gain(length, data.actuator_velocity[world, muscle], lengthrange, acc0, gainprm)
    return gain * activation + muscle_bias(length, lengthrange, acc0, model.biasprm[world % model.biasprm.shape[0], muscle])


@wp.kernel
def mujoco_muscle_force(model: MuscleParams, data: MuscleData):
    """Activation rate and force of every muscle of every world (MuJoCo's muscle model)."""
    world, muscle = wp.tid()
    a = data.act[world, muscle]
    data.act_dot[world, muscle] = muscle_activation_rate(data.ctrl[world, muscle], a, world_dynprm(model, world, muscle))
    data.actuator_force[world, muscle] = hill_force(model, data, world, muscle, a)


@wp.kernel
def euler_activation(timestep: float, act_dot: wp.array2d(dtype=float), act: wp.array2d(dtype=float)):
    """Explicit Euler step of the activation, as MuJoCo's Euler integrator does."""
    world, muscle = wp.tid()
    act[world, muscle] = act[world, muscle] + timestep * act_dot[world, muscle]


@wp.struct
class FatigueParams:
    """3CC-r rates (1/s): fatigue F, recovery R, and the recovery multiplier r applied at rest."""

    fatigue: float
    recovery: float
    rest_multiplier: float


@wp.func
def fatigue_rates(
    excitation: float, active: float, resting: float, fatigued: float, dynprm: vec10, params: FatigueParams, timestep: float
) -> wp.vec3:
    """3CC-r time derivatives of (MA, MR, MF).

    The flow C from resting to active units drives MA toward the target load TL (the clamped
    excitation): recruitment at 1/(tau_act (0.5 + 1.5 MA)), limited by the resting pool, and
    derecruitment at (0.5 + 1.5 MA)/tau_deact. C is clipped so that no compartment leaves [0, 1]
    within a step. Fatigued units recover at R, or r R while MA is above the target.
    """
    target = wp.clamp(excitation, 0.0, 1.0)
    level = 0.5 + 1.5 * active
    recovery = params.recovery
    flow = float(0.0)
    if active < target:
        flow = wp.min(target - active, resting) / wp.max(MINVAL, dynprm[0] * level)
    else:
        flow = (target - active) * level / wp.max(MINVAL, dynprm[1])
        recovery = params.rest_multiplier * params.recovery
    low = wp.max(-active / timestep + params.fatigue * active, (resting - 1.0) / timestep + recovery * fatigued)
    high = wp.min((1.0 - active) / timestep + params.fatigue * active, resting / timestep + recovery * fatigued)
    flow = wp.clamp(flow, low, high)
    recovered = recovery * fatigued
    return wp.vec3(flow - params.fatigue * active, recovered - flow, params.fatigue * active - recovered)


@wp.kernel
def fatigue_muscle_force(
    timestep: float,
    params: FatigueParams,
    model: MuscleParams,
    data: MuscleData,
    resting: wp.array2d(dtype=float),
    fatigued: wp.array2d(dtype=float),
):
    """Rate of the active fraction (the activation) and the Hill force it produces."""
    world, muscle = wp.tid()
    active = data.act[world, muscle]
    rates = fatigue_rates(
        data.ctrl[world, muscle], active, resting[world, muscle], fatigued[world, muscle], world_dynprm(model, world, muscle),
        params, timestep,
    )
    data.act_dot[world, muscle] = rates[0]
    data.actuator_force[world, muscle] = hill_force(model, data, world, muscle, active)


@wp.kernel
def fatigue_advance(
    timestep: float,
    params: FatigueParams,
    dynprm: wp.array2d(dtype=vec10),
    ctrl: wp.array2d(dtype=float),
    act: wp.array2d(dtype=float),
    resting: wp.array2d(dtype=float),
    fatigued: wp.array2d(dtype=float),
):
    """Explicit Euler step of the three compartments."""
    world, muscle = wp.tid()
    rest, tired = resting[world, muscle], fatigued[world, muscle]
    active = act[world, muscle]
    rates = fatigue_rates(ctrl[world, muscle], active, rest, tired, dynprm[world % dynprm.shape[0], muscle], params, timestep)
    act[world, muscle] = active + timestep * rates[0]
    resting[world, muscle] = rest + timestep * rates[1]
    fatigued[world, muscle] = tired + timestep * rates[2]


@wp.kernel
def reset_fatigue(
    mask: wp.array(dtype=wp.bool), resting: wp.array2d(dtype=float), fatigued: wp.array2d(dtype=float)
):
    """Rested muscles (MR = 1, MF = 0) in the selected worlds."""
    world, muscle = wp.tid()
    if mask[world]:
        resting[world, muscle] = 1.0
        fatigued[world, muscle] = 0.0
