"""Person-level membership inference: a person's images' log-likelihood ratios summed."""

from __future__ import annotations

import numpy as np
import pytest

from tasks.audit.person import audited_members, person_attack, person_scores
from tasks.errors import InvalidInputError


def _people(rng: np.random.Generator, shift: float, n_people: int = 60, per: int = 5):
    """Members p0..p29 (their images' scores shifted by `shift`), non-members p30..p59."""
    scores, units = [], []
    for p in range(n_people):
        for _ in range(per):
            scores.append(rng.normal(shift if p < n_people // 2 else 0.0))
            units.append([f"p{p}"])
    return np.array(scores), units, {f"p{p}" for p in range(n_people // 2)}


def test_scores_sum_over_a_persons_images_and_shared_images_count_for_each() -> None:
    got = person_scores(np.array([1.0, 2.0, -0.5, 4.0]), [["a"], ["a", "b"], [], ["b"]])
    assert got == {"a": 3.0, "b": 6.0}
    with pytest.raises(InvalidInputError, match="2 images"):
        person_scores(np.array([1.0]), [["a"], ["b"]])
    with pytest.raises(InvalidInputError, match="finite"):
        person_scores(np.array([np.nan]), [["a"]])


def test_aggregating_a_persons_images_is_a_stronger_attack() -> None:
    rng = np.random.default_rng(0)
    scores, units, members = _people(rng, shift=0.5)
    person = person_attack(scores, units, members, name="lira_person")
    is_member = np.array([u[0] in members for u in units])
    from tasks.audit.mia import score_attack

    image = score_attack(scores[is_member], scores[~is_member], name="lira")
    assert person.auc > image.auc + 0.1 and (person.n_members, person.n_nonmembers) == (30, 30)


def test_no_signal_is_guessing_and_shared_identities_are_refused() -> None:
    rng = np.random.default_rng(1)
    scores, units, members = _people(rng, shift=0.0, n_people=400, per=3)
    assert person_attack(scores, units, members, name="x").auc == pytest.approx(0.5, abs=0.08)
    everyone = {u[0] for u in units}
    with pytest.raises(InvalidInputError, match="0 non-member persons"):
        person_attack(scores, units, everyone, name="x")


def test_members_are_the_persons_of_the_trained_images() -> None:
    units = {"i1": ("a",), "i2": ("a", "b"), "i3": ("c",)}
    assert audited_members(units, ["i2"]) == {"a", "b"}
