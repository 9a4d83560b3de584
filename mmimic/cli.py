"""What every runner shares: one-sentence errors instead of tracebacks, and output paths checked up front.

`run_main` calls a runner's body and turns the errors a user can fix (a bad value, file or path,
too little memory or disk) into one line naming it and the fix, with exit status 2; with the
runner's `--debug` flag they are raised, so the traceback shows. `check_output_file` and
`check_output_dir` refuse an output path that cannot be written before any work starts;
`add_opensim_options` adds the flags of an OpenSim coordinate table, `print_problems` lists the
problems that stopped a runner before it wrote anything, and `retarget_each` drives the
retargeting runners' progress bar.
"""

from __future__ import annotations

import argparse
import difflib
import errno
import os
import shutil
import tempfile
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from mmimic.checkpoint import CheckpointError

if TYPE_CHECKING:
    from mmimic.retarget import Retargeter, RetargetResult

EXIT_USAGE = 2


class UsageError(Exception):
    """A flag, path or value the user can fix; printed as one sentence (exit status 2)."""


def nearest(name: str, known: Iterable[str]) -> str:
    """' (did you mean 'x'?)' for the closest of `known` to `name`, or ''."""
    match = difflib.get_close_matches(name, list(known), n=1, cutoff=0.6)
    return f" (did you mean {match[0]!r}?)" if match else ""


def is_allocation_failure(exc: BaseException) -> bool:
    """numpy's MemoryError, torch's OutOfMemoryError, or Warp's RuntimeError 'Failed to allocate N bytes'."""
    return isinstance(exc, (MemoryError, torch.OutOfMemoryError)) or (
        isinstance(exc, RuntimeError) and str(exc).startswith("Failed to allocate"))


def describe(exc: BaseException, memory_hint: str = "") -> str:
    """One sentence for an error a user can fix: the path or value it names and what to do."""
    if is_allocation_failure(exc):
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else "allocation failed"
        return f"out of memory ({first}); {memory_hint or 'use a smaller problem'}"
    if isinstance(exc, OSError) and exc.strerror:
        where = exc.filename if exc.filename is not None else "a file"
        fix = {
            errno.ENOSPC: "free some space or write elsewhere",
            errno.EDQUOT: "free some space or write elsewhere",
            errno.EROFS: "choose a writable location",
            errno.EACCES: "choose a location you may write to",
            errno.EPERM: "choose a location you may write to",
            errno.ENOENT: "check the path",
            errno.EISDIR: "give a file name, not a directory",
            errno.ENOTDIR: "a part of the path is a file, not a directory",
        }.get(exc.errno or 0, "check the path")
        return f"{where}: {exc.strerror.lower()}; {fix}"
    return str(exc)


def run_main(body: Callable[[], int], console: Console, *, debug: bool = False, memory_hint: str = "") -> int:
    """`body()`, with the errors a user can fix printed as one sentence and exit status 2 (raised
    with `debug`): UsageError, ValueError (mmimic's ConfigError, EmbodimentError, MotionError...),
    CheckpointError, OSError and allocation failures (`memory_hint` says what to shrink)."""
    try:
        return body()
    except (UsageError, ValueError, CheckpointError, OSError, MemoryError, RuntimeError) as exc:
        friendly = not isinstance(exc, RuntimeError) or isinstance(exc, CheckpointError) or is_allocation_failure(exc)
        if debug or not friendly:
            raise
        console.print(f"[red]error:[/red] {describe(exc, memory_hint)}", highlight=False, soft_wrap=True)
        return EXIT_USAGE


def add_opensim_options(parser: argparse.ArgumentParser) -> None:
    """--degrees / --radians (`angles`) and --opensim-model: how to read an OpenSim coordinate table."""
    from mmimic.motion.convert import OPENSIM_MODELS

    units = parser.add_mutually_exclusive_group()
    for unit in ("degrees", "radians"):
        units.add_argument(f"--{unit}", dest="angles", action="store_const", const=unit,
                           help=f"OpenSim angles are in {unit}, whatever the file's header says")
    parser.add_argument("--opensim-model", choices=OPENSIM_MODELS, default=None,
                        help="OpenSim coordinate conventions: rajagopal (knee flexion positive) or gait2392 "
                             "(gait2392, gait2354, Hamner: knee flexion negative); default: from the columns")


def print_problems(console: Console, problems: list[str], where: str = "") -> None:
    """Every problem as an error line, then that nothing was written (`where`: e.g. " in the sources")."""
    for problem in problems:
        console.print(f"[red]error:[/red] {problem}", highlight=False)
    console.print(f"nothing written: {len(problems)} problem(s){where}")


def retarget_each(retargeter: Retargeter, sources: Sequence[tuple[Any, Any, float]],
                  console: Console) -> Iterator[tuple[Any, Any, RetargetResult]]:
    """Retarget every (item, motion, seconds spent reading it) of `sources` in turn behind one progress bar
    over all their frames, yielding (item, motion, result); each item's `name` labels the bar."""
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
    with Progress(*columns, console=console) as bar:
        task = bar.add_task("retargeting", total=sum(retargeter.output_frames(m) for _, m, _ in sources))
        for item, motion, read_seconds in sources:
            bar.update(task, description=f"retargeting {item.name}")
            yield item, motion, retargeter.run(motion, lambda n: bar.advance(task, n), read_seconds)


def _existing_ancestor(path: Path, flag: str) -> Path:
    """The nearest existing ancestor of `path` (itself excluded), which must be a directory."""
    ancestor = path.absolute().parent
    while not ancestor.exists():
        ancestor = ancestor.parent
    if not ancestor.is_dir():
        raise UsageError(f"{flag} {path}: {ancestor} is a file, not a directory; choose another path")
    return ancestor


def _check_writable(directory: Path, path: Path, flag: str, free_bytes: int = 0) -> None:
    try:  # a real write: permission bits say nothing for root, a read-only mount refuses anyone
        with tempfile.TemporaryFile(dir=directory, prefix=".mmimic-probe-"):
            pass
    except OSError as exc:
        raise UsageError(f"{flag} {path}: cannot write in {directory} ({exc.strerror.lower()}); "
                         "choose a writable location") from None
    free = shutil.disk_usage(directory).free
    if free < free_bytes:
        raise UsageError(f"{flag} {path}: {free / 2**20:.1f} MiB free on that file system, about "
                         f"{free_bytes / 2**20:.1f} MiB needed; free some space or write elsewhere")


def check_output_file(path: Path, flag: str) -> None:
    """UsageError unless `path` can be written as a file (parents are created when written)."""
    path = Path(path)
    if path.is_dir():
        raise UsageError(f"{flag} {path}: is a directory; give a file name")
    if path.exists() and not os.access(path, os.W_OK):
        raise UsageError(f"{flag} {path}: the existing file is not writable; choose another path")
    directory = path.parent if path.parent.is_dir() else _existing_ancestor(path, flag)
    _check_writable(directory, path, flag)


def check_output_dir(path: Path, flag: str, free_bytes: int = 0) -> None:
    """UsageError unless `path` is, or can be created as, a writable directory."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise UsageError(f"{flag} {path}: is a file, not a directory; choose a directory path")
    _check_writable(path if path.is_dir() else _existing_ancestor(path, flag), path, flag, free_bytes)
