"""Retarget human motion capture onto a muscle body: clips in the motion format plus report.json.

    python runners/retarget.py walk.npz run.npz --embodiment fullbody --out motions/mine
    python runners/retarget.py clip.bvh --embodiment bimanual --out arms/ --name-map skeleton.toml --scale 0.01
    python runners/retarget.py amass/*.npz --embodiment fullbody --out out/ --smpl-model ~/smpl_models

Sources by type or --format: AMASS .npz (SMPL-H/SMPL-X; --smpl-model DIR for the user's own body
model files, else a template skeleton), BVH (CMU and Daz names built in, else --name-map; --fps
overrides a wrong frame time), OpenSim coordinates (.mot/.sto), AMP humanoid .npz, marker trials
(.trc/.c3d with --markers MODEL.osim|MAP.toml, [--static], [--ik-tasks]; docs/retargeting.md). Bimanual clips are the arm joints of the full-body
retarget. Every source is read and checked before anything is written; clips failing a
quality threshold are reported and kept out of --out unless --keep-failing. Exit status: 0 when
every clip passed (or --keep-failing), 1 otherwise.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path

from rich.console import Console


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    from mmimic.cli import add_opensim_options

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("sources", nargs="+", type=Path, help="motion files (AMASS/AMP .npz, .bvh, .mot/.sto)")
    parser.add_argument("--embodiment", choices=("fullbody", "bimanual"), required=True, help="the body of the clips")
    parser.add_argument("--out", type=Path, required=True, help="directory for the clips and report.json")
    parser.add_argument("--format", choices=("amass", "bvh", "opensim", "amp"), default=None,
                        help="source format (default: by file type)")
    parser.add_argument("--smpl-model", type=Path, default=None, help="directory of your SMPL-H/SMPL-X model files")
    parser.add_argument("--name-map", type=Path, default=None, help="BVH joint-name map (TOML)")
    parser.add_argument("--scale", type=float, default=None, help="BVH metres per file unit (CMU: 0.056444)")
    parser.add_argument("--fps", type=float, default=None, help="BVH frame rate, overriding the files' frame time")
    add_opensim_options(parser)
    lab = parser.add_argument_group("marker trials (.trc, .c3d)")
    lab.add_argument("--markers", type=Path, default=None,
                     help="marker set: an OpenSim model with a <MarkerSet> (.osim) or a marker map (.toml)")
    lab.add_argument("--static", type=Path, default=None, help="static trial to register the markers on (default: the first frames)")
    lab.add_argument("--ik-tasks", type=Path, default=None, help="OpenSim IK task set XML: the marker weights")
    lab.add_argument("--up", choices=("y", "z"), default=None,
                     help="the marker files' vertical axis (default: C3D POINT:Y_SCREEN; TRC y, as OpenSim writes)")
    parser.add_argument("--keep-failing", action="store_true", help="write clips that fail a quality threshold too")
    parser.add_argument("--license", default="", help="license text stored in every clip")
    parser.add_argument("--debug", action="store_true", help="show the full traceback of an error")
    args = parser.parse_args(argv)
    if args.scale is not None and not args.scale > 0:
        parser.error(f"--scale must be positive, got {args.scale}")
    if args.fps is not None and not args.fps > 0:
        parser.error(f"--fps must be positive, got {args.fps}")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    console = Console(stderr=True, soft_wrap=True)
    from mmimic.cli import check_output_dir, run_main

    def checked() -> int:
        check_output_dir(args.out, "--out")  # before any source is read
        return retarget(args, console)

    return run_main(checked, console, debug=args.debug)


def retarget(args: argparse.Namespace, console: Console) -> int:
    """Read every source, retarget, write the passing clips and report.json; 0 when every clip passed."""
    from mmimic.cli import print_problems, retarget_each
    from mmimic.embodiment import load_embodiment
    from mmimic.motion import write_clip
    from mmimic.retarget import ReadOptions, Retargeter, RetargetError, derive, read_name_map
    from mmimic.retarget.marker_ik import MARKER_SUFFIXES, prepare_markers, read_trial
    from mmimic.retarget.markers import read_ik_tasks, read_marker_set
    from mmimic.retarget.readers import read_keypoint_source, source_format
    from mmimic.retarget.report import clip_entry, overall, write_json

    try:
        problems = []
        names = {}
        for path in args.sources:
            if path.stem in names:
                problems.append(f"{path}: its clip name {path.stem!r} is also that of {names[path.stem]}")
            names[path.stem] = path
        if args.smpl_model is not None and not args.smpl_model.is_dir():
            raise RetargetError(args.smpl_model, "the --smpl-model directory does not exist")
        options = ReadOptions(read_name_map(args.name_map) if args.name_map else None, args.scale, args.smpl_model, args.fps)
        fullbody = load_embodiment("fullbody")
        target = load_embodiment("bimanual") if args.embodiment == "bimanual" else None
        retargeter = Retargeter(fullbody)
        marker_set = read_marker_set(args.markers, fullbody.mj_model) if args.markers else None
        tasks, task_notes = read_ik_tasks(args.ik_tasks) if args.ik_tasks else (None, [])
        static = read_trial(args.static, args.up) if args.static else None
    except (RetargetError, ValueError) as exc:
        console.print(f"[red]error:[/red] {exc}", highlight=False)
        return 1

    sources = []
    for path in args.sources:
        started = time.perf_counter()
        try:
            if path.suffix.lower() in MARKER_SUFFIXES:
                if marker_set is None:
                    raise RetargetError(path, "a marker trial needs its marker set: --markers MODEL.osim or MAP.toml")
                markers = prepare_markers(read_trial(path, args.up), marker_set, fullbody.mj_model, retargeter.rest, tasks, static)
                markers.notes += task_notes
                sources.append((path, markers, time.perf_counter() - started))
                continue
            fmt = source_format(path, args.format)
            motion = (retargeter.read_coordinates(path, angles=args.angles, model=args.opensim_model) if fmt == "opensim"
                      else read_keypoint_source(path, fmt, options, retargeter.geometry))
            sources.append((path, motion, time.perf_counter() - started))
        except RetargetError as exc:
            problems.append(str(exc))
    if problems:
        print_problems(console, problems, " in the sources")
        return 1

    entries = []
    for path, _, result in retarget_each(retargeter, sources, console):
        derived = None
        if target is not None:
            arms = derive(result, target, retargeter.thresholds)
            derived = {"embodiment": target.name, "metrics": arms.metrics, "failures": arms.failures}
            result.clip = arms.clip
        result.clip.license = args.license
        passed = result.passed and not (derived and derived["failures"])
        written = None
        if passed or args.keep_failing:
            written = args.out / f"{path.stem}.npz"
            write_clip(written, result.clip)
        entries.append(clip_entry(path.stem, path, result, written, derived))
        verdict = "[green]passed[/green]" if passed else f"[red]failed[/red] ({'; '.join(result.failures + (derived or {}).get('failures', []))})"
        console.print(f"{path.name}: {verdict}, {'written to ' + str(written) if written else 'not written'}", highlight=False)
    report = {
        "embodiment": args.embodiment,
        "fps": retargeter.fps,
        "thresholds": asdict(retargeter.thresholds),
        "clips": entries,
        "overall": overall(entries),
    }
    write_json(args.out / "report.json", report)
    summary = report["overall"]
    console.print(f"{summary['passed']}/{summary['clips']} clip(s) passed, {summary['written']} written to {args.out}; "
                  f"{summary['frames']} frames at {summary['fps']:.0f} frames/s", highlight=False)
    return 0 if summary["passed"] == summary["clips"] or args.keep_failing else 1


if __name__ == "__main__":
    sys.exit(main())
