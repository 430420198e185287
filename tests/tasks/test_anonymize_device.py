"""`anonymize.device`: the provider choice (auto / cpu / cuda), its plumbing into the detectors, and its record.

No GPU needed: `available` stands in for what onnxruntime lists; on this CPU build a session asked for CUDA
falls back to the CPU, which the detectors must refuse rather than record a device they did not use.
"""

from __future__ import annotations

import json
import pickle
import threading
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pydantic
import pytest

from tasks.anonymize.detectors import FaceDetector, OcrTextDetector, build_detectors
from tasks.anonymize.device import (
    CPU_PROVIDER,
    CUDA_PROVIDER,
    ResolvedDevice,
    check_providers,
    cuda_session_error,
    onnxruntime_build,
    resolve_device,
)
from tasks.anonymize.setup import AnonymizationSetup, anonymization_setup
from tasks.codec import encode_png
from tasks.errors import AnonymizationError, InvalidInputError
from tasks.ingest.builtin import generate_builtin
from tasks.params import AnonymizeParams

GPU_LISTED = [CUDA_PROVIDER, CPU_PROVIDER]
CPU_LISTED = ["AzureExecutionProvider", CPU_PROVIDER]
NO_CUDA_HERE = pytest.mark.skipif(CUDA_PROVIDER in ort.get_available_providers(), reason="onnxruntime-gpu installed")


@pytest.fixture(scope="module")
def scenes() -> list[np.ndarray]:
    """Four 640x480 builtin scenes (LFW faces pasted on photos), as the throughput bench makes them."""
    made = generate_builtin(n_images=4, image_size=640, max_faces=3, face_size=(32, 91), seed=0)
    return [np.ascontiguousarray(s.image[80:560]) for s in made]


def test_auto_takes_cuda_when_onnxruntime_lists_it() -> None:
    d = resolve_device("auto", available=GPU_LISTED)
    assert (d.name, d.providers) == ("cuda", (CUDA_PROVIDER, CPU_PROVIDER))
    assert d.reason == f"auto: {CUDA_PROVIDER} available"


def test_auto_falls_back_to_cpu_and_says_why() -> None:
    d = resolve_device("auto", available=CPU_LISTED)
    assert (d.name, d.providers) == ("cpu", (CPU_PROVIDER,))
    assert d.reason.startswith(f"auto: {CUDA_PROVIDER} not available") and "AzureExecutionProvider" in d.reason


def test_cuda_is_refused_without_it_naming_the_key_and_the_install() -> None:
    with pytest.raises(InvalidInputError, match=r"anonymize\.device: cuda") as err:
        resolve_device("cuda", available=CPU_LISTED)
    assert "make setup-gpu" in str(err.value) and "privtrail[gpu]" in str(err.value)
    assert resolve_device("cuda", available=GPU_LISTED).providers == (CUDA_PROVIDER, CPU_PROVIDER)


def test_cpu_stays_on_cpu_even_with_cuda_listed() -> None:
    d = resolve_device("cpu", available=GPU_LISTED)
    assert (d.name, d.providers, d.reason) == ("cpu", (CPU_PROVIDER,), "requested: anonymize.device is cpu")


def test_unknown_device_is_refused() -> None:
    with pytest.raises(InvalidInputError, match=r"anonymize\.device: 'gpu' is not one of auto, cpu, cuda"):
        resolve_device("gpu", available=GPU_LISTED)


def test_describe_says_what_runs_where() -> None:
    cuda = resolve_device("auto", available=GPU_LISTED)
    assert cuda.describe().startswith(f"cuda (onnxruntime {CUDA_PROVIDER} for CenterFace and PP-OCR;")
    assert "YuNet on CPU" in cuda.describe()
    assert resolve_device("cpu").describe() == "cpu (onnxruntime CPUExecutionProvider and OpenCV, all on CPU)"
    assert cuda.as_record() == {"name": "cuda", "providers": [CUDA_PROVIDER, CPU_PROVIDER],
                                "description": cuda.describe(), "reason": cuda.reason}


@NO_CUDA_HERE
def test_this_cpu_build_resolves_auto_to_cpu_and_refuses_cuda() -> None:
    d = resolve_device("auto")
    assert d.name == "cpu" and "the CPU build" in d.reason
    with pytest.raises(InvalidInputError, match=r"anonymize\.device"):
        resolve_device("cuda")


@NO_CUDA_HERE
@pytest.mark.parametrize("isolated", [False, True], ids=["in-process", "spawned"])
def test_the_probe_sees_a_session_fall_back_to_cpu(isolated: bool) -> None:
    """onnxruntime-gpu lists CUDA even where it cannot start: the probe looks at the session it got."""
    why = cuda_session_error(isolated=isolated)
    assert why is not None and f"ran on {CPU_PROVIDER}" in why


@pytest.mark.parametrize("bad", [(), (CPU_PROVIDER, CPU_PROVIDER), ("TensorrtExecutionProvider",), ("cuda",)])
def test_bad_provider_lists_are_refused(bad: tuple[str, ...]) -> None:
    with pytest.raises(InvalidInputError, match="face detector: providers"):
        FaceDetector(providers=bad)
    with pytest.raises(InvalidInputError, match="text detector: providers"):
        OcrTextDetector(providers=bad)
    assert check_providers([CUDA_PROVIDER, CPU_PROVIDER], what="x") == (CUDA_PROVIDER, CPU_PROVIDER)


def test_detectors_keep_their_providers_through_pickling() -> None:
    face = FaceDetector(providers=(CUDA_PROVIDER, CPU_PROVIDER))
    ocr = OcrTextDetector(providers=(CUDA_PROVIDER, CPU_PROVIDER))
    assert pickle.loads(pickle.dumps(face)).providers == (CUDA_PROVIDER, CPU_PROVIDER)
    assert pickle.loads(pickle.dumps(ocr)).providers == (CUDA_PROVIDER, CPU_PROVIDER)
    assert FaceDetector().providers == OcrTextDetector().providers == (CPU_PROVIDER,)


def test_build_detectors_passes_the_providers_to_the_onnx_detectors() -> None:
    built = build_detectors(targets=("face", "body", "plate", "text"), face={}, text={}, body={"hog": False},
                            providers=(CUDA_PROVIDER, CPU_PROVIDER))
    assert built["face"].providers == built["plate+text"].providers == (CUDA_PROVIDER, CPU_PROVIDER)  # type: ignore[attr-defined]
    assert not hasattr(built["body"], "providers")  # OpenCV: CPU
    default = build_detectors(targets=("face", "text"), face={}, text={})
    assert default["face"].providers == default["text"].providers == (CPU_PROVIDER,)  # type: ignore[attr-defined]


@NO_CUDA_HERE
@pytest.mark.filterwarnings("ignore:Specified provider:UserWarning")  # the fallback itself
def test_a_face_session_that_fell_back_to_cpu_fails_closed(scenes: list[np.ndarray]) -> None:
    """Asked for CUDA, onnxruntime quietly runs on the CPU: the detector refuses, every time, rather than run
    and record a device it did not use."""
    face = FaceDetector(providers=(CUDA_PROVIDER, CPU_PROVIDER))
    for _ in range(2):  # the fallen-back session is not kept for the next call
        with pytest.raises(AnonymizationError, match=r"face detector: onnxruntime was asked for .*CUDAExecutionProvider"):
            face(scenes[0])
    assert len(FaceDetector(providers=(CPU_PROVIDER,))(scenes[1]).boxes) > 0


@NO_CUDA_HERE
def test_ocr_sessions_that_fell_back_to_cpu_fail_closed(scenes: list[np.ndarray]) -> None:
    ocr = OcrTextDetector(providers=(CUDA_PROVIDER, CPU_PROVIDER))
    for _ in range(2):
        with pytest.raises(AnonymizationError, match=r"text detector: onnxruntime was asked for"):
            ocr(scenes[0])


def test_cuda_reaches_rapidocr_through_its_own_switches(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("tasks.anonymize.detectors.text.confirm_providers", lambda *a, **k: None)
    cuda, cpu = OcrTextDetector(providers=(CUDA_PROVIDER, CPU_PROVIDER)), OcrTextDetector()
    cuda._load()
    cpu._load()
    assert cuda._ocr.text_det.infer.cfg_use_cuda and cuda._ocr.text_rec.session.cfg_use_cuda
    assert not (cpu._ocr.text_det.infer.cfg_use_cuda or cpu._ocr.text_rec.session.cfg_use_cuda)


def test_centerface_batch_gives_the_boxes_of_one_call_per_image(scenes: list[np.ndarray]) -> None:
    face = FaceDetector()
    batched = face.centerface_batch(scenes)
    single = [face._centerface(im, face.threshold) for im in scenes]
    assert sum(len(b) for b in batched) > 0
    assert all(np.array_equal(b, s) for b, s in zip(batched, single, strict=True))
    assert [len(b) for b in face.centerface_batch(scenes[:2], threshold=0.9)] == [
        len(face._centerface(im, 0.9)) for im in scenes[:2]]
    with pytest.raises(InvalidInputError, match="one shape"):
        face.centerface_batch([scenes[0], scenes[1][:240]])


def test_params_device_field_validates() -> None:
    assert AnonymizeParams().device == "auto"
    assert AnonymizeParams(device="cuda").device == "cuda"
    with pytest.raises(pydantic.ValidationError, match="device"):
        AnonymizeParams(device="gpu")  # type: ignore[arg-type]


def test_params_yaml_sets_auto(params) -> None:  # type: ignore[no-untyped-def]
    assert params.anonymize.device == "auto"


def test_setup_record_keeps_the_device_and_why() -> None:
    d = resolve_device("auto", available=GPU_LISTED)
    setup = anonymization_setup(AnonymizeParams(), device=d.describe(), device_reason=d.reason)
    back = AnonymizationSetup.from_dict(setup.as_dict())
    assert (back.device, back.device_reason) == (d.describe(), d.reason)
    assert AnonymizationSetup.from_dict({"targets": ["face"], "verify": "off"}).device_reason == ""


def test_the_stage_engine_builds_its_detectors_on_the_resolved_providers(monkeypatch: pytest.MonkeyPatch) -> None:
    import flows.anonymize as stage

    monkeypatch.setattr(stage, "_local", threading.local())
    cuda = ResolvedDevice("cuda", (CUDA_PROVIDER, CPU_PROVIDER), "test")
    monkeypatch.setattr(stage, "detector_device", lambda requested: cuda if requested == "cuda" else
                        resolve_device(requested, available=CPU_LISTED))
    detectors, _ = stage._engine(AnonymizeParams(device="cuda", targets=("face", "text")))
    assert detectors["face"].providers == detectors["text"].providers == (CUDA_PROVIDER, CPU_PROVIDER)
    run_p, device = stage.resolved(AnonymizeParams(device="auto"))
    assert (run_p.device, device.name) == ("cpu", "cpu")  # workers get the resolved name, never auto


@NO_CUDA_HERE
def test_cli_device_cuda_stops_before_reading_anything(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from flows.cli import main

    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "a.png").write_bytes(encode_png(np.zeros((32, 32, 3), np.uint8)))
    assert main(["anonymize", str(tmp_path / "in"), str(tmp_path / "out"), "--device", "cuda"]) == 2
    assert "anonymize.device: cuda was asked for" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_cli_records_the_device_it_ran_on(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                          scenes: list[np.ndarray]) -> None:
    from flows.cli import main

    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "a.png").write_bytes(encode_png(scenes[1]))
    assert main(["anonymize", str(tmp_path / "in"), str(tmp_path / "out"), "--targets", "face",
                 "--device", "cpu"]) == 0
    assert "detectors on cpu" in capsys.readouterr().out
    report = json.loads((tmp_path / "out" / "anonymize_report.json").read_text())
    assert report["device"] == resolve_device("cpu").as_record()


@pytest.mark.parametrize(("installed", "says"), [
    ({"onnxruntime": "1.32.0"}, "onnxruntime 1.32.0, the CPU build"),
    ({"onnxruntime-gpu": "1.31.1"}, "onnxruntime-gpu 1.31.1"),
    ({"onnxruntime": "1.32.0", "onnxruntime-gpu": "1.31.1"}, "both installed, one over the other's module"),
])
def test_the_build_in_the_reason_names_a_clobbered_install(monkeypatch: pytest.MonkeyPatch,
                                                           installed: dict[str, str], says: str) -> None:
    import importlib.metadata

    def version(dist: str) -> str:
        if dist not in installed:
            raise importlib.metadata.PackageNotFoundError(dist)
        return installed[dist]

    monkeypatch.setattr(importlib.metadata, "version", version)
    assert says in onnxruntime_build()


def test_the_gpu_extra_replaces_the_cpu_wheel() -> None:
    """onnxruntime-gpu and onnxruntime write one module: `make setup-gpu` must uninstall before it installs."""
    import tomllib

    root = Path(__file__).resolve().parents[2]
    extras = tomllib.loads((root / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    assert extras["gpu"] == ["onnxruntime-gpu==1.31.1"]
    make = (root / "Makefile").read_text()
    recipe = make.split("\nsetup-gpu: setup\n", 1)[1].split("\n\n", 1)[0]
    uninstall, install = recipe.index("pip uninstall --quiet --yes onnxruntime onnxruntime-gpu"), recipe.index(
        "--force-reinstall --no-deps 'onnxruntime-gpu==1.31.1'")
    assert uninstall < install and "get_available_providers()" in recipe
