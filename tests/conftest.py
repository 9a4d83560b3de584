"""Shared fixtures: embodiments are compiled once per test session; GPUs faked for device tests.
Tests marked `cuda` are skipped unless torch and Warp both see a GPU."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import warp as wp

import mmimic

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session")
def fullbody() -> mmimic.Embodiment:
    return mmimic.load_embodiment("fullbody")


@pytest.fixture(scope="session")
def bimanual() -> mmimic.Embodiment:
    return mmimic.load_embodiment("bimanual")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    cuda_tests = [item for item in items if item.get_closest_marker("cuda") is not None]
    if not cuda_tests:
        return
    wp.init()
    if torch.cuda.is_available() and wp.is_cuda_available():
        return
    skip = pytest.mark.skip(reason="needs a GPU that torch and Warp both see (`python runners/doctor.py` says why not)")
    for item in cuda_tests:
        item.add_marker(skip)


@pytest.fixture
def fake_gpus(monkeypatch: pytest.MonkeyPatch):
    """`fake_gpus(torch_gpus, warp_gpus, driver)` makes torch and Warp report that many GPUs (and the
    driver's CUDA version to Warp); returns the list that records torch.cuda.set_device calls."""
    calls: list[int] = []

    def install(torch_gpus: int, warp_gpus: int, driver: tuple[int, int] | None = (12, 4)) -> list[int]:
        monkeypatch.setattr(torch.cuda, "is_available", lambda: torch_gpus > 0)
        monkeypatch.setattr(torch.cuda, "device_count", lambda: torch_gpus)
        monkeypatch.setattr(torch.cuda, "set_device", calls.append)
        monkeypatch.setattr(torch.version, "cuda", "12.8")
        monkeypatch.setattr(wp, "is_cuda_available", lambda: warp_gpus > 0)
        monkeypatch.setattr(wp, "get_cuda_device_count", lambda: warp_gpus)
        monkeypatch.setattr(wp, "get_cuda_driver_version", lambda: driver)
        return calls

    monkeypatch.delenv("LOCAL_RANK", raising=False)
    return install
