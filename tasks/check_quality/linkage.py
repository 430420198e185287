"""Linkage attack: can an anonymized face be matched back to its own raw face, without any identities?

Threat model: the attacker holds the raw (un-anonymized) face crops of the data set, e.g. the original
footage, and for each anonymized face tries to name the raw face it came from among all N raw faces
of the sample. Success is top-1 / top-5 rate against chance 1 / N. The raw face is the very pixels that
were anonymized, so the rates are upper bounds for an attacker who only has other photos of the same
people.

- `naive`: the anonymized crops (probes) are embedded and matched to the embedded raw crops.
- `adaptive` ("parrot", McPherson, Shokri & Shmatikov 2016): the attacker knows the method and its
  parameters, applies them to every raw face on a plain mid-grey canvas and matches against that.
- `clear` (calibration): lightly perturbed raw crops matched to the raw crops. It must be near 1:
  otherwise the embedding is too weak on these faces and a low attack rate proves nothing.

Unlike `reid.py`, whose attacks need identities (the builtin data set pastes 100 known LFW faces and
the attacker holds a gallery of those people), this attack needs none, so it runs on a user's own
photo folder: the "identity" of a face is its index in the sample. Embeddings never leave
`linkage_attack`; only the aggregate `LinkageResult` does.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np

from tasks.anonymize.obfuscate import OBFUSCATORS
from tasks.boxes import pad_boxes
from tasks.check_quality.reid import NONE, Embeddings, MatchResult, match
from tasks.errors import AnonymizationError, InvalidInputError
from tasks.types import Image, check_image

CANVAS_GREY = 128  # the adaptive attacker's neutral background (as `reid._paste_face` without jitter)
CLEAR_SCALE = (0.85, 1.15)  # calibration probes: rescale factor range,
CLEAR_NOISE = 3.0  # Gaussian pixel noise sigma (grey levels),
CLEAR_SHIFT = (1, 2)  # and shift in pixels along each axis (either sign)


@dataclass(frozen=True)
class LinkageResult:
    """The three linkage attacks on one sample of N faces.

    Attributes:
        naive: anonymized crops matched to the raw crops.
        adaptive: anonymized crops matched to the raw crops obfuscated by the attacker.
        clear: perturbed raw crops matched to the raw crops (calibration of the embedding).
        n_faces: N, the faces in the sample (chance = 1 / N).
    """

    naive: MatchResult
    adaptive: MatchResult
    clear: MatchResult
    n_faces: int

    @property
    def chance(self) -> float:
        """Top-1 rate of a random guess, 1 / N."""
        return 1.0 / self.n_faces

    @property
    def advantage(self) -> float:
        """The stronger attack's top-1 rate above chance: max(naive, adaptive) − 1 / N."""
        return max(self.naive.top1, self.adaptive.top1) - self.chance

    def as_metrics(self, prefix: str = "linkage") -> dict[str, float]:
        """Rates keyed "check_quality/<prefix>_{naive,adaptive,clear}_{top1,top5,auc}", chance, n_faces, advantage."""
        m = (
            self.naive.as_metrics(f"{prefix}_naive")
            | self.adaptive.as_metrics(f"{prefix}_adaptive")
            | self.clear.as_metrics(f"{prefix}_clear")
        )
        return m | {
            f"check_quality/{prefix}_chance": self.chance,
            f"check_quality/{prefix}_n_faces": float(self.n_faces),
            f"check_quality/{prefix}_advantage": self.advantage,
        }


def _check_crops(raw_crops: Sequence[Image], anon_crops: Sequence[Image]) -> None:
    """Raise unless there are N >= 2 pairs of (h, w, 3) uint8 crops, each pair of one shape."""
    if len(raw_crops) != len(anon_crops) or len(raw_crops) < 2:
        raise InvalidInputError(
            f"linkage_attack: need N >= 2 pairs of crops, got {len(raw_crops)} raw, {len(anon_crops)} anonymized"
        )
    for i, (raw, anon) in enumerate(zip(raw_crops, anon_crops, strict=True)):
        check_image(raw, name=f"raw_crops[{i}]")
        check_image(anon, name=f"anon_crops[{i}]")
        if raw.shape != anon.shape or min(raw.shape[:2]) < 2:
            raise InvalidInputError(
                f"crops[{i}]: raw {raw.shape} and anonymized {anon.shape} must be the same box, >= 2 px"
            )


def obfuscate_crops(
    crops: Sequence[Image],
    *,
    method: str,
    options: Mapping[str, Mapping[str, Any]],
    pad: float,
    rng: np.random.Generator,
) -> list[Image]:
    """Obfuscate each face crop as the anonymizer would, on a mid-grey canvas, and crop it back out.

    The canvas carries no scene context: the background is identical in the raw and the anonymized
    image, so matching it would make every deterministic method trivially linkable. The face box is
    padded by `pad` like the face detector's (`pad_boxes`), so obfuscation cells straddle the face
    border as they do in the anonymized image.

    Args:
        crops: N face crops, (h, w, 3) uint8 RGB, any size.
        method: an `OBFUSCATORS` key, or "none" for no obfuscation.
        options: method → its obfuscator's keyword options (`engine.obfuscation_options`);
            dp_pixelate's `rng` is supplied here.
        pad: box padding as a fraction of its side.
        rng: the dp_pixelate noise source (the attacker does not know the anonymizer's noise).
    Returns:
        N crops, crop i of the shape of `crops[i]`.
    Raises:
        InvalidInputError: unknown method, a crop not (h, w, 3) uint8, options the method rejects.
        AnonymizationError: OpenCV failed on a canvas.
    """
    if method != NONE and method not in OBFUSCATORS:
        raise InvalidInputError(
            f"method: unknown obfuscator {method!r}, expected one of {sorted(OBFUSCATORS)}"
        )
    kwargs = dict(options.get(method, {})) | ({"rng": rng} if method == "dp_pixelate" else {})
    if method != NONE:
        try:  # a missing or unknown option fails here, naming the method, not deep inside the loop
            inspect.signature(OBFUSCATORS[method]).bind(None, None, **kwargs)
        except TypeError as err:
            raise InvalidInputError(f"options[{method!r}]: {err}") from err
    out = []
    for i, crop in enumerate(crops):
        h, w = check_image(crop, name=f"crops[{i}]").shape[:2]
        m = int(np.ceil(max(pad, 0.5) * max(h, w))) + 8  # room for the padded box, as `reid._paste_face`
        canvas = np.full((h + 2 * m, w + 2 * m, 3), CANVAS_GREY, np.uint8)
        canvas[m : m + h, m : m + w] = crop
        box = pad_boxes(
            np.array([[m, m, m + w, m + h]], np.float64), pad=pad, width=w + 2 * m, height=h + 2 * m
        )
        if method != NONE:
            try:
                canvas = OBFUSCATORS[method](canvas, box, **kwargs)
            except cv2.error as err:
                raise AnonymizationError(
                    f"{method}: OpenCV failed on a {canvas.shape} canvas: {err}"
                ) from err
        out.append(np.ascontiguousarray(canvas[m : m + h, m : m + w]))
    return out


def perturb_crops(crops: Sequence[Image], *, rng: np.random.Generator) -> list[Image]:
    """Lightly perturbed copies of face crops: the calibration probes of the clear attack.

    Each crop is shifted by 1–2 px along each axis (either sign, border replicated), rescaled by a
    factor in [0.85, 1.15] (at least 2 px a side) and given Gaussian pixel noise of sigma 3.

    Args:
        crops: N face crops, (h, w, 3) uint8 RGB.
        rng: the source of the shifts, factors and noise.
    Returns:
        N perturbed (h', w', 3) uint8 crops.
    """
    out = []
    for crop in crops:
        h, w = crop.shape[:2]
        dx, dy = rng.integers(CLEAR_SHIFT[0], CLEAR_SHIFT[1] + 1, 2) * rng.choice([-1, 1], 2)
        shift = np.array([[1, 0, dx], [0, 1, dy]], np.float64)
        moved = cv2.warpAffine(crop, shift, (w, h), borderMode=cv2.BORDER_REPLICATE)
        f = rng.uniform(*CLEAR_SCALE)
        size = (max(2, round(w * f)), max(2, round(h * f)))
        scaled = cv2.resize(moved, size, interpolation=cv2.INTER_AREA if f < 1 else cv2.INTER_CUBIC)
        noisy = scaled.astype(np.float64) + rng.normal(0.0, CLEAR_NOISE, scaled.shape)
        out.append(np.clip(np.rint(noisy), 0, 255).astype(np.uint8))
    return out


def linkage_attack(
    raw_crops: Sequence[Image],
    anon_crops: Sequence[Image],
    *,
    method: str,
    options: Mapping[str, Mapping[str, Any]],
    pad: float,
    embed: Callable[[Sequence[Image]], Embeddings],
    seed: int,
) -> LinkageResult:
    """Link each anonymized face to its raw face among all N raw faces: naive, adaptive and clear.

    Face i's identity is i. The raw crops are embedded once (gallery of the naive and clear attacks),
    the anonymized crops once (probes of naive and adaptive); with `method == "none"` the adaptive
    gallery is the raw crops themselves and is not embedded again.

    Args:
        raw_crops: N face crops of the raw images, (h, w, 3) uint8 RGB, the tight face box.
        anon_crops: the same N boxes cropped from the anonymized images; `anon_crops[i]` has the shape
            of `raw_crops[i]` (sizes may differ between faces).
        method: the obfuscation the anonymizer applied (an `OBFUSCATORS` key or "none").
        options: method → its obfuscator's options, as `engine.obfuscation_options` gives them.
        pad: the face detector's box padding (`anonymize.face.pad`).
        embed: crops → (N, D) embeddings, e.g. a `reid.FaceEmbedder`.
        seed: seed of the adaptive attacker's dp_pixelate noise and of the clear perturbations.
    Raises:
        InvalidInputError: N < 2, lengths or shapes disagree, bad crops, unknown method or options.
        AnonymizationError: OpenCV failed while the attacker obfuscated a face.
    """
    _check_crops(raw_crops, anon_crops)
    rng_adaptive, rng_clear = np.random.default_rng(seed).spawn(2)
    # obfuscate first: an unknown method or bad options fail before any embedding is spent
    adaptive_crops = (
        None
        if method == NONE
        else obfuscate_crops(raw_crops, method=method, options=options, pad=pad, rng=rng_adaptive)
    )
    ids = np.arange(len(raw_crops), dtype=np.int64)
    raw_emb, anon_emb = embed(raw_crops), embed(anon_crops)  # (N, D) each
    adaptive_emb = raw_emb if adaptive_crops is None else embed(adaptive_crops)
    clear_emb = embed(perturb_crops(raw_crops, rng=rng_clear))
    return LinkageResult(
        naive=match(anon_emb, ids, raw_emb, ids),
        adaptive=match(anon_emb, ids, adaptive_emb, ids),
        clear=match(clear_emb, ids, raw_emb, ids),
        n_faces=len(ids),
    )
