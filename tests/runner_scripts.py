"""Load a script of `runners/` (not a package) as a fresh module, for tests that call its functions."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

RUNNERS = Path(__file__).resolve().parent.parent / "runners"


def load_runner(name: str) -> ModuleType:
    """`runners/<name>.py` executed as the module `mmimic_<name>_runner` (registered in sys.modules:
    dataclasses look their module up while the class is built)."""
    spec = importlib.util.spec_from_file_location(f"mmimic_{name}_runner", RUNNERS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module
