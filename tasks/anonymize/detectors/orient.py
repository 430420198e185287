"""Orientation: a detector that also looks at the image turned by 90, 180 or 270 degrees.

The detectors see upright content only: no face detector here finds a face lying on its side, and the
OCR detector reads an upside-down line as an unknown string. `Oriented` wraps a detector: it runs it on
the image as it is, asks a cheap cue which quarter-turns are worth a pass, runs it on each such turned
copy and maps the boxes back exactly (`unrotate_boxes`). Mode "all" skips the cue and looks all 4 ways.

Cues (each costs a small fraction of a detection pass, so an upright image costs about what it did):
- `FaceTurnCue` (faces): YuNet on the upright pass's confident faces, each alone, turned 4 ways (a face
  that scores better turned was found lying down), or, with no confident face, on a thumbnail (longer side
  160 px) turned 3 ways; a turn where a face scores >= 0.6 gets a pass by the full face detector.
- `TextTurnCue` (OCR): the geometry of the lines the upright pass found: tall thin lines mean a page on
  its side (90 / 270); the recogniser reading those lines both ways says which side, and whether wide
  lines are upside down (180). (rapidocr's direction classifier, PP-OCR `cls`, was tried as the judge:
  on rendered lines it stayed under its own 0.9 threshold either way.)

Faces found on a turned copy are added to the upright ones (`combine="union"`). For text the turned read
replaces the upright read of the same lines (`combine="replace"`): an upright read of a sideways or
upside-down line is garbage, which the PII policy redacts as unknown; upright boxes that no turned box
covers stay (fail closed).

The engine is unchanged: the first pass calls `detect_and_keep`; verification calls the detector (or
`detect_crop` on windows) on the output. The quarter-turns the first pass chose are remembered for an
image of that shape, and verification looks at those turns (on the output, the redacted face that made
the cue fire is gone), so a sideways face is verified sideways, and the cue's cost is paid once. A caller
that only calls the detector (no `detect_and_keep`) gets the cue on every call.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Literal

import cv2
import numpy as np
from numpy.typing import NDArray

from tasks.errors import AnonymizationError, InvalidInputError
from tasks.types import Detections, Detector, Image, check_image

Turns = tuple[int, ...]  # quarter-turns counter-clockwise (np.rot90's k), among 1, 2, 3
Cue = Callable[[Image, Detections, Detections], Turns]  # (image, upright pass: to redact, kept) -> turns
Mode = Literal["off", "cue", "all"]
ALL_TURNS: Turns = (1, 2, 3)
_REPLACED = 0.5  # an upright box lying this much inside a turned pass's boxes is that pass's to judge


def rotate(image: Image, k: int) -> Image:
    """`image` turned counter-clockwise by k quarter-turns (np.rot90), as a contiguous array."""
    return np.ascontiguousarray(np.rot90(image, k % 4))


def turned_shape(shape: tuple[int, int], k: int) -> tuple[int, int]:
    """(H, W) of an image of `shape` (H, W) after k quarter-turns."""
    return (shape[1], shape[0]) if k % 2 else (shape[0], shape[1])


def unrotate_boxes(boxes: NDArray[Any], k: int, *, shape: tuple[int, int]) -> NDArray[np.int64]:
    """Map (N, 4) [x0, y0, x1, y1] boxes (half-open, integer pixels) found on `rotate(image, k)` back to
    `image`, whose (H, W) is `shape`. Exact: the box covers the same pixels.

    np.rot90 by one turn maps pixel (x, y) of the image to (y, W - 1 - x); a half-open span [a, b) of
    the turned image's rows is the original's columns [W - b, W - a).
    """
    h, w = shape
    b = np.asarray(boxes, np.int64).reshape(-1, 4)
    x0, y0, x1, y1 = b[:, 0], b[:, 1], b[:, 2], b[:, 3]
    mapped = {
        0: (x0, y0, x1, y1),
        1: (w - y1, x0, w - y0, x1),
        2: (w - x1, h - y1, w - x0, h - y0),
        3: (y0, h - x1, y1, h - x0),
    }[k % 4]
    return np.stack(mapped, axis=1).astype(np.int64).reshape(-1, 4)


def rotate_boxes(boxes: NDArray[Any], k: int, *, shape: tuple[int, int]) -> NDArray[np.int64]:
    """The inverse of `unrotate_boxes`: boxes of an image of `shape` (H, W) on `rotate(image, k)`."""
    return unrotate_boxes(boxes, (4 - k % 4) % 4, shape=turned_shape(shape, k))


def _unturned(found: Detections, k: int, shape: tuple[int, int]) -> Detections:
    return Detections(unrotate_boxes(found.boxes, k, shape=shape), found.scores, found.category, found.text)


def _inside_union(
    boxes: NDArray[np.int64], others: NDArray[np.int64], shape: tuple[int, int]
) -> NDArray[np.bool_]:
    """Which `boxes` lie >= `_REPLACED` of their area inside the union of `others` (an image of `shape`)."""
    if not len(boxes) or not len(others):
        return np.zeros(len(boxes), bool)
    mask = np.zeros(shape, bool)
    for x0, y0, x1, y1 in others:
        mask[max(0, y0) : max(0, y1), max(0, x0) : max(0, x1)] = True
    share = [mask[max(0, y0):max(0, y1), max(0, x0):max(0, x1)].mean() if x1 > x0 and y1 > y0 else 1.0
             for x0, y0, x1, y1 in boxes]  # fmt: skip
    return np.asarray(np.asarray(share) >= _REPLACED, bool)


def _crop(detector: Detector, crop: Image, *, full_shape: tuple[int, int]) -> Detections:
    """`tasks.anonymize.regions.detect_crop` (not imported: regions imports this package)."""
    fn = getattr(detector, "detect_crop", None)
    return fn(crop, full_shape=full_shape) if fn is not None else detector(crop)


def _first(detector: Detector, image: Image) -> tuple[Detections, Detections]:
    keep = getattr(detector, "detect_and_keep", None)
    return keep(image) if keep is not None else (detector(image), Detections.empty())


class Oriented:
    """`inner` on the image and on the quarter-turns `cue` picks (mode "cue") or on all 3 (mode "all").

    Args:
        inner: the detector.
        mode: "cue" or "all".
        cue: picks the turns in mode "cue" (required there).
        combine: "union" adds the turned passes' detections; "replace" drops the upright ones lying
            mostly inside a turned pass's boxes (found or kept): text, whose upright read of a turned line
            is garbage.
    """

    def __init__(self, inner: Detector, *, mode: Mode, cue: Cue | None = None,
                 combine: Literal["union", "replace"] = "union") -> None:  # fmt: skip
        if (
            mode not in ("cue", "all")
            or (mode == "cue" and cue is None)
            or combine not in ("union", "replace")
        ):
            raise InvalidInputError(
                f"orientation: mode must be cue (with a cue) or all, combine union or replace; got {mode}, {combine}"
            )
        self.inner, self.mode, self.cue, self.combine = inner, mode, cue, combine
        self._chosen: tuple[tuple[int, int], Turns] | None = None  # (shape, turns) of the last first pass

    def __getattr__(self, name: str) -> Any:
        """Anything else is the inner detector's (its params, `read`, its members), so callers that
        inspect a built detector see the one they configured."""
        if name.startswith("__") or name in ("inner", "_chosen"):
            raise AttributeError(name)
        return getattr(self.inner, name)

    @property
    def context(self) -> str:
        """The inner detector's verification context (`tasks.anonymize.regions`)."""
        return str(getattr(self.inner, "context", "box"))

    @property
    def member_threads(self) -> int:
        """The inner detector's `member_threads` (`DetectorSet` sets it); AttributeError when it has none."""
        return int(self.inner.member_threads)  # type: ignore[attr-defined]

    @member_threads.setter
    def member_threads(self, value: int) -> None:
        self.inner.member_threads = value  # type: ignore[attr-defined]

    def turns(self, image: Image, found: Detections, kept: Detections) -> Turns:
        """The quarter-turns worth a pass on `image`, given what the upright pass found (to redact, kept)."""
        if self.mode == "all":
            return ALL_TURNS
        assert self.cue is not None  # checked in __init__
        return tuple(sorted(set(self.cue(image, found, kept)) & set(ALL_TURNS)))

    def _remembered(self, shape: tuple[int, int]) -> Turns:
        if self.mode == "all":
            return ALL_TURNS
        return self._chosen[1] if self._chosen is not None and self._chosen[0] == shape else ()

    def detect_and_keep(self, image: Image) -> tuple[Detections, Detections]:
        """The first pass: (to redact, kept lines) over the upright image and the turns the cue picks,
        in the image's pixels. Remembers the turns for the verification of this image's output.

        Raises:
            InvalidInputError, AnonymizationError: as the inner detector.
        """
        shape = check_image(image, name="Oriented").shape[:2]
        found, kept = _first(self.inner, image)
        turns = self.turns(image, found, kept)
        self._chosen = (shape, turns)
        return self._merged(image, (found, kept), turns, lambda im: _first(self.inner, im))

    def __call__(self, image: Image) -> Detections:
        """What to redact in `image`: the upright pass and the turns the cue picks; or, after a first pass
        (`detect_and_keep`) on an image of this shape, the turns that pass chose: the engine's
        whole-image verification of its output (where the cue, its face redacted, would not fire again).

        Raises:
            InvalidInputError, AnonymizationError: as the inner detector.
        """
        shape = check_image(image, name="Oriented").shape[:2]
        found, kept = _first(self.inner, image)
        verifying = self._chosen is not None and self._chosen[0] == shape
        turns = self._remembered(shape) if verifying else self.turns(image, found, kept)
        return self._merged(image, (found, kept), turns, lambda im: _first(self.inner, im))[0]

    def detect_crop(self, crop: Image, *, full_shape: tuple[int, int]) -> Detections:
        """`self` on a crop of an image of `full_shape` (H, W) at the whole image's scale: the inner
        detector's `detect_crop` on the crop and on each turn the first pass on an image of that shape chose
        (mode "all": every turn)."""
        check_image(crop, name="Oriented")

        def run(k: int) -> Any:
            return lambda im: (
                _crop(self.inner, im, full_shape=turned_shape(full_shape, k)),
                Detections.empty(),
            )

        # crops exist for verification only: they get the first pass's turns, no cue (on the output the
        # redacted face that made it fire is gone, and a cue per window would cost more than the windows)
        return self._merged_turns(crop, run(0)(crop), self._remembered(full_shape), run)[0]

    def _merged(self, image: Image, upright: tuple[Detections, Detections], turns: Turns,
                run: Callable[[Image], tuple[Detections, Detections]]) -> tuple[Detections, Detections]:  # fmt: skip
        return self._merged_turns(image, upright, turns, lambda k: run)

    def _merged_turns(self, image: Image, upright: tuple[Detections, Detections], turns: Turns,
                      run: Callable[[int], Callable[[Image], tuple[Detections, Detections]]]) -> tuple[Detections, Detections]:  # fmt: skip
        """The upright pass with each turn's pass (`run(k)` on the turned copy), boxes in `image`'s pixels."""
        shape = image.shape[:2]
        found, kept = upright
        turned_found, turned_kept = [], []
        for k in turns:
            f, kp = run(k)(rotate(image, k))
            turned_found.append(_unturned(f, k, shape))
            turned_kept.append(_unturned(kp, k, shape))
        if not turns:
            return found, kept
        more, more_kept = Detections.concat(turned_found), Detections.concat(turned_kept)
        if self.combine == "replace":
            judged = np.concatenate([more.boxes, more_kept.boxes]).reshape(-1, 4)
            found = found.select(~_inside_union(found.boxes, judged, shape))
            kept = kept.select(~_inside_union(kept.boxes, judged, shape))
        return Detections.concat([found, more]), Detections.concat([kept, more_kept])


class FaceTurnCue:
    """Which quarter-turns show faces the upright pass could not see well, from YuNet on small images.

    - The upright pass found faces scoring >= `upright`: each of the best `faces` of them is looked at
      alone (a crop, the face `crop_px` px) turned 0-3 times; a turn gets a pass when one such face scores
      >= `score` there and more than upright. (YuNet finds some faces lying on their side, with lower
      scores: in a turned group photo the upright pass finds some faces and misses others.) When none
      fires but weaker faces were found too, the thumbnail below decides, a turn counting only where it
      beats the upright thumbnail. An upright photo costs a few tiny YuNet runs.
    - Otherwise YuNet runs on a thumbnail (longer side `side` px, never enlarged) turned 1-3 times; a
      turn whose best face scores >= `score` gets a pass. A 160 px thumbnail is cheap, finds the turn of
      every group photo and no needless turn on upright scenes; a larger one finds smaller faces for several
      times the cost and fires needless passes (numbers: docs/measurements-archive.md#turned-photo-cue).
      Smaller turned faces are `thorough`'s (orientation "all").

    Args:
        side: the thumbnail's longer side in pixels.
        score: YuNet's score (0-1) at which a turn gets a pass.
        upright: found faces scoring at least this (the face detector's score) are looked at alone.
        faces: at most this many found faces are looked at.
        crop_px: the face's longer side in its crop, in pixels.
        threads: YuNet's OpenMP threads.
    """

    def __init__(self, *, side: int = 160, score: float = 0.6, upright: float = 0.6, faces: int = 3,
                 crop_px: int = 64, threads: int = 1) -> None:  # fmt: skip
        if side < 32 or not 0 < score < 1 or not 0 < upright <= 1 or faces < 1 or crop_px < 16:
            raise InvalidInputError(
                f"face turn cue: side >= 32, score in (0, 1), upright in (0, 1], faces >= 1, crop_px >= 16; got "
                f"{side}, {score}, {upright}, {faces}, {crop_px}"
            )
        self.side, self.score, self.upright, self.threads = side, score, upright, threads
        self.faces, self.crop_px = faces, crop_px
        self._yunet: Any = None

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "_yunet": None}

    def best_scores(
        self, image: Image, turns: Turns = (0, *ALL_TURNS), *, side: int | None = None
    ) -> dict[int, float]:
        """YuNet's best face score on `image` shrunk to a longer side of `side` (None: `self.side`; never
        enlarged) and turned by each of `turns` (0.0: no face).

        Raises:
            AnonymizationError: yuface is missing or OpenCV failed.
        """
        from tasks.anonymize.detectors.common import BACKEND_ERRORS
        from tasks.anonymize.detectors.face import decode_yunet, import_yuface

        try:
            if self._yunet is None:
                self._yunet = import_yuface(self.threads).c_detect
            h, w = image.shape[:2]
            scale = min(1.0, (side or self.side) / max(h, w))
            thumb = image if scale == 1 else cv2.resize(image, (max(1, round(w * scale)), max(1, round(h * scale))),
                                                        interpolation=cv2.INTER_AREA)  # fmt: skip
            bgr = np.asarray(thumb[..., ::-1], np.uint8)
            out = {}
            for k in turns:
                dets = decode_yunet(self._yunet(rotate(bgr, k)))
                out[k] = float(dets[:, 4].max()) if len(dets) else 0.0
        except BACKEND_ERRORS as err:
            raise AnonymizationError(f"face turn cue failed on a {image.shape} image: {err}") from err
        return out

    def _face_turns(self, image: Image, boxes: NDArray[np.int64]) -> Turns:
        """Turns in which one of the found faces (`boxes`, padded) scores >= `score` and more than upright."""
        chosen: set[int] = set()
        for x0, y0, x1, y1 in boxes:
            crop = image[max(0, y0) : y1, max(0, x0) : x1]
            if min(crop.shape[:2]) < 4:
                continue
            side = round(
                self.crop_px * max(crop.shape[:2]) / max(1, min(crop.shape[:2]))
            )  # the face ~crop_px
            best = self.best_scores(np.ascontiguousarray(crop), side=side)
            chosen |= {k for k in ALL_TURNS if best[k] >= self.score and best[k] > best[0]}
        return tuple(sorted(chosen))

    def __call__(self, image: Image, found: Detections, kept: Detections) -> Turns:
        """The turns (1, 2, 3) worth a pass, given the upright pass's `found` faces; `kept` is not used."""
        is_face = np.array([c == "face" for c in found.category], bool)
        confident = is_face & (found.scores >= self.upright) if len(found) else is_face
        if confident.any():
            order = np.argsort(-found.scores[confident], kind="stable")[: self.faces]
            turns = self._face_turns(image, found.boxes[confident][order])
            if turns or not (is_face & ~confident).any():
                return turns
            # weak faces beside the confident ones may be faces lying down, half seen: the thumbnail decides,
            # a turn counting only where it beats the upright thumbnail
            best = self.best_scores(image)
            return tuple(k for k in ALL_TURNS if best[k] >= self.score and best[k] > best[0])
        best = self.best_scores(image, ALL_TURNS)
        return tuple(k for k in ALL_TURNS if best[k] >= self.score)


class TextTurnCue:
    """The turn that makes the upright pass's text lines readable, from their geometry and the recogniser's
    scores read both ways (`OcrTextDetector.upside_down`).

    Lines at least `min_side` px long count; when more are tall (height >= `ratio` x width) than wide, the
    page lies on its side: turn 1 makes the tall lines wide, or turn 3 when most of them read better upside
    down after turn 1 (the page's lines are read once more for this, unpadded). Otherwise, when more wide
    lines were judged personal and read with a score under `doubtful` (an upside-down line reads as an
    unknown string, unsure) than kept, and most of them read better turned: turn 2. An upright page of
    ordinary text, or of surely read personal lines, costs nothing more.

    Args:
        ocr: the `OcrTextDetector` whose classifier reads the lines.
        ratio: a line is tall (or wide) when one side is >= this many times the other.
        min_side: a line's longer side in pixels, at least.
        lines: at most this many lines (the longest) are read turned.
        doubtful: a personal line read with a score under this may be upside down.
    """

    def __init__(self, ocr: Any, *, ratio: float = 2.0, min_side: int = 24, lines: int = 3,
                 doubtful: float = 0.9) -> None:  # fmt: skip
        if ratio < 1 or min_side < 1 or lines < 1 or not 0 < doubtful <= 1:
            raise InvalidInputError(f"text turn cue: ratio >= 1, min_side >= 1, lines >= 1, doubtful in (0, 1]; "
                                    f"got {ratio}, {min_side}, {lines}, {doubtful}")  # fmt: skip
        self.ocr, self.ratio, self.min_side, self.lines, self.doubtful = ocr, ratio, min_side, lines, doubtful

    def _shapes(self, boxes: NDArray[np.int64]) -> tuple[NDArray[np.bool_], NDArray[np.bool_]]:
        """(tall, wide) flags of (N, 4) boxes."""
        w, h = boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]
        return (h >= self.ratio * w) & (h >= self.min_side), (w >= self.ratio * h) & (w >= self.min_side)

    def __call__(self, image: Image, found: Detections, kept: Detections) -> Turns:
        """1, 3, 2 or nothing, for the upright pass's lines: `found` (to redact) and `kept`, boxes on `image`."""
        b = np.concatenate([found.boxes, kept.boxes]).reshape(-1, 4).astype(np.int64)
        tall, wide = self._shapes(b)
        if (
            tall.sum() > wide.sum()
        ):  # a page on its side: its lines as read, unpadded and unmerged, judge which side
            lines = np.round(self.ocr.read(image)[0]).astype(np.int64).reshape(-1, 4)
            lines = lines[self._shapes(lines)[0]]
            upside = self._upside_down(rotate(image, 1), rotate_boxes(lines, 1, shape=image.shape[:2]))
            return (3,) if upside else (1,)
        # an upside-down line reads as an unknown string with a low score: such lines outnumbering the kept
        # ones are read turned (their upright scores are known), the longest `lines` of them
        doubtful = wide[: len(found)] & (found.scores < self.doubtful)
        if doubtful.sum() > wide[len(found) :].sum():
            boxes, scores = b[: len(found)][doubtful], found.scores[doubtful]
            if self._upside_down(image, boxes, scores):
                return (2,)
        return ()

    def _upside_down(
        self, image: Image, boxes: NDArray[np.int64], upright: NDArray[np.float32] | None = None
    ) -> bool:
        """Whether most of the longest `lines` boxes read better upside down (`upright`: their scores as read)."""
        order = np.argsort(-(boxes[:, 2] - boxes[:, 0]), kind="stable")[: self.lines]
        flags = self.ocr.upside_down(image, boxes[order], None if upright is None else upright[order])
        return bool(np.mean(flags) > 0.5) if len(flags) else False


def oriented(
    detector: Detector, *, mode: Mode, cue: Cue | None, combine: Literal["union", "replace"] = "union"
) -> Detector:
    """`detector` wrapped by `Oriented`, or itself for mode "off"."""
    return detector if mode == "off" else Oriented(detector, mode=mode, cue=cue, combine=combine)
