"""anonymize: detect and obfuscate faces, plates and text in every raw image; fail closed.

Prefect maps over shards of image paths; each shard task reads, anonymizes and writes its images
itself, so pixels never become Prefect results. Quarantined images are never written. The shards
run on a local process pool, or on a Dask cluster (`anonymize.executor: dask`, prefect-dask): the
same task, absolute paths in, records out, so both give byte-identical outputs.

`anonymize_one` is also the engine of `privtrail anonymize IN_DIR OUT_DIR` (`flows/folder_anonymize.py`).
"""

from __future__ import annotations

import functools
import secrets
import threading
from typing import Any

from prefect import flow, task, unmapped
from prefect.cache_policies import NO_CACHE

from flows import io, tracking
from flows.common import check_counts, one_cv_thread, progress_results, run_stage, shard_runner, write_metrics
from tasks.anonymize.detectors import build_detectors
from tasks.anonymize.detectors.common import DetectorSet
from tasks.anonymize.device import ResolvedDevice, resolve_device
from tasks.anonymize.engine import AnonymizedImage, anonymize_image, image_rng, obfuscation_options
from tasks.anonymize.gt_eval import evaluate_image
from tasks.anonymize.records import gt_metrics, image_record, summarize_records, unreadable_record
from tasks.anonymize.scaled import Downscaled
from tasks.anonymize.setup import anonymization_setup
from tasks.auditors import RESIDUAL_DETECTORS
from tasks.errors import InvalidInputError
from tasks.groundtruth import gt_details
from tasks.ingest.manifest import manifest_frame
from tasks.params import AnonymizeParams

_local = threading.local()  # detectors (and the k-Same pool) built once per worker, reused across shards


@functools.cache
def detector_device(requested: str) -> ResolvedDevice:
    """`anonymize.device` resolved once per process (with CUDA listed, a probe session checks that it runs).

    Raises:
        InvalidInputError: an unknown value, or cuda where it cannot run (`resolve_device`).
    """
    return resolve_device(requested)


def resolved(p: AnonymizeParams) -> tuple[AnonymizeParams, ResolvedDevice]:
    """`p` with `device` resolved to cpu or cuda (what the workers get: they build their sessions there, or fail
    closed, whatever a worker would pick for auto on its own), and the resolution (the run's record)."""
    device = detector_device(p.device)
    return p.model_copy(update={"device": device.name}), device


def _engine(p: AnonymizeParams, threads: int = 1) -> tuple[Any, dict[str, dict[str, Any]]]:
    if getattr(_local, "key", None) != (p, threads):
        _local.key = (p, threads)
        detectors = build_detectors(targets=p.targets, face=p.face.model_dump(), text=p.text.model_dump(),
                                    body=p.body.model_dump(), plate=p.plate.model_dump(),
                                    providers=detector_device(p.device).providers, orientation=p.orientation)
        if p.detect_max_side is not None:
            detectors = {k: Downscaled(d, max_side=p.detect_max_side) for k, d in detectors.items()}
        _local.engine = (DetectorSet(detectors, threads=threads), obfuscation_options(p))
    return _local.engine


def _auditor() -> Any:
    """The independent residual-face auditor (dlib HOG, as check_quality's), built once per worker."""
    if getattr(_local, "auditor", None) is None:
        _local.auditor = RESIDUAL_DETECTORS["dlib_hog"](upsample=1)
    return _local.auditor


def _score(image: Any, result: AnonymizedImage, row: dict[str, Any], p: AnonymizeParams) -> dict[str, Any]:
    """Ground-truth counts of one written image (no boxes, no text, no pixels)."""
    gt = [(c, tuple(b), None) for c, b in row["gt"]]
    auditor = _auditor() if p.audit_residual else None
    return evaluate_image(image, result.image, gt, result.detections.boxes, auditor=auditor).as_record()


def anonymize_one(image: Any, *, p: AnonymizeParams, rng: Any, carry: Any = None, threads: int = 1) -> AnonymizedImage:
    """Run the engine with the stage's params on one image (pixels stay in the calling process); `carry`:
    a video tracker's step (`anonymize_image`); `threads`: the detectors run that many at a time
    (`DetectorSet`: for a process that has the cores to itself)."""
    detectors, options = _engine(p, threads)
    return anonymize_image(image, detectors=detectors, method=p.method, methods=p.methods, options=options,
                           rng=rng, verify=p.verify, carry=carry)


@task(cache_policy=NO_CACHE)
def anonymize_shard(rows: list[dict[str, Any]], *, raw: str, out: str, p: AnonymizeParams,
                    seed: int | None = None) -> list[dict[str, Any]]:
    """Anonymize one shard of images; write the ones that pass; return their records (no pixels).

    `seed` seeds dp_pixelate's Laplace noise; None (what the stage passes) draws a secret one here, from
    OS entropy, so it is never a Prefect parameter, never logged and never derived from params' seed.
    """
    one_cv_thread()  # also on Dask workers, which have no process-pool initializer
    seed = secrets.randbits(63) if seed is None else seed
    records = []
    for row in rows:
        try:
            image = io.read_image(f"{raw}/{row['path']}")
        except InvalidInputError as err:
            records.append(unreadable_record(row, str(err)))
            continue
        result = anonymize_one(image, p=p, rng=image_rng(seed, str(row["id"])))
        rec = image_record(row, result)
        if result.image is not None:
            rec["sha256"] = io.write_png(f"{out}/{row['path']}", result.image)
            rec["width"], rec["height"] = int(result.image.shape[1]), int(result.image.shape[0])
            if row.get("gt") is not None:
                rec["gt"] = _score(image, result, row, p)
        records.append(rec)
    return records


def _anonymized_manifest(records: list[dict[str, Any]], source: str) -> Any:
    ok = [r for r in records if r["status"] == "anonymized"]
    return manifest_frame([{k: r[k] for k in ("id", "path", "sha256", "width", "height", "label", "split")}
                           | {"source": source, "status": "ok"} for r in ok])


def _with_ground_truth(rows: list[dict[str, Any]], raw: str) -> list[dict[str, Any]]:
    """Attach each image's ground-truth [category, box] pairs (from `raw`/annotations.json, when the data
    has them: the builtin set, a COCO import) so the shards can score their own output."""
    if not io.path(f"{raw}/annotations.json").exists():
        return rows
    gt = gt_details(io.read_json(f"{raw}/annotations.json"))
    if not gt:  # a collection without boxes: nothing to score against (check_quality's proxies measure it)
        return rows
    return [r | {"gt": [[c, a[0]] for c, anns in gt.get(r["id"], {}).items() for a in anns]} for r in rows]


def map_shards(shards: list[list[dict[str, Any]]], *, raw: str, out: str, p: AnonymizeParams,
               seed: int | None = None) -> list[dict[str, Any]]:
    """Run `anonymize_shard` over `shards` on `p.executor` (process pool or Dask); records in shard order.

    Workers get absolute paths (a Dask worker's working directory is not the workspace).
    """
    parameters = {"rows": shards, "raw": unmapped(str(io.path(raw))), "out": unmapped(str(io.path(out))),
                  "p": unmapped(p), "seed": unmapped(seed)}
    with shard_runner(p.executor, address=p.dask_address) as runner:
        futures = runner.map(anonymize_shard, parameters)
        done = progress_results(list(futures), sizes=[len(s) for s in shards], desc="anonymize")
        return [r for part in done for r in part]


@flow(name="anonymize")
def anonymize() -> dict[str, float]:
    params = io.load_params()
    p, raw, out = params.anonymize, params.paths.raw, params.paths.anonymized
    run_p, device = resolved(p)  # before anything is deleted: cuda where it cannot run stops here
    io.clean_dir(out)
    with tracking.stage_run("anonymize", params=params, inputs=[raw], outputs=[out]) as run:
        rows = _with_ground_truth(io.read_table(f"{raw}/manifest.parquet").to_dict("records"), raw)
        shards = [rows[i : i + p.shard_size] for i in range(0, len(rows), p.shard_size)]
        records = map_shards(shards, raw=raw, out=out, p=run_p)  # dp_pixelate's noise: secret, drawn per shard
        io.write_jsonl(f"{out}/records.jsonl", records)
        io.write_jsonl(f"{out}/quarantine.jsonl", [{"id": r["id"], "path": r["path"], "reason": r["reason"]}
                                                   for r in records if r["status"] == "quarantined"])
        manifest = _anonymized_manifest(records, source=raw)
        io.write_table(f"{out}/manifest.parquet", manifest)
        for name in ("labels.json", "source.json"):  # train reads only this folder: its labels, the ledger key
            io.write_json(f"{out}/{name}", io.read_json(f"{raw}/{name}"))
        metrics = summarize_records(records).as_metrics() | gt_metrics(records) | {
            "anonymize/verify_enabled": float(p.verify != "off")}  # the gate anonymize_verification_on reads it
        # what the anonymizer was set to do (targets, detectors, verification, device): the report's sentences
        run.extra["setup"] = anonymization_setup(p, device=device.describe(), device_reason=device.reason).as_dict()
        metrics = write_metrics("anonymize", metrics, metrics_dir=params.paths.metrics)
        run.log_metrics(metrics)
        run.log_dataset(manifest, name="anonymized_manifest", source=out, context="anonymize")
        n_q = sum(r["status"] == "quarantined" for r in records)
        check_counts("anonymize", n_inputs=len(rows), n_ok=len(manifest), n_quarantined=n_q,
                     max_fraction=params.gates.max_quarantine_fraction)
    return metrics


if __name__ == "__main__":
    run_stage("anonymize")
