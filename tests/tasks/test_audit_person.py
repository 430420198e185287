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


# ---------------------------------------------------------------- person-disjoint shadows, leave-one-out


def _crowd(n_people: int = 40, per: int = 4, shared: int = 20) -> list[list[str]]:
    """`per` single-person images of each person, then `shared` two-person images, then 10 images of nobody."""
    units = [[f"p{p}"] for p in range(n_people) for _ in range(per)]
    units += [[f"p{i % n_people}", f"p{(i + 1) % n_people}"] for i in range(shared)]
    return units + [[] for _ in range(10)]


def test_shadow_split_is_person_disjoint_and_balanced() -> None:
    from tasks.audit.person import person_membership_matrix, persons_in

    units = _crowd()
    keep = person_membership_matrix(units, 8, seed=0)
    assert keep.shape == (8, len(units))
    member = persons_in(keep, units)
    for k in range(8):  # a person OUT of a shadow has none of their images in it
        for i, people in enumerate(units):
            if keep[k, i]:
                assert all(member[p][k] for p in people)
        for p, row in member.items():
            images = [i for i, people in enumerate(units) if p in people and len(people) == 1]
            assert all(keep[k, i] == row[k] for i in images)  # a person's own images are all IN or all OUT
    single = np.array([len(u) == 1 for u in units])
    assert set(keep[:, single].sum(0)) == {4}  # every person IN K // 2 shadows
    assert set(keep[:, -10:].sum(0)) == {4}  # an image of nobody is its own unit
    # an image split by image (tasks.audit.shadow.membership_matrix) puts one person on both sides
    from tasks.audit.shadow import membership_matrix

    by_image = membership_matrix(len(units), 8, seed=0)
    assert any(len({bool(by_image[k, i]) for i in range(4)}) == 2 for k in range(8))  # p0's four images


def test_shadow_split_follows_the_target_size_and_refuses_bad_input() -> None:
    from tasks.audit.person import person_membership_matrix

    units = [[f"p{p}"] for p in range(50) for _ in range(2)]
    big = person_membership_matrix(units, 8, seed=1, size=75)
    assert set(big.sum(0)) == {6} and abs(big.sum(1).mean() - 75) < 1  # c = round(8 * 75 / 100)
    with pytest.raises(InvalidInputError, match="k >= 2"):
        person_membership_matrix(units, 1, seed=0)
    with pytest.raises(InvalidInputError, match="size"):
        person_membership_matrix(units, 8, seed=0, size=101)


def _memorised_phi(units: list[list[str]], keep: np.ndarray, shift: float, seed: int) -> np.ndarray:
    """φ of each image under each shadow: N(0, 1), plus `shift` where the image trained the shadow."""
    rng = np.random.default_rng(seed)
    return rng.normal(size=keep.shape) + shift * keep


def _online(t: np.ndarray, s: np.ndarray, m: np.ndarray) -> np.ndarray:
    from tasks.audit.lira import lira_online

    return lira_online(t, s, m, fixed_variance=True)


def test_leave_one_out_scores_each_person_under_each_held_out_model() -> None:
    from tasks.audit.person import leave_one_out_trials, person_membership_matrix, persons_in, trials_attack

    units = _crowd()
    keep = person_membership_matrix(units, 8, seed=2)
    leaky = leave_one_out_trials(_memorised_phi(units, keep, 1.0, 3), keep, units, scorer=_online, online=True)
    member = persons_in(keep, units)
    assert leaky.n_models == 8 and len(leaky.persons) == 8 * 40  # every person scored under every model
    trial = {(p, j): m for j in range(8) for p, m in zip(leaky.persons[j * 40:(j + 1) * 40],
                                                         leaky.members[j * 40:(j + 1) * 40], strict=True)}
    assert all(trial[(p, j)] == member[p][j] for (p, j) in trial)  # IN: any of their images trained model j
    assert trials_attack(leaky, name="x").auc > 0.75
    blind = leave_one_out_trials(_memorised_phi(units, keep, 0.0, 4), keep, units, scorer=_online, online=True)
    assert trials_attack(blind, name="x").auc == pytest.approx(0.5, abs=0.1)
    with pytest.raises(InvalidInputError, match="k >= 4"):
        leave_one_out_trials(np.zeros((2, len(units))), keep[:2], units, scorer=_online, online=True)


def test_person_metrics_carry_a_person_bootstrap_interval() -> None:
    from tasks.audit.person import leave_one_out_trials, person_membership_matrix, person_metrics

    units = _crowd()
    keep = person_membership_matrix(units, 8, seed=5)
    trials = leave_one_out_trials(_memorised_phi(units, keep, 0.3, 6), keep, units, scorer=_online, online=True)
    m = person_metrics(trials, prefix="audit/dp/person", name="lira_online", n_boot=200, seed=0)
    auc, lo, hi = (m[f"audit/dp/person/lira_online/{k}"] for k in ("auc", "auc_ci_low", "auc_ci_high"))
    assert lo < auc < hi and 0.02 < hi - lo < 0.4
    assert m["audit/dp/person/lira_online/n_member_persons"] == 40 == m["audit/dp/person/lira_online/n_nonmember_persons"]
    assert m["audit/dp/person/lira_online/n_models"] == 8
    assert m["audit/dp/person/lira_online/n_members"] + m["audit/dp/person/lira_online/n_nonmembers"] == 320
    # more persons, a narrower interval
    many = _crowd(n_people=400, per=2, shared=0)
    keep = person_membership_matrix(many, 8, seed=5)
    wide = leave_one_out_trials(_memorised_phi(many, keep, 0.3, 6), keep, many, scorer=_online, online=True)
    m2 = person_metrics(wide, prefix="p", name="x", n_boot=200, seed=0)
    assert m2["p/x/auc_ci_high"] - m2["p/x/auc_ci_low"] < (hi - lo) / 2


def test_each_shadow_keeps_to_the_targets_cap_per_person() -> None:
    from tasks.audit.person import cap_shadows, person_membership_matrix, persons_in
    from tasks.train.person import max_contribution

    units = _crowd(per=6)
    keep = person_membership_matrix(units, 6, seed=0, margin=2)
    capped = cap_shadows(keep, units, cap=2, seed=0)
    assert not (capped & ~keep).any()  # only drops images
    for row in capped:
        assert max_contribution({str(i): tuple(units[i]) for i in np.flatnonzero(row) if units[i]}) == 2
    assert all(np.array_equal(persons_in(capped, units)[p], persons_in(keep, units)[p]) for p in ("p0", "p7"))
    assert (capped[:, -10:] == keep[:, -10:]).all()  # an image of nobody is its own unit: always kept
