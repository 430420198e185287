"""A user's collection: accepted paths and labels, label tables, COCO ground truth, box scaling."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tasks.errors import InvalidInputError
from tasks.ingest.collection import (
    DEFAULT_CATEGORY_MAP,
    MAX_ISSUES,
    CocoCollection,
    Entry,
    GtBox,
    list_entries,
    parse_coco,
    parse_label_table,
    scale_boxes,
    unmatched_labels,
)

# ----------------------------------------------------------------------------------- list_entries


def test_flat_folder_and_nested_dated_tree_without_labels() -> None:
    paths = ["IMG.jpg", "b.PNG", "2023/07/IMG_0001.JPG", "2023/07/IMG_0002.jpeg", "2024/01/02/x.webp"]
    accepted, rejected = list_entries(paths, label_from="none")
    assert rejected == []
    assert accepted == [
        Entry("2023/07/IMG_0001.JPG", None),
        Entry("2023/07/IMG_0002.jpeg", None),
        Entry("2024/01/02/x.webp", None),
        Entry("IMG.jpg", None),
        Entry("b.PNG", None),
    ]


def test_label_from_dir_uses_the_first_level_and_rejects_files_at_the_root() -> None:
    paths = ["people/cctv/f1.jpg", "people/f2.png", "cars/2023/07/c.jpg", "loose.jpg", "cars/c2.tif"]
    accepted, rejected = list_entries(paths, label_from="dir")
    assert accepted == [
        Entry("cars/2023/07/c.jpg", "cars"),
        Entry("cars/c2.tif", "cars"),
        Entry("people/cctv/f1.jpg", "people"),
        Entry("people/f2.png", "people"),
    ]
    assert rejected == [
        ("loose.jpg", "label_from: dir needs <label>/<...>: file is not inside a label folder")
    ]


def test_label_from_dir_rejects_a_blank_folder_name() -> None:
    accepted, rejected = list_entries([" /a.jpg", "ok/b.jpg"], label_from="dir")
    assert accepted == [Entry("ok/b.jpg", "ok")]
    assert rejected == [(" /a.jpg", "empty label")]


def test_unsafe_hidden_duplicate_and_unsupported_paths_are_rejected_with_reasons() -> None:
    paths = [
        "ok.jpg",
        "ok.jpg",
        "../escape.jpg",
        "/etc/x.jpg",
        "a/../b.jpg",
        "./c.jpg",
        "a//d.jpg",
        "dir\\e.jpg",
        "",
        ".hidden.jpg",
        ".git/objects/f.png",
        "a/.cache/g.png",
        "notes.txt",
        "noext",
        "anim.gif",
    ]
    accepted, rejected = list_entries(paths, label_from="none")
    assert accepted == [Entry("ok.jpg", None)]
    reasons = dict(rejected)
    assert len(accepted) + len(rejected) == len(paths)
    assert [p for p, _ in rejected] == sorted(paths[1:])  # sorted by path, the second "ok.jpg" included
    assert reasons["ok.jpg"] == "duplicate path"
    for unsafe in ("../escape.jpg", "/etc/x.jpg", "a/../b.jpg", "./c.jpg", "a//d.jpg", "dir\\e.jpg", ""):
        assert reasons[unsafe].startswith("unsafe or non-normalised path"), unsafe
    for hidden in (".hidden.jpg", ".git/objects/f.png", "a/.cache/g.png"):
        assert reasons[hidden] == "hidden file or folder"
    assert reasons["notes.txt"] == "unsupported extension '.txt'"
    assert reasons["noext"] == "unsupported extension '(none)'"
    assert reasons["anim.gif"] == "unsupported extension '.gif'"


def test_label_from_file_with_a_missing_label_an_empty_label_and_unmatched_rows() -> None:
    paths = ["a/1.jpg", "2.png", "3.png", "4.png"]
    labels = {"a/1.jpg": "cat", "2.png": "dog", "4.png": "", "gone.jpg": "cat", "a/x.png": "dog"}
    accepted, rejected = list_entries(paths, label_from="file", labels=labels)
    assert accepted == [Entry("2.png", "dog"), Entry("a/1.jpg", "cat")]
    assert rejected == [("3.png", "no label for this path in the label file"), ("4.png", "empty label")]
    assert unmatched_labels(paths, labels) == ["a/x.png", "gone.jpg"]


def test_label_from_file_needs_labels_and_label_from_must_be_known() -> None:
    with pytest.raises(InvalidInputError, match="needs the label table"):
        list_entries(["a.jpg"], label_from="file")
    with pytest.raises(InvalidInputError, match="label_from 'folder'"):
        list_entries(["a.jpg"], label_from="folder")  # type: ignore[arg-type]


_PART = st.sampled_from(["a", "B", ".h", "..", ".", "", "x y", "d\\e", "2023"])
_NAME = st.sampled_from(["i.jpg", "I.PNG", "n.txt", "noext", ".j.jpg", "k.tiff", ""])
_PATH = st.builds(lambda parts, name: "/".join([*parts, name]), st.lists(_PART, max_size=3), _NAME)


@given(
    paths=st.lists(_PATH, max_size=12),
    label_from=st.sampled_from(["dir", "file", "none"]),
    labelled=st.lists(_PATH, max_size=6),
)
def test_every_input_path_is_accepted_or_rejected_exactly_once(
    paths: list[str], label_from: Any, labelled: list[str]
) -> None:
    labels = {p: "lbl" for p in labelled}
    accepted, rejected = list_entries(paths, label_from=label_from, labels=labels)
    assert sorted([e.relpath for e in accepted] + [p for p, _ in rejected]) == sorted(paths)
    assert [e.relpath for e in accepted] == sorted({e.relpath for e in accepted})  # sorted, no repeats
    assert [p for p, _ in rejected] == sorted(p for p, _ in rejected)
    for entry in accepted:
        parts = entry.relpath.split("/")
        assert not any(p in ("", ".", "..") or p.startswith(".") for p in parts)
        assert "\\" not in entry.relpath
        assert (entry.label is None) == (label_from == "none")


# ------------------------------------------------------------------------------ parse_label_table


def test_csv_label_table_ignores_extra_columns_and_normalises_paths() -> None:
    text = "\ufeffPath, Label ,note\n./a/1.jpg,cat,x\nb\\2.png, dog ,y\n\nc//3.png,cat\n./a/1.jpg,cat,again\n"
    assert parse_label_table(text, name="labels.csv") == {
        "a/1.jpg": "cat",
        "b/2.png": "dog",
        "c/3.png": "cat",
    }


def test_jsonl_label_table_accepts_integer_labels() -> None:
    lines = [
        json.dumps({"path": "./a/1.jpg", "label": "cat", "extra": 1}),
        "",
        json.dumps({"path": "2.png", "label": 7}),
        json.dumps({"path": "3.png", "label": "caf\u2028e"}, ensure_ascii=False),
    ]
    table = parse_label_table("\r\n".join(lines) + "\n", name="labels.JSONL")
    assert table == {"a/1.jpg": "cat", "2.png": "7", "3.png": "caf\u2028e"}


def test_csv_label_table_reports_every_bad_line_at_once() -> None:
    text = "path,label\na.jpg,cat\nb.jpg\n,dog\na.jpg,dog\n./,cat\n"
    with pytest.raises(InvalidInputError) as info:
        parse_label_table(text, name="labels.csv")
    message = str(info.value)
    assert "labels.csv: line 3: missing column 'label'" in message
    assert "labels.csv: line 4: empty path" in message
    assert (
        "labels.csv: line 5: duplicate path 'a.jpg' with a different label ('dog'; line 2 says 'cat')"
        in message
    )
    assert "labels.csv: line 6: empty path" in message
    assert message.count("labels.csv:") == 4


def test_csv_label_table_needs_the_header() -> None:
    with pytest.raises(InvalidInputError, match=r"labels\.csv: line 1: the header must name the columns"):
        parse_label_table("file,class\na.jpg,cat\n", name="labels.csv")
    with pytest.raises(InvalidInputError, match="missing"):
        parse_label_table("", name="labels.csv")


def test_jsonl_label_table_reports_bad_json_and_missing_keys() -> None:
    text = '{"path": "a.jpg", "label": "cat"}\n{"path": "b.jpg"\n["x"]\n{"label": "dog"}\n{"path": 3, "label": "x"}\n'
    with pytest.raises(InvalidInputError) as info:
        parse_label_table(text, name="l.jsonl")
    message = str(info.value)
    assert "l.jsonl: line 2: bad JSON" in message
    assert "l.jsonl: line 3: expected a JSON object, got list" in message
    assert "l.jsonl: line 4: missing key 'path'" in message
    assert "l.jsonl: line 5: path must be a string" in message


def test_label_table_extension_must_be_csv_or_jsonl() -> None:
    with pytest.raises(InvalidInputError, match=r"labels\.json: a label table must be a \.csv or \.jsonl"):
        parse_label_table("{}", name="labels.json")


# ------------------------------------------------------------------------------------------- COCO


def _coco() -> dict[str, Any]:
    return {
        "images": [
            {"id": 1, "file_name": "cam/a.jpg", "width": 640, "height": 480},
            {"id": 2, "file_name": "b.png", "width": 100, "height": 50},
            {"id": 3, "file_name": "empty.jpg", "width": 10, "height": 10},
        ],
        "categories": [
            {"id": 1, "name": "Face"},
            {"id": 2, "name": "head"},
            {"id": 3, "name": "person"},
            {"id": 4, "name": "text"},
            {"id": 5, "name": "dog"},
        ],
        "annotations": [
            {
                "id": 1,
                "image_id": 1,
                "category_id": 1,
                "bbox": [10.5, 20.2, 30.0, 40.6],
                "attributes": {"track_id": 7},
            },
            {"id": 2, "image_id": 1, "category_id": 2, "bbox": [0, 0, 5, 5], "track_id": "t-2"},
            {"id": 3, "image_id": 1, "category_id": 3, "bbox": [100, 100, 50, 200], "person_id": 3},
            {"id": 4, "image_id": 2, "category_id": 4, "bbox": [-0.5, 40.0, 100.8, 10.5]},
            {"id": 5, "image_id": 2, "category_id": 5, "bbox": [1, 1, 2, 2]},
            {"id": 6, "image_id": 1, "category_id": 5, "bbox": [1, 1, 2, 2]},
        ],
    }


def test_valid_coco_maps_categories_boxes_and_identities() -> None:
    coco = parse_coco(_coco(), name="annotations.json", category_map=DEFAULT_CATEGORY_MAP)
    assert [i.file_name for i in coco.images] == ["b.png", "cam/a.jpg", "empty.jpg"]
    b, a, empty = coco.images
    assert (a.width, a.height) == (640, 480)
    assert a.boxes == (
        GtBox("face", (10, 20, 41, 61), "7"),  # floor the start, ceil the end
        GtBox("face", (0, 0, 5, 5), "t-2"),
        GtBox("body", (100, 100, 150, 300), "3"),
    )
    assert b.boxes == (GtBox("text_pii", (0, 40, 100, 50), None),)  # 1-px overshoot clipped
    assert empty.boxes == ()
    assert coco.ignored_categories == {"dog": 2}
    assert coco.rejected == ()
    assert (coco.n_annotations, coco.n_dropped) == (6, 0)
    assert coco.as_metrics()["ingest/coco_n_boxes"] == 4.0


def test_identity_prefers_attributes_in_order_then_top_level_keys() -> None:
    obj = _coco()
    obj["annotations"] = [
        {
            "image_id": 1,
            "category_id": 1,
            "bbox": [0, 0, 1, 1],
            "attributes": {"person_id": 1, "track_id": 2},
        },
        {
            "image_id": 1,
            "category_id": 1,
            "bbox": [0, 0, 1, 1],
            "attributes": {"identity": "x", "track_id": 2},
        },
        {
            "image_id": 1,
            "category_id": 1,
            "bbox": [0, 0, 1, 1],
            "attributes": {"track_id": None},
            "identity": 9,
        },
        {"image_id": 1, "category_id": 1, "bbox": [0, 0, 1, 1], "attributes": "n/a"},
    ]
    coco = parse_coco(obj, name="gt.json", category_map=DEFAULT_CATEGORY_MAP)
    assert [b.identity for b in coco.images[1].boxes] == ["2", "x", "9", None]


def test_every_coco_problem_is_named_in_one_error() -> None:
    obj = _coco()
    obj["images"].append({"id": 2, "file_name": "dup.jpg", "width": 5, "height": 5})  # duplicate id
    obj["images"].append({"id": 9, "file_name": "b.png", "width": 5, "height": 5})  # duplicate file name
    obj["images"].append({"file_name": "c.jpg", "width": 0})  # no id, bad width, no height
    obj["annotations"] += [
        {"id": 12, "image_id": 1, "category_id": 7, "bbox": [0, 0, 1, 1]},
        {"id": 13, "image_id": 3, "category_id": 1, "bbox": [5, 5, 6.5, 1]},  # 1.5 px past the right edge
        {"id": 14, "image_id": 99, "category_id": 1, "bbox": [0, 0, 1, 1]},
        {"id": 15, "image_id": 1, "category_id": 1, "bbox": [0, 0, 0, 1]},
        {"id": 16, "image_id": 1, "bbox": [0, 0, 1]},
        {"id": 17, "image_id": 1, "category_id": 1, "bbox": [0, 0, 1, 1], "attributes": {"track_id": 1.5}},
    ]
    with pytest.raises(InvalidInputError) as info:
        parse_coco(obj, name="annotations.json", category_map=DEFAULT_CATEGORY_MAP)
    lines = str(info.value).split("; ")
    assert lines == [
        "annotations.json: image 2: duplicate image id",
        "annotations.json: image 9: duplicate file_name 'b.png' (also image 2)",
        "annotations.json: images[5]: missing or non-integer 'id'",
        "annotations.json: images[5]: missing or non-positive integer 'width' (got 0)",
        "annotations.json: images[5]: missing or non-positive integer 'height' (got None)",
        "annotations.json: annotation 12 (image 1): unknown category id 7",
        "annotations.json: annotation 13 (image 3): bbox [5, 5, 6.5, 1] outside the 10x10 image",
        "annotations.json: annotation 14 (image 99): unknown image id 99",
        "annotations.json: annotation 15 (image 1): bbox [0, 0, 0, 1] has a width or height <= 0",
        "annotations.json: annotation 16 (image 1): missing or non-integer 'category_id'",
        "annotations.json: annotation 16 (image 1): bbox [0, 0, 1] is not 4 finite numbers [x, y, w, h]",
        "annotations.json: annotation 17 (image 1): attributes.track_id must be an integer or a non-empty string, got 1.5",
    ]


def test_missing_top_level_lists_and_bad_categories() -> None:
    with pytest.raises(
        InvalidInputError, match=r"gt\.json: missing or non-list 'annotations'; gt\.json: missing"
    ):
        parse_coco({"images": []}, name="gt.json", category_map=DEFAULT_CATEGORY_MAP)
    with pytest.raises(InvalidInputError, match=r"gt\.json: expected a JSON object"):
        parse_coco([], name="gt.json", category_map=DEFAULT_CATEGORY_MAP)
    obj = _coco()
    obj["categories"] += [{"id": 1, "name": "again"}, {"id": 8}, {"name": "x"}]
    with pytest.raises(InvalidInputError) as info:
        parse_coco(obj, name="gt.json", category_map=DEFAULT_CATEGORY_MAP)
    assert str(info.value).split("; ") == [
        "gt.json: category 1: duplicate category id",
        "gt.json: category 8: missing or non-string 'name'",
        "gt.json: categories[7]: missing or non-integer 'id'",
    ]


def test_error_lists_at_most_max_issues_and_counts_the_rest() -> None:
    obj = _coco()
    obj["annotations"] = [
        {"id": i, "image_id": 1, "category_id": 99, "bbox": [0, 0, 1, 1]} for i in range(60)
    ]
    with pytest.raises(InvalidInputError) as info:
        parse_coco(obj, name="gt.json", category_map=DEFAULT_CATEGORY_MAP)
    message = str(info.value)
    assert message.count("unknown category id 99") == MAX_ISSUES
    assert message.endswith("; ... and 10 more problem(s)")


def test_unsafe_file_names_are_rejected_and_their_annotations_dropped_unread() -> None:
    obj = _coco()
    obj["images"] += [
        {"id": 10, "file_name": "../x.jpg", "width": 10, "height": 10},
        {"id": 11, "file_name": "/etc/x.jpg", "width": 10, "height": 10},
        {"id": 12, "file_name": "a\\b.jpg", "width": 10, "height": 10},
        {"id": 13, "file_name": ".secret/c.jpg", "width": 10, "height": 10},
        {"id": 14, "file_name": "./cam/ok.jpg", "width": 10, "height": 10},
    ]
    obj["annotations"] += [
        {"id": 20, "image_id": 10, "category_id": 1, "bbox": [0, 0, 2, 2]},
        {"id": 21, "image_id": 11, "category_id": 5, "bbox": [0, 0, 2, 2]},
        {"id": 22, "image_id": 14, "category_id": 1, "bbox": [0, 0, 2, 2]},
    ]
    coco = parse_coco(obj, name="gt.json", category_map=DEFAULT_CATEGORY_MAP)
    assert [name for name, _ in coco.rejected] == ["../x.jpg", ".secret/c.jpg", "/etc/x.jpg", "a\\b.jpg"]
    reasons = dict(coco.rejected)
    assert reasons["../x.jpg"].startswith("unsafe") and reasons["/etc/x.jpg"].startswith("unsafe")
    assert reasons[".secret/c.jpg"] == "hidden file or folder"
    names = [i.file_name for i in coco.images]
    assert names == ["b.png", "cam/a.jpg", "cam/ok.jpg", "empty.jpg"]
    assert coco.images[2].boxes == (GtBox("face", (0, 0, 2, 2)),)
    assert coco.n_dropped == 2
    assert coco.ignored_categories == {"dog": 2}  # the dog on /etc/x.jpg is dropped, not ignored
    n_boxes = sum(len(i.boxes) for i in coco.images)
    assert coco.n_annotations == n_boxes + sum(coco.ignored_categories.values()) + coco.n_dropped == 9


def test_category_map_is_case_insensitive_and_checked() -> None:
    obj = _coco()
    coco = parse_coco(obj, name="gt.json", category_map={"text_nonpii": ["TEXT"], "face": ["face"]})
    assert isinstance(coco, CocoCollection)
    assert coco.ignored_categories == {"dog": 2, "head": 1, "person": 1}
    assert [b.category for b in coco.images[0].boxes] == ["text_nonpii"]
    with pytest.raises(InvalidInputError, match="unknown privtrail category 'placard'"):
        parse_coco(obj, name="gt.json", category_map={"placard": ["dog"]})
    with pytest.raises(InvalidInputError, match="got the string 'text'"):
        parse_coco(obj, name="gt.json", category_map={"text_pii": "text"})
    with pytest.raises(InvalidInputError, match="'Head' is mapped to both 'face' and 'body'"):
        parse_coco(obj, name="gt.json", category_map={"face": ["head"], "body": ["Head"]})


def test_parse_coco_does_not_modify_its_input() -> None:
    obj = _coco()
    before = copy.deepcopy(obj)
    parse_coco(obj, name="gt.json", category_map=DEFAULT_CATEGORY_MAP)
    assert obj == before


# ------------------------------------------------------------------------------------ scale_boxes


def test_scale_boxes_covers_and_stays_inside() -> None:
    boxes = [
        GtBox("face", (10, 20, 41, 61), "7"),
        GtBox("plate", (630, 470, 640, 480)),
        GtBox("body", (3, 3, 4, 4)),
    ]
    scaled = scale_boxes(boxes, sx=0.5, sy=0.5, width=320, height=240)
    assert scaled == (
        GtBox("face", (5, 10, 21, 31), "7"),
        GtBox("plate", (315, 235, 320, 240)),
        GtBox("body", (1, 1, 2, 2)),
    )
    tiny = scale_boxes([GtBox("face", (99, 99, 100, 100))], sx=0.01, sy=0.01, width=1, height=1)
    assert tiny == (GtBox("face", (0, 0, 1, 1)),)
    with pytest.raises(InvalidInputError, match="scales must be finite"):
        scale_boxes(boxes, sx=0.0, sy=1.0, width=1, height=1)
    with pytest.raises(InvalidInputError, match="at least 1x1"):
        scale_boxes(boxes, sx=1.0, sy=1.0, width=0, height=1)


@given(
    corner=st.tuples(st.integers(0, 500), st.integers(0, 500)),
    size=st.tuples(st.integers(1, 300), st.integers(1, 300)),
    scale=st.tuples(st.floats(0.01, 4.0), st.floats(0.01, 4.0)),
    new=st.tuples(st.integers(1, 600), st.integers(1, 600)),
)
def test_scaled_boxes_are_non_empty_inside_and_cover_the_scaled_box(
    corner: tuple[int, int], size: tuple[int, int], scale: tuple[float, float], new: tuple[int, int]
) -> None:
    x0, y0 = corner
    box = GtBox("face", (x0, y0, x0 + size[0], y0 + size[1]))
    ((nx0, ny0, nx1, ny1),) = (
        b.box for b in scale_boxes([box], sx=scale[0], sy=scale[1], width=new[0], height=new[1])
    )
    assert 0 <= nx0 < nx1 <= new[0] and 0 <= ny0 < ny1 <= new[1]
    # the exact scaled box, clipped to the new image, lies inside the result (up to float noise)
    assert nx0 <= max(min(box.box[0] * scale[0], new[0] - 1), 0) + 1e-6
    assert nx1 >= min(box.box[2] * scale[0], new[0]) - 1e-6
    assert ny1 >= min(box.box[3] * scale[1], new[1]) - 1e-6


def test_gt_box_refuses_unknown_categories_and_empty_boxes() -> None:
    with pytest.raises(InvalidInputError, match="unknown category 'dog'"):
        GtBox("dog", (0, 0, 1, 1))
    with pytest.raises(InvalidInputError, match="empty"):
        GtBox("face", (5, 0, 5, 1))
