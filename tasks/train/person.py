"""The privacy unit a person, not an image: contribution bounding and a tight per-unit accountant.

Camera data repeats people. DP-SGD with per-image clipping and Poisson sampling at rate q protects one image;
a person in k training images is protected by the *mixture* of Gaussians in which j of their k images are
sampled, j ~ Binom(k, q), each adding a clipped gradient of norm at most C: sensitivity j·C with probability
Binom(k, q)(j) (the group analysis of Charles et al. 2024, "Fine-Tuning Large Language Models with
User-Level Differential Privacy", Sec. 3; aligned gradients are the worst case priced here). So:

1. `bound_contributions` caps the images of every unit at `cap` (a unit is a person id; an image with
   several people counts for each of them; an image with no person is its own unit), dropping images
   deterministically from a *selection* seed (not the DP noise seed: the choice of images is public, the
   guarantee rests on the noise and the sampling only). `choose_cap` picks the cap from the data by a
   recorded rule.
2. `mixture_pld_epsilon` prices the mechanism with dp-accounting's privacy-loss distribution of the mixture
   (`from_mixture_gaussian_mechanism`, both adjacency directions, pessimistic rounding: an upper bound at
   any discretisation), composed over the steps. `calibrate_noise` searches σ for a target per-unit ε.
3. `mixture_prv_epsilon` prices the same mixture a second, independent way (its own numerical privacy-loss
   random variable, discretised from the mixture's CDF and composed by FFT, Koskela et al. 2020 / Gopi et
   al. 2021; no dp-accounting code), and `unit_mismatches` is the agreement gate: the two accountants agree,
   and the contribution bound recorded is the one the data has.

Pure: numbers and id mappings in, numbers out.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray
from scipy import fft as sp_fft
from scipy.special import logsumexp
from scipy.stats import binom, norm

from tasks.errors import InvalidInputError, PrivacyBudgetError

History = tuple[tuple[float, float, int], ...]
UnitsOf = Mapping[str, tuple[str, ...]]  # image id → the units (persons) it shows
Schedule = Callable[[int], tuple[float, int]]  # n training images → (sample rate, steps)

PERSON_PREFIX = "person:"
IMAGE_PREFIX = "image:"  # an image with no known person is its own unit
PLD_DISCRETIZATION = (
    1e-2  # pessimistic rounding: an upper bound at any interval (0.4 % above 1e-4 on our schedules)
)
PRV_GRID = 1e-3  # loss grid of the second accountant; it overstates ε by at most steps × this
AGREEMENT_RTOL = 0.03  # the two accountants must agree within this (plus the PRV's rounding bound)


# ---------------------------------------------------------------- units and contribution bounding


def persons_from_coco(coco: Mapping[str, object]) -> dict[str, tuple[str, ...]]:
    """Image id (`privtrail_id`, else `file_name`) → the distinct identities its annotations carry.

    Reads the COCO ground truth privtrail writes at ingest (`to_coco`): `attributes.identity` of each
    annotation (builtin face index, COCO person / track id); annotations without one are not a person.
    Raises:
        InvalidInputError: no `images` / `annotations` lists, or an annotation of an unknown image.
    """
    images, anns = coco.get("images"), coco.get("annotations")
    if not isinstance(images, list) or not isinstance(anns, list):
        raise InvalidInputError("persons_from_coco: expected COCO json with `images` and `annotations` lists")
    name = {img["id"]: str(img.get("privtrail_id", img.get("file_name"))) for img in images}
    found: dict[str, set[str]] = {}
    for ann in anns:
        identity = (ann.get("attributes") or {}).get("identity")
        if identity is None:
            continue
        if ann["image_id"] not in name:
            raise InvalidInputError(
                f"persons_from_coco: annotation {ann.get('id')} of unknown image {ann['image_id']}"
            )
        found.setdefault(name[ann["image_id"]], set()).add(str(identity))
    return {image: tuple(sorted(ids)) for image, ids in found.items()}


def column_units(image_ids: Sequence[str], values: Sequence[object]) -> dict[str, tuple[str, ...]]:
    """Image id → its unit from a manifest column (video, session, camera_day); an empty or missing value
    leaves the image without a known unit (then its own unit in `image_units`).

    Raises:
        InvalidInputError: ids and values of different lengths.
    """
    if len(image_ids) != len(values):
        raise InvalidInputError(f"column_units: {len(image_ids)} ids but {len(values)} values")
    return {
        str(i): (str(v),)
        for i, v in zip(image_ids, values, strict=True)
        if v is not None and not (isinstance(v, float) and math.isnan(v)) and str(v)
    }


VIDEO_MARKER = "#frame="  # ingest's source of a video frame: `<file>#frame=<n>`


def video_units(image_ids: Sequence[str], sources: Sequence[object]) -> dict[str, tuple[str, ...]]:
    """Image id → its video file, for frames (source `<file>#frame=<n>`): the frames of one video share a unit;
    a still image has none (its own unit in `image_units`)."""
    if len(image_ids) != len(sources):
        raise InvalidInputError(f"video_units: {len(image_ids)} ids but {len(sources)} sources")
    return {
        str(i): (str(src).partition(VIDEO_MARKER)[0],)
        for i, src in zip(image_ids, sources, strict=True)
        if VIDEO_MARKER in str(src)
    }


def known_units(
    unit: str,
    *,
    image_ids: Sequence[str],
    columns: Mapping[str, Sequence[object]],
    coco: Mapping[str, object] | None,
) -> dict[str, tuple[str, ...]]:
    """Image id → its units of kind `unit`, where the data knows them.

    Args:
        unit: "person" (identities of the COCO ground truth `coco`), a column of `columns` (the manifest's, one
            value per image of `image_ids`), or "video" (frames of one video file, from the `source` column).
    Raises:
        InvalidInputError: a unit the data cannot give (naming the columns there are).
    """
    if unit == "person":
        if coco is None:
            raise InvalidInputError(
                "train.dp.unit person: the ingest ground truth (annotations.json) is missing"
            )
        return persons_from_coco(coco)
    if unit in columns:
        return column_units(image_ids, columns[unit])
    if unit == "video" and "source" in columns:
        return video_units(image_ids, columns["source"])
    raise InvalidInputError(
        f"train.dp.unit: {unit!r} is not image, person, video or a column of the anonymized "
        f"manifest ({sorted(columns)})"
    )


def image_units(
    image_ids: Sequence[str], persons: Mapping[str, Iterable[str]], *, prefix: str = PERSON_PREFIX
) -> dict[str, tuple[str, ...]]:
    """The units of each image: its persons ("person:<id>"), or the image itself ("image:<id>") when it has none.

    Args:
        image_ids: the training images.
        persons: image id → the person ids (or other units: videos, sessions) it shows; images missing here
            show nobody known.
        prefix: names the kind of unit ("person:", "video:"), so no unit id can be taken for an image's own.
    Raises:
        InvalidInputError: a duplicate image id.
    """
    if len(set(image_ids)) != len(image_ids):
        raise InvalidInputError("image_units: duplicate image ids")
    if prefix == IMAGE_PREFIX:
        raise InvalidInputError(f"image_units: prefix {prefix!r} is reserved for images without a unit")
    out: dict[str, tuple[str, ...]] = {}
    for image in image_ids:
        found = sorted({f"{prefix}{p}" for p in persons.get(image, ())})
        out[image] = tuple(found) if found else (f"{IMAGE_PREFIX}{image}",)
    return out


def contributions(units: UnitsOf, kept: Iterable[str] | None = None) -> Counter[str]:
    """Images per unit among `kept` (all images when None)."""
    chosen = units.keys() if kept is None else kept
    return Counter(u for image in chosen for u in units[image])


def max_contribution(units: UnitsOf, kept: Iterable[str] | None = None) -> int:
    """The most images any one unit has among `kept` (all when None); 0 for no images."""
    return max(contributions(units, kept).values(), default=0)


def bound_contributions(units: UnitsOf, *, cap: int, seed: int) -> tuple[str, ...]:
    """The images kept so that no unit has more than `cap` of them, in the input order.

    Greedy: images showing fewer units first (each kept image spends one of the cap of each of its units,
    so single-person images keep the most), ties in an order drawn from `seed`; an image is kept when none of
    its units is full. Images that are their own unit are always kept (cap >= 1). Deterministic given `seed`;
    `seed` is a selection seed, not the DP noise: which images are kept is no secret.
    Raises:
        InvalidInputError: cap < 1.
    """
    if cap < 1:
        raise InvalidInputError(f"bound_contributions: cap must be >= 1, got {cap}")
    images = list(units)
    tiebreak = np.random.default_rng(seed).permutation(len(images))
    order = sorted(range(len(images)), key=lambda i: (len(units[images[i]]), int(tiebreak[i])))
    used: Counter[str] = Counter()
    keep: set[int] = set()
    for i in order:
        mine = units[images[i]]
        if all(used[u] < cap for u in mine):
            used.update(mine)
            keep.add(i)
    return tuple(images[i] for i in sorted(keep))


# ---------------------------------------------------------------- the tight accountant (dp-accounting PLD)


def _binomial(cap: int, q: float) -> tuple[list[float], list[float]]:
    """(sensitivities 0..cap in units of C, Binom(cap, q) probabilities)."""
    j = np.arange(cap + 1)
    return [float(v) for v in j], [float(v) for v in binom.pmf(j, cap, q)]


def _check_step(sigma: float, q: float, steps: int, cap: int) -> None:
    if not (sigma > 0 and 0 < q <= 1 and steps >= 1 and cap >= 1):
        raise InvalidInputError(
            f"bad mechanism step: sigma={sigma}, q={q}, steps={steps}, cap={cap} "
            "(need sigma > 0, 0 < q <= 1, steps >= 1, cap >= 1)"
        )


def mixture_pld_epsilon(
    history: History, *, cap: int, delta: float, discretization: float = PLD_DISCRETIZATION
) -> float:
    """ε at `delta` for one unit with at most `cap` images, under DP-SGD with the given history.

    Each step is the Poisson-subsampled mixture: sensitivity j (× the clip norm) with probability
    Binom(cap, q)(j), noise σ (× the clip norm); dp-accounting's PLD of it, both directions, composed.
    Args:
        history: ((noise_multiplier σ, sample_rate q, steps), ...).
        cap: the most images one unit has in training.
        delta: target δ.
        discretization: PLD value discretisation (pessimistic rounding: an upper bound at any value).
    Raises:
        InvalidInputError: an empty history or a bad step.
    """
    if not history:
        raise InvalidInputError("mixture_pld_epsilon: empty mechanism history")
    return composed_unit_epsilon([(history, cap)], delta=delta, discretization=discretization)


def composed_unit_epsilon(
    runs: Sequence[tuple[History, int]], *, delta: float, discretization: float = PLD_DISCRETIZATION
) -> float:
    """ε at `delta` of one unit across several runs on the same people: each (history, cap) a run that held
    at most `cap` images of the unit; the runs' PLDs composed (the ledger's per-unit budget)."""
    from dp_accounting.pld import privacy_loss_distribution as pld

    total = None
    for history, cap in runs:
        for sigma, q, steps in history:
            _check_step(sigma, q, int(steps), cap)
            sens, probs = _binomial(cap, q)
            one = pld.from_mixture_gaussian_mechanism(
                float(sigma), sens, probs, value_discretization_interval=discretization
            )
            composed = one.self_compose(int(steps))
            total = composed if total is None else total.compose(composed)
    return 0.0 if total is None else max(0.0, float(total.get_epsilon_for_delta(delta)))


def calibrate_noise(
    *, target_epsilon: float, delta: float, sample_rate: float, steps: int, cap: int, rtol: float = 1e-3
) -> float:
    """The smallest σ (within `rtol`) at which `mixture_pld_epsilon` ≤ `target_epsilon` for a unit of `cap`.

    Bisection on σ with the PRV accountant (the faster of the two, pessimistic), then σ is raised until both
    accountants (`price_unit`) are within the target: the σ returned never prices above it.
    Raises:
        InvalidInputError: a non-positive target or a bad schedule.
    """
    if target_epsilon <= 0:
        raise InvalidInputError(f"calibrate_noise: target_epsilon must be > 0, got {target_epsilon}")

    def eps(sigma: float) -> float:
        try:
            return mixture_prv_epsilon(((sigma, sample_rate, steps),), cap=cap, delta=delta)
        except InvalidInputError:  # so little noise that the loss grid overflows: far above any target
            return math.inf

    lo, hi = 0.1, 1.0
    while eps(hi) > target_epsilon:
        lo, hi = hi, hi * 2
        if hi > 1e4:
            raise InvalidInputError(f"calibrate_noise: no sigma <= 1e4 reaches epsilon {target_epsilon}")
    while hi - lo > rtol * hi:
        mid = (lo + hi) / 2
        lo, hi = (lo, mid) if eps(mid) <= target_epsilon else (mid, hi)
    while max(price_unit(((hi, sample_rate, steps),), cap=cap, delta=delta)) > target_epsilon:
        hi *= 1 + 2 * rtol  # both accountants within the target: the stated (larger) ε never exceeds it
    return hi


@dataclass(frozen=True)
class UnitPlan:
    """What training runs for a per-unit target: the kept images, the cap and the noise for it."""

    kept: tuple[str, ...]
    cap: int
    rule: str  # how the cap was chosen, in words (recorded)
    noise_multiplier: float
    sample_rate: float
    steps: int
    candidates: tuple[tuple[int, int, float], ...]  # (cap, kept images, σ) of every cap considered


CAP_CANDIDATES = (1, 2, 3, 4, 6, 8, 12, 16, 24, 32, 48, 64)  # `auto` tries these (up to the data's maximum)


def _plan_for(
    units: UnitsOf, cap: int, *, seed: int, schedule: Schedule, target_epsilon: float, delta: float
) -> tuple[tuple[str, ...], float, float, int]:
    kept = bound_contributions(units, cap=cap, seed=seed)
    q, steps = schedule(len(kept))
    sigma = calibrate_noise(target_epsilon=target_epsilon, delta=delta, sample_rate=q, steps=steps, cap=cap)
    return kept, sigma, q, steps


def plan_units(
    units: UnitsOf, *, cap: int | None, seed: int, schedule: Schedule, target_epsilon: float, delta: float
) -> UnitPlan:
    """Bound every unit's images and calibrate σ so that one unit's ε is `target_epsilon` at `delta`.

    Args:
        units: image id → its units (`image_units`).
        cap: the cap on images per unit; None (`auto`): the candidate (`CAP_CANDIDATES` up to the data's
            largest unit) with the most kept images per unit of noise, kept / σ (the DP-SGD step is the sum of
            the kept images' clipped gradients plus N(0, σ²C²): more images and less noise both help;
            ties: the smaller cap; the search stops once kept / σ has fallen twice in a row). The cap
            depends on the identity counts: it is public, not DP.
        seed: the selection seed (`bound_contributions`).
        schedule: n kept images → (sample rate, steps) training will run (`tasks.train.dp.loop_schedule`).
    Raises:
        InvalidInputError: no images, cap < 1.
    """
    if not units:
        raise InvalidInputError("plan_units: no training images")
    largest = max_contribution(units)
    caps = [cap] if cap is not None else [c for c in CAP_CANDIDATES if c < largest] + [largest]
    tried: list[tuple[int, tuple[str, ...], float, float, int]] = []
    for c in dict.fromkeys(min(c, largest) for c in caps):
        kept, sigma, q, steps = _plan_for(
            units, c, seed=seed, schedule=schedule, target_epsilon=target_epsilon, delta=delta
        )
        tried.append((c, kept, sigma, q, steps))
        ratios = [len(t[1]) / t[2] for t in tried[-3:]]
        if len(ratios) == 3 and ratios[0] > ratios[1] > ratios[2]:
            break  # kept / σ fell twice in a row: larger caps add noise faster than images
    best = max(tried, key=lambda t: (len(t[1]) / t[2], -t[0]))
    rule = (
        f"fixed: train.dp.cap = {cap}"
        if cap is not None
        else f"auto: the cap of {[t[0] for t in tried]} with the most kept images per unit of noise (kept / sigma)"
    )
    return UnitPlan(
        kept=best[1],
        cap=best[0],
        rule=rule,
        noise_multiplier=best[2],
        sample_rate=best[3],
        steps=best[4],
        candidates=tuple((t[0], len(t[1]), t[2]) for t in tried),
    )


# ---------------------------------------------------------------- an independent accountant (numerical PRV + FFT)


def _log_ratio(
    x: NDArray[np.float64], sigma: float, sens: NDArray[np.float64], log_w: NDArray[np.float64]
) -> NDArray[np.float64]:
    """log P(x)/Q(x), P the mixture Σ w_j N(s_j, σ²), Q = N(0, σ²); increasing in x (all s_j >= 0)."""
    terms = log_w[None, :] + (2 * x[:, None] * sens[None, :] - sens[None, :] ** 2) / (2 * sigma**2)
    return np.asarray(logsumexp(terms, axis=1), dtype=np.float64)


def _mixture_cdf(
    x: NDArray[np.float64], sigma: float, sens: NDArray[np.float64], w: NDArray[np.float64]
) -> NDArray[np.float64]:
    return np.asarray((w[None, :] * norm.cdf((x[:, None] - sens[None, :]) / sigma)).sum(axis=1))


def _step_losses(
    sigma: float, q: float, cap: int, *, grid: float, tail: float
) -> tuple[tuple[int, NDArray[np.float64], float], tuple[int, NDArray[np.float64], float]]:
    """The per-step privacy-loss variable in both directions, on the grid `grid`, rounded up (pessimistic).

    Returns, per direction (remove: X ~ P, loss log P/Q; add: X ~ Q, loss log Q/P): (index of the first
    grid value, pmf over grid values from it, mass at +∞). Outside x in [x_lo, x_hi] (each side of mass at
    most `tail`), a loss above the grid counts as +∞ and one below it is rounded up to the grid's end.
    """
    sens = np.arange(cap + 1, dtype=np.float64)
    w = binom.pmf(sens, cap, q).astype(np.float64)
    log_w = np.log(np.maximum(w, 1e-300))
    x_hi = cap + sigma * float(norm.isf(tail))  # P(X > x_hi) <= tail
    x_lo = -sigma * float(norm.isf(tail))  # Q(X < x_lo) = tail
    xs = np.linspace(x_lo, x_hi, 100_001)
    ls = _log_ratio(xs, sigma, sens, log_w)
    lo_i, hi_i = math.floor(float(ls[0]) / grid), math.ceil(float(ls[-1]) / grid)
    values = np.arange(lo_i, hi_i + 1) * grid
    x_at = np.interp(values, ls, xs)  # x where the loss reaches each grid value (monotone inverse; clamped)
    x_at[-1] = x_hi
    # remove: P-mass of L in (v_{i-1}, v_i] goes to v_i; below x_lo (L < ls[0]) to the first v_i >= ls[0]
    cdf_p = _mixture_cdf(x_at, sigma, sens, w)
    remove = np.diff(np.concatenate([[0.0], cdf_p]))
    first = math.ceil(float(ls[0]) / grid) - lo_i
    remove[first] += remove[0] if first > 0 else 0.0
    remove[0] = remove[0] if first == 0 else 0.0
    remove_inf = float(1.0 - cdf_p[-1])
    # add: loss -L; Q-mass of x in (x_at[i-1], x_at[i]] has -L in [-v_i, -v_{i-1}): goes to -v_{i-1}
    cdf_q = norm.cdf(x_at / sigma)
    add = np.diff(cdf_q)[::-1].copy()  # grid values -v_{hi-1} .. -v_lo, i.e. indices from 1 - hi_i
    add[0] += float(1.0 - cdf_q[-1])  # x above x_hi: -L < -ls[-1] <= -v_{hi-1}
    add_inf = float(cdf_q[0])  # x below x_lo (Q-mass `tail`): -L above -ls[0], counted as +∞
    return (lo_i, np.maximum(remove, 0.0), remove_inf), (1 - hi_i, np.maximum(add, 0.0), add_inf)


MAX_PRV_POINTS = 2**25  # the composed loss grid; beyond it the mechanism is too weak to matter (ε is huge)


def _compose(start: int, pmf: NDArray[np.float64], steps: int) -> tuple[int, NDArray[np.float64]]:
    """The pmf of the sum of `steps` independent copies (FFT), with its first grid index.

    Raises:
        InvalidInputError: a composed grid above `MAX_PRV_POINTS` (far too little noise for any useful ε).
    """
    n = steps * (len(pmf) - 1) + 1
    if n > MAX_PRV_POINTS:
        raise InvalidInputError(
            f"mixture_prv_epsilon: the composed privacy loss spans {n} grid points "
            f"(> {MAX_PRV_POINTS}): too little noise to price"
        )
    size = sp_fft.next_fast_len(n, real=True)
    out = sp_fft.irfft(sp_fft.rfft(pmf, size) ** steps, size)[:n]
    return start * steps, np.maximum(out, 0.0)


def _epsilon_for_delta(
    start: int, pmf: NDArray[np.float64], inf_mass: float, grid: float, delta: float
) -> float:
    """Smallest ε >= 0 with inf_mass + Σ p_i (1 - e^{ε - v_i})_+ <= delta (v_i = (start + i)·grid)."""
    values = (start + np.arange(len(pmf))) * grid
    pos = values > 0
    v, p = values[pos], pmf[pos]
    tail_p = np.cumsum(p[::-1])[::-1]  # Σ_{j >= i} p_j
    tail_pe = np.cumsum((p * np.exp(-v))[::-1])[::-1]  # Σ_{j >= i} p_j e^{-v_j}

    if inf_mass > delta:
        return math.inf
    if len(v) == 0 or inf_mass + float(tail_p[0]) - float(tail_pe[0]) <= delta:
        return 0.0
    # δ(ε) decreases; lefts[i] = δ(v_{i-1}) (v_{-1} = 0); ε lies in the cell before the first lefts[i] <= δ
    with np.errstate(over="ignore", invalid="ignore"):
        lefts = (
            inf_mass + tail_p - np.exp(np.concatenate([[0.0], v[:-1]]) + np.log(np.maximum(tail_pe, 1e-320)))
        )
    below = np.flatnonzero(lefts <= delta)
    cell = (int(below[0]) if len(below) else len(v)) - 1
    a, b = inf_mass + float(tail_p[cell]), float(tail_pe[cell])
    return max(0.0, math.log((a - delta) / b)) if b > 0 and a > delta else float(v[cell])


def mixture_prv_epsilon(history: History, *, cap: int, delta: float, grid: float = PRV_GRID) -> float:
    """ε at `delta` of the same mixture as `mixture_pld_epsilon`, computed without dp-accounting.

    The per-step privacy-loss random variable of the Poisson-subsampled mixture (both directions) is
    discretised on `grid` from the mixture's exact CDF, rounded up (so ε is overstated by at most
    steps × grid), composed by FFT and converted to ε by the hockey-stick divergence (Koskela et al. 2020;
    Gopi et al. 2021). Only a single-entry history is composed exactly; several entries are composed in turn.
    Raises:
        InvalidInputError: an empty history or a bad step.
    """
    if not history:
        raise InvalidInputError("mixture_prv_epsilon: empty mechanism history")
    tail = delta * 1e-4 / sum(int(s) for _, _, s in history)
    worst = 0.0
    for direction in (0, 1):
        start, pmf, inf_mass = 0, np.ones(1), 0.0
        for sigma, q, steps in history:
            _check_step(sigma, q, int(steps), cap)
            s0, one, inf1 = _step_losses(float(sigma), float(q), cap, grid=grid, tail=tail)[direction]
            s1, many = _compose(s0, one, int(steps))
            start, pmf = start + s1, np.convolve(pmf, many)
            inf_mass = 1 - (1 - inf_mass) * (1 - inf1) ** int(steps)
        worst = max(worst, _epsilon_for_delta(start, pmf, inf_mass, grid, delta))
    return worst


# ---------------------------------------------------------------- the record of the unit and the agreement gate


@dataclass(frozen=True)
class UnitAccounting:
    """The privacy unit of a DP run and its per-unit ε from two accountants.

    `cap` is the contribution bound training enforced (the most images of one unit); `max_observed` the
    most images one unit actually had after bounding; `rule` how the cap was chosen; `selection_seed` the
    seed of the (public) choice of kept images; `n_before` and `n_units` the images before bounding and
    the units among the kept ones.
    """

    unit: str
    cap: int
    rule: str
    selection_seed: int
    n_before: int
    n_kept: int
    n_units: int
    max_observed: int
    epsilon_pld: float
    epsilon_prv: float
    delta: float

    @property
    def checked(self) -> float:
        """The larger of the two accountants: the per-unit ε privtrail states."""
        return max(self.epsilon_pld, self.epsilon_prv)

    def as_dict(self) -> dict[str, float | int | str]:
        """JSON-ready dict (with `checked`)."""
        return {
            "unit": self.unit,
            "cap": self.cap,
            "rule": self.rule,
            "selection_seed": self.selection_seed,
            "n_before": self.n_before,
            "n_kept": self.n_kept,
            "n_units": self.n_units,
            "max_observed": self.max_observed,
            "epsilon_pld": self.epsilon_pld,
            "epsilon_prv": self.epsilon_prv,
            "delta": self.delta,
            "checked": self.checked,
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, object]) -> UnitAccounting:
        """Inverse of `as_dict` (`checked` is derived, ignored)."""
        ints = ("cap", "selection_seed", "n_before", "n_kept", "n_units", "max_observed")
        floats = ("epsilon_pld", "epsilon_prv", "delta")
        try:
            values: dict[str, Any] = {k: int(str(d[k])) for k in ints} | {k: float(str(d[k])) for k in floats}
            return cls(unit=str(d["unit"]), rule=str(d["rule"]), **values)
        except KeyError as err:
            raise InvalidInputError(f"unit accounting record: missing field {err}") from None


def price_unit(history: History, *, cap: int, delta: float) -> tuple[float, float]:
    """(dp-accounting PLD ε, independent PRV ε) of one unit with at most `cap` images."""
    return (
        mixture_pld_epsilon(history, cap=cap, delta=delta),
        mixture_prv_epsilon(history, cap=cap, delta=delta),
    )


def unit_mismatches(history: History, acc: UnitAccounting, *, data_max: int) -> list[str]:
    """Every reason not to state the record's per-unit ε (`unit_check`); empty when the agreement gate passes."""
    return unit_check(history, acc, data_max=data_max)[0]


def unit_check(history: History, acc: UnitAccounting, *, data_max: int) -> tuple[list[str], float, float]:
    """(every reason not to state the record's per-unit ε, recomputed PLD ε, recomputed PRV ε).

    Re-prices the recorded mechanism at the recorded cap with both accountants, and compares:
    the recorded cap with `data_max` (the most images of one unit in the kept training images, counted by
    the caller from the data, not the record): a cap below it understates ε; the two accountants with each
    other (within `AGREEMENT_RTOL` plus the PRV's rounding bound, steps × `PRV_GRID`); the recorded ε with
    the recomputed ones.
    """
    out = []
    if data_max > acc.cap:
        out.append(
            f"the data has a unit with {data_max} training images, above the recorded cap {acc.cap}: "
            "the per-unit epsilon is understated"
        )
    pld, prv = price_unit(history, cap=max(acc.cap, data_max), delta=acc.delta)
    slack = AGREEMENT_RTOL * pld + sum(int(s) for _, _, s in history) * PRV_GRID
    if abs(prv - pld) > slack:
        out.append(f"the accountants disagree: PLD {pld:.4f}, PRV {prv:.4f} (allowed {slack:.4f})")
    if acc.checked + 1e-6 < max(pld, prv) * (1 - 1e-3):
        out.append(f"recorded per-unit epsilon {acc.checked:.4f} is below the recomputed {max(pld, prv):.4f}")
    return out, pld, prv


def check_unit(history: History, acc: UnitAccounting, *, data_max: int) -> None:
    """The agreement gate as a check.

    Raises:
        PrivacyBudgetError: naming every mismatch (`unit_mismatches`).
    """
    problems = unit_mismatches(history, acc, data_max=data_max)
    if problems:
        raise PrivacyBudgetError(f"per-{acc.unit} accounting (cap {acc.cap}): " + "; ".join(problems))
