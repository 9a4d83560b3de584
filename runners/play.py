"""Watch a policy imitate a clip: `python runners/play.py --checkpoint CKPT --motion CLIP [--video out.mp4]`.

The body starts at the clip's first frame and follows the checkpoint's deterministic policy until
the clip ends or the episode terminates (validation thresholds; `--no-termination` plays on). A
translucent ghost shows the reference pose; muscles are coloured by activation. With `--video`
the frames are rendered offscreen (EGL; no display needed) into an MP4; without it, MuJoCo's
interactive viewer opens when a display is available.
"""

from __future__ import annotations

import argparse
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path

from rich.console import Console

# Offscreen OpenGL unless the user chose one; mujoco reads this when it is first imported.
os.environ.setdefault("MUJOCO_GL", "egl")


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--checkpoint", type=Path, required=True, help="checkpoint .pt file")
    parser.add_argument("--motion", type=Path, required=True, help="motion clip .npz")
    parser.add_argument("--video", type=Path, default=None, help="write an MP4 here instead of opening the viewer")
    parser.add_argument("--steps", type=int, default=None, help="at most this many control steps (default: the clip)")
    parser.add_argument("--width", type=int, default=640, help="video width in pixels (even)")
    parser.add_argument("--height", type=int, default=480, help="video height in pixels (even)")
    parser.add_argument("--fps", type=float, default=50.0, help="video frame rate (control steps are subsampled)")
    parser.add_argument("--msaa", type=int, default=4, help="anti-aliasing samples (0 is faster without a GPU)")
    parser.add_argument(
        "--ghost-offset",
        type=float,
        nargs=3,
        default=(0.0, 0.0, 0.0),
        metavar=("X", "Y", "Z"),
        help="shift of the reference ghost in m (default: overlaid)",
    )
    parser.add_argument("--no-activation-colors", action="store_true", help="keep the model's muscle colours")
    parser.add_argument("--no-termination", action="store_true", help="play the whole clip whatever the deviation")
    parser.add_argument("--device", default="cpu", help="cpu (default), cuda or cuda:K")
    parser.add_argument("--debug", action="store_true", help="show the full traceback of an error")
    args = parser.parse_args(argv)
    if args.steps is not None and args.steps < 1:
        parser.error(f"--steps must be positive, got {args.steps}")
    if args.width % 2 or args.height % 2 or args.width < 16 or args.height < 16:
        parser.error(f"--width and --height must be even and at least 16, got {args.width} x {args.height}")
    if not args.fps > 0:
        parser.error(f"--fps must be positive, got {args.fps}")
    if args.msaa < 0:
        parser.error(f"--msaa must be >= 0, got {args.msaa}")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    console = Console()
    if args.video is None and not os.environ.get("DISPLAY") and not os.environ.get("WAYLAND_DISPLAY"):
        console.print(
            "[red]error:[/red] no display for the interactive viewer; pass --video out.mp4 to render offscreen"
        )
        return 2
    from mmimic.cli import run_main

    return run_main(lambda: _run(args, console), console, debug=args.debug)


def _run(args: argparse.Namespace, console: Console) -> int:
    from mmimic.cli import check_output_file
    from mmimic.eval.rollout import TerminationThresholds, prepare

    if args.video is not None:
        check_output_file(args.video, "--video")
    setup = prepare(
        args.checkpoint,
        [args.motion],
        num_envs=1,
        device=args.device,
        thresholds=TerminationThresholds(no_termination=args.no_termination),
    )
    frames = _play(setup, args.steps)
    console.print(f"{args.motion.name}: {frames.steps} control steps, {frames.ending}")
    if args.video is None:
        _view(setup, frames)
        return 0
    from mmimic.eval.render import GhostRenderer, write_video

    stride = max(1, round(setup.library.fps / args.fps))
    try:
        renderer = GhostRenderer(
            setup.embodiment,
            args.width,
            args.height,
            color_activation=not args.no_activation_colors,
            multisamples=args.msaa,
            ghost_offset=tuple(args.ghost_offset),
        )
    except RuntimeError as exc:
        console.print(f"[red]error:[/red] {exc}")
        return 2
    with renderer:
        images = (
            renderer.render(q, r, a)
            for q, r, a in zip(frames.qpos[::stride], frames.ref_qpos[::stride], frames.act[::stride])
        )
        path = write_video(args.video, images, setup.library.fps / stride)
    console.print(f"wrote {path} ({len(frames.qpos[::stride])} frames at {setup.library.fps / stride:g} fps)")
    return 0


@dataclass
class _Frames:
    """States of the body, its activations and the reference, one per instant (start state first)."""

    qpos: list = field(default_factory=list)
    ref_qpos: list = field(default_factory=list)
    act: list = field(default_factory=list)
    steps: int = 0
    ending: str = ""


def _play(setup, max_steps: int | None) -> _Frames:
    import torch

    env, library = setup.env, setup.library
    length = int(library.clip_length[0])
    steps = length - 1 if max_steps is None else min(max_steps, length - 1)
    frames = _Frames()

    def record() -> None:
        frames.qpos.append(env.sim.qpos[0].cpu().numpy().copy())
        frames.ref_qpos.append(env.ref_qpos[0].cpu().numpy().copy())  # the environment's re-centred reference
        frames.act.append(env.sim.act[0].cpu().numpy().copy())

    obs = env.start_at(torch.zeros(1, dtype=torch.int64))
    record()
    for k in range(1, steps + 1):
        obs, _, done, info = env.step(setup.policy(obs))
        frames.steps = k
        if bool(done[0]):  # the world was reset: its last state is gone
            frames.ending = "terminated (deviation from the reference)" if bool(info["terminated"][0]) else "clip ended"
            break
        record()
    else:
        frames.ending = f"stopped at --steps {steps}"
    return frames


def _view(setup, frames: _Frames) -> None:
    """Replay the recorded frames in MuJoCo's viewer, looping until it is closed."""
    import time

    import mujoco
    import mujoco.viewer

    from mmimic.eval.render import GHOST_RGBA

    model = setup.embodiment.mj_model
    data, ghost = mujoco.MjData(model), mujoco.MjData(model)
    option, perturb = mujoco.MjvOption(), mujoco.MjvPerturb()
    option.flags[mujoco.mjtVisFlag.mjVIS_TENDON] = False
    dt = 1.0 / setup.library.fps
    with mujoco.viewer.launch_passive(model, data) as viewer:
        viewer.opt.flags[mujoco.mjtVisFlag.mjVIS_ACTIVATION] = True
        while viewer.is_running():
            for qpos, ref, act in zip(frames.qpos, frames.ref_qpos, frames.act):
                if not viewer.is_running():
                    break
                data.qpos[:], data.act[:], ghost.qpos[:] = qpos, act, ref
                mujoco.mj_forward(model, data)
                mujoco.mj_kinematics(model, ghost)
                with viewer.lock():
                    viewer.user_scn.ngeom = 0
                    mujoco.mjv_addGeoms(model, ghost, option, perturb, mujoco.mjtCatBit.mjCAT_DYNAMIC, viewer.user_scn)
                    for i in range(viewer.user_scn.ngeom):
                        viewer.user_scn.geoms[i].rgba[:] = GHOST_RGBA
                viewer.sync()
                time.sleep(dt)


if __name__ == "__main__":
    sys.exit(main())
