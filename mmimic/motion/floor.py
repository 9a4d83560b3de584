"""The floor z = 0 for the OpenSim converter and the retargeter: the lowest point of geoms
(`geom_bottoms` in one pose, `lowest_points` over a clip), and the ground pass that removes
floating and penetration by moving the free root vertically (`ground`).

By default the lowest point is taken over the body's collision geoms (those with a nonzero `contype` or
`conaffinity`, the floor's own geoms excluded), exactly for spheres, capsules, cylinders,
ellipsoids and boxes and over the vertices for meshes. The floor is the plane z = 0.
"""

from __future__ import annotations

from dataclasses import dataclass

import mujoco
import numpy as np

from mmimic.motion.kinematics import per_frame

_SPHERE, _CAPSULE, _CYLINDER, _ELLIPSOID, _BOX, _MESH = (
    int(mujoco.mjtGeom.mjGEOM_SPHERE),
    int(mujoco.mjtGeom.mjGEOM_CAPSULE),
    int(mujoco.mjtGeom.mjGEOM_CYLINDER),
    int(mujoco.mjtGeom.mjGEOM_ELLIPSOID),
    int(mujoco.mjtGeom.mjGEOM_BOX),
    int(mujoco.mjtGeom.mjGEOM_MESH),
)


def collision_geoms(model: mujoco.MjModel) -> np.ndarray:
    """Ids of the body's collision geoms (not attached to the world body)."""
    collide = (model.geom_contype != 0) | (model.geom_conaffinity != 0)
    return np.flatnonzero(collide & (model.geom_bodyid != 0))


def body_geoms(model: mujoco.MjModel, bodies: tuple[str, ...]) -> np.ndarray:
    """Ids of every geom of the named bodies."""
    return np.flatnonzero(np.isin(model.geom_bodyid, [model.body(b).id for b in bodies]))


def lowest_points(model: mujoco.MjModel, qpos: np.ndarray, geoms: np.ndarray | None = None) -> np.ndarray:
    """(T,) the lowest world z of `geoms` (default: the body's collision geoms) in each frame
    of `qpos` (T, nq)."""
    geoms = collision_geoms(model) if geoms is None else np.asarray(geoms)
    if not geoms.size:
        raise ValueError("the body has no collision geoms to put on the floor")
    # (T, G, 4): each geom centre's world z, then the world z of its three axes
    poses = per_frame(model, qpos, lambda data: np.column_stack([data.geom_xpos[geoms, 2], data.geom_xmat[geoms, 6:9]]))
    return np.min(poses[..., 0] - _reach(model, geoms, poses[..., 1:]), axis=1)


def geom_bottoms(model: mujoco.MjModel, data: mujoco.MjData, geoms: np.ndarray) -> np.ndarray:
    """(G,) the lowest world z of each of `geoms` at the poses in `data` (after kinematics)."""
    geoms = np.asarray(geoms)
    return data.geom_xpos[geoms, 2] - _reach(model, geoms, data.geom_xmat[geoms, 6:9])


def _reach(model: mujoco.MjModel, geoms: np.ndarray, axes_z: np.ndarray) -> np.ndarray:
    """(..., G) how far each of `geoms` reaches below its centre, from `axes_z` (..., G, 3), the
    world z of each geom axis: exact for spheres, capsules, cylinders, ellipsoids and boxes,
    over the vertices for meshes."""
    kinds, size = model.geom_type[geoms], model.geom_size[geoms]
    reach = np.full(axes_z.shape[:-1], np.nan)
    for kind in np.unique(kinds):
        cols = np.flatnonzero(kinds == kind)
        s, rz = size[cols], axes_z[..., cols, :]
        if kind == _SPHERE:
            reach[..., cols] = s[:, 0]
        elif kind == _CAPSULE:
            reach[..., cols] = np.abs(rz[..., 2]) * s[:, 1] + s[:, 0]
        elif kind == _CYLINDER:
            reach[..., cols] = np.abs(rz[..., 2]) * s[:, 1] + s[:, 0] * np.sqrt(np.clip(1 - rz[..., 2] ** 2, 0, 1))
        elif kind == _ELLIPSOID:
            reach[..., cols] = np.linalg.norm(rz * s, axis=-1)
        elif kind == _BOX:
            reach[..., cols] = np.sum(np.abs(rz) * s, axis=-1)
        elif kind == _MESH:
            for c, g in zip(cols, geoms[cols]):
                mesh = model.geom_dataid[g]
                vert = model.mesh_vert[model.mesh_vertadr[mesh] : model.mesh_vertadr[mesh] + model.mesh_vertnum[mesh]]
                reach[..., c] = -np.min(axes_z[..., c, :] @ vert.T, axis=-1)
        else:
            name = model.geom(int(geoms[cols[0]])).name
            raise ValueError(f"geom {name!r}: the lowest point of geom type {kind} is not supported")
    return reach


@dataclass(frozen=True)
class GroundPass:
    """What the ground pass did: the range (m) of the height correction it applied (negative
    lowers the body)."""

    lowest_correction: float
    highest_correction: float


def ground(
    model: mujoco.MjModel,
    qpos: np.ndarray,
    height_column: int,
    fps: float,
    geoms: np.ndarray | None = None,
    window: float = 0.25,
    contact_height: float = 0.02,
    smoothing: float = 0.02,
) -> GroundPass:
    """Put the clip on the floor, in place on `qpos` (T, nq), by moving the column
    `height_column` (the free root's z) down by a floor estimate under each frame's lowest
    point (of `geoms`, default all collision geoms):

    * a frame is in *contact* when its lowest point is within `contact_height` of the lowest
      over +-`window` seconds (walking: every frame; running: all but the flight phases);
    * the floor follows the lowest point through contact frames and is interpolated linearly
      across the others, so flight phases keep their height;
    * it is smoothed by a moving average over +-`smoothing` seconds and kept at or under
      each frame's lowest point, so no frame penetrates.

    Contacts thus sit on the floor even where a source's feet drift or sink (the AMP walk's
    stance ankles rise 6 cm over its 2.6 s and sink 1.5 cm within a stance)."""
    lowest = lowest_points(model, qpos, geoms)
    local = _moving(lowest, max(1, round(window * fps)), np.min)
    contact = lowest - local <= contact_height
    frames = np.arange(len(lowest))
    floor = np.interp(frames, frames[contact], lowest[contact])
    floor = np.minimum(_moving(floor, max(1, round(smoothing * fps)), np.mean), lowest)
    qpos[:, height_column] -= floor
    return GroundPass(float(-floor.max()), float(-floor.min()))


def _moving(values: np.ndarray, half_width: int, reduce) -> np.ndarray:
    """`reduce` over the window of +-`half_width` samples around each sample (edges repeated)."""
    padded = np.pad(values, half_width, mode="edge")
    return reduce(np.lib.stride_tricks.sliding_window_view(padded, 2 * half_width + 1), axis=-1)
