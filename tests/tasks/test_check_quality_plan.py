"""check_quality's plan, pure: which rows each measure reads, shards, pads and the settings drawn from params."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from tasks.check_quality import plan
from tasks.check_quality.compare import sensitive_pads
from tasks.params import Params, parse_params


def _rows(n: int, **extra: Any) -> list[dict[str, Any]]:
    return [{"id": f"i{k}", "status": "anonymized", "split": "train", "categories": ["face"]} | extra
            for k in range(n)]


def test_anonymized_rows_drop_quarantined_and_calibrate_on_an_even_stride() -> None:
    records = _rows(10) + [{"id": "q", "status": "quarantined", "split": "train"}]
    rows = plan.anonymized_rows(records, calibration_images=3)
    assert [r["id"] for r in rows] == [f"i{k}" for k in range(10)]
    assert [k for k, r in enumerate(rows) if r["calibrate"]] == [0, 3, 6, 9]  # 10 // 3 = every third
    assert all(r["calibrate"] for r in plan.anonymized_rows(_rows(4), calibration_images=400))
    assert "calibrate" not in records[0]  # the records are not changed in place


def test_face_truth_test_split_and_samples_order() -> None:
    assert plan.has_face_truth({"a": {"face": [([0, 0, 1, 1], 3, None)]}, "b": {}})
    assert not plan.has_face_truth({"a": {"face": [], "plate": [([0, 0, 1, 1], None, "X")]}})
    rows = _rows(3)
    assert plan.rows_of_test_split(rows) == rows  # no test split: every row
    rows[1]["split"] = "test"
    assert plan.rows_of_test_split(rows) == [rows[1]]
    assert [r["id"] for r in plan.samples_rows([rows[2]], rows)] == ["i2", "i0", "i1"]


def test_face_sample_rows_are_the_first_three_written_faces() -> None:
    rows = _rows(6)
    rows[0]["status"], rows[2]["categories"] = "quarantined", ["plate"]
    assert [r["id"] for r in plan.face_sample_rows(rows)] == ["i1", "i3", "i4"]


def test_identity_rows_only_on_the_builtin_set_with_known_faces() -> None:
    rows = _rows(3)
    details = {"i0": {"face": [([0, 0, 4, 4], 7, None)]}, "i1": {"face": [([0, 0, 4, 4], None, None)]}}
    assert [r["id"] for r in plan.identity_rows(rows, details, builtin=True)] == ["i0"]
    assert plan.identity_rows(rows, details, builtin=False) == []


def test_shards_cover_every_row_once_in_order() -> None:
    rows = _rows(21)
    shards = plan.shard_rows(rows, workers=2)  # 21 // 8 = 2 rows per shard
    assert [len(s) for s in shards] == [2] * 10 + [1]
    assert [r for s in shards for r in s] == rows
    assert plan.shard_rows(_rows(3), workers=16) == [[r] for r in _rows(3)]
    assert plan.shard_rows([], workers=4) == []


def test_appearance_pads_and_untargeted_people(raw_params: dict) -> None:
    p = parse_params(raw_params)
    assert plan.appearance_pads(p.anonymize, use_gt=False) is None
    raw_params["anonymize"]["targets"] = ["face", "plate", "text"]
    kept_bodies = parse_params(raw_params)
    assert plan.appearance_pads(kept_bodies.anonymize, use_gt=True) == sensitive_pads(kept_bodies.anonymize)
    assert plan.untargeted_people(kept_bodies.check_quality, kept_bodies.anonymize) == ("body",)
    raw_params["anonymize"]["targets"] = ["face", "body"]
    both = parse_params(raw_params)
    pads = plan.appearance_pads(both.anonymize, use_gt=True)
    assert pads is not None and pads["body"] == both.anonymize.body.pad
    assert plan.untargeted_people(both.check_quality, both.anonymize) == ()
    raw_params["anonymize"]["targets"], raw_params["check_quality"]["body_check"] = ["plate"], True
    neither = parse_params(raw_params)
    assert plan.untargeted_people(neither.check_quality, neither.anonymize) == ("body", "face")
    raw_params["check_quality"]["body_check"] = False
    off = parse_params(raw_params)
    assert plan.untargeted_people(off.check_quality, off.anonymize) == ()


def test_attack_and_compare_settings_come_from_their_params(params: Params) -> None:
    q, a = params.check_quality, params.anonymize
    config = plan.attack_config(check_quality=q, anonymize=a, face_sizes=(30, 40), method="mask", seed=5)
    assert (config.method, config.pad, config.face_sizes, config.seed) == ("mask", a.face.pad, (30, 40), 5)
    assert (config.gallery_side, config.train_per_identity, config.feature_side) == (
        q.reid_gallery_side, q.reid_train_per_identity, q.reid_feature_side)
    assert set(config.options) >= {"replace"}  # the k-Same pool is always there
    c = plan.compare_config(check_quality=q, anonymize=a, attack=config, seed=5)
    assert (c.probes, c.residual_images, c.text_images, c.people_images) == (
        q.compare_probes, q.compare_residual_images, q.compare_text_images, q.compare_people_images)
    assert (c.text_min_similarity, c.match_iou, c.seed, c.attack) == (q.text_min_similarity, q.match_iou, 5, config)
    assert plan.face_method(a) == a.methods.get("face", a.method)


def test_utility_selection_from_the_manifest() -> None:
    manifest = pd.DataFrame({"id": [f"i{k}" for k in range(8)], "path": [f"images/i{k}.png" for k in range(8)],
                             "split": ["train"] * 5 + ["test"] * 3, "label": [0, 1, 2, 3, 4, 5, 6, 7]})
    assert plan.utility_train_ids(manifest, images=3) == {"i0", "i2", "i4"}
    assert plan.utility_train_ids(manifest, images=100) == {f"i{k}" for k in range(5)}
    paths, labels = plan.split_selection(manifest, "test", {"i5", "i7", "i0"})
    assert paths == ["images/i5.png", "images/i7.png"] and labels.dtype == np.int64 and labels.tolist() == [5, 7]


def test_the_attack_and_compare_settings_have_one_source_the_params_schema() -> None:
    from dataclasses import MISSING, fields

    from tasks.check_quality.compare import CompareConfig
    from tasks.check_quality.reid import AttackConfig

    for config in (AttackConfig, CompareConfig):
        defaults = [f.name for f in fields(config) if f.default is not MISSING or f.default_factory is not MISSING]
        assert defaults == [], f"{config.__name__} declares defaults beside the params schema: {defaults}"
