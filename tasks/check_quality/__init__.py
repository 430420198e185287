"""check_quality stage: how much the anonymizer changed, what it hid, and what an independent auditor still finds.

- `image_metrics`: PSNR / SSIM over the whole image and outside the sensitive boxes.
- `redaction`: share of ground-truth boxes covered by the redacted boxes, per category.
- `residual`: face detectors that did not do the anonymizing (dlib HOG, dlib MMOD CNN).
- `summary`: per-image records and their aggregate `QualitySummary`.
- `reid`: naive / adaptive ("parrot") / trained re-identification attacks (dlib ResNet embeddings, LDA).
- `text`: ground-truth strings OCR still reads; `utility`: vanilla-trained task model, raw vs anonymized.
- `compare`: every method on the same raw images → one `MethodRow` each; `plots`: the privacy–utility scatter.
- `lpips`: LPIPS-Alex from a configured weights file; `manifest`: PNG metadata chunks for the GX suite.
"""

from tasks.check_quality.image_metrics import PSNR_CAP_DB, ImageQuality, image_quality
from tasks.check_quality.redaction import (
    OVERREDACTION_CATEGORIES,
    RECALL_CATEGORIES,
    overredaction,
    redaction_recall,
)
from tasks.check_quality.residual import RESIDUAL_DETECTORS, residual_faces
from tasks.check_quality.summary import ImageRecord, QualitySummary, image_record, summarize

__all__ = [
    "OVERREDACTION_CATEGORIES",
    "PSNR_CAP_DB",
    "RECALL_CATEGORIES",
    "RESIDUAL_DETECTORS",
    "ImageQuality",
    "ImageRecord",
    "QualitySummary",
    "image_quality",
    "image_record",
    "overredaction",
    "redaction_recall",
    "residual_faces",
    "summarize",
]
