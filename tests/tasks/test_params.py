from __future__ import annotations

import pytest

from tasks.errors import InvalidInputError
from tasks.params import Params, parse_params


def test_typo_names_the_key(raw_params: dict) -> None:
    raw_params["train"]["epochz"] = 3
    with pytest.raises(InvalidInputError) as err:
        parse_params(raw_params)
    msg = str(err.value)
    assert "train.epochz" in msg and "\n" not in msg


def test_out_of_range_value_names_the_key(raw_params: dict) -> None:
    raw_params["train"]["dp"]["target_delta"] = 1.5
    with pytest.raises(InvalidInputError, match=r"train\.dp\.target_delta"):
        parse_params(raw_params)


def test_bad_choice_and_bad_split(raw_params: dict) -> None:
    raw_params["anonymize"]["method"] = "smudge"
    raw_params["ingest"]["split"] = {"train": 0.5, "holdout": 0.5, "test": 0.5}
    with pytest.raises(InvalidInputError) as err:
        parse_params(raw_params)
    assert "anonymize.method" in str(err.value) and "ingest.split" in str(err.value)


def test_folder_source_needs_a_folder(raw_params: dict) -> None:
    raw_params["ingest"]["source"] = "folder"
    with pytest.raises(InvalidInputError, match="ingest.folder"):
        parse_params(raw_params)


def test_params_are_frozen(params: Params) -> None:
    with pytest.raises(Exception):  # noqa: B017 - pydantic raises ValidationError on frozen assignment
        params.train.epochs = 5  # type: ignore[misc]
