"""The independent text auditor: Tesseract (Debian's `tesseract-ocr`, through `pytesseract`) reads each
ground-truth string's box on its own, raw and anonymized.

The anonymizer finds and reads text with rapidocr (PP-OCRv4 ONNX models); an auditor built on the same
engine would share its blind spots, so readability of personal text and plates is judged here by a
different engine with a different detector-free procedure: the ground-truth box (plus a margin) is cut
out, turned grey, upscaled to a text height Tesseract reads well, binarized (Otsu) with dark ink on
white, cleared of the blobs that touch its edge (a plate's frame, a neighbour's ink), padded and read as
one line (`--psm 7`). Several such views are read and the string counts as read when any of them matches
it (`tasks.check_quality.text.similarity`): the auditor plays a reader who tries harder, not one who
gives up on the first guess.

This module must never import rapidocr or the anonymizer's detectors (a test checks it).
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy.stats import beta

from tasks.boxes import as_boxes
from tasks.check_quality.text import TextReadability, similarity
from tasks.errors import InvalidInputError
from tasks.types import check_image

# Ground-truth categories whose readability is an anonymizer verdict, read by this auditor.
AUDITED_CATEGORIES: tuple[str, ...] = ("text_pii", "plate")
# Crops ((h, w) uint8 grey, dark ink on white) → one line of text each, in order (one Tesseract run per batch).
LineReader = Callable[[Sequence[NDArray[np.uint8]]], list[str]]


@dataclass(frozen=True)
class CropView:
    """How one view of a ground-truth box is prepared for Tesseract.

    Attributes:
        text_height: the crop is scaled so that the box is this many pixels tall.
        margin: context kept around the box (negative: cut from it), as a share of its height.
        binarize: Otsu-threshold the grey crop (else it is only contrast-stretched).
        clear_edges: with `binarize`, drop ink blobs that touch the crop's edge.
    """

    text_height: int = 48
    margin: float = 0.0
    binarize: bool = True
    clear_edges: bool = True


# Tried in this order, stopping at the first that reads the string: each view adds strings the earlier ones
# miss (the first alone reads every plate: clearing the blobs that touch the crop's edge removes its frame).
# Numbers: docs/measurements-archive.md#auditors-and-instruments.
DEFAULT_VIEWS: tuple[CropView, ...] = (
    CropView(),
    CropView(clear_edges=False),
    CropView(margin=0.1, binarize=False),
    CropView(text_height=64, margin=0.1, binarize=False),
)


@dataclass(frozen=True)
class TesseractStatus:
    """Whether the auditor can run: `engine` names it ("tesseract 5.3.0"), `reason` says why not."""

    available: bool
    engine: str
    reason: str


def tesseract_status() -> TesseractStatus:
    """Find pytesseract and the `tesseract` binary with its English model; say what is missing."""
    try:
        import pytesseract
    except ImportError:
        return TesseractStatus(False, "tesseract", "pytesseract is not installed (pip install pytesseract)")
    if shutil.which(pytesseract.pytesseract.tesseract_cmd) is None:
        return TesseractStatus(
            False,
            "tesseract",
            "the tesseract binary is not on PATH "
            "(apt-get install tesseract-ocr tesseract-ocr-eng; `make setup` does it as root)",
        )
    try:
        version = str(pytesseract.get_tesseract_version())
        langs = pytesseract.get_languages(config="")
    except (OSError, RuntimeError, pytesseract.TesseractError) as err:
        return TesseractStatus(False, "tesseract", f"tesseract does not run: {err}")
    if "eng" not in langs:
        return TesseractStatus(
            False, f"tesseract {version}", "tesseract has no English model (tesseract-ocr-eng)"
        )
    return TesseractStatus(True, f"tesseract {version}", "")


def tesseract_reader(*, psm: int = 7, timeout_s: float = 60.0) -> LineReader:
    """Return Tesseract (LSTM, English, page segmentation `psm`; 7: one text line) as a `LineReader`.

    A batch of crops is one Tesseract run: the crops are written as PNG pages of a temporary folder and
    Tesseract reads the list of them (its start-up, ~0.15 s, is paid once per batch, not per crop).

    Raises:
        InvalidInputError: pytesseract or the tesseract binary is missing (see `tesseract_status`).
    """
    status = tesseract_status()
    if not status.available:
        raise InvalidInputError(f"tesseract auditor: {status.reason}")
    import pytesseract

    config = f"--psm {psm} --oem 1"

    def read(crops: Sequence[NDArray[np.uint8]]) -> list[str]:
        if not crops:
            return []
        with tempfile.TemporaryDirectory(prefix="privtrail-tesseract-") as tmp:
            pages = [str(Path(tmp) / f"{i:05d}.png") for i in range(len(crops))]
            for page, crop in zip(pages, crops, strict=True):
                cv2.imwrite(page, crop)
            listing = Path(tmp) / "pages.txt"
            listing.write_text("\n".join(pages) + "\n")
            text = str(
                pytesseract.image_to_string(str(listing), lang="eng", config=config, timeout=timeout_s)
            )
        lines = text.split("\f")  # one form feed after each page
        if len(lines) == len(crops) + 1 and not lines[-1].strip():
            lines = lines[:-1]
        if len(lines) != len(crops):
            raise InvalidInputError(f"tesseract auditor: {len(lines)} pages read back for {len(crops)} crops")
        return [line.strip() for line in lines]

    return read


def _clear_edge_blobs(ink: NDArray[np.uint8]) -> NDArray[np.uint8]:
    """Ink mask (255 = ink) without the connected blobs that touch the border (a plate's frame)."""
    n, labels = cv2.connectedComponents(ink, connectivity=8)
    edge = np.unique(np.concatenate([labels[0], labels[-1], labels[:, 0], labels[:, -1]]))
    keep = np.ones(n, bool)
    keep[edge] = False
    keep[0] = False
    cleared = np.where(keep[labels], 255, 0).astype(np.uint8)
    return cleared if cleared.any() else ink  # ink that fills the crop: keep it


def _window(box: Sequence[int], margin: float, shape: tuple[int, ...]) -> tuple[int, int, int, int]:
    """The crop around `box`: grown (margin > 0) or shrunk (< 0) by `margin` × its height, inside the image."""
    x0, y0, x1, y1 = (int(v) for v in box)
    m = round(margin * (y1 - y0))
    if m < 0:  # never shrink a box to nothing
        m = -min(-m, (x1 - x0 - 1) // 2, (y1 - y0 - 1) // 2)
    return max(0, x0 - m), max(0, y0 - m), min(shape[1], x1 + m), min(shape[0], y1 + m)


def prepare_crop(image: NDArray[np.uint8], box: Sequence[int], *, view: CropView) -> NDArray[np.uint8]:
    """Cut `box` (± margin) out of `image` and return it grey, upscaled, dark ink on white, padded.

    The ink is told from its background inside the box itself (Otsu's threshold on the box's pixels; the
    ink is the minority side), so a busy photo around a tight text box does not decide it.

    Args:
        image: (H, W, 3) uint8 RGB.
        box: [x0, y0, x1, y1] in pixels, inside the image, non-empty.
        view: the preparation (`CropView`).
    Returns:
        (h, w) uint8 with white padding around the text.
    """
    check_image(image, name="prepare_crop")
    x0, y0, x1, y1 = _window(box, view.margin, image.shape)
    grey = cv2.cvtColor(np.ascontiguousarray(image[y0:y1, x0:x1]), cv2.COLOR_RGB2GRAY)
    scale = view.text_height / max(1, int(box[3]) - int(box[1]))
    grey = cv2.resize(grey, None, fx=scale, fy=scale, interpolation=cv2.INTER_CUBIC)
    bx0, by0 = round((max(x0, int(box[0])) - x0) * scale), round((max(y0, int(box[1])) - y0) * scale)
    bx1, by1 = round((min(x1, int(box[2])) - x0) * scale), round((min(y1, int(box[3])) - y0) * scale)
    inside = np.ascontiguousarray(grey[by0:by1, bx0:bx1]).reshape(1, -1)
    level, _ = cv2.threshold(inside, 0, 255, cv2.THRESH_BINARY + cv2.THRESH_OTSU)
    if (inside > level).mean() < 0.5:  # the light side is the minority: light ink on a dark ground
        grey, level = 255 - grey, 255 - level
    if view.binarize:
        ink = np.where(grey <= level, 255, 0).astype(np.uint8)
        out = 255 - (_clear_edge_blobs(ink) if view.clear_edges else ink)
    else:
        lo, hi = int(grey.min()), int(grey.max())  # contrast stretched to 0..255
        out = ((grey.astype(np.float32) - lo) * (255 / max(1, hi - lo))).round().astype(np.uint8)
    pad = max(10, view.text_height // 2)
    return np.pad(out, pad, constant_values=255)


def read_gt_strings(
    image: NDArray[np.uint8],
    gt_boxes: ArrayLike,
    gt_texts: Sequence[str],
    *,
    reader: LineReader,
    min_similarity: float,
    views: Sequence[CropView] = DEFAULT_VIEWS,
) -> NDArray[np.bool_]:
    """For each ground-truth string, whether the auditor reads it in its box on `image`.

    Views are tried in order; a string is read again with the next view only while no view read it.

    Args:
        image: (H, W, 3) uint8 RGB (raw: calibration; anonymized: what survived).
        gt_boxes: (N, 4) int [x0, y0, x1, y1]; gt_texts: their N strings.
        reader: e.g. `tesseract_reader()`; tests pass a fake.
        min_similarity: `similarity` at which a string counts as read, in (0, 1].
        views: the crop preparations tried, at least one.
    Returns:
        (N,) bool.
    Raises:
        InvalidInputError: lengths disagree, no view, or `min_similarity` outside (0, 1].
    """
    boxes = as_boxes(gt_boxes, name="gt_boxes")
    if len(boxes) != len(gt_texts):
        raise InvalidInputError(f"read_gt_strings: {len(boxes)} boxes, {len(gt_texts)} texts")
    jobs = [(image, [int(v) for v in b], str(t)) for b, t in zip(boxes, gt_texts, strict=True)]
    return _read(jobs, reader=reader, min_similarity=min_similarity, views=views)


def _read(
    jobs: Sequence[tuple[NDArray[np.uint8], list[int], str]],
    *,
    reader: LineReader,
    min_similarity: float,
    views: Sequence[CropView],
) -> NDArray[np.bool_]:
    """(image, box, string) jobs → read or not; one reader batch per view over the strings still unread."""
    if not 0 < min_similarity <= 1:
        raise InvalidInputError(f"min_similarity: must be in (0, 1], got {min_similarity}")
    if not views:
        raise InvalidInputError("read_gt_strings: no view to read with")
    out = np.zeros(len(jobs), bool)
    pending = [i for i, (_, b, _) in enumerate(jobs) if b[2] > b[0] and b[3] > b[1]]
    for view in views:
        if not pending:
            break
        lines = reader([prepare_crop(jobs[i][0], jobs[i][1], view=view) for i in pending])
        for i, line in zip(pending, lines, strict=True):
            out[i] = similarity(line, jobs[i][2]) >= min_similarity
        pending = [i for i in pending if not out[i]]
    return out


@dataclass(frozen=True)
class OcrAuditorCalibration:
    """What the auditor reads on raw images: `read` of `total` strings of its weakest audited category.

    A NaN share (no ground-truth string, or the auditor could not run) can never pass a gate.
    """

    read: int
    total: int
    available: bool = True

    def as_metrics(self) -> dict[str, float]:
        """`check_quality/ocr_auditor_raw_recall` (share read) and `check_quality/ocr_auditor_raw_n`."""
        recall = self.read / self.total if self.total and self.available else float("nan")
        return {
            "check_quality/ocr_auditor_raw_recall": recall,
            "check_quality/ocr_auditor_raw_n": float(self.total),
        }


Items = Mapping[str, Sequence[tuple[Sequence[int], str]]]  # category → (box [x0, y0, x1, y1], string) pairs


def audit_text(
    images: Sequence[tuple[NDArray[np.uint8], NDArray[np.uint8], Items]],
    *,
    reader: LineReader,
    min_similarity: float,
) -> list[dict[str, tuple[int, int, int]]]:
    """Per image, per audited category (`AUDITED_CATEGORIES`): (read on raw, read on anonymized, total).

    All the images' strings go to the reader together (one Tesseract run per view for the batch).

    Args:
        images: (raw, anonymized, items) per image: (H, W, 3) uint8 RGB before and after anonymization, and
            category → its ground-truth (box, string) pairs (other categories are ignored).
        reader: e.g. `tesseract_reader()`.
        min_similarity: see `read_gt_strings`.
    """
    jobs = [
        (img, [int(v) for v in box], str(text))
        for raw, anon, items in images
        for cat in AUDITED_CATEGORIES
        for img in (raw, anon)
        for box, text in items.get(cat, ())
    ]
    hits = _read(jobs, reader=reader, min_similarity=min_similarity, views=DEFAULT_VIEWS).tolist()
    out = []
    for _, _, items in images:  # jobs are in (image, category, raw then anonymized, string) order
        counts = {}
        for cat in AUDITED_CATEGORIES:
            n = len(items.get(cat, ()))
            counts[cat] = (sum(hits[:n]), sum(hits[n : 2 * n]), n)
            hits = hits[2 * n :]
        out.append(counts)
    return out


def auditor_calibration(text: TextReadability) -> OcrAuditorCalibration:
    """The auditor's reads on the raw images of its *weakest* audited category (personal strings or plates,
    whichever has the lowest 95 % lower bound on its share read, among those with ground truth), from
    `text`'s counts.

    Not pooled: an auditor that reads every plate and no personal string must not pass its calibration on
    the plates' account while the personal-text gate trusts its zero reads.
    """
    counts = [text.counts.get(c, (0, 0, 0)) for c in AUDITED_CATEGORIES]
    present = [(c[0], c[2]) for c in counts if c[2]]
    read, total = min(present, key=lambda rt: _lower_bound(*rt)) if present else (0, 0)
    return OcrAuditorCalibration(read=read, total=total, available=not set(AUDITED_CATEGORIES) & text.unread)


def _lower_bound(read: int, total: int) -> float:
    """The exact (Clopper–Pearson) 97.5 % lower bound of read / total: the category least *proven* to be read
    is the weakest, so a few well-read plates cannot stand in for many poorly read personal strings, nor the
    other way round (a minimum gate passes only when this bound clears it)."""
    return 0.0 if read == 0 else float(beta.ppf(0.025, read, total - read + 1))
