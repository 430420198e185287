"""What anonymization costs the task: a model trained once on vanilla (raw) train images, evaluated on
raw vs anonymized test images (accuracy ratio), and detections that should survive it.

The task model is the train stage's non-private model (`tasks.train`: its feature front end and
architecture from `TrainParams`), trained here on the *raw* train split, so the ratio isolates what the
anonymizer did to the test images, not what it did to the training set.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from numpy.typing import NDArray

from tasks.boxes import iou_matrix
from tasks.errors import InvalidInputError
from tasks.params import TrainParams
from tasks.train.dp import evaluate, predict_logits, train_nonprivate
from tasks.train.preprocess import prepare_inputs
from tasks.types import Detections, Detector, Image


def task_inputs(images: Sequence[Image], *, train: TrainParams) -> torch.Tensor:
    """The task model's inputs for N (H, W, 3) uint8 images (`train.features` front end, `input_size`)."""
    return prepare_inputs(images, features=train.features, input_size=train.input_size)


def train_task_model(
    x: torch.Tensor, y: NDArray[np.int64], *, train: TrainParams, seed: int, num_classes: int | None = None
) -> torch.nn.Module:
    """Train the non-private task model (`train.model`, epochs, batch size, `nonprivate_lr`) on `x`, `y`.

    Args:
        x: (N, C, s, s) float32 from `task_inputs` of the raw train images; y: (N,) int labels.
        num_classes: the data's label count (None: the largest label + 1).
    Raises:
        InvalidInputError: what `train_nonprivate` raises on bad shapes.
    """
    labels = torch.from_numpy(np.array(y, np.int64))
    result = train_nonprivate(
        x,
        labels,
        model_name=train.model,
        epochs=train.epochs,
        batch_size=min(train.batch_size, len(x)),
        lr=train.nonprivate_lr,
        momentum=train.momentum,
        seed=seed,
        num_classes=num_classes,
    )
    return result.model.eval()


def accuracy(model: torch.nn.Module, x: torch.Tensor, y: NDArray[np.int64]) -> float:
    """Top-1 accuracy of the task model on inputs `x` (N, C, s, s) with labels `y` (N,)."""
    return evaluate(model, x, torch.from_numpy(np.array(y, np.int64)))


@dataclass(frozen=True)
class UtilityResult:
    """Task accuracy on the same test images, raw and anonymized.

    Attributes:
        raw_accuracy / anon_accuracy: top-1 accuracy of the vanilla-trained model.
        n_images: test images evaluated.
        discordant: test images classified right on one version and wrong on the other (the paired
            interval of the ratio needs it); None when only the two accuracies are known.
    """

    raw_accuracy: float
    anon_accuracy: float
    n_images: int
    discordant: int | None = None

    @property
    def ratio(self) -> float:
        """anon_accuracy / raw_accuracy (NaN when the raw accuracy is 0)."""
        return self.anon_accuracy / self.raw_accuracy if self.raw_accuracy > 0 else float("nan")

    def as_metrics(self, prefix: str = "utility") -> dict[str, float]:
        """`check_quality/<prefix>_{raw_accuracy,anon_accuracy,ratio,n_images}`."""
        return {
            f"check_quality/{prefix}_raw_accuracy": self.raw_accuracy,
            f"check_quality/{prefix}_anon_accuracy": self.anon_accuracy,
            f"check_quality/{prefix}_ratio": self.ratio,
            f"check_quality/{prefix}_n_images": float(self.n_images),
            f"check_quality/{prefix}_discordant_share": (
                float("nan")
                if self.discordant is None or not self.n_images
                else self.discordant / self.n_images
            ),
        }


def paired_utility(
    model: torch.nn.Module, x_raw: torch.Tensor, x_anon: torch.Tensor, y: NDArray[np.int64]
) -> UtilityResult:
    """Accuracy of `model` on the raw and the anonymized version of the same N test images, and on how many
    of them the two outcomes differ (the ratio's paired interval rests on it).

    Args:
        x_raw, x_anon: (N, C, s, s) inputs of the same images, in the same order; y: (N,) labels.
    Raises:
        InvalidInputError: the three do not hold the same N.
    """
    if not len(x_raw) == len(x_anon) == len(y):
        raise InvalidInputError(
            f"paired_utility: {len(x_raw)} raw, {len(x_anon)} anonymized inputs, {len(y)} labels"
        )
    labels = torch.from_numpy(np.array(y, np.int64))
    right_raw = predict_logits(model, x_raw).argmax(1) == labels
    right_anon = predict_logits(model, x_anon).argmax(1) == labels
    n = len(labels)
    return UtilityResult(
        float(right_raw.float().mean()) if n else float("nan"),
        float(right_anon.float().mean()) if n else float("nan"),
        n,
        int((right_raw != right_anon).sum()),
    )


def preserved(raw: Detections, anon: Detections, *, match_iou: float) -> tuple[int, int]:
    """How many detections on the raw image are found again on the anonymized one (same category, IoU).

    Returns:
        (preserved, total raw detections).
    Raises:
        InvalidInputError: `match_iou` outside (0, 1].
    """
    if not 0 < match_iou <= 1:
        raise InvalidInputError(f"match_iou: must be in (0, 1], got {match_iou}")
    kept = 0
    for cat in set(raw.category):
        a = raw.boxes[np.array([c == cat for c in raw.category], bool)]
        b = anon.boxes[np.array([c == cat for c in anon.category], bool)].reshape(-1, 4)
        if len(b):
            kept += int((iou_matrix(a, b).max(axis=1) >= match_iou).sum())
    return kept, len(raw)


def load_task_model(
    state: dict[str, torch.Tensor],
    *,
    train: TrainParams,
    num_classes: int,
    seed: int,
    in_shape: tuple[int, int, int] | None = None,
) -> torch.nn.Module:
    """Rebuild the task model (`train.model`) from its state dict, in eval mode (`in_shape`: (C, H, W) of
    one input, which a user's model factory needs)."""
    from tasks.train.models import build_model

    model = build_model(train.model, num_classes=num_classes, seed=seed, in_shape=in_shape)
    model.load_state_dict(state)
    return model.eval()


def body_detector(options: dict[str, object]) -> Detector:
    """The anonymizer's body detector (`BodyDetectorParams` fields), used here to check bodies survive."""
    from tasks.anonymize.detectors import BodyDetector

    return BodyDetector(**options)  # type: ignore[arg-type]


def measure_utility(
    train_images: Sequence[Image],
    train_labels: NDArray[np.int64],
    raw_test: Sequence[Image],
    anon_test: Sequence[Image],
    test_labels: NDArray[np.int64],
    *,
    train: TrainParams,
    seed: int,
    num_classes: int,
) -> tuple[dict[str, Any], dict[str, float]]:
    """Train the task model once on raw train images; its accuracy on the raw vs anonymized test images.

    Returns:
        (spec, metrics): the trained model as `model_from_spec` rebuilds it (`state` on the CPU,
        `num_classes`, `in_shape` (C, H, W)), and the `utility_*` metrics of `paired_utility`.
    """
    x_train = task_inputs(train_images, train=train)
    model = train_task_model(x_train, train_labels, train=train, seed=seed, num_classes=num_classes)
    result = paired_utility(
        model, task_inputs(raw_test, train=train), task_inputs(anon_test, train=train), test_labels
    )
    state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
    in_shape = (int(x_train.shape[1]), int(x_train.shape[2]), int(x_train.shape[3]))
    return {"state": state, "num_classes": num_classes, "in_shape": in_shape}, result.as_metrics("utility")


def model_from_spec(
    spec: Mapping[str, Any] | None, *, train: TrainParams, seed: int
) -> torch.nn.Module | None:
    """The task model `measure_utility` trained, rebuilt in eval mode; None without one (no labels)."""
    if spec is None:
        return None
    return load_task_model(
        spec["state"], train=train, num_classes=spec["num_classes"], seed=seed, in_shape=spec["in_shape"]
    )
