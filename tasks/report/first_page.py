"""The report's first page: the data-protection officer's questions answered in plain words, with evidence links.

Built from compliance.json only (no new measurement): what data was processed, what was removed and how
well, what the model may reveal, which gates are open (failed, waived, not assessed) and why, and the
verdict with who may promote. Each answer names the report section that holds its evidence. No metric
key appears here: every number carries its meaning in words.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from tasks.report.mechanism import MARGIN_GATE, audit_conclusion

# attack name (the part of an audit metric key) → how the report names it
ATTACK_LABELS: dict[str, str] = {
    "loss_threshold": "loss-threshold membership inference (Yeom et al. 2018)",
    "shadow": "shadow-model membership inference (Shokri et al. 2017)",
    "lira_online": "LiRA online membership inference (Carlini et al. 2022)",
    "lira_offline": "LiRA offline membership inference (Carlini et al. 2022)",
    "lira": "LiRA membership inference, worse of online and offline",
}
MEMBERSHIP_ATTACKS = ("loss_threshold", "shadow", "lira_online", "lira_offline")
STATE_WORDS = {"passed": "passed", "failed": "FAILED", "waived": "waived", "not_assessed": "not assessed"}


def pct(value: float | None, digits: int = 1) -> str:
    """A share as a percentage in words ("97.3 %"); "not measured" for None or NaN."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "not measured"
    share = 100 * float(value)
    if 0 < abs(share) < 10**-digits:  # 0.03 %, not a "0.0 %" that reads as none
        return f"{share:.2g} %"
    return f"{share:.{digits}f} %"


def _num(value: float | None, digits: int = 3) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "not measured"
    return f"{float(value):.{digits}g}"


def _data(c: Mapping[str, Any]) -> dict[str, Any]:
    counts, inv = c["counts"], c.get("inventory") or {}
    source = (inv.get("sources") or [{}])[0]
    kind = source.get("kind", "builtin")
    where = (
        (
            "the built-in synthetic data set (generated from assets in pinned packages; no real person's "
            "photo is ingested)"
        )
        if kind == "builtin"
        else f"your {kind} source at {source.get('location')}"
    )
    ret = inv.get("retention") or {}
    lines = [
        f"Source: {where}.",
        f"{counts['ingested']} images ingested ({counts['ingest_quarantined']} rejected at ingest with a reason); "
        f"{counts['anonymized']} anonymized and {counts['quarantined']} quarantined by anonymization — "
        f"{counts['anonymized']} + {counts['quarantined']} = {counts['ingested']}: nothing is lost, and no "
        "quarantined image reaches training.",
    ]
    if ret:
        lines.append(
            f"Ingested {ret.get('ingested_at') or 'at an unknown time'}; raw images are kept at most "
            f"{ret.get('raw_days')} days — retention status on {ret.get('checked_at')}: {ret.get('state')}."
        )
    return {"id": "data", "question": "What data was processed?", "lines": lines, "evidence": "#processing"}


def _category_line(name: str, found: float | None, found_how: str, residual: Sequence[str]) -> str:
    rest = "; ".join(residual) if residual else "no residual measure for this data"
    if found is None:  # never "not measured of the faces …": say what could not be measured, then what was
        return f"{name}: how many were covered could not be measured on this data (no ground truth); {rest}."
    return f"{name}: {pct(found)} {found_how}; {rest}."


def _measured(values: Mapping[str, Any]) -> dict[str, Any]:
    """The values that hold a number: a NaN (nothing to measure it on) reads as not there."""
    return {k: v for k, v in values.items() if v is not None and not (isinstance(v, float) and math.isnan(v))}


def _removed(c: Mapping[str, Any]) -> dict[str, Any]:
    q = _measured(c.get("quality", {}))
    said = (c.get("anonymizer") or {}).get("sentences") or {}
    lines: list[str] = [said[k] for k in ("searched", "verification") if said.get(k)]
    face_found, how = (
        q.get("face_redaction_recall"),
        "of the faces in the ground truth were covered by a redaction",
    )
    if face_found is None and q.get("face_redaction_recall_detector_proxy") is not None:
        face_found = q["face_redaction_recall_detector_proxy"]
        how = (
            "of the faces an independent detector (dlib) finds on the raw images were covered (no face "
            "ground truth: a proxy)"
        )
    residual = []
    if q.get("residual_face_matched_rate") is not None:
        residual.append(
            f"an independent face detector still finds {pct(q['residual_face_matched_rate'])} of them "
            "after anonymization"
        )
    reid = [
        (float(q[k]), label)
        for k, label in (
            ("reid_adaptive_top1", "an attacker who anonymizes a gallery of the people the same way"),
            ("reid_trained_accuracy", "a classifier trained on anonymized faces of the people"),
        )
        if k in q
    ]
    if reid:
        rate, label = max(reid, key=lambda r: r[0])
        chance = q.get("reid_chance")
        residual.append(
            f"the strongest re-identification attack ({label}) names the right person for "
            f"{pct(rate)} of anonymized faces" + (f" (guessing: {pct(chance)})" if chance else "")
        )
    if q.get("linkage_advantage") is not None:
        residual.append(
            f"linking an anonymized face back to its own raw face beats guessing by "
            f"{pct(q['linkage_advantage'])} (identity-free linkage attack)"
        )
    lines.append(_category_line("Faces", face_found, how, residual))
    if q.get("plate_redaction_recall") is not None or q.get("plate_readable_anon") is not None:
        lines.append(
            _category_line(
                "Licence plates",
                q.get("plate_redaction_recall"),
                "of the plates were covered by a redaction",
                [f"OCR still reads {pct(q['plate_readable_anon'])} of plate strings afterwards"]
                if q.get("plate_readable_anon") is not None
                else [],
            )
        )
    if q.get("text_pii_redaction_recall") is not None or q.get("text_pii_readable_anon") is not None:
        kept = q.get("text_nonpii_preserved")
        lines.append(
            _category_line(
                "Personal text (names, phone numbers, e-mail addresses)",
                q.get("text_pii_redaction_recall"),
                "of it was covered by a redaction",
                (
                    [f"OCR still reads {pct(q['text_pii_readable_anon'])} of personal strings afterwards"]
                    if q.get("text_pii_readable_anon") is not None
                    else []
                )
                + (
                    [f"{pct(kept)} of ordinary, non-personal text stays readable"] if kept is not None else []
                ),
            )
        )
    if q.get("body_redaction_recall") is not None:
        lines.append(
            _category_line("Bodies", q.get("body_redaction_recall"), "of people's bodies were covered", [])
        )
    return {
        "id": "removed",
        "question": "What was removed, and how well?",
        "lines": lines,
        "evidence": "#risks",
    }


FEATURE_WORDS = {
    "placard": "the digit placard cropped from each image (the benchmark's task)",
    "full": "whole images",
}


def training_line(t: Mapping[str, Any]) -> str:
    """What was trained, on which inputs, and which choice followed the ingest source (`auto`)."""
    auto = sorted(t.get("auto_resolved") or {})
    inputs = FEATURE_WORDS.get(str(t.get("features")), str(t.get("features")))
    chosen = f"; {' and '.join(auto)} followed the {t.get('source')!r} source (auto)" if auto else ""
    return f"The model is {t['model']}, trained on {inputs}{chosen}."


def _finite(value: Any) -> bool:
    """A number that was measured (not None, not NaN, not infinite)."""
    return isinstance(value, int | float) and math.isfinite(value)


def strongest_attack(
    attacks: Mapping[str, Mapping[str, Mapping[str, Any]]],
) -> tuple[str, Mapping[str, Any]] | None:
    """The membership-inference attack with the highest AUC against the DP model, or None."""
    found = [
        (a, r["dp"])
        for a, r in attacks.items()
        if a in MEMBERSHIP_ATTACKS and "dp" in r and _finite(r["dp"].get("auc"))
    ]
    return max(found, key=lambda ar: float(ar[1]["auc"])) if found else None


def _model(c: Mapping[str, Any]) -> dict[str, Any]:
    dp = c["dp"]
    if dp.get("skipped"):
        return {
            "id": "model",
            "question": "What may the model reveal?",
            "evidence": "#measures-dp",
            "lines": [f"No model was trained or released: {dp['skipped']}."],
        }
    eps, delta = (
        dp.get("epsilon_checked"),
        dp.get("delta"),
    )  # the one ε: the larger of Opacus and the PLD check
    lines = [
        f"The model was trained with differential privacy: ε = {_num(eps)} and δ = {_num(delta)}; the privacy "
        f"unit is {dp.get('privacy_unit', 'one image')} (ε is a natural-log bound, recomputed from the recorded "
        "training history and checked by an independent accountant).",
        f"In one sentence: whether {_unit_words(dp)} in the training data changes the probability of "
        f"anything the model could reveal by at most a factor of {_exp(eps)} (e^ε), except with "
        f"probability {_num(delta)}.",
    ]
    group = dp.get("group")
    if group and group.get("tight"):
        u = dp["unit"]
        lines.append(
            f"Each {u['unit']} was capped at {u['cap']} training images ({u['n_kept']} of {u['n_before']} "
            f"kept; {u['rule']}); the per-{u['unit']} ε is priced by dp-accounting's mixture PLD "
            f"({_num(u['epsilon_pld'])}) and, independently, a PRV accountant ({_num(u['epsilon_prv'])})"
            + (
                "."
                if u["agreement"]
                else f", which do not agree with the record: {'; '.join(u['problems'])}."
            )
            + (
                f" {u['images_without_unit']} of the kept images show no known {u['unit']}: each is its own "
                f"unit, so anyone unidentified in them is protected per image (ε = {_num(dp.get('epsilon_image'))})."
                if u.get("images_without_unit")
                else ""
            )
        )
    elif group:
        lines.append(
            f"One person appears in up to {group['images_per_person']} training images: for a person "
            f"as a whole the guarantee is ε = {_num(group['epsilon'])}, δ = {_num(group['delta'])}"
            + (
                " — no meaningful per-person bound; anonymization protects people"
                if group["delta"] >= 1
                else ""
            )
            + "."
        )
    if c.get("training", {}).get("model"):
        lines.append(training_line(c["training"]))
    best = strongest_attack(c.get("attacks", {}))
    if best:
        name, r = best
        tpr = r.get("tpr_at_1pct_fpr")
        lines.append(
            f"The strongest attack measured, {ATTACK_LABELS.get(name, name)}, tells training images from "
            f"others with AUC {_num(r['auc'])} (0.5 is guessing, 1.0 is certainty)"
            + (
                f"; allowed 1 % false alarms it finds {pct(tpr)} of training images (guessing: 1.0 %)"
                if _finite(tpr)
                else ""
            )
            + "."
        )
    design = c.get("audit_design") or {}
    conclusion = audit_conclusion(
        lower_bound=dp.get("empirical_epsilon_lower_bound"),
        claimed=eps,
        ceiling=design.get("ceiling"),
        ceiling_ratio=design.get("ceiling_ratio"),
        margin_gate=next((g for g in c["gates"] if g["name"] == MARGIN_GATE), None),
    )
    if conclusion:
        lines.append(conclusion)
    return {
        "id": "model",
        "question": "What may the model reveal?",
        "lines": lines,
        "evidence": "#risks-model",
    }


def _unit_words(dp: Mapping[str, Any]) -> str:
    """What one guarantee covers: one image, or all the training images of one unit (a person, a video)."""
    unit = (dp.get("unit") or {}).get("unit")
    return f"all the training images of any one {unit} were" if unit else "any single image was"


def _exp(eps: Any) -> str:
    return "not measured" if eps is None else _num(math.exp(float(eps)))


def measured(g: Mapping[str, Any], *, num: Callable[[Any], str] = _num) -> str:
    """A gate's measured value with its confidence interval and sample when the gate has them (`GateResult.as_dict`:
    lower, upper, n, unit, n_other, other_unit, method, confidence): "0.26 [0.14, 0.42], n = 27 members,
    9 non-members (Clopper–Pearson, 95 %)"; the value alone when it has none."""
    text = num(g.get("value"))
    if g.get("lower") is not None and g.get("upper") is not None:
        text += f" [{num(g['lower'])}, {num(g['upper'])}]"
    if g.get("n") is not None:
        text += f", n = {int(g['n'])}" + (f" {g['unit']}" if g.get("unit") else "")
        if g.get("n_other") is not None:
            text += f", {int(g['n_other'])}" + (f" {g['other_unit']}" if g.get("other_unit") else "")
    if g.get("method"):
        level = f", {100 * float(g['confidence']):g} %" if g.get("confidence") else ""
        text += f" ({g['method']}{level})"
    return text


def policy_lines(changes: Sequence[Mapping[str, Any]]) -> list[str]:
    """One sentence per threshold looser than the packaged policy (`gates_policy_changes`), with its reason."""
    return [
        f"Policy change: {ch['name']} is {_num(ch.get('value'))} where the packaged policy is "
        f"{_num(ch.get('default'))} — reason given: {ch.get('reason') or 'none'}."
        for ch in changes
    ]


def _open(c: Mapping[str, Any]) -> dict[str, Any]:
    items = [
        {
            "what": g["description"],
            "gate": g["name"],
            "state": STATE_WORDS.get(g["status"], g["status"]),
            "status": g["status"],
            "reason": g.get("reason") or "",
            "measured": measured(g),
        }
        for g in c["gates"]
        if g["status"] != "passed"
    ]
    n = len(c["gates"])
    lines = (
        [f"All {n} gates passed."]
        if not items
        else [f"{n - len(items)} of {n} gates passed; {len(items)} did not (below, each with its reason)."]
    )
    if (
        "policy_changes" in c
    ):  # tasks.report.gates.policy_changes: thresholds looser than the packaged defaults
        lines += policy_lines(c["policy_changes"]) or ["No threshold is looser than the packaged policy."]
    return {
        "id": "open",
        "question": "What failed, was waived, was loosened or was not assessed?",
        "lines": lines,
        "items": items,
        "evidence": "#measures-gates",
    }


def _verdict(c: Mapping[str, Any], *, model_name: str, alias: str) -> dict[str, Any]:
    passed = c["verdict"] == "pass"
    line = (
        (
            f"Verdict PASS: every gate passed or was waived with a written reason. The promote stage may register "
            f"this model in the MLflow registry as {model_name}@{alias}."
        )
        if passed
        else (
            f"Verdict FAIL: the promote stage refuses to register this model as {model_name}@{alias} until every gate "
            "passes or is waived."
        )
    )
    who = (
        "Who may promote: whoever runs the pipeline's promote stage (`dvc repro promote`) with write access to "
        "the MLflow registry — and only on a PASS; a waiver is a change to the params file (gates_waived, "
        "with its reason), reviewed in version control like any other change."
    )
    return {
        "id": "verdict",
        "question": "What is the verdict, and who may promote the model?",
        "lines": [line, who],
        "evidence": "#measures-gates",
    }


def first_page(
    c: Mapping[str, Any], *, model_name: str = "privtrail-dp", alias: str = "audited"
) -> dict[str, Any]:
    """The first page as JSON-ready data: the verdict and five answered questions, each with its evidence anchor.

    Args:
        c: compliance.json as built by `tasks.report.compliance.build_compliance`.
        model_name, alias: where promote registers the model (params.promote).
    """
    return {
        "verdict": c["verdict"],
        "questions": [
            _data(c),
            _removed(c),
            _model(c),
            _open(c),
            _verdict(c, model_name=model_name, alias=alias),
        ],
    }
