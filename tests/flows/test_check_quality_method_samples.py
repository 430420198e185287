"""The method-samples figure holds no raw pixels: a photo whose plate the anonymizer redacts goes through the
anonymize stage's own shard task (fake detectors with known boxes), then through check_quality's figure task;
no crop of any figure (the arrays handed to matplotlib, the saved PNG) holds the raw plate's pixels."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest

from flows import anonymize as anonymize_flow
from flows import check_quality_tasks as cqt
from flows import io
from tasks.anonymize.engine import obfuscation_options
from tasks.params import Params, parse_params
from tasks.types import Detections
from tests.tasks._anonymize_scenes import paste_face, scene_photo

FACE = [100, 96, 140, 136]  # the context crop spans three times the face: x 60..180, y 56..176
PLATE = [62, 146, 172, 172]  # inside that crop, beside the face
WEAK = ("blur", "pixelate")


def _scene() -> np.ndarray:
    """A package photo with a real LFW face and a plate: a rendered string on per-pixel random colours, so
    every raw plate pixel has a colour no other pixel in the scene (or a redaction of it) is likely to have."""
    rng = np.random.default_rng(7)
    img = scene_photo("coffee")[100:356, 150:406].copy()
    paste_face(img, rng, side=FACE[2] - FACE[0], x=FACE[0], y=FACE[1])
    x0, y0, x1, y1 = PLATE
    img[y0:y1, x0:x1] = rng.integers(0, 256, (y1 - y0, x1 - x0, 3), dtype=np.uint8)
    cv2.putText(img, "B-XY 4821", (x0 + 4, y1 - 6), cv2.FONT_HERSHEY_SIMPLEX, 0.6, (0, 0, 0), 2, cv2.LINE_AA)
    return np.ascontiguousarray(img)


class StillRaw:
    """A fake detector with a known box: it finds the box while its pixels are still the raw ones (so the
    stage's verification re-detection passes once the box is redacted)."""

    def __init__(self, raw: np.ndarray, box: list[int], category: str) -> None:
        self.raw, self.box, self.category = raw, box, category

    def __call__(self, image: np.ndarray) -> Detections:
        x0, y0, x1, y1 = self.box
        hit = image.shape == self.raw.shape and np.array_equal(image[y0:y1, x0:x1], self.raw[y0:y1, x0:x1])
        boxes = np.asarray([self.box] if hit else [], np.int64).reshape(-1, 4)
        return Detections(boxes, np.ones(len(boxes), np.float32), (self.category,) * len(boxes))


def _params(source: str) -> Params:
    ingest = {"source": "folder", "folder": "photos"} if source == "folder" else {}
    return parse_params({"ingest": ingest, "anonymize": {"verify": "whole"},
                         "check_quality": {"compare_methods": ["blur", "pixelate", "mask", "dp_pixelate", "inpaint",
                                                               "inpaint_soft", "replace"]}})


def _table(methods: tuple[str, ...]) -> list[dict[str, Any]]:
    """A method table in which every method reads as measured below the attack gates."""
    return [{"method": m, "reid_naive_top1": 0.01, "reid_adaptive_top1": 0.01, "reid_trained_accuracy": 0.01,
             "reid_chance": 0.01, "reid_worst_rate": 0.01, "n_probes": 2000} for m in ("none", *methods)]


@pytest.fixture
def workspace(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[np.ndarray, list[dict[str, Any]]]:
    """A raw photo in data/raw and what the anonymize stage's shard task wrote for it (file + record)."""
    monkeypatch.setenv("PRIVTRAIL_ROOT", str(tmp_path))
    raw = _scene()
    io.write_png("data/raw/images/street.png", raw)
    p = _params("folder").anonymize
    detectors = {"face": StillRaw(raw, FACE, "face"), "plate": StillRaw(raw, PLATE, "plate")}
    monkeypatch.setattr(anonymize_flow, "_engine", lambda *_a, **_k: (detectors, obfuscation_options(p)))
    row = {"id": "street", "path": "images/street.png", "split": "test", "label": 0}
    records = anonymize_flow.anonymize_shard.fn([row], raw=str(io.path("data/raw")),
                                                out=str(io.path("data/anonymized")), p=p, seed=1)
    assert records[0]["status"] == "anonymized" and sorted(records[0]["categories"]) == ["face", "plate"]
    written = io.read_image("data/anonymized/images/street.png")
    x0, y0, x1, y1 = PLATE
    assert not np.array_equal(written[y0:y1, x0:x1], raw[y0:y1, x0:x1])  # the anonymizer redacted the plate
    return raw, records


def _figures(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, list[np.ndarray]]]:
    """Record every figure the flow saves: (file, the image arrays its axes show)."""
    saved: list[tuple[str, list[np.ndarray]]] = []
    original = io.save_figure

    def record(file: str | Path, fig: Any) -> None:
        saved.append((str(file), [np.asarray(im.get_array()) for ax in fig.axes for im in ax.get_images()]))
        original(file, fig)

    monkeypatch.setattr(io, "save_figure", record)
    return saved


def _plate_colour_share(pixels: np.ndarray, raw: np.ndarray) -> float:
    """Share of the raw plate's distinct colours that occur anywhere in `pixels` (a raw crop, resized by
    nearest neighbour or drawn by matplotlib, keeps them: ~1; a redacted plate: ~0)."""
    x0, y0, x1, y1 = PLATE
    plate = {tuple(c) for c in raw[y0:y1, x0:x1].reshape(-1, 3)}
    shown = {tuple(c) for c in np.asarray(pixels)[..., :3].reshape(-1, 3)}
    return len(plate & shown) / len(plate)


@pytest.mark.parametrize("source", ["folder", "builtin"])
def test_no_figure_holds_the_raw_plate(workspace: tuple[np.ndarray, list[dict[str, Any]]],
                                       monkeypatch: pytest.MonkeyPatch, source: str) -> None:
    raw, records = workspace
    params = _params(source)
    saved = _figures(monkeypatch)
    cqt.method_samples_task.fn(records, _table(params.check_quality.compare_methods), params=params)
    arrays = [a for _, figure in saved for a in figure]
    assert [Path(f).name for f, _ in saved] == ["method_samples.png"] and arrays
    assert _plate_colour_share(raw, raw) == 1.0  # the measure sees a raw plate
    for a in arrays:
        assert a.dtype == np.uint8 and _plate_colour_share(a, raw) < 0.02
    png = cv2.imread(str(io.path(saved[0][0])))[..., ::-1]  # the saved figure, as matplotlib drew it (RGB)
    assert _plate_colour_share(png, raw) < 0.02
    described = io.read_json("reports/plots/check_quality/method_samples.json")
    shown = [r["method"] for r in described["shown"]]
    assert shown[0] == "inpaint_soft" and described["shown"][0]["source"] == "written"
    if source == "folder":  # real data: the applied method alone, from the written file; the rest left out
        assert shown == ["inpaint_soft"]
        assert {o["method"] for o in described["omitted"]} == set(params.check_quality.compare_methods) - {"inpaint_soft"}
        assert all(m in described["note"] for m in WEAK)
    else:  # the builtin benchmark: every method, weak ones on its package faces only
        assert set(shown) == set(params.check_quality.compare_methods) and not described["omitted"]


def test_dp_pixelate_noise_is_fresh_not_the_committed_seed(workspace: tuple[np.ndarray, list[dict[str, Any]]],
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    _, records = workspace
    params = _params("builtin")
    saved = _figures(monkeypatch)
    for _ in range(2):
        cqt.method_samples_task.fn(records, _table(params.check_quality.compare_methods), params=params)
    row = [r["method"] for r in io.read_json("reports/plots/check_quality/method_samples.json")["shown"]]
    first, second = (figure[row.index("dp_pixelate")] for _, figure in saved)  # one image per row
    assert not np.array_equal(first, second)  # the same params' seed twice: different noise
