"""Flow-side helpers that need no Prefect server: params loading, digests, COCO → boxes, counts."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from flows import io
from flows.common import check_counts
from flows.tracking import flatten
from tasks.errors import InvalidInputError, QualityGateError
from tasks.groundtruth import gt_boxes


def test_load_params_typo_is_named(tmp_path: Path) -> None:
    (tmp_path / "params.yaml").write_text("train: {epochz: 3}\n")
    with pytest.raises(InvalidInputError, match=r"^params.yaml: train.epochz: Extra inputs are not permitted$"):
        io.load_params(tmp_path / "params.yaml")


def test_load_params_not_a_mapping(tmp_path: Path) -> None:
    (tmp_path / "params.yaml").write_text("- 1\n")
    with pytest.raises(InvalidInputError, match="mapping"):
        io.load_params(tmp_path / "params.yaml")


def test_digest_changes_with_content(tmp_path: Path) -> None:
    d = tmp_path / "d"
    d.mkdir()
    (d / "a.txt").write_text("1")
    first = io.digest([str(d)])
    assert io.digest([str(d)]) == first
    (d / "a.txt").write_text("2")
    assert io.digest([str(d)]) != first


def test_png_roundtrip_strips_nothing_but_metadata(tmp_path: Path, rng: np.random.Generator) -> None:
    img = rng.integers(0, 256, (20, 30, 3), dtype=np.uint8)
    io.write_png(tmp_path / "x.png", img)
    assert np.array_equal(io.read_image(tmp_path / "x.png"), img)
    with pytest.raises(InvalidInputError, match="y.png"):
        io.read_image(tmp_path / "y.png")


def test_gt_boxes_from_coco() -> None:
    coco = {"categories": [{"id": 1, "name": "face"}, {"id": 3, "name": "plate"}],
            "images": [{"id": 0, "file_name": "images/img_0.png", "privtrail_id": "img_0"}],
            "annotations": [{"image_id": 0, "category_id": 1, "bbox": [10, 20, 5, 6]},
                            {"image_id": 0, "category_id": 3, "bbox": [0, 0, 30, 10]}]}
    boxes = gt_boxes(coco)
    assert boxes["img_0"]["face"].tolist() == [[10, 20, 15, 26]]
    assert boxes["img_0"]["plate"].tolist() == [[0, 0, 30, 10]]


def test_counts_must_add_up_and_respect_the_gate() -> None:
    check_counts("s", n_inputs=10, n_ok=9, n_quarantined=1, max_fraction=0.1)
    with pytest.raises(QualityGateError, match="!= 10 inputs"):
        check_counts("s", n_inputs=10, n_ok=8, n_quarantined=1, max_fraction=0.5)
    with pytest.raises(QualityGateError, match="above the gate"):
        check_counts("s", n_inputs=10, n_ok=7, n_quarantined=3, max_fraction=0.1)


def test_flatten() -> None:
    assert flatten({"a": {"b": 1, "c": {"d": 2}}, "e": 3}) == {"a.b": 1, "a.c.d": 2, "e": 3}
