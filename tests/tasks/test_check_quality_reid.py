"""Re-identification attacks: known answers on the builtin identities (LFW faces, built at run time)."""

from __future__ import annotations

import numpy as np
import pytest

from tasks.anonymize.obfuscate import mask_regions
from tasks.check_quality.reid import (
    AttackConfig,
    FaceEmbedder,
    attack,
    gallery_faces,
    match,
    pixel_features,
    render_faces,
    trained_attack,
)
from tasks.errors import InvalidInputError

N_IDS = 20  # a subset of the 100 identities keeps the embedding test fast


@pytest.fixture(scope="module")
def embedder() -> FaceEmbedder:
    return FaceEmbedder()


@pytest.fixture(scope="module")
def faces() -> np.ndarray:
    return gallery_faces()[:N_IDS]


@pytest.fixture(scope="module")
def clear_gallery(embedder: FaceEmbedder, faces: np.ndarray) -> np.ndarray:
    return embedder(list(faces))


def _pasted(faces: np.ndarray, seed: int) -> list[np.ndarray]:
    """Faces pasted like the builtin scenes (random 24–72 px, lit and tinted), cropped back out, clear."""
    rng = np.random.default_rng(seed)
    sides = rng.integers(24, 73, len(faces)).tolist()
    return render_faces(faces, sides, method="none", options={}, pad=0.2, rng=rng, jitter=True)


def test_gallery_is_the_100_identities() -> None:
    g = gallery_faces()
    assert g.shape == (100, 25, 25, 3) and g.dtype == np.uint8
    assert np.array_equal(g[..., 0], g[..., 2])  # grey


def test_match_known_answer() -> None:
    gallery = np.eye(4)
    probes = np.array([[1.0, 0, 0, 0], [0, 0.9, 0.1, 0], [0, 0, 0, 1]])
    r = match(probes, np.array([0, 2, 3]), gallery, np.arange(4))
    assert r.top1 == pytest.approx(2 / 3) and r.top5 == 1.0 and r.chance == 0.25
    with pytest.raises(InvalidInputError, match="gallery row"):
        match(probes, np.array([0, 1, 7]), gallery, np.arange(4))


def test_clear_faces_are_reidentified(
    embedder: FaceEmbedder, faces: np.ndarray, clear_gallery: np.ndarray
) -> None:
    probes = _pasted(faces, seed=1)
    r = match(embedder(probes), np.arange(N_IDS), clear_gallery, np.arange(N_IDS))
    assert r.top1 >= 0.9
    assert r.auc > 0.95


def test_fully_masked_faces_are_not_reidentified(
    embedder: FaceEmbedder, faces: np.ndarray, clear_gallery: np.ndarray
) -> None:
    probes = [mask_regions(c, np.array([[0, 0, c.shape[1], c.shape[0]]])) for c in _pasted(faces, seed=2)]
    assert all(not p.any() for p in probes)
    config = AttackConfig(method="mask", options={}, pad=0.2, gallery_side=48, train_per_identity=5,
                          face_sizes=(24, 72), feature_side=12, seed=0)
    r = attack(
        probes, np.arange(N_IDS), config=config, embed=embedder, clear_gallery=clear_gallery, gallery=faces
    )
    # every probe is the same black square: at most one identity can be "hit", by a tie
    assert r.naive.top1 <= 1 / N_IDS and r.adaptive.top1 <= 1 / N_IDS and r.trained.accuracy <= 1 / N_IDS
    assert r.naive.auc == pytest.approx(0.5)


def test_trained_attack_beats_chance_on_pixelated_identities(faces: np.ndarray) -> None:
    """McPherson et al.: a classifier trained on pixelated faces names pixelated faces far above chance."""
    rng = np.random.default_rng(3)
    opts = {"pixelate": {"block": 8}}
    ids = np.repeat(np.arange(N_IDS), 20)
    train = render_faces(
        faces[ids],
        rng.integers(24, 73, len(ids)).tolist(),
        method="pixelate",
        options=opts,
        pad=0.2,
        rng=rng,
        jitter=True,
    )
    probe_ids = np.repeat(np.arange(N_IDS), 3)
    probes = render_faces(
        faces[probe_ids],
        rng.integers(24, 73, len(probe_ids)).tolist(),
        method="pixelate",
        options=opts,
        pad=0.2,
        rng=np.random.default_rng(99),
        jitter=True,
    )
    r = trained_attack(pixel_features(train, side=12), ids, pixel_features(probes, side=12), probe_ids)
    assert r.chance == pytest.approx(1 / N_IDS)
    assert r.accuracy > 5 * r.chance


def test_pixel_features_of_a_constant_crop_are_zero() -> None:
    f = pixel_features([np.full((30, 30, 3), 7, np.uint8)], side=8)
    assert f.shape == (1, 64) and not f.any()


def test_render_rejects_unknown_method(faces: np.ndarray) -> None:
    with pytest.raises(InvalidInputError, match="unknown obfuscator"):
        render_faces(
            faces[:1], [30], method="melt", options={}, pad=0.2, rng=np.random.default_rng(0), jitter=False
        )


def test_embedder_embeds_identical_chips_once_with_the_same_rows(embedder: FaceEmbedder, faces: np.ndarray) -> None:
    solid_a, solid_b = np.zeros((40, 40, 3), np.uint8), np.zeros((57, 31, 3), np.uint8)  # both a black chip
    crops = [faces[0], solid_a, faces[1], faces[0].copy(), solid_b]
    seen: list[int] = []
    embedder([faces[0]])  # loads the network
    net = embedder._net
    assert net is not None

    class Counting:
        def compute_face_descriptor(self, chips: list[np.ndarray]) -> list[np.ndarray]:
            seen.append(len(chips))
            return list(net.compute_face_descriptor(chips))

    embedder._net = Counting()
    try:
        got = embedder(crops)
    finally:
        embedder._net = net
    assert seen == [3]  # faces[0], the black chip, faces[1]
    each = np.concatenate([embedder([c]) for c in crops])
    assert got.shape == (5, 128) and np.array_equal(got, each)
