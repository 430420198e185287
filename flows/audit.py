"""audit: attack the DP model and the non-private baseline the way an adversary would.

Membership inference (loss threshold, Shokri shadow models, LiRA online/offline with K shadow models
trained like each target), empirical ε lower bounds (Clopper–Pearson over the attacks, and a one-run
canary audit), model inversion (MI-Face) and gradient inversion (DLG, iDLG, Inverting Gradients)
under client-side defences. Members are the train split, non-members the holdout split, both from the
anonymized data; no raw pixels are read. Uses CUDA when present (same code, device chosen here).
With train.dp.unit not image, LiRA also asks "was this person trained on?" (person-disjoint shadows, a person's
images' scores summed: tasks/audit/person.py; identities from the ingest ground truth, never pixels), and a
capped run's canary audit inserts canary persons of `cap` images each.
"""

from __future__ import annotations

import time
from typing import Any

import pandas as pd
import torch
from prefect import flow, get_run_logger

from flows import io, tracking
from flows.common import SKIPPED, progress_bar, run_stage, skip_outputs, write_metrics
from tasks.audit.epsilon import check_empirical_epsilon
from tasks.audit.experiments import (
    Pool,
    canary_experiment,
    canary_person_experiment,
    dp_epsilon_summary,
    epsilon_bounds,
    joint_alpha,
    membership_audit,
    person_membership_audit,
    pool_units,
    shadow_trainers,
    subsample,
)
from tasks.audit.inversion_experiments import (
    figure_method,
    gradient_inversion_experiment,
    model_inversion_experiment,
)
from tasks.audit.mia import SHADOW_ATTACKS
from tasks.audit.person import MIN_SHADOWS
from tasks.audit.plots import (
    gradient_inversion_figure,
    model_inversion_figure,
    psnr_vs_accuracy_figure,
    roc_figure,
)
from tasks.audit.shadow import Trainer
from tasks.params import AuditParams, TrainParams
from tasks.train.dp import DpTrainingRecord
from tasks.train.models import ModelSpec
from tasks.train.person import known_units
from tasks.train.preprocess import prepare_inputs


def _load_model(folder: str, which: str, spec: ModelSpec) -> torch.nn.Module:
    model = spec.build()
    model.load_state_dict(io.load_state_dict(f"{folder}/{which}.pt"))
    return model.eval()


def _pool(params: Any, meta: ModelSpec) -> Pool:
    """Audited samples: up to max_samples members (the train images DP-SGD used) then non-members (holdout)."""
    data = params.paths.anonymized
    manifest = io.read_table(f"{data}/manifest.parquet")
    splits, ids = [], []
    kept = io.path(
        f"{params.paths.models}/kept_train_ids.json"
    )  # what DP-SGD trained on (train.dp.unit: a selection)
    trained = set(map(str, io.read_json(kept))) if kept.exists() else None
    for split, offset in (("train", 0), ("holdout", 1)):
        rows = manifest[manifest["split"] == split]
        if (
            split == "train" and trained is not None
        ):  # dropped by the per-unit cap: not members of the DP model
            rows = rows[rows["id"].astype(str).isin(trained)]
        # read only what is attacked
        rows = rows.iloc[subsample(len(rows), params.audit.max_samples, seed=params.seed + offset)]
        images, labels = io.load_split(rows, data, split)
        ids += rows["id"].astype(str).tolist()
        splits.append((prepare_inputs(images, features=meta.features, input_size=meta.input_size),
                       torch.from_numpy(labels.copy())))  # fmt: skip
    (members, nonmembers) = splits
    return Pool.from_splits(members, nonmembers, ids=tuple(ids))


def person_units(params: Any, pool: Pool) -> list[tuple[str, ...]] | None:
    """The persons (train.dp.unit's units) of each audited image; None when the unit is one image. Identities come
    from the ingest ground truth (`person`) or the anonymized manifest (a column, `video`), as train reads them."""
    unit = params.train.dp.unit
    if unit == "image":
        return None
    manifest = io.read_table(f"{params.paths.anonymized}/manifest.parquet")
    coco = io.read_json(f"{params.paths.raw}/annotations.json") if unit == "person" else None
    found = known_units(
        unit,
        image_ids=[str(i) for i in manifest["id"]],
        coco=coco,
        columns={str(c): manifest[c].tolist() for c in manifest.columns},
    )
    return pool_units(pool.ids, found)


def person_membership(targets: dict[str, torch.nn.Module], trainers: dict[str, Trainer], pool: Pool,
                       units: list[tuple[str, ...]], audit_params: AuditParams, seed: int, device: str,
                       cap: int | None = None) -> dict[str, float]:  # fmt: skip
    """Person-level LiRA on models trained like each target, on person-disjoint shadows (K >= 4); with fewer
    shadows it is not measured, and a per-person run's person-level gate then fails closed. `cap`: the DP run's
    images per person, which its shadows keep to as well (the baseline trained on every image)."""
    if audit_params.shadow.k < MIN_SHADOWS:
        get_run_logger().warning(
            "audit: person-level LiRA needs audit.shadow.k >= %d (got %d): not measured",
            MIN_SHADOWS,
            audit_params.shadow.k,
        )
        return {}
    with progress_bar(
        "audit person-disjoint shadows", total=audit_params.shadow.k * len(targets), unit="model"
    ) as bar:
        return {k: v for which in targets
                for k, v in person_membership_audit(which, trainers[which], pool, units, attacks=audit_params.attacks,
                                                    shadow=audit_params.shadow, seed=seed, device=device,
                                                    on_shadow=lambda _: bar.update(),
                                                    cap=cap if which == "dp" else None).items()}  # fmt: skip


def _trainers(record: DpTrainingRecord, t: TrainParams, spec: ModelSpec, device: str) -> dict[str, Trainer]:
    return shadow_trainers(record, spec=spec, lr=t.lr, nonprivate_lr=t.nonprivate_lr, momentum=t.momentum,
                           physical_batch_size=t.physical_batch_size, device=device)  # fmt: skip


def _membership(
    targets: dict[str, torch.nn.Module], trainers: dict[str, Trainer], pool: Pool, record: DpTrainingRecord,
    audit_params: AuditParams, seed: int, device: str,
) -> tuple[dict[str, float], dict[str, Any], list[dict[str, Any]]]:  # fmt: skip
    """Every membership attack and ε bound on each target: metrics, results (for the ROC), per-class rows."""
    metrics: dict[str, float] = {"audit/dp/theoretical_epsilon": record.epsilon}
    results: dict[str, Any] = {}
    class_rows: list[dict[str, Any]] = []
    shadows = (
        audit_params.shadow.k
        if audit_params.shadow.k >= 2 and SHADOW_ATTACKS & set(audit_params.attacks)
        else 0
    )
    with progress_bar("audit shadow models", total=shadows * len(targets), unit="model") as bar:
        outs = {which: membership_audit(which, model, trainers[which], pool, attacks=audit_params.attacks,
                                        shadow=audit_params.shadow, seed=seed, device=device,
                                        on_shadow=lambda _: bar.update())
                for which, model in targets.items()}  # fmt: skip
    for which, out in outs.items():
        metrics |= out.metrics | epsilon_bounds(which, out.scores, pool.is_member, delta=record.target_delta,
                                                audit=audit_params, seed=seed)  # fmt: skip
        results |= out.results
        class_rows += out.class_rows
    return metrics, results, class_rows


def _model_inversion(
    targets: dict[str, torch.nn.Module], pool: Pool, meta: ModelSpec, audit_params: AuditParams, plots: str,
    device: str,
) -> dict[str, float]:  # fmt: skip
    metrics, rows = model_inversion_experiment(targets, pool, spec=meta, settings=audit_params.model_inversion,
                                               device=device)  # fmt: skip
    io.save_figure(
        f"{plots}/model_inversion.png", model_inversion_figure(rows, class_names=list(meta.class_names))
    )
    return metrics


def _log_defence(row: dict[str, Any]) -> None:
    get_run_logger().info("audit: gradient inversion %s %s: PSNR %.2f dB, accuracy %.3f",
                          row["model"], row["defence"], row["psnr_max"], row["accuracy"])  # fmt: skip


def _gradient_inversion(
    record: DpTrainingRecord, t: TrainParams, meta: ModelSpec, pool: Pool, audit_params: AuditParams, plots: str,
    seed: int,
) -> dict[str, float]:  # fmt: skip
    """Invert one client gradient per (model, defence, method, batch size); accuracy cost per defence."""
    g = audit_params.gradient_inversion
    with progress_bar("audit gradient inversion", unit="defence") as bar:

        def on_defence(row: dict[str, Any]) -> None:
            _log_defence(row)
            bar.update()

        out = gradient_inversion_experiment(record, pool, spec=meta, settings=g, lr=t.lr, momentum=t.momentum,
                                            seed=seed, on_defence=on_defence)  # fmt: skip
    io.write_json(f"{plots}/gradient_inversion.json", {"attacks": out.attacks, "defences": out.defences})
    io.write_csv(f"{plots}/gradient_inversion.csv", pd.DataFrame(out.defences))
    io.save_figure(f"{plots}/gradient_inversion.png", gradient_inversion_figure(
        out.figure_rows, method=figure_method(g.methods), batch_size=max(g.batch_sizes)))  # fmt: skip
    io.save_figure(f"{plots}/gradient_inversion_psnr_vs_accuracy.png",
                   psnr_vs_accuracy_figure(out.defences, title="Gradient inversion vs defence utility"))  # fmt: skip
    return out.as_metrics()


@flow(name="audit")
def audit() -> dict[str, float]:
    params = io.load_params()
    cfg, models, seed = params.audit, params.paths.models, params.seed
    plots = f"{params.paths.plots}/audit"
    io.clean_dir(plots)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    with tracking.stage_run("audit", params=params, inputs=[models, f"{params.paths.anonymized}/manifest.parquet"],
                            outputs=[plots]) as run:  # fmt: skip
        if "skipped" in io.read_json(f"{models}/meta.json"):  # no labels: no model, nothing to attack
            run.extra["skipped"] = SKIPPED
            metrics = skip_outputs(params, stage="audit", reason=SKIPPED)
            run.log_metrics(metrics)
            return metrics
        meta = ModelSpec.from_dict(io.read_json(f"{models}/meta.json"))
        record = DpTrainingRecord.from_dict(io.read_json(f"{models}/dp_record.json"))
        pool = _pool(params, meta)
        targets = {
            "dp": _load_model(models, "dp", meta),
            "nonprivate": _load_model(params.paths.restricted, "nonprivate", meta),
        }
        trainers = _trainers(record, params.train, meta, device)
        t0 = time.perf_counter()
        metrics, results, class_rows = _membership(targets, trainers, pool, record, cfg, seed, device)
        units = person_units(
            params, pool
        )  # train.dp.unit person (or a column): "was this person trained on?"
        unit = record.privacy_unit or {}
        cap = int(unit["cap"]) if unit else None
        if units is not None:
            metrics |= person_membership(targets, trainers, pool, units, cfg, seed, device, cap)
        if cfg.epsilon.canary.enabled:
            metrics |= canary_experiment(trainers["dp"], pool, record=record, canary=cfg.epsilon.canary, spec=meta,
                                         beta=joint_alpha(cfg), seed=seed, device=device)  # fmt: skip
            if cap is not None and cap >= 2:  # canary persons: `cap` images of one synthetic identity each
                metrics |= canary_person_experiment(
                    trainers["dp"], pool, k=cap, unit_epsilon=max(unit["epsilon_pld"], unit["epsilon_prv"]),
                    record=record, canary=cfg.epsilon.canary, spec=meta, beta=cfg.epsilon.alpha, seed=seed,
                    device=device)  # fmt: skip
        metrics |= dp_epsilon_summary(metrics, epsilon=record.epsilon, audit=cfg)
        metrics["audit/seconds_membership"] = time.perf_counter() - t0
        get_run_logger().info("audit: membership done in %.0f s: %s", metrics["audit/seconds_membership"],
                              {k: round(v, 4) for k, v in metrics.items()
                               if k.endswith(("/auc", "_bound")) and "class_" not in k})  # fmt: skip
        if cfg.model_inversion.enabled:
            metrics |= _model_inversion(targets, pool, meta, cfg, plots, device)
        if cfg.gradient_inversion.enabled:
            metrics |= _gradient_inversion(record, params.train, meta, pool, cfg, plots, seed)
        metrics["audit/seconds"] = time.perf_counter() - t0
        io.save_figure(f"{plots}/roc.png", roc_figure(results))
        io.write_jsonl(f"{plots}/per_class.jsonl", class_rows)
        metrics = write_metrics("audit", metrics, metrics_dir=params.paths.metrics)
        run.log_metrics(metrics)
        for name in io.list_files(plots):
            run.log_artifact(f"{plots}/{name}", "plots")
        get_run_logger().info(
            "audit: empirical epsilon lower bound %.4f vs accountant epsilon %.4f",
            metrics["audit/dp/empirical_epsilon_lower_bound"],
            record.epsilon,
        )
    # conservative: against the ε training reported; the report's margin gate and conclusion judge the checked ε,
    # max(Opacus, PLD), which is at least as large (tasks.report.compliance.against_claim)
    check_empirical_epsilon(
        metrics["audit/dp/empirical_epsilon_lower_bound"],
        record.epsilon,
        source="the membership attacks and canaries on the DP model",
    )
    return metrics


if __name__ == "__main__":
    run_stage("audit")
