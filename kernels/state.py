"""The world state that every observation, reward and termination kernel reads, and the re-centred reference.

N worlds; S mimic sites in the embodiment's order, site 0 the main site (`pelvis_mimic` for the full
body, `upper_body_mimic` for the bimanual arm), relative site features covering sites 1..S-1
(formulas in kernels/observation.py); L look-ahead frames `EnvConfig.stride` steps apart; F frames
of the motion library, C clips. Simulator arrays are mujoco_warp's (post-step; which derived
quantities are recomputed is `EnvConfig.derived`). Every episode starts at root x = y = 0, so the
reference has the root x-y of the episode's start frame removed (`recentre`, `reference_qpos`).
`mmimic.env.buffers` allocates the arrays and fills the struct.
"""

from __future__ import annotations

import warp as wp


@wp.struct
class WorldState:
    """Every array a step's kernels read, indexed [world, ...] unless a shape says otherwise."""

    # Simulator (mujoco_warp Data, post-step)
    qpos: wp.array2d(dtype=float)  # (N, nq) joint positions (free root: x y z, quaternion w x y z)
    qvel: wp.array2d(dtype=float)  # (N, nv) joint velocities (free root: linear world, angular local)
    act: wp.array2d(dtype=float)  # (N, nu) muscle activations
    ctrl: wp.array2d(dtype=float)  # (N, nu) excitations as applied, the action clipped to [-1, 1]
    actuator_length: wp.array2d(dtype=float)  # (N, nu) muscle lengths of the last forward pass
    actuator_velocity: wp.array2d(dtype=float)  # (N, nu) muscle velocities of the last forward pass
    actuator_force: wp.array2d(dtype=float)  # (N, nu) muscle forces (N, negative pulls) of the last forward pass
    sensordata: wp.array2d(dtype=float)  # (N, nsensordata) of the last forward pass
    site_xpos: wp.array2d(dtype=wp.vec3)  # (N, nsite) world positions of all sites
    site_xmat: wp.array2d(dtype=wp.mat33)  # (N, nsite) site -> world rotations
    cvel: wp.array2d(dtype=wp.spatial_vector)  # (N, nbody) com-based [angular, linear] body velocities
    subtree_com: wp.array2d(dtype=wp.vec3)  # (N, nbody) subtree centres of mass
    # Simulated mimic sites, from the post-step poses
    site_pos: wp.array2d(dtype=wp.vec3)  # (N, S) world positions
    site_rpos: wp.array2d(dtype=wp.vec3)  # (N, S-1) positions relative to the main site (world frame)
    site_rangles: wp.array2d(dtype=wp.vec3)  # (N, S-1) rotation vectors of R_0^T R_i
    site_rvel: wp.array2d(dtype=wp.spatial_vector)  # (N, S-1) relative [angular, linear] velocities
    # Reference at the post-step frame
    frame: wp.array2d(dtype=wp.int32)  # (L, N) motion-library rows: [0] current frame, [k] look-ahead k
    ref_qpos: wp.array2d(dtype=float)  # (N, nq) current frame, root x-y re-centred
    ref_qvel: wp.array2d(dtype=float)  # (N, nv) current frame
    ref_site_pos: wp.array2d(dtype=wp.vec3)  # (N, S) current frame, world frame, root x-y re-centred
    ref_site_rpos: wp.array3d(dtype=wp.vec3)  # (L, N, S-1) as site_rpos at every look-ahead frame ([0] current)
    ref_site_rangles: wp.array3d(dtype=wp.vec3)  # (L, N, S-1) as site_rangles
    ref_site_rvel: wp.array3d(dtype=wp.spatial_vector)  # (L, N, S-1) as site_rvel
    # Motion library: all clips' frames concatenated, clip c is rows clip_start[c] .. + clip_length[c] - 1
    lib_qpos: wp.array2d(dtype=float)  # (F, nq) as recorded (not re-centred)
    lib_qvel: wp.array2d(dtype=float)  # (F, nv)
    lib_site_xpos: wp.array2d(dtype=wp.vec3)  # (F, S) world positions
    lib_site_xmat: wp.array2d(dtype=wp.mat33)  # (F, S) site -> world rotations
    lib_site_vel: wp.array2d(dtype=wp.spatial_vector)  # (F, S) world [angular, linear] site velocities
    clip_start: wp.array(dtype=wp.int32)  # (C,) first row of each clip
    clip_length: wp.array(dtype=wp.int32)  # (C,) frames of each clip
    clip_cdf: wp.array(dtype=float)  # (C,) cumulative clip-draw probabilities, 1 at the end
    # Episode
    clip: wp.array(dtype=wp.int32)  # (N,) the episode's clip
    clip_step: wp.array(dtype=wp.int32)  # (N,) frame of the current reference within the clip
    episode_step: wp.array(dtype=wp.int32)  # (N,) control steps taken in the episode, 1 on the first
    root_offset: wp.array(dtype=wp.vec2)  # (N,) the start frame's root x-y, removed from the reference
    action: wp.array2d(dtype=float)  # (N, A) the policy's action as given (non-finite actions zeroed)
    last_action: wp.array2d(dtype=float)  # (N, A) the previous step's action, zero after a reset
    nonfinite_action: wp.array(dtype=wp.bool)  # (N,) a non-finite action was given this step
    # Embodiment
    site_ids: wp.array(dtype=wp.int32)  # (S,) MuJoCo site ids of the mimic sites
    body_ids: wp.array(dtype=wp.int32)  # (S,) MuJoCo ids of the bodies that carry them
    root_body: int  # the kinematic tree's root body, whose subtree centre of mass cvel refers to
    root_qpos_adr: int  # qpos address of the free root joint (x y z qw qx qy qz); -1 for a fixed base
    root_qvel_adr: int  # qvel address of the free root joint (vx vy vz world, wx wy wz local); -1 if none


@wp.func
def recentre(state: WorldState, world: int, p: wp.vec3) -> wp.vec3:
    """A world position of the reference with the world's start-frame root x-y removed."""
    offset = state.root_offset[world]
    return p - wp.vec3(offset[0], offset[1], 0.0)


@wp.func
def reference_qpos(state: WorldState, frame: int, world: int, i: int) -> float:
    """qpos[i] of library row `frame`, the free root's position passed through `recentre`."""
    value = state.lib_qpos[frame, i]
    root = state.root_qpos_adr
    if root >= 0 and (i == root or i == root + 1):
        q = state.lib_qpos
        value = recentre(state, world, wp.vec3(q[frame, root], q[frame, root + 1], q[frame, root + 2]))[i - root]
    return value
