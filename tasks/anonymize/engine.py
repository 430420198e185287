"""Anonymize one image: detect, obfuscate, verify; fail closed.

Verification re-runs every detector on the obfuscated image. Detectors only report sensitive content
(faces, plates, personal text), so anything they still report is a residual. A residual is escalated:
its box and every earlier box it overlaps are masked (filled black), and the detectors run again, for
up to `ESCALATIONS` rounds (masking one damaged line can damage the next). If anything is still
reported then, the image is quarantined (`image is None`) with the reason. A properly
pixelated face (block 8 on ≥ 24 px faces) rarely fires the face detector (~1 in 7 fire the `default`
Haar cascade again); escalation exists because a pixelated or blurred line of text can still look like
"text" to the OCR detector and a coarse mosaic can look like a face to a Haar cascade. The default
method, inpaint, leaves no face structure behind.

By default (`verify="regions"`) the verification pass runs only around the changed boxes
(`tasks.anonymize.regions`); `verify="whole"` re-runs every detector on the whole output.

Skipped for speed: when the first pass finds nothing, the output equals the input, and the
(deterministic) detectors would find nothing again, so no verification pass runs.
"""

from __future__ import annotations

import dataclasses
import difflib
import hashlib
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import NDArray

from tasks.anonymize.detectors.common import each_detector
from tasks.anonymize.obfuscate import mask_regions, obfuscate, soft_core
from tasks.anonymize.pii import recognised_pii
from tasks.anonymize.regions import detect_changed
from tasks.anonymize.replace import lfw_pool
from tasks.errors import AnonymizationError, InvalidInputError
from tasks.params import AnonymizeParams
from tasks.types import Detections, Detector, Image, check_image

# What a detector or an obfuscator raises on purpose for a bad input or a failed backend.
# Anything else (TypeError, IndexError, ...) is a bug in our code and must not become a quarantine.
_EXPECTED = (AnonymizationError, InvalidInputError)
# Obfuscation order: methods that read only inside their boxes first, then those that read around them.
_ORDER = ("mask", "pixelate", "blur", "dp_pixelate", "replace", "inpaint_soft", "inpaint")
FACE_ONLY = ("replace", "inpaint_soft")  # face methods: any other category they are asked for is inpainted
VERIFY_MODES = ("regions", "whole", "off")
# Masking rounds before an image is quarantined. A redaction can damage a kept neighbour (an inpainted
# text line bites into the sign line above it, which then reads as an unknown, so personal, word); masking
# that damage can bite the next line. Real photo scenetext02 needs 2 rounds; each round only masks more.
ESCALATIONS = 3
# A residual text box is a damaged re-read of a kept line (`drop_rereads`) when the two boxes cover this
# much of each other and the strings are this alike (difflib ratio): "SportsCantra" / "Sports Centre" 0.83.
REREAD_COVER, REREAD_SIMILAR = 0.5, 0.75
REREAD_MIN = 3  # alphanumerics a re-read needs before it is compared at all


@dataclass(frozen=True)
class AnonymizedImage:
    """Outcome for one image.

    Attributes:
        image: (H, W, 3) uint8 anonymized copy, or None when quarantined (fail closed).
        detections: what the first pass found and redacted.
        residual: what the last verification pass still found (empty unless quarantined).
        quarantine_reason: why the image was quarantined, or None.
        escalated: boxes masked in the escalation rounds (0 when the first obfuscation sufficed).
        methods: the obfuscator applied to each detection (parallel to `detections`).
        dp_epsilon: the ε this image spent when any box was `dp_pixelate`d, else None.
    """

    image: NDArray[np.uint8] | None
    detections: Detections
    residual: Detections
    quarantine_reason: str | None
    escalated: int = 0
    methods: tuple[str, ...] = ()
    dp_epsilon: float | None = None


def detect(image: Image, detectors: Mapping[str, Detector]) -> Detections:
    """Run every detector on `image` (`each_detector`: in order, or on a `DetectorSet`'s threads) and
    concatenate what they found.

    Raises:
        AnonymizationError: a detector failed; the message names it.
    """
    return Detections.concat(each_detector(detectors, lambda detector: detector(image)))


def detect_first(image: Image, detectors: Mapping[str, Detector]) -> tuple[Detections, Detections]:
    """`detect`, and the text lines the detectors judged non-personal and left (a detector with a
    `detect_and_keep` method, the OCR detector, reports them): (found, kept).

    Raises:
        AnonymizationError: a detector failed; the message names it.
    """

    def both(detector: Detector) -> tuple[Detections, Detections]:
        keep = getattr(detector, "detect_and_keep", None)
        return keep(image) if keep is not None else (detector(image), Detections.empty())

    pairs = each_detector(detectors, both)
    return Detections.concat([f for f, _ in pairs]), Detections.concat([k for _, k in pairs])


def _alnum(s: str) -> str:
    return "".join(ch for ch in s.lower() if ch.isalnum())


def drop_rereads(residual: Detections, kept: Detections, *, cover: float = REREAD_COVER,
                 similar: float = REREAD_SIMILAR) -> Detections:  # fmt: skip
    """Drop residual text that is a damaged re-read of a line the first pass read and kept.

    A redaction can bite into the ordinary line next to it ("Sports Centre" above an inpainted place name
    re-reads as "SportsCantra", an unknown word, so personal by default). Such a residual is not new
    content: its box and a kept line's box cover >= `cover` of each other, its string is >= `similar`
    alike the kept string (difflib ratio on lower-case alphanumerics) and no pattern recogniser fires on it.
    The first pass judged that line on the raw pixels, so the damaged copy shows no more than that did.
    Anything else (faces, plates, strings unlike any kept line, text where no line was kept) stays.
    """
    if not len(residual) or not len(kept):
        return residual
    a, b = residual.boxes.astype(np.float64), kept.boxes.astype(np.float64)
    ix = (np.minimum(a[:, None, 2], b[None, :, 2]) - np.maximum(a[:, None, 0], b[None, :, 0])).clip(0)
    iy = (np.minimum(a[:, None, 3], b[None, :, 3]) - np.maximum(a[:, None, 1], b[None, :, 1])).clip(0)
    inter = ix * iy
    area_a = ((a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1]))[:, None].clip(1)
    area_b = ((b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1]))[None, :].clip(1)
    same_place = (inter / area_a >= cover) & (inter / area_b >= cover)
    texts = residual.text or ("",) * len(residual)
    drop = np.zeros(len(residual), bool)
    for i, (category, text) in enumerate(zip(residual.category, texts, strict=True)):
        if category != "text" or len(_alnum(text)) < REREAD_MIN or recognised_pii(text):
            continue
        drop[i] = any(alike(_alnum(text), _alnum(kept.text[j])) >= similar for j in np.flatnonzero(same_place[i]))
    return residual.select(~drop)


def alike(reread: str, line: str) -> float:
    """How alike a re-read string is to a kept line or to its best-matching part of the same length
    (difflib ratio, 0-1): a damaged line can re-read as one of its pieces ("centi" of "copy centre")."""
    if len(reread) >= len(line):
        return difflib.SequenceMatcher(None, reread, line).ratio()
    n = len(reread)
    return max(difflib.SequenceMatcher(None, reread, line[i : i + n]).ratio() for i in range(len(line) - n + 1))


def describe(dets: Detections) -> str:
    """'2 face, 1 text' — counts per category, in a stable order."""
    return ", ".join(f"{n} {cat}" for cat, n in sorted(Counter(dets.category).items()))


def overlaps(a: NDArray[np.int64], b: NDArray[np.int64]) -> NDArray[np.bool_]:
    """(len(a), len(b)) bool: does box a_i intersect box b_j with a positive area."""
    ix = np.minimum(a[:, None, 2], b[None, :, 2]) - np.maximum(a[:, None, 0], b[None, :, 0])
    iy = np.minimum(a[:, None, 3], b[None, :, 3]) - np.maximum(a[:, None, 1], b[None, :, 1])
    return (ix > 0) & (iy > 0)


def _quarantine(
    found: Detections, reason: str, residual: Detections | None = None, escalated: int = 0
) -> AnonymizedImage:
    return AnonymizedImage(
        None, found, residual if residual is not None else Detections.empty(), reason, escalated
    )


def _escalate(output: Image, found: Detections, residual: Detections) -> tuple[Image, NDArray[np.int64]]:
    """Mask the residual boxes and every earlier box they overlap; return the output and those boxes."""
    hit = overlaps(found.boxes, residual.boxes).any(axis=1)
    boxes = np.unique(np.concatenate([residual.boxes, found.boxes[hit]]), axis=0)
    return mask_regions(output, boxes), boxes


def method_for(category: str, *, method: str, methods: Mapping[str, str]) -> str:
    """The obfuscator for one category: `methods[category]`, else `method`; `replace` and `inpaint_soft`
    (an ellipse shaped for a head) only treat faces — any other category they are asked for is
    inpainted (removed whole) instead."""
    chosen = methods.get(category, method)
    return "inpaint" if chosen in FACE_ONLY and category != "face" else chosen


def obfuscate_detections(
    image: Image,
    found: Detections,
    *,
    method: str,
    methods: Mapping[str, str],
    block: int,
    blur_strength: float,
    options: Mapping[str, Mapping[str, Any]],
) -> tuple[Image, tuple[str, ...]]:
    """Obfuscate each detection with its category's method; return (a copy of the image, the methods).

    Methods that read only inside their boxes run first; `replace` (Poisson boundary) and `inpaint`
    (fills from the surroundings) run last, so they never read a sensitive box not yet obfuscated.

    Raises:
        InvalidInputError, AnonymizationError: as `obfuscate`.
    """
    chosen = tuple(method_for(c, method=method, methods=methods) for c in found.category)
    output = image.copy()
    for name in sorted(set(chosen), key=lambda m: (_ORDER.index(m) if m in _ORDER else len(_ORDER), m)):
        boxes = found.boxes[np.array([c == name for c in chosen], bool)]
        opts = options
        if name == "inpaint_soft":  # it fills from its surroundings: never from another box not yet done
            opts = {**options, name: {**options.get(name, {}), "avoid": found.boxes}}
        output = obfuscate(
            output, boxes, method=name, block=block, blur_strength=blur_strength, options=opts
        )
    return output, chosen


def obfuscation_options(p: AnonymizeParams) -> dict[str, dict[str, Any]]:
    """Every method's options from the stage's params; the k-Same pool is built only when `replace` is used."""
    opts: dict[str, dict[str, Any]] = {
        "pixelate": {"block": p.pixelate_block},
        "blur": {"strength": p.blur_strength},
        "dp_pixelate": {"block": p.dp_block, "epsilon": p.dp_epsilon, "neighbourhood": p.dp_neighbourhood},
        "inpaint": {"radius": p.inpaint_radius, "algorithm": p.inpaint_algorithm},
        "inpaint_soft": {"radius": p.inpaint_radius, "core": soft_core(p.face.pad), "feather": p.soft_feather,
                         "fill_side": p.soft_fill_side, "grain": p.soft_grain},
    }
    if "replace" in {p.method, *p.methods.values()}:
        opts["replace"] = {"pool": lfw_pool(k=p.replace_k)}
    return opts


def image_rng(seed: int, image_id: str) -> np.random.Generator:
    """A noise generator seeded from `seed` and the image's id: reproducible, independent per image.

    DP caveat: Laplace noise protects only while it is secret. Anyone who knows `seed` (e.g. from a
    committed params.yaml) and the id can regenerate the noise and subtract it, so a dp_pixelate
    guarantee meant to hold against such a reader needs a secret seed.
    """
    digest = hashlib.sha256(image_id.encode()).digest()
    return np.random.default_rng([seed, int.from_bytes(digest[:8], "little")])


def _with_rng(
    used: set[str], options: Mapping[str, Mapping[str, Any]] | None, rng: np.random.Generator | None
) -> dict[str, Mapping[str, Any]]:
    """Check the options the chosen methods need; hand the per-image rng to dp_pixelate."""
    opts = dict(options or {})
    if "dp_pixelate" in used:
        if rng is None or "epsilon" not in opts.get("dp_pixelate", {}):
            raise InvalidInputError(
                "dp_pixelate needs options['dp_pixelate'] (block, epsilon, neighbourhood) and an rng"
            )
        opts["dp_pixelate"] = {**opts["dp_pixelate"], "rng": rng}
    if "inpaint_soft" in used and rng is not None:  # the grain: a per-image pattern, not one for all
        opts["inpaint_soft"] = {**opts.get("inpaint_soft", {}), "rng": rng}
    if "replace" in used and "pool" not in opts.get("replace", {}):
        raise InvalidInputError("replace needs options['replace']['pool'] (a k-Same FacePool)")
    return opts


def anonymize_image(
    image: Image,
    *,
    detectors: Mapping[str, Detector],
    method: str = "pixelate",
    block: int = 8,
    blur_strength: float = 0.5,
    verify: bool | str = "regions",
    methods: Mapping[str, str] | None = None,
    options: Mapping[str, Mapping[str, Any]] | None = None,
    rng: np.random.Generator | None = None,
    carry: Callable[[Detections], Detections] | None = None,
) -> AnonymizedImage:
    """Detect sensitive content, obfuscate it, verify that nothing survived; quarantine otherwise.

    Args:
        image: (H, W, 3) uint8 RGB.
        detectors: name → detector; each returns only what must be redacted.
        method: the `OBFUSCATORS` key for categories not in `methods`.
        block: pixelation cell side in pixels.
        blur_strength: blur sigma as a fraction of the box's short side.
        verify: re-run the detectors on the output (and escalate to masking): "regions" around
            the changed boxes (True means this), "whole" on the whole output, "off" (or False) never.
        methods: category → `OBFUSCATORS` key, overriding `method` per category.
        options: method → its obfuscator's options (dp_pixelate: block, epsilon, neighbourhood;
            inpaint: radius, algorithm; replace: pool).
        rng: noise for dp_pixelate (e.g. `image_rng(seed, image_id)`); required when it is used.
        carry: called with the first pass's detections; what it returns is redacted too (a video
            tracker's boxes carried over from earlier frames, `tasks.anonymize.tracker`).
    Returns:
        An `AnonymizedImage`; `image` is None and `quarantine_reason` says why when it failed.
    Raises:
        InvalidInputError: a chosen method lacks its options or rng (a configuration error).
    """
    mode = ("regions" if verify else "off") if isinstance(verify, bool) else verify
    if mode not in VERIFY_MODES:
        raise InvalidInputError(f"verify must be one of {VERIFY_MODES}, got {verify!r}")
    methods = dict(methods or {})
    opts = _with_rng({method, *methods.values()}, options, rng)
    try:
        check_image(image)
        found, kept = detect_first(image, detectors)
        if carry is not None:
            found = Detections.concat([found, carry(found)])
    except _EXPECTED as err:
        return _quarantine(Detections.empty(), f"detection failed: {err}")
    try:
        output, chosen = obfuscate_detections(
            image,
            found,
            method=method,
            methods=methods,
            block=block,
            blur_strength=blur_strength,
            options=opts,
        )
    except _EXPECTED as err:
        return _quarantine(found, f"anonymization failed: {err}")
    eps = float(opts["dp_pixelate"]["epsilon"]) if "dp_pixelate" in chosen else None
    if mode == "off" or not len(found):
        return AnonymizedImage(output, found, Detections.empty(), None, 0, chosen, eps)
    result = _verify(
        output, found, detectors, synthetic=_replaced(found, chosen), kept=kept,
        before=image if mode == "regions" else None,
    )  # fmt: skip
    return dataclasses.replace(result, methods=chosen, dp_epsilon=eps)


def _replaced(found: Detections, chosen: tuple[str, ...]) -> NDArray[np.int64]:
    """(K, 4) boxes that now hold a synthetic (k-Same) face."""
    return np.asarray(found.boxes[np.array([m == "replace" for m in chosen], bool)].reshape(-1, 4), np.int64)


def drop_synthetic(residual: Detections, synthetic: NDArray[np.int64], *, inside: float = 0.5) -> Detections:
    """Drop residual faces lying mostly (>= `inside` of their area) in a box we filled with a surrogate face.

    A k-Same surrogate is a face by construction, so the face detector is expected to find it again.
    """
    if not len(residual) or not len(synthetic):
        return residual
    a, b = residual.boxes, synthetic
    ix = (np.minimum(a[:, None, 2], b[None, :, 2]) - np.maximum(a[:, None, 0], b[None, :, 0])).clip(0)
    iy = (np.minimum(a[:, None, 3], b[None, :, 3]) - np.maximum(a[:, None, 1], b[None, :, 1])).clip(0)
    area = ((a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1]))[:, None]
    covered = ((ix * iy) / area >= inside).any(axis=1)
    is_face = np.array([c == "face" for c in residual.category], bool)
    return residual.select(~(covered & is_face))


def detect_residual(
    output: Image, detectors: Mapping[str, Detector], *, before: Image | None, changed: NDArray[np.int64]
) -> Detections:
    """The verification pass: every detector on the whole `output` (`before` None), or around the
    `changed` boxes of `output` versus `before` (`tasks.anonymize.regions`).

    Raises:
        AnonymizationError: a detector failed; the message names it.
    """
    if before is None:
        return detect(output, detectors)
    found, _ = detect_changed(before, output, changed, detectors)
    return Detections.concat(list(found.values()))


def _verify(
    output: Image,
    found: Detections,
    detectors: Mapping[str, Detector],
    *,
    synthetic: NDArray[np.int64],
    kept: Detections,
    before: Image | None,
) -> AnonymizedImage:
    escalated, changed, masked_all = 0, found.boxes, np.zeros((0, 4), np.int64)
    for attempt in range(ESCALATIONS + 1):
        try:
            residual = detect_residual(output, detectors, before=before, changed=changed)
            residual = drop_rereads(drop_synthetic(residual, synthetic), kept)
        except _EXPECTED as err:
            return _quarantine(found, f"verification failed: {err}", escalated=escalated)
        if not len(residual):
            return AnonymizedImage(output, found, residual, None, escalated)
        if attempt < ESCALATIONS:
            output, masked = _escalate(output, found, residual)
            masked_all = np.unique(np.concatenate([masked_all, masked]), axis=0)
            escalated, changed = len(masked_all), np.concatenate([found.boxes, masked_all])
    return _quarantine(found, f"sensitive content survived: {describe(residual)}", residual, escalated)


@dataclass(frozen=True)
class AnonymizeSummary:
    """Counts over many `AnonymizedImage`s.

    Attributes:
        images: inputs seen; processed + quarantined == images.
        processed: images written to the anonymized output.
        quarantined: images withheld.
        detections: redacted boxes per category (first pass).
        escalated_images: images that needed the masking retry.
        reasons: quarantine reason → count.
        dp_images: images with at least one `dp_pixelate`d box.
        dp_epsilon_max: the largest per-image ε among them (0.0 when there are none).
    """

    images: int
    processed: int
    quarantined: int
    detections: Mapping[str, int] = field(default_factory=dict)
    escalated_images: int = 0
    reasons: Mapping[str, int] = field(default_factory=dict)
    dp_images: int = 0
    dp_epsilon_max: float = 0.0

    def as_metrics(self) -> dict[str, float]:
        """Flat metrics keyed "anonymize/<metric>"."""
        metrics = {
            "anonymize/images": float(self.images),
            "anonymize/processed": float(self.processed),
            "anonymize/quarantined": float(self.quarantined),
            "anonymize/quarantine_fraction": self.quarantined / self.images if self.images else 0.0,
            "anonymize/escalated_images": float(self.escalated_images),
        }
        metrics |= {f"anonymize/detections_{cat}": float(n) for cat, n in sorted(self.detections.items())}
        if self.dp_images:  # no DP pixelization: no ε to report (0 would read as "perfectly private")
            metrics |= {
                "anonymize/dp_images": float(self.dp_images),
                "anonymize/dp_epsilon_max": self.dp_epsilon_max,
            }
        return metrics


def summarize(results: Iterable[AnonymizedImage]) -> AnonymizeSummary:
    """Aggregate per-image results into counts per category, quarantine reasons and DP ε."""
    return summarize_outcomes(
        (r.detections.category, r.escalated, r.quarantine_reason, r.dp_epsilon) for r in results
    )


def summarize_outcomes(
    outcomes: Iterable[tuple[Iterable[str], int, str | None, float | None]],
) -> AnonymizeSummary:
    """Aggregate (categories, escalated boxes, quarantine reason or None, ε or None), one per image."""
    images = quarantined = escalated = dp_images = 0
    eps_max = 0.0
    detections: Counter[str] = Counter()
    reasons: Counter[str] = Counter()
    for categories, n_escalated, reason, eps in outcomes:
        images += 1
        detections.update(categories)
        escalated += n_escalated > 0
        if reason is not None:
            quarantined += 1
            reasons[reason] += 1
        if eps is not None:
            dp_images, eps_max = dp_images + 1, max(eps_max, eps)
    return AnonymizeSummary(
        images,
        images - quarantined,
        quarantined,
        dict(detections),
        escalated,
        dict(reasons),
        dp_images,
        eps_max,
    )
