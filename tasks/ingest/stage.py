"""What the ingest stage derives from what it read: ground-truth boxes fitted to the written image, label and
person indices, split groups, the source's record, the input counts of the quarantine gate and the stage metrics.

Rows are manifest rows as the flow's readers return them (`id`, `path`, `sha256`, `width`, `height`, `source`,
and for a collection `label_name`, `boxes` [(category, [x0, y0, x1, y1], person id)], `resized`).
"""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from typing import Any, cast

import pandas as pd

from tasks.errors import InvalidInputError
from tasks.ingest.collection import (
    CocoCollection,
    Entry,
    GtBox,
    LabelFrom,
    list_entries,
    scale_boxes,
    unmatched_labels,
)
from tasks.params import IngestParams
from tasks.types import Annotation, Box

CocoEntry = tuple[str, str, int, int, list[Annotation]]  # (image id, path, width, height, annotations)
FRAMES_PER_BLOCK = 10  # sampled frames of one video that always share a split (10 s at video_fps 1)
FRAME = "#frame="  # a video frame's source: `<relpath>#frame=<n>`
GT_CATEGORIES = ("face", "body", "plate", "text_pii", "text_nonpii")  # counted as `ingest/gt_<category>`
SPLIT_NAMES = ("train", "holdout", "test")


def fit_boxes(item: Mapping[str, Any], *, shape: tuple[int, ...], scale: float) -> list[list[Any]]:
    """The item's COCO boxes on the written image of `shape` (H, W, ...): checked against its decoded size,
    scaled with it by `scale` (written / decoded side).

    Raises:
        InvalidInputError: the decoded size differs from the COCO entry's by more than a pixel.
    """
    if item.get("size") is None:
        return []
    w, h = item["size"]
    got_h, got_w = round(shape[0] / scale), round(shape[1] / scale)
    if abs(got_w - w) > 1 or abs(got_h - h) > 1:
        raise InvalidInputError(
            f"{item['relpath']}: decoded size {got_w}x{got_h} differs from the COCO entry's "
            f"{w}x{h} (EXIF rotation?): its boxes would land in the wrong place"
        )
    boxes = [GtBox(c, cast(Box, tuple(b)), i) for c, b, i in item["boxes"]]
    if scale != 1.0:
        boxes = list(scale_boxes(boxes, sx=shape[1] / w, sy=shape[0] / h, width=shape[1], height=shape[0]))
    return [[b.category, list(b.box), b.identity] for b in boxes]


def index_labels(rows: list[dict[str, Any]]) -> tuple[list[str], list[CocoEntry], dict[str, float]]:
    """Replace each row's `label_name` by its index among the sorted names (0 without labels) and its boxes by
    annotations with person ids numbered in sorted order; pop `resized`. Changes `rows` in place.

    Returns:
        (label names, COCO entries, {"ingest/n_resized" (with rows only), "ingest/n_person_ids"}).
    """
    names = sorted({r["label_name"] for r in rows if r["label_name"] is not None})
    people = sorted({str(b[2]) for r in rows for b in r["boxes"] if b[2] is not None})
    coco: list[CocoEntry] = []
    resized = 0.0
    for r in rows:
        name = r.pop("label_name")
        r["label"] = names.index(name) if name is not None else 0
        anns = [
            Annotation(c, cast(Box, tuple(b)), people.index(str(i)) if i is not None else None)
            for c, b, i in r.pop("boxes")
        ]
        coco.append((r["id"], r["path"], r["width"], r["height"], anns))
        resized += float(r.pop("resized"))
    return names, coco, ({"ingest/n_resized": resized} if rows else {}) | {"ingest/n_person_ids": len(people)}


def split_groups(rows: Sequence[Mapping[str, Any]]) -> list[str]:
    """Each row's split group: its own id for an image; for a video's frames, blocks of `FRAMES_PER_BLOCK`
    consecutive sampled frames of that video (rows are in reading order), so neighbouring, near-identical
    frames are never split between train and holdout."""
    seen: dict[str, int] = {}
    groups = []
    for r in rows:
        video, marker, _ = str(r.get("source", "")).partition(FRAME)
        if not marker:
            groups.append(str(r["id"]))
            continue
        k = seen.get(video, 0)
        seen[video] = k + 1
        groups.append(f"{video}#block{k // FRAMES_PER_BLOCK}")
    return groups


def images_per_person(coco: Sequence[CocoEntry], train_ids: set[str]) -> int:
    """The most training images one known person (builtin identity, COCO person id) appears in: the group
    size the per-image DP guarantee must be stretched to for that person (0 without identities)."""
    seen: Counter[int] = Counter()
    for image_id, _, _, _, anns in coco:
        if image_id in train_ids:
            seen.update({a.identity for a in anns if a.identity is not None})
    return max(seen.values(), default=0)


def source_record(*, kind: str, identity: str, sha256s: Sequence[str]) -> dict[str, str]:
    """The raw source's record: its kind, identity (the privacy ledger's key, `source_identity`) and that
    identity's digest, and the digest of the images read (their sorted sha256s)."""
    return {
        "kind": kind,
        "identity": identity,
        "key": hashlib.sha256(identity.encode()).hexdigest(),
        "raw_digest": hashlib.sha256("\n".join(sorted(sha256s)).encode()).hexdigest(),
    }


def input_counts(rows: Sequence[Mapping[str, Any]], n_quarantined: int) -> tuple[int, int]:
    """(inputs, ingested inputs) counted in files: a video is one input however many frames it gives, so one
    long clip cannot dilute the quarantine gate."""
    sources = [str(r["source"]).partition(FRAME) for r in rows]
    n_ok = sum(not marker for _, marker, _ in sources) + len(
        {video for video, marker, _ in sources if marker}
    )
    return n_ok + n_quarantined, n_ok


def stage_metrics(
    rows: Sequence[Mapping[str, Any]],
    coco: Sequence[CocoEntry],
    manifest: pd.DataFrame,
    *,
    n_quarantined: int,
    names: Sequence[str],
    gx: Mapping[str, Any],
    extra: Mapping[str, float],
) -> dict[str, float]:
    """`ingest/*`: inputs, ingested, quarantined, the GX verdict, annotations per category, labels, per split."""
    n_inputs, _ = input_counts(rows, n_quarantined)
    m: dict[str, float] = {
        "ingest/n_inputs": n_inputs,
        "ingest/n_ingested": len(rows),
        "ingest/n_quarantined": n_quarantined,
        "ingest/gx_success": float(gx["success"]),
        "ingest/gx_failed_expectations": gx["n_failed"],
        "ingest/n_annotations": sum(len(c[4]) for c in coco),
        "ingest/labelled": float(bool(names)),
        "ingest/n_classes": len(names),
        **extra,
    }
    m |= {f"ingest/gt_{cat}": sum(a.category == cat for c in coco for a in c[4]) for cat in GT_CATEGORIES}
    return m | {f"ingest/n_{s}": int((manifest["split"] == s).sum()) for s in SPLIT_NAMES}


NOT_IN_FOLDER = "listed in the label file but not found under ingest.folder"


def label_mode(ingest: IngestParams) -> LabelFrom:
    """Where labels come from: "none" when switched off, the label file for a csv source, else `label_from`."""
    if ingest.label_from == "none":
        return "none"
    return "file" if ingest.source == "csv" else ingest.label_from


def collection_entries(
    ingest: IngestParams,
    relpaths: Sequence[str],
    *,
    labels: Mapping[str, str] | None,
    coco: CocoCollection | None,
) -> tuple[list[Entry], list[tuple[str, str]]]:
    """The collection's accepted entries and its refusals (relpath, reason): unsafe or unlabelled paths, COCO
    images refused, and for a folder source, label-file rows that name no file under it."""
    entries, rejected = list_entries(relpaths, label_from=label_mode(ingest), labels=labels)
    rejected += list(coco.rejected) if coco else []
    if labels is not None and ingest.source == "folder":
        rejected += [(rel, NOT_IN_FOLDER) for rel in unmatched_labels(relpaths, labels)]
    return entries, rejected


def collection_items(
    entries: Sequence[Entry], coco: CocoCollection | None, *, outside: Callable[[str], str | None]
) -> tuple[list[dict[str, Any]], list[tuple[str, str]]]:
    """What the reader needs of each entry (relpath, label, and from the COCO file its size and boxes), and the
    entries refused because `outside` gives a reason (a symlink leading out of the collection)."""
    by_name = {im.file_name: im for im in coco.images} if coco else {}
    items: list[dict[str, Any]] = []
    refused: list[tuple[str, str]] = []
    for e in entries:
        why = outside(e.relpath)
        if why:
            refused.append((e.relpath, why))
            continue
        im = by_name.get(e.relpath)
        items.append(
            {
                "relpath": e.relpath,
                "label": e.label,
                "size": (im.width, im.height) if im else None,
                "boxes": [(b.category, list(b.box), b.identity) for b in im.boxes] if im else [],
            }
        )
    return items, refused
