"""What the report stage derives besides compliance.json: the source's handling in words, the DP plan a training
record is checked against, the command that reproduces the run, and the stage's own metrics and run tags."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from tasks.errors import InvalidInputError
from tasks.params import AnonymizeParams, IngestParams, TrainParams
from tasks.report.accounting import unit_dp_plan
from tasks.train.checked import DpPlan, dp_plan

REPRODUCE = "git clone {remote} privtrail && cd privtrail && git checkout {sha} && make pipeline"
TAG_LIMIT = 250  # characters of one MLflow tag value the report sets


def source_handling(ingest: IngestParams, anonymize: AnonymizeParams, *, n_resized: int) -> str:
    """How the source was read, in words: labels, ground truth, resizing (at ingest or for detection only).

    Args:
        ingest: the ingest params the run used.
        anonymize: the anonymize params (`detect_max_side`).
        n_resized: images ingest downscaled (`ingest/n_resized`).
    """
    p = ingest
    if p.source == "builtin":
        parts = ["generated from assets bundled in pinned packages; COCO ground truth of every element"]
    else:
        labels = {
            "dir": "labels from the first directory level",
            "file": f"labels from {p.labels}",
            "none": "no labels (anonymize and report only)",
        }[p.label_from if p.source != "csv" else "file"]
        parts = [labels, f"ground truth from {p.coco}" if p.source == "coco" else "no ground-truth boxes"]
    parts.append(
        f"whole dataset downscaled at ingest to at most {p.max_side} px ({n_resized} images)"
        if p.max_side
        else "kept at full resolution"
    )
    if anonymize.detect_max_side:
        parts.append(
            f"detectors saw copies of at most {anonymize.detect_max_side} px, output at full resolution"
        )
    return "; ".join(parts)


def record_plan(record: Mapping[str, Any], *, n_train: int, n_kept: int | None, train: TrainParams) -> DpPlan:
    """The DP-SGD mechanism the training record must show, computed without it: per image on the manifest's
    `n_train` train rows; per unit (`record["privacy_unit"]`) on the `n_kept` images of the bounded selection,
    σ calibrated for the unit's cap.

    Raises:
        InvalidInputError: a per-unit record without `n_kept`.
    """
    d = train.dp
    if not record.get("privacy_unit"):
        return dp_plan(
            n_train,
            batch_size=train.batch_size,
            epochs=train.epochs,
            max_grad_norm=d.max_grad_norm,
            target_epsilon=d.target_epsilon,
            target_delta=d.target_delta,
            accountant=d.accountant,
        )
    if n_kept is None:
        raise InvalidInputError(
            "dp_record.json: a per-unit record is checked on the kept train ids "
            "(kept_train_ids.json), none were given"
        )
    return unit_dp_plan(
        n_kept,
        cap=int(record["privacy_unit"]["cap"]),
        batch_size=train.batch_size,
        epochs=train.epochs,
        max_grad_norm=d.max_grad_norm,
        target_epsilon=d.target_epsilon,
        target_delta=d.target_delta,
        accountant=d.accountant,
    )


def reproduce_command(*, remote: str, sha: str) -> str:
    """The shell line that reproduces the run from `remote` at `sha`; a dirty sha says the commit alone does not."""
    cmd = REPRODUCE.format(remote=remote, sha=sha.removesuffix("-dirty"))
    if sha.endswith("-dirty"):
        cmd += "   # the run had uncommitted changes: this commit alone does not reproduce it"
    return cmd


def stage_metrics(compliance: Mapping[str, Any], *, epsilon: float | None) -> dict[str, float]:
    """`report/*`: the verdict, gate counts per state, the recomputed ε (when trained), retention expiry."""
    gates = compliance["gates"]
    return {
        "report/passed": float(compliance["verdict"] == "pass"),
        "report/gates_passed": sum(g["passed"] for g in gates),
        "report/gates_total": len(gates),
        **{f"report/gates_{k}": v for k, v in compliance["gate_states"].items()},
        **({"report/epsilon_recomputed": epsilon} if epsilon is not None else {}),
        "report/raw_retention_expired": float(compliance["inventory"]["retention"]["expired"]),
    }


def stage_tags(compliance: Mapping[str, Any]) -> dict[str, str]:
    """The run's tags: the verdict, and per gate `gate.<name>` = "<status>: <reason>" (cut to `TAG_LIMIT`)."""
    return {"verdict": compliance["verdict"]} | {
        f"gate.{g['name']}": f"{g['status']}: {g['reason'] or ''}"[:TAG_LIMIT] for g in compliance["gates"]
    }
