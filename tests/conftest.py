"""Shared fixtures: the real params shrunk, seeded rngs, a fake detector with known boxes."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from tasks.params import Params, parse_params
from tasks.types import Detections

REPO = Path(__file__).resolve().parents[1]


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs CUDA")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(scope="session", autouse=True)
def _quiet_env(tmp_path_factory: pytest.TempPathFactory) -> None:
    os.environ.setdefault("PREFECT_HOME", str(tmp_path_factory.mktemp("prefect-home")))
    for k, v in {"PREFECT_SERVER_ANALYTICS_ENABLED": "false", "MLFLOW_DISABLE_TELEMETRY": "true",
                 "GX_ANALYTICS_ENABLED": "false", "DVC_NO_ANALYTICS": "1", "DO_NOT_TRACK": "1"}.items():
        os.environ.setdefault(k, v)


@pytest.fixture
def raw_params() -> dict:
    return yaml.safe_load((REPO / "params.yaml").read_text())


@pytest.fixture
def params(raw_params: dict) -> Params:
    """The real params.yaml, shrunk for tests."""
    raw_params["ingest"]["n_images"] = 64
    raw_params["train"]["epochs"] = 2
    raw_params["train"]["batch_size"] = 16
    return parse_params(raw_params)


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(0)


class FakeDetector:
    """Returns the same known boxes for every image; records how often it was called."""

    def __init__(self, boxes: list[list[int]], category: str = "face") -> None:
        self.boxes = np.asarray(boxes, dtype=np.int64).reshape(-1, 4)
        self.category = category
        self.calls = 0

    def __call__(self, image: np.ndarray) -> Detections:
        self.calls += 1
        n = len(self.boxes)
        return Detections(self.boxes.copy(), np.ones(n, np.float32), (self.category,) * n)


@pytest.fixture
def fake_detector() -> FakeDetector:
    return FakeDetector([[10, 10, 40, 40]])
