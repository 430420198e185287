"""Anonymize a video frame by frame: detect, carry detections over short gaps (tracker), obfuscate, verify.

Pure over frames: the caller (`flows.video_anonymize`) reads and writes the files. A video is all or
nothing: when any frame fails (its detection, obfuscation or verification; fail closed, as for an image),
the video is quarantined and the reason names the failed frame ranges. Dropping a frame would change the
timing and leave the neighbours' identities in a shortened clip, so no partial video is written.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from tasks.anonymize.engine import AnonymizedImage
from tasks.anonymize.tracker import IouTracker
from tasks.types import Detections, Image


@dataclass(frozen=True)
class FrameOutcome:
    """One frame: its index, the anonymized frame (None when it failed) and what was redacted."""

    index: int
    image: NDArray[np.uint8] | None
    detected: int  # boxes the detectors found in this frame
    carried: int  # boxes the tracker carried over from earlier frames
    moving: int  # foreground blobs of the motion cue (`tasks.anonymize.motion`), redacted as body
    categories: tuple[str, ...]
    reason: str | None
    escalated: int = 0  # boxes redone in escalation rounds (`AnonymizedImage.escalated`)
    masked: int = 0  # boxes filled black in the last rounds (`AnonymizedImage.masked`)

    def as_row(self) -> dict[str, object]:
        """The frame's manifest row (no pixels, no recognised text)."""
        return {"frame": self.index, "status": "ok" if self.image is not None else "failed",
                "detected": self.detected, "carried": self.carried, "moving": self.moving,
                "categories": sorted(set(self.categories)), "reason": self.reason,
                "escalated": self.escalated, "masked": self.masked}  # fmt: skip


Anonymize = Callable[[Image, Callable[[Detections], Detections], int], AnonymizedImage]


def anonymize_frames(frames: Iterable[Image], *, anonymize: Anonymize, tracker: IouTracker,
                     motion: Callable[[Image], Detections] | None = None) -> Iterator[FrameOutcome]:  # fmt: skip
    """Anonymize `frames` in order; `anonymize(frame, carry, index)` is `anonymize_image` with the stage's
    detectors and options bound, `carry` the tracker's step for that frame. `motion` (a
    `MotionDetector`), when given, sees every raw frame in order; its boxes are redacted with the
    carried ones (not tracked: the cue is recomputed each frame).

    Raises:
        InvalidInputError, AnonymizationError: from `motion` (a frame of another size; OpenCV failed):
            the video cannot be judged frame by frame any more.
    """
    for index, frame in enumerate(frames):
        counts: dict[str, int] = {}
        moving = motion(frame) if motion is not None else Detections.empty()

        def carry(found: Detections, shape: tuple[int, int] = frame.shape[:2], counts: dict[str, int] = counts,
                  moving: Detections = moving) -> Detections:  # fmt: skip
            carried = tracker.update(found, shape=shape)
            counts["detected"], counts["carried"] = len(found), len(carried)
            return Detections.concat([carried, moving])

        result = anonymize(frame, carry, index)
        if "detected" not in counts:  # detection failed before the tracker saw the frame: it missed a frame
            tracker.update(Detections.empty(), shape=frame.shape[:2])
        yield FrameOutcome(index, result.image, counts.get("detected", 0), counts.get("carried", 0), len(moving),
                           result.detections.category, result.quarantine_reason, result.escalated,
                           result.masked)  # fmt: skip


def frame_ranges(indices: Iterable[int]) -> list[tuple[int, int]]:
    """Sorted frame indices as inclusive (first, last) runs: [3, 4, 5, 9] → [(3, 5), (9, 9)]."""
    runs: list[tuple[int, int]] = []
    for i in sorted(set(indices)):
        if runs and i == runs[-1][1] + 1:
            runs[-1] = (runs[-1][0], i)
        else:
            runs.append((i, i))
    return runs


def describe_ranges(runs: list[tuple[int, int]]) -> str:
    """'frames 3-5, 9' for a reason line."""
    return "frames " + ", ".join(f"{a}-{b}" if a != b else str(a) for a, b in runs)
