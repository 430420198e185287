"""Render compliance.json as a self-contained HTML page (inline CSS, images as data URIs, no fetches)
and as Markdown (the same sections; figures named by caption, not embedded)."""

from __future__ import annotations

import base64
from collections.abc import Mapping
from typing import Any

from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape

# requirement → where the evidence is in this report; status is computed from the gates named.
REGULATIONS: tuple[tuple[str, str, str, tuple[str, ...]], ...] = (
    ("GDPR Art. 5(1)(c) data minimisation", "Faces, plates and personal text removed before training",
     "Anonymization, Quality", ("min_face_redaction_recall", "min_plate_redaction_recall", "max_residual_face_rate")),
    ("GDPR Art. 25 data protection by design", "Fail-closed anonymization; DP training by default",
     "Anonymization, DP guarantee", ("max_quarantine_fraction", "max_epsilon", "max_delta")),
    ("GDPR Art. 32 security of processing", "Attack audit of the released model", "Attack audit",
     ("max_mia_auc_dp", "max_mia_tpr_at_1pct_fpr_dp", "max_lira_auc_dp", "max_lira_tpr_at_0_1pct_fpr_dp",
      "max_gradient_inversion_psnr_dp")),
    ("GDPR Art. 35 DPIA evidence", "Every gate with threshold and measured value", "Gates", ()),
    ("CCPA §1798.140 deidentified information", "Identifiers removed; re-identification risk measured",
     "Quality, Attack audit", ("max_residual_face_rate", "max_adaptive_reid_rate", "max_trained_reid_rate",
                               "max_mia_auc_dp")),
    ("HIPAA §164.514(b) expert determination", "Quantified residual risk (ε, δ, attack success)",
     "DP guarantee, Attack audit", ("max_epsilon", "min_empirical_epsilon_margin", "max_mia_tpr_at_1pct_fpr_dp")),
    ("PIPL Art. 51 / 73(4) anonymization", "Personal information cannot be re-identified or restored",
     "Anonymization, Attack audit", ("min_face_redaction_recall", "max_trained_reid_rate", "max_text_pii_readable",
                                     "max_mia_auc_dp")),
    ("China Data Security Law Art. 27", "Reproducible audit trail of processing", "Lineage", ()),
)


def data_uri_png(data: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(data).decode()


STORAGE_LIMITATION = ("GDPR Art. 5(1)(e) storage limitation", "Raw images kept at most retention.raw_days after "
                      "ingest; `privtrail purge --apply` deletes expired raw data from the workspace and the DVC cache",
                      "Data inventory")


def _retention_row(compliance: Mapping[str, Any]) -> dict[str, str]:
    r = compliance.get("inventory", {}).get("retention")
    status = "not measured" if not r else "not met" if r["expired"] else "met"
    return dict(zip(("requirement", "evidence", "section"), STORAGE_LIMITATION, strict=True)) | {
        "status": status, "gates": ""}


def regulation_rows(compliance: Mapping[str, Any]) -> list[dict[str, str]]:
    """One row per requirement: its evidence, the report section and a status from the gates it names.

    The storage-limitation row's status comes from the raw data's retention state (not a gate).
    """
    state = {g["name"]: g.get("status", "passed" if g["passed"] else "failed") for g in compliance["gates"]}
    rows = [_retention_row(compliance)]
    for requirement, evidence, section, gate_names in REGULATIONS:
        states = {state.get(g, "failed") for g in gate_names}
        if gate_names and states <= {"not_assessed"}:
            status = "not assessed"
        elif gate_names:
            status = "met" if states <= {"passed", "waived"} else "not met"
        else:
            status = "evidence provided"
        rows.append({"requirement": requirement, "evidence": evidence, "section": section, "status": status,
                     "gates": ", ".join(gate_names)})
    return rows


def render_html(compliance: Mapping[str, Any], *, title: str, figures: Mapping[str, bytes],
                reproduce: str) -> str:
    """Render the report.

    Args:
        compliance: the compliance.json dict.
        title: page title.
        figures: caption → PNG bytes (anonymized data and aggregates only).
        reproduce: the command that reproduces the run.
    """
    return _env(html=True).get_template("compliance.html.j2").render(
        c=compliance, title=title, figures={k: data_uri_png(v) for k, v in figures.items()},
        regulations=regulation_rows(compliance), reproduce=reproduce)


def render_markdown(compliance: Mapping[str, Any], *, title: str, figures: Mapping[str, str],
                    reproduce: str) -> str:
    """Render the report as Markdown (the same sections as the HTML).

    Args:
        compliance: the compliance.json dict.
        title: page title.
        figures: caption → path of the PNG relative to the Markdown file (anonymized data and aggregates only).
        reproduce: the command that reproduces the run.
    """
    return _env(html=False).get_template("compliance.md.j2").render(
        c=compliance, title=title, figures=dict(figures), regulations=regulation_rows(compliance),
        reproduce=reproduce)


def _env(*, html: bool) -> Environment:
    env = Environment(loader=PackageLoader("tasks.report", "templates"),
                      autoescape=select_autoescape() if html else False, undefined=StrictUndefined,
                      trim_blocks=not html, lstrip_blocks=not html, keep_trailing_newline=True)
    env.filters["num"] = _num
    env.filters["cell"] = _cell
    return env


def _cell(value: Any) -> str:
    """A Markdown table cell: no pipes or newlines break the row."""
    return str(value).replace("|", "\\|").replace("\n", " ")


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
