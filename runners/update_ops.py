"""Operators one PPO minibatch update dispatches: `python runners/update_ops.py --embodiment fullbody --preset fullbody`.

Builds the preset's actor-critic at the embodiment's observation and action sizes and counts, with
torch.profiler on the CPU, the aten operators of one minibatch step (forward, backward, gradient
clipping, optimiser) and of the optimiser step alone; each is one or a few kernel launches on a GPU.
The count depends on the layer shapes only, not on the batch or the machine.
"""

from __future__ import annotations

import sys
from pathlib import Path

# runners/ holds profile.py, which would shadow the standard library's `profile` (imported by
# torch and warp through cProfile): keep this directory off the import path.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]

import argparse  # noqa: E402

from rich.console import Console  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--embodiment", default="fullbody", help="embodiment name or directory (default fullbody)")
    parser.add_argument("--preset", default="fullbody", help="training preset whose networks are counted (default fullbody)")
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)
    console = Console()
    import mmimic
    from mmimic.bench import minibatch_update_ops
    from mmimic.train.config import ConfigError, resolve_config

    try:
        config = resolve_config(args.embodiment, args.preset)
        embodiment = mmimic.load_embodiment(args.embodiment)
    except (ConfigError, mmimic.EmbodimentError) as exc:
        console.print(f"[red]error:[/red] {exc}")
        return 2
    with console.status("observation size (one CPU world) and the counted update"):
        env = mmimic.ImitationEnv(embodiment, config.motions, 1, "cpu")
        counts = minibatch_update_ops(env.num_obs, env.num_actions, config.network, config.ppo)
    net = config.network
    console.print(f"{embodiment.name}, preset {config.preset} (actor {net.actor_hidden}, critic {net.critic_hidden}, "
                  f"residual {net.residual}; {env.num_obs} observations, {env.num_actions} actions): "
                  f"{counts['minibatch']} ops per minibatch update, {counts['optimizer']} of them in the optimiser step")
    return 0


if __name__ == "__main__":
    sys.exit(main())
