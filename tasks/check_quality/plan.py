"""check_quality's plan: which anonymized images each measure reads, how the per-image checks are sharded,
and the attack and comparison settings drawn from the params sections.

Rows are the anonymize stage's records (`records.jsonl`: id, path, split, status, categories, boxes); ground
truth is `tasks.groundtruth.gt_details` (image id → category → (box, identity, text) triples).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from tasks.check_quality.compare import CompareConfig, method_options, sensitive_pads
from tasks.check_quality.reid import AttackConfig
from tasks.check_quality.samples import even_sample
from tasks.params import AnonymizeParams, CheckQualityParams

Row = dict[str, Any]
Details = Mapping[str, Mapping[str, Sequence[Any]]]  # image id → category → (box, identity, text)
SHARDS_PER_WORKER = 4  # per-image checks: enough shards per worker that one slow shard does not idle the rest
SAMPLE_FACE_IMAGES = 3  # written images the method-samples figure crops a face from


def anonymized_rows(records: Sequence[Row], *, calibration_images: int) -> list[Row]:
    """The anonymized images, each flagged `calibrate` on an even stride so that about `calibration_images`
    of them calibrate the residual-face auditor on their raw image."""
    rows = [r for r in records if r["status"] == "anonymized"]
    step = max(1, len(rows) // calibration_images)
    return [r | {"calibrate": i % step == 0} for i, r in enumerate(rows)]


def has_face_truth(details: Details) -> bool:
    """Whether the ground truth has faces (builtin, COCO): else the measures use the redacted detections."""
    return any(c.get("face") for c in details.values())


def rows_of_test_split(rows: Sequence[Row]) -> list[Row]:
    """The test split's rows, or every row when the test split has none (a small collection)."""
    return [r for r in rows if r["split"] == "test"] or list(rows)


def samples_rows(compared: Sequence[Row], rows: Sequence[Row]) -> list[Row]:
    """The method samples' candidates: the compared images first; when none of them shows a face (a small test
    split), any other anonymized one after them."""
    shown = {r["id"] for r in compared}
    return [*compared, *(r for r in rows if r["id"] not in shown)]


def face_sample_rows(rows: Sequence[Row]) -> list[Row]:
    """The first `SAMPLE_FACE_IMAGES` written (anonymized) images with a redacted face."""
    return [r for r in rows if r["status"] == "anonymized" and "face" in r["categories"]][:SAMPLE_FACE_IMAGES]


def identity_rows(rows: Sequence[Row], details: Details, *, builtin: bool) -> list[Row]:
    """Rows with a face of known identity: the identity attacks name faces among a clear gallery of the
    identities, which only the builtin set's LFW faces have (a COCO import's person ids are linked instead)."""
    if not builtin:
        return []
    return [r for r in rows if any(a[1] is not None for a in details.get(r["id"], {}).get("face", []))]


def shard_rows(rows: Sequence[Row], *, workers: int) -> list[list[Row]]:
    """`rows` in consecutive shards, about `SHARDS_PER_WORKER` per worker (at least one row each)."""
    n = max(1, len(rows) // (SHARDS_PER_WORKER * workers))
    return [list(rows[i : i + n]) for i in range(0, len(rows), n)]


def untargeted_people(check_quality: CheckQualityParams, anonymize: AnonymizeParams) -> tuple[str, ...]:
    """The people categories whose detections should survive anonymization (`check_quality.body_check`): body
    when the anonymizer keeps bodies, face when it keeps faces; none without the check."""
    if not check_quality.body_check:
        return ()
    return tuple(c for c in ("body", "face") if c not in anonymize.targets)


def appearance_pads(anonymize: AnonymizeParams, *, use_gt: bool) -> dict[str, float] | None:
    """The appearance measures' sensitive boxes: the ground truth padded as the detectors pad (category →
    share per side; bodies when targeted), or None (no face ground truth: the redacted detections)."""
    if not use_gt:
        return None
    return sensitive_pads(anonymize) | ({"body": anonymize.body.pad} if "body" in anonymize.targets else {})


def face_method(anonymize: AnonymizeParams) -> str:
    """The obfuscation the anonymizer applies to faces."""
    return anonymize.methods.get("face", anonymize.method)


def attack_config(
    *,
    check_quality: CheckQualityParams,
    anonymize: AnonymizeParams,
    face_sizes: tuple[int, int],
    method: str,
    seed: int,
) -> AttackConfig:
    """The re-identification attacker's settings for faces obfuscated by `method`."""
    p = check_quality
    return AttackConfig(
        method=method,
        options=method_options(anonymize),
        pad=anonymize.face.pad,
        gallery_side=p.reid_gallery_side,
        train_per_identity=p.reid_train_per_identity,
        face_sizes=face_sizes,
        feature_side=p.reid_feature_side,
        seed=seed,
    )


def compare_config(
    *, check_quality: CheckQualityParams, anonymize: AnonymizeParams, attack: AttackConfig, seed: int
) -> CompareConfig:
    """Sample sizes and settings of one method-comparison row."""
    p = check_quality
    return CompareConfig(
        anonymize=anonymize,
        attack=attack,
        probes=p.compare_probes,
        residual_images=p.compare_residual_images,
        text_images=p.compare_text_images,
        text_min_similarity=p.text_min_similarity,
        seed=seed,
        match_iou=p.match_iou,
        people_images=p.compare_people_images,
    )


def utility_train_ids(manifest: pd.DataFrame, *, images: int) -> set[str]:
    """The ids of an even sample of `images` train-split images the utility task model trains on."""
    ids = manifest.loc[manifest["split"] == "train", "id"].tolist()
    return {r["id"] for r in even_sample([{"id": i} for i in ids], images)}


def split_selection(manifest: pd.DataFrame, split: str, ids: set[str]) -> tuple[list[str], NDArray[np.int64]]:
    """The image paths and labels of `split`'s rows whose id is in `ids`, in manifest order."""
    rows = manifest[(manifest["split"] == split) & manifest["id"].isin(ids)]
    return rows["path"].tolist(), rows["label"].to_numpy(np.int64)
