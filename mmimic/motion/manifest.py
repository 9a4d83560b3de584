"""Motion directories: the clips they hold and their optional `manifest.toml`.

```toml
[clips.opensim_walk]          # the clip file's stem (opensim_walk.npz)
weight = 1.0                  # relative sampling weight, >= 0 (default 1; 0: evaluated, never drawn in training)
split = "train"               # "train" or "test" (default: train)
description = "free text"
category = "walk"             # motion category, lowercase identifier (default: "other")
source = "upstream/path.bvh"  # the raw file the clip was made from (optional)
sha1 = "0123...cdef"          # that file's SHA-1, 40 hex digits (optional)
```
"""

from __future__ import annotations

import json
import re
import tomllib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from mmimic.io.atomic import atomic_write
from mmimic.motion.clip import MotionError

MANIFEST = "manifest.toml"
SPLITS = ("train", "test")
DEFAULT_CATEGORY = "other"
_KEYS = {"weight", "split", "description", "category", "source", "sha1"}
_CATEGORY = re.compile(r"[a-z][a-z0-9_]*")
SHA1_HEX = re.compile(r"[0-9a-f]{40}")
_BARE_KEY = re.compile(r"[A-Za-z0-9_-]+")


@dataclass(frozen=True)
class ClipEntry:
    """One clip file with its manifest settings."""

    path: Path
    weight: float = 1.0
    split: str = "train"
    description: str = ""
    category: str = DEFAULT_CATEGORY
    source: str = ""
    sha1: str = ""

    @property
    def name(self) -> str:
        """`<directory>/<stem>`: unique across motion sets."""
        return f"{self.path.parent.name}/{self.path.stem}"


def manifest_problems(directory: Path) -> tuple[dict[str, dict], list[str]]:
    """The manifest's clip table (empty without a manifest) and every problem in it (each to be
    read after the manifest's path)."""
    path = directory / MANIFEST
    if not path.is_file():
        return {}, []
    try:
        with path.open("rb") as f:
            table = tomllib.load(f)
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        return {}, [f"malformed TOML: {exc}"]
    return _table_problems(table, directory)


def _table_problems(table: dict, directory: Path) -> tuple[dict[str, dict], list[str]]:
    """`manifest_problems` of a parsed manifest `table` for the clips of `directory`."""
    problems = [f"unknown top-level key {key!r} (expected [clips.<name>] tables)" for key in table if key != "clips"]
    clips = table.get("clips", {})
    if not isinstance(clips, dict):
        return {}, problems + ["'clips' must be a table of [clips.<name>] tables"]
    stems = {p.stem for p in directory.glob("*.npz")}
    for name, entry in clips.items():
        where = f"clips.{name}"
        if not isinstance(entry, dict):
            problems.append(f"{where} must be a table")
            continue
        if name not in stems:
            problems.append(f"{where} names a clip with no file {name}.npz in {directory}")
        problems += [f"{where}: unknown key {key!r} (expected {', '.join(sorted(_KEYS))})" for key in entry if key not in _KEYS]
        weight = entry.get("weight", 1.0)
        if isinstance(weight, bool) or not isinstance(weight, (int, float)) or not 0 <= weight < float("inf"):
            problems.append(f"{where}.weight must be a finite number >= 0 (0: never drawn in training), got {weight!r}")
        if entry.get("split", "train") not in SPLITS:
            problems.append(f"{where}.split must be one of {', '.join(SPLITS)}, got {entry.get('split')!r}")
        if not isinstance(entry.get("description", ""), str):
            problems.append(f"{where}.description must be a string")
        category = entry.get("category", DEFAULT_CATEGORY)
        if not isinstance(category, str) or not _CATEGORY.fullmatch(category):
            problems.append(f"{where}.category must be a lowercase identifier like 'walk', got {category!r}")
        if not isinstance(entry.get("source", ""), str):
            problems.append(f"{where}.source must be a string")
        sha1 = entry.get("sha1", "")
        if not isinstance(sha1, str) or (sha1 and not SHA1_HEX.fullmatch(sha1)):
            problems.append(f"{where}.sha1 must be 40 lowercase hex digits, got {sha1!r}")
    return clips, problems


def write_manifest(directory: Path, clips: dict[str, dict[str, object]], header: str = "") -> None:
    """Write `directory`'s manifest atomically: `header` as comment lines, then one
    [clips.<name>] table per clip in the given order (string and number values only);
    `MotionError`, before anything is replaced, naming the clip and key of any other value or
    any problem `manifest_problems` would report."""
    lines = [f"# {line}".rstrip() for line in header.splitlines()]
    for name, entry in clips.items():
        if not _BARE_KEY.fullmatch(name):
            raise MotionError(directory / MANIFEST, f"clip name {name!r} is not a bare TOML key")
        lines += ["", f"[clips.{name}]"]
        for key, value in entry.items():
            if isinstance(value, bool) or not isinstance(value, (str, int, float)):
                raise MotionError(directory / MANIFEST, f"clips.{name}.{key}: {value!r} is not a string or number")
            lines.append(f"{key} = {json.dumps(value, ensure_ascii=False)}")
    text = "\n".join(lines).lstrip("\n") + "\n"
    table = tomllib.loads(text)
    problems = _table_problems(table, directory)[1]
    if table.get("clips", {}) != clips:
        problems.append("the written manifest does not read back as given")
    if problems:
        raise MotionError(directory / MANIFEST, problems)
    with atomic_write(directory / MANIFEST, "w") as f:
        f.write(text)


def directory_entries(directory: Path) -> list[ClipEntry]:
    """Every clip of a motion directory, sorted by name; `MotionError` for a bad manifest or no clips."""
    clips, problems = manifest_problems(directory)
    if problems:
        raise MotionError(directory / MANIFEST, problems)
    paths = sorted(directory.glob("*.npz"))
    if not paths:
        raise MotionError(directory, "no .npz clips in this directory")
    entries = []
    for path in paths:
        entry = clips.get(path.stem, {})
        entries.append(
            ClipEntry(
                path,
                float(entry.get("weight", 1.0)),
                entry.get("split", "train"),
                entry.get("description", ""),
                entry.get("category", DEFAULT_CATEGORY),
                entry.get("source", ""),
                entry.get("sha1", ""),
            )
        )
    return entries


def collect_clips(sources: Sequence[str | Path], split: str | None = None) -> list[ClipEntry]:
    """The clips of `sources` (directories or single .npz files, the latter with weight 1 and
    split train), each once, in the given order, keeping those of `split` (None: all).
    `MotionError` for a missing source, a bad manifest, a directory without clips or an empty
    selection."""
    if split is not None and split not in SPLITS:
        raise ValueError(f"split must be None or one of {', '.join(SPLITS)}, got {split!r}")
    if isinstance(sources, (str, Path)):
        sources = [sources]
    entries: list[ClipEntry] = []
    seen: set[Path] = set()
    for source in sources:
        path = Path(source)
        if path.is_dir():
            found = directory_entries(path)
        elif path.is_file():
            found = [ClipEntry(path)]
        else:
            raise MotionError(path, "no such file or directory")
        for entry in found:
            if entry.path.resolve() not in seen:
                seen.add(entry.path.resolve())
                entries.append(entry)
    selected = [e for e in entries if split is None or e.split == split]
    if not selected:
        where = ", ".join(str(s) for s in sources) or "(no sources given)"
        raise MotionError(where, f"no clips{'' if split is None else f' with split {split!r}'} in these sources")
    return selected
