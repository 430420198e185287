"""Method comparison: the same ground-truth boxes obfuscated by each method; a row on a tiny builtin sample."""

from __future__ import annotations

import numpy as np
import pytest

from tasks.check_quality.compare import (
    CompareConfig,
    CompareTools,
    Sample,
    compare_method,
    method_options,
    obfuscate_sample,
    padded_sensitive,
)
from tasks.check_quality.plots import privacy_utility_figure
from tasks.check_quality.reid import AttackConfig
from tasks.check_quality.utility import task_inputs, train_task_model
from tasks.errors import InvalidInputError
from tasks.ingest.builtin import generate_builtin
from tasks.params import AnonymizeParams, TrainParams
from tests.conftest import FakeDetector


def compare_samples(n: int) -> list[Sample]:
    out = []
    for s in generate_builtin(n_images=n, image_size=256, max_faces=3, face_size=(24, 72), seed=7):
        cats: dict[str, list] = {}
        for a in s.annotations:
            cats.setdefault(a.category, []).append(a)
        boxes = {c: np.asarray([a.box for a in v], np.int64) for c, v in cats.items()}
        texts = {
            c: tuple(str(a.text) for a in v)
            for c, v in cats.items()
            if c in ("text_pii", "text_nonpii", "plate")
        }
        idents = tuple(int(a.identity) for a in cats.get("face", []))
        out.append(Sample(s.id, s.image, s.label, boxes, idents, texts))
    return out


@pytest.fixture(scope="module")
def samples() -> list[Sample]:
    return compare_samples(12)


@pytest.mark.parametrize("method", ["blur", "pixelate", "mask", "dp_pixelate", "inpaint", "replace"])
def test_every_method_changes_only_the_padded_sensitive_boxes(samples: list[Sample], method: str) -> None:
    a = AnonymizeParams()
    opts = method_options(a)
    s = next(x for x in samples if len(x.boxes.get("face", ())))
    out = obfuscate_sample(s, method=method, options=opts, anonymize=a, seed=0)
    inside = np.zeros(s.image.shape[:2], bool)
    for x0, y0, x1, y1 in padded_sensitive(s, a):
        inside[y0:y1, x0:x1] = True
    assert np.array_equal(out[~inside], s.image[~inside])
    x0, y0, x1, y1 = s.boxes["face"][0]
    assert not np.array_equal(out[y0:y1, x0:x1], s.image[y0:y1, x0:x1])
    assert np.array_equal(obfuscate_sample(s, method="none", options=opts, anonymize=a, seed=0), s.image)


def test_unknown_method_is_refused(samples: list[Sample]) -> None:
    with pytest.raises(InvalidInputError, match="unknown method"):
        obfuscate_sample(samples[0], method="melt", options={}, anonymize=AnonymizeParams(), seed=0)


def test_compare_rows_clear_vs_mask(samples: list[Sample]) -> None:
    """Clear row: faces named, utility ratio 1, PSNR capped; mask row: naive attack near chance."""
    train = TrainParams(features="placard", model="digit_hog", epochs=2, batch_size=8)
    x = task_inputs([s.image for s in samples], train=train)
    model = train_task_model(x, np.array([s.label for s in samples]), train=train, seed=0)
    a = AnonymizeParams()
    embed_calls: list[int] = []

    def embed(crops: list) -> np.ndarray:  # a stand-in embedder: the crop's mean colour, no network
        embed_calls.append(len(crops))
        return np.asarray([c.reshape(-1, 3).mean(0) for c in crops], np.float64)

    gallery = np.asarray([[i, i, i] for i in range(100)], np.float64)
    tools = CompareTools(
        detector=FakeDetector([]), embed=embed, clear_gallery=gallery, model=model, train=train
    )
    attack = AttackConfig(method="x", options=method_options(a), pad=0.2, gallery_side=48, train_per_identity=2,
                          face_sizes=(24, 72), feature_side=12, seed=0)
    cfg = CompareConfig(anonymize=a, attack=attack, probes=50, residual_images=50, text_images=0,
                        text_min_similarity=0.8, seed=0, match_iou=0.3, people_images=20)
    clear = compare_method(samples, method="none", config=cfg, tools=tools)
    mask = compare_method(samples, method="mask", config=cfg, tools=tools)
    assert clear.psnr_whole == 100.0 and clear.ssim_whole == pytest.approx(1.0) and clear.utility_ratio == 1.0
    assert mask.psnr_whole < 40 and mask.ssim_outside == pytest.approx(1.0)
    assert clear.n_probes == mask.n_probes == sum(len(s.identities) for s in samples)
    assert mask.reid_trained_accuracy <= 2 / mask.n_probes  # masked faces carry nothing
    assert np.isnan(mask.text_pii_readable) and mask.residual_face_rate == 0.0
    assert len(embed_calls) == 4  # per row: the probes once, the adaptive gallery once
    fig = privacy_utility_figure([clear, mask])
    assert len(fig.axes) == 2
