"""Batched quaternion helpers in torch, MuJoCo convention (w, x, y, z), any leading shape."""

from __future__ import annotations

import torch

_SMALL_ANGLE = 1e-6


def quat_mul(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Hamilton product `a * b` (rotation b first, then a)."""
    aw, ax, ay, az = a.unbind(-1)
    bw, bx, by, bz = b.unbind(-1)
    return torch.stack(
        (
            aw * bw - ax * bx - ay * by - az * bz,
            aw * bx + ax * bw + ay * bz - az * by,
            aw * by - ax * bz + ay * bw + az * bx,
            aw * bz + ax * by - ay * bx + az * bw,
        ),
        dim=-1,
    )


def quat_to_mat(q: torch.Tensor) -> torch.Tensor:
    """Unit quaternions (..., 4) -> row-major rotation matrices (..., 3, 3), frame -> world."""
    w, x, y, z = q.unbind(-1)
    rows = (
        (1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y)),
        (2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x)),
        (2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y)),
    )
    return torch.stack([torch.stack(row, dim=-1) for row in rows], dim=-2)


def slerp(q0: torch.Tensor, q1: torch.Tensor, alpha: torch.Tensor) -> torch.Tensor:
    """Spherical linear interpolation along the shorter arc; `alpha` broadcasts against (..., 1).

    Nearly equal quaternions (angle below 1e-6 rad) fall back to a normalised lerp.
    """
    dot = (q0 * q1).sum(-1, keepdim=True)
    q1 = torch.where(dot < 0, -q1, q1)
    cos = dot.abs().clamp(max=1.0)
    theta = torch.acos(cos)
    sin = torch.sin(theta)
    small = sin < _SMALL_ANGLE
    safe_sin = torch.where(small, torch.ones_like(sin), sin)
    w0 = torch.where(small, 1 - alpha, torch.sin((1 - alpha) * theta) / safe_sin)
    w1 = torch.where(small, alpha, torch.sin(alpha * theta) / safe_sin)
    out = w0 * q0 + w1 * q1
    return out / out.norm(dim=-1, keepdim=True)
