"""The anonymizer on real photos (issue 17's acceptance): faces gone for two independent auditors, and
face-free photos left alone.

Runs the stage's default `anonymize` params (all default targets) on Debian's opencv-doc photos and
scikit-image's astronaut / camera (`tests/real_photos.py` fetches them; nothing is committed), then:

- **faces**: every hand-labelled face of `tests/data/real_photos_gt.json` — is it changed (>= 70 % of its
  box's pixels), and do dlib's HOG (upsample 1 on a 2× copy) and MMOD CNN (upsample 1) detectors still
  find a face on it (a detection with IoU >= 0.3 or covering >= 50 % of the box)? Both auditors are
  also run on the raw photo, to show which faces they can see at all.
- **face-free photos** (the street and object photos of `tests/real_photos.py`, no person in them): the
  share of pixels changed. The output is PNG (lossless) and compared in memory, so there is no codec
  noise: every changed pixel is a redaction.
- **text lines** (every labelled text box with its string): does OCR (the anonymizer's reader,
  `tasks.check_quality.text`, similarity >= `check_quality.text_min_similarity`) read it on the raw photo
  and on the output? Ordinary lines (signs, shop fronts) should stay readable, personal ones (names) not.

    python -m bench.real_photos            # ~5 min on 2 cores (MMOD is slow)
    python -m bench.real_photos --no-mmod
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np
import yaml

from tasks.anonymize.detectors import detectors_from_params
from tasks.anonymize.engine import anonymize_image, image_rng, obfuscation_options
from tasks.auditors import dlib_cnn_detector, dlib_hog_detector
from tasks.check_quality.text import ocr_reader, read_strings
from tasks.params import AnonymizeParams
from tests.real_photos import GT_PATH, OBJECTS, STREET, default_cache, fetch_opencv_doc, load_image

REPO = Path(__file__).resolve().parents[1]
NO_PEOPLE = tuple(s for s in STREET + OBJECTS if s != "data/licenseplate_motion.jpg")  # a car park: people


def as_rgb(image: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(cv2.cvtColor(image, cv2.COLOR_GRAY2RGB if image.ndim == 2 else cv2.COLOR_BGR2RGB))


def face_hit(found: np.ndarray, box: list[int]) -> bool:
    """Whether any detection matches the face box (IoU >= 0.3, or covers >= 50 % of it)."""
    x0, y0, x1, y1 = box
    area = (x1 - x0) * (y1 - y0)
    for a0, b0, a1, b1 in np.asarray(found, np.float64).reshape(-1, 4):
        inter = max(0.0, min(x1, a1) - max(x0, a0)) * max(0.0, min(y1, b1) - max(y0, b0))
        union = area + (a1 - a0) * (b1 - b0) - inter
        if inter / union >= 0.3 or inter / area >= 0.5:
            return True
    return False


Run = Callable[[str], tuple[np.ndarray, np.ndarray | None, str | None, float]]


def runner(examples: Path, p: AnonymizeParams) -> Run:
    """source -> (RGB photo, anonymized output or None, quarantine reason or None, seconds), each source
    anonymized once with `p` (the stage's params; seeded per source)."""
    detectors = detectors_from_params(p)
    options = obfuscation_options(p)
    done: dict[str, tuple[np.ndarray, np.ndarray | None, str | None, float]] = {}

    def run(source: str) -> tuple[np.ndarray, np.ndarray | None, str | None, float]:
        if source not in done:
            image = as_rgb(load_image(examples, source))
            t0 = time.perf_counter()
            r = anonymize_image(image, detectors=detectors, method=p.method, methods=p.methods, options=options,
                                rng=image_rng(0, source), verify=p.verify)  # fmt: skip
            done[source] = (image, r.image, r.quarantine_reason, time.perf_counter() - t0)
        return done[source]

    return run


def text_lines(
    entries: list[dict], run: Callable[[str], tuple[np.ndarray, np.ndarray | None]], *, min_similarity: float
) -> list[dict]:
    """Every labelled text line of `entries` (gt json images), read by OCR on the raw photo and on
    `run(file)`'s output (None: quarantined, nothing readable): {"file", "text", "personal", "raw", "anon"}."""
    reader, rows = ocr_reader(), []
    for entry in entries:
        lines = [b for b in entry["boxes"] if b["category"] == "text"]
        if not lines:
            continue
        raw, out = run(entry["file"])
        boxes, texts = np.array([b["bbox"] for b in lines]), [b["text"] for b in lines]
        read_raw = read_strings(boxes, texts, *reader(raw), min_similarity=min_similarity)
        read_out = (np.zeros(len(lines), bool) if out is None
                    else read_strings(boxes, texts, *reader(out), min_similarity=min_similarity))  # fmt: skip
        rows += [{"file": entry["file"], "text": b["text"], "personal": b["personal"], "raw": bool(r), "anon": bool(a)}
                 for b, r, a in zip(lines, read_raw, read_out, strict=True)]  # fmt: skip
    return rows


def text_rates(rows: list[dict]) -> dict[str, float]:
    """kept: ordinary lines read on the output / those read on the raw photo; personal_readable: personal
    lines read on the output / all personal lines; plus the counts."""
    ordinary = [r for r in rows if not r["personal"] and r["raw"]]
    personal = [r for r in rows if r["personal"]]
    return {
        "ordinary_read_raw": float(len(ordinary)),
        "ordinary_labelled": float(sum(not r["personal"] for r in rows)),
        "kept": sum(r["anon"] for r in ordinary) / len(ordinary) if ordinary else float("nan"),
        "personal": float(len(personal)),
        "personal_readable": sum(r["anon"] for r in personal) / len(personal) if personal else float("nan"),
    }


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(prog="python -m bench.real_photos", description=__doc__.splitlines()[0])
    ap.add_argument("--no-mmod", action="store_true", help="skip dlib's MMOD CNN auditor (slow)")
    ap.add_argument("--set", action="append", default=[], help="anonymize param override: key=yaml")
    args = ap.parse_args(argv)
    examples = fetch_opencv_doc(default_cache())
    params = yaml.safe_load((REPO / "params.yaml").read_text())["anonymize"]
    for assignment in args.set:
        key, _, value = assignment.partition("=")
        params[key] = yaml.safe_load(value)
    auditors = {"hog": dlib_hog_detector(upsample=1, upscale=2)}
    if not args.no_mmod:
        auditors["mmod"] = dlib_cnn_detector(upsample=1)
    p = AnonymizeParams(**params)
    run = runner(examples, p)

    gt = [im for im in json.loads(GT_PATH.read_text())["images"] if any(b["category"] == "face" for b in im["boxes"])]
    print(f"faces ({p.methods.get('face', p.method)}): changed = >= 70 % of the box's pixels changed; auditors raw -> output")
    totals = {"faces": 0, "changed": 0, **{f"{a}_after": 0 for a in auditors}, **{f"{a}_raw": 0 for a in auditors}}
    for im in gt:
        image, out, reason, seconds = run(im["file"])
        for b in (b for b in im["boxes"] if b["category"] == "face"):
            x0, y0, x1, y1 = b["bbox"]
            totals["faces"] += 1
            if out is None:
                print(f"  {im['file']} {b['bbox']}: QUARANTINED ({reason})")
                continue
            changed = float((out[y0:y1, x0:x1] != image[y0:y1, x0:x1]).any(-1).mean())
            totals["changed"] += changed >= 0.7
            seen = []
            for name, det in auditors.items():
                raw_hit, out_hit = face_hit(det(image).boxes, b["bbox"]), face_hit(det(out).boxes, b["bbox"])
                totals[f"{name}_raw"] += raw_hit
                totals[f"{name}_after"] += out_hit
                seen.append(f"{name} {'yes' if raw_hit else 'no'} -> {'FOUND' if out_hit else 'no'}")
            print(f"  {im['file']} {b['bbox']}: changed {changed:.2f}; " + "; ".join(seen) + f"  ({seconds:.1f} s)",
                  flush=True)  # fmt: skip
    print("  total: " + ", ".join(f"{k} {v}" for k, v in totals.items()))
    print("face-free photos: share of pixels changed")
    shares = []
    for source in NO_PEOPLE:
        try:
            image, out, reason, seconds = run(source)
        except FileNotFoundError:
            continue
        if out is None:
            print(f"  {source}: QUARANTINED ({reason})")
            continue
        share = float((out != image).any(-1).mean())
        shares.append(share)
        print(f"  {source}: {100 * share:.2f} %  ({seconds:.1f} s)", flush=True)
    if shares:
        print(f"  {len(shares)} photos: mean {100 * np.mean(shares):.2f} %, max {100 * max(shares):.2f} %, "
              f"over 3 %: {sum(s > 0.03 for s in shares)}")  # fmt: skip
    similar = float(yaml.safe_load((REPO / "params.yaml").read_text())["check_quality"]["text_min_similarity"])
    print(f"text lines: read by OCR (similarity >= {similar}) on the raw photo -> on the output")
    rows = text_lines(json.loads(GT_PATH.read_text())["images"], lambda f: run(f)[:2], min_similarity=similar)
    for r in rows:
        kind = "personal" if r["personal"] else "ordinary"
        print(f"  {r['file']} {r['text']!r} ({kind}): {'read' if r['raw'] else 'unread'} -> "
              f"{'READ' if r['anon'] and r['personal'] else 'read' if r['anon'] else 'unread'}")
    m = text_rates(rows)
    print(f"  ordinary lines kept readable: {m['kept']:.3f} of the {m['ordinary_read_raw']:.0f} OCR reads on the raw "
          f"photos ({m['ordinary_labelled']:.0f} labelled); personal lines readable: {m['personal_readable']:.3f} "
          f"of {m['personal']:.0f}")  # fmt: skip


if __name__ == "__main__":
    main()
