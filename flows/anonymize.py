"""anonymize: detect and obfuscate faces, plates and text in every raw image; fail closed.

Prefect maps over shards of image paths; each shard task reads, anonymizes and writes its images
itself, so pixels never become Prefect results. Quarantined images are never written. The shards
run on a local process pool, or on a Dask cluster (`anonymize.executor: dask`, prefect-dask): the
same task, absolute paths in, records out, so both give byte-identical outputs.

`anonymize_folder` is the engine of `privtrail anonymize IN_DIR OUT_DIR` (flows/cli.py): any folder,
outside the DAG, with a process pool instead of Prefect.
"""

from __future__ import annotations

import contextlib
import functools
import os
import secrets
import stat
import sys
import threading
from collections import Counter
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path, PurePosixPath
from typing import Any

from prefect import flow, task, unmapped
from prefect.cache_policies import NO_CACHE
from tqdm import tqdm

from flows import io, tracking
from flows.common import check_counts, gt_details, one_cv_thread, run_stage, shard_runner, write_metrics
from tasks.anonymize.detectors import build_detectors
from tasks.anonymize.engine import AnonymizedImage, anonymize_image, image_rng, obfuscation_options
from tasks.anonymize.gt_eval import evaluate_image
from tasks.anonymize.records import gt_metrics, image_record, summarize_records, unreadable_record
from tasks.anonymize.scaled import Downscaled
from tasks.check_quality.residual import RESIDUAL_DETECTORS
from tasks.errors import InvalidInputError
from tasks.ingest.folder import MAX_PIXELS, SUPPORTED_EXTENSIONS, decode_image
from tasks.ingest.manifest import manifest_frame
from tasks.params import AnonymizeParams

_local = threading.local()  # detectors (and the k-Same pool) built once per worker, reused across shards


def _engine(p: AnonymizeParams) -> tuple[Any, dict[str, dict[str, Any]]]:
    if getattr(_local, "key", None) != p:
        _local.key = p
        detectors = build_detectors(targets=p.targets, face=p.face.model_dump(), text=p.text.model_dump(),
                                    body=p.body.model_dump(), plate=p.plate.model_dump())
        if p.detect_max_side is not None:
            detectors = {k: Downscaled(d, max_side=p.detect_max_side) for k, d in detectors.items()}
        _local.engine = (detectors, obfuscation_options(p))
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


def anonymize_one(image: Any, *, p: AnonymizeParams, rng: Any) -> AnonymizedImage:
    """Run the engine with the stage's params on one image (pixels stay in the calling process)."""
    detectors, options = _engine(p)
    return anonymize_image(image, detectors=detectors, method=p.method, methods=p.methods, options=options,
                           rng=rng, verify=p.verify)


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
        return [r for f in futures for r in f.result()]


@flow(name="anonymize")
def anonymize() -> dict[str, float]:
    params = io.load_params()
    p, raw, out = params.anonymize, params.paths.raw, params.paths.anonymized
    io.clean_dir(out)
    with tracking.stage_run("anonymize", params=params, inputs=[raw], outputs=[out]) as run:
        rows = _with_ground_truth(io.read_table(f"{raw}/manifest.parquet").to_dict("records"), raw)
        shards = [rows[i : i + p.shard_size] for i in range(0, len(rows), p.shard_size)]
        records = map_shards(shards, raw=raw, out=out, p=p)  # dp_pixelate's noise: secret, drawn per shard
        io.write_jsonl(f"{out}/records.jsonl", records)
        io.write_jsonl(f"{out}/quarantine.jsonl", [{"id": r["id"], "path": r["path"], "reason": r["reason"]}
                                                   for r in records if r["status"] == "quarantined"])
        manifest = _anonymized_manifest(records, source=raw)
        io.write_table(f"{out}/manifest.parquet", manifest)
        for name in ("labels.json", "source.json"):  # train reads only this folder: its labels, the ledger key
            io.write_json(f"{out}/{name}", io.read_json(f"{raw}/{name}"))
        metrics = summarize_records(records).as_metrics() | gt_metrics(records)
        metrics = write_metrics("anonymize", metrics, metrics_dir=params.paths.metrics)
        run.log_metrics(metrics)
        run.log_dataset(manifest, name="anonymized_manifest", source=out, context="anonymize")
        n_q = sum(r["status"] == "quarantined" for r in records)
        check_counts("anonymize", n_inputs=len(rows), n_ok=len(manifest), n_quarantined=n_q,
                     max_fraction=params.gates.max_quarantine_fraction)
    return metrics


# --- `privtrail anonymize IN_DIR OUT_DIR`: any folder, outside the DAG (no Prefect, no MLflow) ---------


MAX_FILE_BYTES = 1 << 30  # 1 GiB: more than any camera file; a bigger "image" is refused unread
OUTSIDE = "symlink leading outside IN_DIR (not followed)"


def list_inputs(in_dir: Path, out_dir: Path) -> tuple[list[str], list[tuple[str, str]], list[str]]:
    """Walk `in_dir` (recursive, sorted; `out_dir` and symlinked folders are not walked into).

    Returns:
        (inputs, refused, unlisted): image-named files to read, as relpaths; image-named entries
        refused unread as (relpath, reason) — symlinks leading outside `in_dir`, broken symlinks,
        FIFOs, devices and sockets; folders that could not be listed, with the OS's reason.
    """
    found: list[str] = []
    refused: list[tuple[str, str]] = []
    unlisted: list[str] = []
    walk = os.walk(in_dir, followlinks=False, onerror=lambda e: unlisted.append(f"{e.filename}: {e.strerror}"))
    for root, dirs, files in walk:
        links = [d for d in dirs if (Path(root) / d).is_symlink()]
        dirs[:] = sorted(d for d in dirs if d not in links and (Path(root) / d).resolve() != out_dir)
        for name in sorted(files + links):
            f = Path(root) / name
            if f.suffix.lower() not in SUPPORTED_EXTENSIONS:
                continue
            rel, why = f.relative_to(in_dir).as_posix(), _refusal(f, in_dir)
            if why:
                refused.append((rel, why))
            else:
                found.append(rel)
    return found, refused, unlisted


def _refusal(file: Path, in_dir: Path) -> str | None:
    """Why an image-named entry must not be opened, or None when it is a regular file inside `in_dir`."""
    if file.is_symlink() and not file.resolve().is_relative_to(in_dir):
        return OUTSIDE
    try:
        mode = file.stat().st_mode
    except OSError as err:
        return f"unreadable: {'broken symlink' if file.is_symlink() else 'cannot stat'}: {err.strerror}"
    if not stat.S_ISREG(mode):
        return f"not a regular file ({_KINDS.get(stat.S_IFMT(mode), 'special file')})"
    return None


_KINDS = {stat.S_IFDIR: "a folder", stat.S_IFIFO: "a FIFO", stat.S_IFSOCK: "a socket",
          stat.S_IFCHR: "a character device", stat.S_IFBLK: "a block device"}


def read_input(file: Path, *, name: str, max_bytes: int = MAX_FILE_BYTES) -> bytes:
    """The bytes of one listed input, re-checked on the open descriptor (the tree may change after
    listing): a regular file of at most `max_bytes`, never a FIFO that would block the read.

    Raises:
        InvalidInputError: unreadable, not a regular file, or too large; the message names `name`.
    """
    try:
        fd = os.open(file, os.O_RDONLY | os.O_NONBLOCK)
        with os.fdopen(fd, "rb") as f:
            info = os.fstat(f.fileno())
            if not stat.S_ISREG(info.st_mode):
                raise InvalidInputError(f"{name}: not a regular file")
            if info.st_size > max_bytes:
                raise InvalidInputError(f"{name}: file too large ({info.st_size} bytes, limit {max_bytes})")
            return f.read()
    except OSError as err:
        raise InvalidInputError(f"{name}: cannot read: {err.strerror or err}") from None


def output_names(relpaths: list[str]) -> dict[str, str]:
    """Input relpath → output relpath, all distinct: the same path as .png when no other input claims
    it ('a.png' keeps its name), else the input's full name + '.png' ('a.jpg' → 'a.jpg.png'), numbered
    if even that is taken ('a.jpg.1.png')."""
    plain = {rel: str(PurePosixPath(rel).with_suffix(".png")) for rel in relpaths}
    claims = Counter(plain.values())
    names = {rel: out for rel, out in plain.items() if claims[out] == 1 or rel == out}
    taken = set(names.values())
    for rel in sorted(set(relpaths) - set(names)):
        out, n = f"{rel}.png", 0
        while out in taken:
            n += 1
            out = f"{rel}.{n}.png"
        names[rel] = out
        taken.add(out)
    return names


_MANIFEST_KEYS = ("input", "output", "status", "reason", "detections")


def _file_row(rel: str, out: str | None, reason: str | None, result: AnonymizedImage | None) -> dict[str, Any]:
    dets = Counter(result.detections.category) if result is not None else Counter()
    row = {"input": rel, "output": out, "status": "quarantined" if out is None else "anonymized",
           "reason": reason, "detections": dict(sorted(dets.items()))}
    return row | ({"dp_epsilon": result.dp_epsilon} if result is not None and result.dp_epsilon is not None else {})


def anonymize_files(items: list[tuple[str, str]], *, in_dir: str, out_dir: str, p: AnonymizeParams,
                    seed: int) -> list[dict[str, Any]]:
    """Anonymize (input relpath, output relpath) pairs; write those that pass; return one row each (no pixels).

    Any size is accepted down to 1×1 pixel (the stage's ingest keeps its own minimum); headers
    announcing more than `MAX_PIXELS` pixels are refused before decoding.
    """
    rows = []
    for rel, out_rel in items:
        try:
            data = read_input(Path(in_dir) / rel, name=rel)
            image = decode_image(data, name=rel, min_side=1, max_pixels=MAX_PIXELS)
        except InvalidInputError as err:
            rows.append(_file_row(rel, None, f"unreadable: {err}", None))
            continue
        result = anonymize_one(image, p=p, rng=image_rng(seed, rel))
        if result.image is not None:
            io.write_png(Path(out_dir) / out_rel, result.image)
        rows.append(_file_row(rel, out_rel if result.image is not None else None, result.quarantine_reason, result))
    return rows


def _one_cv_thread() -> int:
    """One OpenCV thread: parallelism comes from the processes, and a multi-threaded Haar cascade may
    group its candidate boxes in a different order from run to run (boxes off by a pixel)."""
    import cv2

    before = cv2.getNumThreads()
    cv2.setNumThreads(1)
    return int(before)


def _run_chunks(chunks: list[list[tuple[str, str]]], *, jobs: int, **kw: Any) -> list[dict[str, Any]]:
    import cv2

    work = functools.partial(anonymize_files, **kw)
    # A bar only on a terminal: a redirected stderr (CI logs, pipes) gets no carriage-return noise.
    progress = tqdm(total=sum(map(len, chunks)), unit="img", disable=not sys.stderr.isatty(), file=sys.stderr)
    rows: list[dict[str, Any]] = []
    with progress, contextlib.ExitStack() as stack:
        if jobs == 1:
            stack.callback(cv2.setNumThreads, _one_cv_thread())
        pool = stack.enter_context(ProcessPoolExecutor(jobs, initializer=_one_cv_thread)) if jobs > 1 else None
        for part in (pool.map(work, chunks) if pool else map(work, chunks)):
            rows += part
            progress.update(len(part))
    return rows


def _check_dirs(in_dir: str | Path, out_dir: str | Path) -> tuple[Path, Path]:
    src, dst = Path(in_dir).resolve(), Path(out_dir).resolve()
    if not src.is_dir():
        raise InvalidInputError(f"IN_DIR {in_dir}: not a folder")
    if src.is_relative_to(dst):
        raise InvalidInputError(f"OUT_DIR {out_dir}: is IN_DIR or contains it (outputs could overwrite inputs)")
    return src, dst


def anonymize_folder(in_dir: str | Path, out_dir: str | Path, *, p: AnonymizeParams, jobs: int = 1,
                     seed: int | None = None) -> dict[str, Any]:
    """Anonymize every image under `in_dir` into `out_dir` (same tree, .png, metadata-free); quarantined
    files are not written. Writes `anonymize_report.json` and `privtrail-manifest.jsonl` (one row per
    image-named input: input, output, status, reason, detections); returns the report.

    `seed` seeds dp_pixelate's noise; None (the default) draws a secret one from the OS (see `image_rng`).
    """
    src, dst = _check_dirs(in_dir, out_dir)
    found, refused, unlisted = list_inputs(src, dst)
    names = output_names(found)
    items = [(rel, names[rel]) for rel in found]
    n_chunks = max(1, min(len(items), jobs * 4))
    chunks = [items[i::n_chunks] for i in range(n_chunks)]
    seed = secrets.randbits(63) if seed is None else seed
    rows = _run_chunks(chunks, jobs=jobs, in_dir=str(src), out_dir=str(dst), p=p, seed=seed)
    rows = sorted(rows + [_file_row(rel, None, why, None) for rel, why in refused], key=lambda r: r["input"])
    report = {"in_dir": str(src), "out_dir": str(dst), "counts": _counts(rows), "files": rows,
              "unlisted_folders": unlisted,
              "params": {"targets": list(p.targets), "method": p.method, "text_policy": p.text.policy}}
    io.write_json(dst / "anonymize_report.json", report)
    io.write_jsonl(dst / "privtrail-manifest.jsonl", [{k: r[k] for k in _MANIFEST_KEYS} for r in rows])
    return report


def _counts(rows: list[dict[str, Any]]) -> dict[str, Any]:
    detections: Counter[str] = Counter()
    for r in rows:
        detections.update(r["detections"])
    n_q = sum(r["status"] == "quarantined" for r in rows)
    return {"inputs": len(rows), "anonymized": len(rows) - n_q, "quarantined": n_q,
            "detections": dict(sorted(detections.items()))}


if __name__ == "__main__":
    run_stage("anonymize")
