"""ingest: build the embedded default dataset, or read the user's own collection, into data/raw.

Sources (`ingest.source`): builtin; folder (any depth; labels from the first directory level, a CSV/JSONL,
or none); csv (the images a CSV/JSONL lists); coco (a COCO json: its boxes become ground truth). Writes
`images/*.png` (re-encoded from pixels, no metadata, downscaled to `max_side`), `manifest.parquet`,
`annotations.json` (COCO ground truth in privtrail's categories), `labels.json` (the label names) and
`quarantine.jsonl` (every refused input with its reason); runs the Great Expectations manifest suite.
"""

from __future__ import annotations

from pathlib import PurePosixPath
from typing import Any

from prefect import flow, task
from prefect.cache_policies import NO_CACHE

from flows import io, tracking
from flows.common import check_counts, run_stage, write_metrics
from flows.expectations import validate_manifest
from tasks import layout
from tasks.codec import VIDEO_EXTENSIONS, downscale, frame_step
from tasks.errors import InvalidInputError
from tasks.ingest.builtin import generate_builtin
from tasks.ingest.collection import parse_coco, parse_label_table
from tasks.ingest.manifest import manifest_frame, source_identity, to_coco
from tasks.ingest.splits import assign_group_splits
from tasks.ingest.stage import (
    FRAME,
    collection_entries,
    collection_items,
    fit_boxes,
    images_per_person,
    index_labels,
    input_counts,
    source_record,
    split_groups,
    stage_metrics,
)
from tasks.params import IngestParams

MAX_SIDE = (
    65_536  # the GX bound on a side without ingest.max_side (the decoder's pixel limit decides the rest)
)


def _ingest_builtin(
    p: IngestParams, *, raw: str, seed: int
) -> tuple[list[dict[str, Any]], list[Any], list[dict[str, Any]], dict[str, Any]]:
    rows, coco_entries = [], []
    for sample in generate_builtin(
        n_images=p.n_images, image_size=p.image_size, max_faces=p.max_faces, face_size=p.face_size, seed=seed
    ):
        rel = f"images/{sample.id}.png"
        sha = io.write_png(f"{raw}/{rel}", sample.image)
        h, w = sample.image.shape[:2]
        rows.append(
            {
                "id": sample.id,
                "path": rel,
                "sha256": sha,
                "width": w,
                "height": h,
                "label": sample.label,
                "source": "builtin",
                "status": "ok",
            }
        )
        coco_entries.append((sample.id, rel, w, h, sample.annotations))
    identities = {a.identity for c in coco_entries for a in c[4] if a.identity is not None}
    return (
        rows,
        coco_entries,
        [],
        {"names": [str(d) for d in range(10)], "ingest/n_identities": len(identities)},
    )


def _read_video(
    root: str, item: dict[str, Any], raw: str, max_side: int | None, video_fps: float
) -> list[dict[str, Any]]:
    """One image per sampled frame of a video (every `frame_step`-th, from frame 0): manifest rows
    `<id>_f<frame>`, source `<relpath>#frame=<n>`; or one quarantine row when the video cannot be read."""
    rel, out = item["relpath"], []
    try:
        file = f"{root}/{rel}"
        for index, frame in io.read_video_frames(file, step=frame_step(io.video_info(file)[0], video_fps)):
            image, scale = downscale(frame, max_side=max_side, name=f"{rel}#frame={index}")
            fid = f"{item['id']}_f{index:06d}"
            sha = io.write_png(f"{raw}/images/{fid}.png", image)
            out.append(
                {
                    "id": fid,
                    "path": f"images/{fid}.png",
                    "sha256": sha,
                    "width": image.shape[1],
                    "height": image.shape[0],
                    "label_name": item["label"],
                    "source": f"{rel}#frame={index}",
                    "status": "ok",
                    "boxes": [],
                    "resized": scale != 1.0,
                }
            )
    except InvalidInputError as err:
        for row in out:  # a video that breaks off is quarantined whole: its frames are not half-ingested
            io.path(f"{raw}/{row['path']}").unlink(missing_ok=True)
        return [{"quarantine": True, "path": rel, "reason": str(err)}]
    return out


@task(retries=1, cache_policy=NO_CACHE)
def _read_shard(root: str, items: list[dict[str, Any]], raw: str, max_side: int | None,
                video_fps: float = 1.0) -> list[dict[str, Any]]:  # fmt: skip
    """Decode, downscale (`max_side`), re-encode and write one shard; manifest rows with their ground-truth
    boxes (numbers), or quarantine rows with the reason (paths, never pixels, leave the task). A video
    becomes one image per frame sampled at `video_fps`."""
    out = []
    for item in items:
        rel = item["relpath"]
        if PurePosixPath(rel).suffix.lower() in VIDEO_EXTENSIONS:
            out += _read_video(root, item, raw, max_side, video_fps)
            continue
        try:
            image = io.read_image(f"{root}/{rel}")
            image, scale = downscale(image, max_side=max_side, name=rel)
            boxes = fit_boxes(item, shape=image.shape, scale=scale)
        except InvalidInputError as err:
            out.append({"quarantine": True, "path": rel, "reason": str(err)})
            continue
        sha = io.write_png(f"{raw}/images/{item['id']}.png", image)
        out.append(
            {
                "id": item["id"],
                "path": f"images/{item['id']}.png",
                "sha256": sha,
                "width": image.shape[1],
                "height": image.shape[0],
                "label_name": item["label"],
                "source": rel,
                "status": "ok",
                "boxes": boxes,
                "resized": scale != 1.0,
            }
        )
    return out


def _collection(p: IngestParams) -> tuple[list[dict[str, Any]], list[dict[str, str]], dict[str, float]]:
    """What the user's collection holds: items to read (relpath, label, COCO boxes), refusals with reasons."""
    root = io.path(p.folder or "")
    if not root.is_dir():
        raise InvalidInputError(f"ingest.folder {root}: not a folder")
    labels = parse_label_table(io.path(p.labels).read_text(), name=str(p.labels)) if p.labels else None
    coco, stats = None, {}
    if p.source == "coco":
        coco = parse_coco(
            io.read_json(p.coco or ""), name=str(p.coco), category_map=dict(p.categories.items())
        )
        relpaths, stats = [im.file_name for im in coco.images], coco.as_metrics()
    elif p.source == "csv":
        relpaths = sorted(labels or {})
    else:
        relpaths = io.list_files(root)
    entries, rejected = collection_entries(p, relpaths, labels=labels, coco=coco)
    items, outside = collection_items(entries, coco, outside=lambda rel: io.outside_root(root, rel))
    quarantine = [{"path": rel, "reason": why} for rel, why in sorted(rejected + outside)]
    return items, quarantine, stats


def _ingest_collection(
    p: IngestParams, *, raw: str
) -> tuple[list[dict[str, Any]], list[Any], list[dict[str, Any]], dict[str, Any]]:
    items, quarantine, stats = _collection(p)
    for k, item in enumerate(items):
        item["id"] = f"img_{k:06d}"
    shard = 64
    futures = [
        _read_shard.submit(str(io.path(p.folder or "")), items[i : i + shard], raw, p.max_side, p.video_fps)
        for i in range(0, len(items), shard)
    ]
    results = [r for f in futures for r in f.result()]
    quarantine += [{"path": r["path"], "reason": r["reason"]} for r in results if r.get("quarantine")]
    rows = [r for r in results if not r.get("quarantine")]
    names, coco, labelled = index_labels(rows)  # labels: the names' indices in sorted order (none: 0)
    videos = [it for it in items if PurePosixPath(it["relpath"]).suffix.lower() in VIDEO_EXTENSIONS]
    stats |= labelled | {
        "ingest/n_videos": len(videos),
        "ingest/n_video_frames": sum(FRAME in r["source"] for r in rows),
    }
    return rows, coco, quarantine, {"names": names} | stats


def _source(params: Any, manifest: Any) -> dict[str, str]:
    """The raw source's identity (the privacy ledger's key, `source_identity`) and the digest of what it read."""
    p = params.ingest
    where = {"folder": p.folder, "coco": p.coco, "csv": p.labels}.get(p.source)
    identity = source_identity(
        kind=p.source,
        location=str(io.path(where).resolve()) if where else None,
        seed=params.seed,
        builtin={k: getattr(p, k) for k in ("n_images", "image_size", "max_faces", "face_size")},
    )
    return source_record(kind=p.source, identity=identity, sha256s=list(manifest["sha256"]))


@flow(name="ingest")
def ingest() -> dict[str, float]:
    params = io.load_params()
    p, raw = params.ingest, params.paths.raw
    io.clean_dir(raw)
    with tracking.stage_run(
        "ingest", params=params, inputs=[p.folder] if p.folder else [], outputs=[raw]
    ) as run:
        if p.source == "builtin":
            rows, coco, quarantine, info = _ingest_builtin(p, raw=raw, seed=params.seed)
        else:
            rows, coco, quarantine, info = _ingest_collection(p, raw=raw)
        names = info.pop("names")
        splits = assign_group_splits(
            [r["label"] for r in rows],
            split_groups(rows),
            train=p.split.train,
            holdout=p.split.holdout,
            test=p.split.test,
            seed=params.seed,
        )
        for r, s in zip(rows, splits, strict=True):
            r["split"] = s
        info["ingest/max_train_images_per_person"] = images_per_person(
            coco, {r["id"] for r in rows if r["split"] == "train"}
        )
        manifest = manifest_frame(rows)
        io.write_table(f"{raw}/{layout.MANIFEST}", manifest)
        io.write_json(f"{raw}/{layout.ANNOTATIONS}", to_coco(coco))
        io.write_jsonl(f"{raw}/{layout.QUARANTINE}", quarantine)
        io.write_json(f"{raw}/{layout.SOURCE}", _source(params, manifest))
        io.write_json(
            f"{raw}/{layout.LABELS}",
            {"names": names, "label_from": p.label_from if p.source != "builtin" else "builtin"},
        )
        n_inputs, n_ok = input_counts(rows, len(quarantine))
        gx = validate_manifest(
            manifest,
            suite="ingest",
            out_dir=f"{params.paths.reports}/gx/ingest",
            n_rows=len(rows),
            labels=sorted(set(manifest["label"].tolist())) or [0],
            max_side=p.max_side or MAX_SIDE,
        )
        metrics = stage_metrics(
            rows, coco, manifest, n_quarantined=len(quarantine), names=names, gx=gx, extra=info
        )
        metrics = write_metrics("ingest", metrics, metrics_dir=params.paths.metrics)
        run.log_metrics(metrics)
        run.log_dataset(manifest, name="raw_manifest", source=raw, context="ingest")
        run.log_artifact(f"{params.paths.reports}/gx/ingest/results.json", "gx")
        check_counts(
            "ingest",
            n_inputs=n_inputs,
            n_ok=n_ok,
            n_quarantined=len(quarantine),
            max_fraction=params.gates.max_quarantine_fraction,
        )
        if not gx["success"]:
            failed = [c["expectation"] for c in gx["results"] if not c["success"]]
            raise InvalidInputError(f"ingest: manifest failed Great Expectations checks: {', '.join(failed)}")
    return metrics


if __name__ == "__main__":
    run_stage("ingest")
