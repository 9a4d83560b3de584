"""Rotation helpers for MuJoCo conventions: quaternions (w, x, y, z) as `wp.vec4`, row-major `wp.mat33`.

Warp's own `wp.quat` builtins assume (x, y, z, w); nothing here uses them.
"""

from __future__ import annotations

import warp as wp


@wp.func
def qpos_quat(qpos: wp.array2d(dtype=float), world: int, adr: int) -> wp.vec4:
    """The (w, x, y, z) quaternion stored at qpos[world, adr:adr + 4], normalised."""
    q = wp.vec4(qpos[world, adr], qpos[world, adr + 1], qpos[world, adr + 2], qpos[world, adr + 3])
    return q / wp.max(wp.length(q), 1.0e-12)


@wp.func
def quat_angle(a: wp.vec4, b: wp.vec4) -> float:
    """Geodesic angle in [0, pi] between two unit quaternions, 2*arccos(|<a, b>|).

    Evaluated as 2*atan2(|v|, |w|) of the relative rotation conj(a) * b, which is exact near 0.
    """
    w = a[0] * b[0] + a[1] * b[1] + a[2] * b[2] + a[3] * b[3]
    va = wp.vec3(a[1], a[2], a[3])
    vb = wp.vec3(b[1], b[2], b[3])
    v = a[0] * vb - b[0] * va - wp.cross(va, vb)
    return 2.0 * wp.atan2(wp.length(v), wp.abs(w))


@wp.func
def quat_to_mat(q: wp.vec4) -> wp.mat33:
    """Rotation matrix (body -> world) of a unit (w, x, y, z) quaternion."""
    w = q[0]
    x = q[1]
    y = q[2]
    z = q[3]
    return wp.mat33(
        1.0 - 2.0 * (y * y + z * z), 2.0 * (x * y - w * z), 2.0 * (x * z + w * y),
        2.0 * (x * y + w * z), 1.0 - 2.0 * (x * x + z * z), 2.0 * (y * z - w * x),
        2.0 * (x * z - w * y), 2.0 * (y * z + w * x), 1.0 - 2.0 * (x * x + y * y),
    )


@wp.func
def mat_to_quat(r: wp.mat33) -> wp.vec4:
    """Unit (w, x, y, z) quaternion with w >= 0 of a rotation matrix (Shepperd's method)."""
    trace = r[0, 0] + r[1, 1] + r[2, 2]
    q = wp.vec4()
    if trace > 0.0:
        s = 2.0 * wp.sqrt(trace + 1.0)
        q = wp.vec4(0.25 * s, (r[2, 1] - r[1, 2]) / s, (r[0, 2] - r[2, 0]) / s, (r[1, 0] - r[0, 1]) / s)
    elif r[0, 0] > r[1, 1] and r[0, 0] > r[2, 2]:
        s = 2.0 * wp.sqrt(wp.max(1.0 + r[0, 0] - r[1, 1] - r[2, 2], 1.0e-12))
        q = wp.vec4((r[2, 1] - r[1, 2]) / s, 0.25 * s, (r[0, 1] + r[1, 0]) / s, (r[0, 2] + r[2, 0]) / s)
    elif r[1, 1] > r[2, 2]:
        s = 2.0 * wp.sqrt(wp.max(1.0 + r[1, 1] - r[0, 0] - r[2, 2], 1.0e-12))
        q = wp.vec4((r[0, 2] - r[2, 0]) / s, (r[0, 1] + r[1, 0]) / s, 0.25 * s, (r[1, 2] + r[2, 1]) / s)
    else:
        s = 2.0 * wp.sqrt(wp.max(1.0 + r[2, 2] - r[0, 0] - r[1, 1], 1.0e-12))
        q = wp.vec4((r[1, 0] - r[0, 1]) / s, (r[0, 2] + r[2, 0]) / s, (r[1, 2] + r[2, 1]) / s, 0.25 * s)
    if q[0] < 0.0:
        q = -q
    return q / wp.length(q)


@wp.func
def mat_to_rotvec(r: wp.mat33) -> wp.vec3:
    """Axis-angle vector (angle in [0, pi]) of a rotation matrix."""
    q = mat_to_quat(r)
    v = wp.vec3(q[1], q[2], q[3])
    n = wp.length(v)
    scale = 2.0 / wp.max(q[0], 1.0e-12)
    if n > 0.0:
        scale = 2.0 * wp.atan2(n, q[0]) / n
    return scale * v
