"""Re-identification attacks on anonymized faces (McPherson, Shokri & Shmatikov 2016, "Defeating image obfuscation").

The builtin dataset pastes the 100 LFW faces of scikit-image (index = identity) into its scenes, so
an attacker who holds one clear photo per identity (the gallery) can try to name every anonymized face:

- `naive`: dlib's ResNet face embedding (King 2017, 128-d, 99.38 % on LFW) of each anonymized face
  crop, matched to the clear gallery by Euclidean distance → top-1 / top-5 rate and ROC AUC.
- `adaptive` ("parrot"): the attacker knows the method and its parameters, obfuscates the gallery the
  same way (`render_faces`) and matches the anonymized crops against that.
- `trained`: a classifier trained on obfuscated, augmented faces of the identities (scale, shift of the
  box against the obfuscation grid, contrast/brightness/tint jitter), tested on the anonymized crops.
  The classifier is PCA + linear discriminant analysis on normalised grey pixels: McPherson et al.
  trained convnets on pixels; on mosaics of 3–9 cells a linear model on the cells already does it.

Caveat written into every report: the gallery is the very photo that was pasted (LFW subset has one
photo per person), so rates are upper bounds for an attacker with other photos of the same people.
Embeddings stay inside the caller's process; only aggregate rates leave this module.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from numpy.typing import NDArray
from sklearn.discriminant_analysis import LinearDiscriminantAnalysis
from sklearn.metrics import roc_auc_score

from tasks.anonymize.obfuscate import OBFUSCATORS
from tasks.boxes import pad_boxes
from tasks.errors import InvalidInputError
from tasks.ingest import assets
from tasks.types import Image, check_image

EMBEDDING_WEIGHTS = "dlib_face_recognition_resnet_model_v1.dat"
CHIP = 150  # dlib's face recognition network takes 150×150 aligned chips
NONE = "none"  # the "method" that leaves the face clear (calibration of the attacks)
Embeddings = NDArray[np.float64]  # (N, 128)


def gallery_faces() -> NDArray[np.uint8]:
    """The identities' clear faces: scikit-image's LFW subset 0..99 as (100, 25, 25, 3) uint8 grey RGB."""
    grey = np.clip(np.asarray(assets.lfw()[: assets.N_FACES]) * 255 + 0.5, 0, 255).astype(np.uint8)
    return np.ascontiguousarray(np.repeat(grey[..., None], 3, axis=3))


class FaceEmbedder:
    """dlib's ResNet face embedding of face crops; the network loads on first use and is not pickled.

    A crop (the tight ground-truth face box, as the LFW subset's faces are tight) is resized to the
    150×150 chip. On clear pasted faces it names nearly every identity, slightly fewer with padded crops
    (numbers: docs/measurements-archive.md#auditors-and-instruments).
    """

    def __init__(self) -> None:
        self._net: Any = None

    def __getstate__(self) -> dict[str, Any]:
        return {"_net": None}

    def _load(self) -> None:
        import dlib

        spec = importlib.util.find_spec("face_recognition_models")
        if spec is None or not spec.submodule_search_locations:
            raise InvalidInputError(
                "face_recognition_models: package not installed (needed for re-identification)"
            )
        weights = Path(next(iter(spec.submodule_search_locations))) / "models" / EMBEDDING_WEIGHTS
        if not weights.is_file():
            raise InvalidInputError(f"{weights}: dlib face embedding weights not found")
        self._net = dlib.face_recognition_model_v1(str(weights))

    def __call__(self, crops: Sequence[Image]) -> Embeddings:
        """Embed N face crops, each (h, w, 3) uint8 RGB of any size, into (N, 128) float64."""
        if not len(crops):
            return np.zeros((0, 128))
        if self._net is None:
            self._load()
        chips: list[Image] = []
        index: dict[bytes, int] = {}  # identical chips (every masked face) are embedded once: ~0.09 s each
        which = []
        for i, crop in enumerate(crops):
            check_image(crop, name=f"crops[{i}] (a face crop)", min_side=2)
            chip = np.ascontiguousarray(
                cv2.resize(crop, (CHIP, CHIP), interpolation=cv2.INTER_CUBIC), np.uint8
            )
            which.append(index.setdefault(chip.tobytes(), len(index)))
            if which[-1] == len(chips):
                chips.append(chip)
        unique = np.asarray([np.asarray(v) for v in self._net.compute_face_descriptor(chips)], np.float64)
        return unique[np.asarray(which, np.int64)]


@dataclass(frozen=True)
class MatchResult:
    """Closed-set identification of probes against a gallery.

    Attributes:
        top1: share of probes whose nearest gallery identity is their own.
        top5: share whose own identity is among the 5 nearest.
        auc: ROC AUC of −distance separating same-identity from other-identity (probe, gallery) pairs.
        n_probes: probes attacked.
        chance: top-1 rate of a random guess, 1 / gallery identities.
    """

    top1: float
    top5: float
    auc: float
    n_probes: int
    chance: float

    def as_metrics(self, prefix: str) -> dict[str, float]:
        """{"check_quality/<prefix>_top1": ..., _top5, _auc}."""
        return {f"check_quality/{prefix}_{k}": float(getattr(self, k)) for k in ("top1", "top5", "auc")}


def match(
    probes: Embeddings, probe_ids: NDArray[np.int64], gallery: Embeddings, gallery_ids: NDArray[np.int64]
) -> MatchResult:
    """Identify each probe as its nearest gallery embedding (Euclidean; ties: the first in gallery order).

    Args:
        probes: (N, D) probe embeddings (or features); N >= 1.
        probe_ids: (N,) true identities.
        gallery: (G, D), one row per identity (several rows may share an identity).
        gallery_ids: (G,) identities of the gallery rows; every probe identity must be among them.
    Raises:
        InvalidInputError: shapes disagree, no probes, or a probe identity is missing from the gallery.
    """
    probe_ids, gallery_ids = np.asarray(probe_ids, np.int64), np.asarray(gallery_ids, np.int64)
    if (
        probes.ndim != 2
        or len(probes) == 0
        or len(probes) != len(probe_ids)
        or gallery.shape[1:] != probes.shape[1:]
    ):
        raise InvalidInputError(f"match: probes {probes.shape}/{probe_ids.shape} vs gallery {gallery.shape}")
    if len(gallery) != len(gallery_ids) or not np.isin(probe_ids, gallery_ids).all():
        raise InvalidInputError("match: every probe identity must have a gallery row")
    dist = np.sqrt(((probes[:, None, :] - gallery[None, :, :]) ** 2).sum(-1))  # (N, G)
    ids = np.unique(gallery_ids)
    per_id = np.stack([dist[:, gallery_ids == i].min(axis=1) for i in ids], axis=1)  # (N, I)
    own = per_id[np.arange(len(probes)), np.searchsorted(ids, probe_ids)]
    # rank = identities strictly nearer, plus earlier identities at the same distance (ties: first wins)
    earlier = ids[None, :] < probe_ids[:, None]
    rank = (per_id < own[:, None]).sum(1) + ((per_id == own[:, None]) & earlier).sum(1)
    same = probe_ids[:, None] == ids[None, :]
    auc = float(roc_auc_score(same.ravel(), -per_id.ravel())) if 0 < same.sum() < same.size else float("nan")
    return MatchResult(float((rank == 0).mean()), float((rank < 5).mean()), auc, len(probes), 1.0 / len(ids))


def _paste_face(face: Image, side: int, rng: np.random.Generator, *, jitter: bool) -> tuple[Image, int]:
    """A canvas with `face` resized to `side` at its centre (offset returned), lit like the builtin scenes."""
    margin = side // 2 + 8
    canvas = np.empty((side + 2 * margin, side + 2 * margin, 3), np.uint8)
    canvas[:] = rng.integers(60, 200, 3) if jitter else 128
    grey = cv2.resize(face[..., 0], (side, side), interpolation=cv2.INTER_CUBIC).astype(np.float32)
    if jitter:  # the builtin generator's contrast, brightness and skin tint (tasks/ingest/builtin.py)
        mean = grey.mean()
        grey = (grey - mean) * rng.uniform(0.75, 1.25) + mean + rng.uniform(-30, 30)
        tone = (
            np.ones(3)
            if rng.random() < 0.25
            else np.array([1, rng.uniform(0.8, 0.92), rng.uniform(0.65, 0.82)])
        )
    else:
        tone = np.ones(3)
    canvas[margin : margin + side, margin : margin + side] = np.clip(grey[..., None] * tone, 0, 255).astype(
        np.uint8
    )
    return canvas, margin


def render_faces(
    faces: NDArray[np.uint8],
    sides: Sequence[int],
    *,
    method: str,
    options: Mapping[str, Mapping[str, Any]],
    pad: float,
    rng: np.random.Generator,
    jitter: bool,
) -> list[Image]:
    """Obfuscate faces the way the anonymizer would, and crop them back out (the attacker's simulation).

    Each face is pasted at its side into a plain canvas; its box (jittered by ±6 % when `jitter`, so the
    obfuscation grid shifts against the face) is padded by `pad` like the detector's, obfuscated with
    `OBFUSCATORS[method]` and `options[method]`, and the face's own square is cropped.

    Args:
        faces: (N, h, w, 3) uint8 faces (e.g. `gallery_faces()[ids]`).
        sides: N face sides in pixels (>= 8).
        method: an `OBFUSCATORS` key, or "none" for no obfuscation.
        options: method → its obfuscator's keyword options (dp_pixelate's `rng` is supplied here).
        pad: box padding as a fraction of its side, as in `anonymize.face.pad`.
        rng: the source of the canvas, jitter and dp_pixelate noise.
        jitter: augment (scale is the caller's `sides`), or render plainly (the adaptive gallery).
    Returns:
        N crops, crop i is (sides[i], sides[i], 3) uint8.
    Raises:
        InvalidInputError: unknown method, lengths disagree, a side below 8.
    """
    if method != NONE and method not in OBFUSCATORS:
        raise InvalidInputError(
            f"method: unknown obfuscator {method!r}, expected one of {sorted(OBFUSCATORS)}"
        )
    if len(faces) != len(sides) or any(s < 8 for s in sides):
        raise InvalidInputError(
            f"render_faces: {len(faces)} faces, sides {list(sides)[:5]}…: need one side >= 8 each"
        )
    kwargs = dict(options.get(method, {})) | ({"rng": rng} if method == "dp_pixelate" else {})
    out = []
    for face, side in zip(faces, sides, strict=True):
        canvas, m = _paste_face(face, int(side), rng, jitter=jitter)
        box = np.array([[m, m, m + side, m + side]], np.float64)
        if jitter:
            box = box + rng.uniform(-0.06, 0.06, 4) * side
        padded = pad_boxes(box, pad=pad, width=canvas.shape[1], height=canvas.shape[0])
        done = canvas if method == NONE else OBFUSCATORS[method](canvas, padded, **kwargs)
        out.append(np.ascontiguousarray(done[m : m + side, m : m + side]))
    return out


def pixel_features(crops: Sequence[Image], *, side: int) -> NDArray[np.float32]:
    """(N, side²) grey pixels of each crop, area-resized to side × side, zero mean and unit norm per crop.

    A constant crop (a solid mask) becomes all zeros: it carries no information.
    """
    if not len(crops):
        return np.zeros((0, side * side), np.float32)
    grey = [
        cv2.resize(cv2.cvtColor(c, cv2.COLOR_RGB2GRAY), (side, side), interpolation=cv2.INTER_AREA)
        for c in crops
    ]
    f = np.stack(grey).reshape(len(crops), -1).astype(np.float32)
    f -= f.mean(axis=1, keepdims=True)
    norm = np.linalg.norm(f, axis=1, keepdims=True)
    return np.asarray(np.divide(f, norm, out=np.zeros_like(f), where=norm > 1e-3), np.float32)


@dataclass(frozen=True)
class TrainedAttack:
    """Accuracy of the trained attacker on the probes, against chance = 1 / identities."""

    accuracy: float
    chance: float
    n_train: int
    n_probes: int


def trained_attack(
    train_x: NDArray[np.float32],
    train_y: NDArray[np.int64],
    probe_x: NDArray[np.float32],
    probe_y: NDArray[np.int64],
) -> TrainedAttack:
    """Train LDA (Fisher 1936; shrinkage, lsqr solver) on obfuscated faces; its accuracy on the probes.

    When the training features carry nothing (all zero: every face masked), the attacker can only guess
    its most frequent class, and that guess is scored.

    Args:
        train_x: (M, F) features of obfuscated training faces; train_y: (M,) their identities.
        probe_x: (N, F) features of the anonymized faces; probe_y: (N,) their true identities.
    Raises:
        InvalidInputError: shapes disagree or nothing to train on / test.
    """
    if len(train_x) != len(train_y) or len(probe_x) != len(probe_y) or not len(train_x) or not len(probe_x):
        raise InvalidInputError(
            f"trained_attack: train {train_x.shape}/{train_y.shape}, probes {probe_x.shape}/{probe_y.shape}"
        )
    classes = np.unique(train_y)
    if not np.abs(train_x).sum() > 0:
        pred = np.full(len(probe_x), np.bincount(train_y).argmax())
    else:
        lda = LinearDiscriminantAnalysis(solver="lsqr", shrinkage="auto")
        pred = lda.fit(train_x, train_y).predict(probe_x)
    acc = float((pred == probe_y).mean())
    return TrainedAttack(acc, 1.0 / len(classes), len(train_x), len(probe_x))


@dataclass(frozen=True)
class ReidReport:
    """The three attacks on one set of anonymized faces.

    Attributes:
        naive / adaptive: `MatchResult` of the clear and the obfuscated gallery.
        trained: the trained attacker's result.
        method: the obfuscation the adaptive and trained attackers simulate.
    """

    method: str
    naive: MatchResult
    adaptive: MatchResult
    trained: TrainedAttack

    @property
    def worst_rate(self) -> float:
        """The highest top-1 rate of the three attacks: what the strongest attacker achieves."""
        return max(self.naive.top1, self.adaptive.top1, self.trained.accuracy)

    def as_metrics(self, prefix: str = "reid") -> dict[str, float]:
        """Rates keyed "check_quality/<prefix>_{naive,adaptive}_{top1,top5,auc}", trained accuracy, chance."""
        m = self.naive.as_metrics(f"{prefix}_naive") | self.adaptive.as_metrics(f"{prefix}_adaptive")
        return m | {
            f"check_quality/{prefix}_trained_accuracy": self.trained.accuracy,
            f"check_quality/{prefix}_chance": self.naive.chance,
            f"check_quality/{prefix}_worst_rate": self.worst_rate,
            f"check_quality/{prefix}_n_probes": float(self.naive.n_probes),
        }


@dataclass(frozen=True)
class AttackConfig:
    """What the attacker knows and spends (from `CheckQualityParams` and `AnonymizeParams`).

    Attributes:
        method: the obfuscation applied to the faces (an `OBFUSCATORS` key or "none").
        options: method → obfuscator options (`tasks.anonymize.engine.obfuscation_options`, plus a pool).
        pad: the face detector's box padding.
        gallery_side: face side of the adaptive attacker's obfuscated gallery.
        train_per_identity: augmented obfuscated faces per identity for the trained attack.
        face_sizes: (min, max) face side drawn for the training faces.
        feature_side: side of the trained attack's pixel features.
        seed: seed of the attacker's renderings.
    """

    method: str
    options: Mapping[str, Mapping[str, Any]]
    pad: float
    gallery_side: (
        int  # no defaults here: the params schema holds them (`tasks.check_quality.plan.attack_config`)
    )
    train_per_identity: int
    face_sizes: tuple[int, int]
    feature_side: int
    seed: int


def attack(
    probes: Sequence[Image],
    probe_ids: NDArray[np.int64],
    *,
    config: AttackConfig,
    embed: Callable[[Sequence[Image]], Embeddings],
    clear_gallery: Embeddings,
    gallery: NDArray[np.uint8] | None = None,
) -> ReidReport:
    """Run the naive, adaptive and trained attacks on anonymized face crops.

    Each probe is embedded once (naive and adaptive share it); the adaptive gallery is embedded once.

    Args:
        probes: N anonymized face crops (the ground-truth face box of anonymized images), (h, w, 3) uint8.
        probe_ids: (N,) their identities, indices into the gallery.
        config: the attacker's knowledge and budget.
        embed: crops → (N, 128) embeddings, e.g. a `FaceEmbedder`.
        clear_gallery: (G, 128) embeddings of `gallery` (clear), computed once by the caller.
        gallery: (G, h, w, 3) uint8 clear faces; default `gallery_faces()`.
    Raises:
        InvalidInputError: no probes, identities outside the gallery, unknown method.
    """
    faces = gallery_faces() if gallery is None else gallery
    ids = np.arange(len(faces))
    probe_ids = np.asarray(probe_ids, np.int64)
    if not len(probes) or probe_ids.min(initial=0) < 0 or probe_ids.max(initial=0) >= len(faces):
        raise InvalidInputError(f"attack: {len(probes)} probes with identities outside 0..{len(faces) - 1}")
    rng = np.random.default_rng(config.seed)
    probe_emb = embed(probes)
    adaptive_crops = render_faces(
        faces,
        [config.gallery_side] * len(faces),
        method=config.method,
        options=config.options,
        pad=config.pad,
        rng=rng,
        jitter=False,
    )
    train_ids = np.repeat(ids, config.train_per_identity)
    sides = rng.integers(config.face_sizes[0], config.face_sizes[1] + 1, len(train_ids))
    train_crops = render_faces(
        faces[train_ids],
        sides.tolist(),
        method=config.method,
        options=config.options,
        pad=config.pad,
        rng=rng,
        jitter=True,
    )
    fs = config.feature_side
    trained = trained_attack(
        pixel_features(train_crops, side=fs), train_ids, pixel_features(probes, side=fs), probe_ids
    )
    return ReidReport(
        method=config.method,
        naive=match(probe_emb, probe_ids, clear_gallery, ids),
        adaptive=match(probe_emb, probe_ids, embed(adaptive_crops), ids),
        trained=trained,
    )
