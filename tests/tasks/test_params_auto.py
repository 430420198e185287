"""Defaults that follow the source: `auto` train choices resolve from ingest.source, and params that cannot work
are refused at load, in one line naming the keys."""

from __future__ import annotations

import pytest

from tasks.errors import InvalidInputError
from tasks.params import parse_params

BUILTIN_ONLY = ("n_images", "image_size", "max_faces", "face_size")


def _own_photos(raw: dict, **ingest: object) -> dict:
    for k in BUILTIN_ONLY:
        raw["ingest"].pop(k)
    raw["ingest"].update({"source": "folder", "folder": "/data/camera7"} | ingest)
    return raw


def _refusal(raw: dict) -> str:
    with pytest.raises(InvalidInputError) as err:
        parse_params(raw, source="params.yaml")
    msg = str(err.value)
    assert "\n" not in msg and msg.startswith("params.yaml: ")
    return msg


def test_params_yaml_says_auto(raw_params: dict) -> None:
    assert (raw_params["train"]["features"], raw_params["train"]["model"]) == ("auto", "auto")


def test_auto_resolves_to_the_placard_task_on_the_builtin_source(raw_params: dict) -> None:
    p = parse_params(raw_params)
    assert (p.train.features, p.train.model) == ("placard", "digit_hog")
    assert p.auto_resolved() == {"train.features": "placard", "train.model": "digit_hog"}


@pytest.mark.parametrize("source", ["folder", "coco", "csv"])
def test_auto_resolves_to_whole_photos_on_your_own_data(raw_params: dict, source: str) -> None:
    """A new user (docs/your-data.md): only `ingest` changed; nothing asks for a digit placard."""
    p = parse_params(_own_photos(raw_params, source=source, coco="a.json", labels="l.csv"))
    assert (p.train.features, p.train.model) == ("full", "photo_hog")
    assert p.auto_resolved() == {"train.features": "full", "train.model": "photo_hog"}


def test_a_chosen_model_fixes_the_features_and_is_not_recorded_as_auto(raw_params: dict) -> None:
    raw_params["train"]["model"] = "gn_cnn"
    p = parse_params(raw_params)
    assert (p.train.features, p.train.model) == ("full", "gn_cnn")
    assert p.auto_resolved() == {"train.features": "full"}
    raw = _own_photos(raw_params)
    raw["train"].update({"features": "full", "model": "tests.user_models:build"})
    assert parse_params(raw).auto_resolved() == {}


def test_placard_with_your_own_photos_is_refused_naming_the_keys(raw_params: dict) -> None:
    raw = _own_photos(raw_params)
    raw["train"]["features"] = "placard"
    msg = _refusal(raw)
    assert "train.features placard" in msg and "ingest.source is 'folder'" in msg and "auto" in msg


def test_a_model_that_does_not_fit_the_features_is_refused(raw_params: dict) -> None:
    raw_params["train"].update({"features": "placard", "model": "photo_hog"})
    msg = _refusal(raw_params)
    assert "train.model 'photo_hog' takes train.features 'full', got 'placard'" in msg


def test_label_from_none_with_a_chosen_model_is_refused(raw_params: dict) -> None:
    raw = _own_photos(raw_params, label_from="none")
    assert parse_params(raw).train.model == "photo_hog"  # auto: nothing chosen, train skips (no labels)
    raw["train"].update({"features": "full", "model": "gn_cnn"})
    msg = _refusal(raw)
    assert "ingest.label_from none" in msg and "train.features and train.model" in msg


def test_builtin_only_params_changed_with_your_own_photos_are_refused(raw_params: dict) -> None:
    raw = _own_photos(raw_params)
    raw["ingest"]["n_images"] = 500
    msg = _refusal(raw)
    assert "ingest.n_images only apply to the builtin source" in msg


def test_folder_source_without_a_folder_is_refused(raw_params: dict) -> None:
    raw = _own_photos(raw_params)
    raw["ingest"]["folder"] = None
    assert "ingest.folder (the images' root) is required" in _refusal(raw)


def test_a_folder_with_the_builtin_source_is_refused(raw_params: dict) -> None:
    """Setting ingest.folder but not ingest.source would silently run the benchmark on generated images."""
    raw_params["ingest"]["folder"] = "/data/camera7"
    msg = _refusal(raw_params)
    assert "ingest.folder would be ignored: ingest.source is 'builtin'" in msg


def test_label_from_none_with_the_builtin_source_is_refused(raw_params: dict) -> None:
    raw_params["ingest"]["label_from"] = "none"
    assert "ingest.label_from would be ignored: ingest.source is 'builtin'" in _refusal(raw_params)
