"""Text readability matching, PNG metadata chunks, LPIPS availability, detection preservation."""

from __future__ import annotations

import struct
import zlib

import numpy as np
import pytest
import torch

from tasks.check_quality.lpips import Lpips, LpipsStatus, build_lpips, lpips_distances
from tasks.check_quality.manifest import metadata_chunks, png_chunks
from tasks.check_quality.text import read_strings, readability, similarity
from tasks.check_quality.utility import UtilityResult, preserved
from tasks.codec import encode_png
from tasks.errors import InvalidInputError
from tasks.types import Detections


def test_similarity_ignores_case_and_punctuation() -> None:
    assert similarity("(555) 012-6212", "555 0126212") == 1.0
    assert similarity("PHARMACY", "pharmacv") == pytest.approx(7 / 8)
    assert similarity("l.tanaka@webmail.eu", "xyz") < 0.2


def test_read_strings_needs_overlap_and_similarity() -> None:
    gt = [[10, 10, 100, 30], [10, 50, 100, 70], [10, 90, 100, 110]]
    texts = ["John Smith", "OPEN", "S HH 7955"]
    ocr_boxes = [[12, 12, 98, 28], [150, 50, 200, 70], [10, 90, 50, 110], [52, 90, 100, 110]]
    ocr_texts = ["john smith", "OPEN", "SHH", "7955"]  # OPEN is read, but elsewhere; the plate in two pieces
    read = read_strings(gt, texts, ocr_boxes, ocr_texts, min_similarity=0.8)
    assert read.tolist() == [True, False, True]
    with pytest.raises(InvalidInputError, match="min_similarity"):
        read_strings(gt, texts, ocr_boxes, ocr_texts, min_similarity=0)


def test_readability_metrics() -> None:
    r = readability([{"text_pii": (2, 0, 2), "text_nonpii": (1, 1, 2)}, {"text_pii": (1, 1, 2)}])
    m = r.as_metrics()
    assert m["check_quality/text_pii_readable_raw"] == 0.75
    assert m["check_quality/text_pii_readable_anon"] == 0.25
    assert m["check_quality/text_nonpii_preserved"] == 1.0
    assert np.isnan(m["check_quality/plate_readable_raw"])


def test_png_metadata_chunks_are_found() -> None:
    clean = encode_png(np.zeros((4, 4, 3), np.uint8))
    assert png_chunks(clean)[0] == "IHDR" and metadata_chunks(clean) == ()
    body = b"Author\x00someone"
    chunk = struct.pack(">I", len(body)) + b"tEXt" + body + struct.pack(">I", zlib.crc32(b"tEXt" + body))
    dirty = clean[:33] + chunk + clean[33:]  # after the 8-byte signature and the 25-byte IHDR chunk
    assert metadata_chunks(dirty) == ("tEXt",)
    with pytest.raises(InvalidInputError, match="not a PNG"):
        png_chunks(b"GIF89a")


def test_lpips_unavailable_is_reported_not_skipped() -> None:
    m = LpipsStatus(False, "no weights").as_metrics()
    assert m == {"check_quality/lpips_available": 0.0}


def test_lpips_with_weights_is_zero_for_identical_images(rng: np.random.Generator) -> None:
    torch.manual_seed(0)
    net = Lpips()
    state = {
        f"features.{tv}.{part}": getattr(net.convs[k], part).detach()
        for k, tv in enumerate((0, 3, 6, 8, 10))
        for part in ("weight", "bias")
    }
    state |= {f"lin{k}.model.1.weight": net.lins[k].weight.detach().abs() for k in range(5)}
    model = build_lpips(state)
    a = rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)
    b = np.clip(a.astype(int) + rng.integers(-60, 60, a.shape), 0, 255).astype(np.uint8)
    d = lpips_distances(model, [a, a], [a.copy(), b])
    assert d[0] == pytest.approx(0.0, abs=1e-7) and d[1] > 0
    with pytest.raises(InvalidInputError, match="lpips_weights"):
        build_lpips({"features.0.weight": torch.zeros(1)})


def test_utility_ratio_and_preserved_detections() -> None:
    assert UtilityResult(0.9, 0.45, 10).ratio == pytest.approx(0.5)
    raw = Detections(np.array([[0, 0, 10, 10], [20, 20, 40, 40]]), np.ones(2, np.float32), ("body", "body"))
    anon = Detections(np.array([[1, 1, 10, 10]]), np.ones(1, np.float32), ("body",))
    assert preserved(raw, anon, match_iou=0.5) == (1, 2)
    assert preserved(raw, Detections.empty(), match_iou=0.5) == (0, 2)
