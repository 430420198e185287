"""report: compliance.json (the contract) and a self-contained compliance.html with every gate.

ε is recomputed here from the recorded DP mechanism history with a fresh Opacus accountant, once the record is
checked against the plan (the manifest's train rows, `train`'s schedule and DP params, Opacus' calibrated σ).
"""

from __future__ import annotations

import hashlib
import os
from datetime import UTC, datetime
from typing import Any

from prefect import flow

from flows import io, tracking
from flows.common import class_names, run_stage, write_metrics
from flows.retention import retention
from tasks import layout
from tasks.check_quality.outputs import COMPARE_JSON, PRIVACY_UTILITY_PNG, SAMPLES_JSON, SAMPLES_PNG
from tasks.errors import InvalidInputError
from tasks.params import STAGES, Params
from tasks.report.accounting import unit_guarantee
from tasks.report.compliance import build_compliance, data_capabilities
from tasks.report.diff import diff_compliance
from tasks.report.first_page import first_page
from tasks.report.gates import policy_changes
from tasks.report.html import render_html, render_markdown
from tasks.report.inventory import data_inventory
from tasks.report.stage import record_plan, reproduce_command, source_handling, stage_metrics, stage_tags
from tasks.train.checked import check_plan, check_skipped
from tasks.train.dp import DpTrainingRecord, recompute_epsilon
from tasks.train.ledger import budget_status, parse_ledger
from tasks.train.person import image_units, known_units

UPSTREAM = STAGES[: STAGES.index("report")]
COMPLIANCE_JSON, COMPLIANCE_HTML, COMPLIANCE_MD = (
    "compliance.json",
    "compliance.html",
    "compliance.md",
)  # in paths.reports
FIGURES = {  # `tasks.report.html.FIGURES` key → file under paths.plots (anonymized data and aggregates only)
    "method_samples": f"check_quality/{SAMPLES_PNG}",
    "privacy_utility": f"check_quality/{PRIVACY_UTILITY_PNG}",
    "roc": "audit/roc.png",
    "model_inversion": "audit/model_inversion.png",
    "gradient_inversion": "audit/gradient_inversion.png",
    "gradient_inversion_psnr": "audit/gradient_inversion_psnr_vs_accuracy.png",
    "sweep": "sweep/accuracy_vs_epsilon.png",
}


def _lineage(params: Params) -> dict[str, Any]:
    runs = {s: io.read_json(f"{params.paths.reports}/runs/{s}.json") for s in UPSTREAM}
    lock = io.path("dvc.lock")
    return {
        "git_sha": tracking.git_sha(),
        "tracking_uri": tracking.tracking_uri(),
        "dvc_lock_sha256": hashlib.sha256(lock.read_bytes()).hexdigest() if lock.exists() else None,
        "mlflow_runs": {s: r["run_id"] for s, r in runs.items()},
        "model_uri": runs["train"].get("model_uri"),
        "reproduce": reproduce_command(remote=tracking.git_remote(), sha=tracking.git_sha()),
    }


def _inventory(params: Params, metrics: dict[str, Any]) -> dict[str, Any]:
    """Sources, counts, dvc.lock digests of every dataset, and the raw data's retention status (as of now)."""
    status = retention(params, now=datetime.now(UTC))
    source = {
        "kind": params.ingest.source,
        "location": params.ingest.folder,
        "handling": source_handling(
            params.ingest,
            params.anonymize,
            n_resized=int(metrics.get("ingest", {}).get("ingest/n_resized", 0)),
        ),
    }
    return data_inventory(
        source=source,
        metrics=metrics,
        lock_stages=tracking.dvc_lock_entries(),
        paths=params.paths.model_dump(),
        retention=status.as_dict(),
    )


def _ledger(params: Params) -> dict[str, Any] | None:
    """The dataset's composed ε from the privacy ledger, which must hold the train run that made this model
    (None when train was skipped: no labels, nothing trained)."""
    train_run = io.read_json(f"{params.paths.reports}/runs/train.json")
    if train_run.get("skipped"):
        return None
    file = io.ledger_path(params.train)
    entries = parse_ledger(io.read_text_if_exists(file), source=file)
    if not any(e.mlflow_run_id == train_run["run_id"] for e in entries):
        raise InvalidInputError(
            f"{file}: no entry for train run {train_run['run_id']} (was the privacy ledger moved or reset?)"
        )
    b = params.train.budget
    s = budget_status(
        entries,
        dataset_digest=train_run["dataset_digest"],
        delta=b.delta,
        max_total_epsilon=b.max_total_epsilon,
        unit=params.train.dp.unit,
    )  # the budget of the unit
    return {
        "ledger_total_epsilon": s.epsilon_total,
        "ledger_runs": s.runs,
        "ledger_max_total_epsilon": s.max_total_epsilon,
        "ledger_delta": s.delta,
        "dataset_digest": s.dataset_digest,
    }


def _restricted(params: Params) -> dict[str, Any]:
    """That a model without a guarantee exists, where, and its rules (never its weights or pictures)."""
    note = io.path(f"{params.paths.restricted}/README.json")
    files = sorted(f.name for f in io.path(params.paths.restricted).glob("*.pt")) if note.exists() else []
    return {
        "path": str(io.path(params.paths.restricted)),
        "files": files,
        **(io.read_json(note) if note.exists() else {"what": "none"}),
    }


def _sweep(params: Params) -> dict[str, Any] | None:
    """The last `make sweep` result, when one exists (evidence outside the DAG: not a DVC dep, never gated)."""
    file = io.path(f"{params.paths.plots}/sweep/sweep.json")
    return io.read_json(file) if file.exists() else None


def _anonymizer(params: Params) -> dict[str, Any] | None:
    """What the anonymize run recorded it was set to do (targets, detectors, verification, device); None for a run
    that predates the record (the report then says the settings were not recorded, never a default)."""
    setup: dict[str, Any] | None = io.read_json(f"{params.paths.reports}/runs/anonymize.json").get("setup")
    return setup


def _training(params: Params) -> dict[str, Any]:
    """The front end and model the train run used, and which of them were `auto` (resolved from the source)."""
    run = io.read_json(f"{params.paths.reports}/runs/train.json")
    return {"source": params.ingest.source} | {k: run.get(k) for k in ("features", "model", "auto_resolved")}


def _policy_changes(params: Params) -> list[dict[str, Any]]:
    """Thresholds looser than the packaged policy (the gates', the privacy budget's), each with its written reason."""
    return [
        ch.as_dict()
        for ch in policy_changes(params.gates, params.gates_policy_changes, budget=params.train.budget)
    ]


def _recompute(params: Params, record: dict[str, Any]) -> float | None:
    """Opacus' ε of the DP record, once the record and its history are checked against the plan: n_train the
    manifest's train rows (as the train stage counts them), batch size, epochs and DP params from `train`, σ
    from Opacus' calibration (a mismatch raises PrivacyBudgetError before either accountant prices it;
    compliance adds the PLD one). None for a record that says training was skipped, checked against the labels."""
    data = params.paths.anonymized
    if "skipped" in record:
        check_skipped(str(record["skipped"]), n_classes=len(class_names(data)))
        return None
    n_train = len(io.split_rows(io.read_table(f"{data}/{layout.MANIFEST}"), "train"))
    kept = (
        len(io.read_json(f"{params.paths.models}/kept_train_ids.json"))
        if record.get("privacy_unit")
        else None
    )
    plan = record_plan(
        record, n_train=n_train, n_kept=kept, train=params.train
    )  # per unit: the bounded selection
    checked = DpTrainingRecord.from_dict(record)
    check_plan(checked, plan)
    return recompute_epsilon(checked)


def _unit(params: Params, record: dict[str, Any]) -> dict[str, Any] | None:
    """A per-unit run's guarantee recomputed from the data: every unit's images among those DP-SGD trained on
    (identities from the ingest ground truth, or a manifest column), re-priced by both accountants; None when
    the unit is one image."""
    if not record.get("privacy_unit"):
        return None
    manifest = io.read_table(f"{params.paths.anonymized}/{layout.MANIFEST}")
    rows, unit = io.split_rows(manifest, "train"), str(record["privacy_unit"]["unit"])
    ids = [str(i) for i in rows["id"]]
    found = known_units(
        unit,
        image_ids=ids,
        columns={str(c): rows[c].tolist() for c in rows.columns},
        coco=io.read_json(f"{params.paths.raw}/{layout.ANNOTATIONS}") if unit == "person" else None,
    )
    trained = [str(i) for i in io.read_json(f"{params.paths.models}/kept_train_ids.json")]
    return unit_guarantee(record, units=image_units(ids, found, prefix=f"{unit}:"), trained=trained)


def _figures(params: Params) -> dict[str, bytes]:
    return {caption: io.path(f).read_bytes() for caption, f in _figure_files(params).items()}


def _figure_files(params: Params) -> dict[str, str]:
    """`FIGURES` key → workspace path of every figure that exists."""
    wanted = {key: f"{params.paths.plots}/{f}" for key, f in FIGURES.items()}
    return {key: f for key, f in wanted.items() if io.path(f).exists()}


def _figure_notes(params: Params) -> dict[str, str]:
    """The run's own sentences about its figures: where the method samples' pixels come from and which
    methods they leave out, and why (check_quality's method_samples.json)."""
    f = f"{params.paths.plots}/check_quality/{SAMPLES_JSON}"
    note = io.read_json(f).get("note") if io.path(f).exists() else None
    return {"method_samples": str(note)} if note else {}


@flow(name="report")
def report() -> dict[str, float]:
    params = io.load_params()
    out = params.paths.reports
    files = {name: f"{out}/{name}" for name in (COMPLIANCE_JSON, COMPLIANCE_HTML, COMPLIANCE_MD)}
    with tracking.stage_run(
        "report",
        params=params,
        inputs=[params.paths.metrics, f"{params.paths.models}/dp_record.json"],
        outputs=list(files.values()),
    ) as run:
        metrics = {s: io.read_json(f"{params.paths.metrics}/{s}.json") for s in UPSTREAM}
        record = io.read_json(f"{params.paths.models}/dp_record.json")
        eps = _recompute(params, record)
        quarantine = [
            {"id": q["id"], "reason": q["reason"]}
            for q in io.read_jsonl(f"{params.paths.anonymized}/{layout.QUARANTINE}")
        ]
        lineage = _lineage(params)
        compliance = build_compliance(
            metrics=metrics,
            dp_record=record,
            epsilon_recomputed=eps,
            gates=params.gates,
            missing=data_capabilities(metrics, source=params.ingest.source),
            waived=params.gates_waived,
            lineage=lineage,
            quarantine_reasons=quarantine,
            ledger=_ledger(params),
            sweep=_sweep(params),
            methods=io.read_json(f"{params.paths.plots}/check_quality/{COMPARE_JSON}"),
            inventory=_inventory(params, metrics),
            anonymizer=_anonymizer(params),
            policy_changes=_policy_changes(params),
            training=_training(params),
            unit=_unit(params, record) if eps is not None else None,
        )
        compliance["restricted"] = _restricted(params)
        compliance["figure_notes"] = _figure_notes(params)
        previous, ref = tracking.promoted_compliance(params.promote.model_name, params.promote.alias)
        compliance["since_promoted"] = diff_compliance(compliance, previous, previous_ref=ref)
        compliance["first_page"] = first_page(
            compliance, model_name=params.promote.model_name, alias=params.promote.alias
        )
        io.write_json(files[COMPLIANCE_JSON], compliance)
        html = render_html(
            compliance, title=params.report.title, figures=_figures(params), reproduce=lineage["reproduce"]
        )
        io.path(files[COMPLIANCE_HTML]).write_text(html)
        md_figures = {c: os.path.relpath(io.path(f), io.path(out)) for c, f in _figure_files(params).items()}
        io.path(files[COMPLIANCE_MD]).write_text(
            render_markdown(
                compliance, title=params.report.title, figures=md_figures, reproduce=lineage["reproduce"]
            )
        )
        summary = write_metrics(
            "report", stage_metrics(compliance, epsilon=eps), metrics_dir=params.paths.metrics
        )
        run.log_metrics(summary)
        for f in files.values():
            run.log_artifact(f)
        run.set_tags(stage_tags(compliance))
        tracking.sync_lineage(reports_dir=out)
    return summary


if __name__ == "__main__":
    run_stage("report")
