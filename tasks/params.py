"""Typed, strict, frozen params: one pydantic model per section of `params.yaml`.

A typo or an out-of-range value fails at start-up with a message naming the key
(`train.epochz: Extra inputs are not permitted`). Tasks receive their own section.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from tasks.errors import InvalidInputError

Category = Literal["face", "body", "plate", "text"]
Method = Literal["blur", "pixelate", "mask", "dp_pixelate", "inpaint", "replace"]
Accountant = Literal["prv", "rdp", "gdp"]


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Paths(_Section):
    raw: str = "data/raw"
    anonymized: str = "data/anonymized"
    models: str = "models"
    metrics: str = "reports/metrics"
    plots: str = "reports/plots"
    reports: str = "reports"


class SplitFractions(_Section):
    train: float = Field(0.6, gt=0, lt=1)
    holdout: float = Field(0.2, gt=0, lt=1)
    test: float = Field(0.2, gt=0, lt=1)

    @model_validator(mode="after")
    def _sum_to_one(self) -> SplitFractions:
        total = self.train + self.holdout + self.test
        if abs(total - 1.0) > 1e-6:
            raise ValueError(f"train + holdout + test must be 1, got {total:.4f}")
        return self


class IngestParams(_Section):
    source: Literal["builtin", "folder"] = "builtin"
    folder: str | None = None  # root/<label>/*.png when source == folder
    n_images: int = Field(2000, ge=10, le=1_000_000)
    image_size: int = Field(256, ge=64, le=2048)
    max_faces: int = Field(3, ge=0, le=8)
    face_size: tuple[int, int] = (24, 72)  # min, max face side in pixels
    split: SplitFractions = SplitFractions()

    @model_validator(mode="after")
    def _folder_needs_path(self) -> IngestParams:
        if self.source == "folder" and not self.folder:
            raise ValueError("ingest.folder is required when ingest.source is 'folder'")
        if self.face_size[0] > self.face_size[1] or self.face_size[0] < 8:
            raise ValueError(
                f"ingest.face_size must be (min, max) with 8 <= min <= max, got {self.face_size}"
            )
        return self


class FaceDetectorParams(_Section):
    threshold: float = Field(0.3, gt=0, lt=1)
    pad: float = Field(0.2, ge=0, le=1)  # box grown by this fraction of its size on each side
    upscale: float = Field(2.0, ge=1, le=4)  # small faces: run the detector on an upscaled copy


class TextDetectorParams(_Section):
    box_threshold: float = Field(0.3, gt=0, lt=1)
    pad: float = Field(0.1, ge=0, le=1)
    policy: Literal["pii", "all"] = "pii"


class BodyDetectorParams(_Section):
    hog: bool = True  # OpenCV's HOG people detector (64x128 window)
    cascades: tuple[Literal["fullbody", "upperbody"], ...] = ("fullbody", "upperbody")  # Haar cascades
    hit_threshold: float = Field(0.5, ge=-1, le=5)  # HOG SVM margin threshold
    upscale: float = Field(1.0, ge=1, le=4)
    min_size: int = Field(32, ge=8, le=2048)  # smallest body side the cascades search, in pixels
    pad: float = Field(0.05, ge=0, le=1)


class AnonymizeParams(_Section):
    targets: tuple[Category, ...] = ("face", "plate", "text")
    method: Method = "pixelate"  # for every category not listed in `methods`
    # per category, overriding `method`, e.g. {text: mask, body: blur}
    methods: dict[Category, Method] = Field(default_factory=dict)
    pixelate_block: int = Field(8, ge=2, le=64)
    blur_strength: float = Field(0.5, gt=0, le=4)  # Gaussian sigma as a fraction of the box's short side
    dp_block: int = Field(8, ge=2, le=64)  # dp_pixelate (Fan 2018): cell side b
    dp_epsilon: float = Field(1.0, gt=0, le=1000)  # ... per-image ε
    dp_neighbourhood: int = Field(16, ge=1, le=4096)  # ... m: pixels that may differ between neighbours
    inpaint_radius: int = Field(3, ge=1, le=32)
    inpaint_algorithm: Literal["telea", "ns"] = "telea"
    replace_k: int = Field(10, ge=2, le=100)  # k-Same group size (pool: the 100 LFW faces)
    face: FaceDetectorParams = FaceDetectorParams()
    text: TextDetectorParams = TextDetectorParams()
    body: BodyDetectorParams = BodyDetectorParams()
    verify: bool = True  # re-run the detectors on the output; a surviving detection quarantines the image
    shard_size: int = Field(64, ge=1, le=10_000)


class CheckQualityParams(_Section):
    residual_detector: Literal["dlib_hog"] = "dlib_hog"
    residual_upsample: int = Field(1, ge=0, le=3)
    match_iou: float = Field(0.3, gt=0, le=1)  # IoU at which a detection counts as the ground-truth box
    # the auditor also runs on this many raw images (an even sample) to measure what it can see at all
    auditor_calibration_images: int = Field(400, ge=1)


class DpParams(_Section):
    target_epsilon: float = Field(3.0, gt=0)
    target_delta: float = Field(1e-5, gt=0, lt=1)
    max_grad_norm: float = Field(1.0, gt=0)
    accountant: Accountant = "prv"
    grad_sample_mode: Literal["hooks", "functorch", "ghost"] = "hooks"  # how Opacus gets per-sample gradients
    secure_mode: bool = False  # cryptographically secure noise (needs torchcsprng); recorded in the report


class BudgetParams(_Section):
    """The privacy budget per dataset, across every DP training run on it (the ledger)."""

    max_total_epsilon: float = Field(10.0, gt=0)  # composed over all runs on the same train split
    delta: float = Field(1e-5, gt=0, lt=1)  # δ at which the composed total is priced
    ledger: str = "ledger/privacy_ledger.jsonl"  # append-only JSONL; committed, not a DVC output


class TrainParams(_Section):
    # features: "placard" crops the digit placard (classical CV, no learned parameters) into
    # (N, 1, s, s) ink maps for digit_hog / digit_linear; "full" feeds the whole scene (N, 3, s, s) to gn_cnn.
    features: Literal["placard", "full"] = "placard"
    model: Literal["digit_hog", "digit_linear", "gn_cnn"] = "digit_hog"
    input_size: int = Field(28, ge=16, le=512)
    epochs: int = Field(10, ge=1, le=1000)
    batch_size: int = Field(256, ge=1)
    physical_batch_size: int = Field(1024, ge=1)
    lr: float = Field(0.5, gt=0)
    momentum: float = Field(0.9, ge=0, lt=1)
    nonprivate_lr: float = Field(2.0, gt=0)
    dp: DpParams = DpParams()
    budget: BudgetParams = BudgetParams()

    @model_validator(mode="after")
    def _model_fits_features(self) -> TrainParams:
        wanted = "full" if self.model == "gn_cnn" else "placard"
        if self.features != wanted:
            raise ValueError(f"model {self.model!r} takes features {wanted!r}, got {self.features!r}")
        return self


class AuditParams(_Section):
    attacks: tuple[Literal["loss_threshold"], ...] = ("loss_threshold",)
    max_samples: int = Field(2000, ge=10)  # per side (members, non-members)


class ReportParams(_Section):
    title: str = "privtrail compliance report"


class PromoteParams(_Section):
    model_name: str = "privtrail-dp"
    alias: str = "audited"


class Gates(_Section):
    max_quarantine_fraction: float = Field(0.1, ge=0, le=1)
    min_face_redaction_recall: float = Field(0.9, ge=0, le=1)
    min_plate_redaction_recall: float = Field(0.9, ge=0, le=1)
    min_text_pii_redaction_recall: float = Field(0.8, ge=0, le=1)
    max_residual_face_rate: float = Field(0.02, ge=0, le=1)  # share of GT faces the dlib auditor still finds
    max_epsilon: float = Field(3.0, gt=0)
    max_delta: float = Field(1e-4, gt=0, lt=1)
    min_dp_accuracy: float = Field(0.8, ge=0, le=1)
    max_mia_auc_dp: float = Field(0.6, ge=0.5, le=1)
    max_mia_tpr_at_1pct_fpr_dp: float = Field(0.05, ge=0, le=1)


class Params(_Section):
    seed: int = Field(1234, ge=0)
    paths: Paths = Paths()
    ingest: IngestParams = IngestParams()
    anonymize: AnonymizeParams = AnonymizeParams()
    check_quality: CheckQualityParams = CheckQualityParams()
    train: TrainParams = TrainParams()
    audit: AuditParams = AuditParams()
    report: ReportParams = ReportParams()
    promote: PromoteParams = PromoteParams()
    gates: Gates = Gates()


STAGES: tuple[str, ...] = ("ingest", "anonymize", "check_quality", "train", "audit", "report", "promote")


def parse_params(raw: dict[str, Any], *, source: str = "params") -> Params:
    """Validate a params mapping.

    Args:
        raw: the parsed YAML mapping.
        source: name of the file, for the error message.
    Raises:
        InvalidInputError: one line per bad key, e.g. `params.yaml: train.epochz: Extra inputs are not permitted`.
    """
    try:
        return Params.model_validate(raw)
    except ValidationError as err:
        lines = []
        for e in err.errors():
            key = ".".join(str(p) for p in e["loc"]) or "<root>"
            lines.append(f"{source}: {key}: {e['msg']}")
        raise InvalidInputError("; ".join(lines)) from None
