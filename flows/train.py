"""train: DP-SGD (Opacus) to the target (ε, δ) and a non-private baseline of the same architecture
and schedule, both on the anonymized train split; test accuracy of both; the DP mechanism record."""

from __future__ import annotations

import dataclasses
import socket
import time
from datetime import UTC, datetime
from typing import Any

import pandas as pd
import torch
from prefect import flow, get_run_logger

from flows import io, tracking
from flows.common import SKIPPED, class_names, progress_bar, run_stage, skip_outputs, write_metrics
from tasks.errors import InvalidInputError
from tasks.params import TrainParams
from tasks.train.checked import train_batch_size
from tasks.train.ddp import train_dp_ddp
from tasks.train.dp import (
    DpTrainingRecord,
    EpochStats,
    check_delta,
    evaluate,
    loop_schedule,
    planned_history,
    train_dp,
    train_nonprivate,
)
from tasks.train.ledger import (
    BudgetStatus,
    LedgerEntry,
    budget_status,
    check_budget,
    dataset_digest,
    entry_from_record,
    format_entry,
    parse_ledger,
    started_entry,
)
from tasks.train.models import model_spec
from tasks.train.person import (
    UnitAccounting,
    UnitPlan,
    image_units,
    known_units,
    max_contribution,
    persons_from_coco,
    plan_units,
    price_unit,
)
from tasks.train.preprocess import prepare_inputs


def _tensors(
    manifest: pd.DataFrame, root: str, split: str, p: TrainParams
) -> tuple[torch.Tensor, torch.Tensor]:
    images, labels = io.load_split(manifest, root, split)
    return prepare_inputs(images, features=p.features, input_size=p.input_size), torch.from_numpy(labels)


def read_ledger(p: TrainParams) -> tuple[LedgerEntry, ...]:
    """Every entry of the privacy ledger (`io.ledger_path`); empty before the first DP run."""
    file = io.ledger_path(p)
    return parse_ledger(io.read_text_if_exists(file), source=file)


def planned_entry(
    p: TrainParams,
    digest: str,
    n_train: int,
    batch_size: int,
    unit: UnitPlan | None = None,
    person_cap: int | None = None,
) -> LedgerEntry:
    """The ledger entry the planned run would append: its predicted mechanism at the target ε."""
    check_delta(p.dp.target_delta, n_train)
    history = (
        planned_history(
            n_train,
            batch_size=batch_size,
            epochs=p.epochs,
            target_epsilon=p.dp.target_epsilon,
            target_delta=p.dp.target_delta,
            accountant=p.dp.accountant,
        )
        if unit is None
        else ((unit.noise_multiplier, unit.sample_rate, unit.steps),)
    )
    return LedgerEntry(
        dataset_digest=digest,
        n_train=n_train,
        time="planned",
        mlflow_run_id="planned",
        git_sha="planned",
        accountant=p.dp.accountant,
        delta=p.dp.target_delta,
        epsilon=p.dp.target_epsilon,
        history=history,
        unit=p.dp.unit,
        cap=1 if unit is None else unit.cap,
        person_cap=unit.cap if unit is not None and p.dp.unit == "person" else person_cap,
    )


def refuse_over_budget(
    p: TrainParams,
    digest: str,
    n_train: int,
    batch_size: int,
    unit: UnitPlan | None = None,
    person_cap: int | None = None,
) -> BudgetStatus:
    """Before any compute: would the planned run push the dataset's composed ε (per unit) over the budget?"""
    planned = planned_entry(p, digest, n_train, batch_size, unit, person_cap)
    return check_budget(
        read_ledger(p), planned, delta=p.budget.delta, max_total_epsilon=p.budget.max_total_epsilon
    )


def record_start(p: TrainParams, planned: LedgerEntry, *, run_id: str) -> None:
    """Append the run's "started" entry (its planned mechanism) before DP-SGD sees the data: a run killed before
    `spend_budget` still counts as spent, and a rerun spends again (never zero)."""
    entry = started_entry(
        planned,
        time=datetime.now(UTC).isoformat(timespec="seconds"),
        mlflow_run_id=run_id,
        git_sha=tracking.git_sha(),
    )
    io.append_line(io.ledger_path(p), format_entry(entry))


def spend_budget(
    p: TrainParams, record: DpTrainingRecord, *, digest: str, run_id: str, person_cap: int | None = None
) -> BudgetStatus:
    """Append the finished run to the ledger (with what it cost a person, `person_cap`, when identities are known);
    the dataset's composed status for the run's unit with it."""
    entry = entry_from_record(
        record,
        dataset_digest=digest,
        time=datetime.now(UTC).isoformat(timespec="seconds"),
        mlflow_run_id=run_id,
        git_sha=tracking.git_sha(),
        person_cap=person_cap,
    )
    io.append_line(io.ledger_path(p), format_entry(entry))
    return budget_status(
        read_ledger(p),
        dataset_digest=digest,
        delta=p.budget.delta,
        max_total_epsilon=p.budget.max_total_epsilon,
        unit=entry.unit,
    )


def unit_ids(params: Any, manifest: pd.DataFrame, unit: str) -> dict[str, tuple[str, ...]]:
    """Train image id → its units (`tasks.train.person.known_units`): the identities of the raw COCO ground truth
    (`person`), a manifest column, or the video file of each frame (`video`)."""
    rows = io.split_rows(manifest, "train")
    coco = io.read_json(f"{params.paths.raw}/annotations.json") if unit == "person" else None
    return known_units(
        unit,
        image_ids=[str(i) for i in rows["id"]],
        coco=coco,
        columns={str(c): rows[c].tolist() for c in rows.columns},
    )


def plan_unit(params: Any, manifest: pd.DataFrame) -> tuple[UnitPlan, dict[str, tuple[str, ...]]] | None:
    """The per-unit plan (kept images, cap, σ for the per-unit target); None when the unit is one image."""
    p = params.train
    if p.dp.unit == "image":
        return None
    ids = [str(i) for i in io.split_rows(manifest, "train")["id"]]
    found = unit_ids(params, manifest, p.dp.unit)
    if not any(
        found.get(i) for i in ids
    ):  # fail closed: a per-person ε over data with no identities means nothing
        raise InvalidInputError(
            f"train.dp.unit={p.dp.unit!r}: no train image has a known {p.dp.unit} (identities "
            "come from the ingest ground truth: builtin faces, COCO person / track ids)"
        )
    units = image_units(ids, found, prefix=f"{p.dp.unit}:")

    def schedule(n: int) -> tuple[float, int]:
        return loop_schedule(n, batch_size=train_batch_size(p.batch_size, n), epochs=p.epochs)

    plan = plan_units(
        units,
        cap=None if p.dp.cap == "auto" else int(p.dp.cap),
        seed=p.dp.selection_seed,
        schedule=schedule,
        target_epsilon=p.dp.target_epsilon,
        delta=p.dp.target_delta,
    )
    return plan, units


def person_cap(params: Any, trained: list[str]) -> int | None:
    """The most training images of one known person among `trained` (the raw ground truth's identities); None
    without identities: what the run cost a person, recorded in the ledger whatever the run's unit."""
    file = io.path(f"{params.paths.raw}/annotations.json")
    persons = persons_from_coco(io.read_json(file)) if file.exists() else {}
    if not any(persons.get(i) for i in trained):
        return None
    return max_contribution(image_units(trained, persons))


def unit_accounting(
    p: TrainParams, plan: UnitPlan, units: dict[str, tuple[str, ...]], record: DpTrainingRecord
) -> UnitAccounting:
    """The record of the unit: cap, rule, counts, and the ran history priced per unit by both accountants."""
    pld, prv = price_unit(record.history, cap=plan.cap, delta=record.target_delta)
    kept_units = {u for i in plan.kept for u in units[i]}
    return UnitAccounting(
        unit=p.dp.unit,
        cap=plan.cap,
        rule=plan.rule,
        selection_seed=p.dp.selection_seed,
        n_before=len(units),
        n_kept=len(plan.kept),
        n_units=len(kept_units),
        max_observed=max_contribution(units, plan.kept),
        epsilon_pld=pld,
        epsilon_prv=prv,
        delta=record.target_delta,
    )


def _curve_table(dp: tuple[EpochStats, ...], base: tuple[EpochStats, ...]) -> pd.DataFrame:
    """Per epoch: DP and non-private validation (test split) accuracy, ε spent so far (the `dvc plots` file)."""
    return pd.DataFrame(
        {
            "epoch": [e.epoch for e in dp],
            "dp_val_accuracy": [e.val_accuracy for e in dp],
            "nonprivate_val_accuracy": [e.val_accuracy for e in base],
            "epsilon": [e.epsilon for e in dp],
        }
    )


def _train_dp(
    x: torch.Tensor,
    y: torch.Tensor,
    p: TrainParams,
    common: dict[str, Any],
    on_epoch: Any = None,
    noise_multiplier: float | None = None,
) -> Any:
    """DP-SGD in this process, or on `train.world_size` processes with Opacus DPDDP (same accounting);
    `on_epoch` (a progress bar) sees the one-process epochs; `noise_multiplier`: a per-unit σ (one process)."""
    opts: dict[str, Any] = {
        "lr": p.lr,
        "target_epsilon": p.dp.target_epsilon,
        "target_delta": p.dp.target_delta,
        "max_grad_norm": p.dp.max_grad_norm,
        "accountant": p.dp.accountant,
        "physical_batch_size": p.physical_batch_size,
        "grad_sample_mode": p.dp.grad_sample_mode,
    }
    if p.world_size == 1:
        return train_dp(
            x,
            y,
            secure_mode=p.dp.secure_mode,
            on_epoch=on_epoch,
            noise_multiplier=noise_multiplier,
            **opts,
            **common,
        )
    if noise_multiplier is not None:
        raise InvalidInputError(f"train.dp.unit={p.dp.unit!r} with train.world_size > 1 is not supported")
    if p.dp.secure_mode:
        raise InvalidInputError("train.dp.secure_mode with train.world_size > 1 is not supported")
    backend = "nccl" if common["device"] == "cuda" else "gloo"
    keep = ("model_name", "epochs", "batch_size", "momentum", "seed", "num_classes")
    return train_dp_ddp(
        x,
        y,
        world_size=p.world_size,
        port=_free_port(),
        backend=backend,
        **opts,
        **{k: common[k] for k in keep},
    )


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def unit_metrics(record: DpTrainingRecord) -> dict[str, float]:
    """train/unit_* metrics of a per-unit run (the cap, kept images, per-unit ε of both accountants)."""
    u = record.privacy_unit
    if not u:
        return {}
    return {
        f"train/unit_{k}": float(u[k])
        for k in (
            "cap",
            "n_before",
            "n_kept",
            "n_units",
            "max_observed",
            "epsilon_pld",
            "epsilon_prv",
            "checked",
        )
    }


RESTRICTED_NOTE = {
    "what": "the non-private baseline of the DP model (same architecture and schedule, no DP)",
    "why": "it has no privacy guarantee: it may memorise the training images",
    "rules": "never logged to MLflow, never cached or pushed by DVC, never registered, never "
    "pictured in the report; it stays on this machine for the audit's comparison",
}


@flow(name="train")
def train() -> dict[str, float]:
    params = io.load_params()
    p, data, models = params.train, params.paths.anonymized, params.paths.models
    io.clean_dir(models)
    io.clean_dir(params.paths.restricted)
    io.clean_dir(f"{params.paths.plots}/train")
    with tracking.stage_run(
        "train",
        params=params,
        inputs=[f"{data}/manifest.parquet", f"{data}/images"],
        outputs=[models, f"{params.paths.plots}/train"],
    ) as run:
        # which train params were `auto` and what ingest.source resolved them to (the logged params are resolved)
        run.extra |= {"features": p.features, "model": p.model, "auto_resolved": params.auto_resolved()}
        names = class_names(data)
        if not names:
            run.extra["skipped"] = SKIPPED
            metrics = skip_outputs(params, stage="train", reason=SKIPPED)
            run.log_metrics(metrics)
            return metrics
        manifest = io.read_table(f"{data}/manifest.parquet")
        x, y = _tensors(manifest, data, "train", p)
        x_test, y_test = _tensors(manifest, data, "test", p)
        spec = model_spec(
            p.model,
            features=p.features,
            input_size=p.input_size,
            seed=params.seed,
            in_shape=(int(x.shape[1]), int(x.shape[2]), int(x.shape[3])),
            class_names=names,
        )
        for note in spec.fixes:
            get_run_logger().warning("train: Opacus ModuleValidator.fix: %s", note)
        device = "cuda" if torch.cuda.is_available() else "cpu"
        common: dict[str, Any] = {
            "model_name": p.model,
            "epochs": p.epochs,
            "batch_size": train_batch_size(p.batch_size, len(x)),
            "momentum": p.momentum,
            "seed": params.seed,
            "device": device,
            "x_val": x_test,
            "y_val": y_test,
            "num_classes": spec.num_classes,
        }
        # the ledger's key is the raw source (who is in the data), not the anonymized images: re-anonymizing or
        # growing the same collection spends the same budget
        source = io.read_json(f"{data}/source.json")
        digest = source["key"]
        run.extra |= {
            "dataset_digest": digest,
            "source_identity": source["identity"],
            "raw_digest": source["raw_digest"],
            "anonymized_digest": dataset_digest(manifest.loc[manifest["split"] == "train", "sha256"]),
        }
        unit = plan_unit(params, manifest)
        x_dp, y_dp = x, y
        ids = [str(i) for i in io.split_rows(manifest, "train")["id"]]
        if unit is not None:  # per-unit DP: every unit's images capped, σ calibrated for the per-unit target
            where = {image: k for k, image in enumerate(ids)}
            keep = torch.tensor([where[i] for i in unit[0].kept], dtype=torch.long)
            x_dp, y_dp = x[keep], y[keep]
        # the images DP-SGD saw (the audit's members; the report recounts every unit's images in them)
        io.write_json(f"{models}/kept_train_ids.json", list(unit[0].kept) if unit else ids)
        dp_batch = train_batch_size(p.batch_size, len(x_dp))
        dp_common = common | {"batch_size": dp_batch}
        cap = person_cap(params, list(unit[0].kept) if unit else ids)
        refuse_over_budget(p, digest, len(x_dp), dp_batch, unit[0] if unit else None, cap)
        planned = planned_entry(p, digest, len(x_dp), dp_batch, unit[0] if unit else None, cap)
        record_start(p, planned, run_id=run.run_id)  # spent from here on, whether or not training finishes
        t0 = time.perf_counter()
        with progress_bar("train DP-SGD", total=p.epochs, unit="epoch") as bar:
            dp = _train_dp(
                x_dp,
                y_dp,
                p,
                dp_common,
                on_epoch=lambda _: bar.update(),
                noise_multiplier=unit[0].noise_multiplier if unit else None,
            )
        t1 = time.perf_counter()
        assert dp.record is not None
        if unit is not None:
            per_unit = unit_accounting(p, unit[0], unit[1], dp.record)
            dp = dataclasses.replace(
                dp, record=dataclasses.replace(dp.record, privacy_unit=per_unit.as_dict())
            )
            run.extra["privacy_unit"] = per_unit.as_dict() | {
                "candidates": [list(c) for c in unit[0].candidates]
            }
        budget = spend_budget(p, dp.record, digest=digest, run_id=run.run_id, person_cap=cap)
        for warning in dp.record.warnings:
            get_run_logger().warning("train: %s", warning)
        with progress_bar("train baseline", total=p.epochs, unit="epoch") as bar:
            base = train_nonprivate(x, y, lr=p.nonprivate_lr, on_epoch=lambda _: bar.update(), **common)
        t2 = time.perf_counter()
        io.save_state_dict(f"{models}/dp.pt", dp.model.state_dict())
        io.save_state_dict(
            f"{params.paths.restricted}/nonprivate.pt", base.model.state_dict()
        )  # no guarantee
        io.write_json(f"{params.paths.restricted}/README.json", RESTRICTED_NOTE)
        io.write_json(f"{models}/dp_record.json", dp.record.as_dict())
        io.write_json(f"{models}/meta.json", spec.as_dict())
        metrics = dp.record.as_metrics() | {
            "train/dp_test_accuracy": evaluate(dp.model, x_test, y_test),
            "train/nonprivate_test_accuracy": evaluate(base.model, x_test, y_test),
            "train/dp_train_accuracy": evaluate(dp.model, x_dp, y_dp),
            "train/nonprivate_train_accuracy": evaluate(base.model, x, y),
            "train/n_test": len(x_test),
            "train/world_size": p.world_size,
            "train/dp_seconds": t1 - t0,
            "train/nonprivate_seconds": t2 - t1,
            **budget.as_metrics(),
            **unit_metrics(dp.record),
        }
        metrics = write_metrics("train", metrics, metrics_dir=params.paths.metrics)
        run.log_metrics(metrics)
        io.write_csv(f"{params.paths.plots}/train/curve.csv", _curve_table(dp.curve, base.curve))
        run.log_artifact(f"{params.paths.plots}/train/curve.csv", "plots")
        run.log_curve("train/curve/dp_val_accuracy", [e.val_accuracy for e in dp.curve])
        run.log_curve("train/curve/dp_epsilon", [e.epsilon for e in dp.curve])
        run.log_curve("train/curve/nonprivate_val_accuracy", [e.val_accuracy for e in base.curve])
        run.log_artifact(f"{models}/dp_record.json")
        run.log_artifact(io.ledger_path(p), artifact_path="privacy_ledger")
        run.set_tags(
            {
                "privacy_ledger": str(io.path(io.ledger_path(p))),
                "dataset_digest": digest,
                "dp_grad_sample_mode": p.dp.grad_sample_mode,
                "dp_secure_mode": str(p.dp.secure_mode),
                "model_spec": str(spec.as_dict())[:4000],
                **({"dp_warnings": " | ".join(dp.record.warnings)} if dp.record.warnings else {}),
            }
        )
        run.extra["model_uri"] = run.log_torch_model(
            dp.model.cpu(), name="dp_model", input_shape=(1, *spec.in_shape)
        )
    return metrics


if __name__ == "__main__":
    run_stage("train")
