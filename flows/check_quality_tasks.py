"""check_quality's Prefect tasks: each reads the images it measures and hands them to `tasks.check_quality`;
only aggregates (numbers, file facts, engine names) are returned, never pixels, crops or embeddings.

The models (auditor, embedder, OCR, body detector) are built once per worker process and thread.
"""

from __future__ import annotations

import secrets
import threading
from collections.abc import Callable
from importlib.metadata import version
from typing import Any, TypeVar, cast

from prefect import task
from prefect.cache_policies import NO_CACHE

from flows import io
from flows.common import class_names, timed_part
from tasks import layout
from tasks.anonymize.engine import method_for
from tasks.auditors import RESIDUAL_DETECTORS
from tasks.check_quality import plan
from tasks.check_quality import samples as cs
from tasks.check_quality.attacks import crop, identity_faces, linkage_metrics, reid_metrics
from tasks.check_quality.compare import CompareTools, compare_method, method_options
from tasks.check_quality.lpips import build_lpips, lpips_distances, lpips_measured, lpips_missing
from tasks.check_quality.outputs import SAMPLES_JSON, SAMPLES_PNG
from tasks.check_quality.per_image import check_image
from tasks.check_quality.plots import method_samples_figure
from tasks.check_quality.readable import CHUNK, TextTally, tally_chunk, text_items, text_metrics
from tasks.check_quality.reid import AttackConfig, FaceEmbedder, gallery_faces
from tasks.check_quality.tesseract import tesseract_reader, tesseract_status
from tasks.check_quality.text import ocr_reader
from tasks.check_quality.utility import body_detector, measure_utility, model_from_spec
from tasks.params import CheckQualityParams, Params
from tasks.types import Detector

STAGE = "check_quality"
T = TypeVar("T")
_local = (
    threading.local()
)  # models are built once per worker; a process pool reaches them through these functions


def _auditor(p: CheckQualityParams) -> Detector:
    if getattr(_local, "key", None) != p:
        _local.key = p
        _local.detector = RESIDUAL_DETECTORS[p.residual_detector](upsample=p.residual_upsample)
    detector: Detector = _local.detector
    return detector


def _cached(name: str, build: Callable[[], T]) -> T:
    if not hasattr(_local, name):
        setattr(_local, name, build())
    return cast(T, getattr(_local, name))


def _embedder() -> FaceEmbedder:
    return _cached("embedder", FaceEmbedder)


def _body(params: Params) -> Detector:
    return _cached("body", lambda: body_detector(params.anonymize.body.model_dump()))


def _pair(params: Params, path: str) -> tuple[Any, Any]:
    """The raw and the anonymized image at `path`."""
    return io.read_image(f"{params.paths.raw}/{path}"), io.read_image(f"{params.paths.anonymized}/{path}")


@task(cache_policy=NO_CACHE)
def check_shard(
    rows: list[dict[str, Any]],
    gt: dict[str, dict[str, Any]],
    *,
    raw: str,
    anon: str,
    p: CheckQualityParams,
    pads: dict[str, float] | None = None,
) -> list[dict[str, Any]]:
    """Per-image records of one shard plus the GX facts (`per_image.check_image`: no pixels leave the task)."""
    detector = _auditor(p)
    return [
        check_image(
            row,
            io.read_image(f"{raw}/{row['path']}"),
            io.read_bytes(f"{anon}/{row['path']}"),
            gt.get(row["id"], {}),
            detector=detector,
            match_iou=p.match_iou,
            pads=pads,
        )
        for row in rows
    ]


@task(cache_policy=NO_CACHE)
@timed_part(STAGE, "identity gallery")
def gallery_task() -> Any:
    """(100, 128) embeddings of the identities' clear faces (package assets, not user data)."""
    return _embedder()(list(gallery_faces()))


def _attack_config(params: Params, method: str) -> AttackConfig:
    return plan.attack_config(
        check_quality=params.check_quality,
        anonymize=params.anonymize,
        face_sizes=params.ingest.face_size,
        method=method,
        seed=params.seed,
    )


@task(cache_policy=NO_CACHE)
@timed_part(STAGE, "re-identification attacks")
def reid_task(
    rows: list[dict[str, Any]], gt: dict[str, Any], clear_gallery: Any, *, params: Params
) -> dict[str, float]:
    """The three attacks on anonymized face crops (ground-truth boxes), and the naive one on their raw crops."""
    raw_crops, anon_crops, ids = [], [], []
    for row in rows:
        raw, anon = _pair(params, row["path"])
        for box, ident in identity_faces(gt.get(row["id"], {}).get("face", [])):
            raw_crops.append(crop(raw, box))
            anon_crops.append(crop(anon, box))
            ids.append(ident)
    return reid_metrics(
        raw_crops,
        anon_crops,
        ids,
        probes=params.check_quality.reid_probes,
        embed=_embedder(),
        config=_attack_config(params, plan.face_method(params.anonymize)),
        clear_gallery=clear_gallery,
    )


@task(cache_policy=NO_CACHE)
@timed_part(STAGE, "linkage attack")
def linkage_task(
    rows: list[dict[str, Any]], gt: dict[str, Any], *, use_gt: bool, params: Params
) -> dict[str, float]:
    """The identity-free linkage attack on an even sample of faces (at most one per known identity, so the
    attack names the face, not a look-alike of the same person)."""
    faces = cs.even_sample(cs.one_per_identity(rows, gt, use_gt=use_gt), params.check_quality.reid_probes)
    raw_crops, anon_crops = [], []
    for row, box in faces:
        raw, anon = _pair(params, row["path"])
        raw_crops.append(crop(raw, box))
        anon_crops.append(crop(anon, box))
    a = params.anonymize
    return linkage_metrics(
        raw_crops,
        anon_crops,
        method=plan.face_method(a),
        options=method_options(a),
        pad=a.face.pad,
        embed=_embedder(),
        seed=params.seed,
        from_ground_truth=use_gt,
    )


def _untargeted(params: Params) -> dict[str, Detector]:
    """`plan.untargeted_people`' detectors: bodies by the anonymizer's body detector, faces by the auditor."""
    tools = {"body": lambda: _body(params), "face": lambda: _auditor(params.check_quality)}
    return {c: tools[c]() for c in plan.untargeted_people(params.check_quality, params.anonymize)}


@task(cache_policy=NO_CACHE)
@timed_part(STAGE, "OCR readability")
def text_task(rows: list[dict[str, Any]], gt: dict[str, Any], *, params: Params) -> dict[str, Any]:
    """Ground-truth strings still read on raw and anonymized images (`readable.tally_chunk`): personal text and
    plates by Tesseract (NaN with the reason when it cannot run), non-personal text by rapidocr; detections
    of the people categories not targeted. Returns {"metrics": ..., "auditors": names, "unavailable": reasons}."""
    p, status = params.check_quality, tesseract_status()
    auditor, untargeted, tally = (
        tesseract_reader() if status.available else None,
        _untargeted(params),
        TextTally(),
    )
    for start in range(0, len(rows), CHUNK):
        chunk = [
            (*_pair(params, r["path"]), text_items(gt.get(r["id"], {}))) for r in rows[start : start + CHUNK]
        ]
        tally_chunk(
            chunk,
            tally,
            auditor=auditor,
            ocr=lambda: _cached("ocr", ocr_reader),
            untargeted=untargeted,
            min_similarity=p.text_min_similarity,
            match_iou=p.match_iou,
        )
    rapidocr = (
        f"rapidocr-onnxruntime {version('rapidocr-onnxruntime')} (PP-OCRv4, the anonymizer's own reader)"
    )
    return {
        "metrics": text_metrics(tally, untargeted=untargeted, audited=auditor is not None),
        "auditors": {"text_readability": status.engine, "text_nonpii_preserved": rapidocr},
        "unavailable": {} if status.available else {"text_readability": status.reason},
    }


@task(cache_policy=NO_CACHE)
@timed_part(STAGE, "utility (task model on raw images)")
def utility_task(*, params: Params) -> tuple[dict[str, Any] | None, dict[str, float]]:
    """Train the task model once on raw train images; its accuracy on raw vs anonymized test images.
    (None, {}) without labels: there is no task to measure."""
    raw, anon = params.paths.raw, params.paths.anonymized
    names = class_names(raw)
    if not names:
        return None, {}
    manifest = io.read_table(f"{raw}/{layout.MANIFEST}")
    train_paths, y = plan.split_selection(
        manifest, "train", plan.utility_train_ids(manifest, images=params.check_quality.utility_train_images)
    )
    test_paths, y_test = plan.split_selection(
        manifest, "test", set(io.read_table(f"{anon}/{layout.MANIFEST}")["id"])
    )
    return measure_utility(
        [io.read_image(f"{raw}/{f}") for f in train_paths],
        y,
        [io.read_image(f"{raw}/{f}") for f in test_paths],
        [io.read_image(f"{anon}/{f}") for f in test_paths],
        y_test,
        train=params.train,
        seed=params.seed,
        num_classes=len(names),
    )


@task(cache_policy=NO_CACHE)
@timed_part(STAGE, lambda method, *a, **k: f"method comparison {method}")
def compare_task(
    method: str,
    rows: list[dict[str, Any]],
    gt: dict[str, Any],
    clear_gallery: Any,
    model: tuple[dict[str, Any] | None, dict[str, float]],
    *,
    use_gt: bool,
    params: Params,
) -> dict[str, Any]:
    """One row of the method comparison (aggregates only)."""
    p = params.check_quality
    samples = [
        cs.make_sample(
            r,
            gt,
            io.read_image(f"{params.paths.raw}/{r['path']}"),
            use_gt=use_gt,
            known_ids=params.ingest.source == "builtin",
        )
        for r in rows
    ]
    tools = CompareTools(
        detector=_auditor(p),
        embed=_embedder(),
        clear_gallery=clear_gallery,
        model=model_from_spec(model[0], train=params.train, seed=params.seed),
        train=params.train,
        ocr=_cached("ocr", ocr_reader) if p.compare_text_images else None,
        body=_body(params) if p.body_check and p.compare_people_images else None,
    )  # never targeted here
    config = plan.compare_config(
        check_quality=p, anonymize=params.anonymize, attack=_attack_config(params, method), seed=params.seed
    )
    return compare_method(samples, method=method, config=config, tools=tools).as_dict()


@task(cache_policy=NO_CACHE)
@timed_part(STAGE, "method samples figure")
def method_samples_task(rows: list[dict[str, Any]], table: list[dict[str, Any]], *, params: Params) -> None:
    """`SAMPLES_PNG` (+ `SAMPLES_JSON`, no pixels): crops of the files anonymize wrote after verification around
    a redacted face, for the methods `samples.plan_samples` allows (`table`: the method table's rows); raw
    pixels are read only on the builtin benchmark, for its package faces."""
    a, builtin, plots = params.anonymize, params.ingest.source == "builtin", f"{params.paths.plots}/{STAGE}"
    rows = plan.face_sample_rows(rows)
    shown = cs.plan_samples(
        params.check_quality.compare_methods,
        applied=method_for("face", method=a.method, methods={str(k): str(v) for k, v in a.methods.items()}),
        table=table,
        gates=params.gates,
        builtin=builtin,
    )
    written = [
        cs.WrittenImage.from_record(r, io.read_image(f"{params.paths.anonymized}/{r['path']}")) for r in rows
    ]
    raw = [io.read_image(f"{params.paths.raw}/{r['path']}") for r in rows] if builtin else None
    # OS entropy per figure: dp_pixelate's noise never comes from the committed seed, and is never logged
    samples = cs.method_samples(
        written,
        plan=shown,
        benchmark_raw=raw,
        options=method_options(a),
        noise=cs.figure_noise(secrets.randbits(128)),
        builtin=builtin,
    )
    title = "Anonymized images per method: each face and its surroundings (never the clear image)"
    io.save_figure(f"{plots}/{SAMPLES_PNG}", method_samples_figure(samples, title=title))
    io.write_json(f"{plots}/{SAMPLES_JSON}", samples.as_dict())


@task(cache_policy=NO_CACHE)
@timed_part(STAGE, "LPIPS")
def lpips_task(rows: list[dict[str, Any]], *, params: Params) -> dict[str, Any]:
    """LPIPS on a sample when weights are configured; otherwise `lpips_available = 0` with the reason."""
    file = params.check_quality.lpips_weights
    if file is None or not io.path(file).is_file():
        status = lpips_missing(file, resolved=None if file is None else str(io.path(file)))
    else:
        model, d = build_lpips(io.load_state_dict(file)), []
        for r in rows:
            raw, anon = _pair(params, r["path"])
            d.append(lpips_distances(model, [raw], [anon])[0])
        status = lpips_measured(file, d)
    return status.as_metrics() | {"reason": status.reason}
