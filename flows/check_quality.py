"""check_quality: what anonymization cost and what it left.

- per image (all of them, in process-pool shards): PSNR / SSIM / MS-SSIM whole and outside the boxes,
  redaction recall against the COCO ground truth, faces an independent detector (dlib) still finds,
  the facts the Great Expectations suite checks, read back from each written file (sha256, size, metadata);
- re-identification of the anonymized faces (naive / adaptive / trained attacks), text still readable
  (personal text and plates by an independent OCR, Tesseract, calibrated on the raw images; signage by rapidocr),
  task utility (a model trained once on raw train images, tested on raw vs anonymized test images);
- the method comparison: every `compare_methods` method on the same raw test images → a table and a
  privacy–utility scatter plot; LPIPS when weights are configured (else reported unavailable).

Reads raw pixels to compare, but logs and writes only aggregates: no face, crop or embedding leaves a task —
except `method_samples.png`, crops of the files anonymize *wrote* (verified) per method; other methods only on
the builtin benchmark's package faces, never re-obfuscated user images (a clear row is refused).
The measures are the Prefect tasks of `flows.check_quality_tasks`; this module wires them.
"""

from __future__ import annotations

import os
from typing import Any

import pandas as pd
from prefect import flow, unmapped

from flows import io, tracking
from flows.check_quality_tasks import (
    check_shard,
    compare_task,
    gallery_task,
    linkage_task,
    lpips_task,
    method_samples_task,
    reid_task,
    text_task,
    utility_task,
)
from flows.common import process_runner, progress_results, run_stage, write_metrics
from flows.expectations import validate_anonymized_manifest
from tasks import layout
from tasks.check_quality.compare import MethodRow, comparison_metrics
from tasks.check_quality.manifest import BOOKKEEPING_FILES, audit_frame, file_facts
from tasks.check_quality.outputs import COMPARE_CSV, COMPARE_JSON, LOGGED, PRIVACY_UTILITY_PNG, SUMMARY_JSON
from tasks.check_quality.per_image import gx_metrics, residual_faces, summarize_records, written_facts
from tasks.check_quality.plan import (
    anonymized_rows,
    appearance_pads,
    has_face_truth,
    identity_rows,
    rows_of_test_split,
    samples_rows,
    shard_rows,
)
from tasks.check_quality.plots import privacy_utility_figure
from tasks.check_quality.readable import text_skipped
from tasks.check_quality.reid import NONE
from tasks.check_quality.samples import even_sample
from tasks.groundtruth import gt_boxes, gt_details
from tasks.params import Params

STAGE = "check_quality"


def _write_compare(plots: Any, rows: list[dict[str, Any]]) -> dict[str, float]:
    """The method table (JSON, CSV) and its privacy–utility plot; its rows as metrics."""
    table = [MethodRow(**r) for r in rows]
    io.write_json(plots / COMPARE_JSON, rows)
    io.write_csv(plots / COMPARE_CSV, pd.DataFrame(rows))
    io.save_figure(plots / PRIVACY_UTILITY_PNG, privacy_utility_figure(table))
    return comparison_metrics(table)


def _auditors(params: Params, read: dict[str, Any]) -> dict[str, Any]:
    """Which engine measured what (not metrics: names), and why an auditor could not run."""
    from importlib.metadata import version

    return {
        "residual_face": params.check_quality.residual_detector,
        "manifest": f"great_expectations {version('great-expectations')} (facts re-read from the files)",
        **read["auditors"],
        "unavailable": read["unavailable"],
    }


def _gx(params: Params, records: list[dict[str, Any]], *, use_gt: bool) -> dict[str, float]:
    """The anonymized manifest's claims beside facts read back from the folder (every file hashed and read
    by Pillow), the raw manifest and the check's own residual-face auditor, through the GX suite."""
    anon, facts = params.paths.anonymized, written_facts(records)
    on_disk = [f for f in io.list_files(anon) if f not in BOOKKEEPING_FILES]
    written = {
        f: facts[f] if f in facts else file_facts(io.read_bytes(f"{anon}/{f}"), name=f) for f in on_disk
    }
    raw_m = io.read_table(f"{params.paths.raw}/{layout.MANIFEST}")
    frame = audit_frame(
        raw=raw_m,
        anonymized=io.read_table(f"{anon}/{layout.MANIFEST}"),
        quarantined=[q["id"] for q in io.read_jsonl(f"{anon}/{layout.QUARANTINE}")],
        written=written,
        residual=residual_faces(records, use_gt=use_gt),
    )
    gx = validate_anonymized_manifest(
        frame,
        out_dir=f"{params.paths.reports}/gx/{STAGE}",
        n_raw=len(raw_m),
        max_residual_share=params.gates.max_residual_face_rate,
    )
    return gx_metrics(gx)


@flow(name=STAGE, task_runner=process_runner())
def check_quality() -> dict[str, float]:
    params = io.load_params()
    p, raw, anon = params.check_quality, params.paths.raw, params.paths.anonymized
    plots = io.clean_dir(f"{params.paths.plots}/{STAGE}")
    with tracking.stage_run(STAGE, params=params, inputs=[raw, anon], outputs=[str(plots)]) as run:
        rows = anonymized_rows(
            io.read_jsonl(f"{anon}/{layout.RECORDS}"), calibration_images=p.auditor_calibration_images
        )
        annotations = io.read_json(f"{raw}/{layout.ANNOTATIONS}")
        details, gt = gt_details(annotations), gt_boxes(annotations)
        use_gt = has_face_truth(details)  # face ground truth (builtin, COCO) or the redacted detections
        gallery = gallery_task.submit()
        utility = utility_task.submit(params=params)
        compare_rows = even_sample(rows_of_test_split(rows), p.compare_images)
        compare = compare_task.map(
            [NONE, *p.compare_methods],
            unmapped(compare_rows),
            unmapped(details),
            unmapped(gallery),
            unmapped(utility),
            use_gt=unmapped(use_gt),
            params=unmapped(params),
        )
        grid = method_samples_task.submit(samples_rows(compare_rows, rows), list(compare), params=params)
        face_rows = identity_rows(rows, details, builtin=params.ingest.source == "builtin")
        reid = reid_task.submit(face_rows, details, gallery, params=params) if face_rows else None
        linkage = linkage_task.submit(rows, details, use_gt=use_gt, params=params)
        text = (
            text_task.submit(even_sample(rows, p.text_images), details, params=params)
            if p.text_images
            else None
        )
        lpips = lpips_task.submit(even_sample(rows, p.lpips_images), params=params)
        shards = shard_rows(rows, workers=os.cpu_count() or 2)
        futures = check_shard.map(
            shards,
            unmapped(gt),
            raw=unmapped(raw),
            anon=unmapped(anon),
            p=unmapped(p),
            pads=unmapped(appearance_pads(params.anonymize, use_gt=use_gt)),
        )
        records = [
            r
            for part in progress_results(list(futures), sizes=[len(s) for s in shards], desc=STAGE)
            for r in part
        ]
        summary, lp = summarize_records(records), lpips.result()
        metrics = (
            summary.as_metrics() | (reid.result() if reid else {}) | utility.result()[1] | linkage.result()
        )
        read = text.result() if text else text_skipped()
        metrics |= (
            read["metrics"]
            | {k: v for k, v in lp.items() if k != "reason"}
            | _gx(params, records, use_gt=use_gt)
        )
        run.extra["auditors"] = _auditors(params, read)  # engine names: reports/runs/check_quality.json
        metrics |= _write_compare(plots, [f.result() for f in compare])
        io.write_json(plots / SUMMARY_JSON, {"headline": summary.headline(), "lpips": lp["reason"]})
        metrics = write_metrics(STAGE, metrics, metrics_dir=params.paths.metrics)
        run.log_metrics(metrics)
        run.set_tags({"headline": summary.headline(), "lpips": str(lp["reason"])[:250]})
        grid.result()  # crops of the written (verified) files only, or the builtin benchmark's package faces
        for name in LOGGED:
            run.log_artifact(plots / name, artifact_path=STAGE)
    return metrics


if __name__ == "__main__":
    run_stage(STAGE)
