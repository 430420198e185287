"""Detector presets (`anonymize.preset`): what each resolves to, user keys over the preset, the record, the CLI."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import skimage.data
import yaml
from pydantic import ValidationError

from tasks.anonymize.detectors import FaceDetector
from tasks.anonymize.setup import anonymization_setup
from tasks.params import PRESET_NAMES, PRESETS, AnonymizeParams, FaceDetectorParams

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("name", PRESET_NAMES)
def test_each_preset_resolves_to_its_face_params(name: str) -> None:
    face = AnonymizeParams(preset=name).face.model_dump()
    assert {k: face[k] for k in PRESETS[name]} == PRESETS[name]


def test_the_field_defaults_are_the_default_preset() -> None:
    face = FaceDetectorParams().model_dump()
    assert {k: face[k] for k in PRESETS["default"]} == PRESETS["default"]


def test_a_key_the_user_sets_overrides_the_preset_and_only_that_key() -> None:
    p = AnonymizeParams(preset="thorough", face={"threshold": 0.3, "cascades": {"alt2": 1.5}})
    assert p.face.threshold == 0.3 and p.face.cascades == {"alt2": 1.5}
    assert p.face.centerface is True and p.face.max_pixels == PRESETS["thorough"]["max_pixels"]
    given = AnonymizeParams(preset="fast", face=FaceDetectorParams(yunet=1.5))  # a model: only its set fields count
    assert given.face.yunet == 1.5 and given.face.cascades == {} and given.face.centerface is False


def test_an_unknown_preset_is_refused_naming_the_key() -> None:
    with pytest.raises(ValidationError, match="preset"):
        AnonymizeParams(preset="quick")


def test_params_yaml_names_the_default_preset_and_sets_no_face_key() -> None:
    raw = yaml.safe_load((REPO / "params.yaml").read_text())["anonymize"]
    assert raw["preset"] == "default" and not raw.get("face")  # a key there would silently override every preset
    assert AnonymizeParams(**raw).face == AnonymizeParams(preset="default").face


def test_the_setup_record_names_the_preset_and_its_detectors() -> None:
    fast, default, thorough = (anonymization_setup(AnonymizeParams(preset=n)) for n in ("fast", "default", "thorough"))
    assert (fast.preset, default.preset, thorough.preset) == ("fast", "default", "thorough")
    assert fast.detectors["face"][0] == "YuNet" and not any("Haar" in d for d in fast.detectors["face"])
    assert any("at most 100,000 pixels" in d for d in default.detectors["face"])
    assert thorough.detectors["face"][:2] == ("CenterFace", "Haar cascades (alt2, default)")


def test_cascades_run_only_on_images_within_their_pixel_limit() -> None:
    """astronaut is 512 x 512 = 262,144 px: the alt2 cascade finds her face at the limit, not one pixel under."""
    image = np.ascontiguousarray(skimage.data.astronaut())
    at = FaceDetector(centerface=False, cascades={"alt2": 1.0}, verify=0, cascade_max_pixels=512 * 512)
    under = FaceDetector(centerface=False, cascades={"alt2": 1.0}, verify=0, cascade_max_pixels=512 * 512 - 1)
    assert len(at(image)) >= 1
    assert len(under(image)) == 0


def test_bad_cascade_options_are_refused() -> None:
    from tasks.errors import InvalidInputError

    with pytest.raises(InvalidInputError, match="cascade_scale"):
        FaceDetector(cascade_scale=1.0)
    with pytest.raises(InvalidInputError, match="cascade_max_pixels"):
        FaceDetector(cascade_max_pixels=-1)


def test_the_cli_preset_reaches_the_params(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from flows import cli

    seen: dict[str, AnonymizeParams] = {}

    def fake(in_dir: Path, out_dir: Path, *, p: AnonymizeParams, jobs: int) -> dict[str, object]:
        seen["p"] = p
        return {"counts": {"inputs": 0, "anonymized": 0, "quarantined": 0, "detections": {}}, "out_dir": str(out_dir),
                "device": {"name": "cpu"}}

    monkeypatch.setattr("flows.folder_anonymize.anonymize_folder", fake)
    assert cli.main(["anonymize", str(tmp_path), str(tmp_path / "out"), "--preset", "fast", "--device", "cpu"]) == 0
    assert seen["p"].preset == "fast" and seen["p"].face.yunet == 1.0 and seen["p"].face.cascades == {}
    assert cli.main(["anonymize", str(tmp_path), str(tmp_path / "o2"), "--preset", "thorough",
                     "--face-detector", "centerface", "--device", "cpu"]) == 0
    assert seen["p"].face.centerface is True and seen["p"].face.cascades == {} and seen["p"].face.yunet == 0


def test_the_setup_record_keeps_the_resolved_face_params_through_json() -> None:
    from tasks.anonymize.setup import AnonymizationSetup

    setup = anonymization_setup(AnonymizeParams(preset="fast", face={"yunet": 1.5}))
    again = AnonymizationSetup.from_dict(setup.as_dict())
    assert again.face_params["yunet"] == 1.5 and again.face_params["verify_skip"] == 0.4 and again.preset == "fast"
    assert anonymization_setup(AnonymizeParams(targets=("text",))).face_params == {}


def test_a_large_trusted_hit_gets_the_second_look_unless_told_to_skip_it(monkeypatch: pytest.MonkeyPatch) -> None:
    """YuNet takes a squirrel's face (opencv-doc's squirrel_cls.jpg, 139 px) for a face; CenterFace's look scores
    it 0.146. With the default preset a large hit is looked at whatever its score and dropped under verify_large
    (0.2); with verify_skip_large 0 a hit over verify_skip skips the look and stays. A small one skips it either way."""
    image = np.zeros((400, 400, 3), np.uint8)
    large = np.array([[100.0, 100.0, 239.0, 239.0, 0.7]])
    small = np.array([[10.0, 10.0, 42.0, 42.0, 0.7]])
    seen = []

    def fake_look(self: FaceDetector, im: object, box: np.ndarray) -> float:
        seen.append(int(box[2] - box[0]))
        return 0.146

    monkeypatch.setattr(FaceDetector, "second_look", fake_look)
    monkeypatch.setattr(FaceDetector, "yunet_look", lambda self, im, box: 0.9)
    monkeypatch.setattr(FaceDetector, "_load", lambda self: setattr(self, "_sess", object()))
    for params, kept_large in ((AnonymizeParams().face, False), (AnonymizeParams(face={"verify_skip_large": 0.0}).face, True)):
        detector = FaceDetector(**params.model_dump())
        monkeypatch.setattr(detector, "candidates", lambda im: [np.concatenate([large, small]), np.zeros((0, 5))])
        seen.clear()
        boxes = detector(image).boxes
        assert (len(boxes) == 2) is kept_large, (params, boxes)
        assert seen == ([] if kept_large else [139]), seen


def test_yunet_hits_under_its_threshold_are_dropped() -> None:
    """libfacedetection reports hits from ~0.2; on builtin image 803 (gravel) the default's 2x copy gave five stones
    at 0.21-0.28 whose fills drew more hits until the image was quarantined. yunet_threshold 0.4 drops them."""
    rows = np.zeros((2, 16), np.int16)
    rows[:, 0] = (25, 55)  # confidence x 100
    rows[:, 1:5] = ((10, 10, 40, 40), (100, 100, 40, 40))
    detector = FaceDetector(centerface=False, cascades={}, yunet=1.0, yunet_threshold=0.4)
    detector._yunet = lambda bgr: rows  # what yuface.c_detect returns
    found = detector._yunet_faces(np.zeros((200, 200, 3), np.uint8))
    assert found[:, 4].tolist() == [0.55]
    assert len(FaceDetector(centerface=False, cascades={}, yunet=1.0)._yunet_face_rows(rows)) == 2
