"""A source catalog: the raw motion files a shipped motion set is rebuilt from, with provenance.

A catalog is a TOML file (e.g. `motions/sources/cmu_daz_bvh/clips.toml`)::

    train_only = ["07_01"]          # optional: CMU trials that never go to the test split
    [clips.cmu_02_01]               # the clip's name in the motion sets
    file = "ateliercircle/clips/02/02_01.bvh"   # under the raw directory given at build time
    sha1 = "9978253b..."            # the raw file's SHA-1, checked before any work
    repository = "https://github.com/..."       # where the file comes from: repository,
    commit = "9ee8be12..."                      # commit and path in it
    path = "02/02_01.bvh"
    category = "walk"               # the manifest's category
    label = "walk"                  # optional finer label (free text)
    description = "walk"            # the manifest's description
    cmu_trial = "02_01"             # optional
    fps = 60.0                      # optional: overrides the file's own frame rate

`assign_splits` assigns the held-out clips: per category, the `round(fraction * n)` clips first in
the order of their raw files' SHA-1 (deterministic, independent of names and of the run),
skipping `train_only` trials.
"""

from __future__ import annotations

import hashlib
import math
import re
from dataclasses import dataclass
from pathlib import Path

from mmimic.motion.manifest import SHA1_HEX
from mmimic.retarget.source import RetargetError, read_toml

_REQUIRED = ("file", "sha1", "repository", "commit", "path", "category", "description")
_OPTIONAL = ("label", "cmu_trial", "fps")
_NAME = re.compile(r"[a-z][a-z0-9_]*")


@dataclass(frozen=True)
class CatalogClip:
    """One raw clip of a catalog (module docstring)."""

    name: str
    file: str
    sha1: str
    repository: str
    commit: str
    path: str
    category: str
    description: str
    label: str = ""
    cmu_trial: str = ""
    fps: float | None = None

    @property
    def upstream(self) -> str:
        """`repository@commit:path`."""
        return f"{self.repository}@{self.commit}:{self.path}"


@dataclass(frozen=True)
class Catalog:
    """The clips of a catalog file and the trials kept out of the test split."""

    path: Path
    clips: tuple[CatalogClip, ...]
    train_only: frozenset[str] = frozenset()


def read_catalog(path: str | Path) -> Catalog:
    """Read and check a catalog; `RetargetError` naming the file and every bad field."""
    path = Path(path)
    table = read_toml(path, "catalog")
    problems = [f"unknown top-level key {k!r} (expected train_only, [clips.<name>])" for k in table
                if k not in ("clips", "train_only")]
    train_only = table.get("train_only", [])
    if not isinstance(train_only, list) or not all(isinstance(t, str) for t in train_only):
        problems.append("train_only must be a list of strings")
        train_only = []
    clips = []
    entries = table.get("clips", {})
    if not isinstance(entries, dict) or not entries:
        problems.append("no [clips.<name>] tables")
        entries = {}
    for name, entry in entries.items():
        where = f"clips.{name}"
        if not _NAME.fullmatch(name):
            problems.append(f"{where}: a clip name must be a lowercase identifier")
        if not isinstance(entry, dict):
            problems.append(f"{where} must be a table")
            continue
        problems += [f"{where}: unknown key {k!r}" for k in entry if k not in _REQUIRED + _OPTIONAL]
        problems += [f"{where}: missing {k!r}" for k in _REQUIRED if k not in entry]
        problems += [f"{where}.{k} must be a string" for k in _REQUIRED + _OPTIONAL[:2]
                     if k in entry and not isinstance(entry[k], str)]
        if isinstance(entry.get("sha1"), str) and not SHA1_HEX.fullmatch(entry["sha1"]):
            problems.append(f"{where}.sha1 must be 40 lowercase hex digits")
        if isinstance(entry.get("category"), str) and not _NAME.fullmatch(entry["category"]):
            problems.append(f"{where}.category must be a lowercase identifier")
        fps = entry.get("fps")
        if fps is not None and (isinstance(fps, bool) or not isinstance(fps, (int, float)) or not fps > 0):
            problems.append(f"{where}.fps must be a positive number, got {fps!r}")
        if not problems:
            clips.append(CatalogClip(name, **{k: entry[k] for k in _REQUIRED + _OPTIONAL if k in entry}))
    if problems:
        raise RetargetError(path, "; ".join(problems))
    return Catalog(path, tuple(clips), frozenset(train_only))


def check_sources(catalog: Catalog, raw: Path) -> list[str]:
    """Every catalog clip whose raw file under `raw` is missing or has another SHA-1."""
    problems = []
    for clip in catalog.clips:
        file = raw / clip.file
        if not file.is_file():
            problems.append(f"{file}: no such file (catalog {catalog.path}, clips.{clip.name})")
            continue
        digest = hashlib.sha1(file.read_bytes()).hexdigest()
        if digest != clip.sha1:
            problems.append(f"{file}: SHA-1 {digest}, the catalog {catalog.path} says {clip.sha1} (clips.{clip.name})")
    return problems


def assign_splits(catalog: Catalog, fraction: float = 0.1) -> dict[str, str]:
    """Each clip's split, "train" or "test" (module docstring)."""
    if not 0.0 <= fraction < 1.0:
        raise ValueError(f"the test fraction must be in [0, 1), got {fraction}")
    split = {clip.name: "train" for clip in catalog.clips}
    for category in sorted({clip.category for clip in catalog.clips}):
        members = sorted((c for c in catalog.clips if c.category == category), key=lambda c: c.sha1)
        count = math.floor(fraction * len(members) + 0.5)
        eligible = [c for c in members if c.cmu_trial not in catalog.train_only]
        for clip in eligible[:count]:
            split[clip.name] = "test"
    return split
