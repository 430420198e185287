"""The identity attacks as check_quality runs them on the stage's own images: face crops cut from the raw and
anonymized images, an even sample of probes, and the stage metrics of the re-identification and linkage attacks.

Crops stay inside these functions and the attacks; only aggregate metrics leave them.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
from numpy.typing import NDArray

from tasks.check_quality.linkage import linkage_attack
from tasks.check_quality.reid import AttackConfig, Embeddings, attack, match
from tasks.types import Image

Embed = Callable[[Sequence[Image]], Embeddings]


def crop(image: Image, box: Sequence[int]) -> Image:
    """The contiguous (y1 - y0, x1 - x0, 3) crop of `box` = [x0, y0, x1, y1] (x1, y1 exclusive)."""
    x0, y0, x1, y1 = box
    return np.ascontiguousarray(image[y0:y1, x0:x1])


def identity_faces(faces: Sequence[Sequence[Any]]) -> list[tuple[Sequence[int], int]]:
    """(box, identity) of an image's ground-truth faces, given as (box, identity, text) triples."""
    return [(box, int(ident)) for box, ident, *_ in faces]


def probe_indices(n_faces: int, probes: int) -> NDArray[np.int64]:
    """An even, deterministic sample of at most `probes` indices among `n_faces`."""
    return np.linspace(0, n_faces - 1, min(probes, n_faces)).round().astype(np.int64)


def reid_metrics(
    raw_crops: Sequence[Image],
    anon_crops: Sequence[Image],
    identities: Sequence[int],
    *,
    probes: int,
    config: AttackConfig,
    embed: Embed,
    clear_gallery: Embeddings,
) -> dict[str, float]:
    """The three re-identification attacks on an even sample of the anonymized crops (`reid_*`), and the
    naive one on the same faces' raw crops (`reid_clear_naive_*`: what the attack achieves on clear faces).

    Args:
        raw_crops: N face crops of the raw images.
        anon_crops: the same N faces cut from the anonymized images.
        identities: (N,) the faces' identities, indices into `clear_gallery`.
        probes: at most this many faces are attacked (an even sample).
        config: the attacker's settings (`plan.attack_config`).
        embed: the face embedder.
        clear_gallery: (n_identities, 128) embeddings of the identities' clear faces.
    """
    sel, y = probe_indices(len(identities), probes), np.asarray(identities, np.int64)
    report = attack(
        [anon_crops[i] for i in sel], y[sel], config=config, embed=embed, clear_gallery=clear_gallery
    )
    clear = match(embed([raw_crops[i] for i in sel]), y[sel], clear_gallery, np.arange(len(clear_gallery)))
    return report.as_metrics("reid") | clear.as_metrics("reid_clear_naive")


def linkage_metrics(
    raw_crops: Sequence[Image],
    anon_crops: Sequence[Image],
    *,
    method: str,
    options: Mapping[str, Mapping[str, Any]],
    pad: float,
    embed: Embed,
    seed: int,
    from_ground_truth: bool,
) -> dict[str, float]:
    """The identity-free linkage attack (`linkage_*`) on N faces' raw and anonymized crops; with fewer than two
    faces only `check_quality/linkage_n_faces` (there is nothing to link)."""
    if len(raw_crops) < 2:
        return {"check_quality/linkage_n_faces": float(len(raw_crops))}
    result = linkage_attack(
        raw_crops, anon_crops, method=method, options=options, pad=pad, embed=embed, seed=seed
    )
    return result.as_metrics("linkage") | {
        "check_quality/linkage_from_ground_truth": float(from_ground_truth)
    }
