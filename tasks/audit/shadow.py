"""Shadow models (Shokri et al. 2017) and the shadow-model attack with a trained attack classifier.

Shadow models are trained like the target (same architecture, schedule and, for the DP target, the
same DP-SGD procedure: `tasks.train.dp`), each on a random half of the attacker's pool (train ∪
holdout, as the literature does). They serve both Shokri's attack and LiRA.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
from numpy.typing import NDArray
from scipy.special import log_softmax
from sklearn.ensemble import HistGradientBoostingClassifier
from torch import nn

from tasks.errors import InvalidInputError
from tasks.train.dp import predict_logits

# (x, y, seed) -> trained model; built by the caller from the target's training procedure.
Trainer = Callable[[torch.Tensor, torch.Tensor, int], nn.Module]
EVAL_BATCH = 1024  # the audit evaluates logits (`predict_logits`) in batches of this many


def membership_matrix(n: int, k: int, *, seed: int, size: int | None = None) -> NDArray[np.bool_]:
    """(K, N) bool: which of N pool samples each of K shadows trains on.

    Every sample is IN exactly c shadows and OUT of the other K − c, so online LiRA sees both sides of each
    (Carlini et al. 2022's balanced design). Without `size`, c = K // 2 (half the pool per shadow). With
    `size` (the target's training-set size: shadows trained exactly like the target need its n), c =
    round(K · size / N), clipped to [1, K − 1], and each shadow gets N·c/K samples (±1): samples are dealt
    round-robin, in a random order, to c consecutive shadows each.

    Raises:
        InvalidInputError: k < 2, n < 2, or size outside [1, n].
    """
    if k < 2 or n < 2:
        raise InvalidInputError(
            f"membership_matrix: need k >= 2 shadow models and n >= 2 samples, got k={k}, n={n}"
        )
    rng = np.random.default_rng(seed)
    if size is None:
        order = rng.uniform(size=(k, n)).argsort(0)
        return order < k // 2
    if not 1 <= size <= n:
        raise InvalidInputError(f"membership_matrix: size must be in [1, {n}], got {size}")
    c = int(min(k - 1, max(1, round(k * size / n))))
    keep = np.zeros((k, n), bool)
    for rank, j in enumerate(rng.permutation(n)):
        keep[(rank * c + np.arange(c)) % k, j] = True
    return keep


def train_shadows(
    x: torch.Tensor,
    y: torch.Tensor,
    keep: NDArray[np.bool_],
    *,
    trainer: Trainer,
    seed: int,
    device: str = "cpu",
    on_model: Callable[[int], None] | None = None,
) -> NDArray[np.float64]:
    """Train one shadow per row of `keep` and return every pool sample's logits under each.

    Args:
        x: (N, C, s, s) float32 pool; y: (N,) int64 labels.
        keep: (K, N) bool membership of each shadow (`membership_matrix`).
        trainer: trains a model on (x_k, y_k) with a seed.
        seed: shadow k uses seed + k.
        on_model: called with k as soon as shadow k is done (a progress bar).
    Returns:
        (K, N, num_classes) float64 logits.
    """
    if keep.ndim != 2 or keep.shape[1] != len(x):
        raise InvalidInputError(f"train_shadows: keep must be (K, {len(x)}), got {keep.shape}")
    out = []
    for k, row in enumerate(keep):
        idx = torch.from_numpy(np.flatnonzero(row))
        model = trainer(x[idx], y[idx], seed + k)
        out.append(predict_logits(model, x, device=device, batch_size=EVAL_BATCH).numpy().astype(np.float64))
        if on_model is not None:
            on_model(k)
    return np.stack(out)


def attack_features(logits: NDArray[np.floating], labels: NDArray[np.integer]) -> NDArray[np.float64]:
    """Features the attack classifier sees for each (model, sample): the log-probability of the true
    label, the three largest log-probabilities, the entropy, and the one-hot label (Shokri et al.
    train one attack model per class; the label feature lets one boosted model do the same).

    Args:
        logits: (..., N, C); labels: (N,).
    Returns:
        (..., N, 5 + C) float64.
    """
    lp = log_softmax(np.asarray(logits, np.float64), axis=-1)
    y = np.asarray(labels, np.int64)
    true = np.take_along_axis(lp, np.broadcast_to(y[:, None], lp.shape[:-1] + (1,)), axis=-1)
    top = -np.sort(-lp, axis=-1)[..., :3]
    entropy = -(np.exp(lp) * lp).sum(-1, keepdims=True)
    onehot = np.broadcast_to(np.eye(lp.shape[-1])[y], lp.shape)
    return np.concatenate([true, top, entropy, onehot], axis=-1)


def shokri_scores(
    target_logits: NDArray[np.floating],
    labels: NDArray[np.integer],
    shadow_logits: NDArray[np.floating],
    shadow_in: NDArray[np.bool_],
    *,
    seed: int,
) -> NDArray[np.float64]:
    """Shadow-model attack: fit a classifier on (shadow output features → IN/OUT), apply it to the target.

    Args:
        target_logits: (N, C) of the attacked model; labels: (N,).
        shadow_logits: (K, N, C); shadow_in: (K, N) bool.
        seed: seed of the gradient-boosted attack classifier.
    Returns:
        (N,) predicted probability of membership.
    """
    feats = attack_features(shadow_logits, labels)  # (K, N, F)
    clf = HistGradientBoostingClassifier(max_iter=100, learning_rate=0.1, random_state=seed)
    clf.fit(feats.reshape(-1, feats.shape[-1]), np.asarray(shadow_in).reshape(-1))
    return np.asarray(clf.predict_proba(attack_features(target_logits, labels))[:, 1], dtype=np.float64)
