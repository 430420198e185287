"""ingest: build the embedded default dataset, or read a folder of labelled images, into data/raw.

Writes `images/*.png` (re-encoded from pixels, no metadata), `manifest.parquet`, `annotations.json`
(COCO ground truth, builtin only) and `quarantine.jsonl`; runs the Great Expectations manifest suite.
"""

from __future__ import annotations

from typing import Any

from prefect import flow, task
from prefect.cache_policies import NO_CACHE

from flows import io, tracking
from flows.common import check_counts, run_stage, write_metrics
from flows.expectations import validate_manifest
from tasks.errors import InvalidInputError
from tasks.ingest.builtin import generate_builtin
from tasks.ingest.folder import parse_folder_entries
from tasks.ingest.manifest import manifest_frame, to_coco
from tasks.ingest.splits import assign_splits
from tasks.params import IngestParams


def _ingest_builtin(p: IngestParams, *, raw: str, seed: int) -> tuple[list[dict[str, Any]], list[Any], list[dict]]:
    rows, coco_entries = [], []
    for sample in generate_builtin(n_images=p.n_images, image_size=p.image_size, max_faces=p.max_faces,
                                   face_size=p.face_size, seed=seed):
        rel = f"images/{sample.id}.png"
        sha = io.write_png(f"{raw}/{rel}", sample.image)
        h, w = sample.image.shape[:2]
        rows.append({"id": sample.id, "path": rel, "sha256": sha, "width": w, "height": h,
                     "label": sample.label, "source": "builtin", "status": "ok"})
        coco_entries.append((sample.id, rel, w, h, sample.annotations))
    return rows, coco_entries, []


@task(retries=1, cache_policy=NO_CACHE)
def _read_folder_shard(root: str, entries: list[tuple[str, str]], raw: str, start: int) -> list[dict[str, Any]]:
    """Decode, re-encode and write one shard; return manifest rows or quarantine rows (paths, not pixels)."""
    out = []
    for k, (rel, label) in enumerate(entries):
        image_id = f"img_{start + k:06d}"
        try:
            image = io.read_image(f"{root}/{rel}")
        except InvalidInputError as err:
            out.append({"quarantine": True, "path": rel, "reason": str(err)})
            continue
        sha = io.write_png(f"{raw}/images/{image_id}.png", image)
        out.append({"id": image_id, "path": f"images/{image_id}.png", "sha256": sha, "width": image.shape[1],
                    "height": image.shape[0], "label_name": label, "source": rel, "status": "ok"})
    return out


def _ingest_folder(p: IngestParams, *, raw: str) -> tuple[list[dict[str, Any]], list[Any], list[dict]]:
    root = str(io.path(p.folder or ""))
    accepted, rejected = parse_folder_entries(io.list_files(root))
    shard = 256
    futures = [_read_folder_shard.submit(root, accepted[i : i + shard], raw, i) for i in range(0, len(accepted), shard)]
    results = [r for f in futures for r in f.result()]
    quarantine = [{"path": rel, "reason": why} for rel, why in rejected]
    quarantine += [{"path": r["path"], "reason": r["reason"]} for r in results if r.get("quarantine")]
    rows = [r for r in results if not r.get("quarantine")]
    names = sorted({r["label_name"] for r in rows})
    for r in rows:  # labels are folder names, indexed in sorted order
        r["label"] = names.index(r.pop("label_name"))
    return rows, [], quarantine


@flow(name="ingest")
def ingest() -> dict[str, float]:
    params = io.load_params()
    p, raw = params.ingest, params.paths.raw
    io.clean_dir(raw)
    with tracking.stage_run("ingest", params=params,
                            inputs=[p.folder] if p.folder else [], outputs=[raw]) as run:
        if p.source == "builtin":
            rows, coco, quarantine = _ingest_builtin(p, raw=raw, seed=params.seed)
        else:
            rows, coco, quarantine = _ingest_folder(p, raw=raw)
        splits = assign_splits([r["label"] for r in rows], train=p.split.train, holdout=p.split.holdout,
                               test=p.split.test, seed=params.seed)
        for r, s in zip(rows, splits, strict=True):
            r["split"] = s
        manifest = manifest_frame(rows)
        io.write_table(f"{raw}/manifest.parquet", manifest)
        io.write_json(f"{raw}/annotations.json", to_coco(coco))
        io.write_jsonl(f"{raw}/quarantine.jsonl", quarantine)
        n_inputs = len(rows) + len(quarantine)
        gx = validate_manifest(manifest, suite="ingest", out_dir=f"{params.paths.reports}/gx/ingest",
                               n_rows=len(rows), labels=sorted(set(manifest["label"].tolist())) or [0],
                               max_side=4096)
        metrics = {"ingest/n_inputs": n_inputs, "ingest/n_ingested": len(rows), "ingest/n_quarantined": len(quarantine),
                   "ingest/gx_success": float(gx["success"]), "ingest/gx_failed_expectations": gx["n_failed"],
                   "ingest/n_annotations": sum(len(c[4]) for c in coco)}
        metrics |= {f"ingest/n_{s}": int((manifest["split"] == s).sum()) for s in ("train", "holdout", "test")}
        metrics = write_metrics("ingest", metrics, metrics_dir=params.paths.metrics)
        run.log_metrics(metrics)
        run.log_dataset(manifest, name="raw_manifest", source=raw, context="ingest")
        run.log_artifact(f"{params.paths.reports}/gx/ingest/results.json", "gx")
        check_counts("ingest", n_inputs=n_inputs, n_ok=len(rows), n_quarantined=len(quarantine),
                     max_fraction=params.gates.max_quarantine_fraction)
        if not gx["success"]:
            failed = [c["expectation"] for c in gx["results"] if not c["success"]]
            raise InvalidInputError(f"ingest: manifest failed Great Expectations checks: {', '.join(failed)}")
    return metrics


if __name__ == "__main__":
    run_stage("ingest")
