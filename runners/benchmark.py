"""Throughput per environment count: `python runners/benchmark.py --embodiment fullbody --envs 16,64`.

For each count: physics-only control steps per second (captured substeps, random excitations),
environment steps per second (physics plus mmimic's observation, reward, termination and reset
kernels, random actions), training steps per second (rollouts with policy inference plus the PPO
update of the chosen preset) with a time breakdown, and peak memory; plus a single-thread
MuJoCo C row on the same machine as the CPU baseline. Results go to a rich table, optionally
JSON (`--json`) and a PNG plot (`--plot`).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import sys
from datetime import UTC, datetime
from pathlib import Path

import matplotlib
import mujoco
import torch
import warp as wp
from rich.console import Console
from rich.table import Table

import mmimic
from mmimic.bench import (
    env_throughput,
    mujoco_c_throughput,
    peak_memory_bytes,
    simulator_throughput,
    training_throughput,
)
from mmimic.cli import check_output_file, run_main
from mmimic.ppo.ppo import compile_enabled
from mmimic.simulator import resolve_device
from mmimic.train.config import PRESETS, preset_for, resolve_config
from mmimic.train.trainer import limit_cpu_threads

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402  (after the backend is chosen)


def env_counts(text: str) -> list[int]:
    """Parse `--envs 64,256,...`: positive integers only."""
    counts = []
    for item in text.split(","):
        try:
            value = int(item)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{item.strip()!r} is not an integer") from None
        if value <= 0:
            raise argparse.ArgumentTypeError(f"{value} is not a positive environment count")
        counts.append(value)
    return counts


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--embodiment", default="fullbody", help="embodiment name or directory (default fullbody)")
    parser.add_argument("--envs", type=env_counts, default=[16], help="comma-separated environment counts (default 16)")
    parser.add_argument("--device", default=None, help="cpu, cuda or cuda:K (default: a GPU if present)")
    parser.add_argument("--steps", type=int, default=20, help="timed control steps per count (default 20)")
    parser.add_argument("--preset", default=None, help="training preset (default: the published one on a GPU, cpu otherwise)")
    parser.add_argument("--iterations", type=int, default=2, help="timed training iterations per count (default 2)")
    parser.add_argument("--compile", choices=("auto", "on", "off"), default="auto",
                        help="ppo.compile for the training part (auto: on for CUDA; each count compiles its own update "
                             "in its untimed first iteration)")
    parser.add_argument("--repeats", type=int, default=3,
                        help="physics and environment timed alternately this many times; the fastest of each kept (default 3)")
    parser.add_argument("--motions", nargs="+", type=Path, default=None, help="motion directories (default motions/<embodiment>)")
    parser.add_argument("--json", type=Path, default=None, help="write the results as JSON")
    parser.add_argument("--plot", type=Path, default=None, help="write a PNG of steps/s and memory against count")
    parser.add_argument("--debug", action="store_true", help="show the full traceback of an error")
    args = parser.parse_args(argv)
    if args.steps <= 0 or args.iterations <= 0 or args.repeats <= 0:
        parser.error(f"--steps, --iterations and --repeats must be positive, got {args.steps}, {args.iterations} and {args.repeats}")
    if args.preset is not None and args.preset not in PRESETS:
        parser.error(f"--preset {args.preset!r} is not one of {', '.join(PRESETS)}")
    try:
        args.device = resolve_device(args.device)
    except ValueError as exc:
        parser.error(f"--device: {exc}")
    return args


def measure(embodiment: mmimic.Embodiment, count: int, args: argparse.Namespace) -> dict:
    """One row: physics, environment and training throughput and peak memory for `count` worlds, or why it was skipped."""
    device = args.device
    limit_cpu_threads(torch.device(device))
    preset = args.preset or preset_for(embodiment.name, device.startswith("cuda"))
    config = resolve_config(embodiment.name, preset, overrides=[f"run.num_envs={count}", f"ppo.compile={args.compile}"])
    batch = count * config.run.num_steps
    config.ppo.num_minibatches = math.gcd(config.ppo.num_minibatches, batch)
    if device.startswith("cuda"):
        torch.cuda.reset_peak_memory_stats()
    try:
        motions = mmimic.MotionLibrary(embodiment, args.motions or config.motions, device)
        env = mmimic.ImitationEnv(embodiment, motions, count, device)
        # Alternate the two so that a slow spell of a shared machine does not skew their ratio.
        rounds = [(simulator_throughput(env.sim, args.steps), env_throughput(env, args.steps)) for _ in range(args.repeats)]
        physics = max((p for p, _ in rounds), key=lambda t: t.steps_per_second)
        environment = max((e for _, e in rounds), key=lambda t: t.steps_per_second)
        training = training_throughput(env, config, args.iterations, physics.seconds_per_step)
    except (MemoryError, RuntimeError) as exc:
        if not isinstance(exc, MemoryError) and not any(w in str(exc).lower() for w in ("memory", "alloc")):
            raise
        return {"num_envs": count, "skipped": f"does not fit in {device} memory: {exc}"}
    finally:
        if device.startswith("cuda"):
            torch.cuda.empty_cache()
    return {
        "num_envs": count,
        "preset": preset,
        "ppo_compiled": compile_enabled(config.ppo.compile, torch.device(device)),
        "physics_steps_per_s": physics.steps_per_second,
        "physics_ms_per_step": physics.seconds_per_step * 1e3,
        "env_steps_per_s": environment.steps_per_second,
        "env_ms_per_step": environment.seconds_per_step * 1e3,
        "env_over_physics": environment.steps_per_second / physics.steps_per_second,
        "env_resets_per_step": environment.resets_per_step,
        "train_steps_per_s": training.steps_per_second,
        "train_over_physics": training.steps_per_second / physics.steps_per_second,
        "breakdown_ms_per_iteration": {
            part: getattr(training, part) * 1e3 for part in ("physics", "kernels", "policy", "update", "other")
        },
        "peak_memory_mb": peak_memory_bytes(device) / 2**20,
    }


def environment_info(device: str, argv: list[str]) -> dict:
    return {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "device": device if device == "cpu" else torch.cuda.get_device_name(device),
        "cpu": platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(),
        "versions": {"warp": wp.__version__, "mujoco": mujoco.__version__, "torch": torch.__version__},
        "command": "python runners/benchmark.py " + " ".join(argv),
    }


def plot(rows: list[dict], baseline: dict, path: Path, title: str) -> None:
    measured = [r for r in rows if "skipped" not in r]
    counts = [r["num_envs"] for r in measured]
    fig, (speed, memory) = plt.subplots(1, 2, figsize=(10, 4))
    speed.plot(counts, [r["physics_steps_per_s"] for r in measured], "o-", label="physics (mujoco_warp + mmimic muscles)")
    speed.plot(counts, [r["env_steps_per_s"] for r in measured], "s-", label="environment (+ obs, reward, reset kernels)")
    speed.plot(counts, [r["train_steps_per_s"] for r in measured], "^-", label="training (+ policy, PPO update)")
    speed.axhline(baseline["steps_per_s"], color="gray", linestyle="--", label="MuJoCo C, 1 thread")
    speed.set(xscale="log", yscale="log", xlabel="environments", ylabel="control steps / s", title=title)
    speed.legend()
    memory.plot(counts, [r["peak_memory_mb"] for r in measured], "o-")
    memory.set(xscale="log", xlabel="environments", ylabel="peak memory (MB)", title="memory")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = parse_args(argv)
    console = Console(width=max(Console().width, 150))
    return run_main(lambda: benchmark(args, argv, console), console, debug=args.debug,
                    memory_hint="fewer environments (--envs)")


def benchmark(args: argparse.Namespace, argv: list[str], console: Console) -> int:
    for path, flag in ((args.json, "--json"), (args.plot, "--plot")):
        if path is not None:
            check_output_file(path, flag)
    try:
        embodiment = mmimic.load_embodiment(args.embodiment)
    except mmimic.EmbodimentError as exc:
        console.print(f"[red]--embodiment: {exc}[/red]")
        return 2
    console.print(f"benchmarking {embodiment.name} ({embodiment.num_muscles} muscles) on {args.device}; "
                  "the first run compiles Warp kernels (about 40 s), later runs use the cache")
    rows = []
    with console.status("measuring") as status:
        for count in args.envs:
            status.update(f"{count} environments")
            rows.append(measure(embodiment, count, args))
        status.update("MuJoCo C baseline")
        c = mujoco_c_throughput(embodiment, max(args.steps * 5, 100))
    baseline = {"steps_per_s": c.steps_per_second, "ms_per_step": c.seconds_per_step * 1e3}

    table = Table(title=f"{embodiment.name} on {args.device}: control steps (5 substeps) per second; "
                        "ms per training iteration by part")
    columns = ("envs", "physics", "env", "env/phys", "resets/step", "train", "train/phys", "phys ms", "kern ms", "policy ms",
               "update ms", "other ms", "peak MB")
    for column in columns:
        table.add_column(column, justify="right")
    for r in rows:
        if "skipped" in r:
            table.add_row(str(r["num_envs"]), "[yellow]skipped[/yellow]", r["skipped"])
            continue
        parts = [f"{v:.0f}" for v in r["breakdown_ms_per_iteration"].values()]
        table.add_row(str(r["num_envs"]), f"{r['physics_steps_per_s']:.0f}", f"{r['env_steps_per_s']:.0f}",
                      f"{r['env_over_physics']:.2f}", f"{r['env_resets_per_step']:.2f}",
                      f"{r['train_steps_per_s']:.0f}", f"{r['train_over_physics']:.2f}",
                      *parts, f"{r['peak_memory_mb']:.0f}")
    table.add_row("MuJoCo C", f"{baseline['steps_per_s']:.0f}", *[""] * (len(columns) - 2))
    console.print(table)

    result = {"embodiment": embodiment.name, "num_muscles": embodiment.num_muscles, **environment_info(args.device, argv),
              "rows": rows, "mujoco_c_single_thread": baseline}
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        tmp = args.json.with_suffix(args.json.suffix + ".tmp")
        tmp.write_text(json.dumps(result, indent=2))
        tmp.replace(args.json)
        console.print(f"wrote {args.json}")
    if args.plot:
        plot(rows, baseline, args.plot, f"{embodiment.name} on {args.device}")
        console.print(f"wrote {args.plot}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
