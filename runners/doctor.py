"""Check this machine for mmimic: `python runners/doctor.py`.

Prints the versions of Python and the physics stack, CUDA as torch and as Warp see it (driver,
Warp's toolkit, GPUs and their memory), whether offscreen rendering (EGL) works, and Warp's kernel
cache; then one verdict line per problem with its fix. Exit status 0 when nothing is wrong, 1 otherwise.
"""

from __future__ import annotations

import argparse
import os
import platform
import subprocess
import sys
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path

from rich.console import Console
from rich.table import Table

PACKAGES = ("torch", "warp-lang", "mujoco", "mujoco-warp", "musclemimic-models")
PINNED = ("warp-lang", "mujoco", "mujoco-warp", "musclemimic-models")  # the physics pins of setup.py

# Renders one frame of a one-geom model offscreen with EGL, in a child process so a broken GL stack
# cannot take the doctor down and MUJOCO_GL is read before mujoco is imported.
_EGL_PROBE = (
    "import os; os.environ['MUJOCO_GL'] = 'egl'; import mujoco; "
    "m = mujoco.MjModel.from_xml_string('<mujoco><worldbody><geom size=\"1\"/></worldbody></mujoco>'); "
    "r = mujoco.Renderer(m, 16, 16); r.update_scene(mujoco.MjData(m)); r.render()"
)


@dataclass
class Report:
    """What the doctor found: (label, value) rows and (problem, fix) verdicts."""

    rows: list[tuple[str, str]] = field(default_factory=list)
    problems: list[tuple[str, str]] = field(default_factory=list)


def installed(package: str) -> str | None:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return None


def check_versions(report: Report) -> None:
    report.rows.append(("Python", f"{platform.python_version()} ({sys.executable})"))
    for package in PACKAGES:
        report.rows.append((package, installed(package) or "not installed"))
    try:
        requires = metadata.requires("mmimic") or []
    except metadata.PackageNotFoundError:
        report.problems.append(("mmimic is not installed", "run `pip install -e .` in the repository"))
        return
    pins = dict(r.split("==", 1) for r in requires if "==" in r and ";" not in r)
    for package in PINNED:
        have, want = installed(package), pins.get(package)
        if want is not None and have != want:
            problem = (f"{package} {have or 'missing'} is installed, mmimic pins {want} (muscle paths and contacts "
                       "change with the physics version)")
            report.problems.append((problem, f"pip install {package}=={want}"))


def check_cuda(report: Report) -> None:
    import torch
    import warp as wp

    from mmimic.device import cuda_view, warp_blind_message

    wp.config.quiet = True
    view = cuda_view()
    report.rows.append(("torch CUDA", f"built with {view.torch_cuda or 'none (CPU build)'}; {view.torch_gpus} GPU(s) visible"))
    for i in range(view.torch_gpus):
        props = torch.cuda.get_device_properties(i)
        report.rows.append((f"  torch cuda:{i}", f"{props.name}, {props.total_memory / 2**30:.1f} GiB"))
    driver = wp.get_cuda_driver_version()
    toolkit = wp.get_cuda_toolkit_version()
    report.rows.append(("CUDA driver", "not found" if driver is None else f"supports CUDA {driver[0]}.{driver[1]}"))
    report.rows.append(("Warp CUDA", f"toolkit {toolkit[0]}.{toolkit[1]}; {view.warp_gpus} GPU(s) usable"))
    for device in wp.get_cuda_devices() if view.warp_gpus else []:
        memory = f"{device.total_memory / 2**30:.1f} GiB, {device.free_memory / 2**30:.1f} GiB free"
        report.rows.append((f"  Warp {device.alias}", f"{device.name} (sm_{device.arch}), {memory}"))
    if view.warp_blind:
        problem = "torch sees a GPU that Warp cannot use: train.py, benchmark.py and eval.py refuse to run without --device cpu"
        report.problems.append((problem, warp_blind_message(view)))
    elif view.warp_gpus and not view.torch_gpus:
        report.problems.append((f"Warp sees {view.warp_gpus} GPU(s) but torch {view.torch_version} cannot use them",
                                "install a CUDA build of torch (https://pytorch.org/get-started)"))
    elif not view.warp_gpus:
        report.rows.append(("GPU", "none: training runs the 'cpu' preset, a demonstration of minutes"))


def check_rendering(report: Report) -> None:
    try:
        probe = subprocess.run([sys.executable, "-c", _EGL_PROBE], capture_output=True, text=True, timeout=45,
                               check=False)
        ok, why = probe.returncode == 0, (probe.stderr.strip().splitlines() or ["no message"])[-1]
    except subprocess.TimeoutExpired:
        ok, why = False, "the probe did not finish in 45 s"
    report.rows.append(("offscreen rendering (EGL)", "works" if ok else f"fails: {why}"))
    if not ok:
        problem = f"MuJoCo cannot render offscreen with EGL ({why}): play.py videos and eval reports need it"
        fix = ("install the EGL library of the NVIDIA driver or Mesa (Debian/Ubuntu: apt install libegl1), or set "
               "MUJOCO_GL=osmesa with libosmesa6 installed")
        report.problems.append((problem, fix))


def check_kernel_cache(report: Report) -> None:
    import warp as wp

    cache = Path(wp.config.kernel_cache_dir)
    files = [p for p in cache.rglob("*") if p.is_file()] if cache.is_dir() else []
    size = sum(p.stat().st_size for p in files)
    report.rows.append(("Warp kernel cache", f"{cache}: {len(files)} files, {size / 2**20:.0f} MiB"))
    probe = cache if cache.exists() else cache.parent
    if not os.access(probe, os.W_OK):
        report.problems.append((f"Warp's kernel cache {cache} is not writable: every run recompiles its kernels",
                                "make it writable or set WARP_CACHE_PATH to a writable directory"))


def diagnose(render: bool = True) -> Report:
    report = Report()
    check_versions(report)
    check_cuda(report)
    if render:
        check_rendering(report)
    check_kernel_cache(report)
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--no-render", action="store_true", help="skip the offscreen rendering probe")
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)
    console = Console()
    with console.status("checking"):
        report = diagnose(render=not args.no_render)
    table = Table(title="mmimic doctor", show_header=False)
    table.add_column(style="bold")
    table.add_column()
    for label, value in report.rows:
        table.add_row(label, value)
    console.print(table)
    for problem, fix in report.problems:
        console.print(f"[red]problem:[/red] {problem}\n  [green]fix:[/green] {fix}")
    if not report.problems:
        console.print("[green]no problems found[/green]")
    return 1 if report.problems else 0


if __name__ == "__main__":
    sys.exit(main())
