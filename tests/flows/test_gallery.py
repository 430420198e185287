"""The docs gallery (bench/gallery.py): anonymized outputs only, faces a tool missed greyed out."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from bench.gallery import GREY, LABEL_HEIGHT, TILE_HEIGHT, Tile, build, guarded, index_html, photo_name, sheet
from tasks.auditors import dlib_hog_detector
from tests.conftest import FakeDetector


def test_guard_greys_out_faces_still_found_except_on_synthetic_replacements() -> None:
    image = np.full((40, 60, 3), 90, np.uint8)
    tile = guarded(Tile("deface", image), FakeDetector([[5, 5, 15, 20]]))
    assert tile.image is not None and (tile.image[5:20, 5:15] == GREY).all() and (tile.image[25:, 20:] == 90).all()
    assert tile.note == "1 face(s) still found: hidden"
    assert guarded(Tile("privtrail replace", image), FakeDetector([[5, 5, 15, 20]])).image is image
    assert guarded(Tile("privtrail blur", image), FakeDetector([])).note == ""
    assert guarded(Tile("privtrail mask", None, "x"), FakeDetector([[0, 0, 1, 1]])).image is None


def test_sheet_lays_out_four_tiles_a_row_with_labels_and_cards_for_unwritten_outputs() -> None:
    image = np.zeros((50, 100, 3), np.uint8)
    out = sheet([Tile(f"t{i}", image) for i in range(4)] + [Tile("quarantined", None)], aspect=2.0)
    assert out.shape == (2 * (TILE_HEIGHT + LABEL_HEIGHT), 4 * 2 * TILE_HEIGHT, 3)
    assert (out[-TILE_HEIGHT:, -TILE_HEIGHT:] == 255).all()  # the padding cell of the second row
    assert photo_name("skimage:astronaut") == "astronaut" and photo_name("data/basketball1.png") == "basketball1"
    assert "&lt;x&gt;" in index_html(["<x>"], ["blur"])


@pytest.mark.slow
def test_gallery_of_the_astronaut_shows_no_clear_face(tmp_path: Path) -> None:
    """Built for real (deface and privtrail's mask): the face region differs from the photo in every tile."""
    from skimage import data

    raw = np.asarray(data.astronaut(), np.uint8)
    (path,) = build(tmp_path, sources=["skimage:astronaut"], methods=["mask"], examples=None,
                    detector=dlib_hog_detector(upsample=1, upscale=2))
    assert (tmp_path / "index.html").is_file() and path == tmp_path / "astronaut.jpg"
    (box,) = dlib_hog_detector(upsample=1, upscale=2)(raw).boxes  # the guard can see this face
    x0, y0, x1, y1 = (box * TILE_HEIGHT) // 512  # in the 260-px tile
    tiles = cv2.cvtColor(cv2.imread(str(path)), cv2.COLOR_BGR2RGB)[LABEL_HEIGHT:]
    face = cv2.resize(raw, (TILE_HEIGHT, TILE_HEIGHT), interpolation=cv2.INTER_AREA)[y0:y1, x0:x1]
    for i in range(2):  # deface, privtrail mask
        shown = tiles[:TILE_HEIGHT, i * TILE_HEIGHT : (i + 1) * TILE_HEIGHT][y0:y1, x0:x1]
        assert np.abs(shown.astype(int) - face.astype(int)).mean() > 10, i
