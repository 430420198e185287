"""Render compliance.json as a self-contained HTML page (inline CSS, images as data URIs, no fetches)
and as Markdown (the same sections; figures named by caption, not embedded).

Both follow a DPIA (GDPR Art. 35(7)): a first page of answers, then the description of the processing,
necessity and proportionality, risks to the people, measures, the change since the last promoted model,
and appendices with every measured value (machine key, label, unit, meaning from `definitions`).
"""

from __future__ import annotations

import base64
from collections.abc import Mapping
from typing import Any

from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape

from tasks.errors import InvalidInputError
from tasks.report.definitions import define
from tasks.report.first_page import ATTACK_LABELS, first_page, measured
from tasks.report.mechanism import (
    MARGIN_GATE,
    VERIFY_WORDS,
    audit_conclusion,
    mechanism_sentences,
    searched_words,
)

# requirement → where the evidence is in this report; status is computed from the gates named.
REGULATIONS: tuple[tuple[str, str, str, tuple[str, ...]], ...] = (
    (
        "GDPR Art. 5(1)(c) data minimisation",
        "{searched} removed before training",
        "3.1 Re-identification, 4.1 Anonymization",
        ("min_face_redaction_recall", "min_plate_redaction_recall", "max_residual_face_rate"),
    ),
    (
        "GDPR Art. 25 data protection by design",
        "{by_design}; DP training by default",
        "4.1 Anonymization, 4.2 DP guarantee",
        ("anonymize_verification_on", "max_quarantine_fraction", "max_epsilon", "max_delta"),
    ),
    (
        "GDPR Art. 32 security of processing",
        "Attack audit of the released model",
        "3.2 What the model may reveal",
        (
            "max_mia_auc_dp",
            "max_mia_tpr_at_1pct_fpr_dp",
            "max_lira_auc_dp",
            "max_lira_tpr_at_0_1pct_fpr_dp",
            "max_gradient_inversion_psnr_dp",
        ),
    ),
    ("GDPR Art. 35 DPIA evidence", "Every gate with threshold and measured value", "4.3 Gates", ()),
    (
        "CCPA §1798.140 deidentified information",
        "Identifiers removed; re-identification risk measured",
        "3.1 Re-identification, 3.2 What the model may reveal",
        ("max_residual_face_rate", "max_adaptive_reid_rate", "max_trained_reid_rate", "max_mia_auc_dp"),
    ),
    (
        "HIPAA §164.514(b) expert determination",
        "Quantified residual risk (ε, δ, attack success)",
        "4.2 DP guarantee, 3.2 What the model may reveal",
        ("max_epsilon", "min_empirical_epsilon_margin", "max_mia_tpr_at_1pct_fpr_dp"),
    ),
    (
        "PIPL Art. 51 / 73(4) anonymization",
        "Personal information cannot be re-identified or restored",
        "3.1 Re-identification, 3.2 What the model may reveal",
        ("min_face_redaction_recall", "max_trained_reid_rate", "max_text_pii_readable", "max_mia_auc_dp"),
    ),
    ("China Data Security Law Art. 27", "Reproducible audit trail of processing", "Appendix B: Lineage", ()),
)


def data_uri_png(data: bytes) -> str:
    """A PNG as a data: URI (the page fetches nothing)."""
    return "data:image/png;base64," + base64.b64encode(data).decode()


# figure key → (report section anchor, caption, what to look for); only anonymized data and aggregates.
FIGURES: dict[str, tuple[str, str, str]] = {
    "method_samples": (
        "risks-anonymized",
        "Sample outputs of the anonymization methods: the applied method cut "
        "from the files anonymize wrote after verification (every redaction in place); other methods "
        "only on the builtin benchmark's package faces, never on your images; the note under the "
        "figure says which methods were left out and why",
        "Look for: no row in which you could recognise the person; the default method should look "
        "natural rather than damaged.",
    ),
    "privacy_utility": (
        "risks-anonymized",
        "Privacy–utility of every anonymization method on the same images",
        "Look for: the default method near the dashed chance line on re-identification while keeping "
        "task accuracy near 1.",
    ),
    "roc": (
        "risks-model",
        "Membership-inference ROC curves, log-log",
        "Look for: the DP model's curves on the diagonal (guessing), above all at the left, where false alarms "
        "are rare; the non-private baseline above the diagonal shows what DP prevents.",
    ),
    "model_inversion": (
        "risks-model",
        "Model inversion (MI-Face): class representatives reconstructed from the DP "
        "model (never from the baseline)",
        "Look for: shapeless noise rather than a recognisable training image.",
    ),
    "gradient_inversion": (
        "risks-model",
        "Gradient inversion: anonymized training crops and their reconstructions under each defence",
        "Look for: under DP noise the reconstructions are noise; without a defence they resemble "
        "the (already anonymized) crop.",
    ),
    "gradient_inversion_psnr": (
        "risks-model",
        "Gradient inversion: reconstruction quality against the accuracy each defence costs",
        "Look for: the training configuration (DP) low on reconstruction PSNR.",
    ),
    "sweep": (
        "measures-dp",
        "Privacy–utility sweep: test accuracy against ε (make sweep)",
        "Look for: how much accuracy a smaller ε costs; the chosen ε should sit where the curve flattens.",
    ),
}
SECTIONS: dict[str, str] = {
    "#processing": "1. Description of the processing",
    "#necessity": "2. Necessity and proportionality",
    "#risks": "3.1 Re-identification from the anonymized images",
    "#risks-model": "3.2 What the released model may reveal",
    "#measures-dp": "4.2 Differential privacy guarantee",
    "#measures-gates": "4.3 Gates",
    "#since-promoted": "5. Since the last promoted model",
    "#appendix": "Appendix A: every measured value",
}
COUNT_LABELS: dict[str, str] = {
    "n_inputs": "files found",
    "n_ingested": "images ingested",
    "n_quarantined": "rejected at ingest",
    "n_train": "training images",
    "n_holdout": "held-out images",
    "n_test": "test images",
    "anonymize_processed": "anonymized",
    "anonymize_quarantined": "quarantined by anonymization",
}
# check_quality metrics of the risk section's key table (those present are shown, in this order)
KEY_QUALITY: tuple[str, ...] = (
    "face_redaction_recall",
    "face_redaction_recall_detector_proxy",
    "residual_face_matched_rate",
    "residual_face_detections_per_image_proxy",
    "reid_naive_top1",
    "reid_adaptive_top1",
    "reid_trained_accuracy",
    "reid_chance",
    "reid_clear_naive_top1",
    "linkage_advantage",
    "linkage_clear_top1",
    "plate_redaction_recall",
    "plate_readable_anon",
    "text_pii_redaction_recall",
    "text_pii_readable_anon",
    "text_nonpii_preserved",
    "utility_ratio",
)
APPENDIX_SECTIONS = (
    ("ingest", "Ingest"),
    ("anonymize", "Anonymize"),
    ("check_quality", "Check quality"),
    ("train", "Train"),
    ("audit", "Attack audit"),
)


def _described(key: str, value: Any) -> dict[str, Any]:
    d = define(key)
    return {
        "key": key,
        "value": value,
        "label": d.label if d else key,
        "unit": d.unit if d else "",
        "meaning": d.meaning if d else "no definition recorded",
    }


def key_quality_rows(compliance: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The risk section's key measures, each with its human label, unit and meaning."""
    q = compliance.get("quality", {})
    return [_described(f"check_quality/{k}", q[k]) for k in KEY_QUALITY if k in q]


def appendix_rows(compliance: Mapping[str, Any]) -> list[tuple[str, list[dict[str, Any]]]]:
    """Appendix A: every recorded metric of every stage, with its definition."""
    metrics = compliance.get("metrics") or {}
    return [
        (title, [_described(k, v) for k, v in sorted(metrics[stage].items())])
        for stage, title in APPENDIX_SECTIONS
        if metrics.get(stage)
    ]


def figure_list(
    figures: Mapping[str, Any], *, embed: bool, notes: Mapping[str, str] | None = None
) -> list[dict[str, str]]:
    """The figures in `FIGURES` order with section, caption and what to look for; `embed`: bytes → data URI.
    `notes`: figure key → the run's own sentence about that figure (e.g. which methods the method samples
    leave out and why), appended to what to look for.

    Raises:
        InvalidInputError: a figure key `FIGURES` does not know (every picture must say what it shows).
    """
    unknown = sorted(set(figures) - set(FIGURES))
    if unknown:
        raise InvalidInputError(f"figures: unknown {unknown}; known: {sorted(FIGURES)}")
    notes = notes or {}
    return [
        {
            "key": k,
            "section": FIGURES[k][0],
            "caption": FIGURES[k][1],
            "look_for": " ".join(x for x in (FIGURES[k][2], notes.get(k)) if x),
            "uri": data_uri_png(figures[k]) if embed else str(figures[k]),
        }
        for k in FIGURES
        if k in figures
    ]


def minimised_words(compliance: Mapping[str, Any]) -> str:
    """What anonymization removed, in words, from the run's recorded targets (never a fixed list)."""
    setup = (compliance.get("anonymizer") or {}).get("setup")
    if not setup:
        return "the categories of anonymize.targets (not recorded)"
    return searched_words(setup["targets"], text_policy=setup.get("text_policy", "pii"))


def _verified(compliance: Mapping[str, Any]) -> bool:
    """True only when the run recorded that the detectors checked the written images again."""
    setup = (compliance.get("anonymizer") or {}).get("setup")
    return setup is not None and setup["verify"] != "off"


def by_design_words(compliance: Mapping[str, Any]) -> str:
    """Whether anonymization was fail-closed, from the run's recorded verification (never assumed)."""
    setup = (compliance.get("anonymizer") or {}).get("setup")
    if setup is None:
        return (
            "Anonymization fail-closed only if verified: this run's verification setting was not recorded, so "
            "the report cannot say it"
        )
    if not _verified(compliance):
        return (
            "Anonymization not fail-closed: anonymize.verify is off, so no written image was checked by the "
            "detectors after obfuscation"
        )
    return (
        f"Fail-closed anonymization (anonymize.verify: {setup['verify']}): "
        f"{VERIFY_WORDS.get(setup['verify'], 'the detectors ran again on each written image')}, and every image "
        "in which a sensitive detection survived there was quarantined"
    )


def _audit_conclusion(compliance: Mapping[str, Any]) -> str | None:
    dp, design = compliance.get("dp") or {}, compliance.get("audit_design") or {}
    return audit_conclusion(
        lower_bound=dp.get("empirical_epsilon_lower_bound"),
        claimed=dp.get("epsilon_checked"),
        ceiling=design.get("ceiling"),
        ceiling_ratio=design.get("ceiling_ratio"),
        margin_gate=next((g for g in compliance.get("gates", []) if g["name"] == MARGIN_GATE), None),
    )


def _context(compliance: Mapping[str, Any], *, embed: bool, figures: Mapping[str, Any]) -> dict[str, Any]:
    compliance = {"anonymizer": {"setup": None, "sentences": mechanism_sentences(None)}} | dict(compliance)
    return {
        "c": compliance,
        "fp": compliance.get("first_page") or first_page(compliance),
        "figures": figure_list(figures, embed=embed, notes=compliance.get("figure_notes")),
        "regulations": regulation_rows(compliance),
        "sections": SECTIONS,
        "count_labels": COUNT_LABELS,
        "attack_labels": ATTACK_LABELS,
        "key_quality": key_quality_rows(compliance),
        "appendix": appendix_rows(compliance),
        "minimised": minimised_words(compliance),
        "verified": _verified(compliance),
        "audit_conclusion": _audit_conclusion(compliance),
    }


STORAGE_LIMITATION = (
    "GDPR Art. 5(1)(e) storage limitation",
    "Raw images kept at most retention.raw_days after "
    "ingest; `privtrail purge --apply` deletes expired raw data from the workspace and the DVC cache",
    "1. Description of the processing",
)


def _retention_row(compliance: Mapping[str, Any]) -> dict[str, str]:
    r = compliance.get("inventory", {}).get("retention")
    status = "not measured" if not r else "not met" if r["expired"] else "met"
    return dict(zip(("requirement", "evidence", "section"), STORAGE_LIMITATION, strict=True)) | {
        "status": status,
        "gates": "",
    }


def regulation_rows(compliance: Mapping[str, Any]) -> list[dict[str, str]]:
    """One row per requirement: its evidence, the report section and a status from the gates it names.

    A row whose gates are met only because some are waived says so, naming them ("met only by waiver (...)").
    The storage-limitation row's status comes from the raw data's retention state (not a gate).
    """
    state = {g["name"]: g.get("status", "passed" if g["passed"] else "failed") for g in compliance["gates"]}
    rows = [_retention_row(compliance)]
    for requirement, evidence, section, gate_names in REGULATIONS:
        states = {state.get(g, "failed") for g in gate_names}
        if gate_names and states <= {"not_assessed"}:
            status = "not assessed"
        elif gate_names:
            waived = [g for g in gate_names if state.get(g) == "waived"]
            status = (
                "not met"
                if not states <= {"passed", "waived"}
                else f"met only by waiver ({', '.join(waived)})"
                if waived
                else "met"
            )
        else:
            status = "evidence provided"
        evidence = evidence.format(
            searched=minimised_words(compliance).capitalize(), by_design=by_design_words(compliance)
        )
        rows.append(
            {
                "requirement": requirement,
                "evidence": evidence,
                "section": section,
                "status": status,
                "gates": ", ".join(gate_names),
            }
        )
    return rows


def render_html(
    compliance: Mapping[str, Any], *, title: str, figures: Mapping[str, bytes], reproduce: str
) -> str:
    """Render the report.

    Args:
        compliance: the compliance.json dict.
        title: page title.
        figures: `FIGURES` key → PNG bytes (anonymized data and aggregates only).
        reproduce: the command that reproduces the run.
    """
    return (
        _env(html=True)
        .get_template("compliance.html.j2")
        .render(title=title, reproduce=reproduce, **_context(compliance, embed=True, figures=figures))
    )


def render_markdown(
    compliance: Mapping[str, Any], *, title: str, figures: Mapping[str, str], reproduce: str
) -> str:
    """Render the report as Markdown (the same sections as the HTML).

    Args:
        compliance: the compliance.json dict.
        title: page title.
        figures: `FIGURES` key → path of the PNG relative to the Markdown file (anonymized data and aggregates only).
        reproduce: the command that reproduces the run.
    """
    return (
        _env(html=False)
        .get_template("compliance.md.j2")
        .render(title=title, reproduce=reproduce, **_context(compliance, embed=False, figures=figures))
    )


def _env(*, html: bool) -> Environment:
    env = Environment(
        loader=PackageLoader("tasks.report", "templates"),
        autoescape=select_autoescape() if html else False,
        undefined=StrictUndefined,
        trim_blocks=not html,
        lstrip_blocks=not html,
        keep_trailing_newline=True,
    )
    env.filters["num"] = _num
    env.filters["cell"] = _cell
    env.filters["measured"] = _measured
    return env


def _cell(value: Any) -> str:
    """A Markdown table cell: no pipes or newlines break the row."""
    return str(value).replace("|", "\\|").replace("\n", " ")


def _measured(g: Mapping[str, Any]) -> str:
    """A gate's measured value; with its interval and sample size when the gate has them ("v [lo, hi], n = N")."""
    return measured(g, num=_num)


def _num(value: Any, digits: int = 4) -> str:
    if value is None:
        return "not measured"
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return f"{value:.{digits}g}"
    return str(value)
