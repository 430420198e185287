"""What the detectors share: backend errors, ONNX session options, cascade hits as scored boxes."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

import cv2
import numpy as np
from numpy.typing import NDArray
from onnxruntime.capi import onnxruntime_pybind11_state as ort_state

from tasks.errors import AnonymizationError, InvalidInputError

T = TypeVar("T")

# Errors the backends raise on a bad input or a broken model; anything else is a bug in our code.
BACKEND_ERRORS: tuple[type[Exception], ...] = (
    cv2.error,
    ort_state.Fail,
    ort_state.InvalidArgument,
    ort_state.RuntimeException,
)
NMS_IOU = 0.3  # every detector's non-maximum suppression IoU


def session_options(threads: int) -> Any:
    """onnxruntime session options: `threads` intra-op threads, one inter-op thread, warnings silenced."""
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    opts.log_severity_level = 3  # the bundled CenterFace model warns about every BatchNorm initializer
    return opts


def cascade_dets(rects: Any, hits: Any, *, neighbors: int, scale: float = 1.0) -> NDArray[np.float64]:
    """(N, 5) [x0, y0, x1, y1, score] from a Haar cascade's `detectMultiScale2` (x, y, w, h) rects and
    neighbour counts, in pixels divided by `scale`; score = hits / (hits + neighbors), in (0, 1)."""
    r = np.asarray(rects, np.float64).reshape(-1, 4) / scale
    n = np.asarray(hits, np.float64).reshape(-1)
    return np.asarray(np.c_[r[:, :2], r[:, :2] + r[:, 2:], n / (n + neighbors)], np.float64)


def nonempty_boxes(dets: NDArray[np.float64], *, width: int, height: int) -> NDArray[np.bool_]:
    """Boxes that keep a positive area once clipped to the image (so `pad_boxes` drops none of them)."""
    x0, x1 = dets[:, 0].clip(0, width), dets[:, 2].clip(0, width)
    y0, y1 = dets[:, 1].clip(0, height), dets[:, 3].clip(0, height)
    return np.asarray((np.ceil(x1) > np.floor(x0)) & (np.ceil(y1) > np.floor(y0)), bool)


class DetectorSet(dict[str, Any]):
    """name → detector (what `build_detectors` returns) whose members run `threads` at a time on one
    image (`each_detector`): a process that has the machine to itself (the CLI with one job) then uses a
    second core on the face detector while the OCR reads, and the face detector's members (CenterFace,
    the cascades) run side by side as well. Each member stays on one thread; onnxruntime
    and OpenCV release the GIL while they compute. With one thread (the default) they run in order."""

    def __init__(self, detectors: Mapping[str, Any], *, threads: int = 1) -> None:
        if threads < 1:
            raise InvalidInputError(f"detectors: threads must be >= 1, got {threads}")
        super().__init__(detectors)
        self.threads = threads
        for (
            detector
        ) in self.values():  # a detector made of members (the face detector) runs them side by side too
            if hasattr(detector, "member_threads"):
                detector.member_threads = threads


def each_detector(detectors: Mapping[str, Any], run: Callable[[Any], T]) -> list[T]:
    """`run(detector)` for every detector, in order (on `DetectorSet.threads` threads at once).

    Raises:
        AnonymizationError: the first detector, in order, that failed (or was given a bad image); the
            message names it.
    """
    items = list(detectors.items())
    threads = min(int(getattr(detectors, "threads", 1)), len(items))
    if threads <= 1:
        outcomes: list[Any] = [_attempt(run, d) for _, d in items]
    else:
        with ThreadPoolExecutor(threads) as pool:
            outcomes = list(pool.map(lambda d: _attempt(run, d), [d for _, d in items]))
    for (name, _), outcome in zip(items, outcomes, strict=True):
        if isinstance(outcome, _Failed):
            raise AnonymizationError(f"{name}: {outcome.error}") from outcome.error
    return outcomes


class _Failed:
    def __init__(self, error: Exception) -> None:
        self.error = error


def _attempt(run: Callable[[Any], T], detector: Any) -> T | _Failed:
    try:
        return run(detector)
    except (AnonymizationError, InvalidInputError) as err:
        return _Failed(err)
