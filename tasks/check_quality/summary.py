"""Per-image check_quality records and their aggregate over a dataset.

The flow maps `image_record` over shards of images (in parallel), keeps the small records, and
calls `summarize` once on all of them. Records round-trip through JSON (`as_dict` / `from_dict`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from tasks.boxes import as_boxes
from tasks.check_quality.appearance import Appearance, appearance, pooled
from tasks.check_quality.image_metrics import ImageQuality, image_quality
from tasks.coverage import OVERREDACTION_CATEGORIES, overredaction, redaction_recall, residual_faces
from tasks.errors import InvalidInputError
from tasks.types import Detector, Image, check_image

# Ground-truth categories the anonymizer must hide; "outside" metrics mask them out.
SENSITIVE_CATEGORIES: tuple[str, ...] = ("face", "plate", "text_pii")
Counts = dict[str, tuple[int, int]]  # category → (covered, total)


@dataclass(frozen=True)
class ImageRecord:
    """check_quality measurements of one image.

    Attributes:
        image_id: the manifest id.
        quality: PSNR / SSIM of the anonymized image against the raw one.
        recall: category → (covered, total) ground-truth boxes, see `redaction_recall`.
        overredaction: category → (covered, total) non-sensitive boxes redacted, see `overredaction`.
        n_gt_faces: ground-truth faces in the image.
        raw_faces_found: ground-truth faces the auditor detects on the raw image.
        raw_face_detections: the auditor's face detections on the raw image.
        residual_faces_matched: ground-truth faces the auditor still detects on the anonymized image.
        residual_face_detections: the auditor's face detections on the anonymized image.
        calibrated: whether the auditor also ran on the raw image (the raw_* fields are 0 otherwise).
        raw_detections_covered: of the auditor's face detections on the raw image, how many the
            redactions cover (>= `min_coverage`): a ground-truth-free proxy of face redaction recall.
        appearance: what a person sees (`tasks.check_quality.appearance`; None: records written before it).
    """

    image_id: str
    quality: ImageQuality
    recall: Counts
    overredaction: Counts
    n_gt_faces: int
    raw_faces_found: int
    raw_face_detections: int
    residual_faces_matched: int
    residual_face_detections: int
    calibrated: bool = True
    raw_detections_covered: int = 0
    appearance: Appearance | None = None

    def as_dict(self) -> dict[str, Any]:
        """Return a JSON-ready dict (tuples become lists); `from_dict` reads it back."""
        return asdict(self)

    @staticmethod
    def from_dict(row: Mapping[str, Any]) -> ImageRecord:
        """Rebuild a record from `as_dict`'s output (possibly after a JSON round trip)."""
        fields = dict(row)
        fields["quality"] = ImageQuality(**fields["quality"])
        for key in ("recall", "overredaction"):
            fields[key] = {c: (int(v[0]), int(v[1])) for c, v in fields[key].items()}
        if fields.get("appearance") is not None:
            fields["appearance"] = Appearance(**fields["appearance"])
        return ImageRecord(**fields)


def image_record(
    raw: Image,
    anon: Image,
    *,
    image_id: str,
    gt_boxes_by_category: Mapping[str, ArrayLike],
    redacted_boxes: ArrayLike,
    detector: Detector,
    match_iou: float,
    min_coverage: float = 0.7,
    calibrate: bool = True,
    appearance_boxes: ArrayLike | None = None,
) -> ImageRecord:
    """Measure one image: quality outside the sensitive boxes, redaction coverage, residual faces.

    The auditor `detector` runs on both images: on the raw one to know how many faces it can see at
    all, on the anonymized one to count what survived.

    Args:
        raw: (H, W, 3) uint8 RGB before anonymization.
        anon: (H, W, 3) uint8 RGB after anonymization, same shape.
        image_id: the manifest id, carried into the record.
        gt_boxes_by_category: category → (N, 4) int [x0, y0, x1, y1] ground truth of the raw image.
        redacted_boxes: (M, 4) int [x0, y0, x1, y1] boxes the anonymizer redacted.
        detector: the residual face detector, e.g. `RESIDUAL_DETECTORS["dlib_hog"](upsample=1)`.
        match_iou: IoU at which a detection counts as a ground-truth face.
        min_coverage: fraction of a ground-truth box that must be redacted for it to count as covered.
        calibrate: also run the auditor on the raw image (to measure what it can see at all). The
            auditor is the slow part; calibrating on a sample of images halves the stage's time.
        appearance_boxes: (K, 4) boxes the anonymizer was meant to change, already padded (the ground
            truth padded as its detectors pad, `appearance.pad_sensitive`); None: `redacted_boxes`.
    Raises:
        InvalidInputError: bad image, boxes, category or threshold.
    """
    shape = check_image(raw, name="raw").shape[:2]
    sensitive = [as_boxes(gt_boxes_by_category.get(c, ()), name=c) for c in SENSITIVE_CATEGORIES]
    faces = sensitive[0]
    raw_seen = detector(raw) if calibrate else None
    raw_found, raw_dets = (
        residual_faces(raw_seen, faces, match_iou=match_iou) if raw_seen is not None else (0, 0)
    )
    left_found, left_dets = residual_faces(detector(anon), faces, match_iou=match_iou)
    gt, red = gt_boxes_by_category, redacted_boxes
    proxy = (0, 0)
    if raw_seen is not None:  # the auditor's own raw faces as stand-in ground truth
        seen = raw_seen.boxes[np.array([c == "face" for c in raw_seen.category], bool)].reshape(-1, 4)
        proxy = redaction_recall({"face": seen}, red, min_coverage=min_coverage, image_shape=shape)["face"]
    return ImageRecord(
        image_id=image_id,
        quality=image_quality(raw, anon, sensitive_boxes=np.concatenate(sensitive)),
        recall=redaction_recall(gt, red, min_coverage=min_coverage, image_shape=shape),
        overredaction=overredaction(gt, red, min_coverage=min_coverage, image_shape=shape),
        n_gt_faces=len(faces),
        raw_faces_found=raw_found,
        raw_face_detections=raw_dets,
        residual_faces_matched=left_found,
        residual_face_detections=left_dets,
        calibrated=calibrate,
        raw_detections_covered=proxy[0],
        appearance=appearance(
            raw, anon, sensitive_boxes=red if appearance_boxes is None else appearance_boxes
        ),
    )


def _ratio(num: int, den: int) -> float:
    return num / den if den else float("nan")


def _mean_median(values: Sequence[float]) -> tuple[float, float]:
    """Mean and median of the non-NaN values; NaN when there are none."""
    arr = np.asarray(values, np.float64)
    arr = arr[~np.isnan(arr)]
    return (float(arr.mean()), float(np.median(arr))) if arr.size else (float("nan"), float("nan"))


def _sum_counts(parts: Sequence[Counts]) -> Counts:
    names = sorted({c for part in parts for c in part})
    return {
        c: (sum(p.get(c, (0, 0))[0] for p in parts), sum(p.get(c, (0, 0))[1] for p in parts)) for c in names
    }


@dataclass(frozen=True)
class QualitySummary:
    """check_quality over a dataset. Means and medians skip NaNs (images with no pixel outside the boxes).

    PSNR values are capped at `PSNR_CAP_DB` per image, so a mean over many untouched images is
    dominated by the cap: read the median alongside.

    Attributes:
        n_images: images summarised.
        psnr: "whole"/"outside" → (mean, median) PSNR in dB.
        ssim: "whole"/"outside" → (mean, median) SSIM.
        msssim: "whole"/"outside" → (mean, median) MS-SSIM (None: not measured).
        n_no_outside: images whose boxes cover every pixel (no "outside" value).
        recall: category → (covered, total) ground-truth boxes over all images.
        overredaction: non-sensitive category → (covered, total).
        n_gt_faces: ground-truth faces over all images.
        raw_faces_found: of those, how many the auditor finds on the raw images.
        raw_face_detections: the auditor's detections on the raw images.
        residual_faces_matched: ground-truth faces the auditor still finds after anonymization.
        residual_face_detections: the auditor's detections on the anonymized images.
    """

    n_images: int
    psnr: dict[str, tuple[float, float]]
    ssim: dict[str, tuple[float, float]]
    n_no_outside: int
    recall: Counts
    overredaction: Counts
    n_gt_faces: int
    raw_faces_found: int
    raw_face_detections: int
    residual_faces_matched: int
    residual_face_detections: int
    n_images_calibrated: int
    n_gt_faces_calibrated: int
    raw_detections_covered: int = 0
    msssim: dict[str, tuple[float, float]] | None = None  # "whole"/"outside" → (mean, median) MS-SSIM
    appearance: Appearance | None = None  # pooled over the records that carry one

    @property
    def auditor_raw_face_recall(self) -> float:
        """Share of ground-truth faces the auditor finds on the raw images it ran on (NaN without faces)."""
        return _ratio(self.raw_faces_found, self.n_gt_faces_calibrated)

    def headline(self) -> str:
        """One sentence for the report: what the auditor sees before and after anonymization."""
        return (
            f"The auditor finds {self.auditor_raw_face_recall:.1%} of {self.n_gt_faces_calibrated} clear faces on "
            f"{self.n_images_calibrated} raw images, and {self.residual_faces_matched} of them ({self.residual_face_detections} detections in "
            f"all) on the {self.n_images} anonymized images."
        )

    def as_metrics(self) -> dict[str, float]:
        """Flat metrics keyed "check_quality/<metric>"; ratios are NaN where their denominator is 0."""
        m: dict[str, float] = {"n_images": self.n_images, "n_images_no_outside": self.n_no_outside}
        for name, table in (("psnr", self.psnr), ("ssim", self.ssim), ("msssim", self.msssim or {})):
            for where, (mean, median) in table.items():
                m[f"{name}_{where}"], m[f"{name}_{where}_median"] = mean, median
        for c, (covered, total) in self.recall.items():
            if c not in OVERREDACTION_CATEGORIES:
                m |= {f"{c}_redaction_recall": _ratio(covered, total), f"{c}_redaction_covered": covered}
                m[f"{c}_redaction_total"] = total
        for c, (covered, total) in self.overredaction.items():
            m |= {f"{c}_overredaction_rate": _ratio(covered, total), f"{c}_overredaction_covered": covered}
            m[f"{c}_overredaction_total"] = total
        m |= {
            "n_gt_faces": self.n_gt_faces,
            "auditor_raw_face_recall": self.auditor_raw_face_recall,
            "auditor_raw_detections_per_image": _ratio(self.raw_face_detections, self.n_images_calibrated),
            "auditor_calibration_images": self.n_images_calibrated,
            "auditor_calibration_faces": self.n_gt_faces_calibrated,  # n of auditor_raw_face_recall (its gate's CI)
            "residual_face_detections": self.residual_face_detections,
            "residual_face_rate": _ratio(self.residual_face_detections, self.n_images),
            "residual_faces_matched": self.residual_faces_matched,
            "residual_face_matched_rate": _ratio(self.residual_faces_matched, self.n_gt_faces),
            # ground-truth-free proxies (an independent detector stands in for the ground truth): what it
            # finds on the raw images that the redactions cover, and what it still finds afterwards
            "face_redaction_recall_detector_proxy": _ratio(
                self.raw_detections_covered, self.raw_face_detections
            ),
            "residual_face_detections_per_image_proxy": _ratio(self.residual_face_detections, self.n_images),
        }
        seen = self.appearance.as_metrics("check_quality/appearance") if self.appearance is not None else {}
        return {f"check_quality/{k}": float(v) for k, v in m.items()} | seen


def summarize(records: Sequence[ImageRecord]) -> QualitySummary:
    """Aggregate per-image records (from any number of shards) into one `QualitySummary`.

    Raises:
        InvalidInputError: `records` is empty.
    """
    if not records:
        raise InvalidInputError("records: no per-image check_quality records to summarise")
    q = [r.quality for r in records]
    return QualitySummary(
        n_images=len(records),
        psnr={
            "whole": _mean_median([x.psnr_whole for x in q]),
            "outside": _mean_median([x.psnr_outside for x in q]),
        },
        ssim={
            "whole": _mean_median([x.ssim_whole for x in q]),
            "outside": _mean_median([x.ssim_outside for x in q]),
        },
        n_no_outside=sum(bool(np.isnan(x.psnr_outside)) for x in q),
        recall=_sum_counts([r.recall for r in records]),
        overredaction=_sum_counts([r.overredaction for r in records]),
        n_gt_faces=sum(r.n_gt_faces for r in records),
        raw_faces_found=sum(r.raw_faces_found for r in records),
        raw_face_detections=sum(r.raw_face_detections for r in records),
        residual_faces_matched=sum(r.residual_faces_matched for r in records),
        residual_face_detections=sum(r.residual_face_detections for r in records),
        n_images_calibrated=sum(r.calibrated for r in records),
        n_gt_faces_calibrated=sum(r.n_gt_faces for r in records if r.calibrated),
        raw_detections_covered=sum(r.raw_detections_covered for r in records),
        msssim={
            "whole": _mean_median([np.nan if x.msssim_whole is None else x.msssim_whole for x in q]),
            "outside": _mean_median([np.nan if x.msssim_outside is None else x.msssim_outside for x in q]),
        },
        appearance=_pooled_appearance(records),
    )


def _pooled_appearance(records: Sequence[ImageRecord]) -> Appearance | None:
    looks = [r.appearance for r in records if r.appearance is not None]
    return pooled(looks) if looks else None
