"""Detector presets (`anonymize.preset`): what each resolves to, user keys over the preset, the record, the CLI."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import skimage.data
import yaml
from pydantic import ValidationError

from tasks.anonymize.detectors import FaceDetector
from tasks.anonymize.presets import PRESET_NAMES, PRESETS
from tasks.anonymize.setup import anonymization_setup
from tasks.params import AnonymizeParams, FaceDetectorParams

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
    assert any("at most 262,144 pixels" in d for d in default.detectors["face"])
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
