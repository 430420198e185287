"""Types shared by the stages: images, detections, the ground-truth categories."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
from numpy.typing import NDArray

from tasks.errors import InvalidInputError

Image = NDArray[np.uint8]  # (H, W, 3) uint8, RGB

# COCO categories of the ground truth written by ingest. `text_pii` and `text_nonpii` are both
# text; only the first must be redacted under text policy `pii`. `placard` holds the task's digit.
COCO_CATEGORIES: tuple[dict[str, object], ...] = (
    {"id": 1, "name": "face", "supercategory": "person", "sensitive": True},
    {"id": 2, "name": "body", "supercategory": "person", "sensitive": True},
    {"id": 3, "name": "plate", "supercategory": "vehicle", "sensitive": True},
    {"id": 4, "name": "text_pii", "supercategory": "text", "sensitive": True},
    {"id": 5, "name": "text_nonpii", "supercategory": "text", "sensitive": False},
    {"id": 6, "name": "placard", "supercategory": "task", "sensitive": False},
)
CATEGORY_ID: dict[str, int] = {str(c["name"]): int(str(c["id"])) for c in COCO_CATEGORIES}
SPLITS: tuple[str, ...] = ("train", "holdout", "test")


Box = tuple[int, int, int, int]  # x0, y0, x1, y1 in pixels; x1, y1 exclusive: image[y0:y1, x0:x1]


@dataclass(frozen=True)
class Annotation:
    """One ground-truth element of an image (the builtin generator's, or a COCO import's).

    Attributes:
        category: a name of `tasks.types.COCO_CATEGORIES`: face, plate, text_pii, text_nonpii, placard.
        box: (x0, y0, x1, y1) pixels, x1/y1 exclusive, tight around what was drawn, inside the image.
        identity: for faces, the LFW index 0..99 (the same person in every image it appears in).
        text: for plates and text, the rendered string; for the placard, its digit.
    """

    category: str
    box: Box
    identity: int | None = None
    text: str | None = None


@dataclass(frozen=True)
class Detections:
    """Boxes found in one image.

    Attributes:
        boxes: (N, 4) int64 [x0, y0, x1, y1] in pixels, clipped to the image.
        scores: (N,) float32 in [0, 1].
        category: (N,) names, one of face / body / plate / text.
        text: (N,) recognised strings ("" where not applicable).
    """

    boxes: NDArray[np.int64]
    scores: NDArray[np.float32]
    category: tuple[str, ...]
    text: tuple[str, ...] = field(default=())

    def __post_init__(self) -> None:
        n = len(self.category)
        if self.boxes.shape != (n, 4) or self.scores.shape != (n,):
            raise InvalidInputError(
                f"Detections: boxes {self.boxes.shape}, scores {self.scores.shape}, {n} categories disagree"
            )
        if self.text and len(self.text) != n:
            raise InvalidInputError(f"Detections: {len(self.text)} texts for {n} boxes")

    @staticmethod
    def empty() -> Detections:
        return Detections(np.zeros((0, 4), np.int64), np.zeros((0,), np.float32), ())

    def __len__(self) -> int:
        return len(self.category)

    def select(self, keep: NDArray[np.bool_]) -> Detections:
        """Return the detections where `keep` is True."""
        idx = np.flatnonzero(keep)
        return Detections(
            self.boxes[idx],
            self.scores[idx],
            tuple(self.category[i] for i in idx),
            tuple(self.text[i] for i in idx) if self.text else (),
        )

    @staticmethod
    def concat(parts: list[Detections]) -> Detections:
        parts = [p for p in parts if len(p)]
        if not parts:
            return Detections.empty()
        texts = [p.text if p.text else ("",) * len(p) for p in parts]
        return Detections(
            np.concatenate([p.boxes for p in parts]).astype(np.int64),
            np.concatenate([p.scores for p in parts]).astype(np.float32),
            tuple(c for p in parts for c in p.category),
            tuple(t for tt in texts for t in tt),
        )


Detector = Callable[[Image], Detections]  # injected; tests pass a fake


def check_image(image: object, *, name: str = "image", min_side: int = 0) -> Image:
    """Return `image` if it is an (H, W, 3) uint8 array with both sides >= `min_side`, else raise
    InvalidInputError naming it. The one image validator of the pure layer."""
    if not isinstance(image, np.ndarray) or image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
        desc = f"{image.dtype} {image.shape}" if isinstance(image, np.ndarray) else type(image).__name__
        raise InvalidInputError(f"{name}: expected an (H, W, 3) uint8 RGB array, got {desc}")
    if min(image.shape[:2]) < min_side:
        raise InvalidInputError(
            f"{name}: image must be at least {min_side}x{min_side}, got {image.shape[:2]}"
        )
    return image
