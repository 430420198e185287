"""Method comparison: every obfuscation method on the same raw images, one row of privacy and utility each.

Each method of `compare_methods` (plus "none", the clear calibration row) is applied, with the stage's
`anonymize` params, to the *ground-truth* face, plate and personal-text boxes padded as the detectors
pad theirs — so the rows differ only in the method, not in what a detector happened to find. Per row:
quality (PSNR / SSIM / MS-SSIM, whole and outside the boxes), residual faces found by the independent
auditor, the naive / adaptive / trained re-identification rates (`reid.attack`), the task model's
accuracy ratio (`utility`), what a person sees (`appearance`: the share changed, overall and outside the
padded boxes, border edge energy, regions with a seam, nested and flat regions; pooled over the images), the share of the body
detector's people still found (bodies are never targeted here) and, on a smaller sample, the share of
personal and non-personal text OCR still reads (`text`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import cv2
import numpy as np
import torch
from numpy.typing import NDArray

from tasks.anonymize.engine import image_rng, obfuscation_options
from tasks.anonymize.obfuscate import OBFUSCATORS
from tasks.anonymize.replace import lfw_pool
from tasks.check_quality.appearance import appearance, pad_sensitive, pooled
from tasks.check_quality.image_metrics import image_quality
from tasks.check_quality.linkage import linkage_attack
from tasks.check_quality.reid import NONE, AttackConfig, Embeddings, attack
from tasks.check_quality.text import read_strings
from tasks.check_quality.utility import accuracy, preserved, task_inputs
from tasks.coverage import residual_faces
from tasks.errors import InvalidInputError
from tasks.params import AnonymizeParams, TrainParams
from tasks.types import Detector, Image

OcrReader = Callable[[Image], tuple[NDArray[np.float64], Sequence[str]]]  # image → (M, 4) boxes, M strings
SENSITIVE: tuple[str, ...] = ("face", "plate", "text_pii")


@dataclass(frozen=True)
class Sample:
    """One raw image of the comparison sample and its ground truth.

    Attributes:
        image_id: manifest id (seeds dp_pixelate's noise, as in the anonymize stage).
        image: (H, W, 3) uint8 RGB raw pixels.
        label: the task label (the placard's digit).
        boxes: category → (N, 4) int [x0, y0, x1, y1] ground-truth boxes.
        identities: identity of each face box, in `boxes["face"]` order.
        texts: category → strings of its boxes (text_pii, text_nonpii, plate).
    """

    image_id: str
    image: Image
    label: int
    boxes: Mapping[str, NDArray[np.int64]]
    identities: tuple[int, ...] = ()
    texts: Mapping[str, tuple[str, ...]] = field(default_factory=dict)


def method_options(anonymize: AnonymizeParams) -> dict[str, dict[str, Any]]:
    """Every method's options from the `anonymize` params, the k-Same pool always included."""
    opts = obfuscation_options(anonymize)
    opts.setdefault("replace", {"pool": lfw_pool(k=anonymize.replace_k)})
    return opts


def padded_sensitive(sample: Sample, anonymize: AnonymizeParams) -> NDArray[np.int64]:
    """The sample's face / plate / personal-text boxes, padded like the anonymizer's detectors pad them."""
    return pad_sensitive(sample.boxes, pads=sensitive_pads(anonymize), shape=sample.image.shape[:2])


def sensitive_pads(anonymize: AnonymizeParams) -> dict[str, float]:
    """`SENSITIVE` category → the padding the anonymizer's detectors give its boxes (share of the box per side)."""
    return {cat: anonymize.face.pad if cat == "face" else anonymize.text.pad for cat in SENSITIVE}


def obfuscate_sample(
    sample: Sample,
    *,
    method: str,
    options: Mapping[str, Mapping[str, Any]],
    anonymize: AnonymizeParams,
    seed: int,
) -> Image:
    """A copy of the sample's image with its padded sensitive boxes obfuscated by `method` ("none": unchanged)."""
    if method == NONE:
        return sample.image.copy()
    if method not in OBFUSCATORS:
        raise InvalidInputError(f"compare_methods: unknown method {method!r}, expected {sorted(OBFUSCATORS)}")
    kwargs = dict(options.get(method, {}))
    if method == "dp_pixelate":
        kwargs["rng"] = image_rng(seed, sample.image_id)
    boxes = padded_sensitive(sample, anonymize)
    return OBFUSCATORS[method](sample.image, boxes, **kwargs) if len(boxes) else sample.image.copy()


def context_region(faces: NDArray[np.int64], *, width: int, height: int) -> tuple[int, int, int, int]:
    """The largest face box grown by its own width / height on every side, clipped to the image.

    Args:
        faces: (N, 4) int [x0, y0, x1, y1], N >= 1.
        width, height: the image's size in pixels.
    Returns:
        (x0, y0, x1, y1) of the region: the face and its surroundings.
    """
    b = np.asarray(faces, np.int64).reshape(-1, 4)
    if not len(b):
        raise InvalidInputError("context_region: no face box")
    x0, y0, x1, y1 = (int(v) for v in b[np.argmax((b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1]))])
    w, h = x1 - x0, y1 - y0
    return max(0, x0 - w), max(0, y0 - h), min(width, x1 + w), min(height, y1 + h)


def crop_resized(image: Image, region: tuple[int, int, int, int], *, height: int) -> Image:
    """`image[y0:y1, x0:x1]` resized to `height` pixels high (aspect kept; nearest-neighbour, so a mosaic
    stays a mosaic and no pixel is invented), as a contiguous (height, W', 3) uint8 array."""
    x0, y0, x1, y1 = region
    crop = image[y0:y1, x0:x1]
    width = max(1, round(crop.shape[1] * height / crop.shape[0]))
    return np.ascontiguousarray(cv2.resize(crop, (width, height), interpolation=cv2.INTER_NEAREST))


@dataclass(frozen=True)
class MethodRow:
    """One row of the comparison table (NaN where a measurement had no data or was switched off)."""

    method: str
    n_images: int
    psnr_whole: float
    psnr_outside: float
    ssim_whole: float
    ssim_outside: float
    msssim_whole: float
    residual_face_rate: float
    reid_naive_top1: float
    reid_naive_top5: float
    reid_adaptive_top1: float
    reid_adaptive_top5: float
    reid_trained_accuracy: float
    reid_chance: float
    reid_worst_rate: float
    n_probes: int
    utility_raw_accuracy: float
    utility_anon_accuracy: float
    utility_ratio: float
    text_pii_readable: float
    text_nonpii_readable: float
    plate_readable: float
    # what a person sees (tasks.check_quality.appearance, pooled over the images; NaN: not measured)
    changed_share: float = float("nan")
    changed_outside: float = float("nan")
    border_edge_energy: float = float("nan")
    nested_regions: float = float("nan")
    flat_regions: float = float("nan")
    seam_regions: float = float("nan")
    body_preserved: float = float("nan")  # the body detector's raw people found again (bodies not targeted)

    def as_dict(self) -> dict[str, Any]:
        """JSON/CSV-ready row."""
        return asdict(self)

    def as_metrics(self) -> dict[str, float]:
        """`check_quality/compare_<method>_<column>` for every numeric column."""
        return {
            f"check_quality/compare_{self.method}_{k}": float(v)
            for k, v in asdict(self).items()
            if k != "method"
        }


@dataclass(frozen=True)
class CompareTools:
    """What every row needs, built once per worker: the auditor, the embedder, the task model, OCR."""

    detector: Detector
    embed: Callable[[Sequence[Image]], Embeddings]
    clear_gallery: Embeddings
    model: torch.nn.Module | None  # None: no labels, no task model (utility columns NaN)
    train: TrainParams
    ocr: OcrReader | None = None
    body: Detector | None = None  # people detector of the non-targeted check (None: body_preserved NaN)


def _mean(values: Sequence[float]) -> float:
    arr = np.asarray(values, np.float64)
    arr = arr[~np.isnan(arr)]
    return float(arr.mean()) if arr.size else float("nan")


def _quality(
    samples: Sequence[Sample], outs: Sequence[Image], anonymize: AnonymizeParams
) -> dict[str, float]:
    q = [
        image_quality(s.image, o, sensitive_boxes=padded_sensitive(s, anonymize))
        for s, o in zip(samples, outs, strict=True)
    ]
    # per-image PSNR is capped (identical pixels) so that means stay finite
    return {
        k: _mean([getattr(x, k) for x in q])
        for k in ("psnr_whole", "psnr_outside", "ssim_whole", "ssim_outside", "msssim_whole")
    }


def _residual(samples: Sequence[Sample], outs: Sequence[Image], detector: Detector, n: int) -> float:
    found = total = 0
    for s, o in list(zip(samples, outs, strict=True))[:n]:
        faces = s.boxes.get("face", np.zeros((0, 4), np.int64))
        found += residual_faces(detector(o), faces, match_iou=0.3)[0]
        total += len(faces)
    return found / total if total else float("nan")


def _appearance(
    samples: Sequence[Sample], outs: Sequence[Image], anonymize: AnonymizeParams
) -> dict[str, float]:
    """The appearance columns, pooled over the images (boxes padded as the anonymizer pads them)."""
    a = pooled(
        appearance(s.image, o, sensitive_boxes=padded_sensitive(s, anonymize))
        for s, o in zip(samples, outs, strict=True)
    )
    return {
        "changed_share": a.changed_share,
        "changed_outside": a.changed_outside_share,
        "border_edge_energy": a.border_edge_energy,
        "nested_regions": float(a.nested),
        "flat_regions": float(a.flat),
        "seam_regions": float(a.seams),
    }


def _people(
    samples: Sequence[Sample], outs: Sequence[Image], body: Detector | None, n: int, match_iou: float
) -> float:
    """Share of the body detector's raw detections found again on the outputs (NaN: no detector or none)."""
    kept = total = 0
    for s, o in list(zip(samples, outs, strict=True))[: n if body is not None else 0]:
        raw = body(s.image)  # type: ignore[misc]
        if len(raw):  # the output is read only where there is someone to find
            k, t = preserved(raw, body(o), match_iou=match_iou)  # type: ignore[misc]
            kept, total = kept + k, total + t
    return kept / total if total else float("nan")


def _probes(
    samples: Sequence[Sample], outs: Sequence[Image], n: int
) -> tuple[list[Image], NDArray[np.int64]]:
    crops, ids = [], []
    for s, o in zip(samples, outs, strict=True):
        for (x0, y0, x1, y1), ident in zip(s.boxes.get("face", np.zeros((0, 4))), s.identities, strict=True):
            crops.append(np.ascontiguousarray(o[y0:y1, x0:x1]))
            ids.append(ident)
    return crops[:n], np.asarray(ids[:n], np.int64)


def _text(
    samples: Sequence[Sample], outs: Sequence[Image], ocr: OcrReader | None, n: int, sim: float
) -> dict[str, float]:
    cats = {"text_pii": "text_pii_readable", "text_nonpii": "text_nonpii_readable", "plate": "plate_readable"}
    read = {c: [0, 0] for c in cats}
    if ocr is None:
        n = 0
    for s, o in list(zip(samples, outs, strict=True))[:n]:
        boxes, texts = ocr(o)  # type: ignore[misc]
        for c in cats:
            if len(s.texts.get(c, ())):
                hit = read_strings(s.boxes[c], s.texts[c], boxes, texts, min_similarity=sim)
                read[c] = [read[c][0] + int(hit.sum()), read[c][1] + len(hit)]
    return {col: (read[c][0] / read[c][1] if read[c][1] else float("nan")) for c, col in cats.items()}


@dataclass(frozen=True)
class CompareConfig:
    """Sample sizes and attacker settings of one comparison row (from `CheckQualityParams`)."""

    anonymize: AnonymizeParams
    attack: AttackConfig
    probes: int  # no defaults here: the params schema holds them (`tasks.check_quality.plan.compare_config`)
    residual_images: int
    text_images: int
    text_min_similarity: float
    seed: int
    match_iou: float  # IoU at which an output detection is the raw one (body_preserved)
    people_images: int  # of the samples, images the people detector reads (body_preserved)


def compare_method(
    samples: Sequence[Sample], *, method: str, config: CompareConfig, tools: CompareTools
) -> MethodRow:
    """Apply `method` to every sample and measure its row of the comparison table.

    Args:
        samples: the raw images every method is run on (the same for every row).
        method: an `OBFUSCATORS` key or "none" (clear calibration row).
        config: sample sizes and the attacker's settings (its `method` is replaced by `method`).
        tools: auditor, embedder, clear gallery embeddings, the vanilla task model, OCR (None: no text columns).
    Raises:
        InvalidInputError: no samples, unknown method, or no face to attack.
    """
    if not samples:
        raise InvalidInputError("compare_method: no sample images")
    outs = [
        obfuscate_sample(
            s, method=method, options=config.attack.options, anonymize=config.anonymize, seed=config.seed
        )
        for s in samples
    ]
    crops, ids = _probes(samples, outs, config.probes)
    reid = _reid(samples, crops, ids, method=method, config=config, tools=tools)
    labels = np.asarray([s.label for s in samples], np.int64)
    raw_acc = anon_acc = float("nan")  # no task model without labels
    if tools.model is not None:
        raw_acc = accuracy(tools.model, task_inputs([s.image for s in samples], train=tools.train), labels)
        anon_acc = accuracy(tools.model, task_inputs(outs, train=tools.train), labels)
    return MethodRow(
        method=method,
        n_images=len(samples),
        **_quality(samples, outs, config.anonymize),
        residual_face_rate=_residual(samples, outs, tools.detector, config.residual_images),
        **reid,
        n_probes=len(crops),
        utility_raw_accuracy=raw_acc,
        utility_anon_accuracy=anon_acc,
        utility_ratio=anon_acc / raw_acc if raw_acc > 0 else float("nan"),
        **_text(samples, outs, tools.ocr, config.text_images, config.text_min_similarity),
        **_appearance(samples, outs, config.anonymize),
        body_preserved=_people(samples, outs, tools.body, config.people_images, config.match_iou),
    )


_NAN_REID = {
    k: float("nan")
    for k in (
        "reid_naive_top1",
        "reid_naive_top5",
        "reid_adaptive_top1",
        "reid_adaptive_top5",
        "reid_trained_accuracy",
        "reid_chance",
        "reid_worst_rate",
    )
}


def _reid(
    samples: Sequence[Sample],
    crops: list[Image],
    ids: NDArray[np.int64],
    *,
    method: str,
    config: CompareConfig,
    tools: CompareTools,
) -> dict[str, float]:
    """The re-identification columns: the identity attacks when every face has an identity, else the
    identity-free linkage attack (naive / adaptive; no trained attacker), NaN with fewer than 2 faces."""
    if len(crops) and ids.min() >= 0:
        r = attack(
            crops,
            ids,
            config=AttackConfig(**{**asdict_shallow(config.attack), "method": method}),
            embed=tools.embed,
            clear_gallery=tools.clear_gallery,
        )
        return {
            "reid_naive_top1": r.naive.top1,
            "reid_naive_top5": r.naive.top5,
            "reid_adaptive_top1": r.adaptive.top1,
            "reid_adaptive_top5": r.adaptive.top5,
            "reid_trained_accuracy": r.trained.accuracy,
            "reid_chance": r.naive.chance,
            "reid_worst_rate": r.worst_rate,
        }
    raw = [
        np.ascontiguousarray(s.image[y0:y1, x0:x1])
        for s in samples
        for x0, y0, x1, y1 in s.boxes.get("face", np.zeros((0, 4), np.int64))
    ][: len(crops)]
    if len(crops) < 2:
        return dict(_NAN_REID)
    a = config.attack
    link = linkage_attack(
        raw, crops, method=method, options=a.options, pad=a.pad, embed=tools.embed, seed=a.seed
    )
    return {
        "reid_naive_top1": link.naive.top1,
        "reid_naive_top5": link.naive.top5,
        "reid_adaptive_top1": link.adaptive.top1,
        "reid_adaptive_top5": link.adaptive.top5,
        "reid_trained_accuracy": float("nan"),
        "reid_chance": link.chance,
        "reid_worst_rate": max(link.naive.top1, link.adaptive.top1),
    }


def asdict_shallow(obj: Any) -> dict[str, Any]:
    """A dataclass's fields as a dict without deep-copying them (the k-Same pool stays shared)."""
    return {name: getattr(obj, name) for name in obj.__dataclass_fields__}


def comparison_metrics(table: Sequence[MethodRow]) -> dict[str, float]:
    """The method table's rows as stage metrics (`MethodRow.as_metrics`, one key set per method)."""
    return {k: v for row in table for k, v in row.as_metrics().items()}
