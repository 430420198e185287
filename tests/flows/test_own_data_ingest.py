"""The user's own collection through the ingest flow: any depth, labels from folders / a file / none, a COCO
json whose boxes become ground truth, unsafe paths quarantined unread, large photos downscaled, counts add up.

Synthetic images built at run time (no photos of people committed); the whole DAG on real photos is
tests/flows/test_own_data_integration.py.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from PIL import Image

from tests.flows.conftest import copy_workspace, run

pytestmark = pytest.mark.integration


def _img(path: Path, w: int, h: int, seed: int = 0) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.random.default_rng(seed).integers(0, 255, (h, w, 3), dtype=np.uint8)).save(path)


def _params(ws: Path, **ingest: object) -> None:
    p = yaml.safe_load((ws / "params.yaml").read_text())
    for k in ("n_images", "image_size", "max_faces", "face_size"):
        p["ingest"].pop(k, None)
    p["ingest"].update(ingest)
    p["gates"]["max_quarantine_fraction"] = 0.9  # these tests quarantine on purpose
    p["gates_policy_changes"] = {"max_quarantine_fraction": "these tests quarantine on purpose"}
    (ws / "params.yaml").write_text(yaml.safe_dump(p, sort_keys=False))


def _ingest(ws: Path, env: dict[str, str]) -> tuple[pd.DataFrame, list[dict], dict]:
    proc = run(["python", "-m", "flows.ingest"], ws, env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    manifest = pd.read_parquet(ws / "data/raw/manifest.parquet")
    quarantine = [json.loads(x) for x in (ws / "data/raw/quarantine.jsonl").read_text().splitlines()]
    metrics = json.loads((ws / "reports/metrics/ingest.json").read_text())
    assert metrics["ingest/n_inputs"] == len(manifest) + len(quarantine)
    return manifest, quarantine, metrics


@pytest.fixture(scope="module")
def ws(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return copy_workspace(tmp_path_factory.mktemp("ws"))


def test_flat_and_dated_tree_without_labels(ws: Path, tmp_path: Path, workspace_env: dict[str, str]) -> None:
    root = tmp_path / "camera"
    _img(root / "IMG_0001.jpg", 64, 48)
    _img(root / "2023" / "07" / "IMG_0002.JPG", 50, 40, 1)
    _img(root / "2023" / "08" / "deep" / "x.webp", 40, 40, 2)
    _img(root / "big.png", 3000, 1000, 3)  # over max_side: downscaled, not refused
    (root / "notes.txt").write_text("not an image")
    _params(ws, source="folder", folder=str(root), label_from="none", max_side=1024)
    manifest, quarantine, metrics = _ingest(ws, workspace_env)
    assert sorted(manifest["source"]) == ["2023/07/IMG_0002.JPG", "2023/08/deep/x.webp", "IMG_0001.jpg", "big.png"]
    big = manifest[manifest["source"] == "big.png"].iloc[0]
    assert (big["width"], big["height"]) == (1024, 341) and metrics["ingest/n_resized"] == 1
    assert [q["path"] for q in quarantine] == ["notes.txt"]
    assert metrics["ingest/labelled"] == 0 and json.loads((ws / "data/raw/labels.json").read_text())["names"] == []


@pytest.mark.slow  # two ingest runs (23 s); the label rules are unit-tested in tests/tasks/test_ingest_collection.py
def test_labels_from_folders_and_from_a_csv(ws: Path, tmp_path: Path, workspace_env: dict[str, str]) -> None:
    root = tmp_path / "photos"
    for i, rel in enumerate(["people/a.jpg", "people/cctv/f1.jpg", "street/b.png", "objects/c.bmp", "loose.jpg"]):
        _img(root / rel, 40, 30, i)
    _params(ws, source="folder", folder=str(root), label_from="dir")
    manifest, quarantine, _ = _ingest(ws, workspace_env)
    names = json.loads((ws / "data/raw/labels.json").read_text())["names"]
    assert names == ["objects", "people", "street"]
    by_source = dict(zip(manifest["source"], manifest["label"], strict=True))
    assert by_source["people/cctv/f1.jpg"] == names.index("people") == by_source["people/a.jpg"]
    assert [q["path"] for q in quarantine] == ["loose.jpg"] and "label folder" in quarantine[0]["reason"]
    (tmp_path / "labels.csv").write_text(
        "path,label\npeople/a.jpg,cat\nstreet/b.png,dog\nobjects/c.bmp,dog\nmissing.jpg,dog\n")
    _params(ws, source="folder", folder=str(root), label_from="file", labels=str(tmp_path / "labels.csv"))
    manifest, quarantine, _ = _ingest(ws, workspace_env)
    assert sorted(manifest["source"]) == ["objects/c.bmp", "people/a.jpg", "street/b.png"]
    reasons = {q["path"]: q["reason"] for q in quarantine}
    assert "no label" in reasons["loose.jpg"] and "not found" in reasons["missing.jpg"]


def test_coco_boxes_become_ground_truth_and_unsafe_paths_are_never_read(ws: Path, tmp_path: Path,
                                                                       workspace_env: dict[str, str]) -> None:
    root = tmp_path / "coco"
    _img(root / "cam1" / "a.jpg", 200, 100)
    _img(root / "cam2" / "b.jpg", 4000, 2000, 1)
    _img(root / "cam2" / "c.png", 60, 40, 3)  # no annotation: no sensitive content (a COCO convention)
    secret = tmp_path / "secret.jpg"
    _img(secret, 20, 20, 2)
    os.symlink(secret, root / "cam1" / "link.jpg")
    coco = {"images": [{"id": 1, "file_name": "cam1/a.jpg", "width": 200, "height": 100},
                       {"id": 2, "file_name": "cam2/b.jpg", "width": 4000, "height": 2000},
                       {"id": 3, "file_name": "../secret.jpg", "width": 20, "height": 20},
                       {"id": 4, "file_name": "cam1/link.jpg", "width": 20, "height": 20},
                       {"id": 5, "file_name": "cam2/c.png", "width": 60, "height": 40}],
            "annotations": [{"id": 1, "image_id": 1, "category_id": 1, "bbox": [10, 10, 30, 40], "track_id": 7},
                            {"id": 2, "image_id": 2, "category_id": 2, "bbox": [2000, 1000, 400, 100]},
                            {"id": 3, "image_id": 2, "category_id": 3, "bbox": [0, 0, 50, 50]},
                            {"id": 4, "image_id": 1, "category_id": 4, "bbox": [50, 10, 20, 20]}],
            "categories": [{"id": 1, "name": "head"}, {"id": 2, "name": "license_plate"}, {"id": 3, "name": "dog"},
                           {"id": 4, "name": "text"}]}
    (tmp_path / "coco.json").write_text(json.dumps(coco))
    _params(ws, source="coco", folder=str(root), coco=str(tmp_path / "coco.json"), label_from="dir", max_side=1000)
    manifest, quarantine, metrics = _ingest(ws, workspace_env)
    assert sorted(manifest["source"]) == ["cam1/a.jpg", "cam2/b.jpg", "cam2/c.png"]
    reasons = {q["path"]: q["reason"] for q in quarantine}
    assert set(reasons) == {"../secret.jpg", "cam1/link.jpg"} and "leaves the dataset root" in reasons["cam1/link.jpg"]
    gt = json.loads((ws / "data/raw/annotations.json").read_text())
    cats = {c["id"]: c["name"] for c in gt["categories"]}
    anns = {cats[a["category_id"]]: a for a in gt["annotations"]}
    assert set(anns) == {"face", "plate", "text_pii"}
    assert anns["face"]["bbox"] == [10, 10, 30, 40] and anns["face"]["attributes"]["identity"] == 0
    assert anns["plate"]["bbox"] == [500, 250, 100, 25]  # scaled with the 4000 px image to 1000 px
    assert metrics["ingest/gt_face"] == 1 and metrics["ingest/gt_plate"] == 1 and metrics["ingest/n_person_ids"] == 1
    assert metrics["ingest/coco_n_ignored"] == 1  # the dog


def test_bad_coco_fails_in_one_message_naming_each_entry(ws: Path, tmp_path: Path, workspace_env: dict[str, str]) -> None:
    _img(tmp_path / "c" / "a.jpg", 50, 50)
    coco = {"images": [{"id": 1, "file_name": "a.jpg", "width": 50, "height": 50}, {"id": 2, "file_name": "b.jpg"}],
            "annotations": [{"id": 1, "image_id": 1, "category_id": 9, "bbox": [0, 0, 5, 5]},
                            {"id": 2, "image_id": 1, "category_id": 1, "bbox": [40, 40, 30, 30]}],
            "categories": [{"id": 1, "name": "face"}]}
    (tmp_path / "bad.json").write_text(json.dumps(coco))
    _params(ws, source="coco", folder=str(tmp_path / "c"), coco=str(tmp_path / "bad.json"), label_from="none")
    proc = run(["python", "-m", "flows.ingest"], ws, workspace_env)
    assert proc.returncode == 1
    err = proc.stderr.strip().splitlines()[-1]
    assert err.startswith("privtrail ingest: error: ") and "bad.json" in err
    assert "unknown category id 9" in err and "outside" in err and "width" in err
