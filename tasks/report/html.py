"""Render compliance.json as a self-contained HTML page (inline CSS, images as data URIs, no fetches)."""

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


def regulation_rows(compliance: Mapping[str, Any]) -> list[dict[str, str]]:
    passed = {g["name"]: g["passed"] for g in compliance["gates"]}
    rows = []
    for requirement, evidence, section, gate_names in REGULATIONS:
        if gate_names:
            status = "met" if all(passed.get(g, False) for g in gate_names) else "not met"
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
    env = Environment(loader=PackageLoader("tasks.report", "templates"), autoescape=select_autoescape(),
                      undefined=StrictUndefined)
    env.filters["num"] = _num
    return env.get_template("compliance.html.j2").render(
        c=compliance, title=title, figures={k: data_uri_png(v) for k, v in figures.items()},
        regulations=regulation_rows(compliance), reproduce=reproduce)


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
