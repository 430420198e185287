"""Membership inference at the person level: "was this *person* in the training data?"

A per-image attack (LiRA, Carlini et al. 2022) scores each audited image by the log-likelihood ratio of the
target's confidence on it under IN vs OUT. A person is a member when at least one of their images trained the
model, a non-member when none did. Their score is the sum of their audited images' log-likelihood ratios: under
independent images that is the likelihood-ratio test of the person (Neyman–Pearson), the aggregation of user
inference (Kandpal et al. 2023, "User Inference Attacks on Large Language Models"). An image of several
people counts for each of them. Person-level DP bounds this attack as image-level DP bounds LiRA per image.

The released model's train / holdout split is by image, so on data that repeats people hardly anyone is OUT of
it. The audit therefore attacks models trained like it on *person-disjoint* splits (`person_membership_matrix`:
persons are sampled, an image trains a shadow only when all its persons are IN), each held out in turn with the
others as its references (`leave_one_out_trials`, Carlini et al.'s evaluation protocol), and resamples persons
for the intervals (`bootstrap_intervals`). With few shadows (K = 8) the reference means are noisy, and a person
IN the held-out model has one IN reference fewer than one OUT of it: online scores carry a small-K bias of
either sign; the offline variant's is symmetric. Both are reported; the gate reads the worse.

Pure: per-image scores and id mappings in, an `AttackResult` out.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
from numpy.typing import NDArray

from tasks.audit.mia import AttackResult, score_attack
from tasks.errors import InvalidInputError
from tasks.train.person import bound_contributions


def person_scores(
    image_scores: NDArray[np.floating], image_units: Sequence[Collection[str]]
) -> dict[str, float]:
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


def person_attack(
    image_scores: NDArray[np.floating],
    image_units: Sequence[Collection[str]],
    members: Collection[str],
    *,
    name: str,
) -> AttackResult:
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
        raise InvalidInputError(
            f"{name}: {len(inside)} member and {len(outside)} non-member persons among the "
            "audited images; person membership needs both (identity-disjoint splits)"
        )
    return score_attack(np.asarray(inside), np.asarray(outside), name=name)


def audited_members(units: Mapping[str, Collection[str]], trained: Collection[str]) -> set[str]:
    """The persons with at least one image in `trained` (image id → its persons in `units`)."""
    return {p for image in trained for p in units.get(image, ())}


# ---------------------------------------------------------------- person-disjoint shadows, leave-one-out LiRA

# one shadow held out, each person must be IN and OUT of a reference: IN >= 2 and OUT >= 2 of K shadows
MIN_SHADOWS = 4
OWN_UNIT = "image#"  # an audited image that shows no known person is its own unit in the shadows' split


def _units_of(image_units: Sequence[Collection[str]]) -> list[tuple[str, ...]]:
    """Each image's units for the split: its persons, or the image itself (by position) when it shows none."""
    return [
        tuple(sorted(set(people))) if people else (f"{OWN_UNIT}{i}",) for i, people in enumerate(image_units)
    ]


def person_membership_matrix(
    image_units: Sequence[Collection[str]], k: int, *, seed: int, size: int | None = None, margin: int = 1
) -> NDArray[np.bool_]:
    """(K, N) bool: which of N pool images each of K shadows trains on, drawn by person, not by image.

    Persons (and images of nobody known, each its own unit) are dealt like `tasks.audit.shadow.membership_matrix`
    deals images: in a random order, each to c consecutive shadows of K, so each is IN c shadows and OUT of the
    other K − c (c = K // 2, or round(K · size / N) for shadows the target's size; clipped to [margin, K − margin]:
    holding one shadow out as the attacked model, `margin` 2 leaves every person IN and OUT of a reference). An image
    trains a shadow only when every person in it is IN that shadow: a person OUT of a shadow has no image in it,
    so "person OUT" means what it says (person-disjoint IN / OUT).

    Args:
        image_units: N collections of the persons in each pool image (empty: nobody known).
        k: shadow models; seed: the draw; size: the target's training-set size in images.
        margin: the fewest shadows each person is IN, and OUT of.
    Raises:
        InvalidInputError: k < 2 · margin, margin < 1, fewer than 2 units, or size outside [1, N].
    """
    units = _units_of(image_units)
    names = sorted({u for us in units for u in us})
    if margin < 1 or k < 2 * margin or len(names) < 2:
        raise InvalidInputError(
            f"person_membership_matrix: need k >= {2 * max(margin, 1)} shadow models (margin "
            f"{margin} >= 1) and >= 2 persons or images, got k={k}, {len(names)}"
        )
    n = len(units)
    if size is not None and not 1 <= size <= n:
        raise InvalidInputError(f"person_membership_matrix: size must be in [1, {n}], got {size}")
    c = k // 2 if size is None else int(min(k - margin, max(margin, round(k * size / n))))
    rng = np.random.default_rng(seed)
    person_in = {}
    for rank, j in enumerate(rng.permutation(len(names))):
        row = np.zeros(k, bool)
        row[(rank * c + np.arange(c)) % k] = True
        person_in[names[j]] = row
    return np.stack([np.logical_and.reduce([person_in[u] for u in us]) for us in units], axis=1)


def cap_shadows(
    keep: NDArray[np.bool_], image_units: Sequence[Collection[str]], *, cap: int, seed: int
) -> NDArray[np.bool_]:
    """`keep` with each shadow's images bounded to `cap` per person, as the target's were
    (`tasks.train.person.bound_contributions` on each shadow's IN images; selection seed `seed` + shadow).

    Raises:
        InvalidInputError: keep not (K, N) for the N images, or cap < 1.
    """
    if keep.ndim != 2 or keep.shape[1] != len(image_units):
        raise InvalidInputError(f"cap_shadows: keep {keep.shape} for {len(image_units)} images")
    units = _units_of(image_units)
    out = np.zeros_like(keep)
    for k, row in enumerate(keep):
        inside = {str(i): units[i] for i in np.flatnonzero(row)}
        for i in bound_contributions(inside, cap=cap, seed=seed + k):
            out[k, int(i)] = True
    return out


def persons_in(
    keep: NDArray[np.bool_], image_units: Sequence[Collection[str]]
) -> dict[str, NDArray[np.bool_]]:
    """Person → (K,) bool: IN a shadow when at least one of their images trained it (`keep`: (K, N))."""
    if keep.ndim != 2 or keep.shape[1] != len(image_units):
        raise InvalidInputError(f"persons_in: keep {keep.shape} for {len(image_units)} images")
    out: dict[str, NDArray[np.bool_]] = {}
    for i, people in enumerate(image_units):
        for person in people:
            out[person] = out.get(person, np.zeros(keep.shape[0], bool)) | keep[:, i]
    return out


@dataclass(frozen=True)
class PersonTrials:
    """Person-level membership trials: one per (person, held-out model) pair where the person was scored.

    Attributes:
        persons: (T,) the person of each trial; scores: (T,) their summed per-image score under that model;
        members: (T,) whether any of their images trained that model; n_models: held-out models used.
    """

    persons: NDArray[np.str_] = field(repr=False)
    scores: NDArray[np.float64] = field(repr=False)
    members: NDArray[np.bool_] = field(repr=False)
    n_models: int


Scorer = Callable[[NDArray[np.float64], NDArray[np.float64], NDArray[np.bool_]], NDArray[np.float64]]


def leave_one_out_trials(
    shadow_phi: NDArray[np.floating],
    shadow_in: NDArray[np.bool_],
    image_units: Sequence[Collection[str]],
    *,
    scorer: Scorer,
    online: bool,
) -> PersonTrials:
    """Each shadow in turn is the attacked model, the other K − 1 its reference models (Carlini et al. 2022's
    evaluation): per-image scores by `scorer`, summed per person (`person_scores`).

    An image is scored against a held-out model only when the references hold it OUT at least once (and, for an
    `online` scorer, IN at least once); its person's membership counts all of their images.

    Args:
        shadow_phi: (K, N) φ of every pool image under each shadow; shadow_in: (K, N) its training membership.
        image_units: N collections of the persons in each image (empty: nobody known, not scored).
        scorer: (target φ (n,), reference φ (K−1, n), reference membership (K−1, n)) → (n,) scores
            (`tasks.audit.lira.lira_online` / `lira_offline` with their variance option bound).
    Raises:
        InvalidInputError: shapes that disagree, K < `MIN_SHADOWS`.
    """
    phi, keep = np.asarray(shadow_phi, np.float64), np.asarray(shadow_in, bool)
    if phi.shape != keep.shape or phi.ndim != 2 or phi.shape[1] != len(image_units):
        raise InvalidInputError(
            f"leave_one_out_trials: phi {phi.shape}, membership {keep.shape}, {len(image_units)} images"
        )
    if len(phi) < MIN_SHADOWS:
        raise InvalidInputError(
            f"leave_one_out_trials: person-level LiRA needs audit.shadow.k >= {MIN_SHADOWS}, got {len(phi)}"
        )
    member_of = persons_in(keep, image_units)
    persons: list[str] = []
    scores: list[float] = []
    members: list[bool] = []
    for j in range(len(phi)):
        ref = np.arange(len(phi)) != j
        ok = (~keep[ref]).any(0) & (keep[ref].any(0) if online else True)
        ok &= np.array([bool(people) for people in image_units])
        if not ok.any():
            continue
        s = scorer(phi[j, ok], phi[ref][:, ok], keep[ref][:, ok])
        for person, score in person_scores(s, [image_units[int(i)] for i in np.flatnonzero(ok)]).items():
            persons.append(person)
            scores.append(score)
            members.append(bool(member_of[person][j]))
    return PersonTrials(
        np.asarray(persons, dtype=np.str_),
        np.asarray(scores, np.float64),
        np.asarray(members, bool),
        len(phi),
    )


def trials_attack(trials: PersonTrials, *, name: str) -> AttackResult:
    """The trials summarised like a per-image attack (members: IN trials, non-members: OUT trials).

    Raises:
        InvalidInputError: no IN or no OUT trial.
    """
    inside, outside = trials.scores[trials.members], trials.scores[~trials.members]
    if not inside.size or not outside.size:
        raise InvalidInputError(
            f"{name}: {inside.size} member and {outside.size} non-member person trials; "
            "person membership needs both"
        )
    return score_attack(inside, outside, name=name)


BOOTSTRAP_FIELDS = ("auc", "tpr_at_0_1pct_fpr", "tpr_at_1pct_fpr")


def bootstrap_intervals(
    trials: PersonTrials, *, n_boot: int, seed: int, confidence: float = 0.95
) -> dict[str, tuple[float, float]]:
    """Percentile intervals of the AUC and the TPRs at 0.1 % / 1 % FPR, resampling *persons* with all their trials
    (a cluster bootstrap: one person's trials under different models are not independent).

    Args:
        trials: the person trials; n_boot: resamples; seed: the resampling draw; confidence: two-sided level.
    Returns:
        field → (low, high), for each of `BOOTSTRAP_FIELDS`.
    Raises:
        InvalidInputError: n_boot < 1 or confidence outside (0, 1).
    """
    if n_boot < 1 or not 0 < confidence < 1:
        raise InvalidInputError(
            f"bootstrap_intervals: need n_boot >= 1 and 0 < confidence < 1, got {n_boot}, {confidence}"
        )
    names, person_of = np.unique(trials.persons, return_inverse=True)
    rows = [np.flatnonzero(person_of == p) for p in range(len(names))]
    rng = np.random.default_rng(seed)
    found: dict[str, list[float]] = {f: [] for f in BOOTSTRAP_FIELDS}
    for _ in range(n_boot):
        idx = np.concatenate([rows[p] for p in rng.integers(0, len(names), len(names))])
        m = trials.members[idx]
        if m.all() or not m.any():
            continue  # a resample with one side only has no ROC curve
        res = score_attack(trials.scores[idx][m], trials.scores[idx][~m], name="bootstrap")
        for f in BOOTSTRAP_FIELDS:
            found[f].append(float(getattr(res, f)))
    tail = 100 * (1 - confidence) / 2
    return {
        f: (float(np.percentile(v, tail)), float(np.percentile(v, 100 - tail))) if v else (0.0, 1.0)
        for f, v in found.items()
    }


def person_metrics(
    trials: PersonTrials, *, prefix: str, name: str, n_boot: int, seed: int
) -> dict[str, float]:
    """ "<prefix>/<name>/<field>" metrics of the person-level attack (e.g. "audit/dp/person/lira_online/auc"):
    `AttackResult.as_metrics` with every interval a cluster bootstrap over persons (`_ci_low`, `_ci_high`, the
    AUC's too), the persons scored as members / non-members, and the held-out models."""
    res = trials_attack(trials, name=name)
    out = res.as_metrics(prefix)
    for f, (lo, hi) in bootstrap_intervals(trials, n_boot=n_boot, seed=seed).items():
        out[f"{prefix}/{name}/{f}_ci_low"], out[f"{prefix}/{name}/{f}_ci_high"] = lo, hi
    out[f"{prefix}/{name}/n_member_persons"] = float(len(set(trials.persons[trials.members])))
    out[f"{prefix}/{name}/n_nonmember_persons"] = float(len(set(trials.persons[~trials.members])))
    out[f"{prefix}/{name}/n_models"] = float(trials.n_models)
    return out
