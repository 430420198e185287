"""promote: register the audited DP model with alias `audited` — only when every gate passed or was waived."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from prefect import flow

from flows import io, tracking
from flows.common import run_stage
from tasks.errors import QualityGateError
from tasks.params import Params


def failed_gates(compliance: Mapping[str, Any]) -> list[str]:
    """Every gate that is neither passed nor waived: failed ones with their measurement, unassessed ones
    with the reason the data could not measure them."""
    out = []
    for g in compliance["gates"]:
        status = g.get("status", "passed" if g["passed"] else "failed")
        if status == "not_assessed":
            out.append(f"{g['name']} (not assessed: {g.get('reason')})")
        elif status == "failed":
            out.append(f"{g['name']} (measured {g['value']}, needs {g['op']} {g['threshold']})")
    return out


@flow(name="promote")
def promote() -> dict[str, str]:
    params = io.load_params()
    reports = params.paths.reports
    compliance = io.read_json(f"{reports}/compliance.json")
    with tracking.stage_run(
        "promote", params=params, inputs=[f"{reports}/compliance.json"], outputs=[f"{reports}/promote.json"]
    ) as run:
        failed = failed_gates(compliance)
        run.set_tags({"verdict": compliance["verdict"], "failed_gates": "; ".join(failed)[:4000]})
        if compliance["dp"].get("skipped"):  # anonymize-and-report only: there is no model to promote
            result = {
                "promoted": "false",
                "reason": f"no model: {compliance['dp']['skipped']}",
                "verdict": compliance["verdict"],
            }
            io.write_json(f"{reports}/promote.json", result)
            return result
        if compliance["verdict"] != "pass" or failed:
            n_na = sum(" (not assessed: " in f for f in failed)
            raise QualityGateError(
                f"promote: refusing to register the model; {len(failed) - n_na} gate(s) failed "
                f"and {n_na} not assessed (waive them in params gates_waived with a reason "
                "only if that is right for this data): " + "; ".join(failed)
            )
        result = _register(compliance, params)
        run.log_metrics({"promote/version": float(result["version"])})
    return result


def _register(compliance: Mapping[str, Any], params: Params) -> dict[str, str]:
    p, reports = params.promote, params.paths.reports
    lineage, dp = compliance["lineage"], compliance["dp"]
    report_run = io.read_json(f"{reports}/runs/report.json")["run_id"]
    datasets = compliance.get("inventory", {}).get("datasets", [])
    # the one ε: the checked one (max of a fresh Opacus accountant and the independent PLD one), as the report
    tags = {
        "epsilon": dp["epsilon_checked"],
        "epsilon_opacus": dp["epsilon_recomputed"],
        "epsilon_pld": dp["epsilon_pld"],
        "delta": dp["delta"],
        "accountant": dp["accountant"],
        "verdict": compliance["verdict"],
        "gates_passed": f"{sum(g['passed'] for g in compliance['gates'])}/{len(compliance['gates'])}",
        "gates_waived": str(sum(g.get("status") == "waived" for g in compliance["gates"])),
        "git_sha": lineage["git_sha"],
        "dvc_lock_sha256": lineage["dvc_lock_sha256"],
        "report_path": str(io.path(f"{reports}/compliance.html")),
        "report_run_id": report_run,
        "audit_run_id": lineage["mlflow_runs"]["audit"],
        "reproduce": lineage.get("reproduce", ""),
        **{f"run_id.{s}": r for s, r in lineage["mlflow_runs"].items()},
        **{f"data.{d['role']}.md5": d["md5"] for d in datasets if d.get("md5")},
    }
    version = tracking.register_model(
        model_uri=lineage["model_uri"], name=p.model_name, alias=p.alias, tags=tags
    )
    files = [f"{reports}/compliance.{ext}" for ext in ("html", "json", "md")]
    artifact = tracking.annotate_model_version(
        name=p.model_name,
        version=version,
        files=files,
        artifact_path="compliance",
        description=_description(tags),
    )
    tracking.set_model_version_tags(
        name=p.model_name, version=version, tags={"report_artifact": f"{artifact}/compliance.html"}
    )
    result = {
        "model_name": p.model_name,
        "version": version,
        "alias": p.alias,
        "uri": f"models:/{p.model_name}@{p.alias}",
        "report_artifact": f"{artifact}/compliance.html",
    }
    io.write_json(f"{reports}/promote.json", result)
    return result


def _description(tags: Mapping[str, Any]) -> str:
    """What the MLflow model version page says first."""
    return (
        f"Audited DP model: ε = {float(tags['epsilon']):.4g}, δ = {float(tags['delta']):.3g} "
        f"(the larger of Opacus' {tags['accountant']} accountant and dp-accounting's PLD); verdict {str(tags['verdict']).upper()}, {tags['gates_passed']} gates "
        f"passed. Compliance report: artifacts compliance/compliance.html of the source run (also "
        f"{tags['report_path']}); audit run {tags['audit_run_id']}, report run {tags['report_run_id']}; "
        f"code {tags['git_sha']}. Audit trail: privtrail trail <name>@<alias>."
    )


if __name__ == "__main__":
    run_stage("promote")
