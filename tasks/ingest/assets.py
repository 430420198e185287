"""Assets of the built-in dataset that ship inside installed packages (no download, no user data).

Backgrounds are photographs bundled in the scikit-image wheel; faces and non-face patches come from
scikit-image's LFW subset; digits from scikit-learn's bundled `load_digits`. Each loader is cached:
the assets are read-only constants, so caching them does not affect determinism.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import skimage.data
from numpy.typing import NDArray
from sklearn.datasets import load_digits

# Photographs bundled in the skimage 0.26 wheel, chosen to contain no human face and no text.
# Left out on purpose: astronaut, camera (people), text, page (text), coins (carved portraits a
# face detector may fire on), clock/cell (near-constant), retina (mostly black border).
BACKGROUND_NAMES: tuple[str, ...] = (
    "coffee",
    "chelsea",
    "rocket",
    "motorcycle_left",
    "motorcycle_right",
    "brick",
    "grass",
    "gravel",
    "moon",
    "hubble_deep_field",
    "immunohistochemistry",
)
N_FACES = 100  # lfw_subset()[0:100] are faces: index = identity
N_NONFACES = 100  # lfw_subset()[100:200] are non-face patches (hard negatives)


def _load_background(name: str) -> NDArray[np.uint8]:
    if name.startswith("motorcycle_"):
        left, right, _ = skimage.data.stereo_motorcycle()  # type: ignore[no-untyped-call]
        image = left if name.endswith("left") else right
    else:
        image = getattr(skimage.data, name)()
    image = np.asarray(image)
    if image.ndim == 2:
        image = np.repeat(image[:, :, None], 3, axis=2)
    return np.ascontiguousarray(image[:, :, :3], dtype=np.uint8)


@lru_cache(maxsize=1)
def backgrounds() -> tuple[NDArray[np.uint8], ...]:
    """Return the background photographs, each (H, W, 3) uint8 RGB, in `BACKGROUND_NAMES` order."""
    images = tuple(_load_background(name) for name in BACKGROUND_NAMES)
    for image in images:
        image.setflags(write=False)
    return images


@lru_cache(maxsize=1)
def lfw() -> NDArray[np.float32]:
    """Return scikit-image's LFW subset as (200, 25, 25) float32 in [0, 1]; 0..99 faces, 100..199 not."""
    patches = np.asarray(skimage.data.lfw_subset(), dtype=np.float32)  # type: ignore[no-untyped-call]
    patches.setflags(write=False)
    return patches


@lru_cache(maxsize=1)
def digits() -> tuple[NDArray[np.float32], NDArray[np.int64]]:
    """Return scikit-learn's handwritten digits: images (1797, 8, 8) float32 in [0, 1], labels (1797,)."""
    bunch = load_digits()
    images = np.asarray(bunch.images, dtype=np.float32) / 16.0
    labels = np.asarray(bunch.target, dtype=np.int64)
    images.setflags(write=False)
    labels.setflags(write=False)
    return images, labels
