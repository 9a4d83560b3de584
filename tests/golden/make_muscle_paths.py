"""Golden muscle paths: every muscle's length and moment (dL/dqvel, the nonzeros) at 12
coupling-consistent poses of each shipped body under the pinned MuJoCo, so that no engine or
model change can silently reroute a muscle (tests/test_muscle_paths.py).

    python tests/golden/make_muscle_paths.py

writes `tests/golden/muscle_paths_<body>.npz` for `fullbody` (fingers removed, as shipped),
`fullbody_416` (fingers kept) and `bimanual`. Pose 0 is the initial pose; poses 1-11 draw every
independent joint uniformly within its coupling bounds (`Coupling.lower/upper`, unlimited joints
within +-pi; free root as in the initial pose) and complete the driven joints (`Coupling.complete`).
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import mujoco
import numpy as np

from mmimic.anatomy import muscle_paths
from mmimic.embodiment import Embodiment, load_embodiment

OUT = Path(__file__).resolve().parent
POSES = 12
BODIES = {"fullbody": {}, "fullbody_416": {"remove_fingers": False}, "bimanual": {}}


def load(body: str) -> Embodiment:
    """The embodiment a golden file was made from."""
    return load_embodiment(body.split("_")[0], **BODIES[body])


def golden_poses(embodiment: Embodiment, count: int = POSES, seed: int = 0) -> np.ndarray:
    """(count, nq) coupling-consistent poses: the initial pose, then random independent joints."""
    coupling = embodiment.coupling
    rng = np.random.default_rng(seed)
    qpos = np.tile(embodiment.initial_qpos(), (count, 1))
    low, high = np.maximum(coupling.lower, -np.pi), np.minimum(coupling.upper, np.pi)
    qpos[1:, coupling.joint_qpos] = rng.uniform(low, high, (count - 1, low.size))
    return coupling.complete(qpos)


def main() -> None:
    for body in BODIES:
        embodiment = load(body)
        qpos = golden_poses(embodiment)
        lengths, moments = muscle_paths(embodiment.mj_model, qpos)
        rows, cols = np.nonzero(np.any(moments != 0.0, axis=0))  # the joints each muscle spans
        path = OUT / f"muscle_paths_{body}.npz"
        fd, tmp = tempfile.mkstemp(dir=OUT, suffix=".npz")
        with os.fdopen(fd, "wb") as f:
            np.savez_compressed(
                f,
                qpos=qpos,
                muscles=np.array(embodiment.muscle_names),
                length=lengths.astype(np.float32),
                moment_muscle=rows.astype(np.int16),
                moment_dof=cols.astype(np.int16),
                moment=moments[:, rows, cols].astype(np.float32),
                mujoco=np.array(mujoco.__version__),
            )
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
        print(f"wrote {path} ({path.stat().st_size / 1024:.0f} KiB, {len(rows)} moments per pose)")


if __name__ == "__main__":
    main()
