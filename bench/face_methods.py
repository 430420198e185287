"""Face obfuscation methods side by side: re-identification, quality, and how visible the edit's seam is.

On builtin images of two seeds (the stage's seed, where the defaults were chosen, and a held-out one),
every method is applied as check_quality's comparison applies it (`compare.obfuscate_sample`: the
ground-truth boxes padded as the detectors pad them), and one row per method gives the naive, adaptive
and trained re-identification rates (chance 1/100), SSIM and PSNR outside the boxes, the residual face
rate of the independent auditor (dlib HOG), and the **texture**: Canny edge density inside each padded
box of the output over the raw picture's density around it (`texture`: ~1 looks like the surroundings;
Telea's fronts meeting in a diamond raise it, a flat mask is 0). The utility and text columns of check_quality's table are left
out (they do not depend on how a face is filled).

    python -m bench.face_methods                     # 200 images per seed
    python -m bench.face_methods --images 100 --methods inpaint inpaint_soft
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np
import yaml

from tasks.auditors import RESIDUAL_DETECTORS
from tasks.check_quality.compare import (
    CompareConfig,
    CompareTools,
    Sample,
    compare_method,
    method_options,
    obfuscate_sample,
    padded_sensitive,
)
from tasks.check_quality.reid import NONE, AttackConfig, FaceEmbedder, gallery_faces
from tasks.ingest.builtin import generate_builtin
from tasks.params import Params

REPO = Path(__file__).resolve().parents[1]
METHODS = ("blur", "pixelate", "mask", "inpaint", "inpaint_soft", "replace")
HELD_OUT_SEED = 7


def builtin_samples(params: Params, *, seed: int, n: int) -> list[Sample]:
    """The first `n` builtin images of `seed` with at least one face, as comparison samples."""
    ing = params.ingest
    out = []
    gen = generate_builtin(n_images=4 * n, image_size=ing.image_size, max_faces=ing.max_faces,
                           face_size=ing.face_size, seed=seed)  # fmt: skip
    for s in gen:
        faces = [a for a in s.annotations if a.category == "face"]
        if not faces:
            continue
        boxes: dict[str, list[tuple[int, int, int, int]]] = {}
        texts: dict[str, list[str]] = {}
        for a in s.annotations:
            boxes.setdefault(a.category, []).append(tuple(int(v) for v in a.box))  # type: ignore[arg-type]
            texts.setdefault(a.category, []).append(str(a.text or ""))
        out.append(Sample(s.id, s.image, s.label,
                          {c: np.asarray(b, np.int64).reshape(-1, 4) for c, b in boxes.items()},
                          tuple(int(a.identity or 0) for a in faces),
                          {c: tuple(t) for c, t in texts.items()}))  # fmt: skip
        if len(out) == n:
            break
    return out


def texture(raw: np.ndarray, out: np.ndarray, boxes: np.ndarray) -> float:
    """Canny edge density inside the boxes (2 px in from their outline) of `out`, over the density of
    `raw` in the ring around them (each box grown by half its size): ~1 when a fill is as textured as the
    picture around it; a flat fill is near 0, a fill with hard fronts or outlines above."""

    def edges(img: np.ndarray) -> np.ndarray:
        return cv2.Canny(cv2.cvtColor(np.ascontiguousarray(img), cv2.COLOR_RGB2GRAY), 50, 150) > 0

    h, w = raw.shape[:2]
    inside, ring = np.zeros((h, w), bool), np.zeros((h, w), bool)
    for x0, y0, x1, y1 in boxes:
        bw, bh = x1 - x0, y1 - y0
        ring[max(0, y0 - bh // 2) : y1 + bh // 2, max(0, x0 - bw // 2) : x1 + bw // 2] = True
    for x0, y0, x1, y1 in boxes:
        ring[y0:y1, x0:x1] = False
        inside[y0 + 2 : y1 - 2, x0 + 2 : x1 - 2] = True
    e_out, e_raw = edges(out), edges(raw)
    ring_density = float(e_raw[ring].mean()) if ring.any() else 0.0
    return float(e_out[inside].mean()) / max(ring_density, 1e-3) if inside.any() else float("nan")


def rows(params: Params, samples: Sequence[Sample], methods: Sequence[str], tools: CompareTools) -> list[dict[str, float | str]]:
    table = []
    for method in [NONE, *methods]:
        t0 = time.perf_counter()
        attack = AttackConfig(method=method, options=method_options(params.anonymize), pad=params.anonymize.face.pad,
                              gallery_side=params.check_quality.reid_gallery_side,
                              train_per_identity=params.check_quality.reid_train_per_identity,
                              face_sizes=params.ingest.face_size, feature_side=params.check_quality.reid_feature_side,
                              seed=params.seed)  # fmt: skip
        config = CompareConfig(anonymize=params.anonymize, attack=attack, probes=params.check_quality.compare_probes,
                               residual_images=params.check_quality.compare_residual_images, text_images=0,
                               text_min_similarity=params.check_quality.text_min_similarity, seed=params.seed,
                               match_iou=params.check_quality.match_iou,
                               people_images=params.check_quality.compare_people_images)  # fmt: skip
        row = compare_method(samples, method=method, config=config, tools=tools)
        seams = []
        for s in samples:
            out = obfuscate_sample(s, method=method, options=attack.options, anonymize=params.anonymize, seed=0)
            seams.append(texture(s.image, out, padded_sensitive(s, params.anonymize)))
        table.append({"method": method, "naive": row.reid_naive_top1, "adaptive": row.reid_adaptive_top1,
                      "trained": row.reid_trained_accuracy, "chance": row.reid_chance,
                      "ssim_out": row.ssim_outside, "psnr_out": row.psnr_outside,
                      "residual": row.residual_face_rate, "texture": float(np.nanmean(seams)),
                      "s": time.perf_counter() - t0})  # fmt: skip
    return table


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(prog="python -m bench.face_methods", description=__doc__.splitlines()[0])
    ap.add_argument("--images", type=int, default=200, help="images with a face, per seed")
    ap.add_argument("--methods", nargs="+", default=list(METHODS))
    args = ap.parse_args(argv)
    params = Params(**yaml.safe_load((REPO / "params.yaml").read_text()))
    embed = FaceEmbedder()
    cq = params.check_quality
    tools = CompareTools(detector=RESIDUAL_DETECTORS[cq.residual_detector](upsample=cq.residual_upsample),
                         embed=embed, clear_gallery=embed(list(gallery_faces())), model=None,
                         train=params.train)  # fmt: skip
    cols = ("naive", "adaptive", "trained", "ssim_out", "psnr_out", "residual", "texture", "s")
    for seed in (params.seed, HELD_OUT_SEED):
        samples = builtin_samples(params, seed=seed, n=args.images)
        print(f"\nbuiltin seed {seed}: {len(samples)} images with faces, chance 1/100")
        print("| method | " + " | ".join(cols) + " |\n|---|" + "---|" * len(cols))
        for r in rows(params, samples, args.methods, tools):
            print(f"| {r['method']} | " + " | ".join(f"{float(r[c]):.3f}" for c in cols) + " |", flush=True)


if __name__ == "__main__":
    main()
