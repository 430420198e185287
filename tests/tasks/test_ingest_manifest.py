"""The manifest table and the COCO ground truth."""

from __future__ import annotations

import hashlib
from typing import Any

import pandas as pd
import pytest

from tasks.errors import InvalidInputError
from tasks.ingest.manifest import MANIFEST_COLUMNS, manifest_frame, sha256_hex, to_coco
from tasks.types import CATEGORY_ID, COCO_CATEGORIES, Annotation


def _row(i: int, **overrides: Any) -> dict[str, Any]:
    row: dict[str, Any] = {
        "id": f"img_{i:06d}",
        "path": f"images/img_{i:06d}.png",
        "sha256": sha256_hex(str(i).encode()),
        "width": 256,
        "height": 256,
        "label": i % 10,
        "split": "train",
        "source": "builtin",
        "status": "ok",
    }
    row.update(overrides)
    return row


def test_sha256_hex_known_value() -> None:
    assert sha256_hex(b"abc") == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    assert sha256_hex(b"x" * 1000) == hashlib.sha256(b"x" * 1000).hexdigest()


def test_manifest_frame_columns_and_dtypes() -> None:
    frame = manifest_frame([_row(0), _row(1, split="holdout"), _row(2, split="", status="quarantined")])
    assert tuple(frame.columns) == MANIFEST_COLUMNS and len(frame) == 3
    assert all(frame[c].dtype == "int64" for c in ("width", "height", "label"))
    strings = [c for c in MANIFEST_COLUMNS if c not in ("width", "height", "label")]
    assert all(pd.api.types.is_string_dtype(frame[c]) for c in strings)
    assert frame["label"].tolist() == [0, 1, 2]
    assert manifest_frame([_row(3, source="cats/003.png")])["source"].tolist() == ["cats/003.png"]


def test_manifest_frame_empty() -> None:
    frame = manifest_frame([])
    assert tuple(frame.columns) == MANIFEST_COLUMNS and len(frame) == 0


def test_manifest_frame_reports_every_problem_at_once() -> None:
    rows = [
        _row(0),
        _row(0, path="other.png"),  # duplicate id
        _row(2, sha256="ABC"),
        _row(3, width=0),
        _row(4, split="val"),
        _row(5, source="", label=-1),
        _row(6, status="maybe"),
        _row(7, split=""),  # empty split is only allowed for quarantined rows
    ]
    with pytest.raises(InvalidInputError) as info:
        manifest_frame(rows)
    message = str(info.value)
    for expected in ("duplicate id: ['img_000000', 'img_000000']", "sha256", "img_000002", "width and height",
                     "img_000003", "split not in", "img_000004", "img_000007", "empty source", "negative label", "img_000005",
                     "status not in", "img_000006"):  # fmt: skip
        assert expected in message


def test_manifest_frame_rejects_missing_and_extra_keys() -> None:
    row = _row(0)
    del row["sha256"]
    with pytest.raises(
        InvalidInputError, match=r"row 0: missing \['sha256'\].*row 1: unknown keys \['extra'\]"
    ):
        manifest_frame([row, {**_row(1), "extra": 1}])


@pytest.mark.parametrize("bad", [{"width": "wide"}, {"label": "cat"}])
def test_manifest_frame_rejects_non_integer_sizes_and_labels(bad: dict[str, Any]) -> None:
    with pytest.raises(InvalidInputError, match="width, height and label must be integers"):
        manifest_frame([_row(0, **bad)])


def test_to_coco_structure() -> None:
    anns = (
        Annotation("placard", (10, 20, 60, 90), text="7"),
        Annotation("face", (100, 100, 140, 140), identity=42),
        Annotation("text_pii", (0, 0, 256, 12), text="Nina Berg"),
    )
    coco = to_coco(
        [("img_000000", "img_000000.png", 256, 256, anns), ("img_000001", "img_000001.png", 256, 128, ())]
    )
    assert coco["categories"] == [dict(c) for c in COCO_CATEGORIES]
    assert coco["images"] == [
        {"id": 1, "file_name": "img_000000.png", "width": 256, "height": 256, "privtrail_id": "img_000000"},
        {"id": 2, "file_name": "img_000001.png", "width": 256, "height": 128, "privtrail_id": "img_000001"},
    ]
    first, face, text = coco["annotations"]
    assert first == {
        "id": 1,
        "image_id": 1,
        "category_id": CATEGORY_ID["placard"],
        "bbox": [10, 20, 50, 70],
        "area": 3500,
        "iscrowd": 0,
        "attributes": {"identity": None, "text": "7"},
    }
    assert face["attributes"] == {"identity": 42, "text": None} and face["category_id"] == 1
    assert text["bbox"] == [0, 0, 256, 12] and text["id"] == 3


@pytest.mark.parametrize(
    ("ann", "match"),
    [
        (Annotation("car", (0, 0, 5, 5)), "unknown category 'car'"),
        (Annotation("face", (0, 0, 300, 5)), "outside"),
        (Annotation("face", (5, 5, 5, 9)), "empty"),
        (Annotation("face", (-1, 0, 5, 9)), "outside"),
    ],
)
def test_to_coco_rejects_bad_annotations(ann: Annotation, match: str) -> None:
    with pytest.raises(InvalidInputError, match=rf"img_000009: .*{match}"):
        to_coco([("img_000009", "x.png", 256, 256, (ann,))])
