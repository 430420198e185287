"""The compliance.json contract (later issues extend it, never break it).

```
{"verdict": "pass"|"fail",   # pass: every gate passed or waived
 "gates":   [{"name", "threshold", "value", "passed", "status", "reason", ...}],
             # status: passed | failed | waived | not_assessed; reason: why (None when passed)
 "gate_states": {"passed": n, "failed": n, "waived": n, "not_assessed": n},
 "data_capabilities": {"<need>": null | "why the data cannot measure it"},  # tasks/report/gates.py NEEDS
 "counts":  {"ingested", "anonymized", "quarantined"},
 "dp":      {"epsilon", "delta", "accountant", "noise_multiplier", "sample_rate", "steps", "epsilon_recomputed",
             "grad_sample_mode", "max_grad_norm", "secure_mode", "warnings", "empirical_epsilon_lower_bound",
             "ledger_total_epsilon", "ledger_runs", "ledger_max_total_epsilon", "ledger_delta", "dataset_digest"},
 "utility": {"dp_test_accuracy", "nonprivate_test_accuracy"},
 "method_comparison": [{"method", "psnr_whole", "ssim_whole", "reid_naive_top1", "reid_adaptive_top1",
                        "reid_trained_accuracy", "utility_ratio", ...}],
 "attacks": {"<attack>": {"dp": {"auc", "tpr_at_0.1pct_fpr", "tpr_at_1pct_fpr"}, "nonprivate": {...}}},
 "person_attacks": {"assessed", "reason", "persons", "rows": [{"attack", "model", "image_auc", "auc", "auc_ci_low",
                    "auc_ci_high", "tpr_at_1pct_fpr", ..., "n_member_persons", "n_models"}]},  # LiRA per person
             # <attack>: loss_threshold, shadow, lira_online, lira_offline, lira (worse variant),
             # model_inversion {ssim_max, ssim_mean, ssim_max_other, confidence}, gradient_inversion {psnr, ssim}
 "lineage": {"git_sha", "dvc_lock_sha256", "mlflow_runs": {"<stage>": "<run id>"}, "model_uri"},
 "metrics": {"<stage>": {"<stage>/<metric>": value}},  # every recorded metric, for the appendix
 "definitions": {"<stage>/<metric>": {"label", "unit", "meaning"}},  # tasks/report/definitions.py
 "training": {"source", "features", "model", "auto_resolved": {"train.features": "full", ...}} | absent,
 "policy_changes": [{"name", "default", "value", "reason"}] | absent,  # thresholds looser than the policy
 "anonymizer": {"setup": {"targets", "verify", "detectors", "methods", "device", "preset"} | null,
                "sentences": {"searched", "detectors", "methods", "verification", "device"}},  # tasks/report/mechanism.py
 "first_page": {"verdict", "questions": [{"id", "question", "lines", "evidence", "items"?}]},  # by the flow
 "since_promoted": {"against", "available", "reason", "rows", "gates_changed"},  # by the flow (registry)
 "dp_sweep": {"rows": [{"experiment", "epsilon", "dp_test_accuracy", "nonprivate_test_accuracy", ...}],
              "ledger", "ledger_total_epsilon"} | absent when `make sweep` has not run,
 "inventory": {"sources", "counts", "datasets": [{"role", "path", "stage", "md5", "nfiles", "size", ...}],
               "retention": {"raw_days", "ingested_at", "age_days", "expired", "raw_present", "state", ...}}
              | absent when the flow passes none (tasks/report/inventory.py)}
```
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from tasks.anonymize.setup import AnonymizationSetup
from tasks.errors import InvalidInputError
from tasks.params import Gates
from tasks.report.accounting import group_privacy, pld_epsilon
from tasks.report.definitions import MIA_JSON_FIELDS, define
from tasks.report.gates import PERSON_NOT_ASSESSED, evaluate_gates, verdict
from tasks.report.mechanism import mechanism_sentences

ATTACK_FIELDS = {
    **MIA_JSON_FIELDS,  # membership inference, with low-FPR support and 95 % intervals
    # model inversion (MI-Face): SSIM of the class representative to its class / other classes
    "ssim_max": "ssim_max",
    "ssim_mean": "ssim_mean",
    "ssim_max_other": "ssim_max_other",
    "confidence": "confidence",
    # gradient inversion: best reconstruction (dp: DP noise at the training σ, nonprivate: none)
    "psnr": "psnr",
    "ssim": "ssim",
}
LIRA_VARIANTS = ("lira_online", "lira_offline")


# compare_methods.json columns carried into the report's per-method table
METHOD_COLUMNS = (
    "method",
    "psnr_whole",
    "ssim_whole",
    "msssim_whole",
    "psnr_outside",
    "residual_face_rate",
    "reid_naive_top1",
    "reid_adaptive_top1",
    "reid_trained_accuracy",
    "reid_chance",
    "utility_ratio",
    "text_pii_readable",
    "plate_readable",
    "text_nonpii_readable",
    "n_probes",
    # what a person sees (tasks/check_quality/appearance.py)
    "changed_outside",
    "border_edge_energy",
    "seam_regions",
    "nested_regions",
    "flat_regions",
    "body_preserved",
)


def _counts(metrics: Mapping[str, Mapping[str, float]]) -> dict[str, int]:
    ingested = int(metrics["ingest"]["ingest/n_ingested"])
    anonymized = int(metrics["anonymize"]["anonymize/processed"])
    quarantined = int(metrics["anonymize"]["anonymize/quarantined"])
    if anonymized + quarantined != ingested:
        raise InvalidInputError(
            f"counts do not add up: {anonymized} anonymized + {quarantined} quarantined "
            f"!= {ingested} ingested"
        )
    return {
        "ingested": ingested,
        "anonymized": anonymized,
        "quarantined": quarantined,
        "ingest_quarantined": int(metrics["ingest"]["ingest/n_quarantined"]),
        # anonymized images where an escalation ended in a solid mask (runs before issue 36: unknown)
        "masked": int(metrics["anonymize"].get("anonymize/masked_images", -1)),
    }


def _dp(
    record: Mapping[str, Any], epsilon_recomputed: float | None, ledger: Mapping[str, Any] | None
) -> dict[str, Any]:
    if "skipped" in record:  # no labels: nothing was trained, so nothing was released
        return {
            "skipped": str(record["skipped"]),
            "epsilon": None,
            "epsilon_recomputed": None,
            "delta": None,
            "epsilon_pld": None,
            "epsilon_checked": None,
        }
    keys = (
        "epsilon",
        "accountant",
        "noise_multiplier",
        "sample_rate",
        "steps",
        "epochs",
        "max_grad_norm",
        "n_train",
        "batch_size",
        "poisson_sampling",
        "target_epsilon",
    )
    # records written before grad_sample_mode / secure_mode existed ran Opacus' defaults
    optional = {"grad_sample_mode": "hooks", "secure_mode": False, "warnings": []}
    ledger_keys = (
        "ledger_total_epsilon",
        "ledger_runs",
        "ledger_max_total_epsilon",
        "ledger_delta",
        "dataset_digest",
    )
    pld = pld_epsilon(record["history"], delta=record["target_delta"])
    checked = max(pld, epsilon_recomputed) if epsilon_recomputed is not None else pld
    return (
        {k: record[k] for k in keys}
        | {k: record.get(k, v) for k, v in optional.items()}
        | {k: (ledger or {}).get(k) for k in ledger_keys}
        | {
            "delta": record["target_delta"],
            "epsilon_recomputed": epsilon_recomputed,
            "epsilon_pld": pld,
            "epsilon_checked": checked,
            "independent_accountant": "dp-accounting PLD",
            "rng": record.get("rng", "seeded"),
            "privacy_unit": "one image",
            "mechanism": _mechanism(record),
        }
    )


def _mechanism(record: Mapping[str, Any]) -> str:
    """The DP mechanism in words, from the record: its sampling decides what the accountant's ε assumes."""
    sampling = (
        "Poisson-subsampled Gaussian"
        if record.get("poisson_sampling", True)
        else "Gaussian noise on shuffled fixed-size batches, priced as if Poisson-subsampled"
    )
    unit = record.get("privacy_unit")
    capped = f", each {unit['unit']}'s training images capped at {unit['cap']}" if unit else ""
    return f"DP-SGD ({sampling}), per-sample clipping at norm {record['max_grad_norm']:g}{capped}"


def _attacks(audit: Mapping[str, float]) -> dict[str, dict[str, dict[str, Any]]]:
    out: dict[str, dict[str, dict[str, Any]]] = {}
    for key, value in audit.items():
        parts = key.split("/")  # audit/<model>/<attack>/<field>
        if len(parts) != 4:
            continue
        _, model, attack, field = parts
        names = {v: k for k, v in ATTACK_FIELDS.items()}
        if field in names:
            out.setdefault(attack, {}).setdefault(model, {})[names[field]] = float(value)
    lira = {v: out[v] for v in LIRA_VARIANTS if v in out}
    if lira:  # attacks.lira: the worse (higher AUC) variant per model, and both variants
        # an unmeasured (NaN) variant ranks worst: its NaN reaches the gate, which then fails closed
        out["lira"] = {
            m: max(
                (r[m] | {"variant": v} for v, r in lira.items() if m in r),
                key=lambda r: math.inf if math.isnan(r.get("auc", math.nan)) else r["auc"],
            )
            for m in ("dp", "nonprivate")
            if any(m in r for r in lira.values())
        }
    return out


def against_claim(audit: Mapping[str, float], claimed: float | None) -> dict[str, float | None]:
    """The audit's two numbers that compare with ε, against the claimed (checked) ε.

    The audit stage prices its margin against the ε training reported (Opacus) and its canary ceiling against
    the target ε; the report claims `dp.epsilon_checked` (the larger of Opacus and PLD), so the margin gate,
    the ceiling gate and the audit's conclusion are all judged against that one ε.

    Args:
        audit: the audit stage's metrics ("audit/dp/empirical_epsilon_lower_bound", "audit/dp/canary/ceiling").
        claimed: the checked ε; None when no model was trained.
    Returns:
        "empirical_epsilon_margin" (claimed − lower bound) and "canary_ceiling_ratio" (ceiling ÷ claimed), each
        None when a part is missing (the gate then fails as not measured, or is not assessed without labels).
    """
    if claimed is None or not math.isfinite(claimed) or claimed <= 0:
        return {"empirical_epsilon_margin": None, "canary_ceiling_ratio": None}
    bound, ceiling = audit.get("audit/dp/empirical_epsilon_lower_bound"), audit.get("audit/dp/canary/ceiling")
    return {
        "empirical_epsilon_margin": None if bound is None else claimed - bound,
        "canary_ceiling_ratio": None if ceiling is None else ceiling / claimed,
    }


def gate_values(
    metrics: Mapping[str, Mapping[str, float]],
    dp: Mapping[str, Any],
    utility: Mapping[str, float],
    counts: Mapping[str, int],
) -> dict[str, float | None]:
    """Flatten the measured values the gates read ("<section>/<metric>")."""
    flat: dict[str, float | None] = {k: v for m in metrics.values() for k, v in m.items()}
    flat["anonymize/quarantine_fraction"] = (
        counts["quarantined"] / counts["ingested"] if counts["ingested"] else None
    )
    flat |= {
        f"dp/{k}": None if dp.get(k) is None else float(dp[k])
        for k in ("epsilon", "epsilon_recomputed", "delta", "epsilon_pld", "epsilon_checked")
    }
    flat |= {f"utility/{k}": float(v) for k, v in utility.items()}
    flat |= {f"attacks/{k.split('/', 1)[1]}": v for k, v in metrics.get("audit", {}).items()}
    flat |= {
        f"dp/{k}": v for k, v in against_claim(metrics.get("audit", {}), dp.get("epsilon_checked")).items()
    }
    if dp.get(
        "unit"
    ):  # per-unit run: the problems re-pricing it from the data found (0: the accountants agree)
        flat["dp/unit_problems"] = float(len(dp["unit"]["problems"]))
    for field in ("auc", "tpr_at_0_1pct_fpr"):  # LiRA gates check the worse of its two variants
        for level in ("", "person/"):  # per image, and per person ("audit/dp/person/lira_online/auc")
            found = [
                v for a in LIRA_VARIANTS if (v := flat.get(f"attacks/dp/{level}{a}/{field}")) is not None
            ]
            # the worse variant; an unmeasured (NaN) one is the worst, so the gate fails closed on it
            flat[f"attacks/dp/{level}lira/{field}"] = (
                (math.nan if any(math.isnan(v) for v in found) else max(found)) if found else None
            )
    return flat


PERSON_FIELDS = (
    "auc",
    "auc_ci_low",
    "auc_ci_high",
    "tpr_at_0_1pct_fpr",
    "tpr_at_1pct_fpr",
    "tpr_at_1pct_fpr_ci_low",
    "tpr_at_1pct_fpr_ci_high",
    "n_members",
    "n_nonmembers",
    "n_member_persons",
    "n_nonmember_persons",
    "n_models",
)


def person_attacks(audit: Mapping[str, float], *, per_unit: bool) -> dict[str, Any]:
    """Membership per person beside per image (compliance.json "person_attacks"): for each LiRA variant and target,
    the person-level fields ("audit/<which>/person/<attack>/<field>") next to the image-level AUC.

    Args:
        audit: the audit stage's metrics.
        per_unit: the run's privacy unit is not one image (else the person level is not assessed, with the reason).
    """
    rows = [
        {"attack": a, "model": m, "image_auc": audit.get(f"audit/{m}/{a}/auc")}
        | {f: audit.get(f"audit/{m}/person/{a}/{f}") for f in PERSON_FIELDS}
        for a in LIRA_VARIANTS
        for m in ("dp", "nonprivate")
        if f"audit/{m}/person/{a}/auc" in audit
    ]
    reason = None if per_unit else PERSON_NOT_ASSESSED
    return {
        "assessed": per_unit,
        "reason": reason,
        "persons": audit.get("audit/dp/person/n_persons"),
        "rows": rows,
    }


def build_compliance(
    *,
    metrics: Mapping[str, Mapping[str, float]],
    dp_record: Mapping[str, Any],
    epsilon_recomputed: float | None,
    gates: Gates,
    lineage: Mapping[str, Any],
    missing: Mapping[str, str | None] | None = None,
    waived: Mapping[str, str] | None = None,
    quarantine_reasons: Sequence[Mapping[str, str]] = (),
    ledger: Mapping[str, Any] | None = None,
    sweep: Mapping[str, Any] | None = None,
    methods: Sequence[Mapping[str, Any]] = (),
    inventory: Mapping[str, Any] | None = None,
    anonymizer: Mapping[str, Any] | None = None,
    policy_changes: Sequence[Mapping[str, Any]] | None = None,
    training: Mapping[str, Any] | None = None,
    unit: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Assemble compliance.json from the stages' metrics, the DP record and lineage; evaluate every gate.

    `ledger` (from the privacy budget ledger): ledger_total_epsilon (composed over every DP run on the
    dataset), ledger_runs, ledger_max_total_epsilon, ledger_delta, dataset_digest; None leaves them null.
    `sweep` (flows/sweep.py's sweep.json): the privacy–utility sweep, reported as evidence, never gated.
    `methods` (check_quality's compare_methods.json): one row per anonymization method on the same images.
    `inventory` (tasks/report/inventory.py): sources, counts, dataset digests, raw-data retention status;
    reported, never gated (its retention state changes with the clock, the verdict must not).
    `missing` (`data_capabilities`): what the data cannot measure and why; `waived`: params' gates_waived.
    `anonymizer`: the anonymize run's `AnonymizationSetup.as_dict()` (targets, detectors, verification, device):
    the report's sentences about the mechanism are made from it; None: they say it was not recorded.
    `policy_changes`: thresholds looser than the packaged policy, each {name, default, value, reason}
    (`tasks.report.gates.policy_changes`), listed on the first page; None: not evaluated (key absent).
    `training`: the train run's record {source, features, model, auto_resolved}; None: key absent.
    `unit`: a per-unit run's guarantee recomputed from the data (`tasks.report.accounting.unit_guarantee`): the
    headline ε becomes the per-unit one, and its agreement is a gate; None: the unit is one image.
    """
    counts = _counts(metrics)
    dp = _dp(dp_record, epsilon_recomputed, ledger)
    audit = metrics.get("audit", {})
    dp["empirical_epsilon_lower_bound"] = audit.get("audit/dp/empirical_epsilon_lower_bound")
    design = {
        "confidence": audit.get("audit/dp/empirical_epsilon_confidence"),
        "tests": f"{int(audit.get('audit/dp/empirical_epsilon_tests', 0))} pre-registered: LiRA online and the "
        "one-run canary audit",
        "canaries": audit.get("audit/dp/canary/n_canaries"),
        "guesses": audit.get("audit/dp/canary/n_guesses"),
        "ceiling": audit.get("audit/dp/canary/ceiling"),
        "ceiling_ratio": against_claim(audit, dp.get("epsilon_checked"))["canary_ceiling_ratio"],
        "exploratory": audit.get("audit/dp/exploratory_epsilon_lower_bound"),
    }
    k = int(metrics.get("ingest", {}).get("ingest/max_train_images_per_person", 0) or 0)
    if (
        unit is not None and dp.get("epsilon_checked") is not None
    ):  # per-unit DP: the tight per-unit guarantee
        dp |= per_unit_dp(dp, unit)
    elif k and dp.get("epsilon_checked") is not None:  # identities known: the person-level guarantee
        g_eps, g_delta = group_privacy(float(dp["epsilon_checked"]), float(dp["delta"]), k=k)
        dp["group"] = {"images_per_person": k, "epsilon": g_eps, "delta": g_delta}
    train = metrics.get("train", {})
    utility = {
        k: float(train[f"train/{k}"])
        for k in ("dp_test_accuracy", "nonprivate_test_accuracy")
        if f"train/{k}" in train
    }
    reasons = {
        str(ch["name"]): str(ch["reason"]) for ch in policy_changes or ()
    }  # each loosened gate says why
    results = evaluate_gates(
        gates,
        gate_values(metrics, dp, utility, counts),
        missing=missing,
        waived=waived,
        policy_reasons=reasons,
    )
    states = {s: sum(g.status == s for g in results) for s in ("passed", "failed", "waived", "not_assessed")}
    return (
        {
            "verdict": verdict(results),
            "gates": [g.as_dict() for g in results],
            "gate_states": states,
            "data_capabilities": dict(missing or {}),
            "counts": counts,
            "dp": dp,
            "utility": utility,
            "attacks": _attacks(metrics.get("audit", {})),
            "person_attacks": person_attacks(metrics.get("audit", {}), per_unit=bool(dp.get("unit"))),
            "audit_design": design,
            "quality": {k.split("/", 1)[1]: v for k, v in metrics.get("check_quality", {}).items()},
            "method_comparison": [{k: v for k, v in row.items() if k in METHOD_COLUMNS} for row in methods],
            "anonymization": {k.split("/", 1)[1]: v for k, v in metrics.get("anonymize", {}).items()},
            "anonymizer": _anonymizer(anonymizer),
            "quarantine": list(quarantine_reasons),
            "lineage": dict(lineage),
            "metrics": {
                stage: dict(values) for stage, values in metrics.items()
            },  # every recorded value (appendix)
            # the label, unit and meaning of every recorded key: the same table the HTML and Markdown show
            "definitions": {
                k: {"label": d.label, "unit": d.unit, "meaning": d.meaning}
                for m in metrics.values()
                for k in sorted(m)
                if (d := define(k)) is not None
            },
        }
        | ({"dp_sweep": _sweep(sweep)} if sweep else {})
        | ({"inventory": dict(inventory)} if inventory else {})
        | ({"policy_changes": [dict(ch) for ch in policy_changes]} if policy_changes is not None else {})
        | ({"training": dict(training)} if training else {})
    )


def per_unit_dp(dp: Mapping[str, Any], unit: Mapping[str, Any]) -> dict[str, Any]:
    """The report's dp fields for a per-unit run: the headline ε is the per-unit one (never below the per-image
    one), the unit in words, the cap, and the agreement (`dp/unit_problems`, a gate)."""
    eps = max(float(dp["epsilon_checked"]), float(unit["epsilon"]))
    return {
        "epsilon_image": dp["epsilon_checked"],
        "epsilon_checked": eps,
        "unit": dict(unit),
        "privacy_unit": f"one {unit['unit']} (at most {unit['cap']} training image{'s' * (unit['cap'] != 1)} "
        "each, enforced)",
        "group": {"images_per_person": unit["cap"], "epsilon": eps, "delta": unit["delta"], "tight": True},
    }


def _anonymizer(record: Mapping[str, Any] | None) -> dict[str, Any]:
    """The anonymize run's setup and the report's sentences about it (`tasks.report.mechanism`)."""
    setup = AnonymizationSetup.from_dict(record) if record else None
    return {"setup": setup.as_dict() if setup else None, "sentences": mechanism_sentences(setup)}


def _sweep(sweep: Mapping[str, Any]) -> dict[str, Any]:
    totals = sweep.get("ledger_total_epsilon") or {}
    return {
        "rows": list(sweep["rows"]),
        "ledger": sweep.get("ledger"),
        "git_sha": sweep.get("git_sha"),
        "datasets": sorted(totals),
        "ledger_total_epsilon": max(totals.values()) if totals else None,
    }


def data_capabilities(metrics: Mapping[str, Mapping[str, float]], *, source: str) -> dict[str, str | None]:
    """What the data can measure (`tasks.report.gates.NEEDS`): None where it can, else the reason.

    Read from the stages' own counts: ingest's ground-truth boxes per category, identities and labels,
    check_quality's linkage sample.
    """
    ingest, quality = metrics.get("ingest", {}), metrics.get("check_quality", {})

    def has(key: str, store: Mapping[str, float]) -> bool:
        return float(store.get(key, 0.0) or 0.0) > 0

    no_gt = (
        f"no {{what}} ground truth: the {source!r} source has no {{what}} boxes "
        "(bring them as a COCO json: ingest.source coco)"
    )
    out: dict[str, str | None] = {}
    for need, cat, what in (
        ("face_gt", "face", "face"),
        ("plate_gt", "plate", "licence-plate"),
        ("text_pii_gt", "text_pii", "personal-text"),
        ("text_nonpii_gt", "text_nonpii", "non-personal-text"),
    ):
        out[need] = None if has(f"ingest/gt_{cat}", ingest) else no_gt.format(what=what)
    out["identities"] = (
        None
        if has("ingest/n_identities", ingest)
        else (
            "no identities (who each face is): the identity re-identification attacks cannot run; the "
            "identity-free linkage attack measures re-identification instead"
        )
    )
    out["faces"] = (
        None
        if float(quality.get("check_quality/linkage_n_faces", 0.0) or 0.0) >= 2
        else ("fewer than 2 faces found in the anonymized images: nothing to link")
    )
    out["labels"] = (
        None
        if has("ingest/labelled", ingest)
        else ("no labels (ingest.label_from: none): train and audit were skipped, no model was released")
    )
    return out
