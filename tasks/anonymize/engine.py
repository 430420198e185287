"""Anonymize one image: detect, obfuscate, verify; fail closed.

Verification re-runs every detector on the obfuscated image. Detectors only report sensitive content
(faces, plates, personal text), so anything they still report is a residual. A residual is escalated in
proportion: its box and every earlier box it overlaps get their category's own method again, on a region
grown by `ESCALATE_GROW` of its side per round and at a stronger setting (`OWN_ROUNDS` rounds); only then
are those boxes masked (filled black, `MASK_ROUNDS` rounds: masking one damaged line can damage the next),
and the masked boxes are counted (`AnonymizedImage.masked`). No round covers more than the boxes it
escalates plus that growth. If anything is still reported then, the image is quarantined
(`image is None`) with the reason — never blacked out wholesale. Escalation exists because a pixelated or
blurred line of text can still look like "text" to the OCR detector, a coarse mosaic can look like a face
to a Haar cascade, and redacting one line can damage the next. A shape kept on purpose is no residual:
a k-Same surrogate found again by the face detector, a body `silhouette` by the body detector
(`KEEPS_SHAPE`).

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
from tasks.anonymize.obfuscate import mask_regions, obfuscate, soft_core, soft_extent
from tasks.anonymize.pii import recognised_pii
from tasks.anonymize.regions import detect_changed, merge
from tasks.anonymize.replace import lfw_pool
from tasks.errors import AnonymizationError, InvalidInputError
from tasks.params import AnonymizeParams
from tasks.types import Detections, Detector, Image, check_image

# What a detector or an obfuscator raises on purpose for a bad input or a failed backend.
# Anything else (TypeError, IndexError, ...) is a bug in our code and must not become a quarantine.
_EXPECTED = (AnonymizationError, InvalidInputError)
# Obfuscation order: methods that read only inside their boxes first, then those that read around them.
_ORDER = ("mask", "pixelate", "blur", "silhouette", "dp_pixelate", "replace", "inpaint_soft", "inpaint")
FACE_ONLY = ("replace", "inpaint_soft")  # face methods: any other category they are asked for is inpainted
BODY_ONLY = ("silhouette",)  # body methods: a person-shaped figure is no way to hide text, a plate or a face
# Methods that keep a shape on purpose: a detector of that category finding it again is no residual (a
# k-Same surrogate is a face by construction; a silhouette is meant to stay a person).
KEEPS_SHAPE = {"replace": "face", "silhouette": "body"}
VERIFY_MODES = ("regions", "whole", "off")
# Escalation rounds before an image is quarantined: first the category's own method again on a grown
# region at a stronger setting, then masks. A redaction can damage a kept neighbour (an inpainted text line
# bites into the sign line above it, which then reads as an unknown, so personal, word); redoing that
# damage can bite the next line. Real photo scenetext02 needed 2 rounds.
OWN_ROUNDS, MASK_ROUNDS = 2, 2
ESCALATIONS = OWN_ROUNDS + MASK_ROUNDS
ESCALATE_GROW = 0.1  # each own-method round grows a box by this share of its side on every side
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
        escalated: boxes redone in the escalation rounds (0 when the first obfuscation sufficed).
        methods: the obfuscator applied to each detection (parallel to `detections`).
        dp_epsilon: the ε this image spent when any box was `dp_pixelate`d, else None.
        masked: boxes filled black in the last escalation rounds (0 unless its own method never sufficed).
        changed: (K, 4) every region the output may differ from the input in: each detection's region
            (`changed_regions`) and each escalation round's (empty when verification did not run).
    """

    image: NDArray[np.uint8] | None
    detections: Detections
    residual: Detections
    quarantine_reason: str | None
    escalated: int = 0
    methods: tuple[str, ...] = ()
    dp_epsilon: float | None = None
    masked: int = 0
    changed: NDArray[np.int64] = field(default_factory=lambda: np.zeros((0, 4), np.int64))


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
        drop[i] = any(
            alike(_alnum(text), _alnum(kept.text[j])) >= similar for j in np.flatnonzero(same_place[i])
        )
    return residual.select(~drop)


def alike(reread: str, line: str) -> float:
    """How alike a re-read string is to a kept line or to its best-matching part of the same length
    (difflib ratio, 0-1): a damaged line can re-read as one of its pieces ("centi" of "copy centre")."""
    if len(reread) >= len(line):
        return difflib.SequenceMatcher(None, reread, line).ratio()
    n = len(reread)
    return max(
        difflib.SequenceMatcher(None, reread, line[i : i + n]).ratio() for i in range(len(line) - n + 1)
    )


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


def escalation_targets(found: Detections, residual: Detections) -> Detections:
    """What an escalation round redoes: the residual detections and every earlier detection they overlap."""
    hit = np.asarray(overlaps(found.boxes, residual.boxes).any(axis=1), bool)
    return Detections.concat([residual, found.select(hit)])


def grow(boxes: NDArray[np.int64], share: float, *, width: int, height: int) -> NDArray[np.int64]:
    """`boxes` grown by `share` of their own side on every side, clipped to the image."""
    b = np.asarray(boxes, np.int64).reshape(-1, 4)
    m = np.ceil((b[:, 2:] - b[:, :2]) * share).astype(np.int64)
    return np.asarray(
        np.clip(np.concatenate([b[:, :2] - m, b[:, 2:] + m], axis=1), 0, [width, height, width, height]),
        np.int64,
    )


def stronger(options: Mapping[str, Mapping[str, Any]], *, block: int, blur_strength: float,
             level: int) -> tuple[dict[str, dict[str, Any]], int, float]:  # fmt: skip
    """Options, block and blur strength for escalation round `level` (1, 2, ...): mosaics with cells
    (1 + level) times as large, blur (1 + level) times as strong; the other methods as they were."""
    f = 1 + level
    opts = {name: dict(o) for name, o in options.items()}
    for name in ("pixelate", "dp_pixelate"):
        if "block" in opts.get(name, {}):
            opts[name]["block"] = int(opts[name]["block"]) * f
    if "strength" in opts.get("blur", {}):
        opts["blur"]["strength"] = float(opts["blur"]["strength"]) * f
    return opts, block * f, blur_strength * f


def method_for(category: str, *, method: str, methods: Mapping[str, str]) -> str:
    """The obfuscator for one category: `methods[category]`, else `method`; `replace` and `inpaint_soft`
    (an ellipse shaped for a head) only treat faces and `silhouette` only bodies — any other category
    they are asked for is inpainted (removed whole) instead."""
    chosen = methods.get(category, method)
    if (chosen in FACE_ONLY and category != "face") or (chosen in BODY_ONLY and category != "body"):
        return "inpaint"
    return chosen


# Methods that obfuscate each box on its own: overlapping boxes of one category are merged into their
# bounding box first, so a box is never obfuscated inside another's result (a mosaic within a mosaic).
# inpaint treats all its boxes as one mask and inpaint_soft joins overlapping ellipses itself.
_MERGED = ("mask", "pixelate", "blur", "dp_pixelate", "replace")


def merge_overlapping(found: Detections, chosen: tuple[str, ...]) -> tuple[Detections, tuple[str, ...]]:
    """Detections whose boxes overlap (positive area) and share a category and a `_MERGED` method become one
    detection over their bounding box (the highest score kept); the rest are returned unchanged."""
    keep, parts, names = np.ones(len(found), bool), [], []
    for category, name in sorted(set(zip(found.category, chosen, strict=True))):
        if name not in _MERGED:
            continue
        idx = np.flatnonzero(
            [c == category and m == name for c, m in zip(found.category, chosen, strict=True)]
        )
        boxes = found.boxes[idx]
        if len(idx) < 2 or not (overlaps(boxes, boxes).sum() > len(idx)):
            continue
        keep[idx] = False
        merged = _merge_positive(boxes)
        parts.append(Detections(merged, np.full(len(merged), float(found.scores[idx].max()), np.float32),
                                (category,) * len(merged), ("",) * len(merged) if found.text else ()))  # fmt: skip
        names += [name] * len(merged)
    if not parts:
        return found, chosen
    rest = found.select(keep)
    return Detections.concat([rest, *parts]), (*(m for m, k in zip(chosen, keep, strict=True) if k), *names)


def _merge_positive(boxes: NDArray[np.int64]) -> NDArray[np.int64]:
    """Bounding boxes of the groups of boxes that overlap with a positive area (touching is not enough)."""
    shrunk = np.asarray(boxes, np.int64) * 2 + np.array([1, 1, -1, -1])  # touching no longer overlaps
    merged = merge(shrunk)
    return np.asarray((merged + np.array([-1, -1, 1, 1])) // 2, np.int64)


def changed_regions(found: Detections, chosen: tuple[str, ...], options: Mapping[str, Mapping[str, Any]],
                    *, width: int, height: int) -> NDArray[np.int64]:  # fmt: skip
    """(N, 4) the region each detection's method may change: its box, or for `inpaint_soft` the reach of
    its ellipse and fade beyond the box (`soft_extent`)."""
    regions = found.boxes.astype(np.int64).reshape(-1, 4).copy()
    soft = np.array([m == "inpaint_soft" for m in chosen], bool)
    if soft.any():
        o = options.get("inpaint_soft", {})
        regions[soft] = soft_extent(regions[soft], core=float(o.get("core", 1.1)), feather=float(o.get("feather", 0.25)),
                                    width=width, height=height)  # fmt: skip
    return regions


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
    Overlapping boxes of one category and method are obfuscated once, as one region (`merge_overlapping`).

    Raises:
        InvalidInputError, AnonymizationError: as `obfuscate`.
    """
    chosen = tuple(method_for(c, method=method, methods=methods) for c in found.category)
    regions, region_methods = merge_overlapping(found, chosen)
    output = image.copy()
    for name in sorted(
        set(region_methods), key=lambda m: (_ORDER.index(m) if m in _ORDER else len(_ORDER), m)
    ):
        boxes = regions.boxes[np.array([c == name for c in region_methods], bool)]
        opts = options
        if name == "inpaint_soft":  # it fills from its surroundings: never from another box not yet done
            opts = {**options, name: {**options.get(name, {}), "avoid": found.boxes}}
        output = obfuscate(output, boxes, method=name, block=block, blur_strength=blur_strength, options=opts)
    return output, chosen


def obfuscation_options(p: AnonymizeParams) -> dict[str, dict[str, Any]]:
    """Every method's options from the stage's params; the k-Same pool is built only when `replace` is used."""
    opts: dict[str, dict[str, Any]] = {
        "pixelate": {"block": p.pixelate_block},
        "blur": {"strength": p.blur_strength},
        "dp_pixelate": {"block": p.dp_block, "epsilon": p.dp_epsilon, "neighbourhood": p.dp_neighbourhood},
        "inpaint": {"radius": p.inpaint_radius, "algorithm": p.inpaint_algorithm},
        "inpaint_soft": {
            "radius": p.inpaint_radius,
            "core": soft_core(p.face.pad),
            "feather": p.soft_feather,
            "fill_side": p.soft_fill_side,
            "grain": p.soft_grain,
        },
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
    height, width = image.shape[:2]
    regions = changed_regions(found, chosen, opts, width=width, height=height)
    if mode == "off" or not len(found):
        return AnonymizedImage(output, found, Detections.empty(), None, 0, chosen, eps, changed=regions)

    def redo(out: Image, targets: Detections, level: int) -> tuple[Image, NDArray[np.int64]]:
        grown = Detections(grow(targets.boxes, ESCALATE_GROW * level, width=width, height=height),
                           targets.scores, targets.category, targets.text)  # fmt: skip
        o, b, bs = stronger(opts, block=block, blur_strength=blur_strength, level=level)
        result, how = obfuscate_detections(out, grown, method=method, methods=methods, block=b, blur_strength=bs,
                                           options=o)  # fmt: skip
        return result, changed_regions(grown, how, o, width=width, height=height)

    result = _verify(
        output, found, detectors, synthetic=_shape_kept(found, chosen), kept=kept,
        before=image if mode == "regions" else None, redo=redo, regions=regions,
    )  # fmt: skip
    return dataclasses.replace(result, methods=chosen, dp_epsilon=eps)


def _shape_kept(found: Detections, chosen: tuple[str, ...]) -> dict[str, NDArray[np.int64]]:
    """Category → (K, 4) boxes that now hold a shape of that category on purpose (`KEEPS_SHAPE`)."""
    out: dict[str, NDArray[np.int64]] = {}
    for name, category in KEEPS_SHAPE.items():
        boxes = found.boxes[np.array([m == name for m in chosen], bool)].reshape(-1, 4)
        if len(boxes):
            out[category] = np.concatenate([out.get(category, np.zeros((0, 4), np.int64)), boxes]).astype(
                np.int64
            )
    return out


def drop_synthetic(residual: Detections, synthetic: NDArray[np.int64], *, inside: float = 0.5,
                   category: str = "face") -> Detections:  # fmt: skip
    """Drop residual detections of `category` lying mostly (>= `inside` of their area) in a box we filled
    with a shape of that category on purpose: a k-Same surrogate face (the face detector is expected to find
    it again), a body silhouette (a person detector is meant to)."""
    if not len(residual) or not len(synthetic):
        return residual
    a, b = residual.boxes, synthetic
    ix = (np.minimum(a[:, None, 2], b[None, :, 2]) - np.maximum(a[:, None, 0], b[None, :, 0])).clip(0)
    iy = (np.minimum(a[:, None, 3], b[None, :, 3]) - np.maximum(a[:, None, 1], b[None, :, 1])).clip(0)
    area = ((a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1]))[:, None]
    covered = ((ix * iy) / area >= inside).any(axis=1)
    same = np.array([c == category for c in residual.category], bool)
    return residual.select(~(covered & same))


def drop_kept_shapes(residual: Detections, kept: Mapping[str, NDArray[np.int64]]) -> Detections:
    """`drop_synthetic` for every category with a shape kept on purpose (`_shape_kept`)."""
    for category, boxes in kept.items():
        residual = drop_synthetic(residual, boxes, category=category)
    return residual


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
    synthetic: Mapping[str, NDArray[np.int64]],
    kept: Detections,
    before: Image | None,
    redo: Callable[[Image, Detections, int], tuple[Image, NDArray[np.int64]]],
    regions: NDArray[np.int64],
) -> AnonymizedImage:
    """Verify `output`; escalate what survives (own method on grown regions, then masks); quarantine last."""
    touched, masked, changed = np.zeros((0, 4), np.int64), np.zeros((0, 4), np.int64), regions
    for attempt in range(ESCALATIONS + 1):
        try:
            residual = detect_residual(output, detectors, before=before, changed=changed)
            residual = drop_rereads(drop_kept_shapes(residual, synthetic), kept)
        except _EXPECTED as err:
            return _quarantine(found, f"verification failed: {err}", escalated=len(touched))
        if not len(residual):
            return AnonymizedImage(
                output, found, residual, None, len(touched), masked=len(masked), changed=changed
            )
        if attempt == ESCALATIONS:
            break
        targets = escalation_targets(found, residual)
        try:
            if attempt < OWN_ROUNDS:
                output, region = redo(output, targets, attempt + 1)
            else:
                region = np.unique(targets.boxes, axis=0)
                output = mask_regions(output, region)
                masked = np.unique(np.concatenate([masked, region]), axis=0)
        except _EXPECTED as err:
            return _quarantine(found, f"anonymization failed: {err}", residual, len(touched))
        touched = np.unique(np.concatenate([touched, np.unique(targets.boxes, axis=0)]), axis=0)
        changed = np.concatenate([changed, region])
    return _quarantine(found, f"sensitive content survived: {describe(residual)}", residual, len(touched))


@dataclass(frozen=True)
class AnonymizeSummary:
    """Counts over many `AnonymizedImage`s.

    Attributes:
        images: inputs seen; processed + quarantined == images.
        processed: images written to the anonymized output.
        quarantined: images withheld.
        detections: redacted boxes per category (first pass).
        escalated_images: images that needed an escalation round (their own method again, or a mask).
        masked_images: images where an escalation round ended in a solid mask.
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
    masked_images: int = 0

    def as_metrics(self) -> dict[str, float]:
        """Flat metrics keyed "anonymize/<metric>"."""
        metrics = {
            "anonymize/images": float(self.images),
            "anonymize/processed": float(self.processed),
            "anonymize/quarantined": float(self.quarantined),
            "anonymize/quarantine_fraction": self.quarantined / self.images if self.images else 0.0,
            "anonymize/escalated_images": float(self.escalated_images),
            "anonymize/masked_images": float(self.masked_images),
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
        (r.detections.category, r.escalated, r.quarantine_reason, r.dp_epsilon, r.masked) for r in results
    )


def summarize_outcomes(
    outcomes: Iterable[tuple[Iterable[str], int, str | None, float | None, int]],
) -> AnonymizeSummary:
    """Aggregate (categories, escalated boxes, quarantine reason or None, ε or None, masked boxes), one per
    image; a quarantined image's masks are not counted (it was not written)."""
    images = quarantined = escalated = dp_images = masked = 0
    eps_max = 0.0
    detections: Counter[str] = Counter()
    reasons: Counter[str] = Counter()
    for categories, n_escalated, reason, eps, n_masked in outcomes:
        images += 1
        masked += n_masked > 0 and reason is None
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
        masked,
    )
