"""`replace`: k-Same face replacement (Newton, Sweeney & Malin 2005), blended by Poisson cloning.

The pool of faces is partitioned once, as in k-Same, into groups of at least `k` faces each (greedy:
take the first remaining face and its k−1 nearest remaining neighbours; leftovers join the group with
the nearest mean). A detected face is replaced by the *mean of the group* whose mean is nearest to it
(after a resize to the pool's 25×25 and per-face normalisation), blended into the box with
`cv2.seamlessClone` (Pérez et al. 2003) so the surrogate takes the lighting of its surroundings.

Guarantee (k-Same): every surrogate is the pixel mean of ≥ k pool faces and is shared by all of them,
so a recogniser that matches the output against the pool cannot tell which of ≥ k pool people it
came from (recognition rate ≤ 1/k); k ≥ 2, so no pool face is ever returned unchanged. The input
face's pixels never enter the output; the only thing the output reveals about the input is which of
the ⌊P/k⌋ groups it was nearest to. The per-query variant (mean of the k nearest pool faces to each
input) was rejected: its averages are not shared, so they reveal more (which k-subset was nearest).

What it does not give: protection for a person who is also in the pool. Their own face contributes
1/k of the surrogate of their group. The default pool is scikit-image's LFW subset — the very faces
the builtin dataset pastes (identities 0–99), since no other face set ships offline — so on the
builtin data every input face *is* in the pool: use `replace` there to measure, not to protect.
With a pool of consenting strangers the caveat does not apply.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
from numpy.typing import NDArray

from tasks.errors import InvalidInputError
from tasks.types import Image

_MIN_CLONE = 8  # boxes narrower than this get the surrogate pasted directly (too small to clone)


@dataclass(frozen=True)
class FacePool:
    """k-Same surrogates of a face pool.

    Attributes:
        means: (G, S, S) float32 in [0, 1], each the pixel mean of one group.
        groups: G tuples of pool indices, each of length >= k; together a partition of the pool.
        k: the minimum group size.
    """

    means: NDArray[np.float32]
    groups: tuple[tuple[int, ...], ...]
    k: int

    def nearest(self, face: NDArray[np.float32]) -> int:
        """Index of the group whose mean is nearest to `face` ((S, S) grey, any range), after normalising both."""
        dist = ((_normalise(self.means) - _normalise(face[None])) ** 2).sum(axis=(1, 2))
        return int(np.argmin(dist))


def _normalise(faces: NDArray[np.floating]) -> NDArray[np.float32]:
    """(N, S, S) → zero mean, unit std per face, so lighting does not dominate the distance."""
    f = faces.astype(np.float32)
    f = f - f.mean(axis=(1, 2), keepdims=True)
    return np.asarray(f / (f.std(axis=(1, 2), keepdims=True) + 1e-6), np.float32)


def build_pool(faces: NDArray[np.floating], *, k: int) -> FacePool:
    """Partition `faces` into k-Same groups of >= k and average each group.

    Args:
        faces: (P, S, S) grey faces in [0, 1].
        k: minimum group size, 2 <= k <= P.
    Raises:
        InvalidInputError: not (P, S, S), or k outside [2, P].
    """
    if faces.ndim != 3 or faces.shape[1] != faces.shape[2]:
        raise InvalidInputError(f"face pool: expected (P, S, S) grey faces, got {faces.shape}")
    if not 2 <= k <= len(faces):
        raise InvalidInputError(f"replace k: must be in [2, {len(faces)}] (the pool size), got {k}")
    flat = _normalise(faces).reshape(len(faces), -1)
    remaining, groups = list(range(len(faces))), []
    while len(remaining) >= k:
        d = ((flat[remaining] - flat[remaining[0]]) ** 2).sum(axis=1)
        group = [remaining[i] for i in np.argsort(d, kind="stable")[:k]]
        groups.append(group)
        remaining = [i for i in remaining if i not in group]
    for i in remaining:  # fewer than k left: each joins the group with the nearest mean
        means = np.stack([flat[g].mean(axis=0) for g in groups])
        groups[int(np.argmin(((means - flat[i]) ** 2).sum(axis=1)))].append(i)
    means = np.stack([faces[g].mean(axis=0) for g in groups]).astype(np.float32)
    return FacePool(means, tuple(tuple(sorted(g)) for g in groups), k)


def lfw_pool(*, k: int) -> FacePool:
    """The default pool: scikit-image's bundled LFW faces (indices 0–99; the builtin dataset's identities)."""
    import skimage.data

    return build_pool(np.asarray(skimage.data.lfw_subset()[:100], np.float32), k=k)  # type: ignore[no-untyped-call]


def surrogate(pool: FacePool, region: Image) -> NDArray[np.uint8]:
    """The k-Same surrogate for one (h, w, 3) uint8 face region, as (h, w, 3) uint8 grey."""
    h, w = region.shape[:2]
    side = pool.means.shape[1]
    grey = cv2.resize(cv2.cvtColor(region, cv2.COLOR_RGB2GRAY), (side, side), interpolation=cv2.INTER_AREA)
    mean = pool.means[pool.nearest(grey.astype(np.float32))]
    face = cv2.resize(np.clip(mean * 255, 0, 255).astype(np.uint8), (w, h), interpolation=cv2.INTER_CUBIC)
    return np.repeat(face[..., None], 3, axis=2)


def replace_region(out: Image, box: NDArray[np.int64], pool: FacePool) -> None:
    """Replace `out[box]` in place by its k-Same surrogate, Poisson-blended; pixels outside the box are kept."""
    x0, y0, x1, y1 = (int(v) for v in box)
    face = surrogate(pool, out[y0:y1, x0:x1])
    if min(x1 - x0, y1 - y0) < _MIN_CLONE:
        out[y0:y1, x0:x1] = face
        return
    # The clone's mask reaches `grow` px beyond the box (seamlessClone erodes it by one), so every box
    # pixel is solved and the Poisson boundary lies outside the box. The image is padded so the clone
    # never touches its border (seamlessClone fails there); only the box is copied back.
    grow, pad = 3, 5
    src = cv2.copyMakeBorder(face, grow, grow, grow, grow, cv2.BORDER_REFLECT)
    mask = np.zeros(src.shape[:2], np.uint8)
    mask[1:-1, 1:-1] = 255
    dst = cv2.copyMakeBorder(out, pad, pad, pad, pad, cv2.BORDER_REFLECT)
    center = (pad + x0 + (x1 - x0) // 2, pad + y0 + (y1 - y0) // 2)
    blended = cv2.seamlessClone(src, dst, mask, center, cv2.NORMAL_CLONE)
    out[y0:y1, x0:x1] = blended[pad + y0 : pad + y1, pad + x0 : pad + x1]
