"""Rebuild shipped motion sets from a source catalog: retarget every raw clip, write manifests and a report.

    python runners/build_motions.py motions/sources/cmu_daz_bvh/clips.toml --raw ../shared/data/cmu_daz_bvh \\
        --fullbody motions/fullbody --bimanual motions/bimanual

Every catalog clip (`mmimic.retarget.catalog`) is checked against its SHA-1, read with its
frame-rate override, retargeted onto the full body at --fps (30 Hz, the published pipeline's
rate; the motion library resamples at load) and checked; a clip that passes is stored as qpos
only (velocities are derived at load), on a --quantum grid, deflated. Its bimanual clip (the arm joints) is stored
where the arms move (the 5-95 percentile range of shoulder elevation or elbow flexion reaches
--arm-motion degrees) and it passes too. Clips that fail are kept out, listed with their
reasons and in the report, never dropped silently. The manifests get each clip's category,
description, split (`assign_splits`), weight 1, source and SHA-1; other clips' entries are kept.
--only rebuilds some clips (the report then holds only those). Exit status 1 if a clip failed.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, replace
from pathlib import Path

import numpy as np
from rich.console import Console

ARM_JOINTS = ("shoulder_elv_l", "shoulder_elv_r", "elbow_flex_l", "elbow_flex_r")
"""Arm joints whose range says whether the arms move (the plane of elevation is left out: it
turns freely while the arm hangs)."""
LICENSE = ("CMU Graphics Lab Motion Capture Database (mocap.cs.cmu.edu): free for research and commercial use; "
           "it may not be resold directly, even in converted form. \"The data used in this project was obtained "
           "from mocap.cs.cmu.edu. The database was created with funding from NSF EIA-0196217.\" BVH conversion by "
           "B. Hahne (no additional restrictions), from MIT-licensed repositories: see {sources}/SOURCE.md")
HEADER = ("Clips of this motion set: [clips.<file stem>] with weight (> 0), split (\"train\" / \"test\"),\n"
          "category, description and, for retargeted clips, source (upstream repository@commit:path) and\n"
          "sha1 (of that file). The cmu_* clips from {catalog} are written by\n"
          "runners/build_motions.py (docs/retargeting.md); do not edit them by hand.")


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("catalog", type=Path, help="source catalog (TOML), e.g. motions/sources/cmu_daz_bvh/clips.toml")
    parser.add_argument("--raw", type=Path, required=True, help="directory holding the catalog's raw files")
    parser.add_argument("--fullbody", type=Path, required=True, help="full-body motion directory to write into")
    parser.add_argument("--bimanual", type=Path, default=None, help="bimanual motion directory to write into")
    parser.add_argument("--fps", type=float, default=30.0, help="output frame rate (Hz)")
    parser.add_argument("--test-fraction", type=float, default=0.1, help="share of each category held out")
    parser.add_argument("--arm-motion", type=float, default=15.0, help="degrees of arm motion for a bimanual clip")
    parser.add_argument("--quantum", type=float, default=2.0**-16,
                        help="storage grid of qpos, rad or m (default 2^-16: at most 7.6e-6 off)")
    parser.add_argument("--only", nargs="+", default=None, help="rebuild only these clips")
    parser.add_argument("--report", type=Path, default=None,
                        help="report JSON (default: report.json beside the catalog)")
    args = parser.parse_args(argv)
    if not args.fps > 0:
        parser.error(f"--fps must be positive, got {args.fps}")
    if not args.quantum > 0:
        parser.error(f"--quantum must be positive, got {args.quantum}")
    if not 0.0 <= args.test_fraction < 1.0:
        parser.error(f"--test-fraction must be in [0, 1), got {args.test_fraction}")
    if not args.raw.is_dir():
        parser.error(f"--raw {args.raw}: no such directory")
    for flag, path in (("--fullbody", args.fullbody), ("--bimanual", args.bimanual)):
        if path is not None and not path.is_dir():
            parser.error(f"{flag} {path}: no such directory")
    return args


def arm_motion_deg(clip) -> float:
    """The largest 5-95 percentile range (degrees) of `ARM_JOINTS` in a clip."""
    columns = [clip.joint_names.index(j) for j in ARM_JOINTS if j in clip.joint_names]
    if not columns:
        return 0.0
    values = clip.qpos[:, columns].astype(np.float64)
    return float(np.degrees(np.max(np.percentile(values, 95, axis=0) - np.percentile(values, 5, axis=0))))


def slim_entry(entry: dict, metrics: dict, failures: list[str], passed: bool) -> dict:
    """A derived (bimanual) clip's report entry: the full-body entry's verdict and failures
    joined with the arm clip's, the arm clip's metrics, and frames and timing only."""
    return {
        "name": entry["name"],
        "source": entry["source"],
        "passed": passed,
        "failures": entry["failures"] + failures,
        "written": entry["written"],
        "metrics": metrics | {"keypoint_rmse_m": entry["metrics"]["keypoint_rmse_m"], "fps": entry["metrics"]["fps"]},
        "details": {k: entry["details"][k] for k in ("frames", "seconds")},
    }


def rounded(value: object, digits: int = 4) -> object:
    """`value` with every float rounded to `digits` significant digits (a compact report)."""
    if isinstance(value, float):
        return float(f"{value:.{digits}g}")
    if isinstance(value, dict):
        return {k: rounded(v, digits) for k, v in value.items()}
    if isinstance(value, list):
        return [rounded(v, digits) for v in value]
    return value


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    console = Console(stderr=True, soft_wrap=True)
    from mmimic.cli import print_problems, retarget_each
    from mmimic.embodiment import load_embodiment
    from mmimic.motion import write_clip
    from mmimic.motion.manifest import manifest_problems, write_manifest
    from mmimic.retarget import Retargeter, RetargetError, derive, read_bvh
    from mmimic.retarget.catalog import assign_splits, check_sources, read_catalog
    from mmimic.retarget.report import clip_entry, overall, write_json

    try:
        catalog = read_catalog(args.catalog)
    except RetargetError as exc:
        console.print(f"[red]error:[/red] {exc}", highlight=False)
        return 1
    names = [c.name for c in catalog.clips]
    unknown = sorted(set(args.only or []) - set(names))
    problems = [f"--only: no clip {n!r} in {args.catalog}" for n in unknown] + check_sources(catalog, args.raw)
    outputs = {"fullbody": args.fullbody} | ({"bimanual": args.bimanual} if args.bimanual else {})
    for directory in outputs.values():
        problems += [f"{directory}/manifest.toml: {p}" for p in manifest_problems(directory)[1]]
    if problems:
        print_problems(console, problems)
        return 1
    clips = [c for c in catalog.clips if args.only is None or c.name in args.only]
    split = assign_splits(catalog, args.test_fraction)
    fullbody = load_embodiment("fullbody")
    bimanual = load_embodiment("bimanual") if args.bimanual else None
    retargeter = Retargeter(fullbody, fps=args.fps, quantum=args.quantum)
    license_text = LICENSE.format(sources=args.catalog.parent.as_posix())

    reports: dict[str, list[dict]] = {name: [] for name in outputs}
    written: dict[str, set[str]] = {name: set() for name in outputs}
    sources = []
    started = time.perf_counter()
    for clip in clips:
        read_start = time.perf_counter()
        try:
            sources.append((clip, read_bvh(args.raw / clip.file, fps=clip.fps), time.perf_counter() - read_start))
        except RetargetError as exc:
            problems.append(str(exc))
    if problems:
        print_problems(console, problems, " in the sources")
        return 1
    for clip, motion, result in retarget_each(retargeter, sources, console):
        notes = {"category": clip.category, "split": split[clip.name], "upstream": clip.upstream,
                 "source_fps_override": clip.fps}
        stored_source = f"{clip.upstream} ({motion.reader}), retargeted to {{}} by mmimic.retarget"
        verdicts = []
        for name, directory in outputs.items():
            out = result
            if name == "bimanual":
                out = derive(result, bimanual, retargeter.thresholds)
                moves = arm_motion_deg(out.clip)
                notes["arm_motion_deg"] = moves
                if moves < args.arm_motion:
                    out.failures.append(f"arm_motion_deg {moves:.2f} < {args.arm_motion:g} (arms still)")
            passed = result.passed and out.passed
            target = directory / f"{clip.name}.npz"
            if passed:
                stored = replace(out.clip, qvel=None, license=license_text, source=stored_source.format(name))
                write_clip(target, stored, compressed=True)
                written[name].add(clip.name)
            else:
                target.unlink(missing_ok=True)  # a stale clip of an earlier build
            entry = clip_entry(clip.name, args.raw / clip.file, result, target if passed else None)
            if name == "bimanual":  # the arm clip's own metrics; the IK details are the full body's
                entry = slim_entry(entry, out.metrics, out.failures, passed)
            entry["details"] |= notes
            reports[name].append(entry)
            reasons = result.failures + (out.failures if out is not result else [])
            verdicts.append(f"{name} " + ("[green]written[/green]" if passed else
                                          f"[red]kept out[/red] ({'; '.join(reasons)})"))
        console.print(f"{clip.name}: {', '.join(verdicts)}", highlight=False)

    for name, directory in outputs.items():
        table, _ = manifest_problems(directory)
        entries = {k: v for k, v in table.items() if k not in names}  # clips of other sources
        for clip in catalog.clips:
            untouched = args.only is not None and clip.name not in args.only and clip.name in table
            if clip.name in written[name] or untouched:
                entries[clip.name] = {"weight": 1.0, "split": split[clip.name], "category": clip.category,
                                      "description": clip.description, "source": clip.upstream, "sha1": clip.sha1}
        write_manifest(directory, entries, HEADER.format(catalog=args.catalog.as_posix()))
    report = {
        "catalog": str(args.catalog),
        "fps": args.fps,
        "thresholds": asdict(retargeter.thresholds),
        "arm_motion_deg": args.arm_motion,
        "wall_seconds": time.perf_counter() - started,
        **{name: {"clips": entries, "overall": overall(entries)} for name, entries in reports.items()},
    }
    write_json(args.report or args.catalog.parent / "report.json", rounded(report))
    failed = 0
    for name in outputs:
        summary = report[name]["overall"]
        failed += summary["clips"] - summary["passed"]
        console.print(f"{name}: {summary['passed']}/{summary['clips']} clip(s) passed and written to {outputs[name]}; "
                      f"{summary['frames']} frames at {summary['fps']:.0f} frames/s", highlight=False)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
