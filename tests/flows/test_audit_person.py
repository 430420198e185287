"""The audit flow's person level: identities of the audited images from the ingest ground truth (or a manifest
column), person-disjoint shadows for both targets, the person-level keys, and the report's gate on them."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import torch
from torch import nn

from flows import audit
from tasks.audit.experiments import Pool
from tasks.params import parse_params
from tasks.report.definitions import undefined

N_TRAIN, N_HOLDOUT = 48, 24


def _params(unit: str, k: int = 4) -> Any:
    # the shrunk integration config (tests/flows/conftest.py `shrink`) with K raised from 2: one held-out shadow
    # needs references that hold each image both IN and OUT
    return parse_params({"train": {"epochs": 2, "batch_size": 16, "dp": {"unit": unit}},
                         "audit": {"shadow": {"k": k, "fixed_variance": True}}})


@pytest.fixture
def workspace(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A manifest of 48 train and 24 holdout images; image i shows person i % 12 unless i % 6 == 0 (nobody known):
    10 persons, each in 4 train and 2 holdout images (split by image, as ingest does)."""
    monkeypatch.setenv("PRIVTRAIL_ROOT", str(tmp_path))
    ids = [f"img_{i}" for i in range(N_TRAIN + N_HOLDOUT)]
    (tmp_path / "data/anonymized").mkdir(parents=True)
    pd.DataFrame({"id": ids, "split": ["train"] * N_TRAIN + ["holdout"] * N_HOLDOUT,
                  "video": [f"v{i % 3}" for i in range(len(ids))]}).to_parquet(tmp_path / "data/anonymized/manifest.parquet")
    anns = [{"id": i + 1, "image_id": i + 1, "attributes": {"identity": i % 12}} for i in range(len(ids)) if i % 6]
    coco = {"images": [{"id": i + 1, "privtrail_id": f"img_{i}"} for i in range(len(ids))], "annotations": anns}
    (tmp_path / "data/raw").mkdir(parents=True)
    (tmp_path / "data/raw/annotations.json").write_text(json.dumps(coco))
    return tmp_path


def _pool() -> Pool:
    rng = np.random.default_rng(0)
    x = torch.from_numpy(rng.uniform(size=(N_TRAIN + N_HOLDOUT, 1, 4, 4)).astype(np.float32))
    y = torch.from_numpy(rng.integers(0, 3, N_TRAIN + N_HOLDOUT))
    return Pool.from_splits((x[:N_TRAIN], y[:N_TRAIN]), (x[N_TRAIN:], y[N_TRAIN:]),
                            ids=tuple(f"img_{i}" for i in range(N_TRAIN + N_HOLDOUT)))


class _Memory(nn.Module):
    """Confident on the images it trained on, unsure elsewhere: a target that leaks membership."""

    def __init__(self, x: torch.Tensor, y: torch.Tensor, strength: float) -> None:
        super().__init__()
        self.register_buffer("x", x.flatten(1))
        self.register_buffer("y", y)
        self.strength = strength

    def forward(self, q: torch.Tensor) -> torch.Tensor:
        d = torch.cdist(q.flatten(1), self.x)
        hit = d.min(1).values < 1e-6
        label = self.y[d.argmin(1)]
        noise = torch.sin(q.flatten(1).sum(1, keepdim=True) * torch.arange(1, 4) * 997)
        return noise + self.strength * hit[:, None] * nn.functional.one_hot(label, 3)


def _trainers(strength: dict[str, float]) -> dict[str, Any]:
    return {w: (lambda x, y, seed, s=s: _Memory(x, y, s)) for w, s in strength.items()}


def test_audit_with_unit_person_reports_person_level_lira_for_both_models(workspace: Path,
                                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    from tasks.audit import experiments

    monkeypatch.setattr(experiments, "PERSON_BOOTSTRAP", 100)  # the intervals' resamples: fewer, for speed
    params, pool = _params("person"), _pool()
    units = audit.person_units(params, pool)
    assert units is not None and len(units) == len(pool.x)
    assert units[1] == ("1",) and units[0] == () and units[N_TRAIN + 1] == ("1",)  # a person in train and holdout
    targets = {"dp": nn.Identity(), "nonprivate": nn.Identity()}  # person-level LiRA attacks models trained like them
    metrics = audit.person_membership(targets, _trainers({"dp": 0.0, "nonprivate": 8.0}), pool, units, params.audit,
                                      seed=0, device="cpu")
    for which in ("dp", "nonprivate"):
        for attack in ("lira_online", "lira_offline"):
            for field in ("auc", "auc_ci_low", "auc_ci_high", "tpr_at_1pct_fpr", "n_members", "n_member_persons"):
                assert f"audit/{which}/person/{attack}/{field}" in metrics
        assert metrics[f"audit/{which}/person/n_persons"] == 10
        assert metrics[f"audit/{which}/person/lira_online/n_models"] == 4
    assert metrics["audit/nonprivate/person/lira_online/auc"] > 0.9  # the memorising baseline gives its persons away
    assert metrics["audit/dp/person/lira_online/auc"] < 0.8  # the model that learns nothing does not
    assert undefined(metrics) == []
    assert not any(k.startswith("audit/dp/lira") for k in metrics)  # the image-level keys are left as they were

    from tasks.report.compliance import gate_values
    from tasks.report.gates import PERSON_LIRA_SPEC

    values = gate_values({"audit": metrics}, {}, {}, {"quarantined": 0, "ingested": 1})
    assert values[PERSON_LIRA_SPEC.value_key] == max(metrics["audit/dp/person/lira_online/auc"],
                                                     metrics["audit/dp/person/lira_offline/auc"])
    from tasks.params import Gates
    from tasks.report.gates import evaluate_gates

    per_person = {g.name: g for g in evaluate_gates(Gates(), values | {"dp/unit_problems": 0.0})}
    gate = per_person["max_person_lira_auc_dp"]
    assert gate.value == values[PERSON_LIRA_SPEC.value_key] and gate.interval is not None
    assert gate.interval.n == metrics["audit/dp/person/lira_online/n_members"]  # (person, held-out model) trials
    assert "max_person_lira_auc_dp" not in {g.name for g in evaluate_gates(Gates(), values)}  # per image: no gate


def test_audit_person_units_follow_the_runs_unit(workspace: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pool = _pool()
    assert audit.person_units(_params("image"), pool) is None  # per image: no person level
    video = audit.person_units(_params("video"), pool)
    assert video is not None and video[4] == ("v1",)
    warned: list[str] = []

    class Log:
        def warning(self, msg: str, *args: object) -> None:
            warned.append(msg % args)

    monkeypatch.setattr(audit, "get_run_logger", lambda: Log())
    shrunk = _params("person", k=2)  # the shrunk integration config: K = 2 cannot hold one shadow out
    units = audit.person_units(shrunk, pool)
    assert units is not None
    assert audit.person_membership({"dp": nn.Identity()}, _trainers({"dp": 0.0}), pool, units, shrunk.audit,
                                   seed=0, device="cpu") == {}
    assert "audit.shadow.k >= 4" in warned[0]
