"""Region verification: re-run the detectors only around what the obfuscation changed.

The detectors are deterministic, so on pixels that did not change, far from any change, they report
what the first pass reported. The verification pass therefore runs on windows around the changed
boxes (each grown by its own size, at least `MIN_MARGIN` px, on every side) instead of on the whole
image, and a detection counts as a residual only when it lies in such a window. (Not only on a changed
box: on 300 builtin images the whole-image pass found one new face just below an inpainted plate,
overlapping no changed box.)

- detectors whose findings depend on a whole text line (`context = "row"`: OCR, where the PII policy
  reads a line's neighbouring pieces) see full-width bands of rows; the others (`"box"`) see squares;
- window corners snap to a 32 px grid (the networks' stride), so a crop is not a shifted or stretched
  copy of what the whole-image pass saw;
- overlapping windows are merged, so nothing is cut twice or counted twice;
- a detector that rescales its input by the image's size (OCR's short-side limit, `Downscaled`)
  offers `detect_crop(crop, full_shape=)`, which sees the crop at the scale the whole image gets;
- when the windows cover at least `WHOLE_FRACTION` of the image, or a pixel changed outside every
  box, the detector runs on the whole image instead (exact, and no slower).

`anonymize.verify: whole` keeps the whole-image pass; a test over 300 builtin images checks that both
modes make the same quarantine decisions.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
from numpy.typing import NDArray

from tasks.anonymize.detectors.common import each_detector
from tasks.boxes import box_mask, iou_matrix
from tasks.types import Detections, Detector, Image

MIN_MARGIN = 16  # px: at least the 20–24 px window of a Haar cascade around a small box
WHOLE_FRACTION = 0.5  # windows covering this much of the image: one whole-image pass instead
# window corners snap outwards to this grid: CenterFace and OCR's DB net have stride 32 and resize their
# input to multiples of 32, so a crop on the grid keeps the whole image's cell grid and is not stretched
ALIGN = 32


def context_of(detector: Detector) -> str:
    """ "row" for detectors that read whole text lines, else "box"."""
    return str(getattr(detector, "context", "box"))


def windows(boxes: NDArray[np.int64], *, width: int, height: int, context: str) -> NDArray[np.int64]:
    """(K, 4) merged [x0, y0, x1, y1] windows around `boxes`: each box grown by max(its side, MIN_MARGIN)
    on every side ("box"), or the full-width band of its rows grown by max(its height, MIN_MARGIN) ("row"),
    corners snapped outwards to the `ALIGN` grid and clipped to the image."""
    b = np.asarray(boxes, np.int64).reshape(-1, 4)
    if not len(b):
        return b
    w, h = b[:, 2] - b[:, 0], b[:, 3] - b[:, 1]
    if context == "row":
        m = np.maximum(h, MIN_MARGIN)
        grown = np.stack([np.zeros_like(m), b[:, 1] - m, np.full_like(m, width), b[:, 3] + m], axis=1)
    else:
        m = np.maximum(np.maximum(w, h), MIN_MARGIN)
        grown = np.stack([b[:, 0] - m, b[:, 1] - m, b[:, 2] + m, b[:, 3] + m], axis=1)
    snapped = np.concatenate([grown[:, :2] // ALIGN * ALIGN, -(-grown[:, 2:] // ALIGN) * ALIGN], axis=1)
    return merge(np.clip(snapped, 0, [width, height, width, height]))


def merge(boxes: NDArray[np.int64]) -> NDArray[np.int64]:
    """Replace every group of overlapping (or touching) boxes by their bounding box, until none overlap."""
    out = [list(map(int, b)) for b in boxes]
    changed = True
    while changed:
        changed = False
        for i in range(len(out)):
            for j in range(i + 1, len(out)):
                a, c = out[i], out[j]
                if a[0] <= c[2] and c[0] <= a[2] and a[1] <= c[3] and c[1] <= a[3]:
                    out[i] = [min(a[0], c[0]), min(a[1], c[1]), max(a[2], c[2]), max(a[3], c[3])]
                    del out[j]
                    changed = True
                    break
            if changed:
                break
    return np.asarray(out, np.int64).reshape(-1, 4)


def covers_changes(before: Image, after: Image, boxes: NDArray[np.int64]) -> bool:
    """True when every pixel that differs between `before` and `after` lies inside one of `boxes`."""
    changed = np.any(before != after, axis=2)
    return not bool((changed & ~box_mask(np.asarray(boxes, np.int64).reshape(-1, 4), changed.shape)).any())


def detect_crop(detector: Detector, crop: Image, *, full_shape: tuple[int, int]) -> Detections:
    """`detector` on a crop of an image of `full_shape` (H, W), at the scale the whole image would get."""
    fn = getattr(detector, "detect_crop", None)
    return fn(crop, full_shape=full_shape) if fn is not None else detector(crop)


def overlapping(dets: Detections, boxes: NDArray[np.int64]) -> Detections:
    """The detections whose box overlaps one of `boxes` with a positive area."""
    b = np.asarray(boxes, np.int64).reshape(-1, 4)
    if not len(dets) or not len(b):
        return dets.select(np.zeros(len(dets), bool))
    return dets.select(np.asarray((iou_matrix(dets.boxes, b) > 0).any(axis=1), bool))


def detect_regions(output: Image, changed: NDArray[np.int64], detector: Detector) -> tuple[Detections, bool]:
    """What `detector` finds on `output` around the `changed` boxes, in full-image coordinates, and
    whether it ran on windows (False: the windows covered most of the image, so it ran on all of it).

    Only detections overlapping a window are returned: a change can make a detector fire beside it, not
    only on it (a face's evidence reaches past its box), but not farther than a box size away.
    """
    height, width = output.shape[:2]
    win = windows(changed, width=width, height=height, context=context_of(detector))
    area = int(((win[:, 2] - win[:, 0]) * (win[:, 3] - win[:, 1])).sum())
    if area >= WHOLE_FRACTION * width * height:
        return overlapping(detector(output), win), False
    parts = []
    for x0, y0, x1, y1 in win:
        found = detect_crop(detector, np.ascontiguousarray(output[y0:y1, x0:x1]), full_shape=(height, width))
        # clipped to the window: a misbehaving detector's box must not reach outside what it was shown
        shifted = np.clip(found.boxes + np.array([x0, y0, x0, y0]), [x0, y0, x0, y0], [x1, y1, x1, y1])
        moved = Detections(shifted.astype(np.int64), found.scores, found.category, found.text)
        parts.append(moved.select((shifted[:, 2] > shifted[:, 0]) & (shifted[:, 3] > shifted[:, 1])))
    return Detections.concat(parts), True


def detect_changed(
    before: Image, output: Image, changed: NDArray[np.int64], detectors: Mapping[str, Detector]
) -> tuple[dict[str, Detections], bool]:
    """Every detector's residual candidates around the `changed` boxes (name → detections), and
    whether any ran on windows. When a pixel changed outside the boxes, every detector runs on the
    whole image and everything it finds counts (the `whole` mode).

    Raises:
        AnonymizationError: a detector failed; the message names it.
    """
    whole = not covers_changes(before, output, changed)
    runs = each_detector(
        detectors, lambda det: (det(output), False) if whole else detect_regions(output, changed, det)
    )
    return {name: found for name, (found, _) in zip(detectors, runs, strict=True)}, any(
        used for _, used in runs
    )
