"""Which faces and images check_quality measures: face boxes per image, even samples, one face per identity."""

from __future__ import annotations

from typing import Any

import numpy as np

from tasks.check_quality.compare import Sample
from tasks.check_quality.text import TEXT_CATEGORIES


def face_boxes(row: dict[str, Any], gt: dict[str, Any], *, use_gt: bool) -> list[tuple[list[int], int]]:
    """The faces of one image as (box [x0, y0, x1, y1], identity or -1): the ground truth when the data has
    face ground truth, else what the anonymizer detected (its records), so data without boxes is measured."""
    if use_gt:
        return [(list(a[0]), -1 if a[1] is None else identity_number(a[1])) for a in gt.get(row["id"], {}).get("face", [])]
    return [(list(b), -1) for b, c in zip(row["boxes"], row["categories"], strict=True) if c == "face"]


def identity_number(value: Any) -> int:
    """Identities are ints (builtin: the LFW index); a COCO import's string ids are numbered by ingest."""
    return int(value)


def make_sample(row: dict[str, Any], gt: dict[str, Any], image: np.ndarray, *, use_gt: bool, known_ids: bool) -> Sample:
    cats = gt.get(row["id"], {})
    boxes = {c: np.asarray([a[0] for a in v], np.int64).reshape(-1, 4) for c, v in cats.items()}
    faces = face_boxes(row, gt, use_gt=use_gt)
    boxes["face"] = np.asarray([b for b, _ in faces], np.int64).reshape(-1, 4)
    texts = {c: tuple(str(a[2]) for a in v) for c, v in cats.items() if c in TEXT_CATEGORIES}
    idents = tuple(i if known_ids else -1 for _, i in faces)  # -1: the linkage attack instead of the identity ones
    return Sample(row["id"], image, int(row["label"]), boxes, idents, texts)


def even_sample(rows: list[dict[str, Any]], n: int) -> list[dict[str, Any]]:
    """An even, deterministic sample of n rows (all when there are fewer)."""
    return rows if len(rows) <= n else [rows[i] for i in np.linspace(0, len(rows) - 1, n).round().astype(int)]


def one_per_identity(rows: list[dict[str, Any]], gt: dict[str, Any], *, use_gt: bool) -> list[tuple[dict[str, Any], list[int]]]:
    """(row, face box) of every face, keeping the first face of each known identity (unknown ones, -1, all)."""
    seen: set[int] = set()
    out: list[tuple[dict[str, Any], list[int]]] = []
    for row in rows:
        for box, ident in face_boxes(row, gt, use_gt=use_gt):
            if ident >= 0 and ident in seen:
                continue
            seen.add(ident)
            out.append((row, box))
    return out
