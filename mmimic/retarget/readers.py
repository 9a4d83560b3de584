"""Which reader a source file goes to: by `--format`, else by its type.

`.bvh` -> BVH; `.mot` / `.sto` -> OpenSim coordinates; `.npz` -> AMP when it holds
`rotation_xyzw`, else AMASS (so an AMASS file without `poses` is told so).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from mmimic.retarget.amass import read_amass_smplx, read_amass_template, template_skeleton
from mmimic.retarget.amp import read_amp
from mmimic.retarget.bvh import NameMap, read_bvh
from mmimic.retarget.source import RetargetError, SourceMotion, read_npz
from mmimic.retarget.targets import BodyGeometry

FORMATS = ("amass", "bvh", "opensim", "amp")
_SUFFIXES = {".bvh": "bvh", ".mot": "opensim", ".sto": "opensim"}


@dataclass(frozen=True)
class ReadOptions:
    """Reader options from the command line: a BVH name map, unit scale and frame-rate override,
    the SMPL model directory."""

    name_map: NameMap | None = None
    scale: float | None = None
    smpl_model: Path | None = None
    fps: float | None = None


def source_format(path: Path, requested: str | None) -> str:
    """The format of `path`: `requested` if given, else by suffix and, for `.npz`, content."""
    if requested is not None:
        if requested not in FORMATS:
            raise RetargetError(path, f"unknown format {requested!r} (expected one of {', '.join(FORMATS)})")
        return requested
    if not path.is_file():
        raise RetargetError(path, "no such file")
    if path.suffix.lower() in _SUFFIXES:
        return _SUFFIXES[path.suffix.lower()]
    if path.suffix.lower() == ".npz":
        return "amp" if "rotation_xyzw" in read_npz(path) else "amass"
    raise RetargetError(path, f"cannot tell the format from the suffix {path.suffix!r}; pass --format ({', '.join(FORMATS)})")


def read_keypoint_source(path: Path, fmt: str, options: ReadOptions, geometry: BodyGeometry) -> SourceMotion:
    """Read a keypoint source (AMASS, BVH or AMP) for a body of `geometry`."""
    if not path.is_file():
        raise RetargetError(path, "no such file")
    if fmt == "bvh":
        return read_bvh(path, options.name_map, options.scale, options.fps)
    if fmt == "amp":
        return read_amp(path)
    if fmt == "amass":
        if options.smpl_model is not None:
            return read_amass_smplx(path, options.smpl_model, geometry.lengths)
        skeleton, hands = template_skeleton(geometry.rest_points)
        return read_amass_template(path, skeleton, hands)
    raise RetargetError(path, f"format {fmt!r} is not a keypoint source")
