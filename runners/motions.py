"""Motion directories from the command line.

    python runners/motions.py list motions/fullbody
    python runners/motions.py inspect motions/fullbody motions/bimanual
    python runners/motions.py validate motions/fullbody [--embodiment fullbody]
    python runners/motions.py convert coordinates.mot --embodiment fullbody --out motions/mine/walk.npz [--start 0.2 --end 1.5]
    python runners/motions.py derive motions/fullbody/walk.npz --embodiment bimanual --out motions/mine_arms/walk.npz

`validate` lists every problem of every clip and manifest and exits 1 if there is any.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from pathlib import Path

from rich.console import Console
from rich.logging import RichHandler
from rich.table import Table

from mmimic.cli import add_opensim_options
from mmimic.embodiment import Embodiment, EmbodimentError, load_embodiment
from mmimic.motion import MotionError, check_clip, convert_opensim, derive_clip, read_clip, write_clip
from mmimic.motion.manifest import ClipEntry, directory_entries, manifest_problems


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    for name, text in (("list", "a table of the clips"), ("inspect", "the table with manifest settings and columns")):
        sub = commands.add_parser(name, help=text)
        sub.add_argument("sources", nargs="+", type=Path, help="motion directories or .npz clips")
    sub = commands.add_parser("validate", help="check every clip and manifest; exit 1 on any problem")
    sub.add_argument("sources", nargs="+", type=Path, help="motion directories or .npz clips")
    sub.add_argument("--embodiment", default=None, help="check against this embodiment (default: each clip's own)")
    sub = commands.add_parser("convert", help="OpenSim coordinates (.mot/.sto: Rajagopal, gait2392, Hamner) -> clip")
    sub.add_argument("file", type=Path, help="OpenSim coordinate table")
    sub.add_argument("--embodiment", default="fullbody", help="a body with a free root (default fullbody)")
    sub.add_argument("--out", type=Path, required=True, help="clip to write (.npz)")
    sub.add_argument("--start", type=float, default=None, help="first time kept (s)")
    sub.add_argument("--end", type=float, default=None, help="last time kept (s)")
    sub.add_argument("--source", default=None, help="the clip's source text (default: file and window)")
    sub.add_argument("--license", default="", help="the clip's license text")
    sub.add_argument("--fps", type=float, default=None, help="the clip's rate (default: the file's)")
    add_opensim_options(sub)
    sub = commands.add_parser("derive", help="the joints another body shares with a clip (e.g. the arms for bimanual)")
    sub.add_argument("clip", type=Path, help="source clip (.npz)")
    sub.add_argument("--embodiment", required=True, help="target embodiment")
    sub.add_argument("--out", type=Path, required=True, help="clip to write (.npz)")
    for sub in (commands.choices["convert"], commands.choices["derive"]):
        sub.add_argument("--debug", action="store_true", help="show the full traceback of an error")
    return parser.parse_args(argv)


def _clip_paths(source: Path) -> tuple[list[ClipEntry], list[str]]:
    """The clips of a directory or file, and the problems that keep any from being listed."""
    if source.is_file():
        return [ClipEntry(source)], []
    if not source.is_dir():
        return [], [f"{source}: no such file or directory"]
    try:
        return directory_entries(source), []
    except MotionError as exc:
        return [], [f"{exc.path}: {p}" for p in exc.problems]


def show(sources: list[Path], console: Console, detailed: bool) -> int:
    table = Table(title=", ".join(str(s) for s in sources))
    columns = ["clip", "frames", "duration (s)", "fps", "embodiment", "source"]
    columns += ["weight", "split", "columns", "qvel", "description"] if detailed else []
    for column in columns:
        table.add_column(column, overflow="fold")
    failed = 0
    for source in sources:
        entries, problems = _clip_paths(source)
        for problem in problems:
            table.add_row(f"[red]{problem}[/red]")
            failed += 1
        for entry in entries:
            try:
                clip = read_clip(entry.path)
            except MotionError as exc:
                table.add_row(entry.name, *[""] * 4, f"[red]unreadable: {'; '.join(exc.problems)}[/red]")
                failed += 1
                continue
            row = [entry.name, str(clip.num_frames), f"{clip.duration:.2f}", f"{clip.fps:g}", clip.embodiment, clip.source]
            if detailed:
                row += [f"{entry.weight:g}", entry.split, str(len(clip.joint_names)), "stored" if clip.qvel is not None else "derived", entry.description]
            table.add_row(*row)
    console.print(table)
    return 1 if failed else 0


def validate(sources: list[Path], embodiment_name: str | None, console: Console) -> int:
    bodies: dict[str, Embodiment | str] = {}

    def body(name: str) -> Embodiment | str:
        if name not in bodies:
            try:
                bodies[name] = load_embodiment(name)
            except EmbodimentError as exc:
                bodies[name] = f"cannot load embodiment {name!r}: {exc}"
        return bodies[name]

    problems: list[str] = []
    checked = 0
    for source in sources:
        if source.is_dir():
            problems += [f"{source / 'manifest.toml'}: {p}" for p in manifest_problems(source)[1]]
            paths = sorted(source.glob("*.npz"))
            if not paths:
                problems.append(f"{source}: no .npz clips in this directory")
        elif source.is_file():
            paths = [source]
        else:
            problems.append(f"{source}: no such file or directory")
            continue
        for path in paths:
            checked += 1
            name = embodiment_name
            if name is None:
                try:
                    name = read_clip(path).embodiment
                except MotionError as exc:
                    problems += [f"{path}: {p}" for p in exc.problems]
                    continue
            target = body(name)
            clip_problems = [target] if isinstance(target, str) else check_clip(path, target)
            problems += [f"{path}: {p}" for p in clip_problems]
    for problem in problems:
        console.print(f"[red]✗[/red] {problem}", highlight=False, soft_wrap=True)
    if problems:
        console.print(f"{len(problems)} problem(s) in {checked} clip(s)")
        return 1
    console.print(f"[green]✓[/green] {checked} clip(s) valid")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    console = Console()
    if not console.is_terminal:
        console = Console(width=160)  # pipes and CI logs: room for the table
    logger = logging.getLogger("mmimic")
    if not logger.handlers:
        logger.addHandler(RichHandler(console=Console(stderr=True), show_time=False, show_path=False))
        logger.setLevel(logging.INFO)
    if args.command in ("list", "inspect"):
        return show(args.sources, console, detailed=args.command == "inspect")
    if args.command == "validate":
        return validate(args.sources, args.embodiment, console)
    from mmimic.cli import run_main

    return run_main(lambda: write(args, console), console, debug=args.debug)


def write(args: argparse.Namespace, console: Console) -> int:
    """`convert` or `derive`: exit 1 for a source or clip that cannot be used, nothing written; 2 (through
    `run_main`) for an output path that cannot be written."""
    from mmimic.cli import check_output_file
    from mmimic.motion.clip import fit_problems

    check_output_file(args.out, "--out")
    source = args.file if args.command == "convert" else args.clip
    try:
        embodiment = load_embodiment(args.embodiment)
        if args.command == "convert":
            clip, _ = convert_opensim(
                args.file, embodiment, start=args.start, end=args.end, source=args.source, license=args.license,
                fps=args.fps, angles=args.angles, model=args.opensim_model,
            )
        else:
            clip = derive_clip(read_clip(args.clip), embodiment)
        problems = fit_problems(clip, embodiment)[1]
        if problems:
            raise MotionError(source, [f"the {args.command}d clip does not fit embodiment {embodiment.name!r}, "
                                       f"{args.out} not written: {'; '.join(problems)}"])
    except ValueError as exc:  # MotionError, EmbodimentError, OpenSimFormatError are ValueErrors
        console.print(f"[red]error:[/red] {exc}", highlight=False)
        return 1
    write_clip(args.out, clip)
    console.print(f"wrote {args.out}: {clip.num_frames} frames at {clip.fps:g} fps for {clip.embodiment}", highlight=False)
    return 0


if __name__ == "__main__":
    sys.exit(main())
