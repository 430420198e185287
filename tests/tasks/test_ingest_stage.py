"""The ingest stage's derivations without Prefect: boxes fitted to the written image, label and person indices,
the source record, input counts (a video is one input) and the stage metrics."""

from __future__ import annotations

import hashlib

import pandas as pd
import pytest

from tasks.errors import InvalidInputError
from tasks.ingest.stage import (
    fit_boxes,
    images_per_person,
    index_labels,
    input_counts,
    source_record,
    stage_metrics,
)
from tasks.types import Annotation


def test_fit_boxes_checks_the_decoded_size_and_scales() -> None:
    item = {"relpath": "a.jpg", "size": (200, 100), "boxes": [("face", [20, 10, 60, 50], "p1")]}
    assert fit_boxes(item, shape=(100, 200, 3), scale=1.0) == [["face", [20, 10, 60, 50], "p1"]]
    assert fit_boxes(item, shape=(50, 100, 3), scale=0.5) == [["face", [10, 5, 30, 25], "p1"]]
    assert fit_boxes({"relpath": "b.png", "size": None, "boxes": []}, shape=(9, 9, 3), scale=1.0) == []
    with pytest.raises(InvalidInputError, match=r"a.jpg: decoded size 100x200 differs .* 200x100"):
        fit_boxes(item, shape=(200, 100, 3), scale=1.0)  # rotated by EXIF: the boxes would land elsewhere


def _row(i: str, label: str | None, boxes: list, source: str = "x.png", resized: bool = False) -> dict:
    return {"id": i, "path": f"images/{i}.png", "width": 8, "height": 8, "label_name": label, "boxes": boxes,
            "source": source, "resized": resized, "sha256": i * 4}


def test_index_labels_numbers_names_and_people_in_sorted_order() -> None:
    rows = [_row("a", "dog", [("face", [0, 0, 2, 2], "zoe"), ("face", [2, 2, 4, 4], None)], resized=True),
            _row("b", "cat", [("face", [1, 1, 3, 3], "adam")]), _row("c", None, [])]
    names, coco, stats = index_labels(rows)
    assert names == ["cat", "dog"] and [r["label"] for r in rows] == [1, 0, 0]
    assert all("label_name" not in r and "boxes" not in r and "resized" not in r for r in rows)
    assert coco[0] == ("a", "images/a.png", 8, 8, [Annotation("face", (0, 0, 2, 2), 1), Annotation("face", (2, 2, 4, 4))])
    assert coco[1][4] == [Annotation("face", (1, 1, 3, 3), 0)]
    assert stats == {"ingest/n_resized": 1.0, "ingest/n_person_ids": 2}
    assert index_labels([]) == ([], [], {"ingest/n_person_ids": 0})
    assert images_per_person(coco, {"a", "b"}) == 1 and images_per_person(coco, set()) == 0


def test_a_video_is_one_input_and_the_source_record_digests() -> None:
    rows = [_row("v0", None, [], "clip.mp4#frame=0"), _row("v1", None, [], "clip.mp4#frame=30"), _row("a", None, [])]
    assert input_counts(rows, 2) == (4, 2)
    rec = source_record(kind="folder", identity="folder:/data", sha256s=["bb", "aa"])
    assert rec == {"kind": "folder", "identity": "folder:/data",
                   "key": hashlib.sha256(b"folder:/data").hexdigest(), "raw_digest": hashlib.sha256(b"aa\nbb").hexdigest()}


def test_stage_metrics() -> None:
    rows = [_row("a", None, []), _row("b", None, [])]
    coco = [("a", "images/a.png", 8, 8, [Annotation("face", (0, 0, 2, 2)), Annotation("plate", (2, 2, 4, 4))]),
            ("b", "images/b.png", 8, 8, [Annotation("face", (0, 0, 2, 2))])]
    manifest = pd.DataFrame({"split": ["train", "test"]})
    m = stage_metrics(rows, coco, manifest, n_quarantined=1, names=["cat"], gx={"success": True, "n_failed": 0},
                      extra={"ingest/n_videos": 0})
    assert m == {"ingest/n_inputs": 3, "ingest/n_ingested": 2, "ingest/n_quarantined": 1, "ingest/gx_success": 1.0,
                 "ingest/gx_failed_expectations": 0, "ingest/n_annotations": 3, "ingest/labelled": 1.0,
                 "ingest/n_classes": 1, "ingest/n_videos": 0, "ingest/gt_face": 2, "ingest/gt_body": 0,
                 "ingest/gt_plate": 1, "ingest/gt_text_pii": 0, "ingest/gt_text_nonpii": 0, "ingest/n_train": 1,
                 "ingest/n_holdout": 0, "ingest/n_test": 1}


def test_label_mode_and_collection_entries(raw_params: dict) -> None:
    from tasks.ingest.stage import NOT_IN_FOLDER, collection_entries, label_mode
    from tasks.params import parse_params

    raw_params["ingest"] |= {"source": "folder", "folder": "photos", "label_from": "dir"}
    folder = parse_params(raw_params).ingest
    assert label_mode(folder) == "dir"
    entries, rejected = collection_entries(folder, ["cat/a.jpg", "dog/b.png", ".hidden/c.jpg"], labels=None, coco=None)
    assert [(e.relpath, e.label) for e in entries] == [("cat/a.jpg", "cat"), ("dog/b.png", "dog")]
    assert [r for r, _ in rejected] == [".hidden/c.jpg"]
    raw_params["ingest"] |= {"label_from": "file", "labels": "labels.csv"}
    listed = parse_params(raw_params).ingest
    entries, rejected = collection_entries(listed, ["a.jpg"], labels={"a.jpg": "cat", "gone.jpg": "dog"}, coco=None)
    assert [(e.relpath, e.label) for e in entries] == [("a.jpg", "cat")] and ("gone.jpg", NOT_IN_FOLDER) in rejected
    raw_params["ingest"] |= {"source": "csv"}
    assert label_mode(parse_params(raw_params).ingest) == "file"
    raw_params["ingest"] |= {"label_from": "none"}
    assert label_mode(parse_params(raw_params).ingest) == "none"


def test_collection_items_carry_coco_boxes_and_refuse_what_leads_outside() -> None:
    from tasks.ingest.collection import CocoCollection, CocoImage, Entry, GtBox
    from tasks.ingest.stage import collection_items

    coco = CocoCollection(images=(CocoImage("a.jpg", 64, 48, (GtBox("face", (1, 2, 10, 12), "p7"),)),),
                          rejected=(), ignored_categories={}, n_annotations=1, n_dropped=0)
    entries = [Entry("a.jpg", None), Entry("link.jpg", None), Entry("b.jpg", "x")]
    items, refused = collection_items(entries, coco, outside=lambda rel: "symlink" if rel == "link.jpg" else None)
    assert items == [{"relpath": "a.jpg", "label": None, "size": (64, 48), "boxes": [("face", [1, 2, 10, 12], "p7")]},
                     {"relpath": "b.jpg", "label": "x", "size": None, "boxes": []}]
    assert refused == [("link.jpg", "symlink")]
