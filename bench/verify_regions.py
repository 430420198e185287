"""Region vs whole-image verification on the same builtin images: decisions, residuals and time.

`python -m bench.verify_regions --images 300 --size 256` anonymizes each builtin image twice with the
default params (`anonymize.verify: regions`, then `whole`), one thread, and prints how often the two
modes disagree on quarantine, how many images were verified on windows at all (the others fell back to
a whole-image pass: their windows covered most of the image), and the engine's seconds per image in
each mode. The equivalence test (`tests/tasks/test_anonymize_regions.py`, slow) runs `compare`.
"""

from __future__ import annotations

import argparse
import time
from dataclasses import dataclass, field
from typing import Any

import cv2
import numpy as np

from tasks.anonymize.detectors import detectors_from_params
from tasks.anonymize.engine import anonymize_image, image_rng, obfuscation_options
from tasks.anonymize.regions import context_of, detect_crop
from tasks.ingest.builtin import generate_builtin
from tasks.params import AnonymizeParams
from tasks.types import Detections, Detector, Image


class _Crops:
    """A detector that counts the crops region verification hands it (and passes everything through)."""

    def __init__(self, inner: Detector) -> None:
        self.inner, self.crops = inner, 0

    @property
    def context(self) -> str:
        return context_of(self.inner)

    def __call__(self, image: Image) -> Detections:
        return self.inner(image)

    def detect_crop(self, crop: Image, *, full_shape: tuple[int, int]) -> Detections:
        self.crops += 1
        return detect_crop(self.inner, crop, full_shape=full_shape)


@dataclass
class Comparison:
    """What `compare` measured."""

    images: int = 0
    windowed: int = 0  # images whose verification ran on windows (at least one crop)
    quarantined: dict[str, int] = field(default_factory=lambda: {"regions": 0, "whole": 0})
    seconds: dict[str, float] = field(default_factory=lambda: {"regions": 0.0, "whole": 0.0})
    disagreements: list[tuple[str, str | None, str | None]] = field(default_factory=list)


def compare(*, images: int, size: int, seed: int = 1, params: AnonymizeParams | None = None) -> Comparison:
    """Anonymize `images` builtin scenes of side `size` (faces 24–72 px, as the default set) in both modes."""
    cv2.setNumThreads(1)
    p = params or AnonymizeParams()
    detectors = detectors_from_params(p)
    counted = {name: _Crops(det) for name, det in detectors.items()}
    options = obfuscation_options(p)
    out = Comparison()
    kw: dict[str, Any] = {"method": p.method, "methods": p.methods, "block": p.pixelate_block,
                          "blur_strength": p.blur_strength, "options": options}
    warm = np.full((64, 64, 3), 128, np.uint8)
    warm[16:48, 16:48] = np.random.default_rng(0).integers(0, 256, (32, 32, 3), dtype=np.uint8)
    for det in detectors.values():  # load the models before the clock starts (else the first mode pays)
        det(warm)
    for scene in generate_builtin(n_images=images, image_size=size, max_faces=3, face_size=(24, 72), seed=seed):
        reasons = {}
        for mode in ("regions", "whole"):
            before = sum(c.crops for c in counted.values())
            t0 = time.perf_counter()
            result = anonymize_image(scene.image, detectors=counted, verify=mode,
                                     rng=image_rng(0, scene.id), **kw)
            out.seconds[mode] += time.perf_counter() - t0
            out.quarantined[mode] += result.image is None
            reasons[mode] = result.quarantine_reason
            if mode == "regions" and sum(c.crops for c in counted.values()) > before:
                out.windowed += 1
        out.images += 1
        if (reasons["regions"] is None) != (reasons["whole"] is None):
            out.disagreements.append((scene.id, reasons["regions"], reasons["whole"]))
    return out


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(prog="python -m bench.verify_regions", description=__doc__.splitlines()[0])
    ap.add_argument("--images", type=int, default=60)
    ap.add_argument("--size", type=int, default=256, help="side of the builtin scenes (faces stay 24–72 px)")
    args = ap.parse_args(argv)
    c = compare(images=args.images, size=args.size)
    print(f"verification, regions vs whole: {c.images} builtin images at {args.size} px, one thread")
    print(f"  verified on windows: {c.windowed} images (the rest: windows covered >= half the image)")
    for mode in ("regions", "whole"):
        print(f"  {mode:8} quarantined {c.quarantined[mode]:4}   engine {1000 * c.seconds[mode] / c.images:7.1f} ms/image")
    print(f"  quarantine decisions that differ: {len(c.disagreements)}")
    for image_id, r, w in c.disagreements:
        print(f"    {image_id}: regions {r!r} | whole {w!r}")


if __name__ == "__main__":
    main()
