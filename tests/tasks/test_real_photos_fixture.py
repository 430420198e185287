"""The real-photo fixture (tests/real_photos.py) and its hand-drawn boxes (tests/data/real_photos_gt.json).

The gt checks always run; those that need the photos fetch Debian's opencv-doc once into
`$PRIVTRAIL_DATA_CACHE/opencv-doc` (default ~/.cache/privtrail/opencv-doc) and skip, with the reason,
where it cannot be had. Fetching is exercised offline with fake `apt-get` / `dpkg` scripts.
"""

from __future__ import annotations

import json
import os
from collections import Counter
from pathlib import Path

import cv2
import pytest

from tests.real_photos import (
    CATEGORIES,
    ENV_VAR,
    GT_PATH,
    LABELS,
    RealPhotosUnavailable,
    build_coco,
    build_labelled_folder,
    default_cache,
    fetch_opencv_doc,
    load_gt,
    load_image,
)


@pytest.fixture(scope="session")
def examples() -> Path:
    cache = default_cache()
    try:
        return fetch_opencv_doc(cache)
    except RealPhotosUnavailable as err:
        pytest.skip(str(err))


# --- the gt json: pure ------------------------------------------------------------------------------


def test_gt_boxes_lie_inside_their_images_and_use_known_categories() -> None:
    gt = load_gt()
    assert gt["licence"].startswith("Apache-2.0 AND BSD-3-Clause")
    files = [entry["file"] for entry in gt["images"]]
    assert len(files) == len(set(files)) >= 8
    for entry in gt["images"]:
        assert entry["boxes"], entry["file"]
        for box in entry["boxes"]:
            x0, y0, x1, y1 = box["bbox"]
            assert all(isinstance(v, int | float) for v in box["bbox"]), box
            assert 0 <= x0 < x1 <= entry["width"] and 0 <= y0 < y1 <= entry["height"], (entry["file"], box)
            assert box["category"] in CATEGORIES, box
            assert box["note"], box


def test_gt_counts_faces_plates_text_and_people() -> None:
    counts = Counter(box["category"] for entry in load_gt()["images"] for box in entry["boxes"])
    assert counts["face"] >= 6
    assert counts["license_plate"] >= 1 and counts["text"] >= 5 and counts["person"] >= 10
    faces = {e["file"] for e in load_gt()["images"] if any(b["category"] == "face" for b in e["boxes"])}
    assert {"skimage:astronaut", "skimage:camera", "data/messi5.jpg", "text/scenetext01.jpg"} <= faces


def test_gt_text_lines_carry_their_string_and_whether_they_are_personal() -> None:
    lines = [b for entry in load_gt()["images"] for b in entry["boxes"] if b["category"] == "text"]
    assert len(lines) >= 20
    for b in lines:
        assert isinstance(b["text"], str) and b["text"].strip() and isinstance(b["personal"], bool), b
    assert sum(b["personal"] for b in lines) >= 3 and sum(not b["personal"] for b in lines) >= 15


def test_gt_json_holds_numbers_not_pixels() -> None:
    text = GT_PATH.read_text()
    assert len(text) < 30_000  # a few boxes; an embedded image would be far larger
    assert "base64" not in text and max(len(line) for line in text.splitlines()) < 1_000


# --- fetching, offline, with fake tools --------------------------------------------------------------


def _fake_tools(bin_dir: Path, *, apt_get: str, dpkg: str = "exit 0") -> None:
    bin_dir.mkdir()
    for name, body in {"apt-get": apt_get, "dpkg": dpkg}.items():
        (bin_dir / name).write_text(f"#!/bin/sh\nPATH=/usr/bin:/bin\n{body}\n")  # any caller PATH
        (bin_dir / name).chmod(0o755)


def test_fetch_prefers_the_env_var_then_the_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path / "no-tools"))  # nothing may be run
    given = tmp_path / "given"
    given.mkdir()
    monkeypatch.setenv(ENV_VAR, str(given))
    assert fetch_opencv_doc(tmp_path / "cache") == given
    monkeypatch.setenv(ENV_VAR, str(tmp_path / "missing"))  # set but absent: ignored
    cached = tmp_path / "cache/usr/share/doc/opencv-doc/examples"
    cached.mkdir(parents=True)
    assert fetch_opencv_doc(tmp_path / "cache") == cached


def test_fetch_without_apt_get_raises_a_reason(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(ENV_VAR, raising=False)
    monkeypatch.setenv("PATH", str(tmp_path / "no-tools"))
    with pytest.raises(RealPhotosUnavailable, match="no apt-get"):
        fetch_opencv_doc(tmp_path / "cache")


def test_fetch_reports_the_last_line_of_a_failed_download(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _fake_tools(tmp_path / "bin", apt_get="echo 'E: Failed to fetch opencv-doc' >&2; exit 100")
    monkeypatch.delenv(ENV_VAR, raising=False)
    monkeypatch.setenv("PATH", f"{tmp_path / 'bin'}{os.pathsep}{os.environ['PATH']}")  # fakes first
    with pytest.raises(RealPhotosUnavailable, match="E: Failed to fetch opencv-doc") as err:
        fetch_opencv_doc(tmp_path / "cache")
    assert "\n" not in str(err.value)
    assert not (tmp_path / "cache/usr").exists()


def test_fetch_unpacks_keeps_the_examples_and_drops_the_deb(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    doc = '"$3/usr/share/doc/opencv-doc"'
    _fake_tools(
        tmp_path / "bin",
        apt_get="echo deb > opencv-doc_4.6.0_all.deb",
        dpkg=f"mkdir -p {doc}/examples/data {doc}/opencv4 && echo c > {doc}/copyright",
    )
    monkeypatch.delenv(ENV_VAR, raising=False)
    monkeypatch.setenv("PATH", f"{tmp_path / 'bin'}{os.pathsep}{os.environ['PATH']}")  # fakes first
    cache = tmp_path / "cache"
    examples = fetch_opencv_doc(cache)
    assert examples == cache / "usr/share/doc/opencv-doc/examples" and (examples / "data").is_dir()
    assert (examples.parent / "copyright").is_file() and not (examples.parent / "opencv4").exists()
    assert sorted(p.name for p in cache.iterdir()) == ["usr"]  # no .deb, no temp folder left


# --- with the real photos ----------------------------------------------------------------------------


def test_gt_sizes_match_the_real_images(examples: Path) -> None:
    for entry in load_gt()["images"]:
        image = load_image(examples, entry["file"])
        assert image.shape[:2] == (entry["height"], entry["width"]), entry["file"]


def test_small_labelled_folder_has_three_labels_nested_frames_and_original_bytes(
    examples: Path, tmp_path: Path
) -> None:
    out = build_labelled_folder(examples, tmp_path / "a", max_images=12)
    assert tuple(out) == LABELS and [len(v) for v in out.values()] == [4, 4, 4]
    on_disk = sorted(p.relative_to(tmp_path / "a").as_posix() for p in (tmp_path / "a").rglob("*.*"))
    assert on_disk == sorted(p for paths in out.values() for p in paths)
    assert any(p.startswith("people/cctv/frame_") for p in out["people"])  # a nested folder
    for label, paths in out.items():
        for rel in paths:
            assert rel.split("/")[0] == label
            assert cv2.imread(str(tmp_path / "a" / rel)) is not None, rel
    messi = tmp_path / "a/people/messi5.jpg"
    assert messi.read_bytes() == (examples / "data/messi5.jpg").read_bytes()  # copied, not re-encoded
    again = build_labelled_folder(examples, tmp_path / "b", max_images=12)
    assert again == out
    assert all(
        (tmp_path / "a" / p).read_bytes() == (tmp_path / "b" / p).read_bytes()
        for paths in out.values()
        for p in paths
    )


def test_default_labelled_folder_has_about_fifty_images(examples: Path, tmp_path: Path) -> None:
    out = build_labelled_folder(examples, tmp_path)
    sizes = {label: len(paths) for label, paths in out.items()}
    assert min(sizes.values()) >= 12 and 45 <= sum(sizes.values()) <= 60, sizes
    assert sum(p.startswith("people/cctv/") for p in out["people"]) == 12


def test_coco_export_matches_the_gt(examples: Path, tmp_path: Path) -> None:
    coco = json.loads(build_coco(examples, tmp_path).read_text())
    gt = load_gt()
    assert [c["name"] for c in coco["categories"]] == list(CATEGORIES)
    assert len(coco["images"]) == len(gt["images"])
    assert len(coco["annotations"]) == sum(len(e["boxes"]) for e in gt["images"])
    sizes = {im["id"]: (im["width"], im["height"]) for im in coco["images"]}
    for im in coco["images"]:
        assert cv2.imread(str(tmp_path / im["file_name"])).shape[:2] == (im["height"], im["width"])
    for ann in coco["annotations"]:
        x, y, w, h = ann["bbox"]
        width, height = sizes[ann["image_id"]]
        assert w > 0 and h > 0 and x + w <= width and y + h <= height
        assert ann["area"] == w * h and ann["iscrowd"] == 0
    names = {c["id"]: c["name"] for c in coco["categories"]}
    boxes = [(i, b["category"], b["bbox"]) for i, e in enumerate(gt["images"], 1) for b in e["boxes"]]
    for (image_id, category, (x0, y0, x1, y1)), ann in zip(boxes, coco["annotations"], strict=True):
        assert (ann["image_id"], names[ann["category_id"]]) == (image_id, category)
        assert ann["bbox"] == [x0, y0, x1 - x0, y1 - y0]  # [x0, y0, x1, y1] -> COCO [x, y, w, h]
