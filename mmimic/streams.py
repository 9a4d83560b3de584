"""Warp work on torch's current stream: one cached `wp.Stream` per torch stream, kept by its owner.

Torch reads and writes the simulator's and the environment's memory through zero-copy views, so
every Warp launch or graph replay on that memory must run on the stream torch is using, or
the two race (e.g. under `torch.cuda.stream(s)`). On a CPU device there are no streams and the
scope does nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
import warp as wp


class TorchStreams:
    """Warp streams wrapping the torch streams of one device, each made once and then reused.

    `make` turns a torch stream into a Warp stream (`wp.stream_from_torch`; tests pass a stand-in).
    The cache belongs to this object, so two simulators never share or see each other's streams.
    """

    def __init__(self, device: torch.device, make: Callable[[Any], wp.Stream] = wp.stream_from_torch) -> None:
        self.device = torch.device(device)
        self._make = make
        self._streams: dict[int, wp.Stream] = {}

    def warp_stream(self, torch_stream: Any) -> wp.Stream:
        """The Warp stream for `torch_stream` (anything with a `cuda_stream` handle), made on first use."""
        handle = int(torch_stream.cuda_stream)
        stream = self._streams.get(handle)
        if stream is None:
            stream = self._streams[handle] = self._make(torch_stream)
        return stream

    def current(self) -> wp.Stream | None:
        """The Warp stream of torch's current stream on the device; None on a CPU device."""
        if self.device.type != "cuda":
            return None
        return self.warp_stream(torch.cuda.current_stream(self.device))

    def scope(self) -> wp.ScopedStream:
        """Make Warp launch on torch's current stream (ordered after the torch work already queued there)."""
        return wp.ScopedStream(self.current())
