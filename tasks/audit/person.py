"""Membership inference at the person level: "was this *person* in the training data?"

A per-image attack (LiRA, Carlini et al. 2022) scores each audited image by the log-likelihood ratio of the
target's confidence on it under IN vs OUT. A person is a member when at least one of their images trained the
model, a non-member when none did. Their score is the sum of their audited images' log-likelihood ratios: under
independent images that is the likelihood-ratio test of the person (Neyman–Pearson), the aggregation of user
inference (Kandpal et al. 2023, "User Inference Attacks on Large Language Models"). An image of several
people counts for each of them. Person-level DP bounds this attack as image-level DP bounds LiRA per image.

Pure: per-image scores and id mappings in, an `AttackResult` out.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence

import numpy as np
from numpy.typing import NDArray

from tasks.audit.mia import AttackResult, score_attack
from tasks.errors import InvalidInputError


def person_scores(image_scores: NDArray[np.floating], image_units: Sequence[Collection[str]]) -> dict[str, float]:
    """Each person's score: the sum of the scores (log-likelihood ratios) of the audited images they appear in.

    Args:
        image_scores: (N,) finite per-image scores, higher = more likely a member.
        image_units: N collections of the persons in each image (empty: nobody known, left out).
    Raises:
        InvalidInputError: lengths that differ, or a non-finite score.
    """
    scores = np.asarray(image_scores, dtype=np.float64)
    if scores.ndim != 1 or len(scores) != len(image_units):
        raise InvalidInputError(f"person_scores: {scores.shape} scores for {len(image_units)} images")
    if not np.all(np.isfinite(scores)):
        raise InvalidInputError("person_scores: scores must be finite")
    out: dict[str, float] = {}
    for score, people in zip(scores, image_units, strict=True):
        for person in people:
            out[person] = out.get(person, 0.0) + float(score)
    return out


def person_attack(image_scores: NDArray[np.floating], image_units: Sequence[Collection[str]],
                  members: Collection[str], *, name: str) -> AttackResult:
    """The person-level attack: members' and non-members' person scores, summarised like a per-image attack.

    Args:
        image_scores, image_units: as `person_scores` (the audited images: members' and held-out ones).
        members: the persons with at least one training image.
        name: recorded in the result (e.g. "lira_online_person").
    Raises:
        InvalidInputError: no member or no non-member person among the audited images (e.g. splits that share
            every identity between train and holdout: person membership is then not measurable).
    """
    per_person = person_scores(image_scores, image_units)
    inside = [s for p, s in per_person.items() if p in members]
    outside = [s for p, s in per_person.items() if p not in members]
    if not inside or not outside:
        raise InvalidInputError(f"{name}: {len(inside)} member and {len(outside)} non-member persons among the "
                                "audited images; person membership needs both (identity-disjoint splits)")
    return score_attack(np.asarray(inside), np.asarray(outside), name=name)


def audited_members(units: Mapping[str, Collection[str]], trained: Collection[str]) -> set[str]:
    """The persons with at least one image in `trained` (image id → its persons in `units`)."""
    return {p for image in trained for p in units.get(image, ())}
