"""check_quality's Prefect tasks wire the right images into the pure measures: the face crops the attacks get,
the images and labels the utility model trains and is tested on, LPIPS' status without weights."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

import flows.check_quality_tasks as cqt
from flows import io
from tasks.params import Params


def _workspace(root: Path, params: Params) -> dict[str, np.ndarray]:
    """Raw and anonymized images a, b, c whose pixel values tell them apart (anonymized = raw + 1)."""
    images = {}
    for k, i in enumerate("abc"):
        raw = np.full((40, 60, 3), 10 * (k + 1), np.uint8)
        raw[5:15, 20:30] = 100 + k  # the face of image i
        images[i] = raw
        io.write_png(root / params.paths.raw / f"images/{i}.png", raw)
        io.write_png(root / params.paths.anonymized / f"images/{i}.png", raw + 1)
    manifest = pd.DataFrame({"id": list("abc"), "path": [f"images/{i}.png" for i in "abc"],
                             "split": ["train", "train", "test"], "label": [0, 1, 1]})
    io.write_table(root / params.paths.raw / "manifest.parquet", manifest)
    io.write_table(root / params.paths.anonymized / "manifest.parquet", manifest)
    io.write_json(root / params.paths.raw / "labels.json", {"names": ["x", "y"]})
    return images


ROWS = [{"id": i, "path": f"images/{i}.png", "boxes": [[20, 5, 30, 15]], "categories": ["face"]} for i in "abc"]
GT = {i: {"face": [([20, 5, 30, 15], k, None)]} for k, i in enumerate("abc")}


@pytest.fixture
def images(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, params: Params) -> dict[str, np.ndarray]:
    monkeypatch.setenv("PRIVTRAIL_ROOT", str(tmp_path))
    monkeypatch.setattr(cqt, "_embedder", lambda: "embedder")
    return _workspace(tmp_path, params)


def test_reid_task_attacks_the_ground_truth_face_crops(images: dict[str, np.ndarray], params: Params,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    got: dict[str, Any] = {}
    monkeypatch.setattr(cqt, "reid_metrics", lambda raw, anon, ids, **kw: got.update(raw=raw, anon=anon, ids=ids, **kw)
                        or {"check_quality/reid_x": 1.0})
    assert cqt.reid_task.fn(ROWS, GT, "gallery", params=params) == {"check_quality/reid_x": 1.0}
    assert got["ids"] == [0, 1, 2] and got["clear_gallery"] == "gallery" and got["embed"] == "embedder"
    assert [int(c[0, 0, 0]) for c in got["raw"]] == [100, 101, 102]  # the face box of each raw image
    assert [int(c[0, 0, 0]) for c in got["anon"]] == [101, 102, 103] and got["anon"][0].shape == (10, 10, 3)
    assert got["probes"] == params.check_quality.reid_probes and got["config"].method == cqt.plan.face_method(
        params.anonymize)


def test_linkage_task_links_one_face_per_identity(images: dict[str, np.ndarray], params: Params,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    got: dict[str, Any] = {}
    monkeypatch.setattr(cqt, "linkage_metrics", lambda raw, anon, **kw: got.update(raw=raw, anon=anon, **kw) or {})
    gt = GT | {"c": {"face": [([20, 5, 30, 15], 0, None)]}}  # c shows identity 0 again: left out
    cqt.linkage_task.fn(ROWS, gt, use_gt=True, params=params)
    assert [int(c[0, 0, 0]) for c in got["raw"]] == [100, 101] and got["from_ground_truth"] is True
    assert [int(c[0, 0, 0]) for c in got["anon"]] == [101, 102] and got["seed"] == params.seed


def test_utility_task_trains_on_raw_train_images_and_tests_raw_vs_anonymized(
    images: dict[str, np.ndarray], params: Params, monkeypatch: pytest.MonkeyPatch,
) -> None:
    got: dict[str, Any] = {}

    def measure(train_images: list, y: np.ndarray, raw: list, anon: list, y_test: np.ndarray, **kw: Any) -> tuple:
        got.update(train_images=train_images, y=y.tolist(), raw=raw, anon=anon, y_test=y_test.tolist(), **kw)
        return {"spec": 1}, {"check_quality/utility_ratio": 1.0}

    monkeypatch.setattr(cqt, "measure_utility", measure)
    assert cqt.utility_task.fn(params=params) == ({"spec": 1}, {"check_quality/utility_ratio": 1.0})
    assert [int(x[0, 0, 0]) for x in got["train_images"]] == [10, 20] and got["y"] == [0, 1]
    assert np.array_equal(got["raw"][0], images["c"]) and np.array_equal(got["anon"][0], images["c"] + 1)
    assert got["y_test"] == [1] and got["num_classes"] == 2 and got["seed"] == params.seed


def test_lpips_task_without_weights_reports_the_reason(images: dict[str, np.ndarray], raw_params: dict) -> None:
    from tasks.params import parse_params

    raw_params["check_quality"]["lpips_weights"] = "models/missing.pth"
    out = cqt.lpips_task.fn(ROWS, params=parse_params(raw_params))
    assert out["check_quality/lpips_available"] == 0.0 and out["reason"].endswith("models/missing.pth not found")
