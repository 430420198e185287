"""anonymize: detect and obfuscate faces, plates and text in every raw image; fail closed.

Prefect maps over shards of image paths; each shard task reads, anonymizes and writes its images
itself, so pixels never become Prefect results. Quarantined images are never written.
"""

from __future__ import annotations

import threading
from typing import Any

from prefect import flow, task, unmapped
from prefect.cache_policies import NO_CACHE

from flows import io, tracking
from flows.common import check_counts, process_runner, run_stage, write_metrics
from tasks.anonymize.detectors import build_detectors
from tasks.anonymize.engine import anonymize_image
from tasks.anonymize.records import image_record, summarize_records, unreadable_record
from tasks.errors import InvalidInputError
from tasks.ingest.manifest import manifest_frame
from tasks.params import AnonymizeParams

_local = threading.local()  # detectors built once per worker, reused across shards


def _detectors(p: AnonymizeParams) -> Any:
    if getattr(_local, "key", None) != p:
        _local.key = p
        _local.detectors = build_detectors(targets=p.targets, face=p.face.model_dump(), text=p.text.model_dump())
    return _local.detectors


@task(cache_policy=NO_CACHE)
def anonymize_shard(rows: list[dict[str, Any]], *, raw: str, out: str, p: AnonymizeParams) -> list[dict[str, Any]]:
    """Anonymize one shard of images; write the ones that pass; return their records (no pixels)."""
    detectors = _detectors(p)
    records = []
    for row in rows:
        try:
            image = io.read_image(f"{raw}/{row['path']}")
        except InvalidInputError as err:
            records.append(unreadable_record(row, str(err)))
            continue
        result = anonymize_image(image, detectors=detectors, method=p.method, block=p.pixelate_block,
                                 blur_strength=p.blur_strength, verify=p.verify)
        rec = image_record(row, result)
        if result.image is not None:
            rec["sha256"] = io.write_png(f"{out}/{row['path']}", result.image)
            rec["width"], rec["height"] = int(result.image.shape[1]), int(result.image.shape[0])
        records.append(rec)
    return records


def _anonymized_manifest(records: list[dict[str, Any]], source: str) -> Any:
    ok = [r for r in records if r["status"] == "anonymized"]
    return manifest_frame([{k: r[k] for k in ("id", "path", "sha256", "width", "height", "label", "split")}
                           | {"source": source, "status": "ok"} for r in ok])


@flow(name="anonymize", task_runner=process_runner())
def anonymize() -> dict[str, float]:
    params = io.load_params()
    p, raw, out = params.anonymize, params.paths.raw, params.paths.anonymized
    io.clean_dir(out)
    with tracking.stage_run("anonymize", params=params, inputs=[raw], outputs=[out]) as run:
        rows = io.read_table(f"{raw}/manifest.parquet").to_dict("records")
        shards = [rows[i : i + p.shard_size] for i in range(0, len(rows), p.shard_size)]
        futures = anonymize_shard.map(shards, raw=unmapped(raw), out=unmapped(out), p=unmapped(p))
        records = [r for f in futures for r in f.result()]
        io.write_jsonl(f"{out}/records.jsonl", records)
        io.write_jsonl(f"{out}/quarantine.jsonl", [{"id": r["id"], "path": r["path"], "reason": r["reason"]}
                                                   for r in records if r["status"] == "quarantined"])
        manifest = _anonymized_manifest(records, source=raw)
        io.write_table(f"{out}/manifest.parquet", manifest)
        metrics = write_metrics("anonymize", summarize_records(records).as_metrics(), metrics_dir=params.paths.metrics)
        run.log_metrics(metrics)
        run.log_dataset(manifest, name="anonymized_manifest", source=out, context="anonymize")
        n_q = sum(r["status"] == "quarantined" for r in records)
        check_counts("anonymize", n_inputs=len(rows), n_ok=len(manifest), n_quarantined=n_q,
                     max_fraction=params.gates.max_quarantine_fraction)
    return metrics


if __name__ == "__main__":
    run_stage("anonymize")
