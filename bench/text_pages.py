"""Text-heavy real pictures (issue 36): is the redaction proportionate to what is personal?

Runs the stage's default `anonymize` params (all default targets) on every scene-text photo of Debian's
opencv-doc (`examples/text/scenetext*.jpg`) and on scikit-image's scanned `page` and `text` (fetched at
run time by `tests/real_photos.py`; nothing is committed). Per picture:

- **boxes %**: the share of the picture inside the boxes the first pass redacted (padded as the detectors
  pad them): what is personal plus its padding;
- **changed %**: the share of pixels the output changed (PNG, compared in memory: no codec noise);
- **excess**: changed % - boxes %, in points (the acceptance bar: <= 5);
- **outside**: changed pixels lying outside every region the engine says it redacted
  (`AnonymizedImage.changed`: each redacted box, a face ellipse's reach (`soft_extent`), and each
  escalated box — a residual and the boxes it overlaps — grown by that round's `ESCALATE_GROW`): 0 means
  no redaction region is larger than its boxes plus padding;
- **largest %**: the largest connected changed region, as a share of the picture;
- escalated / masked boxes, and whether the picture was quarantined.

    python -m bench.text_pages          # ~1 min on 2 cores
"""

from __future__ import annotations

import argparse
from pathlib import Path

import cv2
import numpy as np
import yaml

from tasks.anonymize.detectors import detectors_from_params
from tasks.anonymize.engine import anonymize_image, image_rng, obfuscation_options
from tasks.params import AnonymizeParams
from tests.real_photos import default_cache, fetch_opencv_doc

REPO = Path(__file__).resolve().parents[1]


def pictures(root: Path) -> dict[str, np.ndarray]:
    """name → RGB picture: the opencv-doc scene-text photos and skimage's page and text."""
    import skimage.data

    out = {}
    for path in sorted((root / "text").glob("scenetext[0-9]*.jpg")):
        out[f"text/{path.name}"] = cv2.cvtColor(cv2.imread(str(path)), cv2.COLOR_BGR2RGB)
    for name in ("page", "text"):
        grey = getattr(skimage.data, name)()
        out[f"skimage:{name}"] = cv2.cvtColor(grey, cv2.COLOR_GRAY2RGB)
    return out


def measure(image: np.ndarray, result: object) -> dict[str, float]:
    """The row's numbers for one picture (see the module docstring)."""
    h, w = image.shape[:2]
    found, out = result.detections, result.image  # type: ignore[attr-defined]
    inside = np.zeros((h, w), bool)
    for x0, y0, x1, y1 in found.boxes:
        inside[y0:y1, x0:x1] = True
    reach = np.zeros((h, w), bool)
    for x0, y0, x1, y1 in result.changed:  # type: ignore[attr-defined]
        reach[y0:y1, x0:x1] = True
    changed = np.zeros((h, w), bool) if out is None else np.any(out != image, axis=2)
    n, labels = cv2.connectedComponents(changed.astype(np.uint8))
    largest = max((int((labels == k).sum()) for k in range(1, n)), default=0)
    return {"boxes": 100 * inside.mean(), "changed": 100 * changed.mean(),
            "outside": int((changed & ~reach).sum()), "largest": 100 * largest / (h * w)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.parse_args()
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    p = AnonymizeParams(**params["anonymize"])
    det = detectors_from_params(p)
    root = fetch_opencv_doc(default_cache())
    print(f"{'picture':34} {'size':>9} {'boxes %':>8} {'changed %':>9} {'excess':>7} {'outside':>7} "
          f"{'largest %':>9} {'escal.':>6} {'masked':>6} quarantined")  # fmt: skip
    for name, image in pictures(root).items():
        r = anonymize_image(image, detectors=det, method=p.method, methods=p.methods, options=obfuscation_options(p),
                            rng=image_rng(0, name), verify=p.verify)  # fmt: skip
        m = measure(image, r)
        print(f"{name:34} {image.shape[1]:>4}x{image.shape[0]:<4} {m['boxes']:8.1f} {m['changed']:9.1f} "
              f"{m['changed'] - m['boxes']:7.1f} {m['outside']:7d} {m['largest']:9.1f} {r.escalated:6d} {r.masked:6d} "
              f"{'yes: ' + str(r.quarantine_reason) if r.image is None else 'no'}")  # fmt: skip


if __name__ == "__main__":
    main()
