"""anonymize: detect and obfuscate faces, plates and text in every raw image; fail closed.

Prefect maps over shards of image paths; each shard task reads, anonymizes and writes its images
itself, so pixels never become Prefect results. Quarantined images are never written. The shards
run on a local process pool, or on a Dask cluster (`anonymize.executor: dask`, prefect-dask): the
same task, absolute paths in, records out, so both give byte-identical outputs.

`anonymize_one` is also the engine of `privtrail anonymize IN_DIR OUT_DIR` (`flows/folder_anonymize.py`).

Resumable (`tasks.resume`): each shard writes its images into its own folder under `data/.resume/anonymize/`
(outside the DVC output, which `dvc repro` deletes before it runs the stage), then its finished-shard record.
A rerun keeps every shard whose record still matches its inputs, the params and the code, and redoes the rest;
the output folder is then assembled from the shards in order (hard links), so a resumed run writes the same
bytes as an uninterrupted one. The resume folder is removed when the stage finishes (under DVC, by
`flows.pipeline repro` once dvc.lock records the outputs). SIGINT/SIGTERM stop the shards at their next image
boundary (`flows.common.stop_on_signals`) and exit with a line saying how to resume.
"""

from __future__ import annotations

import functools
import importlib.metadata
import os
import secrets
import signal
import sys
import threading
from pathlib import Path
from typing import Any

from prefect import flow, task, unmapped
from prefect.cache_policies import NO_CACHE

from flows import io, tracking
from flows.common import (
    check_counts,
    one_cv_thread,
    progress_results,
    run_stage,
    shard_runner,
    stop_file_for,
    stop_on_signals,
    stop_requested,
    write_metrics,
)
from tasks.anonymize.detectors import build_detectors
from tasks.anonymize.detectors.common import DetectorSet
from tasks.anonymize.device import ResolvedDevice, resolve_device
from tasks.anonymize.engine import AnonymizedImage, anonymize_image, image_rng, obfuscation_options
from tasks.anonymize.gt_eval import evaluate_image
from tasks.anonymize.records import gt_metrics, image_record, summarize_records, unreadable_record
from tasks.anonymize.scaled import Downscaled
from tasks.anonymize.setup import anonymization_setup
from tasks.auditors import RESIDUAL_DETECTORS
from tasks.errors import AnonymizationError, InvalidInputError, StageInterrupted
from tasks.groundtruth import gt_details
from tasks.ingest.manifest import manifest_frame
from tasks.params import AnonymizeParams
from tasks.resume import (
    ShardRecord,
    canonical_digest,
    code_digest,
    inputs_digest,
    merged_records,
    shard_key,
    stale_reason,
)

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
        detectors = build_detectors(
            targets=p.targets,
            face=p.face.model_dump(),
            text=p.text.model_dump(),
            body=p.body.model_dump(),
            plate=p.plate.model_dump(),
            providers=detector_device(p.device).providers,
            orientation=p.orientation,
        )
        if p.detect_max_side is not None:
            detectors = {k: Downscaled(d, max_side=p.detect_max_side) for k, d in detectors.items()}
        _local.engine = (DetectorSet(detectors, threads=threads), obfuscation_options(p))
    engine: tuple[Any, dict[str, dict[str, Any]]] = _local.engine
    return engine


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


def anonymize_one(
    image: Any, *, p: AnonymizeParams, rng: Any, carry: Any = None, threads: int = 1
) -> AnonymizedImage:
    """Run the engine with the stage's params on one image (pixels stay in the calling process); `carry`:
    a video tracker's step (`anonymize_image`); `threads`: the detectors run that many at a time
    (`DetectorSet`: for a process that has the cores to itself)."""
    detectors, options = _engine(p, threads)
    methods = {str(k): str(v) for k, v in p.methods.items()}  # the engine's Mapping[str, str]
    return anonymize_image(
        image,
        detectors=detectors,
        method=p.method,
        methods=methods,
        options=options,
        rng=rng,
        verify=p.verify,
        carry=carry,
    )


@task(cache_policy=NO_CACHE)
def anonymize_shard(
    rows: list[dict[str, Any]],
    *,
    raw: str,
    out: str,
    p: AnonymizeParams,
    seed: int | None = None,
    record: str | None = None,
    key: str = "",
    index: int = 0,
    stop: str | None = None,
) -> list[dict[str, Any]]:
    """Anonymize one shard of images; write the ones that pass; return their records (no pixels).

    `seed` seeds the per-image noise (dp_pixelate's Laplace noise, inpaint_soft's grain); None draws a secret
    one here, from OS entropy, so it is never a Prefect parameter, never logged and never derived from params'
    seed (the stage passes None whenever dp_pixelate is used: `noise_seed`). `record`: where to write the
    shard's `ShardRecord` (keyed `key`, position `index`) once its images are written. `stop`: the run's stop
    file; when it appears (or this worker noted SIGINT/SIGTERM) the shard stops before its next image and
    returns [] without a record (not an error: the flow reports the interruption once, `resumable_map`).
    """
    one_cv_thread()  # also on Dask workers, which have no process-pool initializer
    seed = secrets.randbits(63) if seed is None else seed
    records = []
    for row in rows:
        if stop_requested(stop):
            return []
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
    if record is not None:  # after the files it describes: a record never vouches for a file not yet written
        files = {r["path"]: r["sha256"] for r in records if r["status"] == "anonymized"}
        io.write_json(
            record, ShardRecord(index=index, key=key, files=files, records=tuple(records)).as_dict()
        )
    return records


def _anonymized_manifest(records: list[dict[str, Any]], source: str) -> Any:
    ok = [r for r in records if r["status"] == "anonymized"]
    return manifest_frame(
        [
            {k: r[k] for k in ("id", "path", "sha256", "width", "height", "label", "split")}
            | {"source": source, "status": "ok"}
            for r in ok
        ]
    )


def _with_ground_truth(rows: list[dict[str, Any]], raw: str) -> list[dict[str, Any]]:
    """Attach each image's ground-truth [category, box] pairs (from `raw`/annotations.json, when the data
    has them: the builtin set, a COCO import) so the shards can score their own output."""
    if not io.path(f"{raw}/annotations.json").exists():
        return rows
    gt = gt_details(io.read_json(f"{raw}/annotations.json"))
    if not gt:  # a collection without boxes: nothing to score against (check_quality's proxies measure it)
        return rows
    return [r | {"gt": [[c, a[0]] for c, anns in gt.get(r["id"], {}).items() for a in anns]} for r in rows]


NON_DP_SEED = (
    0  # the grain's noise without dp_pixelate: it protects nothing (it only looks), so it may be fixed
)


def noise_seed(p: AnonymizeParams) -> int | None:
    """The seed the stage hands its shards: None (a secret one per shard) when dp_pixelate adds DP noise,
    else `NON_DP_SEED`, so every run, an interrupted and resumed one included, writes the same bytes."""
    return None if "dp_pixelate" in {p.method, *p.methods.values()} else NON_DP_SEED


def state_dir(out: str) -> Path:
    """Where anonymize keeps its finished shards until it finishes: `<out's parent>/.resume/anonymize`, outside
    every DVC output (`dvc repro` deletes a stage's outputs before running it)."""
    return io.resume_dir(out, "anonymize")


def code_version() -> str:
    """Digest of the code a shard's output depends on: every tasks/ source, this stage's flow modules, and the
    installed distributions (detector models ship in wheels)."""
    root = Path(__file__).resolve().parents[1]
    files = [
        *sorted((root / "tasks").rglob("*.py")),
        *(root / "flows" / n for n in ("anonymize.py", "io.py", "common.py")),
    ]
    sources = {f.relative_to(root).as_posix(): io.read_bytes(f) for f in files}
    dists = (f"{d.metadata['Name']}=={d.version}" for d in importlib.metadata.distributions())
    return code_digest(sources, dists)


def _shard_files(state: Path, index: int) -> tuple[Path, Path]:
    """(folder of the shard's images, its record file)."""
    return state / "shards" / f"{index:05d}", state / "shards" / f"{index:05d}.json"


def _read_record(file: Path) -> ShardRecord | None:
    """The shard record in `file`, or None when there is none or it cannot be read (then it is redone)."""
    if not file.is_file():
        return None
    try:
        return ShardRecord.from_dict(io.read_json(file), where=str(file))
    except (InvalidInputError, ValueError):  # ValueError: not JSON (a record is written atomically: rare)
        return None


def _digest_or_none(file: Path) -> str | None:
    return io.file_sha256(file) if file.is_file() else None


def plan_resume(
    shards: list[list[dict[str, Any]]], *, raw: str, state: Path, params_key: str, code: str
) -> tuple[list[str], dict[int, str]]:
    """Each shard's key, and the shards to (re)do with why; a stale shard's record and files are deleted
    (record first: files are never left vouched for), and so is anything for shards that no longer exist."""
    keys, todo = [], {}
    for i, rows in enumerate(shards):
        inputs = inputs_digest(rows, [_digest_or_none(io.path(f"{raw}/{r['path']}")) for r in rows])
        keys.append(shard_key(inputs=inputs, params=params_key, code=code))
        folder, file = _shard_files(state, i)
        record = _read_record(file)
        found = {n: _digest_or_none(folder / n) for n in (record.files if record else {})}
        why = stale_reason(record, index=i, key=keys[-1], digests=found)
        if why is not None:
            todo[i] = why
            file.unlink(missing_ok=True)
            io.remove_dir(folder)
    known = {p.name for i in range(len(shards)) for p in _shard_files(state, i)}
    for extra in (state / "shards").glob("*") if (state / "shards").is_dir() else ():
        if extra.name not in known:
            extra.unlink() if extra.is_file() else io.remove_dir(extra)
    return keys, todo


def map_shards(
    shards: list[list[dict[str, Any]]],
    *,
    raw: str,
    state: Path,
    p: AnonymizeParams,
    keys: list[str],
    todo: list[int],
    stop: str,
) -> None:
    """Run `anonymize_shard` over the shards numbered `todo` on `p.executor` (process pool or Dask); each writes
    its images and then its record under `state`.

    Workers get absolute paths (a Dask worker's working directory is not the workspace).
    """
    if not todo:
        return
    dirs, files = zip(*(_shard_files(state, i) for i in todo), strict=True)
    parameters = {
        "rows": [shards[i] for i in todo],
        "out": [str(d) for d in dirs],
        "record": [str(f) for f in files],
        "key": [keys[i] for i in todo],
        "index": list(todo),
        "raw": unmapped(str(io.path(raw))),
        "p": unmapped(p),
        "seed": unmapped(noise_seed(p)),
        "stop": unmapped(stop),
    }
    with shard_runner(p.executor, address=p.dask_address, stoppable=True) as runner:
        futures = runner.map(anonymize_shard, parameters)  # type: ignore[arg-type]  # a sync task: no coroutine
        progress_results(list(futures), sizes=[len(shards[i]) for i in todo], desc="anonymize")


def _finished(state: Path, n: int) -> int:
    return sum(_read_record(_shard_files(state, i)[1]) is not None for i in range(n))


def resumable_map(
    shards: list[list[dict[str, Any]]], *, raw: str, p: AnonymizeParams, state: Path
) -> list[dict[str, Any]]:
    """Anonymize every shard not already finished (`plan_resume`), stopping cleanly on SIGINT/SIGTERM; the
    records of all shards in shard order.

    Raises:
        StageInterrupted: a signal stopped it; the finished shards' records are kept for the next run.
        AnonymizationError: a shard ended without its record and no stop was asked for.
    """
    io.remove_temporaries(state)  # a killed run's half-written files: never trusted, never kept
    keys, todo = plan_resume(
        shards, raw=raw, state=state, params_key=canonical_params(p), code=code_version()
    )
    if len(todo) < len(shards):
        print(
            f"privtrail anonymize: resuming: {len(shards) - len(todo)} of {len(shards)} shards already finished "
            f"(kept), {len(todo)} to do",
            file=sys.stderr,
            flush=True,
        )
    stop = stop_file_for(state)
    with stop_on_signals(stop) as received:
        try:
            map_shards(shards, raw=raw, state=state, p=p, keys=keys, todo=sorted(todo), stop=stop)
        except Exception:
            if not (received or stop_requested(stop)):
                raise
        if received or stop_requested(stop):
            raise StageInterrupted(
                f"{_finished(state, len(shards))} of {len(shards)} shards finished and kept in {state}; resume: run the "
                "same command again (python -m flows.anonymize, dvc repro or make pipeline): they are not redone",
                signum=received[0] if received else signal.SIGTERM,
            )
    found = [_read_record(_shard_files(state, i)[1]) for i in range(len(shards))]
    missing = [i for i, r in enumerate(found) if r is None]
    if missing:  # e.g. a pool worker that noted a signal its run did not get: never published half done
        raise AnonymizationError(
            f"anonymize: shard(s) {missing} finished without a record in {state}; run the same "
            "command again to finish them"
        )
    return merged_records([r for r in found if r is not None])


def canonical_params(p: AnonymizeParams) -> str:
    """Digest of the (resolved) anonymize params: any change redoes every shard."""
    return canonical_digest(p.model_dump(mode="json"))


def publish(*, state: Path, out: str, n_shards: int) -> None:
    """Fill the (emptied) output folder with every shard's images, shard by shard (hard links, else copies)."""
    io.clean_dir(out)
    for i in range(n_shards):
        folder, file = _shard_files(state, i)
        record = _read_record(file)
        for name in sorted(record.files if record else ()):
            io.link_or_copy(folder / name, f"{out}/{name}")


def write_outputs(
    records: list[dict[str, Any]], *, raw: str, out: str, p: AnonymizeParams, metrics_dir: str
) -> tuple[dict[str, float], Any]:
    """Write the stage's tables (records, quarantine, manifest, labels, source key) into `out`, then its metrics
    file (what is done, written after the files it describes); (metrics, anonymized manifest)."""
    io.write_jsonl(f"{out}/records.jsonl", records)
    io.write_jsonl(
        f"{out}/quarantine.jsonl",
        [
            {"id": r["id"], "path": r["path"], "reason": r["reason"]}
            for r in records
            if r["status"] == "quarantined"
        ],
    )
    manifest = _anonymized_manifest(records, source=raw)
    io.write_table(f"{out}/manifest.parquet", manifest)
    for name in ("labels.json", "source.json"):  # train reads only this folder: its labels, the ledger key
        io.write_json(f"{out}/{name}", io.read_json(f"{raw}/{name}"))
    metrics = (
        summarize_records(records).as_metrics()
        | gt_metrics(records)
        | {"anonymize/verify_enabled": float(p.verify != "off")}
    )  # the gate anonymize_verification_on reads it
    return write_metrics("anonymize", metrics, metrics_dir=metrics_dir), manifest


@flow(name="anonymize")
def anonymize() -> dict[str, float]:
    params = io.load_params()
    p, raw, out = params.anonymize, params.paths.raw, params.paths.anonymized
    run_p, device = resolved(p)  # before anything is deleted: cuda where it cannot run stops here
    state = state_dir(out)
    with tracking.stage_run("anonymize", params=params, inputs=[raw], outputs=[out]) as run:
        rows = _with_ground_truth(io.read_table(f"{raw}/manifest.parquet").to_dict("records"), raw)
        shards = [rows[i : i + p.shard_size] for i in range(0, len(rows), p.shard_size)]
        records = resumable_map(
            shards, raw=raw, p=run_p, state=state
        )  # dp_pixelate's noise: secret, per shard
        publish(state=state, out=out, n_shards=len(shards))
        metrics, manifest = write_outputs(records, raw=raw, out=out, p=p, metrics_dir=params.paths.metrics)
        # what the anonymizer was set to do (targets, detectors, verification, device): the report's sentences
        run.extra["setup"] = anonymization_setup(  # run_p: the device as resolved for this run
            run_p, device=device.describe(), device_reason=device.reason
        ).as_dict()
        run.log_metrics(metrics)
        run.log_dataset(manifest, name="anonymized_manifest", source=out, context="anonymize")
        n_q = sum(r["status"] == "quarantined" for r in records)
        check_counts(
            "anonymize",
            n_inputs=len(rows),
            n_ok=len(manifest),
            n_quarantined=n_q,
            max_fraction=params.gates.max_quarantine_fraction,
        )
    # finished: nothing left to resume (a failed gate keeps it: a rerun need not redo it). Under DVC it stays until
    # `flows.pipeline` sees dvc.lock written (a kill while DVC hashes the outputs then redoes nothing); the next
    # run supersedes it otherwise
    if not os.environ.get("DVC_STAGE"):
        io.remove_resume_dir(out, "anonymize")
    return metrics


if __name__ == "__main__":
    run_stage("anonymize")
