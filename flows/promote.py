"""promote: register the audited DP model with alias `audited` — only when every gate passed."""

from __future__ import annotations

from prefect import flow

from flows import io, tracking
from flows.common import run_stage
from tasks.errors import QualityGateError


def failed_gates(compliance: dict) -> list[str]:
    return [f"{g['name']} (measured {g['value']}, needs {g['op']} {g['threshold']})"
            for g in compliance["gates"] if not g["passed"]]


@flow(name="promote")
def promote() -> dict[str, str]:
    params = io.load_params()
    reports = params.paths.reports
    compliance = io.read_json(f"{reports}/compliance.json")
    with tracking.stage_run("promote", params=params, inputs=[f"{reports}/compliance.json"],
                            outputs=[f"{reports}/promote.json"]) as run:
        failed = failed_gates(compliance)
        run.set_tags({"verdict": compliance["verdict"], "failed_gates": "; ".join(failed)[:4000]})
        if compliance["verdict"] != "pass" or failed:
            raise QualityGateError(f"promote: refusing to register the model; {len(failed)} gate(s) failed: "
                                   + "; ".join(failed))
        result = _register(compliance, params)
        run.log_metrics({"promote/version": float(result["version"])})
    return result


def _register(compliance: dict, params) -> dict[str, str]:
    p, reports = params.promote, params.paths.reports
    lineage = compliance["lineage"]
    tags = {"epsilon": compliance["dp"]["epsilon_recomputed"], "delta": compliance["dp"]["delta"],
            "accountant": compliance["dp"]["accountant"], "verdict": compliance["verdict"],
            "git_sha": lineage["git_sha"], "dvc_lock_sha256": lineage["dvc_lock_sha256"],
            "report_path": str(io.path(f"{reports}/compliance.html")),
            "report_run_id": io.read_json(f"{reports}/runs/report.json")["run_id"],
            **{f"run_id.{s}": r for s, r in lineage["mlflow_runs"].items()}}
    version = tracking.register_model(model_uri=lineage["model_uri"], name=p.model_name, alias=p.alias, tags=tags)
    result = {"model_name": p.model_name, "version": version, "alias": p.alias,
              "uri": f"models:/{p.model_name}@{p.alias}"}
    io.write_json(f"{reports}/promote.json", result)
    return result


if __name__ == "__main__":
    run_stage("promote")
