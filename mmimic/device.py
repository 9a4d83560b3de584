"""Choosing the device: one GPU per torchrun rank, and a refusal to fall back to the CPU when torch
sees a GPU that Warp cannot use (the usual cause: a driver older than Warp's CUDA toolkit); the GPU
memory torch and Warp use."""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import warp as wp


class DeviceError(ValueError):
    """The requested device cannot be used; the message says why and what to install."""


@dataclass(frozen=True)
class CudaView:
    """CUDA as torch and as Warp see it on this machine."""

    torch_version: str
    torch_cuda: str | None  # the CUDA version torch was built with; None for a CPU build
    torch_gpus: int
    warp_version: str
    warp_toolkit: tuple[int, int] | None  # the CUDA toolkit Warp was built with
    driver: tuple[int, int] | None  # the CUDA version the installed driver supports; None without a driver
    warp_gpus: int

    @property
    def warp_blind(self) -> bool:
        """Torch sees a GPU that Warp cannot use."""
        return self.torch_gpus > 0 and self.warp_gpus == 0


def cuda_view() -> CudaView:
    """What torch and Warp see (initialises Warp)."""
    wp.init()
    torch_gpus = torch.cuda.device_count() if torch.cuda.is_available() else 0
    warp_gpus = wp.get_cuda_device_count() if wp.is_cuda_available() else 0
    return CudaView(torch.__version__, torch.version.cuda, torch_gpus, wp.__version__,
                    wp.get_cuda_toolkit_version(), wp.get_cuda_driver_version(), warp_gpus)


def _version(v: tuple[int, int] | None) -> str:
    return "none" if v is None else f"{v[0]}.{v[1]}"


def warp_blind_message(view: CudaView) -> str:
    """Why Warp cannot use the GPU torch sees, with both versions and the fix."""
    return (
        f"torch {view.torch_version} (CUDA {view.torch_cuda}) sees {view.torch_gpus} GPU(s) but Warp {view.warp_version} "
        f"(built with CUDA toolkit {_version(view.warp_toolkit)}) cannot use them: the CUDA driver supports "
        f"{_version(view.driver)}. Install an NVIDIA driver of the R580 series or newer for Warp's CUDA 13 wheel, or "
        f"keep the driver and install the CUDA 12 build of the same Warp (warp_lang-{view.warp_version}+cu12 wheel "
        "from https://github.com/NVIDIA/warp/releases). `python runners/doctor.py` reports the details; "
        "pass --device cpu to run on the CPU anyway."
    )


def resolve_device(device: str | None) -> str:
    """A Warp device name for `device` (None, "cpu", "cuda" or "cuda:K").

    None means a GPU when Warp can use one and the CPU otherwise, but it is an error when torch and Warp
    disagree about the GPU (running the CPU preset on a GPU machine by accident); "cpu" is always allowed.
    Under torchrun (`LOCAL_RANK` set), None and "cuda" mean this rank's GPU `cuda:LOCAL_RANK`; an explicit
    "cuda:K" is kept. A CUDA device becomes torch's current device under torchrun, so NCCL and torch's
    allocations follow it.
    """
    if device is not None and device != "cpu" and device != "cuda" and not _is_indexed_cuda(device):
        raise DeviceError(f"device={device!r} is not 'cpu', 'cuda' or 'cuda:K'")
    if device == "cpu":
        return device
    view = cuda_view()
    if view.warp_blind:
        raise DeviceError(warp_blind_message(view))
    if view.warp_gpus == 0:
        if device is None:
            return "cpu"
        raise DeviceError(f"device={device!r} was requested but Warp finds no CUDA GPU on this machine; use "
                          "device='cpu' (`python runners/doctor.py` says why)")
    if view.torch_gpus == 0:
        raise DeviceError(f"Warp sees {view.warp_gpus} GPU(s) but torch {view.torch_version} cannot use them (a CPU "
                          "build or a CUDA mismatch): install a CUDA build of torch (https://pytorch.org/get-started), "
                          "or pass --device cpu to run on the CPU anyway")
    local_rank = os.environ.get("LOCAL_RANK")
    if device is not None and ":" in device:
        index = int(device.split(":")[1])
    elif local_rank is not None:
        if not local_rank.isdigit():
            raise DeviceError(f"LOCAL_RANK={local_rank!r} is not a GPU index")
        index = int(local_rank)
    else:
        index = 0
    count = min(view.warp_gpus, view.torch_gpus)
    if index >= count:
        rank = f" (LOCAL_RANK={local_rank})" if local_rank is not None and ":" not in (device or "") else ""
        raise DeviceError(f"device cuda:{index}{rank} does not exist: this machine has {count} GPU(s)")
    if local_rank is not None:
        torch.cuda.set_device(index)
    return f"cuda:{index}"


def _is_indexed_cuda(device: str) -> bool:
    prefix, _, index = device.partition(":")
    return prefix == "cuda" and index.isdigit()


def device_memory(device: str) -> dict[str, int]:
    """Bytes of GPU memory on a CUDA `device`: torch's peak allocation, Warp's memory-pool use now and at its
    high-water mark (mujoco_warp's arrays and scratch, mmimic's kernels' buffers), and what the whole device has
    in use now by every allocator and process (`torch.cuda.mem_get_info`)."""
    index = torch.device(device).index or 0
    free, total = torch.cuda.mem_get_info(index)
    warp_pool = wp.is_mempool_enabled(device)
    return {
        "torch_peak": torch.cuda.max_memory_allocated(index),
        "warp_current": wp.get_mempool_used_mem_current(device) if warp_pool else 0,
        "warp_peak": wp.get_mempool_used_mem_high(device) if warp_pool else 0,
        "device_used": total - free,
    }
