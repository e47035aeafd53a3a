"""The model service as the application layer sees it, and an in-process stand-in.

`ModelService` is what the request flow needs from whatever runs the model: BentoML's
dependency client in `service.py`, or `InProcessModels` (the same onnxruntime sessions in this
process) for tests and benchmarks without a server.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Protocol

import numpy as np

from segmentation import SegmentationSession


class ModelService(Protocol):
    async def segment(self, batch: np.ndarray, model: str | None) -> np.ndarray:
        """N x S x S x 3 uint8 photos -> N records of an S x S uint8 mask and its foreground
        coverage (`segmentation.foreground`); `None` is the default model."""
        ...

    async def available(self) -> dict[str, int]:
        """Models that can run: name -> square input size."""
        ...

    async def ping(self) -> str:
        """The served model's tag; answering at all proves the model is loaded."""
        ...


class InProcessModels:
    """Sessions in this process, run in worker threads so the event loop stays free."""

    def __init__(self, sessions: Mapping[str, SegmentationSession], default: str) -> None:
        self.sessions = dict(sessions)
        self.default = default

    async def segment(self, batch: np.ndarray, model: str | None) -> np.ndarray:
        session = self.sessions[model or self.default]
        return await asyncio.to_thread(session.segment, batch)

    async def available(self) -> dict[str, int]:
        return {name: session.spec.input_size for name, session in self.sessions.items()}

    async def ping(self) -> str:
        return self.default
