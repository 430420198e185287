"""Which faces and images check_quality measures (face boxes per image, even samples, one face per identity),
and what the method-samples figure may show: crops of the written, verified anonymized files only."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import numpy as np
from numpy.typing import NDArray

from tasks.anonymize.obfuscate import OBFUSCATORS
from tasks.check_quality.compare import Sample, context_region, crop_resized
from tasks.check_quality.text import TEXT_CATEGORIES
from tasks.errors import AnonymizationError, InvalidInputError
from tasks.params import Gates
from tasks.report.gates import GATE_SPECS, assess
from tasks.types import Image


def face_boxes(row: dict[str, Any], gt: dict[str, Any], *, use_gt: bool) -> list[tuple[list[int], int]]:
    """The faces of one image as (box [x0, y0, x1, y1], identity or -1): the ground truth when the data has
    face ground truth, else what the anonymizer detected (its records), so data without boxes is measured."""
    if use_gt:
        return [
            (list(a[0]), -1 if a[1] is None else identity_number(a[1]))
            for a in gt.get(row["id"], {}).get("face", [])
        ]
    return [(list(b), -1) for b, c in zip(row["boxes"], row["categories"], strict=True) if c == "face"]


def identity_number(value: Any) -> int:
    """Identities are ints (builtin: the LFW index); a COCO import's string ids are numbered by ingest."""
    return int(value)


def make_sample(
    row: dict[str, Any], gt: dict[str, Any], image: np.ndarray, *, use_gt: bool, known_ids: bool
) -> Sample:
    cats = gt.get(row["id"], {})
    boxes = {c: np.asarray([a[0] for a in v], np.int64).reshape(-1, 4) for c, v in cats.items()}
    faces = face_boxes(row, gt, use_gt=use_gt)
    boxes["face"] = np.asarray([b for b, _ in faces], np.int64).reshape(-1, 4)
    texts = {c: tuple(str(a[2]) for a in v) for c, v in cats.items() if c in TEXT_CATEGORIES}
    idents = tuple(
        i if known_ids else -1 for _, i in faces
    )  # -1: the linkage attack instead of the identity ones
    return Sample(row["id"], image, int(row["label"]), boxes, idents, texts)


T = TypeVar("T")


def even_sample(rows: list[T], n: int) -> list[T]:
    """An even, deterministic sample of n rows (all when there are fewer)."""
    return rows if len(rows) <= n else [rows[i] for i in np.linspace(0, len(rows) - 1, n).round().astype(int)]


def one_per_identity(
    rows: list[dict[str, Any]], gt: dict[str, Any], *, use_gt: bool
) -> list[tuple[dict[str, Any], list[int]]]:
    """(row, face box) of every face, keeping the first face of each known identity (unknown ones, -1, all)."""
    seen: set[int] = set()
    out: list[tuple[dict[str, Any], list[int]]] = []
    for row in rows:
        for box, ident in face_boxes(row, gt, use_gt=use_gt):
            if ident >= 0 and ident in seen:
                continue
            seen.add(ident)
            out.append((row, box))
    return out


# --- the method samples figure: pictures only from the written (verified) anonymized files -----------------

WEAK_METHODS: tuple[str, ...] = (
    "blur",
    "pixelate",
)  # a classifier trained on such faces names them (docs/decisions/0001-no-pixelate-for-faces.md)
WRITTEN, BENCHMARK = "written", "benchmark"  # where a panel's pixels come from (see `plan_samples`)
SOURCE_LABELS: dict[str, str] = {WRITTEN: "written output", BENCHMARK: "benchmark faces"}
NOT_APPLIED = (
    "not the method applied to your images, and a sample of it would have to be made from raw pixels"
)


@dataclass(frozen=True)
class WrittenImage:
    """One image as the anonymize stage wrote it after verification, and what it redacted there.

    Attributes:
        image: (H, W, 3) uint8 pixels of the written PNG (every redaction already in place).
        boxes: (N, 4) int64 [x0, y0, x1, y1] the anonymizer redacted (its records, padded as it padded them).
        categories: category of each box (face, plate, text, ...).
    """

    image: Image
    boxes: NDArray[np.int64]
    categories: tuple[str, ...]

    @classmethod
    def from_record(cls, record: Mapping[str, Any], image: Image) -> WrittenImage:
        """From anonymize's `records.jsonl` row and the pixels of the file it wrote.

        Raises:
            InvalidInputError: the record is not of a written image, or its boxes do not fit the image.
        """
        if record.get("status") != "anonymized":
            raise InvalidInputError(
                f"method samples: {record.get('path')} was not written by anonymize "
                f"(status {record.get('status')!r}): only verified outputs are shown"
            )
        boxes = np.asarray(record["boxes"], np.int64).reshape(-1, 4)
        h, w = image.shape[:2]
        if len(boxes) and (boxes[:, :2].min() < 0 or boxes[:, 2].max() > w or boxes[:, 3].max() > h):
            raise InvalidInputError(
                f"method samples: {record.get('path')}: a redacted box lies outside the written {w}x{h} image"
            )
        return cls(image, boxes, tuple(record["categories"]))

    def faces(self) -> NDArray[np.int64]:
        """(F, 4) the redacted face boxes."""
        keep = np.asarray([c == "face" for c in self.categories], bool).reshape(-1)
        return np.asarray(self.boxes[keep], np.int64).reshape(-1, 4)


@dataclass(frozen=True)
class Omitted:
    """A method left out of the figure, and why (a clause without the method's name)."""

    method: str
    reason: str


@dataclass(frozen=True)
class SamplePlan:
    """Which methods the figure shows, from where, and which it leaves out.

    Attributes:
        shown: (method, source): `WRITTEN` (crops of the written files: the applied method) or `BENCHMARK`
            (the builtin benchmark's package faces under another method, everything else as written).
        omitted: the methods left out, each with its reason.
    """

    shown: tuple[tuple[str, str], ...]
    omitted: tuple[Omitted, ...]


@dataclass(frozen=True)
class MethodSamples:
    """The figure's content: rows of (method, source, crops) and the sentence on what was left out."""

    rows: tuple[tuple[str, str, tuple[Image, ...]], ...]
    omitted: tuple[Omitted, ...]
    note: str

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready description (no pixels): what each row shows and where it comes from, what was left out."""
        return {
            "shown": [{"method": m, "source": s, "n_images": len(i)} for m, s, i in self.rows],
            "omitted": [{"method": o.method, "reason": o.reason} for o in self.omitted],
            "note": self.note,
        }


def _broken_by(row: Mapping[str, Any], gates: Gates) -> list[tuple[str, float, str]]:
    """(attack, value, gate) of every attack in a method-table row, identity attacks or the linkage attack."""
    if not np.isnan(float(row.get("reid_trained_accuracy", np.nan))):  # identity attacks (known identities)
        return [
            ("naive re-identification", float(row["reid_naive_top1"]), "max_adaptive_reid_rate"),
            ("adaptive re-identification", float(row["reid_adaptive_top1"]), "max_adaptive_reid_rate"),
            ("trained re-identification", float(row["reid_trained_accuracy"]), "max_trained_reid_rate"),
        ]
    advantage = float(row.get("reid_worst_rate", np.nan)) - float(row.get("reid_chance", np.nan))
    return [("linkage advantage", advantage, "max_linkage_advantage")]


def attack_verdict(method: str, row: Mapping[str, Any] | None, *, gates: Gates) -> str | None:
    """Why our attacks break `method`, as a clause (None: the method table measured it below every gate).

    Fails closed: a method without a measured row (or with a NaN attack column) counts as broken.

    Args:
        method: an `OBFUSCATORS` key.
        row: its row of check_quality's method table (`MethodRow.as_dict()`), or None when not compared.
        gates: the thresholds the attacks are judged by.
    """
    if method in WEAK_METHODS:
        return "our re-identification attacks name faces under it (a classifier trained on such faces)"
    if row is None:
        return "not in the method table, so its re-identification was never measured"
    checks = _broken_by(row, gates)
    if any(np.isnan(v) for _, v, _ in checks):
        return "its re-identification could not be measured on these images (too few faces)"
    unproven = []
    for attack, value, gate in checks:  # the gate's own rule: shown only when the interval clears it
        status, reason, _ = assess(
            value, float(getattr(gates, gate)), GATE_SPECS[gate], _row_values(row, value, gate)
        )
        if status != "passed":
            unproven.append(
                f"{attack} {value:.2f} against the {gate} gate {getattr(gates, gate):g}: "
                f"{status.replace('_', ' ')}" + (f" ({reason})" if reason else "")
            )
    return f"{'; '.join(unproven)} in the method table" if unproven else None


def _row_values(row: Mapping[str, Any], value: float, gate: str) -> dict[str, float | None]:
    """A method-table row as the flat values `tasks.report.gates.assess` reads for `gate`: the attack's value
    and its sample (the row's probes; the linkage attack's chance 1/N)."""
    spec = GATE_SPECS[gate]
    n = float(row.get("n_probes", np.nan))
    values: dict[str, float | None] = {spec.value_key: value}
    if spec.sample is not None:
        values |= dict.fromkeys(spec.sample.n_keys, n)
        if spec.sample.offset_key:
            values[spec.sample.offset_key] = float(row.get("reid_chance", np.nan))
    return values


def plan_samples(
    methods: Sequence[str], *, applied: str, table: Sequence[Mapping[str, Any]], gates: Gates, builtin: bool
) -> SamplePlan:
    """Which methods the method-samples figure may show, and from which pixels.

    The applied method is shown cut from the written files (every redaction in place). On the builtin
    benchmark (package images) the other methods are shown on its package faces. On user data a method is
    shown only when it is the applied one and the method table measured it below every attack gate:
    a sample of another method would have to be made from raw pixels.

    Args:
        methods: the compared methods (`OBFUSCATORS` keys).
        applied: the face method anonymize applied (`anonymize.methods.face`, else `anonymize.method`).
        table: the method table's rows (`MethodRow.as_dict()`).
        gates: the attack gates.
        builtin: the data is the builtin benchmark (`ingest.source == "builtin"`).
    Raises:
        InvalidInputError: a method that is not an anonymization method ("none" is the clear image).
    """
    bad = [m for m in (applied, *methods) if m not in OBFUSCATORS]
    if bad:
        raise InvalidInputError(
            f"method samples: {bad} not anonymization methods (expected {sorted(OBFUSCATORS)}; "
            "'none' is the clear image, never shown)"
        )
    rows = {str(r["method"]): r for r in table}
    order = [applied, *(m for m in dict.fromkeys(methods) if m != applied)]
    shown: list[tuple[str, str]] = []
    omitted: list[Omitted] = []
    for m in order:
        verdict = None if builtin else attack_verdict(m, rows.get(m), gates=gates)
        if builtin or (m == applied and verdict is None):
            shown.append((m, WRITTEN if m == applied else BENCHMARK))
        else:
            omitted.append(Omitted(m, verdict or NOT_APPLIED))
    return SamplePlan(tuple(shown), tuple(omitted))


def samples_note(plan: SamplePlan, *, builtin: bool) -> str:
    """The sentence printed with the figure: where its pixels come from and what was left out, and why."""
    where = "Crops of the files anonymize wrote after verification (every redaction in place)" + (
        "; other methods only on the builtin benchmark's package faces."
        if builtin
        else "; on your images no other method is rendered."
    )
    if not plan.omitted:
        return where
    by_reason: dict[str, list[str]] = {}
    for o in plan.omitted:
        by_reason.setdefault(o.reason, []).append(o.method)
    return f"{where} Left out: " + " ".join(f"{', '.join(ms)}: {r}." for r, ms in by_reason.items())


def method_samples(
    images: Sequence[WrittenImage],
    *,
    plan: SamplePlan,
    benchmark_raw: Sequence[Image] | None,
    options: Mapping[str, Mapping[str, Any]],
    noise: np.random.Generator,
    builtin: bool,
    n: int = 3,
    height: int = 160,
) -> MethodSamples:
    """The figure's crops: around the largest redacted face of the first `n` written images with one.

    Args:
        images: written (verified) images with their records.
        plan: `plan_samples`' decision.
        benchmark_raw: the builtin benchmark's raw images, parallel to `images` (their package faces are
            re-obfuscated for the `BENCHMARK` rows); None when the plan has no such row.
        options: method → obfuscator options (`compare.method_options`).
        noise: dp_pixelate's and the soft fill's noise: a fresh OS-entropy generator, never the params' seed.
        builtin: the data is the builtin benchmark (what the note says).
        n: images per row.
        height: crop height in pixels.
    Raises:
        InvalidInputError: a `BENCHMARK` row without the benchmark's raw images, or sizes that differ.
        AnonymizationError: a method left a face's pixels as they were.
    """
    picked = [i for i, w in enumerate(images) if len(w.faces())][:n]
    rows = []
    for method, source in plan.shown if picked else ():
        crops = []
        for i in picked:
            w = images[i]
            pixels = (
                w.image
                if source == WRITTEN
                else benchmark_image(
                    w, _raw(benchmark_raw, i, w), method=method, options=options, noise=noise
                )
            )
            crops.append(
                crop_resized(
                    pixels,
                    context_region(w.faces(), width=w.image.shape[1], height=w.image.shape[0]),
                    height=height,
                )
            )
        rows.append((method, source, tuple(crops)))
    note = (
        samples_note(plan, builtin=builtin) if picked else "No written image has a redacted face: no samples."
    )
    return MethodSamples(tuple(rows), plan.omitted, note)


def _raw(raw: Sequence[Image] | None, i: int, w: WrittenImage) -> Image:
    if raw is None or len(raw) <= i:
        raise InvalidInputError("method samples: a benchmark row needs the builtin benchmark's raw images")
    if raw[i].shape != w.image.shape:
        raise InvalidInputError(
            f"method samples: raw {raw[i].shape} and written {w.image.shape} sizes differ"
        )
    return raw[i]


def benchmark_image(
    w: WrittenImage,
    raw: Image,
    *,
    method: str,
    options: Mapping[str, Mapping[str, Any]],
    noise: np.random.Generator,
) -> Image:
    """The written image with its face boxes redone by `method` from the builtin benchmark's package faces.

    Only face-box pixels are raw before obfuscation (never where another redaction overlaps them); every
    other pixel, and what inpainting fills from, is the written file's.

    Args:
        w: a written image of the builtin benchmark.
        raw: its raw image (the same size).
        method: an `OBFUSCATORS` key.
        options: method → obfuscator options.
        noise: dp_pixelate's and the soft fill's noise (fresh, never the params' seed).
    Raises:
        AnonymizationError: the method left a face's pixels as they were.
    """
    faces = w.faces()
    inside = np.zeros(w.image.shape[:2], bool)
    for x0, y0, x1, y1 in faces:
        inside[y0:y1, x0:x1] = True
    for (x0, y0, x1, y1), c in zip(w.boxes, w.categories, strict=True):
        if c != "face":
            inside[y0:y1, x0:x1] = False
    hybrid = np.where(inside[..., None], raw, w.image)
    kwargs = dict(options.get(method, {}))
    if method in ("dp_pixelate", "inpaint_soft"):
        kwargs["rng"] = noise
    out = OBFUSCATORS[method](hybrid, faces, **kwargs)
    for x0, y0, x1, y1 in faces:
        if np.array_equal(out[y0:y1, x0:x1], raw[y0:y1, x0:x1]):
            raise AnonymizationError(f"method samples: {method} left a face unchanged")
    return np.where(inside[..., None], out, w.image).astype(np.uint8)


def figure_noise(entropy: int) -> np.random.Generator:
    """The generator of the samples' dp_pixelate noise, from `entropy` the caller draws from the OS for each
    figure (never the committed seed: a figure's noise must not be reproducible from the repository)."""
    return np.random.default_rng(entropy)
