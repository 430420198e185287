"""Linkage attack: anonymized faces matched back to their raw faces, no identities (LFW faces, built at run time)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import cv2
import numpy as np
import pytest

from tasks.anonymize.obfuscate import OBFUSCATORS
from tasks.boxes import pad_boxes
from tasks.check_quality.linkage import LinkageResult, linkage_attack, obfuscate_crops, perturb_crops
from tasks.check_quality.reid import FaceEmbedder, gallery_faces, pixel_features
from tasks.errors import InvalidInputError

PAD = 0.2
OPTIONS: dict[str, dict[str, Any]] = {
    "pixelate": {"block": 8},
    "blur": {"strength": 0.5},
    "dp_pixelate": {"block": 8, "epsilon": 1.0, "neighbourhood": 16},
}


def fake_embed(crops: Sequence[np.ndarray]) -> np.ndarray:
    """Deterministic, fast stand-in for dlib: 8×8 grey pixels, zero mean, unit norm (a black crop → 0)."""
    return pixel_features(crops, side=8).astype(np.float64)


class CountingEmbedder:
    """`fake_embed`, recording how many crops each call embedded."""

    def __init__(self) -> None:
        self.calls: list[int] = []

    def __call__(self, crops: Sequence[np.ndarray]) -> np.ndarray:
        self.calls.append(len(crops))
        return fake_embed(crops)


def raw_faces(n: int, *, seed: int = 0) -> list[np.ndarray]:
    """The first n LFW faces upscaled to 52–68 px and skin-tinted: colour crops of differing sizes."""
    rng = np.random.default_rng(seed)
    out = []
    for face in gallery_faces()[:n]:
        side = int(rng.integers(52, 69))
        grey = cv2.resize(face, (side, side), interpolation=cv2.INTER_CUBIC).astype(np.float64)
        tone = np.array([1.0, rng.uniform(0.8, 0.92), rng.uniform(0.65, 0.82)])
        out.append(np.clip(grey * tone, 0, 255).astype(np.uint8))
    return out


def anonymized(
    raws: Sequence[np.ndarray],
    method: str,
    *,
    options: Mapping[str, Mapping[str, Any]] = OPTIONS,
    seed: int = 1,
    grey_scene: bool = False,
) -> list[np.ndarray]:
    """What the anonymizer outputs: each face in a scene (textured, or plain mid-grey), its padded box
    obfuscated, the face box cropped back out."""
    rng = np.random.default_rng(seed)
    out = []
    for crop in raws:
        h, w = crop.shape[:2]
        if grey_scene:
            scene = np.full((3 * h, 3 * w, 3), 128, np.uint8)
        else:
            cells = rng.integers(0, 256, (h // 2, w // 2, 3)).astype(np.uint8)
            scene = cv2.resize(cells, (3 * w, 3 * h), interpolation=cv2.INTER_LINEAR)
        y, x = int(rng.integers(h // 2, 2 * h - h // 2)), int(rng.integers(w // 2, 2 * w - w // 2))
        scene[y : y + h, x : x + w] = crop
        if method != "none":
            box = pad_boxes(np.array([[x, y, x + w, y + h]], np.float64), pad=PAD, width=3 * w, height=3 * h)
            kwargs = dict(options.get(method, {})) | ({"rng": rng} if method == "dp_pixelate" else {})
            scene = OBFUSCATORS[method](scene, box, **kwargs)
        out.append(scene[y : y + h, x : x + w].copy())
    return out


def attack(raws: Sequence[np.ndarray], anons: Sequence[np.ndarray], method: str, **kw: Any) -> LinkageResult:
    args: dict[str, Any] = {"options": OPTIONS, "pad": PAD, "embed": fake_embed, "seed": 0} | kw
    return linkage_attack(raws, anons, method=method, **args)


@pytest.fixture(scope="module")
def raws() -> list[np.ndarray]:
    return raw_faces(20)


def test_identity_anonymization_links_every_face(raws: list[np.ndarray]) -> None:
    r = attack(raws, [c.copy() for c in raws], "none")
    assert r.naive.top1 == 1.0 and r.adaptive.top1 == 1.0 and r.naive.auc == 1.0
    assert r.clear.top1 >= 0.95
    assert r.n_faces == 20 and r.naive.chance == pytest.approx(1 / 20)
    assert r.advantage == pytest.approx(1 - 1 / 20)


def test_masked_faces_link_at_chance(raws: list[np.ndarray]) -> None:
    anons = anonymized(raws, "mask")
    assert all(not a.any() for a in anons)  # the padded box covers the whole face: all black
    r = attack(raws, anons, "mask")
    # identical (zero) probes: only the one face that wins the tie is "linked"
    assert r.naive.top1 == pytest.approx(1 / 20) and r.adaptive.top1 == pytest.approx(1 / 20)
    assert r.adaptive.auc == pytest.approx(0.5)
    assert r.advantage == pytest.approx(0.0)
    assert r.clear.top1 >= 0.95  # the embedding itself is fine: the mask is what defeats it


def test_adaptive_attacker_beats_naive_on_a_coarse_mosaic() -> None:
    raws = raw_faces(50)
    options = {"pixelate": {"block": 20}}  # 3×3 cells per face: the naive match degrades
    r = attack(raws, anonymized(raws, "pixelate", options=options), "pixelate", options=options)
    assert r.adaptive.top1 >= r.naive.top1 + 0.3  # measured 0.98 vs 0.48 (chance 0.02)
    assert r.adaptive.top1 >= 0.95 and r.adaptive.auc > r.naive.auc


@pytest.mark.parametrize("method", ["pixelate", "blur", "mask"])
def test_adaptive_simulation_is_exact_on_a_plain_grey_scene(raws: list[np.ndarray], method: str) -> None:
    # a deterministic method on the attacker's own canvas reproduces the anonymized crop bit for bit
    anons = anonymized(raws, method, grey_scene=True)
    sim = obfuscate_crops(raws, method=method, options=OPTIONS, pad=PAD, rng=np.random.default_rng(0))
    assert all(np.array_equal(a, s) for a, s in zip(anons, sim, strict=True))
    if method != "mask":
        assert attack(raws, anons, method).adaptive.top1 == 1.0


def test_adaptive_gallery_keeps_colour_and_shape(raws: list[np.ndarray]) -> None:
    sim = obfuscate_crops(raws[:3], method="pixelate", options=OPTIONS, pad=PAD, rng=np.random.default_rng(0))
    assert [s.shape for s in sim] == [c.shape for c in raws[:3]]
    assert all(s.dtype == np.uint8 and not np.array_equal(s[..., 0], s[..., 2]) for s in sim)  # tinted
    assert not any(np.array_equal(s, c) for s, c in zip(sim, raws, strict=False))
    none = obfuscate_crops(raws[:3], method="none", options={}, pad=PAD, rng=np.random.default_rng(0))
    assert all(np.array_equal(s, c) for s, c in zip(none, raws, strict=False))


def test_perturbed_crops_stay_close(raws: list[np.ndarray]) -> None:
    out = perturb_crops(raws, rng=np.random.default_rng(0))
    for p, c in zip(out, raws, strict=True):
        ratio = np.array(p.shape[:2]) / np.array(c.shape[:2])
        assert p.dtype == np.uint8 and p.shape[2] == 3
        assert np.all((ratio > 0.83) & (ratio < 1.17))  # the rescale factor, rounded to whole pixels
    assert not any(p.shape == c.shape and np.array_equal(p, c) for p, c in zip(out, raws, strict=True))
    again = perturb_crops(raws, rng=np.random.default_rng(0))
    assert all(np.array_equal(a, b) for a, b in zip(out, again, strict=True))


def test_deterministic_given_seed(raws: list[np.ndarray]) -> None:
    anons = anonymized(raws, "dp_pixelate")
    a, b = attack(raws, anons, "dp_pixelate", seed=3), attack(raws, anons, "dp_pixelate", seed=3)
    assert a == b
    one = obfuscate_crops(
        raws[:2], method="dp_pixelate", options=OPTIONS, pad=PAD, rng=np.random.default_rng(0)
    )
    two = obfuscate_crops(
        raws[:2], method="dp_pixelate", options=OPTIONS, pad=PAD, rng=np.random.default_rng(1)
    )
    assert not np.array_equal(one[0], two[0])  # the attacker draws its own Laplace noise


def test_metrics_keys_exactly() -> None:
    raws = raw_faces(4)
    r = attack(raws, anonymized(raws, "blur"), "blur")
    m = r.as_metrics()
    expected = {
        f"check_quality/linkage_{a}_{k}"
        for a in ("naive", "adaptive", "clear")
        for k in ("top1", "top5", "auc")
    } | {f"check_quality/linkage_{k}" for k in ("chance", "n_faces", "advantage")}
    assert set(m) == expected
    assert all(isinstance(v, float) for v in m.values())
    assert m["check_quality/linkage_chance"] == 0.25 and m["check_quality/linkage_n_faces"] == 4.0
    assert m["check_quality/linkage_advantage"] == pytest.approx(max(r.naive.top1, r.adaptive.top1) - 0.25)
    assert m["check_quality/linkage_naive_top5"] == 1.0  # 4 faces: every face is among the top 5
    assert set(r.as_metrics(prefix="x")) == {k.replace("linkage_", "x_") for k in expected}


def test_embeds_each_set_once(raws: list[np.ndarray]) -> None:
    embed = CountingEmbedder()
    attack(raws, anonymized(raws, "pixelate"), "pixelate", embed=embed)
    assert embed.calls == [20, 20, 20, 20]  # raw, anonymized, adaptive gallery, clear probes
    embed.calls.clear()
    attack(raws, raws, "none", embed=embed)
    assert embed.calls == [20, 20, 20]  # "none": the adaptive gallery is the raw gallery


def test_rejects_bad_input(raws: list[np.ndarray]) -> None:
    embed = CountingEmbedder()
    with pytest.raises(InvalidInputError, match="N >= 2"):
        attack(raws[:1], raws[:1], "none")
    with pytest.raises(InvalidInputError, match="N >= 2"):
        attack(raws[:3], raws[:2], "none")
    with pytest.raises(InvalidInputError, match="same box"):
        attack(raws[:2], [raws[0], raws[0][:-3]], "none")
    with pytest.raises(InvalidInputError, match="anon_crops\\[1\\]"):
        attack(raws[:2], [raws[0], raws[1][..., 0]], "none")
    with pytest.raises(InvalidInputError, match="unknown obfuscator"):
        attack(raws[:2], raws[:2], "swirl", embed=embed)
    with pytest.raises(InvalidInputError, match="options\\['pixelate'\\]"):
        attack(raws[:2], raws[:2], "pixelate", options={}, embed=embed)
    assert embed.calls == []  # a bad method or options fails before any embedding is spent


def test_real_embedder_calibration() -> None:
    """dlib on 20 colour LFW faces of 52–68 px: the clear attack is near perfect, identity links all."""
    pytest.importorskip("dlib")
    raws = raw_faces(20)
    r = linkage_attack(
        raws, [c.copy() for c in raws], method="none", options={}, pad=PAD, embed=FaceEmbedder(), seed=0
    )
    assert r.clear.top1 >= 0.95 and r.clear.auc > 0.99  # measured 1.0 and 1.0
    assert r.naive.top1 == 1.0 and r.adaptive.top1 == 1.0
