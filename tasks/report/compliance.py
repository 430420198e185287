"""The compliance.json contract (later issues extend it, never break it).

```
{"verdict": "pass"|"fail",
 "gates":   [{"name", "threshold", "value", "passed", ...}],
 "counts":  {"ingested", "anonymized", "quarantined"},
 "dp":      {"epsilon", "delta", "accountant", "noise_multiplier", "sample_rate", "steps", "epsilon_recomputed",
             "grad_sample_mode", "max_grad_norm", "secure_mode", "warnings",
             "ledger_total_epsilon", "ledger_runs", "ledger_max_total_epsilon", "ledger_delta", "dataset_digest"},
 "utility": {"dp_test_accuracy", "nonprivate_test_accuracy"},
 "attacks": {"<attack>": {"dp": {"auc", "tpr_at_0.1pct_fpr", "tpr_at_1pct_fpr"}, "nonprivate": {...}}},
 "lineage": {"git_sha", "dvc_lock_sha256", "mlflow_runs": {"<stage>": "<run id>"}, "model_uri"}}
```
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from tasks.errors import InvalidInputError
from tasks.params import Gates
from tasks.report.gates import evaluate_gates

ATTACK_FIELDS = {"auc": "auc", "tpr_at_0.1pct_fpr": "tpr_at_0_1pct_fpr", "tpr_at_1pct_fpr": "tpr_at_1pct_fpr",
                 "balanced_accuracy": "balanced_accuracy", "advantage": "advantage"}


def _counts(metrics: Mapping[str, Mapping[str, float]]) -> dict[str, int]:
    ingested = int(metrics["ingest"]["ingest/n_ingested"])
    anonymized = int(metrics["anonymize"]["anonymize/processed"])
    quarantined = int(metrics["anonymize"]["anonymize/quarantined"])
    if anonymized + quarantined != ingested:
        raise InvalidInputError(f"counts do not add up: {anonymized} anonymized + {quarantined} quarantined "
                                f"!= {ingested} ingested")
    return {"ingested": ingested, "anonymized": anonymized, "quarantined": quarantined,
            "ingest_quarantined": int(metrics["ingest"]["ingest/n_quarantined"])}


def _dp(record: Mapping[str, Any], epsilon_recomputed: float, ledger: Mapping[str, Any] | None) -> dict[str, Any]:
    keys = ("epsilon", "accountant", "noise_multiplier", "sample_rate", "steps", "epochs", "max_grad_norm",
            "n_train", "batch_size", "poisson_sampling", "target_epsilon")
    # records written before grad_sample_mode / secure_mode existed ran Opacus' defaults
    optional = {"grad_sample_mode": "hooks", "secure_mode": False, "warnings": []}
    ledger_keys = ("ledger_total_epsilon", "ledger_runs", "ledger_max_total_epsilon", "ledger_delta", "dataset_digest")
    return ({k: record[k] for k in keys} | {k: record.get(k, v) for k, v in optional.items()}
            | {k: (ledger or {}).get(k) for k in ledger_keys}
            | {"delta": record["target_delta"], "epsilon_recomputed": epsilon_recomputed,
               "mechanism": "DP-SGD (subsampled Gaussian), per-sample clipping"})


def _attacks(audit: Mapping[str, float]) -> dict[str, dict[str, dict[str, float]]]:
    out: dict[str, dict[str, dict[str, float]]] = {}
    for key, value in audit.items():
        parts = key.split("/")  # audit/<model>/<attack>/<field>
        if len(parts) != 4:
            continue
        _, model, attack, field = parts
        names = {v: k for k, v in ATTACK_FIELDS.items()}
        if field in names:
            out.setdefault(attack, {}).setdefault(model, {})[names[field]] = float(value)
    return out


def gate_values(metrics: Mapping[str, Mapping[str, float]], dp: Mapping[str, Any],
                utility: Mapping[str, float], counts: Mapping[str, int]) -> dict[str, float | None]:
    """Flatten the measured values the gates read ("<section>/<metric>")."""
    flat: dict[str, float | None] = {k: v for m in metrics.values() for k, v in m.items()}
    flat["anonymize/quarantine_fraction"] = counts["quarantined"] / counts["ingested"] if counts["ingested"] else None
    flat |= {f"dp/{k}": float(dp[k]) for k in ("epsilon", "epsilon_recomputed", "delta")}
    flat |= {f"utility/{k}": float(v) for k, v in utility.items()}
    flat |= {f"attacks/{k.split('/', 1)[1]}": v for k, v in metrics.get("audit", {}).items()}
    return flat


def build_compliance(*, metrics: Mapping[str, Mapping[str, float]], dp_record: Mapping[str, Any],
                     epsilon_recomputed: float, gates: Gates, lineage: Mapping[str, Any],
                     quarantine_reasons: Sequence[Mapping[str, str]] = (),
                     ledger: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Assemble compliance.json from the stages' metrics, the DP record and lineage; evaluate every gate.

    `ledger` (from the privacy budget ledger): ledger_total_epsilon (composed over every DP run on the
    dataset), ledger_runs, ledger_max_total_epsilon, ledger_delta, dataset_digest; None leaves them null.
    """
    counts = _counts(metrics)
    dp = _dp(dp_record, epsilon_recomputed, ledger)
    utility = {k: float(metrics["train"][f"train/{k}"]) for k in ("dp_test_accuracy", "nonprivate_test_accuracy")}
    results = evaluate_gates(gates, gate_values(metrics, dp, utility, counts))
    return {
        "verdict": "pass" if all(g.passed for g in results) else "fail",
        "gates": [g.as_dict() for g in results],
        "counts": counts,
        "dp": dp,
        "utility": utility,
        "attacks": _attacks(metrics.get("audit", {})),
        "quality": {k.split("/", 1)[1]: v for k, v in metrics.get("check_quality", {}).items()},
        "anonymization": {k.split("/", 1)[1]: v for k, v in metrics.get("anonymize", {}).items()},
        "quarantine": list(quarantine_reasons),
        "lineage": dict(lineage),
    }
