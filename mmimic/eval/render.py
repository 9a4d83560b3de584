"""Offscreen rendering with MuJoCo's renderer: the simulated body beside a translucent reference ghost.

The body is drawn from one ``MjData`` (muscles coloured by activation when asked, MuJoCo's
``mjVIS_ACTIVATION``); the ghost is a second ``MjData`` at the reference pose whose body geoms
are added to the same scene (``mjv_addGeoms``) with a translucent colour and an optional
offset. Headless use needs an offscreen OpenGL: set ``MUJOCO_GL=egl`` (or ``osmesa``) before
``mujoco`` is first imported; the runners do.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable
from pathlib import Path

import mujoco
import numpy as np

from mmimic.embodiment import Embodiment

__all__ = ["GHOST_RGBA", "GhostRenderer", "write_video"]

GHOST_RGBA = (0.35, 0.65, 1.0, 0.35)


class GhostRenderer:
    """Frames (H, W, 3) uint8 of ``embodiment`` at a state, with the reference pose as a ghost.

    The camera tracks the root body of a free-floating body and looks at the model's centre
    otherwise. ``multisamples`` is the anti-aliasing sample count (0 renders about 3x faster with
    software OpenGL).
    """

    def __init__(
        self,
        embodiment: Embodiment,
        width: int = 640,
        height: int = 480,
        *,
        color_activation: bool = True,
        multisamples: int = 4,
        ghost_rgba: tuple[float, float, float, float] = GHOST_RGBA,
        ghost_offset: tuple[float, float, float] = (0.0, 0.0, 0.0),
    ) -> None:
        if width < 16 or height < 16:
            raise ValueError(f"width and height must be at least 16 pixels, got {width} x {height}")
        model = copy.deepcopy(embodiment.mj_model)
        model.vis.global_.offwidth = max(model.vis.global_.offwidth, width)
        model.vis.global_.offheight = max(model.vis.global_.offheight, height)
        model.vis.quality.offsamples = multisamples
        self.model = model
        try:
            self.renderer = mujoco.Renderer(model, height, width)
        except Exception as exc:  # MuJoCo raises its FatalError or a ctypes error without a GL context
            raise RuntimeError(
                f"MuJoCo could not create an offscreen OpenGL context ({exc}); set MUJOCO_GL=egl (or osmesa) "
                "before mujoco is imported"
            ) from exc
        self.data = mujoco.MjData(model)
        self.ghost = mujoco.MjData(model)
        self.option = mujoco.MjvOption()
        self.option.flags[mujoco.mjtVisFlag.mjVIS_ACTIVATION] = color_activation
        self.ghost_option = mujoco.MjvOption()
        self.ghost_option.flags[mujoco.mjtVisFlag.mjVIS_TENDON] = False
        self.ghost_rgba = np.asarray(ghost_rgba, dtype=np.float32)
        self.ghost_offset = np.asarray(ghost_offset, dtype=np.float64)
        self.perturb = mujoco.MjvPerturb()
        self._has_ghost = False
        self.camera = mujoco.MjvCamera()
        if embodiment.has_free_root:
            self.camera.type = mujoco.mjtCamera.mjCAMERA_TRACKING
            self.camera.trackbodyid = embodiment.root_body_id
            self.camera.distance, self.camera.elevation, self.camera.azimuth = 3.2, -12.0, 150.0
        else:
            self.camera.type = mujoco.mjtCamera.mjCAMERA_FREE
            self.camera.lookat[:] = model.stat.center
            self.camera.distance, self.camera.elevation, self.camera.azimuth = 2.0 * model.stat.extent, -15.0, 90.0

    def set_state(self, qpos: np.ndarray, ref_qpos: np.ndarray | None = None, act: np.ndarray | None = None) -> None:
        """Pose the body (and its activations) and the ghost."""
        self.data.qpos[:] = qpos
        if act is not None:
            self.data.act[:] = act
        mujoco.mj_forward(self.model, self.data)
        if ref_qpos is not None:
            self.ghost.qpos[:] = ref_qpos
            mujoco.mj_kinematics(self.model, self.ghost)
        self._has_ghost = ref_qpos is not None

    def add_ghost(self, scene: mujoco.MjvScene) -> None:
        """Append the ghost's body geoms to ``scene``, translucent and offset."""
        if not self._has_ghost:
            return
        first = scene.ngeom
        mujoco.mjv_addGeoms(
            self.model, self.ghost, self.ghost_option, self.perturb, mujoco.mjtCatBit.mjCAT_DYNAMIC, scene
        )
        for i in range(first, scene.ngeom):
            scene.geoms[i].rgba[:] = self.ghost_rgba
            scene.geoms[i].pos[:] += self.ghost_offset

    def render(self, qpos: np.ndarray, ref_qpos: np.ndarray | None = None, act: np.ndarray | None = None) -> np.ndarray:
        """One frame of the body at ``qpos`` (with ``act``) and the ghost at ``ref_qpos``."""
        self.set_state(qpos, ref_qpos, act)
        self.renderer.update_scene(self.data, self.camera, self.option)
        self.add_ghost(self.renderer.scene)
        return self.renderer.render().copy()

    def close(self) -> None:
        self.renderer.close()

    def __enter__(self) -> GhostRenderer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def write_video(path: str | Path, frames: Iterable[np.ndarray], fps: float) -> Path:
    """Encode RGB frames as an H.264 MP4 (imageio-ffmpeg); frame sizes must be even."""
    import imageio.v2 as imageio

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with imageio.get_writer(path, fps=fps, codec="libx264", quality=7, macro_block_size=2) as writer:
        for frame in frames:
            writer.append_data(frame)
    return path
