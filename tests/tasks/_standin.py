"""Stand-in for the `builtin` dataset, built at run time: a photo crop, a light placard holding one
real sklearn handwritten digit (8x8 upscaled to 28-56 px) at a random position, a few dark blobs.

Not a test module (no `test_` prefix); `from tests.tasks._standin import make_standin` in tests/tasks/test_train*.py and test_audit*.py.
"""

from __future__ import annotations

import cv2
import numpy as np
from numpy.typing import NDArray
from skimage import data as skdata
from sklearn.datasets import load_digits

_PHOTOS = ("coffee", "chelsea", "rocket", "brick", "grass", "gravel", "coins", "moon")


def _backgrounds() -> list[NDArray[np.uint8]]:
    out = []
    for name in _PHOTOS:
        img = getattr(skdata, name)()
        if img.ndim == 2:
            img = np.stack([img] * 3, axis=-1)
        out.append(np.ascontiguousarray(img[..., :3]).astype(np.uint8))
    return out


def make_standin(n: int, *, seed: int, size: int = 256) -> tuple[NDArray[np.uint8], NDArray[np.int64]]:
    """Return `n` images (n, size, size, 3) uint8 and their digit labels (n,) int64."""
    rng = np.random.default_rng(seed)
    digits = load_digits()
    backs = _backgrounds()
    images = np.empty((n, size, size, 3), np.uint8)
    labels = np.empty(n, np.int64)
    for i in range(n):
        back = backs[rng.integers(len(backs))]
        y0 = rng.integers(back.shape[0] - size + 1)
        x0 = rng.integers(back.shape[1] - size + 1)
        img = back[y0 : y0 + size, x0 : x0 + size].copy()
        for _ in range(rng.integers(0, 4)):  # dark distractor blobs
            c = (int(rng.integers(size)), int(rng.integers(size)))
            cv2.circle(img, c, int(rng.integers(6, 20)), (int(rng.integers(0, 60)),) * 3, -1)
        k = int(rng.integers(len(digits.target)))
        side = int(rng.integers(28, 57))
        glyph = cv2.resize(digits.images[k] / 16.0, (side, side), interpolation=cv2.INTER_LINEAR)
        pad = side // 4
        py, px = (int(v) for v in rng.integers(0, size - side - 2 * pad, size=2))
        placard = np.full((side + 2 * pad, side + 2 * pad), rng.uniform(200, 250))
        placard[pad : pad + side, pad : pad + side] *= 1.0 - 0.85 * glyph
        img[py : py + side + 2 * pad, px : px + side + 2 * pad] = placard[..., None].astype(np.uint8)
        images[i] = img
        labels[i] = digits.target[k]
    return images, labels
