"""What every reader returns (`SourceMotion`) and the error every reader raises (`RetargetError`)."""

from __future__ import annotations

import tomllib
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from mmimic.retarget.keypoints import REQUIRED_KEYPOINTS


class RetargetError(ValueError):
    """A source file that cannot be retargeted; the message names the file and the problem."""

    def __init__(self, path: str | Path, problem: str) -> None:
        super().__init__(f"{path}: {problem}")


def read_toml(path: Path, what: str) -> dict:
    """The tables of the TOML file `path`, a `what` ("catalog", "name map", ...); `RetargetError`
    when it is missing or not readable TOML."""
    try:
        with path.open("rb") as f:
            return tomllib.load(f)
    except FileNotFoundError:
        raise RetargetError(path, f"{what} file not found") from None
    except (OSError, tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise RetargetError(path, f"not a readable TOML {what} ({exc})") from None


def read_npz(path: Path) -> dict[str, np.ndarray]:
    """The arrays of the `.npz` archive `path`; `RetargetError` when it is not readable."""
    try:
        with np.load(path, allow_pickle=False) as archive:
            return {key: archive[key] for key in archive.files}
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as exc:
        raise RetargetError(path, f"not a readable .npz archive ({exc})") from None


@dataclass
class SourceMotion:
    """A source clip reduced to canonical keypoints (world, z up, metres) and segment frames.

    `positions[k]` is (T, 3) for each keypoint of `keypoints.KEYPOINTS` the source has;
    `frames[s]` is (T, 3, 3), the canonical frame of segment `s` (see `keypoints`).
    `reader` says how the file was read (format and, for AMASS, which body-model path).
    """

    path: Path
    fps: float
    positions: dict[str, np.ndarray]
    frames: dict[str, np.ndarray] = field(default_factory=dict)
    reader: str = ""
    notes: list[str] = field(default_factory=list)

    @property
    def num_frames(self) -> int:
        return int(next(iter(self.positions.values())).shape[0])

    def __post_init__(self) -> None:
        """`RetargetError` for missing keypoints, too few frames, a bad rate or NaN/inf."""
        missing = [k for k in REQUIRED_KEYPOINTS if k not in self.positions]
        if missing:
            raise RetargetError(self.path, f"no keypoint(s) {', '.join(missing)}")
        if not (np.isfinite(self.fps) and self.fps > 0):
            raise RetargetError(self.path, f"frame rate must be positive, got {self.fps}")
        if self.num_frames < 2:
            raise RetargetError(self.path, f"{self.num_frames} frame(s); a clip needs at least 2")
        for name, values in {**self.positions, **self.frames}.items():
            if not np.all(np.isfinite(values)):
                raise RetargetError(self.path, f"NaN or inf in the {name!r} trajectory")
