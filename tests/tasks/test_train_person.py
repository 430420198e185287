"""Per-person DP: contribution bounding, the mixture accountant, its calibration, the independent check."""

from __future__ import annotations

from dataclasses import replace

import pytest

from tasks.errors import InvalidInputError, PrivacyBudgetError
from tasks.train.checked import pld_epsilon
from tasks.train.person import (
    UnitAccounting,
    bound_contributions,
    calibrate_noise,
    check_unit,
    contributions,
    image_units,
    known_units,
    max_contribution,
    mixture_pld_epsilon,
    mixture_prv_epsilon,
    persons_from_coco,
    plan_units,
    price_unit,
    unit_mismatches,
    video_units,
)

DEFAULT = ((2.24609375, 0.2, 50),)  # today's default mechanism: σ, q, steps (1,200 images, batch 256, 10 epochs)


@pytest.mark.parametrize(("cap", "expected"), [(1, 2.98), (2, 6.68), (3, 10.94), (5, 21.03)])
def test_mixture_pld_reproduces_the_issue_numbers(cap: int, expected: float) -> None:
    # issue 38: k=1 → 2.98 (the image-level ε), 2 → 6.7, 3 → 10.9, 5 → 21.0 at δ 1e-5
    eps = mixture_pld_epsilon(DEFAULT, cap=cap, delta=1e-5, discretization=1e-2)
    assert eps == pytest.approx(expected, rel=0.005)


def test_cap_one_is_the_image_level_mechanism() -> None:
    image = pld_epsilon(DEFAULT, delta=1e-5)
    assert mixture_prv_epsilon(DEFAULT, cap=1, delta=1e-5) == pytest.approx(image, rel=0.01)
    assert mixture_pld_epsilon(DEFAULT, cap=1, delta=1e-5, discretization=1e-2) == pytest.approx(image, rel=0.005)


@pytest.mark.parametrize(("history", "cap", "delta"), [
    (DEFAULT, 2, 1e-5), (((1.0, 0.05, 100),), 4, 1e-5), (((3.5, 0.33, 30),), 3, 1e-6), (((0.8, 0.5, 20),), 1, 1e-5),
    (((3.0, 1.0, 2),), 2, 1e-3)])  # q = 1: no subsampling, the loss is unbounded below
def test_independent_prv_agrees_with_pld(history: tuple[tuple[float, float, int], ...], cap: int,
                                         delta: float) -> None:
    pld = mixture_pld_epsilon(history, cap=cap, delta=delta, discretization=1e-2)
    prv = mixture_prv_epsilon(history, cap=cap, delta=delta)
    assert prv == pytest.approx(pld, rel=0.02), (prv, pld)


def test_prv_is_pessimistic_and_tightens_with_its_grid() -> None:
    exact = mixture_pld_epsilon(DEFAULT, cap=2, delta=1e-5, discretization=2e-3)  # a fine PLD
    coarse = mixture_prv_epsilon(DEFAULT, cap=2, delta=1e-5, grid=1e-2)
    fine = mixture_prv_epsilon(DEFAULT, cap=2, delta=1e-5, grid=1e-3)
    assert coarse > fine > exact - 1e-3
    assert coarse - exact <= 50 * 1e-2  # rounding up overstates by at most steps × grid


def test_more_noise_less_epsilon_more_images_more_epsilon() -> None:
    def eps(sigma: float, cap: int) -> float:
        return mixture_prv_epsilon(((sigma, 0.2, 50),), cap=cap, delta=1e-5)

    assert eps(3.0, 2) < eps(2.0, 2) < eps(2.0, 3)


def test_bad_mechanism_refused() -> None:
    with pytest.raises(InvalidInputError, match="sigma=0"):
        mixture_prv_epsilon(((0.0, 0.2, 5),), cap=1, delta=1e-5)
    with pytest.raises(InvalidInputError, match="empty"):
        mixture_pld_epsilon((), cap=1, delta=1e-5)


def test_calibrated_noise_meets_the_target_tightly() -> None:
    sigma = calibrate_noise(target_epsilon=8.0, delta=1e-5, sample_rate=0.25, steps=40, cap=3)
    assert max(price_unit(((sigma, 0.25, 40),), cap=3, delta=1e-5)) <= 8.0
    assert mixture_prv_epsilon(((sigma * 0.97, 0.25, 40),), cap=3, delta=1e-5) > 8.0  # not far above the need
    # a person in more images needs more noise for the same target
    assert calibrate_noise(target_epsilon=8.0, delta=1e-5, sample_rate=0.25, steps=40, cap=1) < sigma


def test_image_units_people_and_nobody() -> None:
    units = image_units(["a", "b", "c"], {"a": ["7"], "b": ["7", "9", "7"]})
    assert units == {"a": ("person:7",), "b": ("person:7", "person:9"), "c": ("image:c",)}
    with pytest.raises(InvalidInputError, match="duplicate"):
        image_units(["a", "a"], {})
    assert image_units(["a"], {"a": ["v.mp4"]}, prefix="video:") == {"a": ("video:v.mp4",)}
    with pytest.raises(InvalidInputError, match="reserved"):
        image_units(["a"], {}, prefix="image:")


def _crowd() -> dict[str, tuple[str, ...]]:
    persons = {f"p{i}": ["alice"] for i in range(6)}  # alice in 6 images alone
    persons |= {"g0": ["alice", "bob"], "g1": ["bob", "carol"], "g2": ["bob"]}
    return image_units([*persons, "empty0", "empty1"], persons)


def test_cap_enforced_for_every_person_multi_person_images_count_for_each() -> None:
    units = _crowd()
    assert max_contribution(units) == 7
    kept = bound_contributions(units, cap=2, seed=0)
    counts = contributions(units, kept)
    assert max(counts.values()) == 2 and counts["person:alice"] == 2
    assert {"empty0", "empty1"} <= set(kept)  # images of nobody are their own unit: always kept
    assert "g0" not in kept  # alice's slots go to single-person images first
    assert counts["person:bob"] == 2 and counts["person:carol"] == 1


def test_bounding_is_deterministic_given_the_selection_seed() -> None:
    units = _crowd()
    assert bound_contributions(units, cap=1, seed=3) == bound_contributions(units, cap=1, seed=3)
    alice = {bound_contributions(units, cap=1, seed=s)[0] for s in range(20)}
    assert len(alice) > 1  # which of alice's images stays depends on the seed
    with pytest.raises(InvalidInputError, match="cap must be >= 1"):
        bound_contributions(units, cap=0, seed=0)


def test_persons_from_coco() -> None:
    coco = {"images": [{"id": 1, "privtrail_id": "img_1"}, {"id": 2, "file_name": "b.png"}],
            "annotations": [{"id": 1, "image_id": 1, "attributes": {"identity": 4}},
                            {"id": 2, "image_id": 1, "attributes": {"identity": "9"}},
                            {"id": 3, "image_id": 2, "attributes": {"identity": None}}]}
    assert persons_from_coco(coco) == {"img_1": ("4", "9")}
    with pytest.raises(InvalidInputError, match="unknown image"):
        persons_from_coco({"images": [], "annotations": [{"id": 5, "image_id": 3, "attributes": {"identity": 1}}]})


def _accounting(cap: int, history: tuple[tuple[float, float, int], ...] = DEFAULT) -> UnitAccounting:
    pld, prv = price_unit(history, cap=cap, delta=1e-5)
    return UnitAccounting(unit="person", cap=cap, rule="fixed", selection_seed=0, n_before=10, n_kept=8, n_units=5,
                          max_observed=cap, epsilon_pld=pld, epsilon_prv=prv, delta=1e-5)


def test_agreement_gate_passes_an_honest_record() -> None:
    acc = _accounting(2)
    assert unit_mismatches(DEFAULT, acc, data_max=2) == []
    check_unit(DEFAULT, acc, data_max=1)


def test_agreement_gate_fails_when_the_contribution_bound_is_understated() -> None:
    # recorded cap 2 while the data has a person with 4 images
    acc = _accounting(2)
    problems = unit_mismatches(DEFAULT, acc, data_max=4)
    assert any("4 training images, above the recorded cap 2" in p for p in problems)
    assert any("below the recomputed" in p for p in problems)  # priced at 4, the recorded ε is too low
    with pytest.raises(PrivacyBudgetError, match="per-person accounting"):
        check_unit(DEFAULT, acc, data_max=4)


def test_agreement_gate_fails_on_an_understated_epsilon() -> None:
    acc = _accounting(2)
    lied = replace(acc, epsilon_pld=3.0, epsilon_prv=3.0)
    assert any("below the recomputed" in p for p in unit_mismatches(DEFAULT, lied, data_max=2))


def test_unit_accounting_round_trips() -> None:
    acc = _accounting(1)
    assert UnitAccounting.from_dict(acc.as_dict()) == acc
    assert acc.checked == max(acc.epsilon_pld, acc.epsilon_prv)
    with pytest.raises(InvalidInputError, match="missing field"):
        UnitAccounting.from_dict({"unit": "person"})


def _schedule(n: int) -> tuple[float, int]:
    return 0.25, 8  # a short, fixed schedule keeps the σ searches fast


def test_plan_units_with_a_fixed_cap_bounds_and_calibrates() -> None:
    units = _crowd()
    plan = plan_units(units, cap=2, seed=0, schedule=_schedule, target_epsilon=4.0, delta=1e-5)
    assert plan.cap == 2 and plan.rule == "fixed: train.dp.cap = 2"
    assert plan.kept == bound_contributions(units, cap=2, seed=0)
    assert (plan.sample_rate, plan.steps) == (0.25, 8)
    assert max(price_unit(((plan.noise_multiplier, 0.25, 8),), cap=2, delta=1e-5)) <= 4.0


def test_plan_units_auto_picks_the_most_images_per_unit_of_noise() -> None:
    units = _crowd()  # alice has 7 images: candidates 1, 2, 3, 4, 6 and 7
    plan = plan_units(units, cap=None, seed=0, schedule=_schedule, target_epsilon=4.0, delta=1e-5)
    assert plan.rule.startswith("auto")
    assert [c for c, _, _ in plan.candidates][:2] == [1, 2]
    best = max(plan.candidates, key=lambda c: (c[1] / c[2], -c[0]))
    assert (plan.cap, len(plan.kept), plan.noise_multiplier) == best
    with pytest.raises(InvalidInputError, match="no training images"):
        plan_units({}, cap=1, seed=0, schedule=_schedule, target_epsilon=4.0, delta=1e-5)


def test_train_dp_runs_at_the_noise_multiplier_it_is_given() -> None:
    from tasks.train.dp import train_dp
    from tests.tasks.test_train import toy_data

    x, y = toy_data(64, seed=5)
    res = train_dp(x, y, model_name="gn_cnn", epochs=2, batch_size=32, lr=0.5, momentum=0.9, target_delta=1e-5,
                   max_grad_norm=1.0, target_epsilon=50.0, accountant="prv", seed=0, physical_batch_size=16,
                   noise_multiplier=2.0)
    assert res.record is not None and res.record.noise_multiplier == 2.0
    assert all(sigma == 2.0 for sigma, _, _ in res.record.history)  # not Opacus' search for ε 50 (far less noise)
    assert res.record.epsilon < 50.0 and res.record.privacy_unit is None


def test_far_too_little_noise_is_refused_not_allocated() -> None:
    with pytest.raises(InvalidInputError, match="too little noise"):
        mixture_prv_epsilon(((0.05, 0.5, 2000),), cap=4, delta=1e-5)


def test_known_units_from_identities_columns_or_video_files() -> None:
    ids = ["a", "b", "c"]
    columns = {"session": ["s1", None, "s1"], "source": ["v.mp4#frame=1", "v.mp4#frame=9", "x.jpg"]}
    assert known_units("session", image_ids=ids, columns=columns, coco=None) == {"a": ("s1",), "c": ("s1",)}
    assert video_units(ids, columns["source"]) == {"a": ("v.mp4",), "b": ("v.mp4",)}
    assert known_units("video", image_ids=ids, columns=columns, coco=None) == video_units(ids, columns["source"])
    with pytest.raises(InvalidInputError, match="annotations.json"):
        known_units("person", image_ids=ids, columns=columns, coco=None)
    with pytest.raises(InvalidInputError, match="'camera' is not image, person, video or a column"):
        known_units("camera", image_ids=ids, columns=columns, coco=None)
