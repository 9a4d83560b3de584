"""Device choice: one GPU per torchrun rank, and no silent CPU fallback when Warp cannot use torch's GPU.
GPUs are faked by monkeypatching what torch and Warp report, so these run on a CPU."""

from __future__ import annotations

import pytest
import torch
import warp as wp

from mmimic.device import DeviceError, cuda_view, resolve_device


def test_local_rank_picks_the_rank_gpu(fake_gpus, monkeypatch):
    calls = fake_gpus(torch_gpus=2, warp_gpus=2)
    monkeypatch.setenv("LOCAL_RANK", "1")
    assert resolve_device("cuda") == "cuda:1"
    assert resolve_device(None) == "cuda:1"
    assert calls == [1, 1]  # torch's current device follows the rank, so NCCL and allocations land there


def test_explicit_index_is_kept_under_torchrun(fake_gpus, monkeypatch):
    calls = fake_gpus(torch_gpus=2, warp_gpus=2)
    monkeypatch.setenv("LOCAL_RANK", "1")
    assert resolve_device("cuda:0") == "cuda:0"
    assert calls == [0]


def test_without_torchrun_cuda_is_the_first_gpu(fake_gpus):
    calls = fake_gpus(torch_gpus=2, warp_gpus=2)
    assert resolve_device("cuda") == "cuda:0"
    assert resolve_device(None) == "cuda:0"
    assert calls == []  # outside torchrun the process-wide current device is left alone


def test_rank_beyond_the_gpus_is_refused(fake_gpus, monkeypatch):
    fake_gpus(torch_gpus=2, warp_gpus=2)
    monkeypatch.setenv("LOCAL_RANK", "2")
    with pytest.raises(DeviceError, match=r"cuda:2 \(LOCAL_RANK=2\) does not exist: this machine has 2 GPU"):
        resolve_device("cuda")


def test_torch_sees_a_gpu_warp_does_not(fake_gpus):
    fake_gpus(torch_gpus=1, warp_gpus=0, driver=(12, 4))
    for device in (None, "cuda", "cuda:0"):
        with pytest.raises(DeviceError) as info:
            resolve_device(device)
        message = str(info.value)
        assert f"torch {torch.__version__} (CUDA 12.8) sees 1 GPU" in message
        toolkit = wp.get_cuda_toolkit_version()
        assert f"Warp {wp.__version__} (built with CUDA toolkit {toolkit[0]}.{toolkit[1]})" in message
        assert "driver supports 12.4" in message and "R580" in message and "+cu12" in message
    assert resolve_device("cpu") == "cpu"  # asked for explicitly, the CPU stays available
    view = cuda_view()
    assert view.warp_blind and view.torch_gpus == 1 and view.warp_gpus == 0


def test_warp_sees_a_gpu_torch_does_not(fake_gpus):
    fake_gpus(torch_gpus=0, warp_gpus=1)
    with pytest.raises(DeviceError, match="torch .* cannot use them"):
        resolve_device(None)


def test_no_gpu_means_cpu():
    view = cuda_view()
    if view.warp_gpus or view.torch_gpus:
        pytest.skip("this machine has a GPU")
    assert resolve_device(None) == "cpu"
    with pytest.raises(DeviceError, match="Warp finds no CUDA GPU"):
        resolve_device("cuda")


@pytest.mark.parametrize("name", ["gpu", "cuda:x", "cuda:", "CPU", "cuda:-1"])
def test_bad_names_are_refused(name):
    with pytest.raises(DeviceError, match=f"device={name!r} is not 'cpu', 'cuda' or 'cuda:K'"):
        resolve_device(name)
