"""Turned photos: are faces redacted when the content is turned by 90 or 180 degrees? And what does looking
for turned content cost on upright images?

Material (fetched at run time by `tests/real_photos.py`, never committed): dlib's nine labelled PASCAL VOC
group photos (43 faces) and the opencv-doc photos with hand-labelled faces (`tests/data/real_photos_gt.json`).
Each photo is turned by each of `--turns` quarter-turns (np.rot90, counter-clockwise; 1 = 90 degrees) and
anonymized in-process by the engine (`anonymize_image`, default preset, `--targets`, region verification on)
with `anonymize.orientation` off (today's code: no wrapper), cue (the default) and, with `--modes`, all.

Per row:
- **redacted**: labelled faces with >= 70 % of their box's pixels changed (`bench.group_photos`), of all;
  faces in quarantined photos count as not redacted and are shown apart (**quar.**).
- **HOG raw**: labelled faces dlib's HOG (upsample 1 on a 2x copy) finds on the turned raw photo (what an
  upright-only detector sees); **HOG out**: on the output turned back upright (HOG sees upright faces only,
  so this is the strict check), `+k` other detections.
- **changed**: share of the pictures' pixels that changed; **faces+pad**: share inside the labelled faces
  grown by the face detector's pad (`anonymize.face.pad` of the box per side).
- **s/img**: engine seconds per photo (detection + obfuscation + verification, models warm).

Then the cost on upright 640x480 builtin scenes (`bench.anonymize_throughput.make_scenes`): engine seconds
per image with orientation off vs cue, same images, default preset; each image's fastest of `--cost-repeats`
alternating runs per mode (on a shared CPU the mean measures the neighbours).

    python -m bench.orientation                         # ~5 min on 2 cores
    python -m bench.orientation --modes off,cue,all --turns 0,1,2,3
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
from numpy.typing import NDArray

from bench.anonymize_throughput import TARGETS, make_scenes
from bench.group_photos import REDACTED_SHARE, changed_share
from bench.real_photos import face_hit
from tasks.anonymize.detectors import build_detectors
from tasks.anonymize.detectors.orient import rotate, rotate_boxes
from tasks.anonymize.engine import anonymize_image, image_rng, obfuscation_options
from tasks.auditors import dlib_hog_detector
from tasks.boxes import pad_boxes
from tasks.codec import decode_image
from tasks.params import AnonymizeParams
from tasks.types import Detector
from tests.real_photos import (
    RealPhotosUnavailable,
    default_cache,
    default_dlib_cache,
    dlib_face_boxes,
    fetch_dlib_faces,
    fetch_opencv_doc,
    load_gt,
    load_image,
)

Image = NDArray[np.uint8]
MODES = ("off", "cue", "all")


@dataclass(frozen=True)
class Photo:
    """One labelled photo: RGB pixels and (N, 4) face boxes [x0, y0, x1, y1]."""

    name: str
    image: Image
    faces: NDArray[np.int64]


@dataclass(frozen=True)
class Row:
    """Counts over every photo of one (turn, mode)."""

    faces: int
    redacted: int
    quarantined: int
    hog_raw: int
    hog_out: int
    hog_other: int
    changed: float
    allowed: float
    seconds: float


def dlib_photos() -> list[Photo]:
    """dlib's nine VOC group photos with their 43 labelled faces."""
    folder = fetch_dlib_faces(default_dlib_cache())
    return [Photo(name, decode_image((folder / name).read_bytes(), name=name), boxes)
            for name, boxes in sorted(dlib_face_boxes(folder).items()) if len(boxes)]  # fmt: skip


def opencv_photos() -> list[Photo]:
    """The opencv-doc (and skimage) photos with hand-labelled faces."""
    examples = fetch_opencv_doc(default_cache())
    out = []
    for entry in load_gt()["images"]:
        faces = [b["bbox"] for b in entry["boxes"] if b["category"] == "face"]
        if not faces:
            continue
        pixels = load_image(examples, entry["file"])
        bgr = cv2.cvtColor(pixels, cv2.COLOR_GRAY2BGR) if pixels.ndim == 2 else pixels[..., :3]
        out.append(Photo(entry["file"], np.ascontiguousarray(bgr[..., ::-1]), np.array(faces, np.int64)))
    return out


def detectors_for(p: AnonymizeParams, mode: str) -> dict[str, Detector]:
    """The stage's detectors for `p`, with `orientation` `mode`."""
    return build_detectors(targets=p.targets, face=p.face.model_dump(), text=p.text.model_dump(),
                           plate=p.plate.model_dump(), orientation=mode)  # type: ignore[arg-type]


def _anonymize(image: Image, detectors: Mapping[str, Detector], p: AnonymizeParams, seed: str) -> Image | None:
    result = anonymize_image(image, detectors=detectors, options=obfuscation_options(p), rng=image_rng(0, seed),
                             method=p.method, methods=p.methods, verify=p.verify)  # fmt: skip
    return result.image


def _allowed(shape: tuple[int, int], faces: NDArray[np.int64], pad: float) -> NDArray[np.bool_]:
    mask = np.zeros(shape, bool)
    for x0, y0, x1, y1 in pad_boxes(faces.astype(np.float64), pad=pad, width=shape[1], height=shape[0]):
        mask[y0:y1, x0:x1] = True
    return mask


def score_turn(photos: list[Photo], k: int, detectors: Mapping[str, Detector], p: AnonymizeParams,
               hog: Detector) -> Row:  # fmt: skip
    """Anonymize every photo turned by `k` quarter-turns and count (`Row`)."""
    faces = redacted = quarantined = hog_raw = hog_out = other = 0
    changed = allowed = pixels = 0
    seconds = 0.0
    for photo in photos:
        turned = rotate(photo.image, k)
        boxes = rotate_boxes(photo.faces, k, shape=photo.image.shape[:2])
        faces += len(boxes)
        hog_raw += sum(face_hit(hog(turned).boxes, list(map(int, b))) for b in boxes)
        t0 = time.perf_counter()
        out = _anonymize(turned, detectors, p, photo.name)
        seconds += time.perf_counter() - t0
        if out is None:
            quarantined += len(boxes)
            continue
        redacted += sum(changed_share(turned, out, b) >= REDACTED_SHARE for b in boxes)
        found = hog(rotate(out, -k)).boxes  # turned back: HOG sees upright faces only
        hits = [any(face_hit(d[None], list(map(int, b))) for d in found) for b in photo.faces]
        hog_out += sum(hits)
        other += sum(not any(face_hit(d[None], list(map(int, b))) for b in photo.faces) for d in found)
        changed += int((out != turned).any(axis=-1).sum())
        allowed += int(_allowed(turned.shape[:2], boxes, p.face.pad).sum())
        pixels += turned.shape[0] * turned.shape[1]
    return Row(faces, redacted, quarantined, hog_raw, hog_out, other, changed / max(pixels, 1),
               allowed / max(pixels, 1), seconds / len(photos))


def upright_cost(p: AnonymizeParams, *, n: int, repeats: int) -> dict[str, float]:
    """Engine seconds per upright 640x480 builtin scene, orientation off vs cue: each image runs `repeats`
    times in each mode, alternating, and counts its fastest run (the CPU may be shared: the minimum is what
    the work costs, the rest is waiting)."""
    with tempfile.TemporaryDirectory(prefix="privtrail-orient-") as tmp:
        files, _ = make_scenes(Path(tmp), width=640, height=480, n=n)
        images = [decode_image(f.read_bytes(), name=f.name) for f in files]
    built = {mode: detectors_for(p, mode) for mode in ("off", "cue")}
    for dets in built.values():
        _anonymize(images[0], dets, p, "warm-up")
    total = dict.fromkeys(built, 0.0)
    for i, image in enumerate(images):
        best = dict.fromkeys(built, float("inf"))
        for r in range(repeats):
            for mode in (("off", "cue") if r % 2 == 0 else ("cue", "off")):
                t0 = time.perf_counter()
                _anonymize(image, built[mode], p, str(i))
                best[mode] = min(best[mode], time.perf_counter() - t0)
        for mode in built:
            total[mode] += best[mode]
    return {mode: t / len(images) for mode, t in total.items()}


def _material(names: list[str]) -> dict[str, list[Photo]]:
    makers = {"dlib": dlib_photos, "opencv": opencv_photos}
    out = {}
    for name in names:
        try:
            out[name] = makers[name]()
        except RealPhotosUnavailable as err:
            print(f"{name}: skipped: {err}")
    return out


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(prog="python -m bench.orientation", description=__doc__.splitlines()[0])
    ap.add_argument("--turns", default="0,1,2", help="quarter-turns, comma-separated (1: 90 degrees)")
    ap.add_argument("--modes", default="off,cue", help=f"anonymize.orientation values, among {', '.join(MODES)}")
    ap.add_argument("--targets", default="faces", choices=sorted(TARGETS))
    ap.add_argument("--material", default="dlib,opencv", help="dlib, opencv")
    ap.add_argument("--cost-images", type=int, default=8, help="upright 640x480 scenes timed (0: skip)")
    ap.add_argument("--cost-repeats", type=int, default=3, help="runs per image and mode (the fastest counts)")
    args = ap.parse_args(argv)
    turns = [int(t) for t in args.turns.split(",") if t.strip()]
    modes = [m.strip() for m in args.modes.split(",") if m.strip()]
    if set(modes) - set(MODES) or set(turns) - {0, 1, 2, 3}:
        ap.error(f"--modes among {MODES}, --turns among 0-3; got {args.modes!r}, {args.turns!r}")
    p = AnonymizeParams(targets=TARGETS[args.targets])  # type: ignore[arg-type]
    hog = dlib_hog_detector(upsample=1, upscale=2)
    built = {mode: detectors_for(p, mode) for mode in modes}
    print(f"turned photos, default preset, targets {args.targets}; redacted: >= 70 % of the box's pixels changed")
    print(f"{'material':8} {'turn':>4} {'orientation':11} {'redacted':>9} {'quar.':>5} {'HOG raw':>8} "
          f"{'HOG out':>9} {'changed':>8} {'faces+pad':>9} {'s/img':>6}")  # fmt: skip
    for name, photos in _material([m.strip() for m in args.material.split(",") if m.strip()]).items():
        for k in turns:
            for mode in modes:
                r = score_turn(photos, k, built[mode], p, hog)
                print(f"{name:8} {90 * k:>4} {mode:11} {f'{r.redacted}/{r.faces}':>9} {r.quarantined:>5} "
                      f"{f'{r.hog_raw}/{r.faces}':>8} {f'{r.hog_out} +{r.hog_other}':>9} {r.changed:8.3f} "
                      f"{r.allowed:9.3f} {r.seconds:6.2f}", flush=True)  # fmt: skip
    if args.cost_images:
        cost = upright_cost(p, n=args.cost_images, repeats=args.cost_repeats)
        print(f"\nupright 640x480 builtin scenes ({args.cost_images}, fastest of {args.cost_repeats} runs), default preset, "
              f"targets {args.targets}: orientation off (today's code) {cost['off'] * 1000:.1f} ms/img, "
              f"cue {cost['cue'] * 1000:.1f} ms/img ({cost['cue'] / cost['off'] - 1:+.1%})")  # fmt: skip


if __name__ == "__main__":
    main()
