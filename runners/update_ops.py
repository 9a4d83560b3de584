"""Operators one PPO minibatch update dispatches: `python runners/update_ops.py --embodiment fullbody --preset fullbody [--compile]`.

Builds the preset's actor-critic at the embodiment's observation and action sizes and counts, with
torch.profiler on the CPU, the aten operators of one minibatch step (forward, backward, gradient
clipping, optimiser) and of the optimiser step alone; each is one or a few kernel launches on a GPU.
With --compile it also counts the step compiled by torch.compile (`ppo.compile=on`): the aten
operators left (matrix products) plus the kernels inductor generated, after minutes of compilation.
The count depends on the layer shapes only, not on the batch or the machine.
"""

from __future__ import annotations

import argparse
import sys

from rich.console import Console


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--embodiment", default="fullbody", help="embodiment name or directory (default fullbody)")
    parser.add_argument("--preset", default="fullbody", help="training preset whose networks are counted (default fullbody)")
    parser.add_argument("--compile", action="store_true", help="also count the compiled step (minutes of compilation)")
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
    if args.compile:
        with console.status("compiling the minibatch step with torch.compile (minutes on the CPU)"):
            compiled = minibatch_update_ops(env.num_obs, env.num_actions, config.network, config.ppo, compiled=True)
        console.print(f"compiled: {compiled['minibatch']} ops per minibatch update "
                      f"({compiled['generated']} generated kernels, {compiled['minibatch'] - compiled['generated']} aten "
                      f"operators), {counts['minibatch'] / compiled['minibatch']:.1f}x fewer than eager")
    return 0


if __name__ == "__main__":
    sys.exit(main())
