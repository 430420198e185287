"""Anonymization against the builtin dataset's ground truth, in one process, for a quick parameter study.

For N builtin images (the same generator and parameters as `params.ingest`), runs the engine with the
stage's params (`params.anonymize`, overridable with `--set section.key=value`) and prints, per
category, the share of ground-truth boxes the redactions cover (>= 70 % of the box), the share of
pixels changed outside the sensitive boxes, quarantines, escalated images (and those written with a
last-round mask), and the missed boxes' sizes.

    python -m bench.anonymize_recall --images 300 --set face.threshold=0.25
"""

from __future__ import annotations

import argparse
import json
import time
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

import yaml

from tasks.anonymize.detectors import detectors_from_params
from tasks.anonymize.engine import anonymize_image, image_rng, obfuscation_options
from tasks.anonymize.gt_eval import GtTally, evaluate_image
from tasks.ingest.builtin import generate_builtin
from tasks.params import AnonymizeParams

REPO = Path(__file__).resolve().parents[1]


def _set(tree: dict[str, Any], assignment: str) -> None:
    key, _, value = assignment.partition("=")
    *path, leaf = key.split(".")
    node = tree
    for part in path:
        node = node.setdefault(part, {})
    node[leaf] = yaml.safe_load(value)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(prog="python -m bench.anonymize_recall", description=__doc__.splitlines()[0])
    ap.add_argument("--images", type=int, default=200)
    ap.add_argument("--start", type=int, default=0, help="skip this many images first")
    ap.add_argument("--set", action="append", default=[], help="anonymize param override, e.g. face.pad=0.3")
    ap.add_argument("--misses", action="store_true", help="print every missed box")
    args = ap.parse_args(argv)
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    for assignment in args.set:
        _set(params["anonymize"], assignment)
    p = AnonymizeParams(**params["anonymize"])
    ing = params["ingest"]
    detectors = detectors_from_params(p)
    options = obfuscation_options(p)
    tally = GtTally()
    misses: dict[str, list[Any]] = defaultdict(list)
    reasons: Counter[str] = Counter()
    escalated = masked = 0
    t0 = time.perf_counter()
    samples = generate_builtin(
        n_images=args.start + args.images,
        image_size=ing["image_size"],
        max_faces=ing["max_faces"],
        face_size=tuple(ing["face_size"]),
        seed=params["seed"],
    )
    for i, sample in enumerate(samples):
        if i < args.start:
            continue
        result = anonymize_image(
            sample.image,
            detectors=detectors,
            method=p.method,
            methods=p.methods,
            options=options,
            rng=image_rng(0, sample.id),
            verify=p.verify,
        )
        gt = [(a.category, a.box, a.text) for a in sample.annotations]
        ev = evaluate_image(sample.image, result.image, gt, result.detections.boxes)
        tally.add(ev)
        if result.quarantine_reason:
            reasons[result.quarantine_reason.split(":")[0]] += 1
        escalated += result.escalated > 0
        masked += result.masked > 0 and result.image is not None
        for cat, box, text in ev.missed:
            misses[cat].append((sample.id, box, text))
    seconds = time.perf_counter() - t0
    print(json.dumps({k: round(v, 4) for k, v in tally.metrics().items()}, indent=1))
    print(
        f"{args.images} images in {seconds:.1f} s ({1000 * seconds / args.images:.0f} ms/image); "
        f"quarantine reasons: {dict(reasons)}; escalated images {escalated}, of them written with a mask {masked}"
    )
    for cat, rows in misses.items():
        sides = [min(b[2] - b[0], b[3] - b[1]) for _, b, _ in rows]
        print(f"missed {cat}: {len(rows)}, short sides {sorted(sides)}")
        if args.misses:
            for row in rows:
                print("   ", cat, *row)


if __name__ == "__main__":
    main()
