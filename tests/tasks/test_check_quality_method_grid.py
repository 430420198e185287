"""The per-method sample figure: crops of the written (verified) files, other methods only on the builtin
benchmark's package faces, methods our attacks break never on user images, never a clear image."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from tasks.anonymize.obfuscate import OBFUSCATORS
from tasks.check_quality.compare import Sample, context_region, crop_resized, method_options
from tasks.check_quality.plots import method_samples_figure
from tasks.check_quality.samples import (
    BENCHMARK,
    WRITTEN,
    MethodSamples,
    Omitted,
    SamplePlan,
    WrittenImage,
    attack_verdict,
    benchmark_image,
    method_samples,
    plan_samples,
)
from tasks.errors import AnonymizationError, InvalidInputError
from tasks.params import AnonymizeParams, CheckQualityParams, Gates
from tests.tasks.test_check_quality_compare import compare_samples

METHODS = CheckQualityParams().compare_methods  # blur, pixelate, mask, dp_pixelate, inpaint, inpaint_soft, replace
GATES = Gates()


def _row(method: str, *, naive: float = 0.01, adaptive: float = 0.01, trained: float = 0.01,
         chance: float = 0.01, worst: float | None = None, n: int = 2000) -> dict[str, Any]:
    return {"method": method, "reid_naive_top1": naive, "reid_adaptive_top1": adaptive,
            "reid_trained_accuracy": trained, "reid_chance": chance, "n_probes": n,
            "reid_worst_rate": max(naive, adaptive, trained) if worst is None else worst}


def _tile(value: int) -> np.ndarray:
    return np.full((20, 30, 3), value, np.uint8)


def _samples(rows: list[tuple[str, str, tuple[np.ndarray, ...]]], note: str = "n") -> MethodSamples:
    return MethodSamples(tuple(rows), (), note)


# --- which methods may be shown --------------------------------------------------------------------------


@pytest.mark.parametrize("method", ["blur", "pixelate"])
def test_weak_methods_are_broken_whatever_the_table_says(method: str) -> None:
    assert "re-identification attacks" in str(attack_verdict(method, _row(method), gates=GATES))


def test_a_method_above_an_attack_gate_is_broken_and_named_with_its_gate() -> None:
    assert attack_verdict("mask", _row("mask"), gates=GATES) is None
    verdict = attack_verdict("mask", _row("mask", trained=0.4), gates=GATES)
    assert verdict and "trained re-identification 0.40 against the max_trained_reid_rate gate 0.05: failed" in verdict
    linkage = _row("mask", trained=float("nan"), chance=0.1, worst=0.3)  # no identities: the linkage attack
    assert "linkage advantage 0.20 against the max_linkage_advantage gate 0.05: failed" in str(
        attack_verdict("mask", linkage, gates=GATES))
    assert attack_verdict("mask", _row("mask", trained=float("nan"), chance=0.1, worst=0.12), gates=GATES) is None


def test_a_method_whose_attacks_cannot_be_resolved_is_not_shown() -> None:
    """The gate's own rule, not the point estimate: no face named among 27 probes cannot show "at most 5 %"
    (the interval reaches 0.128), so the method is treated as broken, with the sample that would resolve it."""
    few = _row("mask", naive=0.0, adaptive=0.0, trained=0.0, n=27)
    verdict = str(attack_verdict("mask", few, gates=GATES))
    assert "not assessed (too few samples (n = 27 probes; needs ≥ 72 probes))" in verdict
    assert attack_verdict("mask", {k: v for k, v in _row("mask").items() if k != "n_probes"}, gates=GATES)


def test_an_unmeasured_method_counts_as_broken() -> None:
    assert "never measured" in str(attack_verdict("mask", None, gates=GATES))
    nan = _row("mask", trained=float("nan"), chance=float("nan"), worst=float("nan"))
    assert "could not be measured" in str(attack_verdict("mask", nan, gates=GATES))


def test_user_data_shows_only_the_applied_method_and_only_when_the_attacks_fail() -> None:
    table = [_row(m) for m in METHODS] + [_row("mask", adaptive=0.3)]  # the later row wins: mask broken
    plan = plan_samples(METHODS, applied="inpaint_soft", table=table, gates=GATES, builtin=False)
    assert plan.shown == (("inpaint_soft", WRITTEN),)
    why = {o.method: o.reason for o in plan.omitted}
    assert set(why) == set(METHODS) - {"inpaint_soft"}
    assert "attacks" in why["blur"] and "attacks" in why["pixelate"]
    assert "max_adaptive_reid_rate" in why["mask"]
    assert "raw pixels" in why["dp_pixelate"] and "raw pixels" in why["replace"]
    broken = plan_samples(METHODS, applied="blur", table=table, gates=GATES, builtin=False)
    assert broken.shown == () and broken.omitted[0].method == "blur"  # even as written: not on user images


def test_the_builtin_benchmark_shows_every_method_the_applied_one_as_written() -> None:
    plan = plan_samples(METHODS, applied="inpaint_soft", table=[], gates=GATES, builtin=True)
    assert plan.shown[0] == ("inpaint_soft", WRITTEN)
    assert {m for m, s in plan.shown[1:] if s == BENCHMARK} == set(METHODS) - {"inpaint_soft"}
    assert plan.omitted == ()


def test_the_clear_image_is_never_planned() -> None:
    with pytest.raises(InvalidInputError, match="clear image"):
        plan_samples(["blur", "none"], applied="inpaint", table=[], gates=GATES, builtin=True)


# --- the crops --------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def benchmark() -> list[tuple[WrittenImage, np.ndarray]]:
    """Builtin images with every ground-truth face, plate and text box 'written' as masked (stand-ins for
    anonymize's output), with their raw images."""
    out = []
    for s in compare_samples(6):
        written, boxes, cats = _masked(s)
        out.append((WrittenImage(written, boxes, cats), s.image))
    return out


def _masked(s: Sample) -> tuple[np.ndarray, np.ndarray, tuple[str, ...]]:
    pairs = [(b, c) for c in ("face", "plate", "text_pii") for b in s.boxes.get(c, np.zeros((0, 4), np.int64))]
    boxes = np.asarray([b for b, _ in pairs], np.int64).reshape(-1, 4)
    return OBFUSCATORS["mask"](s.image, boxes), boxes, tuple(c for _, c in pairs)


def test_written_rows_are_crops_of_the_written_file(benchmark: list[tuple[WrittenImage, np.ndarray]]) -> None:
    plan = SamplePlan((("mask", WRITTEN),), ())
    out = method_samples([w for w, _ in benchmark], plan=plan, benchmark_raw=None, options={},
                         noise=np.random.default_rng(), builtin=False)
    shown = [w for w, _ in benchmark if len(w.faces())][:3]
    assert len(out.rows) == 1 and len(out.rows[0][2]) == 3
    for w, crop in zip(shown, out.rows[0][2], strict=True):
        region = context_region(w.faces(), width=w.image.shape[1], height=w.image.shape[0])
        assert np.array_equal(crop, crop_resized(w.image, region, height=160))


def test_benchmark_rows_redo_only_the_face_pixels(benchmark: list[tuple[WrittenImage, np.ndarray]]) -> None:
    """Every pixel outside the face boxes (plates, text, all the rest) is the written file's; the faces
    differ from the raw ones."""
    opts = method_options(AnonymizeParams())
    for w, raw in benchmark:
        if not len(w.faces()):
            continue
        for method in METHODS:
            out = benchmark_image(w, raw, method=method, options=opts, noise=np.random.default_rng(0))
            inside = np.zeros(raw.shape[:2], bool)
            for x0, y0, x1, y1 in w.faces():
                inside[y0:y1, x0:x1] = True
                assert not np.array_equal(out[y0:y1, x0:x1], raw[y0:y1, x0:x1]), method
            assert np.array_equal(out[~inside], w.image[~inside]), method


def test_benchmark_rows_need_the_benchmark_images(benchmark: list[tuple[WrittenImage, np.ndarray]]) -> None:
    with pytest.raises(InvalidInputError, match="builtin benchmark"):
        method_samples([w for w, _ in benchmark], plan=SamplePlan((("blur", BENCHMARK),), ()), benchmark_raw=None,
                       options=method_options(AnonymizeParams()), noise=np.random.default_rng(), builtin=True)


def test_a_method_that_leaves_a_face_clear_fails_closed(
    benchmark: list[tuple[WrittenImage, np.ndarray]], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(OBFUSCATORS, "blur", lambda image, boxes, **_: image.copy())
    with pytest.raises(AnonymizationError, match="unchanged"):
        method_samples([w for w, _ in benchmark], plan=SamplePlan((("blur", BENCHMARK),), ()),
                       benchmark_raw=[r for _, r in benchmark], options={}, noise=np.random.default_rng(),
                       builtin=True)


def test_only_written_records_are_accepted() -> None:
    with pytest.raises(InvalidInputError, match="only verified outputs"):
        WrittenImage.from_record({"status": "quarantined", "path": "a.png", "boxes": [], "categories": []},
                                 _tile(0))
    with pytest.raises(InvalidInputError, match="outside"):
        WrittenImage.from_record({"status": "anonymized", "path": "a.png", "boxes": [[0, 0, 40, 5]],
                                  "categories": ["face"]}, _tile(0))


def test_the_note_names_what_was_left_out() -> None:
    plan = SamplePlan((("inpaint_soft", WRITTEN),), (Omitted("blur", "broken"), Omitted("pixelate", "broken"),
                                                      Omitted("mask", "not applied")))
    w = WrittenImage(np.zeros((64, 64, 3), np.uint8), np.asarray([[20, 20, 40, 40]], np.int64), ("face",))
    out = method_samples([w], plan=plan, benchmark_raw=None, options={}, noise=np.random.default_rng(),
                         builtin=False)
    assert "wrote after verification" in out.note and "Left out: blur, pixelate: broken. mask: not applied." in out.note
    assert out.as_dict()["omitted"][0] == {"method": "blur", "reason": "broken"}
    none = method_samples([WrittenImage(w.image, w.boxes[:0], ())], plan=plan, benchmark_raw=None, options={},
                          noise=np.random.default_rng(), builtin=False)
    assert none.rows == () and "no samples" in none.note


def test_context_region_grows_the_largest_face_by_its_size_clipped() -> None:
    faces = np.array([[10, 10, 20, 20], [100, 50, 140, 70]], np.int64)  # second: 40 x 20
    assert context_region(faces, width=200, height=100) == (60, 30, 180, 90)
    assert context_region(faces, width=150, height=80) == (60, 30, 150, 80)
    with pytest.raises(InvalidInputError):
        context_region(np.zeros((0, 4), np.int64), width=10, height=10)


# --- the figure -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("label", ["none", "clear", "raw", "melt"])
def test_figure_refuses_a_clear_or_unknown_row(label: str) -> None:
    with pytest.raises(InvalidInputError, match="not an anonymization method"):
        method_samples_figure(_samples([("blur", BENCHMARK, (_tile(1),)), (label, WRITTEN, (_tile(2),))]), title="t")


def test_figure_refuses_unknown_sources_ragged_rows_and_bad_images() -> None:
    with pytest.raises(InvalidInputError, match="from 'raw'"):
        method_samples_figure(_samples([("blur", "raw", (_tile(1),))]), title="t")
    with pytest.raises(InvalidInputError, match="images"):
        method_samples_figure(_samples([("blur", BENCHMARK, (_tile(1), _tile(2))), ("mask", WRITTEN, (_tile(3),))]),
                              title="t")
    with pytest.raises(InvalidInputError, match="uint8"):
        method_samples_figure(_samples([("blur", BENCHMARK, (np.zeros((4, 4), np.uint8),))]), title="t")


def test_figure_one_row_per_method_with_its_source_and_the_note() -> None:
    fig = method_samples_figure(_samples([("mask", WRITTEN, (_tile(1), _tile(2))),
                                          ("blur", BENCHMARK, (_tile(3), _tile(4)))], note="Left out: x."), title="T")
    assert len(fig.axes) == 4
    assert [ax.get_ylabel() for ax in fig.axes] == ["mask\n(written output)", "", "blur\n(benchmark faces)", ""]
    shown = [ax.get_images()[0].get_array() for ax in fig.axes]
    assert [int(np.asarray(a)[0, 0, 0]) for a in shown] == [1, 2, 3, 4]  # shown as given
    assert fig.get_suptitle() == "T" and "Left out: x." in [t.get_text() for t in fig.texts]


def test_figure_without_rows_holds_the_note_alone() -> None:
    fig = method_samples_figure(_samples([], note="No sample: every method is broken."), title="T")
    assert not any(ax.get_images() for ax in fig.axes)
    assert any("every method is broken" in t.get_text() for t in fig.texts)
