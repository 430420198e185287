"""check_quality: what anonymization cost (PSNR/SSIM outside the sensitive boxes) and what it left
(redaction recall against the COCO ground truth; faces an independent detector, dlib, still finds).

Reads raw pixels to compare, but logs only aggregates.
"""

from __future__ import annotations

import os
import threading
from collections import defaultdict
from typing import Any

import numpy as np
from prefect import flow, task, unmapped
from prefect.cache_policies import NO_CACHE

from flows import io, tracking
from flows.common import process_runner, run_stage, write_metrics
from tasks.check_quality.residual import RESIDUAL_DETECTORS
from tasks.check_quality.summary import ImageRecord, image_record, summarize
from tasks.params import CheckQualityParams
from tasks.types import Detector

_local = threading.local()  # the auditor is built once per worker; task functions are pickled by value,
# so they reach module state only through module-level functions like this one


def _auditor(p: CheckQualityParams) -> Detector:
    if getattr(_local, "key", None) != p:
        _local.key = p
        _local.detector = RESIDUAL_DETECTORS[p.residual_detector](upsample=p.residual_upsample)
    return _local.detector


def gt_boxes(coco: dict[str, Any]) -> dict[str, dict[str, np.ndarray]]:
    """privtrail image id → category name → (N, 4) [x0, y0, x1, y1] ground-truth boxes."""
    names = {c["id"]: c["name"] for c in coco["categories"]}
    ids = {im["id"]: im.get("privtrail_id", im["file_name"]) for im in coco["images"]}
    out: dict[str, dict[str, list[list[int]]]] = defaultdict(lambda: defaultdict(list))
    for a in coco["annotations"]:
        x, y, w, h = a["bbox"]
        out[ids[a["image_id"]]][names[a["category_id"]]].append([x, y, x + w, y + h])
    return {i: {c: np.asarray(b, np.int64).reshape(-1, 4) for c, b in cats.items()} for i, cats in out.items()}


@task(cache_policy=NO_CACHE)
def check_shard(rows: list[dict[str, Any]], gt: dict[str, dict[str, np.ndarray]], *, raw: str, anon: str,
                p: CheckQualityParams) -> list[dict[str, Any]]:
    """Per-image records of one shard (aggregates only: no pixels leave the task)."""
    detector = _auditor(p)
    out = []
    for row in rows:
        rec = image_record(io.read_image(f"{raw}/{row['path']}"), io.read_image(f"{anon}/{row['path']}"),
                           image_id=row["id"], gt_boxes_by_category=gt.get(row["id"], {}),
                           redacted_boxes=np.asarray(row["boxes"], np.int64).reshape(-1, 4),
                           detector=detector, match_iou=p.match_iou, calibrate=row["calibrate"])
        out.append(rec.as_dict())
    return out


@flow(name="check_quality", task_runner=process_runner())
def check_quality() -> dict[str, float]:
    params = io.load_params()
    p, raw, anon = params.check_quality, params.paths.raw, params.paths.anonymized
    plots = io.clean_dir(f"{params.paths.plots}/check_quality")
    with tracking.stage_run("check_quality", params=params, inputs=[raw, anon], outputs=[str(plots)]) as run:
        rows = [r for r in io.read_jsonl(f"{anon}/records.jsonl") if r["status"] == "anonymized"]
        step = max(1, len(rows) // p.auditor_calibration_images)
        rows = [r | {"calibrate": i % step == 0} for i, r in enumerate(rows)]
        gt = gt_boxes(io.read_json(f"{raw}/annotations.json"))
        n = max(1, len(rows) // (4 * (os.cpu_count() or 2)))
        shards = [rows[i : i + n] for i in range(0, len(rows), n)]
        futures = check_shard.map(shards, unmapped(gt), raw=unmapped(raw), anon=unmapped(anon), p=unmapped(p))
        records = [ImageRecord.from_dict(r) for f in futures for r in f.result()]
        summary = summarize(records)
        io.write_json(plots / "summary.json", {"headline": summary.headline()})
        metrics = write_metrics("check_quality", summary.as_metrics(), metrics_dir=params.paths.metrics)
        run.log_metrics(metrics)
        run.set_tags({"headline": summary.headline()})
    return metrics


if __name__ == "__main__":
    run_stage("check_quality")
