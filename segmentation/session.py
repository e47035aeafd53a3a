"""Running a segmentation model on a batch, with rembg's maths applied per image.

Arrays in, arrays out: the API side shrinks each photo to the model's square input as uint8
(`optimizer.pipeline.model_input`), which is what crosses between the services; this side
normalises, runs onnxruntime and returns, per image, a uint8 mask at the model's resolution
and the foreground coverage judged on the raw output (`segmentation.foreground`).
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import onnxruntime as ort

from segmentation.catalog import ModelSpec
from segmentation.foreground import MASK, coverage, to_records


def session_options(threads: int, spinning: bool = False) -> ort.SessionOptions:
    options = ort.SessionOptions()
    # Spinning keeps idle intra-op threads busy-waiting for the next operator: faster for a
    # model alone on its cores, CPU taken from the API worker when they share them.
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.add_session_config_entry("session.intra_op.allow_spinning", "1" if spinning else "0")
    # Memory patterns are planned per input shape and kept: more memory per worker at the same
    # speed (docs/performance.md, "Smaller choices").
    options.enable_mem_pattern = False
    options.log_severity_level = 3
    return options


class SegmentationSession:
    """onnxruntime sessions for one model: `segment` takes a uint8 batch and returns one
    record (mask and coverage) per image; `predict` returns the masks alone.

    A lone image runs on one session with `threads` intra-op threads (the lowest latency).
    With `parallel_runs` > 1 a batch is split over that many single-thread sessions running
    side by side in threads (onnxruntime releases the GIL): on a CPU, separate single-thread
    runs get more images per second than one run spread over the same cores, so one worker
    gives the latency of several threads and the throughput of several processes.
    """

    def __init__(
        self,
        model_path: Path,
        spec: ModelSpec,
        threads: int = 1,
        run_batch: int = 1,
        spinning: bool = False,
        parallel_runs: int = 1,
    ) -> None:
        ort.disable_telemetry_events()
        self.spec = spec
        self.run_batch = run_batch
        self._session = self._open(model_path, threads, spinning)
        self._input_name = self._session.get_inputs()[0].name
        self._mask_output = self._session.get_outputs()[0].name
        self._lanes = (
            [self._open(model_path, 1, spinning) for _ in range(parallel_runs)]
            if parallel_runs > 1
            else []
        )
        self._pool = ThreadPoolExecutor(parallel_runs) if self._lanes else None

    @staticmethod
    def _open(model_path: Path, threads: int, spinning: bool) -> ort.InferenceSession:
        return ort.InferenceSession(
            str(model_path),
            sess_options=session_options(threads, spinning),
            providers=["CPUExecutionProvider"],
        )

    def segment(self, images: np.ndarray) -> np.ndarray:
        """N x S x S x 3 uint8 photos -> N records (`foreground.records_dtype`): each image's
        S x S uint8 mask and coverage, `run_batch` images per run.

        On a CPU a larger run is no faster, and onnxruntime's arena keeps the memory of the
        largest run for good (docs/performance.md, "Smaller choices"); on a GPU raise it to
        the batch size.
        """
        if self._pool is None or len(images) == 1:
            return self._segment_on(self._session, images)
        shares = np.array_split(images, min(len(self._lanes), len(images)))
        return np.concatenate(list(self._pool.map(self._segment_on, self._lanes, shares)))

    def predict(self, images: np.ndarray) -> np.ndarray:
        """N x S x S x 3 uint8 photos -> N x S x S uint8 masks."""
        return self.segment(images)[MASK]

    def _segment_on(self, session: ort.InferenceSession, images: np.ndarray) -> np.ndarray:
        chunks = range(0, len(images), self.run_batch)
        return np.concatenate([self._run(session, images[i : i + self.run_batch]) for i in chunks])

    def probabilities(self, images: np.ndarray) -> np.ndarray:
        """N x S x S x 3 uint8 photos -> the model's raw N x S x S float32 output, 0..1."""
        return self._probabilities(self._session, images)

    def _run(self, session: ort.InferenceSession, images: np.ndarray) -> np.ndarray:
        predictions = self._probabilities(session, images)
        return to_records(to_masks(predictions), coverage(predictions))

    def _probabilities(self, session: ort.InferenceSession, images: np.ndarray) -> np.ndarray:
        outputs = session.run([self._mask_output], {self._input_name: normalize(images, self.spec)})
        return outputs[0][:, 0, :, :]


def normalize(images: np.ndarray, spec: ModelSpec) -> np.ndarray:
    """rembg's normalisation of N x S x S x 3 uint8 photos, each image scaled by its own maximum
    (not the batch's): (pixel / peak - mean) / std, as one multiply-add per channel straight
    into the model's N x 3 x S x S float32 layout (docs/performance.md, "Smaller choices")."""
    count, height, width, _ = images.shape
    mean = np.asarray(spec.mean, np.float32)
    std = np.asarray(spec.std, np.float32)
    peaks = np.maximum(images.max(axis=(1, 2, 3)), 1).astype(np.float32)
    scale = 1.0 / (peaks[:, np.newaxis] * std)  # per image and channel
    normalized = np.empty((count, 3, height, width), np.float32)
    for channel in range(3):
        np.multiply(
            images[..., channel],
            scale[:, channel, np.newaxis, np.newaxis],
            out=normalized[:, channel],
        )
        normalized[:, channel] -= mean[channel] / std[channel]
    return normalized


def to_masks(predictions: np.ndarray) -> np.ndarray:
    """Stretch each prediction to 0..255 on its own, truncating as rembg does."""
    low = predictions.min(axis=(1, 2), keepdims=True)
    span = predictions.max(axis=(1, 2), keepdims=True) - low
    stretched = np.divide(predictions - low, span, out=np.zeros_like(predictions), where=span > 0)
    return (stretched * 255).astype(np.uint8)
