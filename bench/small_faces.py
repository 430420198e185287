"""Small real faces in large photos: what the face detector finds with and without a pixel cap on its
cascades' upscaled copies (`anonymize.face.max_pixels`), side by side in one run.

The cascades run on 2× / 1.5× copies. Their smallest window is `min_face` (20 px) in original pixels
either way (`minSize` scales with the copy), so the copy does not reach smaller faces: it scans faces of
20–40 px with a denser window stride (OpenCV steps 2 px below a scale factor of 2, 1 px above). On a
large photo that copy is most of the detector's time, and a cap gives up only that density. This bench
measures what that costs on real faces:

- every hand-labelled face of `tests/data/real_photos_gt.json` (astronaut, camera, messi5, basketball1/2,
  scenetext01: 8 faces), cropped with one face side of context on each side and scaled so that the face
  is `--sizes` px, is pasted on a grid into each large face-free photo (scenetext02–05, aloeL: 1004–1282 px
  wide, 0.96–1.42 MP; `tests/real_photos.py` fetches them, nothing is committed);
- the face detector alone (the stage's `anonymize.face` params) runs on each composite, once per config;
- a pasted face is found when a detection has IoU >= 0.3 with it or covers >= 50 % of it (as
  `bench.real_photos`); detections outside every pasted crop are counted as false positives (the
  backgrounds show no person).

    python -m bench.small_faces                       # ~2 min on one core
    python -m bench.small_faces --cap 1228800 --sizes 20 24 28 32 40
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import cv2
import numpy as np
import yaml

from bench.real_photos import as_rgb, face_hit
from tasks.anonymize.detectors.face import FaceDetector
from tests.real_photos import GT_PATH, default_cache, fetch_opencv_doc, load_image

REPO = Path(__file__).resolve().parents[1]
BACKGROUNDS = ("text/scenetext02.jpg", "text/scenetext03.jpg", "text/scenetext04.jpg",
               "text/scenetext05.jpg", "data/aloeL.jpg")  # every face-free opencv-doc photo of >= 0.95 MP


def face_crops(examples: Path) -> list[tuple[np.ndarray, list[int]]]:
    """(crop, face box in the crop) of every labelled face, with one face side of context around it."""
    out = []
    for im in json.loads(GT_PATH.read_text())["images"]:
        faces = [b["bbox"] for b in im["boxes"] if b["category"] == "face"]
        if not faces:
            continue
        image = as_rgb(load_image(examples, im["file"]))
        h, w = image.shape[:2]
        for x0, y0, x1, y1 in faces:
            m = max(x1 - x0, y1 - y0)
            cx0, cy0, cx1, cy1 = max(0, x0 - m), max(0, y0 - m), min(w, x1 + m), min(h, y1 + m)
            out.append((np.ascontiguousarray(image[cy0:cy1, cx0:cx1]), [x0 - cx0, y0 - cy0, x1 - cx0, y1 - cy0]))
    return out


def composite(background: np.ndarray, crops: list[tuple[np.ndarray, list[int]]], side: int,
              ) -> tuple[np.ndarray, list[list[int]], list[list[int]]]:
    """`background` with every crop pasted on a grid, scaled so that its face is `side` px: the image,
    the pasted face boxes, the pasted crops' boxes."""
    out = background.copy()
    h, w = out.shape[:2]
    faces, pasted = [], []
    scaled = []
    for crop, (x0, y0, x1, y1) in crops:
        s = side / max(x1 - x0, y1 - y0)
        small = cv2.resize(crop, None, fx=s, fy=s, interpolation=cv2.INTER_AREA)
        scaled.append((small, [round(v * s) for v in (x0, y0, x1, y1)]))
    cell = max(max(c.shape[:2]) for c, _ in scaled) + 2 * side
    cols = max(1, w // cell)
    for i, (small, (x0, y0, x1, y1)) in enumerate(scaled):
        ox, oy = (i % cols) * cell + side, (i // cols) * cell + side
        ch, cw = small.shape[:2]
        if oy + ch > h:
            raise ValueError(f"{len(crops)} faces of {side} px do not fit on a {w}x{h} background")
        out[oy : oy + ch, ox : ox + cw] = small
        faces.append([ox + x0, oy + y0, ox + x1, oy + y1])
        pasted.append([ox, oy, ox + cw, oy + ch])
    return out, faces, pasted


def _inside_any(box: np.ndarray, regions: list[list[int]]) -> bool:
    cx, cy = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2
    return any(r[0] <= cx <= r[2] and r[1] <= cy <= r[3] for r in regions)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(prog="python -m bench.small_faces", description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[20, 24, 28, 32, 40, 48])
    ap.add_argument("--cap", type=int, default=1228800, help="face.max_pixels of the capped config")
    args = ap.parse_args(argv)
    examples = fetch_opencv_doc(default_cache())
    face = yaml.safe_load((REPO / "params.yaml").read_text())["anonymize"]["face"]
    capped = f"cap {args.cap}" + (" (default)" if args.cap == face.get("max_pixels") else "")
    configs = {"no cap": FaceDetector(**{**face, "max_pixels": 0}),
               capped: FaceDetector(**{**face, "max_pixels": args.cap})}
    crops = face_crops(examples)
    backgrounds = [as_rgb(load_image(examples, s)) for s in BACKGROUNDS]
    print(f"{len(crops)} real faces pasted on {len(backgrounds)} face-free photos "
          f"({', '.join(f'{b.shape[1]}x{b.shape[0]}' for b in backgrounds)}); face detector alone, one thread")
    found = {name: {s: 0 for s in args.sizes} for name in configs}
    false_pos = dict.fromkeys(configs, 0)
    seconds = dict.fromkeys(configs, 0.0)
    total = {s: 0 for s in args.sizes}
    for side in args.sizes:
        for bg in backgrounds:
            image, faces, pasted = composite(bg, crops, side)
            total[side] += len(faces)
            for name, det in configs.items():
                t0 = time.perf_counter()
                boxes = det(image).boxes
                seconds[name] += time.perf_counter() - t0
                found[name][side] += sum(face_hit(boxes, f) for f in faces)
                false_pos[name] += sum(not _inside_any(b, pasted) for b in boxes)
    n_images = len(args.sizes) * len(backgrounds)
    print(f"{'config':24s} " + " ".join(f"{s:>6d}px" for s in args.sizes) + "    all   false pos.  s/image")
    for name in configs:
        rates = [found[name][s] / total[s] for s in args.sizes]
        overall = sum(found[name].values()) / sum(total.values())
        print(f"{name:24s} " + " ".join(f"{r:8.3f}" for r in rates)
              + f"  {overall:.3f}  {false_pos[name]:8d}  {seconds[name] / n_images:7.2f}")
    print(f"faces per size: {total[args.sizes[0]]}; found = IoU >= 0.3 or >= 50 % covered")


if __name__ == "__main__":
    main()
