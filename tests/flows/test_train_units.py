"""train.dp.unit on the flow side: identities from the ingest ground truth or a manifest column, the cap,
the per-unit σ, the planned ledger entry per unit."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from flows.train import person_cap, plan_unit, refuse_over_budget, unit_ids
from tasks.errors import InvalidInputError, PrivacyBudgetError
from tasks.params import parse_params
from tasks.train.person import max_contribution, price_unit


def _params(unit: str, cap: int | str = "auto") -> object:
    return parse_params({"train": {"epochs": 2, "batch_size": 20,
                                   "dp": {"unit": unit, "cap": cap, "target_epsilon": 4.0, "target_delta": 1e-3},
                                   "budget": {"delta": 1e-3}}})


def _manifest() -> pd.DataFrame:
    ids = [f"img_{i}" for i in range(60)]
    return pd.DataFrame({"id": ids, "split": ["train"] * 50 + ["test"] * 10,
                         "video": [f"v{i % 5}" for i in range(50)] + [""] * 10})


@pytest.fixture
def workspace(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("PRIVTRAIL_ROOT", str(tmp_path))
    monkeypatch.delenv("PRIVTRAIL_LEDGER", raising=False)
    raw = tmp_path / "data/raw"
    raw.mkdir(parents=True)
    # person 0 is in img_0..img_19 (20 images), person 1 in img_10..img_14 (with 0); the rest show nobody
    anns = [{"id": i + 1, "image_id": i + 1, "attributes": {"identity": 0}} for i in range(20)]
    anns += [{"id": 100 + i, "image_id": i + 1, "attributes": {"identity": 1}} for i in range(10, 15)]
    coco = {"images": [{"id": i + 1, "privtrail_id": f"img_{i}"} for i in range(60)], "annotations": anns}
    (raw / "annotations.json").write_text(json.dumps(coco))
    return tmp_path


def test_image_unit_plans_nothing(workspace: Path) -> None:
    assert plan_unit(_params("image"), _manifest()) is None


def test_person_unit_caps_every_person_and_calibrates_for_the_person(workspace: Path) -> None:
    plan, units = plan_unit(_params("person", cap=3), _manifest())  # type: ignore[misc]
    assert max_contribution(units) == 20 and max_contribution(units, plan.kept) == 3
    assert len(plan.kept) == 30 + 3  # the 30 images of nobody, 3 of person 0 (person 1's share them)
    assert (plan.sample_rate, plan.steps) == (1 / 2, 4)  # 33 kept images, batch 20: 2 steps per epoch
    assert max(price_unit(((plan.noise_multiplier, 0.5, 4),), cap=3, delta=1e-3)) <= 4.0


def test_a_manifest_column_is_a_unit(workspace: Path) -> None:
    ids = unit_ids(_params("video"), _manifest(), "video")
    assert ids["img_7"] == ("v2",) and len(ids) == 50
    plan, units = plan_unit(_params("video", cap=2), _manifest())  # type: ignore[misc]
    assert len(plan.kept) == 10 and max_contribution(units, plan.kept) == 2  # 5 videos × 2 frames
    with pytest.raises(InvalidInputError, match="'camera' is not image, person, video or a column"):
        unit_ids(_params("camera"), _manifest(), "camera")


def test_the_planned_run_is_priced_per_person_before_training(workspace: Path) -> None:
    params = _params("person", cap=3)
    plan, _ = plan_unit(params, _manifest())  # type: ignore[misc]
    status = refuse_over_budget(params.train, "d" * 64, len(plan.kept), 20, plan)  # type: ignore[attr-defined]
    assert status.unit == "person" and status.epsilon_total <= 4.0 + 1e-6
    tight = params.train.model_copy(update={"budget": params.train.budget.model_copy(  # type: ignore[attr-defined]
        update={"max_total_epsilon": 3.0})})
    with pytest.raises(PrivacyBudgetError, match="per person"):
        refuse_over_budget(tight, "d" * 64, len(plan.kept), 20, plan)


def test_person_cap_is_what_a_run_cost_the_most_present_person(workspace: Path) -> None:
    params = _params("image")
    assert person_cap(params, [f"img_{i}" for i in range(50)]) == 20
    assert person_cap(params, ["img_3", "img_11", "img_40"]) == 2
    assert person_cap(params, ["img_40", "img_41"]) is None  # nobody known in these


def test_a_unit_no_image_has_is_refused(workspace: Path) -> None:
    manifest = _manifest().assign(video="")
    with pytest.raises(InvalidInputError, match="no train image has a known video"):
        plan_unit(_params("video", cap=2), manifest)


def test_frames_of_one_video_are_one_unit(workspace: Path) -> None:
    manifest = _manifest().drop(columns="video")
    manifest["source"] = [f"cam{i % 2}.mp4#frame={i}" if i < 20 else f"still_{i}.jpg" for i in range(60)]
    plan, units = plan_unit(_params("video", cap=3), manifest)  # type: ignore[misc]
    assert units["img_4"] == ("video:cam0.mp4",) and units["img_30"] == ("image:img_30",)
    assert len(plan.kept) == 3 + 3 + 30  # 3 frames of each video, every still
