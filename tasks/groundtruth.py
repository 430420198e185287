"""The ground truth ingest writes (COCO annotations), read back per image for the stages that score against it."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

import numpy as np
from numpy.typing import NDArray


def gt_details(coco: dict[str, Any]) -> dict[str, dict[str, list[tuple[list[int], int | None, str | None]]]]:
    """privtrail image id → category → [(box [x0, y0, x1, y1], identity, text)] from the COCO ground truth."""
    names = {c["id"]: c["name"] for c in coco["categories"]}
    ids = {im["id"]: im.get("privtrail_id", im["file_name"]) for im in coco["images"]}
    out: dict[str, dict[str, list[Any]]] = defaultdict(lambda: defaultdict(list))
    for a in coco["annotations"]:
        x, y, w, h = a["bbox"]
        attrs = a.get("attributes") or {}
        out[ids[a["image_id"]]][names[a["category_id"]]].append(
            ([x, y, x + w, y + h], attrs.get("identity"), attrs.get("text"))
        )
    return {i: dict(c) for i, c in out.items()}


def gt_boxes(coco: dict[str, Any]) -> dict[str, dict[str, NDArray[np.int64]]]:
    """privtrail image id → category name → (N, 4) [x0, y0, x1, y1] ground-truth boxes."""
    return {
        i: {c: np.asarray([a[0] for a in v], np.int64).reshape(-1, 4) for c, v in cats.items()}
        for i, cats in gt_details(coco).items()
    }
