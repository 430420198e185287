"""The data inventory of the report: sources, counts, DVC digests of every dataset, retention status."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

# dataset role → (params.paths key, the stage whose dvc.lock out it is, what it holds, personal data?)
DATASETS: dict[str, tuple[str, str, str, bool]] = {
    "raw": (
        "raw",
        "ingest",
        "raw images as ingested (people, plates, personal text), manifest, ground truth",
        True,
    ),
    "anonymized": (
        "anonymized",
        "anonymize",
        "anonymized images, per-image detection/action records, quarantine list",
        False,
    ),
    "models": ("models", "train", "DP model, non-private baseline (audit only), DP mechanism record", False),
}


def _lock_out(lock_stages: Mapping[str, Any], stage: str, path: str) -> Mapping[str, Any]:
    return next((o for o in lock_stages.get(stage, {}).get("outs", []) if o.get("path") == path), {})


def data_inventory(
    *,
    source: Mapping[str, Any],
    metrics: Mapping[str, Mapping[str, float]],
    lock_stages: Mapping[str, Any],
    paths: Mapping[str, str],
    retention: Mapping[str, Any],
) -> dict[str, Any]:
    """Assemble the inventory section of compliance.json (no file access: the flow passes everything in).

    Args:
        source: {"kind": "builtin" | "folder", "location": str | None}, from params.ingest.
        metrics: each stage's metrics (reports/metrics/<stage>.json).
        lock_stages: dvc.lock's `stages` mapping (digests of every output; {} before the first `dvc repro`).
        paths: params.paths as a dict.
        retention: RetentionStatus.as_dict() of the raw data.
    """
    ingest, anonymize = metrics.get("ingest", {}), metrics.get("anonymize", {})
    counts = {
        k: int(ingest[f"ingest/{k}"])
        for k in ("n_inputs", "n_ingested", "n_quarantined", "n_train", "n_holdout", "n_test")
        if f"ingest/{k}" in ingest
    }
    counts |= {
        f"anonymize_{k}": int(anonymize[f"anonymize/{k}"])
        for k in ("processed", "quarantined")
        if f"anonymize/{k}" in anonymize
    }
    datasets = []
    for role, (key, stage, holds, personal) in DATASETS.items():
        out = _lock_out(lock_stages, stage, paths[key])
        datasets.append(
            {
                "role": role,
                "path": paths[key],
                "stage": stage,
                "holds": holds,
                "personal_data": personal,
                "md5": out.get("md5"),
                "nfiles": out.get("nfiles"),
                "size": out.get("size"),
            }
        )
    return {"sources": [dict(source)], "counts": counts, "datasets": datasets, "retention": dict(retention)}
