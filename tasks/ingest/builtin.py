"""The embedded default dataset: "street-view house numbers with bystanders" (DESIGN.md §3).

Each 256×256 image is a crop of a photograph bundled with scikit-image, carrying

- a light placard with one real handwritten digit (scikit-learn's `load_digits`): the label;
- 0..`max_faces` real LFW faces (index 0..99 = identity, reused across images), feathered in;
- sometimes a licence plate, and 0..2 rendered strings, personal (`text_pii`) or not (`text_nonpii`);
- sometimes an un-annotated LFW non-face patch (a hard negative for detectors).

Every sensitive element gets a tight COCO-style box. Everything is drawn from one
`np.random.default_rng(seed)` chain, so one seed gives byte-identical images, and the first k
images do not depend on `n_images`.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

import cv2
import numpy as np
from numpy.typing import NDArray

from tasks.errors import InvalidInputError
from tasks.ingest import assets, strings
from tasks.types import Annotation, Box

_BASE = 256  # element sizes below are given for a 256-px image and scale with image_size
_FONTS = (cv2.FONT_HERSHEY_SIMPLEX, cv2.FONT_HERSHEY_DUPLEX)
_FONT_HEIGHT = 22  # cap height in px of both fonts at scale 1.0 (cv2.getTextSize)
_GAP = 3  # px kept free between elements, so obfuscating one box never touches another
_P_PLATE, _P_DISTRACTOR, _P_PII, _P_SIGN = 0.5, 0.3, 0.5, 0.4
_MAX_TEXTS = 2


@dataclass(frozen=True)
class Sample:
    """One built-in image: `image` (S, S, 3) uint8 RGB, its digit `label` and its ground truth."""

    id: str
    image: NDArray[np.uint8]
    label: int
    annotations: tuple[Annotation, ...]


@dataclass(frozen=True)
class _Config:
    size: int
    max_faces: int
    face_size: tuple[int, int]

    @property
    def scale(self) -> float:
        return self.size / _BASE


@dataclass
class _Scene:
    """Mutable working state of the image being composed."""

    image: NDArray[np.uint8]
    taken: list[Box] = field(default_factory=list)
    annotations: list[Annotation] = field(default_factory=list)


def generate_builtin(
    *, n_images: int, image_size: int, max_faces: int, face_size: tuple[int, int], seed: int
) -> Iterator[Sample]:
    """Generate the built-in dataset, one `Sample` at a time, deterministically from `seed`.

    Args:
        n_images: number of images (ids "img_000000", ...).
        image_size: side S of the square (S, S, 3) uint8 RGB images.
        max_faces: faces per image are drawn uniformly from 0..max_faces (fewer if they do not fit).
        face_size: (min, max) side of a pasted face in pixels.
        seed: seed of the one `np.random.default_rng` chain everything is drawn from.
    Raises:
        InvalidInputError: a size or count out of range.
    """
    lo, hi = face_size
    if n_images < 0 or max_faces < 0 or image_size < 32 or not 8 <= lo <= hi or hi > image_size // 2:
        raise InvalidInputError(
            f"generate_builtin: need n_images >= 0, max_faces >= 0, image_size >= 32 and "
            f"8 <= face_size[0] <= face_size[1] <= image_size / 2; got {n_images=}, {max_faces=}, "
            f"{image_size=}, {face_size=}"
        )
    return _generate(n_images, _Config(image_size, max_faces, (lo, hi)), seed)


def _generate(n_images: int, cfg: _Config, seed: int) -> Iterator[Sample]:
    rng = np.random.default_rng(seed)
    digit_images, digit_labels = assets.digits()
    n_digits = len(digit_labels)
    order = np.arange(n_digits)
    for i in range(n_images):
        # Walk the digits in shuffled passes: a digit sample is reused only after all 1,797 were.
        if i % n_digits == 0:
            order = rng.permutation(n_digits)
        idx = int(order[i % n_digits])
        yield _compose(rng, f"img_{i:06d}", digit_images[idx], int(digit_labels[idx]), cfg)


def _compose(
    rng: np.random.Generator, sample_id: str, digit: NDArray[np.float32], label: int, cfg: _Config
) -> Sample:
    scene = _Scene(_background(rng, cfg.size))
    _add_placard(rng, scene, digit, label, cfg)  # first: always fits, nothing ever overlaps it
    for _ in range(int(rng.integers(0, cfg.max_faces + 1))):
        _add_patch(rng, scene, int(rng.integers(0, assets.N_FACES)), cfg)
    if rng.random() < _P_PLATE:
        _add_plate(rng, scene, cfg)
    for _ in range(int(rng.integers(0, _MAX_TEXTS + 1))):
        _add_text(rng, scene, cfg)
    if rng.random() < _P_DISTRACTOR:
        _add_patch(rng, scene, assets.N_FACES + int(rng.integers(0, assets.N_NONFACES)), cfg)
    scene.image.setflags(write=False)
    return Sample(sample_id, scene.image, label, tuple(scene.annotations))


@lru_cache(maxsize=4)
def _photos(size: int) -> tuple[NDArray[np.uint8], ...]:
    """Return the background photographs shrunk once so their short side is at most 1.5 × `size`."""
    shrunk: list[NDArray[np.uint8]] = []
    for photo in assets.backgrounds():
        f = min(1.0, 1.5 * size / min(photo.shape[:2]))
        dsize = (round(photo.shape[1] * f), round(photo.shape[0] * f))
        small = photo if f == 1.0 else cv2.resize(photo, dsize, interpolation=cv2.INTER_AREA)
        shrunk.append(np.asarray(small, dtype=np.uint8))
    return tuple(shrunk)


def _background(rng: np.random.Generator, size: int) -> NDArray[np.uint8]:
    """Return a random square crop of a bundled photograph, rescaled to (size, size, 3), lightly re-lit."""
    photos = _photos(size)
    photo = photos[int(rng.integers(len(photos)))]
    h, w = photo.shape[:2]
    short = min(h, w)
    side = int(rng.uniform(max(0.35 * short, min(short, 0.6 * size)), short + 1))
    side = min(side, short)
    y, x = int(rng.integers(0, h - side + 1)), int(rng.integers(0, w - side + 1))
    crop = photo[y : y + side, x : x + side]
    interp = cv2.INTER_AREA if side > size else cv2.INTER_LINEAR
    image = cv2.resize(crop, (size, size), interpolation=interp)
    if rng.random() < 0.5:
        image = cv2.flip(image, 1)
    gain = rng.uniform(0.75, 1.15) * rng.uniform(0.92, 1.08, size=3)
    scalar: Any = (*gain.tolist(), 0.0)  # a cv2 Scalar: per-channel gain, rounded and saturated
    return np.asarray(cv2.multiply(image, scalar), dtype=np.uint8)


def _place(rng: np.random.Generator, scene: _Scene, w: int, h: int, *, tries: int = 40) -> Box | None:
    """Return a free (x0, y0, x1, y1) for a w×h element (rejection sampling), or None if none was found."""
    size = scene.image.shape[0]
    if w > size or h > size:
        return None
    for _ in range(tries):
        x, y = int(rng.integers(0, size - w + 1)), int(rng.integers(0, size - h + 1))
        box = (x, y, x + w, y + h)
        if all(not _overlaps(box, other, _GAP) for other in scene.taken):
            return box
    return None


def _overlaps(a: Box, b: Box, gap: int) -> bool:
    return a[0] < b[2] + gap and b[0] < a[2] + gap and a[1] < b[3] + gap and b[1] < a[3] + gap


def _paste(scene: _Scene, box: Box, rgb: NDArray[np.float32], alpha: NDArray[np.float32]) -> None:
    """Alpha-blend `rgb` (h, w, 3) float in [0, 255] with `alpha` (h, w) in [0, 1] into `box`."""
    x0, y0, x1, y1 = box
    region = scene.image[y0:y1, x0:x1].astype(np.float32)
    a = alpha[:, :, None]
    scene.image[y0:y1, x0:x1] = np.clip(region * (1 - a) + rgb * a + 0.5, 0, 255).astype(np.uint8)


def _feather(h: int, w: int, width: int) -> NDArray[np.float32]:
    """Return an (h, w) alpha that ramps linearly from 1/(width+1) at the border to 1 inside."""
    ramp_x = np.minimum(np.arange(1, w + 1), np.arange(w, 0, -1)) / (width + 1)
    ramp_y = np.minimum(np.arange(1, h + 1), np.arange(h, 0, -1)) / (width + 1)
    return np.clip(np.minimum(ramp_y[:, None], ramp_x[None, :]), 0, 1).astype(np.float32)


def _placard_patch(
    rng: np.random.Generator, digit: NDArray[np.float32], scale: float
) -> tuple[NDArray[np.float32], NDArray[np.float32]]:
    """Return a rotated light card with the digit in dark ink: rgb (h, w, 3) and alpha (h, w), tight."""
    side = max(12, round(rng.uniform(28, 56) * scale))
    ink = np.clip((cv2.resize(digit, (side, side), interpolation=cv2.INTER_CUBIC) - 0.1) * 1.3, 0, 1)
    mx, my = (round(side * rng.uniform(0.2, 0.4)) + 2 for _ in range(2))
    h, w = side + 2 * my, side + 2 * mx
    card = rng.uniform(205, 250) + rng.uniform(-8, 8, size=3)
    light = np.linspace(1.0, rng.uniform(0.8, 1.0), w, dtype=np.float32)[None, :, None]
    rgb = np.broadcast_to(card.astype(np.float32) * light, (h, w, 3)).copy()
    rgb[[0, -1], :] *= 0.7  # thin darker edge, as on a real card
    rgb[:, [0, -1]] *= 0.7
    ink_rgb = (rng.uniform(5, 60) + rng.uniform(-5, 5, size=3)).astype(np.float32)
    a = ink[:, :, None]
    rgb[my : my + side, mx : mx + side] = rgb[my : my + side, mx : mx + side] * (1 - a) + ink_rgb * a
    return _rotate(rgb, np.ones((h, w), np.float32), rng.uniform(-8, 8))


def _rotate(
    rgb: NDArray[np.float32], alpha: NDArray[np.float32], degrees: float
) -> tuple[NDArray[np.float32], NDArray[np.float32]]:
    """Rotate an rgb/alpha patch about its centre onto a canvas that holds it, cropped tight to alpha > 0."""
    h, w = alpha.shape
    m = cv2.getRotationMatrix2D((w / 2, h / 2), degrees, 1.0)
    cos, sin = abs(m[0, 0]), abs(m[0, 1])
    bw, bh = int(np.ceil(h * sin + w * cos)) + 2, int(np.ceil(h * cos + w * sin)) + 2
    m[0, 2] += bw / 2 - w / 2
    m[1, 2] += bh / 2 - h / 2
    rgb = np.asarray(cv2.warpAffine(rgb, m, (bw, bh), flags=cv2.INTER_LINEAR), dtype=np.float32)
    alpha = np.asarray(cv2.warpAffine(alpha, m, (bw, bh), flags=cv2.INTER_LINEAR), dtype=np.float32)
    alpha[alpha < 1 / 510] = 0  # changes no pixel by half a grey level: not drawn
    ys, xs = np.nonzero(alpha)
    y0, y1, x0, x1 = ys.min(), ys.max() + 1, xs.min(), xs.max() + 1
    return rgb[y0:y1, x0:x1], alpha[y0:y1, x0:x1]


def _add_placard(
    rng: np.random.Generator, scene: _Scene, digit: NDArray[np.float32], label: int, cfg: _Config
) -> None:
    rgb, alpha = _placard_patch(rng, digit, cfg.scale)
    h, w = alpha.shape
    box = _place(rng, scene, w, h, tries=1000)
    if box is None:  # only possible for absurd sizes; the placard is the label and must be there
        raise InvalidInputError(f"generate_builtin: a {w}x{h} placard does not fit a {cfg.size}-px image")
    _paste(scene, box, rgb, alpha)
    scene.taken.append(box)
    scene.annotations.append(Annotation("placard", box, text=str(label)))


def _add_patch(rng: np.random.Generator, scene: _Scene, index: int, cfg: _Config) -> None:
    """Paste LFW patch `index`, feathered and re-lit; annotate it as a face when index < 100."""
    is_face = index < assets.N_FACES
    if is_face and any(a.identity == index for a in scene.annotations):
        return  # one person appears at most once per image
    side = int(rng.integers(cfg.face_size[0], cfg.face_size[1] + 1))
    box = _place(rng, scene, side, side)
    if box is None:
        return
    patch = cv2.resize(assets.lfw()[index], (side, side), interpolation=cv2.INTER_CUBIC)
    mean = float(patch.mean())
    patch = np.clip((patch - mean) * rng.uniform(0.75, 1.25) + mean + rng.uniform(-0.12, 0.12), 0, 1)
    tone = (
        np.ones(3)
        if rng.random() < 0.25
        else np.array([1.0, rng.uniform(0.8, 0.92), rng.uniform(0.65, 0.82)])
    )
    rgb = patch[:, :, None] * (255 * tone).astype(np.float32)
    _paste(scene, box, rgb, _feather(side, side, max(1, round(side * 0.12))))
    scene.taken.append(box)
    if is_face:
        scene.annotations.append(Annotation("face", box, identity=index))


def text_alpha(text: str, font: int, font_scale: float, thickness: int) -> NDArray[np.float32]:
    """Render `text` anti-aliased and return its (h, w) coverage in [0, 1], cropped tight to the ink."""
    (tw, th), baseline = cv2.getTextSize(text, font, font_scale, thickness)
    pad = thickness + 2
    canvas = np.zeros((th + baseline + 2 * pad, tw + 2 * pad), np.uint8)
    cv2.putText(canvas, text, (pad, pad + th), font, font_scale, 255, thickness, cv2.LINE_AA)
    ys, xs = np.nonzero(canvas)
    return canvas[ys.min() : ys.max() + 1, xs.min() : xs.max() + 1].astype(np.float32) * np.float32(1 / 255)


def _fit_text(rng: np.random.Generator, text: str, height: float, max_width: int) -> NDArray[np.float32]:
    """Render `text` with a random font about `height` px tall, shrunk to at most `max_width` px wide."""
    font = _FONTS[int(rng.integers(len(_FONTS)))]
    font_scale = height / _FONT_HEIGHT
    thickness = 1 if font_scale < 0.6 or rng.random() < 0.5 else 2
    alpha = text_alpha(text, font, font_scale, thickness)
    if alpha.shape[1] > max_width:
        alpha = text_alpha(text, font, font_scale * max_width / alpha.shape[1] * 0.97, thickness)
    return alpha


def _add_plate(rng: np.random.Generator, scene: _Scene, cfg: _Config) -> None:
    """Paste a white or yellow plate with a dark border and a dark plate string; annotate the plate."""
    text = strings.plate_string(rng)
    glyphs = _fit_text(rng, text, rng.uniform(11, 17) * cfg.scale, int(cfg.size * 0.6))
    th, tw = glyphs.shape
    px, py = round(th * 0.45) + 3, round(th * 0.35) + 3
    box = _place(rng, scene, tw + 2 * px, th + 2 * py)
    if box is None or th < 7:
        return
    yellow = rng.random() < 0.35
    plate = np.array([250, 205, 40] if yellow else [240, 240, 236], np.float32) * rng.uniform(0.8, 1.0)
    rgb = np.broadcast_to(plate, (th + 2 * py, tw + 2 * px, 3)).copy()
    border = max(1, round(th / 8))
    ink = np.float32(rng.uniform(10, 50))
    rgb[:border], rgb[-border:], rgb[:, :border], rgb[:, -border:] = ink, ink, ink, ink
    a = glyphs[:, :, None]
    rgb[py : py + th, px : px + tw] = rgb[py : py + th, px : px + tw] * (1 - a) + ink * a
    _paste(scene, box, rgb, np.ones(rgb.shape[:2], np.float32))
    scene.taken.append(box)
    scene.annotations.append(Annotation("plate", box, text=text))


def _add_text(rng: np.random.Generator, scene: _Scene, cfg: _Config) -> None:
    """Draw a personal or shop string, on a sign or straight on the photo; annotate the ink's box."""
    pii = rng.random() < _P_PII
    text = strings.pii_string(rng) if pii else strings.nonpii_string(rng)
    glyphs = _fit_text(rng, text, rng.uniform(10, 16) * cfg.scale, int(cfg.size * 0.85))
    th, tw = glyphs.shape
    pad = round(th * 0.5) + 2 if rng.random() < _P_SIGN else 2
    outer = _place(rng, scene, tw + 2 * pad, th + 2 * pad)
    if outer is None or th < 6:
        return
    x0, y0 = outer[0] + pad, outer[1] + pad
    box = (x0, y0, x0 + tw, y0 + th)
    if pad > 2:  # a sign: a flat colour board behind the text, not sensitive itself
        sh, sw = th + 2 * pad, tw + 2 * pad
        sign = np.broadcast_to(rng.uniform(0, 255, size=3).astype(np.float32), (sh, sw, 3))
        _paste(scene, outer, sign, np.ones((sh, sw), np.float32))
    _paste(scene, box, _ink_colour(rng, scene, box), glyphs)
    scene.taken.append(outer)
    scene.annotations.append(Annotation("text_pii" if pii else "text_nonpii", box, text=text))


def _ink_colour(rng: np.random.Generator, scene: _Scene, box: Box) -> NDArray[np.float32]:
    """Return a (3,) ink colour that contrasts with the mean luminance under `box`."""
    x0, y0, x1, y1 = box
    light = float(scene.image[y0:y1, x0:x1].mean()) > 127
    base = rng.uniform(0, 40) if light else rng.uniform(215, 255)
    return np.clip(base + rng.uniform(-15, 15, size=3), 0, 255).astype(np.float32)
