"""`anonymize.text.cpu_runtime`: PP-OCR's models run by OpenVINO on the CPU read what onnxruntime reads."""

from __future__ import annotations

import sys

import numpy as np
import pytest
from pydantic import ValidationError

from tasks.anonymize.detectors.text import OcrTextDetector
from tasks.anonymize.device import CPU_PROVIDER, CUDA_PROVIDER
from tasks.errors import AnonymizationError, InvalidInputError
from tasks.params import TextDetectorParams
from tests.tasks._anonymize_scenes import face_scene, put_text


@pytest.fixture(scope="module")
def scene() -> np.ndarray:
    img, _ = face_scene(np.random.default_rng(5), [])
    put_text(img, "AB 123 CD", x=10, y=40, scale=0.6, fg=(0, 0, 0), bg=(255, 255, 255), thickness=2)
    put_text(img, "+1 555 014 2231", x=10, y=90, scale=0.5, fg=(255, 255, 255), bg=(40, 40, 40))
    put_text(img, "BAKERY", x=10, y=140, scale=0.7, fg=(0, 0, 0), bg=(200, 230, 255), thickness=2)
    return img


def test_openvino_reads_the_same_lines_as_onnxruntime(scene: np.ndarray) -> None:
    """Both passes, the second look and the recogniser on OpenVINO: the same boxes, strings and redactions."""
    ort, ov = OcrTextDetector(), OcrTextDetector(cpu_runtime="openvino")
    want, got = ort.read(scene), ov.read(scene)
    assert {"".join(t.split()) for t in got[1]} >= {"AB123CD", "+15550142231", "BAKERY"}, got[1]
    assert got[1] == want[1]
    np.testing.assert_array_equal(got[0], want[0])
    np.testing.assert_allclose(got[2], want[2], atol=1e-3)
    a, b = ort.detect_and_keep(scene), ov.detect_and_keep(scene)
    for x, y in zip(a, b, strict=True):
        np.testing.assert_array_equal(x.boxes, y.boxes)
        assert x.text == y.text
    assert type(ov._ocr.text_det.infer).__name__ == "_OpenVinoSession"
    assert type(ov._ocr.text_rec.session).__name__ == "_OpenVinoSession"
    assert type(ort._ocr.text_det.infer).__name__ == "OrtInferSession"


def test_openvino_missing_fails_closed_naming_the_key(
    scene: np.ndarray, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "openvino", None)  # import openvino raises ImportError
    with pytest.raises(AnonymizationError, match="anonymize.text.cpu_runtime"):
        OcrTextDetector(cpu_runtime="openvino")(scene)


def test_cpu_runtime_choices() -> None:
    """OpenVINO is the params' default (same builtin recall, less OCR time); onnxruntime stays selectable."""
    assert TextDetectorParams().cpu_runtime == "openvino"
    assert TextDetectorParams(cpu_runtime="onnxruntime").cpu_runtime == "onnxruntime"
    with pytest.raises(ValidationError, match="cpu_runtime"):
        TextDetectorParams(cpu_runtime="tensorrt")  # type: ignore[arg-type]
    with pytest.raises(InvalidInputError, match="cpu_runtime"):
        OcrTextDetector(cpu_runtime="tensorrt")  # type: ignore[arg-type]


def test_cuda_keeps_onnxruntime_whatever_the_cpu_runtime(monkeypatch: pytest.MonkeyPatch) -> None:
    """`cpu_runtime` names the CPU's runtime only: asked for CUDA, the sessions stay onnxruntime's CUDA ones."""
    monkeypatch.setattr("tasks.anonymize.detectors.text.confirm_providers", lambda *a, **k: None)
    cuda = OcrTextDetector(providers=(CUDA_PROVIDER, CPU_PROVIDER), cpu_runtime="openvino")
    cuda._load()
    assert cuda._ocr.text_det.infer.cfg_use_cuda and cuda._ocr.text_rec.session.cfg_use_cuda
