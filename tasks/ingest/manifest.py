"""The ingest manifest (one row per image) and the COCO ground truth of the built-in dataset."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping, Sequence
from typing import Any

import pandas as pd

from tasks.errors import InvalidInputError
from tasks.types import CATEGORY_ID, COCO_CATEGORIES, SPLITS, Annotation

MANIFEST_COLUMNS: tuple[str, ...] = (
    "id",
    "path",
    "sha256",
    "width",
    "height",
    "label",
    "split",
    "source",
    "status",
)
STATUSES: tuple[str, ...] = ("ok", "quarantined")
_INT_COLUMNS = ("width", "height", "label")
_SHA256 = re.compile(r"[0-9a-f]{64}")


def sha256_hex(data: bytes) -> str:
    """Return the lowercase hex SHA-256 digest of `data` (64 characters)."""
    return hashlib.sha256(data).hexdigest()


def source_identity(*, kind: str, location: str | None, seed: int, builtin: Mapping[str, Any]) -> str:
    """What names the people behind a dataset, independent of how it was later anonymized: the privacy
    ledger's key. builtin: its generator's params and seed; a user's source: its resolved location
    (the folder, COCO json or label file), so re-anonymizing, re-labelling or adding images to the same
    collection spends the same budget.
    """
    if kind == "builtin":
        return "builtin " + " ".join(f"{k}={builtin[k]}" for k in sorted(builtin)) + f" seed={seed}"
    if not location:
        raise InvalidInputError(f"source_identity: source {kind!r} needs its location")
    return f"{kind} {location}"


def manifest_frame(rows: Sequence[Mapping[str, Any]]) -> pd.DataFrame:
    """Return the manifest as a DataFrame with exactly `MANIFEST_COLUMNS`, validated.

    width, height and label are int64 (label: the class index; the folder source maps its folder
    names to indices), the other columns strings. `source` is free text naming where the image
    came from ("builtin", a relative path, a stage). Quarantined rows may have an empty split.

    Args:
        rows: one mapping per image with every key of `MANIFEST_COLUMNS` (extra keys are an error).
    Raises:
        InvalidInputError: listing every problem found: missing or extra keys, duplicate ids or
            paths, a bad sha256, a non-positive size, a negative label, an unknown split or status.
    """
    issues = [f"row {i}: {issue}" for i, row in enumerate(rows) for issue in _key_issues(row)]
    if issues:
        raise InvalidInputError("manifest: " + "; ".join(issues))
    frame = pd.DataFrame([dict(row) for row in rows], columns=list(MANIFEST_COLUMNS))
    try:
        frame = frame.astype({c: "int64" if c in _INT_COLUMNS else str for c in MANIFEST_COLUMNS})
    except (TypeError, ValueError) as err:
        raise InvalidInputError(f"manifest: width, height and label must be integers ({err})") from err
    issues = _value_issues(frame)
    if issues:
        raise InvalidInputError("manifest: " + "; ".join(issues))
    return frame


def _key_issues(row: Mapping[str, Any]) -> list[str]:
    missing = [c for c in MANIFEST_COLUMNS if c not in row]
    extra = sorted(set(row) - set(MANIFEST_COLUMNS))
    return ([f"missing {missing}"] if missing else []) + ([f"unknown keys {extra}"] if extra else [])


def _value_issues(frame: pd.DataFrame) -> list[str]:
    """Return every problem in the typed manifest, each naming the offending ids."""
    checks = {
        "duplicate id": frame["id"].duplicated(keep=False),
        "duplicate path": frame["path"].duplicated(keep=False),
        "empty id or path": (frame["id"] == "") | (frame["path"] == ""),
        "sha256 is not 64 lowercase hex digits": ~frame["sha256"].map(lambda s: bool(_SHA256.fullmatch(s))),
        "width and height must be >= 1": (frame["width"] < 1) | (frame["height"] < 1),
        "negative label": frame["label"] < 0,
        f"status not in {STATUSES}": ~frame["status"].isin(STATUSES),
        "empty source": frame["source"] == "",
        f"split not in {SPLITS} (or empty when quarantined)": ~(
            frame["split"].isin(SPLITS) | ((frame["split"] == "") & (frame["status"] == "quarantined"))
        ),
    }
    return [f"{what}: {frame['id'][bad].tolist()[:10]}" for what, bad in checks.items() if bool(bad.any())]


def to_coco(entries: Sequence[tuple[str, str, int, int, Sequence[Annotation]]]) -> dict[str, Any]:
    """Return COCO ground truth for images and their annotations.

    Args:
        entries: (image id, file_name, width, height, annotations) per image; boxes are
            (x0, y0, x1, y1) pixels with x1, y1 exclusive.
    Returns:
        {"images", "annotations", "categories"}: images get int ids 1.. and keep their id as
        `privtrail_id`; each annotation has `bbox` [x, y, w, h], `area`, `iscrowd` 0, `category_id`
        from `tasks.types.CATEGORY_ID` and `attributes` {identity, text}.
    Raises:
        InvalidInputError: an unknown category, or a box empty or outside its image.
    """
    images: list[dict[str, Any]] = []
    annotations: list[dict[str, Any]] = []
    for image_id, (privtrail_id, file_name, width, height, anns) in enumerate(entries, start=1):
        images.append(
            {
                "id": image_id,
                "file_name": file_name,
                "width": width,
                "height": height,
                "privtrail_id": privtrail_id,
            }
        )
        for ann in anns:
            annotations.append(
                _coco_annotation(ann, len(annotations) + 1, image_id, privtrail_id, (width, height))
            )
    return {"images": images, "annotations": annotations, "categories": [dict(c) for c in COCO_CATEGORIES]}


def _coco_annotation(
    ann: Annotation, ann_id: int, image_id: int, name: str, size: tuple[int, int]
) -> dict[str, Any]:
    if ann.category not in CATEGORY_ID:
        raise InvalidInputError(
            f"to_coco: {name}: unknown category {ann.category!r}, expected one of {list(CATEGORY_ID)}"
        )
    x0, y0, x1, y1 = (int(v) for v in ann.box)
    if not (0 <= x0 < x1 <= size[0] and 0 <= y0 < y1 <= size[1]):
        raise InvalidInputError(
            f"to_coco: {name}: box {ann.box} is empty or outside the {size[0]}x{size[1]} image"
        )
    return {
        "id": ann_id,
        "image_id": image_id,
        "category_id": CATEGORY_ID[ann.category],
        "bbox": [x0, y0, x1 - x0, y1 - y0],
        "area": (x1 - x0) * (y1 - y0),
        "iscrowd": 0,
        "attributes": {"identity": ann.identity, "text": ann.text},
    }
