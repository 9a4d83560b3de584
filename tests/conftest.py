"""Shared fixtures: embodiments are compiled once per test session."""

from __future__ import annotations

from pathlib import Path

import pytest

import mmimic

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session")
def fullbody() -> mmimic.Embodiment:
    return mmimic.load_embodiment("fullbody")


@pytest.fixture(scope="session")
def bimanual() -> mmimic.Embodiment:
    return mmimic.load_embodiment("bimanual")
