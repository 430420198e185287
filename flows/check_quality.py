"""check_quality: what anonymization cost and what it left.

- per image (all of them, in process-pool shards): PSNR / SSIM / MS-SSIM whole and outside the boxes,
  redaction recall against the COCO ground truth, faces an independent detector (dlib) still finds,
  the facts the Great Expectations suite checks, read back from each written file (sha256, size, metadata);
- re-identification of the anonymized faces (naive / adaptive / trained attacks), text still readable
  (personal text and plates by an independent OCR, Tesseract, calibrated on the raw images; signage by rapidocr),
  task utility (a model trained once on raw train images, tested on raw vs anonymized test images);
- the method comparison: every `compare_methods` method on the same raw test images → a table and a
  privacy–utility scatter plot; LPIPS when weights are configured (else reported unavailable).

Reads raw pixels to compare, but logs and writes only aggregates: no face, crop or embedding leaves a task —
except `method_samples.png`, crops of the files anonymize *wrote* (verified) per method; other methods only on
the builtin benchmark's package faces, never re-obfuscated user images (a clear row is refused).
"""

from __future__ import annotations

import os
import threading
from dataclasses import asdict
from typing import Any

import numpy as np
import pandas as pd
from prefect import flow, task, unmapped
from prefect.cache_policies import NO_CACHE

from flows import io, tracking
from flows.common import class_names, process_runner, progress_results, run_stage, timed_part, write_metrics
from flows.expectations import validate_anonymized_manifest
from tasks.anonymize.engine import method_for
from tasks.auditors import RESIDUAL_DETECTORS
from tasks.check_quality.appearance import pad_sensitive
from tasks.check_quality.compare import (
    CompareConfig,
    CompareTools,
    MethodRow,
    compare_method,
    method_options,
    sensitive_pads,
)
from tasks.check_quality.linkage import linkage_attack
from tasks.check_quality.lpips import LpipsStatus, build_lpips, lpips_distances
from tasks.check_quality.manifest import BOOKKEEPING_FILES, FileFacts, audit_frame, file_facts
from tasks.check_quality.plots import method_samples_figure, privacy_utility_figure
from tasks.check_quality.reid import NONE, AttackConfig, FaceEmbedder, attack, gallery_faces, match
from tasks.check_quality.samples import (
    WrittenImage,
    even_sample,
    make_sample,
    method_samples,
    one_per_identity,
    plan_samples,
)
from tasks.check_quality.summary import ImageRecord, image_record, summarize
from tasks.check_quality.tesseract import (
    AUDITED_CATEGORIES,
    audit_text,
    auditor_calibration,
    tesseract_reader,
    tesseract_status,
)
from tasks.check_quality.text import TEXT_CATEGORIES, ocr_reader, read_strings, readability
from tasks.check_quality.utility import (
    body_detector,
    load_task_model,
    paired_utility,
    preserved,
    task_inputs,
    train_task_model,
)
from tasks.codec import decode_image
from tasks.groundtruth import gt_boxes, gt_details
from tasks.params import CheckQualityParams, Params
from tasks.types import Detector

_local = threading.local()  # models are built once per worker; task functions are pickled by value,
# so they reach module state only through module-level functions like this one


def _auditor(p: CheckQualityParams) -> Detector:
    if getattr(_local, "key", None) != p:
        _local.key = p
        _local.detector = RESIDUAL_DETECTORS[p.residual_detector](upsample=p.residual_upsample)
    return _local.detector


def _cached(name: str, build: Any) -> Any:
    if not hasattr(_local, name):
        setattr(_local, name, build())
    return getattr(_local, name)


def _embedder() -> FaceEmbedder:
    return _cached("embedder", FaceEmbedder)


def _ocr() -> Any:
    return _cached("ocr", ocr_reader)


def _body(params: Params) -> Detector:
    return _cached("body", lambda: body_detector(params.anonymize.body.model_dump()))


@task(cache_policy=NO_CACHE)
def check_shard(
    rows: list[dict[str, Any]],
    gt: dict[str, dict[str, np.ndarray]],
    *,
    raw: str,
    anon: str,
    p: CheckQualityParams,
    pads: dict[str, float] | None = None,
) -> list[dict[str, Any]]:
    """Per-image records of one shard plus the GX facts (aggregates only: no pixels leave the task).
    `pads`: the appearance measures' sensitive boxes are the ground truth padded by these (category →
    share per side); None: the redacted detections."""
    detector = _auditor(p)
    out = []
    for row in rows:
        data = io.read_bytes(f"{anon}/{row['path']}")
        anon_img = decode_image(data, name=row["path"])
        rec = image_record(
            io.read_image(f"{raw}/{row['path']}"),
            anon_img,
            image_id=row["id"],
            gt_boxes_by_category=gt.get(row["id"], {}),
            redacted_boxes=np.asarray(row["boxes"], np.int64).reshape(-1, 4),
            detector=detector,
            match_iou=p.match_iou,
            calibrate=row["calibrate"],
            appearance_boxes=None if pads is None else pad_sensitive(gt.get(row["id"], {}), pads=pads,
                                                                     shape=anon_img.shape[:2]),
        )
        facts = asdict(file_facts(data, name=row["path"]))  # read back from the bytes, for the GX suite
        out.append(rec.as_dict() | {"gx": {"path": row["path"]} | facts})
    return out


def _attack_config(params: Params, method: str) -> AttackConfig:
    p, a = params.check_quality, params.anonymize
    return AttackConfig(
        method=method,
        options=method_options(a),
        pad=a.face.pad,
        gallery_side=p.reid_gallery_side,
        train_per_identity=p.reid_train_per_identity,
        face_sizes=params.ingest.face_size,
        feature_side=p.reid_feature_side,
        seed=params.seed,
    )


@task(cache_policy=NO_CACHE)
@timed_part("check_quality", "identity gallery")
def gallery_task() -> np.ndarray:
    """(100, 128) embeddings of the identities' clear faces (package assets, not user data)."""
    return _embedder()(list(gallery_faces()))


@task(cache_policy=NO_CACHE)
@timed_part("check_quality", "re-identification attacks")
def reid_task(
    rows: list[dict[str, Any]], gt: dict[str, Any], clear_gallery: np.ndarray, *, params: Params
) -> dict[str, float]:
    """The three attacks on anonymized face crops (ground-truth boxes), and the naive one on their raw crops."""
    crops: dict[str, list[np.ndarray]] = {"raw": [], "anon": []}
    ids: list[int] = []
    for row in rows:
        images = {
            k: io.read_image(f"{getattr(params.paths, 'raw' if k == 'raw' else 'anonymized')}/{row['path']}")
            for k in crops
        }
        for box, ident, _ in gt.get(row["id"], {}).get("face", []):
            x0, y0, x1, y1 = box
            for k, img in images.items():
                crops[k].append(np.ascontiguousarray(img[y0:y1, x0:x1]))
            ids.append(int(ident))
    n = params.check_quality.reid_probes
    sel, y = np.linspace(0, len(ids) - 1, min(n, len(ids))).round().astype(int), np.asarray(ids)
    a = params.anonymize
    method = a.methods.get("face", a.method)
    report = attack(
        [crops["anon"][i] for i in sel],
        y[sel],
        config=_attack_config(params, method),
        embed=_embedder(),
        clear_gallery=clear_gallery,
    )
    clear = match(
        _embedder()([crops["raw"][i] for i in sel]), y[sel], clear_gallery, np.arange(len(clear_gallery))
    )
    return report.as_metrics("reid") | clear.as_metrics("reid_clear_naive")


@task(cache_policy=NO_CACHE)
@timed_part("check_quality", "linkage attack")
def linkage_task(rows: list[dict[str, Any]], gt: dict[str, Any], *, use_gt: bool, params: Params) -> dict[str, float]:
    """The identity-free linkage attack on an even sample of faces (at most one per known identity, so the
    attack names the face, not a look-alike of the same person); {} with fewer than 2 faces."""
    faces = even_sample(one_per_identity(rows, gt, use_gt=use_gt), params.check_quality.reid_probes)  # type: ignore[arg-type]
    if len(faces) < 2:
        return {"check_quality/linkage_n_faces": float(len(faces))}
    crops: dict[str, list[np.ndarray]] = {"raw": [], "anon": []}
    for row, (x0, y0, x1, y1) in faces:
        for k, root in (("raw", params.paths.raw), ("anon", params.paths.anonymized)):
            crops[k].append(np.ascontiguousarray(io.read_image(f"{root}/{row['path']}")[y0:y1, x0:x1]))
    a = params.anonymize
    result = linkage_attack(crops["raw"], crops["anon"], method=a.methods.get("face", a.method),
                            options=method_options(a), pad=a.face.pad, embed=_embedder(), seed=params.seed)
    return result.as_metrics("linkage") | {"check_quality/linkage_from_ground_truth": float(use_gt)}


@task(cache_policy=NO_CACHE)
@timed_part("check_quality", "OCR readability")
def text_task(rows: list[dict[str, Any]], gt: dict[str, Any], *, params: Params) -> dict[str, Any]:
    """Ground-truth strings still read on raw and anonymized images: personal text and plates by the
    independent auditor (Tesseract; NaN with the reason when it cannot run), non-personal text by rapidocr;
    detections of the categories not targeted preserved (people by the body detector, faces by the auditor).
    Returns {"metrics": ..., "auditors": engine names, "unavailable": reasons}."""
    p, status = params.check_quality, tesseract_status()
    auditor = tesseract_reader() if status.available else None
    untargeted = _untargeted(params)
    per_image, kept = [], {c: [0, 0] for c in untargeted}
    for start in range(0, len(rows), 16):  # 16 images per Tesseract run (its start-up is paid once)
        chunk = [(io.read_image(f"{params.paths.raw}/{r['path']}"), io.read_image(f"{params.paths.anonymized}/"
                  f"{r['path']}"), {c: [(i[0], str(i[2])) for i in gt.get(r["id"], {}).get(c, [])]
                                    for c in TEXT_CATEGORIES}) for r in rows[start : start + 16]]
        audited = (audit_text(chunk, reader=auditor, min_similarity=p.text_min_similarity) if auditor is not None
                   else [{c: (0, 0, len(items[c])) for c in AUDITED_CATEGORIES} for _, _, items in chunk])
        for (raw, anon, items), counts in zip(chunk, audited, strict=True):
            per_image.append(counts | {"text_nonpii": _nonpii_counts(raw, anon, items["text_nonpii"], p)})
            for c, detect in untargeted.items():
                k, t = preserved(detect(raw), detect(anon), match_iou=p.match_iou)
                kept[c] = [kept[c][0] + k, kept[c][1] + t]
    text = readability(per_image, unread=() if auditor is not None else AUDITED_CATEGORIES)
    m = text.as_metrics() | auditor_calibration(text).as_metrics()
    for c, (k, t) in kept.items():
        m |= {f"check_quality/{c}_preserved": k / t if t else float("nan"),
              f"check_quality/{c}_raw_detections": float(t)}
    engines = {"text_readability": status.engine, "text_nonpii_preserved": _rapidocr_name()}
    return {"metrics": m, "auditors": engines,
            "unavailable": {} if status.available else {"text_readability": status.reason}}


def _untargeted(params: Params) -> dict[str, Detector]:
    """Detectors of the people categories the anonymizer did not target (`check_quality.body_check`): the
    body detector when bodies are kept, the residual-face auditor when faces are."""
    if not params.check_quality.body_check:
        return {}
    targets = params.anonymize.targets
    found = {"body": _body(params)} if "body" not in targets else {}
    return found | ({"face": _auditor(params.check_quality)} if "face" not in targets else {})


def _nonpii_counts(raw: np.ndarray, anon: np.ndarray, items: list[tuple[Any, str]], p: CheckQualityParams
                   ) -> tuple[int, int, int]:
    """Non-personal strings read by rapidocr (a utility measure) on the raw and anonymized image; rapidocr
    runs only on images that have such strings."""
    if not items:
        return 0, 0, 0
    boxes, texts = [b for b, _ in items], [t for _, t in items]
    hits = [read_strings(boxes, texts, *_ocr()(img), min_similarity=p.text_min_similarity) for img in (raw, anon)]
    return int(hits[0].sum()), int(hits[1].sum()), len(items)


def _rapidocr_name() -> str:
    from importlib.metadata import version

    return f"rapidocr-onnxruntime {version('rapidocr-onnxruntime')} (PP-OCRv4, the anonymizer's own reader)"


def _split(
    manifest: pd.DataFrame, root: str, split: str, ids: set[str] | None = None
) -> tuple[list, np.ndarray]:
    rows = manifest[(manifest["split"] == split) & (manifest["id"].isin(ids) if ids is not None else True)]
    return [io.read_image(f"{root}/{r}") for r in rows["path"]], rows["label"].to_numpy(np.int64)


@task(cache_policy=NO_CACHE)
@timed_part("check_quality", "utility (task model on raw images)")
def utility_task(*, params: Params) -> tuple[dict[str, Any] | None, dict[str, float]]:
    """Train the task model once on raw train images; its accuracy on raw vs anonymized test images.
    (None, {}) without labels: there is no task to measure."""
    t, raw, anon = params.train, params.paths.raw, params.paths.anonymized
    names = class_names(raw)
    if not names:
        return None, {}
    manifest = io.read_table(f"{raw}/manifest.parquet")
    train_ids = manifest.loc[manifest["split"] == "train", "id"].tolist()
    x, y = _split(
        manifest,
        raw,
        "train",
        {r["id"] for r in even_sample([{"id": i} for i in train_ids], params.check_quality.utility_train_images)},
    )
    x_train = task_inputs(x, train=t)
    model = train_task_model(x_train, y, train=t, seed=params.seed, num_classes=len(names))
    anon_ids = set(io.read_table(f"{anon}/manifest.parquet")["id"])
    raw_test, y_test = _split(manifest, raw, "test", anon_ids)
    anon_test, _ = _split(manifest, anon, "test", anon_ids)
    result = paired_utility(model, task_inputs(raw_test, train=t), task_inputs(anon_test, train=t), y_test)
    state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
    in_shape = (int(x_train.shape[1]), int(x_train.shape[2]), int(x_train.shape[3]))
    return {"state": state, "num_classes": len(names), "in_shape": in_shape}, result.as_metrics("utility")


@task(cache_policy=NO_CACHE)
@timed_part("check_quality", lambda method, *a, **k: f"method comparison {method}")
def compare_task(
    method: str,
    rows: list[dict[str, Any]],
    gt: dict[str, Any],
    clear_gallery: np.ndarray,
    model: tuple[dict[str, Any] | None, dict[str, float]],
    *,
    use_gt: bool,
    params: Params,
) -> dict[str, Any]:
    """One row of the method comparison (aggregates only)."""
    p = params.check_quality
    samples = [make_sample(r, gt, io.read_image(f"{params.paths.raw}/{r['path']}"), use_gt=use_gt,
                       known_ids=params.ingest.source == "builtin") for r in rows]
    spec = model[0]
    net = None if spec is None else load_task_model(spec["state"], train=params.train, num_classes=spec["num_classes"],
                                                   seed=params.seed, in_shape=spec["in_shape"])
    ocr = _ocr()
    tools = CompareTools(
        detector=_auditor(p),
        embed=_embedder(),
        clear_gallery=clear_gallery,
        model=net,
        train=params.train,
        ocr=ocr if p.compare_text_images else None,
        body=_body(params) if p.body_check and p.compare_people_images else None,  # bodies never targeted here
    )
    config = CompareConfig(
        anonymize=params.anonymize,
        attack=_attack_config(params, method),
        probes=p.compare_probes,
        residual_images=p.compare_residual_images,
        text_images=p.compare_text_images,
        text_min_similarity=p.text_min_similarity,
        seed=params.seed,
        match_iou=p.match_iou,
        people_images=p.compare_people_images,
    )
    return compare_method(samples, method=method, config=config, tools=tools).as_dict()


@task(cache_policy=NO_CACHE)
@timed_part("check_quality", "method samples figure")
def method_samples_task(rows: list[dict[str, Any]], table: list[dict[str, Any]], *, params: Params) -> None:
    """plots/check_quality/method_samples.png (+ .json, no pixels): crops of the files anonymize wrote after
    verification around a redacted face, for the methods `samples.plan_samples` allows (`table`: the method
    table's rows); raw pixels are read only on the builtin benchmark, for its package faces."""
    a, builtin = params.anonymize, params.ingest.source == "builtin"
    rows = [r for r in rows if r["status"] == "anonymized" and "face" in r["categories"]][:3]
    plan = plan_samples(params.check_quality.compare_methods, applied=method_for("face", method=a.method,
                        methods=a.methods), table=table, gates=params.gates, builtin=builtin)
    written = [WrittenImage.from_record(r, io.read_image(f"{params.paths.anonymized}/{r['path']}")) for r in rows]
    raw = [io.read_image(f"{params.paths.raw}/{r['path']}") for r in rows] if builtin else None
    # a fresh OS-entropy generator: dp_pixelate's noise never comes from the committed seed, and is never logged
    samples = method_samples(written, plan=plan, benchmark_raw=raw, options=method_options(a),
                             noise=np.random.default_rng(), builtin=builtin)
    title = "Anonymized images per method: each face and its surroundings (never the clear image)"
    io.save_figure(f"{params.paths.plots}/check_quality/method_samples.png", method_samples_figure(samples, title=title))
    io.write_json(f"{params.paths.plots}/check_quality/method_samples.json", samples.as_dict())


@task(cache_policy=NO_CACHE)
@timed_part("check_quality", "LPIPS")
def lpips_task(rows: list[dict[str, Any]], *, params: Params) -> dict[str, float]:
    """LPIPS on a sample when weights are configured; otherwise `lpips_available = 0` with the reason."""
    file = params.check_quality.lpips_weights
    if file is None:
        status = LpipsStatus(
            False,
            "check_quality.lpips_weights is null: LPIPS needs AlexNet backbone weights, "
            "a torchvision download that is not available offline",
        )
    elif not io.path(file).is_file():
        status = LpipsStatus(False, f"check_quality.lpips_weights: {io.path(file)} not found")
    else:
        model = build_lpips(io.load_state_dict(file))
        d = [
            lpips_distances(
                model,
                [io.read_image(f"{params.paths.raw}/{r['path']}")],
                [io.read_image(f"{params.paths.anonymized}/{r['path']}")],
            )[0]
            for r in rows
        ]
        status = LpipsStatus(True, f"LPIPS-Alex from {file}", float(np.mean(d)), len(d))
    return status.as_metrics() | {"reason": status.reason}  # type: ignore[dict-item]


def _write_compare(plots: Any, rows: list[dict[str, Any]]) -> dict[str, float]:
    table = [MethodRow(**r) for r in rows]
    io.write_json(plots / "compare_methods.json", rows)
    pd.DataFrame(rows).to_csv(plots / "compare_methods.csv", index=False)
    io.save_figure(plots / "privacy_utility.png", privacy_utility_figure(table))
    return {k: v for r in table for k, v in r.as_metrics().items()}


def _auditors(params: Params, read: dict[str, Any]) -> dict[str, Any]:
    """Which engine measured what (not metrics: names), and why an auditor could not run."""
    from importlib.metadata import version

    return {"residual_face": params.check_quality.residual_detector, "manifest":
            f"great_expectations {version('great-expectations')} (facts re-read from the files)",
            **read["auditors"], "unavailable": read["unavailable"]}


def _gx(params: Params, records: list[dict[str, Any]], *, use_gt: bool) -> dict[str, float]:
    """The anonymized manifest's claims beside facts read back from the folder (every file hashed and read
    by Pillow), the raw manifest and the check's own residual-face auditor, through the GX suite."""
    anon = params.paths.anonymized
    facts = {r["gx"]["path"]: FileFacts(**{k: v for k, v in r["gx"].items() if k != "path"}) for r in records}
    on_disk = [f for f in io.list_files(anon) if f not in BOOKKEEPING_FILES]
    written = {f: facts[f] if f in facts else file_facts(io.read_bytes(f"{anon}/{f}"), name=f) for f in on_disk}
    # faces the auditor matched to ground truth; without face ground truth, every face it still detects
    key = "residual_faces_matched" if use_gt else "residual_face_detections"
    raw_m = io.read_table(f"{params.paths.raw}/manifest.parquet")
    frame = audit_frame(
        raw=raw_m,
        anonymized=io.read_table(f"{anon}/manifest.parquet"),
        quarantined=[q["id"] for q in io.read_jsonl(f"{anon}/quarantine.jsonl")],
        written=written,
        residual={r["image_id"]: int(r[key]) for r in records},
    )
    gx = validate_anonymized_manifest(frame, out_dir=f"{params.paths.reports}/gx/check_quality", n_raw=len(raw_m),
                                      max_residual_share=params.gates.max_residual_face_rate)
    return {
        "check_quality/gx_success": float(gx["success"]),
        "check_quality/gx_failed_expectations": gx["n_failed"],
    }


@flow(name="check_quality", task_runner=process_runner())
def check_quality() -> dict[str, float]:
    params = io.load_params()
    p, raw, anon = params.check_quality, params.paths.raw, params.paths.anonymized
    plots = io.clean_dir(f"{params.paths.plots}/check_quality")
    with tracking.stage_run("check_quality", params=params, inputs=[raw, anon], outputs=[str(plots)]) as run:
        all_rows = io.read_jsonl(f"{anon}/records.jsonl")
        rows = [r for r in all_rows if r["status"] == "anonymized"]
        step = max(1, len(rows) // p.auditor_calibration_images)
        rows = [r | {"calibrate": i % step == 0} for i, r in enumerate(rows)]
        details = gt_details(io.read_json(f"{raw}/annotations.json"))
        gt = gt_boxes(io.read_json(f"{raw}/annotations.json"))
        use_gt = any(c.get("face") for c in details.values())  # face ground truth (builtin, COCO) or detections
        gallery = gallery_task.submit()
        utility = utility_task.submit(params=params)
        test_rows = [r for r in rows if r["split"] == "test"] or rows
        compare_rows = even_sample(test_rows, p.compare_images)
        compare = compare_task.map(
            [NONE, *p.compare_methods],
            unmapped(compare_rows),
            unmapped(details),
            unmapped(gallery),
            unmapped(utility),
            use_gt=unmapped(use_gt),
            params=unmapped(params),
        )
        # the compared images first; when none of them shows a face (a small test split), any anonymized one
        shown = {r["id"] for r in compare_rows}
        grid = method_samples_task.submit(compare_rows + [r for r in rows if r["id"] not in shown], list(compare),
                                          params=params)
        # the identity attacks name faces among a clear gallery of the identities: the builtin set's LFW faces
        # (a COCO import's person ids keep one linkage sample face per person, see linkage_task)
        face_rows = [r for r in rows if any(a[1] is not None for a in details.get(r["id"], {}).get("face", []))
                     and params.ingest.source == "builtin"]
        reid = reid_task.submit(face_rows, details, gallery, params=params) if face_rows else None
        linkage = linkage_task.submit(rows, details, use_gt=use_gt, params=params)
        text = text_task.submit(even_sample(rows, p.text_images), details, params=params) if p.text_images else None
        lpips = lpips_task.submit(even_sample(rows, p.lpips_images), params=params)
        n = max(1, len(rows) // (4 * (os.cpu_count() or 2)))
        shards = [rows[i : i + n] for i in range(0, len(rows), n)]
        a = params.anonymize  # appearance: ground truth (builtin, COCO faces) padded as the detectors pad, or None
        pads = sensitive_pads(a) | ({"body": a.body.pad} if "body" in a.targets else {}) if use_gt else None
        futures = check_shard.map(shards, unmapped(gt), raw=unmapped(raw), anon=unmapped(anon), p=unmapped(p),
                                  pads=unmapped(pads))
        records = [r for part in progress_results(list(futures), sizes=[len(s) for s in shards],
                                                  desc="check_quality") for r in part]
        summary = summarize(
            [ImageRecord.from_dict({k: v for k, v in r.items() if k != "gx"}) for r in records]
        )
        lp = lpips.result()
        metrics = summary.as_metrics() | (reid.result() if reid else {}) | utility.result()[1] | linkage.result()
        read = text.result() if text else {"metrics": {}, "auditors": {},
                                           "unavailable": {"text_readability": "check_quality.text_images is 0"}}
        metrics |= read["metrics"] | {k: v for k, v in lp.items() if k != "reason"} | _gx(params, records, use_gt=use_gt)
        run.extra["auditors"] = _auditors(params, read)  # engine names: reports/runs/check_quality.json
        metrics |= _write_compare(plots, [f.result() for f in compare])
        io.write_json(plots / "summary.json", {"headline": summary.headline(), "lpips": lp["reason"]})
        metrics = write_metrics("check_quality", metrics, metrics_dir=params.paths.metrics)
        run.log_metrics(metrics)
        run.set_tags({"headline": summary.headline(), "lpips": str(lp["reason"])[:250]})
        grid.result()  # crops of the written (verified) files only, or the builtin benchmark's package faces
        for name in ("compare_methods.json", "compare_methods.csv", "privacy_utility.png", "method_samples.png",
                     "method_samples.json"):
            run.log_artifact(plots / name, artifact_path="check_quality")
    return metrics


if __name__ == "__main__":
    run_stage("check_quality")
