"""Evaluate a checkpoint on every clip: `python runners/eval.py --checkpoint CKPT --motions DIR`.

Every clip runs once from its first frame to its end (batched, deterministic policy, the published
validation termination unless overridden) and the published tracking metrics are printed per clip,
per motion category, per split (train / test, from the manifests) and overall; `--category walk,run`
keeps some categories. `--json` writes them, `--export` writes the per-step trajectories (.npz), and
`--report DIR` writes PNG plots and a report.md. Walking clips of a body with feet are also
compared over the gait cycle with experimental data (`--experiment`, by default the shipped
OpenSim walking trial): joint angles, ground reaction forces and activation against EMG.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

from rich.console import Console
from rich.table import Table

REPO = Path(__file__).resolve().parent.parent
DEFAULT_EXPERIMENT = REPO / "motions" / "sources" / "opensim_moco_walk"


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--checkpoint", type=Path, required=True, help="checkpoint .pt file")
    parser.add_argument(
        "--motions",
        type=Path,
        nargs="+",
        default=[],
        help="motion directories or clips (default: the run's training motions)",
    )
    parser.add_argument("--category", default=None, metavar="NAME[,NAME...]",
                        help="evaluate the clips of these manifest categories only (default: every clip)")
    parser.add_argument("--num-envs", type=int, default=64, help="clips run in parallel (default 64)")
    parser.add_argument("--device", default=None, help="cpu, cuda or cuda:K (default: a GPU if present)")
    parser.add_argument("--embodiment", default=None, help="body name or directory (default: the checkpoint's)")
    parser.add_argument("--json", type=Path, default=None, help="write the metrics (and gait comparison) here")
    parser.add_argument("--report", type=Path, default=None, help="write PNG plots and report.md into this directory")
    parser.add_argument("--export", type=Path, default=None, help="write per-step trajectories to this .npz")
    term = parser.add_argument_group("termination (default: the published validation thresholds)")
    term.add_argument("--site-deviation", type=float, default=None, help="mean site deviation threshold (m)")
    term.add_argument("--root-deviation", type=float, default=None, help="root position threshold (m)")
    term.add_argument("--root-angle", type=float, default=None, help="root orientation threshold (rad)")
    term.add_argument("--no-termination", action="store_true", help="run every clip to its end")
    gait = parser.add_argument_group("gait comparison with experimental data (bodies with feet)")
    gait.add_argument(
        "--experiment",
        type=Path,
        default=None,
        help=f"OpenSim trial or Gait120-style directory, or a C3D file with force plates (default {DEFAULT_EXPERIMENT.relative_to(REPO)})",
    )
    gait.add_argument(
        "--body-mass",
        type=float,
        default=None,
        help="the experimental subject's mass in kg (default: estimated from the force plates)",
    )
    gait.add_argument("--markers", type=Path, default=None,
                      help="a C3D experiment's marker set (.toml marker map or OpenSim .osim) naming its foot and "
                           "pelvis markers (default models/markers/vicon_lower_body.toml)")
    gait.add_argument("--up", choices=("y", "z"), default=None,
                      help="a C3D experiment's vertical axis (default: its POINT:Y_SCREEN)")
    gait.add_argument("--side", choices=("r", "l"), default="r", help="foot whose strides define the cycle")
    gait.add_argument("--no-gait", action="store_true", help="skip the gait comparison")
    parser.add_argument("--debug", action="store_true", help="show the full traceback of an error")
    args = parser.parse_args(argv)
    if args.num_envs < 1:
        parser.error(f"--num-envs must be positive, got {args.num_envs}")
    if args.category is not None:
        args.category = [c.strip() for c in args.category.split(",") if c.strip()]
        if not args.category:
            parser.error("--category needs at least one category name, e.g. --category walk,run")
    for flag in ("site_deviation", "root_deviation", "root_angle", "body_mass"):
        value = getattr(args, flag)
        if value is not None and not value > 0:
            parser.error(f"--{flag.replace('_', '-')} must be positive, got {value}")
    if args.no_termination and any(
        getattr(args, f) is not None for f in ("site_deviation", "root_deviation", "root_angle")
    ):
        parser.error("--no-termination excludes the threshold options")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    console = Console()
    if not console.is_terminal:  # logs and pipes: room for the metrics table
        console = Console(width=150)
    from mmimic.cli import run_main

    return run_main(lambda: _evaluate(args, console), console, debug=args.debug,
                    memory_hint="evaluate fewer clips at a time (--num-envs)")


def _evaluate(args: argparse.Namespace, console: Console) -> int:
    from mmimic.cli import check_output_dir, check_output_file
    from mmimic.eval.human_data import load_experiment
    from mmimic.eval.rollout import TerminationThresholds, evaluate, export_npz, prepare

    for path, flag in ((args.json, "--json"), (args.export, "--export")):
        if path is not None:
            check_output_file(path, flag)
    if args.report is not None:
        check_output_dir(args.report, "--report")
    thresholds = TerminationThresholds(args.site_deviation, args.root_deviation, args.root_angle, args.no_termination)
    setup = prepare(
        args.checkpoint,
        args.motions,
        num_envs=args.num_envs,
        device=args.device,
        thresholds=thresholds,
        embodiment=args.embodiment, categories=args.category,
    )
    experiments, gait_reason = _experiments(args, setup.embodiment, load_experiment)
    console.print(
        f"{setup.library.num_clips} clip(s) of {setup.embodiment.name}, {setup.env.num_envs} at a time on "
        f"{setup.env.device}; termination: {_termination(setup.env.config)}"
    )
    result = evaluate(setup, record_muscles=bool(args.export or experiments))
    _print_table(console, result.metrics)
    if result.nan_actions:
        console.print(f"[yellow]warning:[/yellow] the policy output NaN or inf actions in {result.nan_actions} control "
                      "step(s); each ended its clip's episode (counted as terminated)", highlight=False)

    gait, skipped = {}, {}
    if experiments:
        gait, skipped = _gait(result, experiments, args.side)
    elif gait_reason:
        console.print(f"gait comparison skipped: {gait_reason}")
    for clip, reason in skipped.items():
        console.print(f"[yellow]gait:[/yellow] {clip}: not compared ({reason})")
    for clip, comparison in gait.items():
        s = comparison.summary()
        console.print(
            f"gait {clip}: mean r joint angles {_r(s['angles_rad']['mean_r'])}, GRF "
            f"{_r(s['grf_body_weight']['mean_r'])}, activation vs EMG {_r(s['activation_vs_emg']['mean_r'])}"
        )

    context = {
        "checkpoint": str(args.checkpoint),
        "embodiment": setup.embodiment.name,
        "motions": ", ".join(str(m) for m in args.motions) or "the run's training motions",
        "termination": _termination(setup.env.config),
    }
    if args.category:
        context["categories"] = ", ".join(args.category)
    if experiments:
        context["experiment"] = (
            f"{args.experiment or DEFAULT_EXPERIMENT} ({len(experiments)} trial(s), body mass "
            f"{', '.join(f'{e.body_mass:.1f}' for e in experiments if e.body_mass)} kg)"
        )
    notes = [n for e in experiments for n in e.notes]
    if args.json:
        payload = {
            **context,
            "metrics": result.metrics.as_dict(),
            "nan_actions": result.nan_actions,
            "gait": {clip: c.summary() for clip, c in gait.items()},
            "gait_skipped": skipped,
            "experiment_notes": notes,
        }
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(payload, indent=2, allow_nan=False))
        console.print(f"wrote {args.json}")
    if args.export:
        console.print(f"wrote {export_npz(args.export, result)}")
    if args.report:
        from mmimic.anatomy import LEG_MUSCLES, compare_with_opensim
        from mmimic.eval.report import write_report

        has_legs = set(LEG_MUSCLES) <= set(setup.embodiment.muscle_names)
        path = write_report(
            args.report,
            result.metrics,
            title=f"Evaluation of {args.checkpoint.name}",
            context=context,
            gait=gait,
            gait_skipped=skipped,
            notes=notes,
            anatomy=compare_with_opensim(setup.embodiment) if has_legs else None,
        )
        console.print(f"wrote {path}")
    return 0


def _experiments(args: argparse.Namespace, body, load_experiment) -> tuple[list, str]:
    """The experimental trials to compare with, or none and why."""
    from mmimic.eval.model_gait import FOOT_BODIES

    if args.no_gait:
        return [], "--no-gait"
    names = set(body.mj_model.body(i).name for i in range(body.mj_model.nbody))
    if not all(b in names for feet in FOOT_BODIES.values() for b in feet):
        if args.experiment:
            raise ValueError(
                f"--experiment: embodiment {body.name!r} has no feet ({', '.join(FOOT_BODIES['r'])}, ...) "
                "for a gait comparison"
            )
        return [], f"embodiment {body.name!r} has no feet"
    return load_experiment(args.experiment or DEFAULT_EXPERIMENT, args.body_mass, args.markers, args.up), ""


def _gait(result, experiments: list, side: str) -> tuple[dict, dict[str, str]]:
    from mmimic.eval.comparison import compare_gait
    from mmimic.eval.gait import GaitDataError
    from mmimic.eval.model_gait import simulated_gait

    t = result.trajectories
    gait, skipped = {}, {}
    for i, clip in enumerate(t.clip_names):
        states = t.clip(i)
        try:
            sim = simulated_gait(
                result.embodiment, states["qpos"], states["qvel"], states["act"], t.fps, clip, ctrl=states["ctrl"]
            )
            gait[clip] = compare_gait(sim, experiments, side)
        except GaitDataError as exc:
            skipped[clip] = str(exc)
    return gait, skipped


def _termination(config) -> str:
    def show(v: float, unit: str) -> str:
        return "off" if math.isinf(v) else f"{v:g} {unit}"

    sites = "world" if config.site_deviation_world else "relative"
    return (
        f"mean {sites} site deviation {show(config.site_deviation, 'm')}, root {show(config.root_deviation, 'm')}, "
        f"root angle {show(config.root_angle, 'rad')}"
    )


def _r(value: float | None) -> str:
    return "–" if value is None else f"{value:.2f}"


def _print_table(console: Console, metrics) -> None:
    from mmimic.eval.report import SHORT_LABELS

    table = Table(title="tracking, every clip from its first frame")
    for column in ("clip", "steps", "term.", "cover", "return", *SHORT_LABELS.values()):
        table.add_column(column, justify="left" if column == "clip" else "right")

    def row(name: str, m: dict, overall: bool) -> list[str]:
        term = f"{m['early_termination_rate']:.0%}" if overall else ("yes" if m["terminated"] else "no")
        coverage = m["frame_coverage"] if overall else m["coverage"]
        steps = m["mean_length"] if overall else m["length"]
        ret = m["mean_return"] if overall else m["return"]
        errors = ["–" if not math.isfinite(m[k]) else f"{m[k]:.3g}" for k in SHORT_LABELS]
        return [name, f"{steps:.0f}", term, f"{coverage:.1%}", f"{ret:.1f}", *errors]

    for name, m in metrics.per_clip.items():
        table.add_row(*row(name, m, False))
    for kind, groups in (("category", metrics.per_category), ("split", metrics.per_split)):
        table.add_section()
        for name, m in groups.items():
            table.add_row(*row(f"{kind} {name} ({m['episodes']:.0f})", m, True))
    table.add_section()
    table.add_row(*row("overall", metrics.overall, True), style="bold")
    console.print(table)


if __name__ == "__main__":
    sys.exit(main())
