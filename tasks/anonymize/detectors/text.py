"""Text and plate detection: PP-OCRv4 (rapidocr) detection and recognition, then PII classification."""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Any, Literal

import cv2
import numpy as np
from numpy.typing import NDArray

from tasks.anonymize.detectors.common import (
    BACKEND_ERRORS,
)
from tasks.anonymize.device import CPU_PROVIDER, CUDA_PROVIDER, check_providers, confirm_providers
from tasks.anonymize.languages import DEFAULT as DEFAULT_LANGUAGES
from tasks.anonymize.languages import check_languages
from tasks.anonymize.pii import TextClass, classify_texts, doubtful, is_fragment, text_lines
from tasks.boxes import pad_boxes
from tasks.errors import AnonymizationError, InvalidInputError
from tasks.types import Detections, Image, check_image

TextCategory = Literal["plate", "text"]
CpuRuntime = Literal["onnxruntime", "openvino"]
_SEEN = 0.8  # a later detection pass's box lying this much inside an earlier box adds nothing
# Redacted pieces of one line are joined when their rows overlap and at most 2 heights apart, whatever
# their heights ("884" is shorter than "(555)"): joining two redactions can only redact more.
_SPAN_HEIGHT_RATIO, _SPAN_GAP = float("inf"), 2.0
# The second look upscales a line's strip until the line is this tall (at most `line_scale` times, never
# shrunk): the faint 10-16 px lines it exists for get the full 3x, a 40 px line on a photo ~1.2x, not a
# 3840 px-wide strip.
_LINE_PX = 48
# Lines recognised per onnxruntime call. rapidocr batches 6, each padded to the widest line of its batch
# (at least 320 px); on one thread batching saves nothing and the padding costs: one at a time is faster
# and reads the same strings (numbers: docs/measurements-archive.md#text-detector-options).
_REC_BATCH = 1


@functools.cache
def gamma_lut(gamma: float) -> NDArray[np.uint8]:
    """(256,) uint8 look-up table of the tone curve v ↦ 255 (v / 255) ** gamma."""
    return np.clip(np.round(255 * (np.arange(256) / 255) ** gamma), 0, 255).astype(np.uint8)


class _OpenVinoSession:
    """Stand-in for rapidocr's `OrtInferSession.__call__` (a list of the outputs of one float32 input): the same
    ONNX model compiled by OpenVINO for the CPU, in float32 (never a bf16 / int8 hint), on `threads` threads, not
    pinned to cores (worker processes share them, as onnxruntime's do)."""

    def __init__(self, model_path: str, *, threads: int) -> None:
        import openvino as ov

        config = {"INFERENCE_NUM_THREADS": threads, "NUM_STREAMS": 1, "INFERENCE_PRECISION_HINT": "f32",
                  "ENABLE_CPU_PINNING": False}  # fmt: skip
        try:
            self._request = ov.Core().compile_model(model_path, "CPU", config).create_infer_request()
        except RuntimeError as err:
            raise AnonymizationError(
                f"text detector: OpenVINO could not compile {model_path}: {err}"
            ) from err

    def __call__(self, blob: NDArray[np.float32]) -> list[NDArray[np.float32]]:
        try:  # a copy: the request's output tensor is overwritten by its next call
            return [np.array(self._request.infer({0: blob})[0], np.float32)]
        except RuntimeError as err:
            raise AnonymizationError(
                f"text detector: OpenVINO failed on a {blob.shape} input: {err}"
            ) from err


def _openvino_sessions(ocr: Any, *, threads: int) -> None:
    """Swap the detection and recognition sessions of a rapidocr `RapidOCR` for OpenVINO ones (same models)."""
    from rapidocr_onnxruntime.main import DEFAULT_CFG_PATH
    from rapidocr_onnxruntime.utils import read_yaml, update_model_path

    paths = update_model_path(read_yaml(DEFAULT_CFG_PATH))
    ocr.text_det.infer = _OpenVinoSession(paths["Det"]["model_path"], threads=threads)
    ocr.text_rec.session = _OpenVinoSession(paths["Rec"]["model_path"], threads=threads)


def _inside(box: NDArray[np.float64], others: NDArray[np.float64]) -> NDArray[np.float64]:
    """Fraction of one (4,) [x0, y0, x1, y1] box's area inside each of (M, 4) boxes."""
    wh = np.minimum(box[2:], others[:, 2:]) - np.maximum(box[:2], others[:, :2])
    return np.asarray(wh.clip(0).prod(axis=1) / max(float((box[2:] - box[:2]).prod()), 1e-9), np.float64)


def new_quads(quads: list[NDArray[Any]], found: Any) -> list[NDArray[Any]]:
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

    Region verification (`tasks.anonymize.regions`) shows it whole rows (`context = "row"`): the PII
    policy judges a line's pieces together.

    The DB detector runs once per tone curve in `gammas` and the passes are united (a later pass adds
    only boxes not lying inside one an earlier pass found); every box is then recognised on the original image.
    Thin light strokes on a mid-grey textured background (grass, gravel) are invisible to the detector
    on the raw image, and gamma 2 (which darkens the mid-tones) brings them out; gamma 0.5 does the same for
    thin dark strokes on a light texture.

    Under policy "pii" a box is kept (returned for redaction) unless its text is confidently
    non-personal (`classify_texts(...)` says "nonpii": a lone digit, ordinary words); under "all" every
    box is returned. Plates come back as category "plate", other text as "text"; `categories`
    filters which of the two this detector reports.
    """

    context = "row"

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
        max_pixels: int = 0,
        threads: int = 1,
        rec_batch: int = _REC_BATCH,
        providers: tuple[str, ...] = (CPU_PROVIDER,),
        languages: tuple[str, ...] = DEFAULT_LANGUAGES,
        cpu_runtime: CpuRuntime = "onnxruntime",
    ) -> None:
        """Configure the detector; models load on first call.

        Args:
            box_threshold: DB detector box score threshold in (0, 1).
            pad: each box grows by this fraction of its size on every side.
            plate_pad: the same for plates, whose board reaches beyond the characters PP-OCR boxes.
            policy: "pii" (redact all but confidently non-personal text) or "all" (redact every text).
            categories: which categories to report, among "plate" and "text".
            limit_side_len: the detector upsamples images whose short side is below this. Small text
                needs it: on the builtin 256×256 images 512 finds most of it, 768 little more for far
                more time (numbers: docs/measurements-archive.md#text-detector-options).
            gammas: one detection pass per tone curve v ↦ v ** gamma (1.0: the raw image). (2.0, 0.5)
                finds thin light and dark strokes one pass misses, for more OCR time: the recogniser runs
                once per box (numbers: docs/measurements-archive.md#text-detector-options).
            unclip_ratio: the DB detector grows each text region by this factor (rapidocr's default).
                2.0 reads a few more cut-off words whole, but its larger boxes change far more pixels and
                redact ordinary text (numbers: docs/measurements-archive.md#text-detector-options).
            line_scale: the rows of every personal-text line are detected again, upscaled up to this many
                times (until the line is 48 px tall), full width, for the rest of a faint line the detector found only part of ("Hado"
                of "Li Haddad"); 0 turns this second look off. It seldom completes a line but costs little (strips
                are small; numbers: docs/measurements-archive.md#text-detector-options).
            max_pixels: the detector sees a larger image downscaled to this many pixels (0: never);
                recognition still reads the full-size pixels. Bounds the cost on large photos, whose text
                is large too: the builtin 256 px images (upsampled to 512) are far below any cap.
            threads: onnxruntime intra-op threads.
            rec_batch: lines recognised per onnxruntime call (`_REC_BATCH`; rapidocr's own default is 6).
            providers: onnxruntime providers of the detection and recognition sessions (`resolve_device`):
                CUDA first switches rapidocr's `det_use_cuda` / `rec_use_cuda` on (its angle classifier
                never runs here and stays on the CPU).
            languages: ISO codes whose ordinary words the "pii" policy keeps (`classify_texts`).
            cpu_runtime: what runs the detection and recognition models when `providers` is the CPU:
                "onnxruntime", or "openvino" (the same float32 models compiled by OpenVINO: outputs within
                ~1e-6, the same strings and builtin recall, less time per pass: `python -m
                bench.anonymize_throughput --ab-text-runtime 8`). On CUDA, onnxruntime always.
        """
        if max_pixels < 0 or rec_batch < 1:
            raise InvalidInputError(
                f"text detector: max_pixels must be >= 0 and rec_batch >= 1, got {max_pixels}, {rec_batch}"
            )
        if not 0 < box_threshold < 1 or pad < 0 or plate_pad < 0 or policy not in ("pii", "all"):
            raise InvalidInputError(
                f"text detector: bad options box_threshold={box_threshold}, pad={pad}, policy={policy}"
            )
        if cpu_runtime not in ("onnxruntime", "openvino"):
            raise InvalidInputError(
                f"text detector: cpu_runtime must be onnxruntime or openvino, got {cpu_runtime!r}"
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
        self.line_scale, self.max_pixels, self.rec_batch = line_scale, max_pixels, rec_batch
        self.providers = check_providers(providers, what="text detector")
        self.languages = check_languages(languages)
        self.cpu_runtime: CpuRuntime = cpu_runtime
        self._ocr: Any = None
        self._norm: NDArray[np.float32] | None = None  # DB input value of each uint8 level, per channel
        self._full_shape: tuple[int, int] | None = None  # set by `detect_crop`: the whole image's (H, W)

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "_ocr": None}

    def _load(self) -> None:
        from rapidocr_onnxruntime import RapidOCR

        ocr = RapidOCR(
            intra_op_num_threads=self.threads,
            inter_op_num_threads=1,
            det_box_thresh=self.box_threshold,
            det_limit_side_len=self.limit_side_len,
            det_limit_type="min",
            det_unclip_ratio=self.unclip_ratio,
            det_use_cuda=self.providers[0] == CUDA_PROVIDER,  # rapidocr puts the CPU provider after it
            rec_use_cuda=self.providers[0] == CUDA_PROVIDER,
        )
        ocr.text_rec.rec_batch_num = self.rec_batch
        sessions = [ocr.text_det.infer.session, ocr.text_rec.session.session]
        confirm_providers(
            sessions, self.providers, what="text detector"
        )  # kept only if on the providers asked for
        if self.cpu_runtime == "openvino" and self.providers[0] == CPU_PROVIDER:
            try:
                _openvino_sessions(ocr, threads=self.threads)
            except ImportError as err:
                raise AnonymizationError(
                    "text detector: anonymize.text.cpu_runtime is openvino but OpenVINO is not installed "
                    f"(pip install openvino): {err}"
                ) from err
        self._ocr = ocr

    def det_scale(self, shape: tuple[int, ...]) -> float:
        """The factor (<= 1) a whole image of `shape` is shrunk by before detection (`max_pixels`)."""
        pixels = shape[0] * shape[1]
        return (
            1.0
            if not self.max_pixels or pixels <= self.max_pixels
            else float((self.max_pixels / pixels) ** 0.5)
        )

    def _text_det(self, bgr: NDArray[np.uint8]) -> Any:
        """rapidocr's `TextDetector.__call__` (DB quads of a BGR image, None when it cannot be resized),
        with its normalisation (uint8 -> float64 -> float32, per pixel) read from a 256-entry table:
        the same network input bit for bit, a little faster (docs/measurements-archive.md#speed-history-issue-18)."""
        det = self._ocr.text_det
        resized = det.get_preprocess(max(bgr.shape[:2])).resize(bgr)
        if resized is None:
            return None
        if self._norm is None:
            pre = det.get_preprocess(1)
            self._norm = pre.normalize(np.arange(256, dtype=np.uint8)[:, None]).astype(np.float32)  # (256, 3)
        blob = np.empty((1, 3, *resized.shape[:2]), np.float32)
        for c in range(3):
            np.take(self._norm[:, c], resized[..., c], out=blob[0, c])
        boxes, _ = det.postprocess_op(det.infer(blob)[0], bgr.shape[:2])
        return det.filter_tag_det_res(boxes, bgr.shape[:2])

    def _detect(
        self, bgr: NDArray[np.uint8], known: list[NDArray[Any]], *, scale: float = 1.0
    ) -> list[NDArray[Any]]:
        """New (4, 2) text quads of a BGR image: one detector pass per gamma, each adding boxes not in `known`;
        on a copy shrunk by `scale` (< 1), quads in full-size pixels."""
        if scale < 1:
            bgr = np.asarray(
                cv2.resize(bgr, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA), np.uint8
            )
        quads: list[NDArray[Any]] = []
        for gamma in self.gammas:
            found = self._text_det(bgr if gamma == 1 else gamma_lut(gamma)[bgr])
            if found is not None and scale < 1:
                found = [np.asarray(q, np.float32) / scale for q in found]
            quads += new_quads(known + quads, found)
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
                scale = max(1.0, min(self.line_scale, _LINE_PX / max(float(y1 - y0), 1.0)))
                strip = cv2.resize(bgr[top:bottom], None, fx=scale, fy=scale, interpolation=cv2.INTER_CUBIC)
                found = [
                    q / scale + np.array([0, top], np.float32)
                    for q in self._detect(strip.astype(np.uint8), [])
                ]
                new += new_quads(known + new, found)
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
            scale = self.det_scale(self._full_shape or bgr.shape)
            return self._recognise(bgr, self._detect(bgr, [], scale=scale))
        except BACKEND_ERRORS as err:
            raise AnonymizationError(f"text detector failed on a {image.shape} image: {err}") from err

    def _read_more(
        self, image: Image, read: tuple[NDArray[np.float64], tuple[str, ...], NDArray[np.float32]]
    ) -> tuple[NDArray[np.float64], tuple[str, ...], NDArray[np.float32], list[TextClass]]:
        """`read` and its classes, plus what a second look at the rows of its personal lines (and of lone
        words kept in a language but English: `pii.doubtful`) finds."""
        boxes, texts, scores = read
        classes = classify_texts(texts, boxes, languages=self.languages)
        unsure = doubtful(texts, classes, self.languages)
        lines = np.array([c == "pii" or u for c, u in zip(classes, unsure, strict=True)], bool).reshape(-1)
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
        return (
            boxes,
            texts,
            np.concatenate([scores, more[2]]),
            classify_texts(texts, boxes, languages=self.languages),
        )

    def __call__(self, image: Image) -> Detections:
        """Find the text to redact in an (H, W, 3) uint8 RGB image; `Detections.text` holds the strings.

        Raises:
            InvalidInputError: not an (H, W, 3) uint8 array.
            AnonymizationError: onnxruntime or OpenCV failed.
        """
        return self.detect_and_keep(image)[0]

    def detect_and_keep(self, image: Image) -> tuple[Detections, Detections]:
        """`self(image)`, and the text lines it keeps: (to redact, kept).

        Kept lines are those the policy judged non-personal (`classify_texts` says "nonpii", fragments of
        <= 2 alphanumerics left out), with their unpadded boxes and strings; empty under policy "all".
        The engine's verification uses them to tell a damaged re-read of a kept line from new content.

        Raises:
            InvalidInputError, AnonymizationError: as `__call__`.
        """
        boxes, texts, scores, classes = self._read_more(image, self.read(image))
        ordinary = np.asarray(
            [
                self.policy == "pii" and c == "nonpii" and not is_fragment(t)
                for c, t in zip(classes, texts, strict=True)
            ],
            bool,
        ).reshape(-1)
        kept = Detections(
            np.asarray(np.round(boxes), np.int64).reshape(-1, 4), np.asarray(scores, np.float32).reshape(-1),
            ("text",) * len(texts), tuple(texts),
        ).select(ordinary) if len(texts) else Detections.empty()  # fmt: skip
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
        return Detections(padded, scores, category, texts).select(keep), kept

    def upside_down(
        self, image: Image, boxes: NDArray[np.int64], upright: NDArray[np.float32] | None = None
    ) -> NDArray[np.bool_]:
        """Per (N, 4) [x0, y0, x1, y1] line box of `image` (non-empty): does the line read better upside
        down? The recogniser reads each crop turned by 180 degrees, and as it is unless its score is given
        (`upright`, (N,)); True where the turned read scores higher. The orientation cue's judge
        (`tasks.anonymize.detectors.orient.TextTurnCue`): on rendered lines rapidocr's direction classifier
        (`cls`) stayed under its own 0.9 threshold either way.

        Raises:
            AnonymizationError: onnxruntime or OpenCV failed.
        """
        b = np.asarray(boxes, np.int64).reshape(-1, 4)
        crops = [np.ascontiguousarray(image[max(0, y0) : y1, max(0, x0) : x1, ::-1]) for x0, y0, x1, y1 in b]
        if not crops:
            return np.zeros(0, bool)
        try:
            if self._ocr is None:
                self._load()
            turned = [np.ascontiguousarray(c[::-1, ::-1]) for c in crops]
            recs, _ = self._ocr.text_rec(turned + (crops if upright is None else []))
        except BACKEND_ERRORS as err:
            raise AnonymizationError(
                f"text detector: recogniser failed on a {image.shape} image: {err}"
            ) from err
        scores = np.asarray([float(r[1]) for r in recs], np.float64)
        as_is = scores[len(b) :] if upright is None else np.asarray(upright, np.float64).reshape(-1)
        return np.asarray(scores[: len(b)] > as_is, bool)

    def detect_crop(self, crop: Image, *, full_shape: tuple[int, int]) -> Detections:
        """`self(crop)` at the scale the detector gives a whole image of `full_shape` (H, W): its short
        side is brought up to `limit_side_len`, so a small crop alone would be upscaled far more.

        Raises:
            InvalidInputError, AnonymizationError: as `__call__`.
        """
        try:
            if self._ocr is None:
                self._load()
        except BACKEND_ERRORS as err:
            raise AnonymizationError(f"text detector failed to load: {err}") from err
        det, side = self._ocr.text_det, self._ocr.text_det.limit_side_len
        ratio = self.limit_side_len / min(full_shape)
        det.limit_side_len = max(1, round(ratio * min(check_image(crop).shape[:2]))) if ratio > 1 else 1
        self._full_shape = full_shape  # a shrunk whole image's crops are shrunk by the same factor
        try:
            return self(crop)
        finally:
            det.limit_side_len, self._full_shape = side, None
