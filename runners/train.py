"""Train a motion-imitation policy: `python runners/train.py --embodiment fullbody`.

Without a GPU the `cpu` preset runs a short demonstration (few worlds, small networks, a few
minutes); on a GPU the published preset of the embodiment runs (8192 worlds). Every value can
be overridden with `--config FILE.toml` and `--set section.key=value`.

Training uses the "train" split of the motion sets (default motions/<embodiment>; `--motions`
names others, `--category walk,run` keeps some manifest categories). Clips are drawn by their
recent early-termination rate (`sampling.*`, `--set sampling.failure_weighted=false` for the
manifest weights alone); TensorBoard and the console show every category's episode length, early
termination and reward.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from datetime import datetime
from pathlib import Path

from rich.console import Console

REPO = Path(__file__).resolve().parent.parent


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--embodiment", default="fullbody", help="embodiment name or directory (default fullbody)")
    parser.add_argument("--preset", default=None, help="fullbody, fullbody-resnet, bimanual or cpu (default: by device)")
    parser.add_argument("--motions", nargs="+", type=Path, default=None, help="motion directories or clips "
                        "(default motions/<embodiment>)")
    parser.add_argument("--category", default=None, metavar="NAME[,NAME...]", help="train on the clips of these "
                        "manifest categories only, e.g. walk,run (default: every category)")
    parser.add_argument("--num-envs", type=int, default=None, help="parallel worlds")
    parser.add_argument("--device", default=None, help="cpu, cuda or cuda:K (default: a GPU if present)")
    length = parser.add_mutually_exclusive_group()
    length.add_argument("--iterations", type=int, default=None, help="PPO iterations")
    length.add_argument("--timesteps", type=int, default=None, help="environment steps (sets the iterations)")
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("--out", type=Path, default=None, help="run directory (default runs/<embodiment>-<time>)")
    parser.add_argument("--config", type=Path, default=None, help="TOML file of overrides")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="SECTION.KEY=VALUE")
    parser.add_argument("--resume", type=Path, default=None, help="checkpoint or run directory to continue exactly")
    parser.add_argument("--finetune", type=Path, default=None, help="checkpoint whose weights start a new run")
    parser.add_argument("--reset-std", type=float, default=None, help="with --finetune: reset the policy std")
    parser.add_argument("--reward-module", action="append", default=[], type=Path, help="file registering reward kernels")
    parser.add_argument("--reward", action="append", default=[], metavar="NAME=WEIGHT", help="switch a reward term")
    parser.add_argument("--debug", action="store_true", help="show the full traceback of an error")
    args = parser.parse_args(argv)
    for flag in ("num_envs", "iterations", "timesteps"):
        value = getattr(args, flag)
        if value is not None and value <= 0:
            parser.error(f"--{flag.replace('_', '-')} must be positive, got {value}")
    if args.category is not None:
        args.category = [c.strip() for c in args.category.split(",") if c.strip()]
        if not args.category:
            parser.error("--category needs at least one category name, e.g. --category walk,run")
    if args.resume and args.finetune:
        parser.error("--resume and --finetune exclude each other")
    if args.resume and (args.overrides or args.config or args.preset or args.reward or args.reward_module
                        or args.num_envs or args.seed is not None or args.timesteps or args.motions
                        or args.category):
        parser.error("--resume continues a run exactly with its saved configuration; only --iterations may change")
    if args.reset_std is not None and (args.finetune is None or args.reset_std <= 0):
        parser.error("--reset-std needs --finetune and a positive value")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    console = Console()
    # Heavy imports after argument parsing, so --help and argument errors are instant.
    from mmimic.cli import run_main
    from mmimic.train.trainer import TrainingDiverged

    try:
        return run_main(lambda: _train(args, console), console, debug=args.debug,
                        memory_hint="fewer worlds (--num-envs) or smaller networks (--set network.actor_hidden=...)")
    except TrainingDiverged as exc:
        console.print(f"[red]training stopped:[/red] {exc}", highlight=False, soft_wrap=True)
        return 3


def _train(args: argparse.Namespace, console: Console) -> int:
    from mmimic.checkpoint import load_checkpoint
    from mmimic.cli import check_output_dir
    from mmimic.env import apply_reward_args
    from mmimic.simulator import resolve_device
    from mmimic.train.config import TrainConfig, preset_for, resolve_config
    from mmimic.train.trainer import Trainer, check_new_run_dir, check_resume, checkpoint_bytes, load_for_resume

    device = resolve_device(args.device)
    world_size = int(os.environ.get("WORLD_SIZE", "1"))  # under torchrun --timesteps counts every rank
    checkpoint, resume = None, False
    if args.resume:
        checkpoint, run_dir = load_for_resume(args.resume)
        config = TrainConfig.from_dict(checkpoint["config"])
        if args.iterations is not None:
            config.run.iterations, config.run.timesteps = args.iterations, 0
        check_resume(checkpoint, config, run_dir, f"--resume {args.resume}", world_size)
        apply_reward_args(config.reward_modules, [])
        resume = True
    else:
        preset = args.preset or preset_for(args.embodiment, device.startswith("cuda"))
        config = resolve_config(args.embodiment, preset, args.config, _cli_overrides(args))
        config.reward_modules = [str(p.resolve()) for p in args.reward_module]
        weights = apply_reward_args(config.reward_modules, args.reward)
        config.env.reward_weights = {**config.env.reward_weights, **weights}
        if args.finetune:
            checkpoint = load_checkpoint(args.finetune, map_location="cpu")
        run_dir = args.out or REPO / "runs" / f"{Path(args.embodiment).name}-{datetime.now():%Y%m%d-%H%M%S}"
        check_new_run_dir(run_dir, "--out")
        if args.motions:
            config.motions = [str(p.resolve()) for p in args.motions]
    flag = "--resume" if resume else "--out"
    check_output_dir(run_dir, flag)
    if config.preset == "cpu" and not resume:
        console.print(f"[yellow]No GPU preset in use: the 'cpu' preset runs {config.run.num_envs} worlds for "
                      f"{config.run.num_iterations(world_size)} iterations with {config.network.actor_hidden} "
                      "networks, a demonstration of minutes. On a GPU, --preset fullbody (or bimanual) runs the "
                      "published 8192-world recipe; --num-envs / --iterations / --set scale any value.[/yellow]")
    trainer = Trainer(config, run_dir, device, console=console, init_checkpoint=checkpoint, resume=resume,
                      reset_std=args.reset_std)
    if trainer.is_main:  # under torchrun rank 0 alone writes the run directory
        check_output_dir(run_dir, flag, free_bytes=2 * checkpoint_bytes(trainer))  # the new file beside the old
        run_dir.mkdir(parents=True, exist_ok=True)
        config.to_toml(run_dir / "config.toml")
        ranks = f" per rank, {trainer.world_size} ranks" if trainer.world_size > 1 else ""
        console.print(f"run directory {run_dir} ({config.embodiment}, preset {config.preset}, {config.run.num_envs} "
                      f"worlds{ranks} on {device}); TensorBoard: tensorboard --logdir {run_dir}")
    saved = trainer.train()
    if trainer.is_main:
        console.print(f"\ndone at iteration {trainer.iteration}; last checkpoint {saved}")
    if trainer.world_size > 1:
        import torch.distributed as dist

        dist.destroy_process_group()
    return 0


def _cli_overrides(args: argparse.Namespace) -> list[str]:
    overrides = list(args.overrides)
    if args.num_envs is not None:
        overrides.append(f"run.num_envs={args.num_envs}")
    if args.seed is not None:
        overrides.append(f"run.seed={args.seed}")
    if args.iterations is not None:
        overrides.append(f"run.iterations={args.iterations}")
    if args.timesteps is not None:
        overrides.append(f"run.timesteps={args.timesteps}")
    if args.category:
        overrides.append(f"categories={json.dumps(args.category)}")  # a JSON list of strings is TOML
    return overrides


if __name__ == "__main__":
    sys.exit(main())
