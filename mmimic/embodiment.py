"""Embodiments: a muscle body loaded from a plain directory holding `embodiment.toml`.

The toml names the MJCF (a `musclemimic-models` body or an XML file beside the toml) and the
edits applied to it: finger removal, site positions (wrapping side sites), mimic sites, muscle
control range, physics options and per-world contact budgets. `load_embodiment` compiles the
edited model with MuJoCo and returns an `Embodiment` with the native-muscle `mujoco.MjModel`,
names, index maps and control timing.
"""

from __future__ import annotations

import hashlib
import tomllib
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import mujoco
import numpy as np

from mmimic.coupling import Coupling
from mmimic.muscles import muscle_model_names

MODELS_DIR = Path(__file__).resolve().parent.parent / "models"
EMBODIMENT_FILE = "embodiment.toml"
# Every section and key an embodiment.toml may hold (`mimic_sites` is an array of tables).
TOML_KEYS: dict[str, frozenset[str] | None] = {
    "name": None,
    "description": None,
    "model": frozenset({"package", "file", "keyframe"}),
    "fingers": frozenset({"remove", "joints", "muscles"}),
    "site_positions": frozenset({"name", "pos"}),
    "mimic_sites": frozenset({"name", "body"}),
    "muscles": frozenset({"ctrlrange", "model"}),
    "physics": frozenset({"timestep", "substeps", "solver", "integrator", "eulerdamp", "iterations", "ls_iterations"}),
    "contacts": frozenset({"nconmax", "njmax"}),
    "sensors": frozenset({"touch"}),
}


class EmbodimentError(ValueError):
    """An embodiment directory, its toml or its MJCF is missing or malformed."""


@dataclass(frozen=True)
class PhysicsOptions:
    """Simulation settings applied to the compiled model."""

    timestep: float
    substeps: int
    iterations: int
    ls_iterations: int
    nconmax: int
    njmax: int

    @property
    def control_dt(self) -> float:
        return self.timestep * self.substeps


@dataclass
class Embodiment:
    """An edited muscle body: the MuJoCo model plus the names and indices mmimic needs.

    `mj_model` keeps MuJoCo's native muscles; it is the ground truth for tests and the source
    for `mujoco_warp.put_model`.
    """

    name: str
    directory: Path
    xml_path: Path
    mj_model: mujoco.MjModel
    physics: PhysicsOptions
    muscle_model: str
    fingers_removed: bool
    finger_joints: tuple[str, ...]  # named by the toml: removed with the fingers; a clip may lack them
    mimic_sites: tuple[str, ...]
    touch_sensors: tuple[str, ...]
    keyframe: int | None
    model_hash: str
    joint_names: tuple[str, ...] = field(init=False)
    muscle_names: tuple[str, ...] = field(init=False)
    free_joint: str | None = field(init=False)
    root_body_id: int = field(init=False)
    mimic_site_ids: np.ndarray = field(init=False)
    mimic_body_ids: np.ndarray = field(init=False)
    touch_sensor_adr: np.ndarray = field(init=False)

    def __post_init__(self) -> None:
        m = self.mj_model
        self.joint_names = tuple(m.joint(i).name for i in range(m.njnt))
        self.muscle_names = tuple(m.actuator(i).name for i in range(m.nu))
        free = [m.joint(i).name for i in range(m.njnt) if m.jnt_type[i] == mujoco.mjtJoint.mjJNT_FREE]
        self.free_joint = free[0] if free else None
        # The kinematic tree's root body: the first child of the world.
        self.root_body_id = int(np.flatnonzero(m.body_parentid[1:] == 0)[0] + 1)
        self.mimic_site_ids = np.array([m.site(s).id for s in self.mimic_sites], dtype=np.int32)
        self.mimic_body_ids = m.site_bodyid[self.mimic_site_ids].astype(np.int32)
        self.touch_sensor_adr = np.array([m.sensor_adr[m.sensor(s).id] for s in self.touch_sensors], dtype=np.int32)

    @property
    def num_muscles(self) -> int:
        return int(self.mj_model.nu)

    @property
    def has_free_root(self) -> bool:
        return self.free_joint is not None

    @cached_property
    def coupling(self) -> Coupling:
        """The model's joint-equality couplings (`Coupling.complete` makes a pose satisfy them)."""
        return Coupling(self.mj_model)

    def initial_qpos(self) -> np.ndarray:
        """The start pose: the configured keyframe, else the model's qpos0, with every coupled
        joint computed from its driver (MyoFullBody's keyframe leaves the patella 0.052 off)."""
        m = self.mj_model
        qpos = (m.key_qpos[self.keyframe] if self.keyframe is not None else m.qpos0).copy()
        return self.coupling.complete(qpos)


def load_embodiment(
    name_or_directory: str | Path,
    *,
    remove_fingers: bool | None = None,
    muscle_model: str | None = None,
) -> Embodiment:
    """Load an embodiment by name (`models/<name>/`) or from a directory holding `embodiment.toml`.

    `remove_fingers` and `muscle_model` override the toml's `fingers.remove` and `muscles.model`.
    """
    directory = _resolve_directory(name_or_directory)
    toml_path = directory / EMBODIMENT_FILE
    config = _read_toml(toml_path)
    _check_known_keys(config, toml_path)
    reader = _Fields(config, toml_path)

    name = reader.get("name", str)
    xml_path = _resolve_xml(reader, directory)
    fingers_removed = reader.get("fingers.remove", bool, False) if remove_fingers is None else remove_fingers
    model_name = reader.get("muscles.model", str, "mujoco") if muscle_model is None else muscle_model
    if model_name not in muscle_model_names():
        raise EmbodimentError(f"{toml_path}: muscles.model = {model_name!r} is not one of {', '.join(muscle_model_names())}")
    physics = PhysicsOptions(
        timestep=reader.get("physics.timestep", float),
        substeps=reader.get("physics.substeps", int),
        iterations=reader.get("physics.iterations", int, 100),
        ls_iterations=reader.get("physics.ls_iterations", int, 50),
        nconmax=reader.get("contacts.nconmax", int),
        njmax=reader.get("contacts.njmax", int),
    )
    for key in ("timestep", "substeps", "iterations", "ls_iterations", "nconmax", "njmax"):
        if getattr(physics, key) <= 0:
            raise EmbodimentError(f"{toml_path}: {key} must be positive, got {getattr(physics, key)}")

    try:
        spec = mujoco.MjSpec.from_file(str(xml_path))
    except Exception as exc:  # MuJoCo raises ValueError with the parser's message
        raise EmbodimentError(f"{xml_path}: MuJoCo could not parse the MJCF: {exc}") from exc

    finger_joints = tuple(reader.get("fingers.joints", list, []))
    if fingers_removed:
        _remove_fingers(spec, finger_joints, reader.get("fingers.muscles", list, []), toml_path)
    _move_sites(spec, reader.get("site_positions", list, []), toml_path)
    sites = _add_mimic_sites(spec, reader.get("mimic_sites", list, []), toml_path)
    ctrlrange = reader.get("muscles.ctrlrange", list, [-1.0, 1.0])
    if len(ctrlrange) != 2 or not ctrlrange[0] < ctrlrange[1]:
        raise EmbodimentError(f"{toml_path}: muscles.ctrlrange must be [low, high] with low < high, got {ctrlrange}")
    for actuator in spec.actuators:
        if actuator.dyntype == mujoco.mjtDyn.mjDYN_MUSCLE:
            actuator.ctrlrange = ctrlrange
            actuator.ctrllimited = mujoco.mjtLimited.mjLIMITED_TRUE
    _apply_physics(spec, reader, physics, toml_path)

    try:
        mj_model = spec.compile()
    except Exception as exc:
        raise EmbodimentError(f"{xml_path}: the edited model does not compile: {exc}") from exc
    touch = tuple(reader.get("sensors.touch", list, []))
    for sensor in touch:
        if mujoco.mj_name2id(mj_model, mujoco.mjtObj.mjOBJ_SENSOR, sensor) < 0:
            raise EmbodimentError(f"{toml_path}: sensors.touch names {sensor!r}, which the model does not have")
    keyframe = reader.get("model.keyframe", int, None)
    if keyframe is not None and not 0 <= keyframe < mj_model.nkey:
        raise EmbodimentError(f"{toml_path}: model.keyframe {keyframe} is out of range (the model has {mj_model.nkey})")
    model_hash = hashlib.sha256(spec.to_xml().encode()).hexdigest()[:16]
    return Embodiment(
        name=name, directory=directory, xml_path=xml_path, mj_model=mj_model, physics=physics, muscle_model=model_name,
        fingers_removed=fingers_removed, finger_joints=finger_joints, mimic_sites=sites, touch_sensors=touch,
        keyframe=keyframe, model_hash=model_hash,
    )


def available_embodiments() -> list[str]:
    """Names of the embodiments shipped in `models/`."""
    return sorted(p.parent.name for p in MODELS_DIR.glob(f"*/{EMBODIMENT_FILE}"))


class _Fields:
    """Typed access to dotted toml fields with errors that name the file and the field."""

    def __init__(self, config: dict[str, Any], path: Path) -> None:
        self.config = config
        self.path = path

    _MISSING = object()

    def get(self, dotted: str, kind: type, default: Any = _MISSING) -> Any:
        node: Any = self.config
        for part in dotted.split("."):
            if not isinstance(node, dict) or part not in node:
                if default is self._MISSING:
                    raise EmbodimentError(f"{self.path}: missing required field '{dotted}'")
                return default
            node = node[part]
        if kind is float and isinstance(node, int) and not isinstance(node, bool):
            node = float(node)
        if not isinstance(node, kind) or (kind is int and isinstance(node, bool)):
            raise EmbodimentError(
                f"{self.path}: field '{dotted}' must be {kind.__name__}, got {type(node).__name__} {node!r}"
            )
        return node


def _resolve_directory(name_or_directory: str | Path) -> Path:
    candidate = Path(name_or_directory)
    if (candidate / EMBODIMENT_FILE).is_file():
        return candidate.resolve()
    if candidate.is_dir():
        raise EmbodimentError(f"{candidate}: no {EMBODIMENT_FILE} in this directory")
    shipped = MODELS_DIR / str(name_or_directory)
    if (shipped / EMBODIMENT_FILE).is_file():
        return shipped
    known = ", ".join(available_embodiments()) or "none"
    raise EmbodimentError(
        f"unknown embodiment {str(name_or_directory)!r}: not a directory with {EMBODIMENT_FILE} "
        f"and not one of the shipped embodiments ({known})"
    )


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as f:
            return tomllib.load(f)
    except tomllib.TOMLDecodeError as exc:
        raise EmbodimentError(f"{path}: malformed TOML: {exc}") from exc


def _check_known_keys(config: dict[str, Any], path: Path) -> None:
    """EmbodimentError naming an unknown section or key and the nearest known name."""
    from mmimic.cli import nearest

    for section, value in config.items():
        if section not in TOML_KEYS:
            raise EmbodimentError(f"{path}: unknown section or key {section!r}{nearest(section, TOML_KEYS)}; "
                                  f"known: {', '.join(TOML_KEYS)}")
        keys = TOML_KEYS[section]
        tables = value if isinstance(value, list) else [value]
        for table in tables:
            for key in table if keys is not None and isinstance(table, dict) else ():
                if key not in keys:
                    raise EmbodimentError(f"{path}: unknown key '{section}.{key}'{nearest(key, keys)}; "
                                          f"known in [{section}]: {', '.join(sorted(keys))}")


def _resolve_xml(reader: _Fields, directory: Path) -> Path:
    package = reader.get("model.package", str, "")
    file = reader.get("model.file", str, "")
    if bool(package) == bool(file):
        raise EmbodimentError(f"{reader.path}: [model] needs exactly one of 'package' or 'file'")
    if file:
        xml_path = (directory / file).resolve()
        if not xml_path.is_file():
            raise EmbodimentError(f"{reader.path}: model.file {file!r} does not exist ({xml_path})")
        return xml_path
    import musclemimic_models

    try:
        return Path(musclemimic_models.get_xml_path(package))
    except Exception as exc:
        raise EmbodimentError(f"{reader.path}: model.package {package!r} is not a musclemimic-models body: {exc}") from exc


def _remove_fingers(spec: mujoco.MjSpec, joints: tuple[str, ...], muscles: list[str], path: Path) -> None:
    """Delete finger joints and muscles by exact name, and every tendon naming a removed muscle."""
    joint_set, muscle_set = set(joints), set(muscles)
    missing = sorted(joint_set - {j.name for j in spec.joints}) + sorted(muscle_set - {a.name for a in spec.actuators})
    if missing:
        raise EmbodimentError(f"{path}: fingers lists names the model does not have: {', '.join(missing)}")
    for joint in [j for j in spec.joints if j.name in joint_set]:
        spec.delete(joint)
    for actuator in [a for a in spec.actuators if a.name in muscle_set]:
        spec.delete(actuator)
    for tendon in [t for t in spec.tendons if any(m in t.name for m in muscle_set)]:
        spec.delete(tendon)


def _move_sites(spec: mujoco.MjSpec, entries: list[Any], path: Path) -> None:
    """Set existing sites' positions (in their body's frame), e.g. wrapping side sites
    (docs/engine.md: the MuJoCo 4.0 side-site rule)."""
    for i, entry in enumerate(entries):
        pos = entry.get("pos") if isinstance(entry, dict) else None
        if not isinstance(entry, dict) or not isinstance(entry.get("name"), str) or not (
            isinstance(pos, list) and len(pos) == 3 and all(isinstance(x, (int, float)) for x in pos)
        ):
            raise EmbodimentError(f"{path}: site_positions[{i}] needs a string 'name' and a 3-number 'pos'")
        site = spec.site(entry["name"])
        if site is None:
            raise EmbodimentError(f"{path}: site_positions[{i}] names site {entry['name']!r}, which the model does not have")
        site.pos = [float(x) for x in pos]


def _add_mimic_sites(spec: mujoco.MjSpec, entries: list[Any], path: Path) -> tuple[str, ...]:
    """Add one site per tracked body at the body's origin, in the configured order."""
    names = []
    for i, entry in enumerate(entries):
        if not isinstance(entry, dict) or not isinstance(entry.get("name"), str) or not isinstance(entry.get("body"), str):
            raise EmbodimentError(f"{path}: mimic_sites[{i}] needs string fields 'name' and 'body'")
        body = spec.body(entry["body"])
        if body is None:
            raise EmbodimentError(f"{path}: mimic_sites[{i}] names body {entry['body']!r}, which the model does not have")
        body.add_site(name=entry["name"], pos=[0, 0, 0], quat=[1, 0, 0, 0], group=4, size=[0.075, 0.05, 0.025])
        names.append(entry["name"])
    if not names:
        raise EmbodimentError(f"{path}: at least one [[mimic_sites]] entry is required")
    return tuple(names)


def _apply_physics(spec: mujoco.MjSpec, reader: _Fields, physics: PhysicsOptions, path: Path) -> None:
    solvers = {"newton": mujoco.mjtSolver.mjSOL_NEWTON, "cg": mujoco.mjtSolver.mjSOL_CG}
    integrators = {"euler": mujoco.mjtIntegrator.mjINT_EULER, "implicitfast": mujoco.mjtIntegrator.mjINT_IMPLICITFAST}
    solver = reader.get("physics.solver", str, "newton")
    integrator = reader.get("physics.integrator", str, "euler")
    if solver not in solvers:
        raise EmbodimentError(f"{path}: physics.solver {solver!r} is not one of {', '.join(solvers)}")
    if integrator not in integrators:
        raise EmbodimentError(f"{path}: physics.integrator {integrator!r} is not one of {', '.join(integrators)}")
    spec.option.timestep = physics.timestep
    spec.option.solver = solvers[solver]
    spec.option.integrator = integrators[integrator]
    spec.option.iterations = physics.iterations
    spec.option.ls_iterations = physics.ls_iterations
    eulerdamp_bit = int(mujoco.mjtDisableBit.mjDSBL_EULERDAMP)
    if reader.get("physics.eulerdamp", bool, True):
        spec.option.disableflags &= ~eulerdamp_bit
    else:
        spec.option.disableflags |= eulerdamp_bit
