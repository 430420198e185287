"""ingest: build the embedded default dataset, or read the user's own collection, into data/raw.

Sources (`ingest.source`): builtin; folder (any depth; labels from the first directory level, a CSV/JSONL,
or none); csv (the images a CSV/JSONL lists); coco (a COCO json: its boxes become ground truth). Writes
`images/*.png` (re-encoded from pixels, no metadata, downscaled to `max_side`), `manifest.parquet`,
`annotations.json` (COCO ground truth in privtrail's categories), `labels.json` (the label names) and
`quarantine.jsonl` (every refused input with its reason); runs the Great Expectations manifest suite.
"""

from __future__ import annotations

import hashlib
from pathlib import PurePosixPath
from typing import Any

from prefect import flow, task
from prefect.cache_policies import NO_CACHE

from flows import io, tracking
from flows.common import check_counts, run_stage, write_metrics
from flows.expectations import validate_manifest
from tasks.codec import VIDEO_EXTENSIONS, downscale, frame_step
from tasks.errors import InvalidInputError
from tasks.ingest.builtin import Annotation, generate_builtin
from tasks.ingest.collection import (
    GtBox,
    list_entries,
    parse_coco,
    parse_label_table,
    scale_boxes,
    unmatched_labels,
)
from tasks.ingest.manifest import manifest_frame, source_identity, to_coco
from tasks.ingest.splits import assign_group_splits
from tasks.params import IngestParams

MAX_SIDE = 65_536  # the GX bound on a side without ingest.max_side (the decoder's pixel limit decides the rest)


def _ingest_builtin(p: IngestParams, *, raw: str, seed: int) -> tuple[list[dict[str, Any]], list[Any], list[dict], dict]:
    rows, coco_entries = [], []
    for sample in generate_builtin(n_images=p.n_images, image_size=p.image_size, max_faces=p.max_faces,
                                   face_size=p.face_size, seed=seed):
        rel = f"images/{sample.id}.png"
        sha = io.write_png(f"{raw}/{rel}", sample.image)
        h, w = sample.image.shape[:2]
        rows.append({"id": sample.id, "path": rel, "sha256": sha, "width": w, "height": h,
                     "label": sample.label, "source": "builtin", "status": "ok"})
        coco_entries.append((sample.id, rel, w, h, sample.annotations))
    identities = {a.identity for c in coco_entries for a in c[4] if a.identity is not None}
    return rows, coco_entries, [], {"names": [str(d) for d in range(10)], "ingest/n_identities": len(identities)}


def _read_video(root: str, item: dict[str, Any], raw: str, max_side: int | None, video_fps: float) -> list[dict[str, Any]]:
    """One image per sampled frame of a video (every `frame_step`-th, from frame 0): manifest rows
    `<id>_f<frame>`, source `<relpath>#frame=<n>`; or one quarantine row when the video cannot be read."""
    rel, out = item["relpath"], []
    try:
        file = f"{root}/{rel}"
        for index, frame in io.read_video_frames(file, step=frame_step(io.video_info(file)[0], video_fps)):
            image, scale = downscale(frame, max_side=max_side, name=f"{rel}#frame={index}")
            fid = f"{item['id']}_f{index:06d}"
            sha = io.write_png(f"{raw}/images/{fid}.png", image)
            out.append({"id": fid, "path": f"images/{fid}.png", "sha256": sha, "width": image.shape[1],
                        "height": image.shape[0], "label_name": item["label"], "source": f"{rel}#frame={index}",
                        "status": "ok", "boxes": [], "resized": scale != 1.0})
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
            boxes = _fit_boxes(item, image, scale)
        except InvalidInputError as err:
            out.append({"quarantine": True, "path": rel, "reason": str(err)})
            continue
        sha = io.write_png(f"{raw}/images/{item['id']}.png", image)
        out.append({"id": item["id"], "path": f"images/{item['id']}.png", "sha256": sha, "width": image.shape[1],
                    "height": image.shape[0], "label_name": item["label"], "source": rel, "status": "ok",
                    "boxes": boxes, "resized": scale != 1.0})
    return out


def _fit_boxes(item: dict[str, Any], image: Any, scale: float) -> list[list[Any]]:
    """The item's COCO boxes on the written image: checked against its decoded size, scaled with it."""
    if item.get("size") is None:
        return []
    w, h = item["size"]
    got_h, got_w = round(image.shape[0] / scale), round(image.shape[1] / scale)
    if abs(got_w - w) > 1 or abs(got_h - h) > 1:
        raise InvalidInputError(f"{item['relpath']}: decoded size {got_w}x{got_h} differs from the COCO entry's "
                                f"{w}x{h} (EXIF rotation?): its boxes would land in the wrong place")
    boxes = [GtBox(c, tuple(b), i) for c, b, i in item["boxes"]]  # type: ignore[arg-type]
    if scale != 1.0:
        boxes = list(scale_boxes(boxes, sx=image.shape[1] / w, sy=image.shape[0] / h, width=image.shape[1],
                                 height=image.shape[0]))
    return [[b.category, list(b.box), b.identity] for b in boxes]


def _collection(p: IngestParams) -> tuple[list[dict[str, Any]], list[dict[str, str]], dict[str, float]]:
    """What the user's collection holds: items to read (relpath, label, COCO boxes), refusals with reasons."""
    root = io.path(p.folder or "")
    if not root.is_dir():
        raise InvalidInputError(f"ingest.folder {root}: not a folder")
    labels = parse_label_table(io.path(p.labels).read_text(), name=str(p.labels)) if p.labels else None
    label_from = "none" if p.label_from == "none" else "file" if p.source == "csv" else p.label_from
    coco, stats = None, {}
    if p.source == "coco":
        coco = parse_coco(io.read_json(p.coco or ""), name=str(p.coco), category_map=p.categories)
        relpaths, stats = [im.file_name for im in coco.images], coco.as_metrics()
    elif p.source == "csv":
        relpaths = sorted(labels or {})
    else:
        relpaths = io.list_files(root)
    entries, rejected = list_entries(relpaths, label_from=label_from, labels=labels)
    rejected += list(coco.rejected) if coco else []
    if labels is not None and p.source == "folder":
        rejected += [(rel, "listed in the label file but not found under ingest.folder")
                     for rel in unmatched_labels(relpaths, labels)]
    by_name = {im.file_name: im for im in coco.images} if coco else {}
    items: list[dict[str, Any]] = []
    for e in entries:
        why = io.outside_root(root, e.relpath)
        if why:
            rejected.append((e.relpath, why))
            continue
        im = by_name.get(e.relpath)
        items.append({"relpath": e.relpath, "label": e.label, "size": (im.width, im.height) if im else None,
                      "boxes": [(b.category, list(b.box), b.identity) for b in im.boxes] if im else []})
    quarantine = [{"path": rel, "reason": why} for rel, why in sorted(rejected)]
    return items, quarantine, stats


def _ingest_collection(p: IngestParams, *, raw: str) -> tuple[list[dict[str, Any]], list[Any], list[dict], dict]:
    items, quarantine, stats = _collection(p)
    for k, item in enumerate(items):
        item["id"] = f"img_{k:06d}"
    shard = 64
    futures = [_read_shard.submit(str(io.path(p.folder or "")), items[i : i + shard], raw, p.max_side, p.video_fps)
               for i in range(0, len(items), shard)]
    results = [r for f in futures for r in f.result()]
    quarantine += [{"path": r["path"], "reason": r["reason"]} for r in results if r.get("quarantine")]
    rows = [r for r in results if not r.get("quarantine")]
    names = sorted({r["label_name"] for r in rows if r["label_name"] is not None})
    people = sorted({str(b[2]) for r in rows for b in r["boxes"] if b[2] is not None})
    coco = []
    for r in rows:  # labels are the names' indices in sorted order; no labels: 0 and an empty name list
        name = r.pop("label_name")
        r["label"] = names.index(name) if name is not None else 0
        anns = [Annotation(c, tuple(b), people.index(str(i)) if i is not None else None)  # type: ignore[arg-type]
                for c, b, i in r.pop("boxes")]
        coco.append((r["id"], r["path"], r["width"], r["height"], anns))
        stats["ingest/n_resized"] = stats.get("ingest/n_resized", 0) + float(r.pop("resized"))
    videos = [it for it in items if PurePosixPath(it["relpath"]).suffix.lower() in VIDEO_EXTENSIONS]
    stats |= {"ingest/n_person_ids": len(people), "ingest/n_videos": len(videos),
              "ingest/n_video_frames": sum("#frame=" in r["source"] for r in rows)}
    return rows, coco, quarantine, {"names": names} | stats


def _source(params: Any, manifest: Any) -> dict[str, str]:
    """The raw source's identity (the privacy ledger's key, `source_identity`) and the digest of what it read."""
    p = params.ingest
    where = {"folder": p.folder, "coco": p.coco, "csv": p.labels}.get(p.source)
    identity = source_identity(kind=p.source, location=str(io.path(where).resolve()) if where else None,
                               seed=params.seed, builtin={k: getattr(p, k) for k in ("n_images", "image_size",
                                                                                     "max_faces", "face_size")})
    return {"kind": p.source, "identity": identity, "key": hashlib.sha256(identity.encode()).hexdigest(),
            "raw_digest": hashlib.sha256("\n".join(sorted(manifest["sha256"])).encode()).hexdigest()}


FRAMES_PER_BLOCK = 10  # sampled frames of one video that always share a split (10 s at video_fps 1)


def split_groups(rows: list[dict[str, Any]]) -> list[str]:
    """Each row's split group: its own id for an image; for a video's frames, blocks of `FRAMES_PER_BLOCK`
    consecutive sampled frames of that video (rows are in reading order), so neighbouring, near-identical
    frames are never split between train and holdout."""
    seen: dict[str, int] = {}
    groups = []
    for r in rows:
        video, marker, _ = str(r.get("source", "")).partition("#frame=")
        if not marker:
            groups.append(str(r["id"]))
            continue
        k = seen.get(video, 0)
        seen[video] = k + 1
        groups.append(f"{video}#block{k // FRAMES_PER_BLOCK}")
    return groups


def images_per_person(coco: list[Any], train_ids: set[str]) -> int:
    """The most training images one known person (builtin identity, COCO person id) appears in: the group
    size the per-image DP guarantee must be stretched to for that person (0 without identities)."""
    from collections import Counter

    seen: Counter[int] = Counter()
    for image_id, _, _, _, anns in coco:
        if image_id in train_ids:
            seen.update({a.identity for a in anns if a.identity is not None})
    return max(seen.values(), default=0)


@flow(name="ingest")
def ingest() -> dict[str, float]:
    params = io.load_params()
    p, raw = params.ingest, params.paths.raw
    io.clean_dir(raw)
    with tracking.stage_run("ingest", params=params,
                            inputs=[p.folder] if p.folder else [], outputs=[raw]) as run:
        if p.source == "builtin":
            rows, coco, quarantine, info = _ingest_builtin(p, raw=raw, seed=params.seed)
        else:
            rows, coco, quarantine, info = _ingest_collection(p, raw=raw)
        names = info.pop("names")
        splits = assign_group_splits([r["label"] for r in rows], split_groups(rows), train=p.split.train,
                                     holdout=p.split.holdout, test=p.split.test, seed=params.seed)
        for r, s in zip(rows, splits, strict=True):
            r["split"] = s
        info["ingest/max_train_images_per_person"] = images_per_person(coco, {r["id"] for r in rows if r["split"] == "train"})
        manifest = manifest_frame(rows)
        io.write_table(f"{raw}/manifest.parquet", manifest)
        io.write_json(f"{raw}/annotations.json", to_coco(coco))
        io.write_jsonl(f"{raw}/quarantine.jsonl", quarantine)
        io.write_json(f"{raw}/source.json", _source(params, manifest))
        io.write_json(f"{raw}/labels.json", {"names": names, "label_from": p.label_from if p.source != "builtin"
                                             else "builtin"})
        # counted in files: a video is one input however many frames it gives, so one long clip cannot
        # dilute the quarantine gate
        sources = [str(r["source"]).partition("#frame=") for r in rows]
        n_ok = sum(not marker for _, marker, _ in sources) + len({video for video, marker, _ in sources if marker})
        n_inputs = n_ok + len(quarantine)
        gx = validate_manifest(manifest, suite="ingest", out_dir=f"{params.paths.reports}/gx/ingest",
                               n_rows=len(rows), labels=sorted(set(manifest["label"].tolist())) or [0],
                               max_side=p.max_side or MAX_SIDE)
        metrics = {"ingest/n_inputs": n_inputs, "ingest/n_ingested": len(rows), "ingest/n_quarantined": len(quarantine),
                   "ingest/gx_success": float(gx["success"]), "ingest/gx_failed_expectations": gx["n_failed"],
                   "ingest/n_annotations": sum(len(c[4]) for c in coco), "ingest/labelled": float(bool(names)),
                   "ingest/n_classes": len(names), **info}
        metrics |= {f"ingest/gt_{cat}": sum(a.category == cat for c in coco for a in c[4])
                    for cat in ("face", "body", "plate", "text_pii", "text_nonpii")}
        metrics |= {f"ingest/n_{s}": int((manifest["split"] == s).sum()) for s in ("train", "holdout", "test")}
        metrics = write_metrics("ingest", metrics, metrics_dir=params.paths.metrics)
        run.log_metrics(metrics)
        run.log_dataset(manifest, name="raw_manifest", source=raw, context="ingest")
        run.log_artifact(f"{params.paths.reports}/gx/ingest/results.json", "gx")
        check_counts("ingest", n_inputs=n_inputs, n_ok=n_ok, n_quarantined=len(quarantine),
                     max_fraction=params.gates.max_quarantine_fraction)
        if not gx["success"]:
            failed = [c["expectation"] for c in gx["results"] if not c["success"]]
            raise InvalidInputError(f"ingest: manifest failed Great Expectations checks: {', '.join(failed)}")
    return metrics


if __name__ == "__main__":
    run_stage("ingest")
