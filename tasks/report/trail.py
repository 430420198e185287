"""The audit trail for people: what a typed model reference means, which version a bare name resolves to,
and the short readable trail `privtrail trail` prints.

Pure: it works on what the user typed, on a registered model's aliases and latest version, and on the trail
record `privtrail trail --json` prints (flows/trail.py builds that record from MLflow and dvc.lock).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from tasks.errors import InvalidInputError
from tasks.params import STAGES

FORMS = (
    "privtrail trail NAME (a registered model), NAME@ALIAS, NAME/VERSION, VERSION (of promote.model_name) or "
    "RUN_ID"
)
# MLflow's own rule for a run id: what the store would refuse anyway, checked before a query is built from it
RUN_ID = re.compile(r"[A-Za-z0-9][\w-]{0,255}")
RUN_ID_LENGTH = 32  # MLflow names a run by uuid4().hex
SHORT = 12  # characters of a digest or commit shown to people; `--json` has them whole


@dataclass(frozen=True)
class ModelRef:
    """What the user typed, parsed. Exactly one form is set: `name` alone is a bare name (or a run id)."""

    name: str | None
    alias: str | None = None
    version: str | None = None


@dataclass(frozen=True)
class Resolution:
    """The version a bare registered-model name resolved to, and why that one."""

    version: str
    how: str  # e.g. "alias audited", "the latest version: no version has alias 'audited'"


def parse_model_ref(text: str) -> ModelRef:
    """Parse `name@alias`, `name/version`, a bare version number, or a bare name / run id (`models:/` allowed).

    Raises:
        InvalidInputError: empty, an empty name or alias, or a version that is not a number.
    """
    ref = text.strip().removeprefix("models:/")
    if "@" in ref:
        name, alias = ref.split("@", 1)
        if not name or not alias:
            raise InvalidInputError(
                f"{text!r}: give both sides of '@', e.g. privtrail-dp@audited; type {FORMS}"
            )
        return ModelRef(name=name, alias=alias)
    if "/" in ref:
        name, version = ref.rsplit("/", 1)
        if not name or not version.isdigit():
            raise InvalidInputError(
                f"{text!r}: the version after '/' is a number, e.g. {name or 'privtrail-dp'}/1; type {FORMS}"
            )
        return ModelRef(name=name, version=version)
    if not ref:
        raise InvalidInputError(f"MODEL is empty; type {FORMS}")
    if ref.isdigit() and len(ref) < RUN_ID_LENGTH:  # 32 hex digits are a run id, even when all are decimal
        return ModelRef(name=None, version=ref)
    return ModelRef(name=ref)


def choose_version(
    name: str, *, aliases: Mapping[str, str | int], latest: str | int | None, prefer: str
) -> Resolution:
    """The version a bare model name means: the one with alias `prefer` if any, else the latest.

    Args:
        name: the registered model's name (for the message).
        aliases: alias → version of that model.
        latest: its highest version number, None when it has no version.
        prefer: the alias promote sets (`promote.alias`, "audited").
    Raises:
        InvalidInputError: the model has no version at all.
    """
    if prefer in aliases:
        return Resolution(version=str(aliases[prefer]), how=f"alias {prefer}")
    if latest is None:
        raise InvalidInputError(
            f"{name}: registered but has no version yet; promote one first (make pipeline)"
        )
    return Resolution(version=str(latest), how=f"the latest version: no version has alias {prefer!r}")


def unknown_name(ref: str, *, registered: Sequence[str], store: str) -> str:
    """The message for a bare word that is neither a registered model nor a run in `store`."""
    names = ", ".join(sorted(registered)) or "none yet (make pipeline promotes one)"
    return f"{ref!r} is neither a registered model nor a run id in {store} (registered models: {names}); type {FORMS}"


def unknown_model(name: str, *, registered: Sequence[str], store: str) -> str:
    """The message for `name@alias` / `name/version` whose model is not registered in `store`."""
    names = ", ".join(sorted(registered)) or "none yet (make pipeline promotes one)"
    return f"no registered model {name!r} in {store} (registered models: {names}); check the name or MLFLOW_TRACKING_URI"


def unknown_alias(
    name: str, alias: str, *, aliases: Mapping[str, str | int], latest: str | int | None
) -> str:
    """The message for `name@alias` when the model exists but no version carries `alias`."""
    have = ", ".join(f"{a} (version {v})" for a, v in sorted(aliases.items())) or "none"
    instead = [f"{name}@{a}" for a in sorted(aliases)] + ([f"{name}/{latest}"] if latest is not None else [])
    return f"model {name!r} has no version with alias {alias!r} (its aliases: {have}); type " + (
        " or ".join(f"privtrail trail {i}" for i in instead[:3])
        if instead
        else "privtrail trail NAME once a version is promoted (make pipeline)"
    )


def unknown_version(name: str, version: str, *, latest: str | int | None) -> str:
    """The message for `name/version` when the model exists but not that version."""
    if latest is None:
        return f"model {name!r} has no versions yet; promote one first (make pipeline)"
    return (
        f"model {name!r} has no version {version} (versions 1 to {latest}); type privtrail trail {name}/{latest} "
        f"or privtrail trail {name}"
    )


# --- the readable trail ----------------------------------------------------------------------------------------


def _short(value: object) -> str:
    text = "" if value is None else str(value)
    return (text[:SHORT] + ("-dirty" if text.endswith("-dirty") else "")) if text else "not recorded"


def _number(value: object) -> str:
    try:
        return f"{float(str(value)):.4g}"
    except ValueError:
        return "not recorded"


def _privacy(record: Mapping[str, Any]) -> str:
    """ε and δ, and the unit they protect: one image unless the train run recorded another."""
    if record.get("epsilon") is None:
        return "privacy    ε, δ: not recorded (" + (
            "not tagged on this model version)"
            if record.get("model")
            else "a run alone: trail the model version promoted from it)"
        )
    unit = record.get("dp_unit") or {}
    per = f"per {unit['unit']}" if unit.get("unit") else "per image (unit not recorded; image is the default)"
    if unit.get("cap") not in (None, ""):
        per += f", each {unit['unit']}'s images capped at {unit['cap']}"
    accountant = f"; accountant {record['accountant']}" if record.get("accountant") else ""
    return (
        f"privacy    ε = {_number(record['epsilon'])}, δ = {_number(record.get('delta'))} {per}{accountant}"
    )


def _checks(checks: Mapping[str, Any]) -> str:
    if checks.get("ok") is None:
        return f"checked    not against a dvc.lock: {checks.get('dvc_lock', 'none here')}"
    if checks["ok"]:
        return f"checked    every stage hash and data md5 matches {checks['dvc_lock']}"
    bad = [s for s, ok in checks.get("stage_hashes", {}).items() if not ok]
    bad += [f"data {d}" for d, ok in checks.get("data_md5", {}).items() if not ok]
    return f"checked    DIFFERS from {checks['dvc_lock']}: {', '.join(bad) or 'no stage hash recorded'}"


def _stages(stages: Mapping[str, Mapping[str, Any]]) -> list[str]:
    if not stages:
        return ["stages     none recorded"]
    width = max(len(s) for s in stages)
    rows = [f"stages     {'':{width}}  {'run id':32}  {'params':{SHORT}}  {'input':{SHORT}}  output"]
    order = {s: i for i, s in enumerate(STAGES)}  # pipeline order; a stage it does not know goes last
    for stage, r in sorted(stages.items(), key=lambda kv: (order.get(kv[0], len(order)), kv[0])):
        rows.append(
            f"           {stage:{width}}  {r.get('run_id') or 'not recorded':32}  "
            f"{_short(r.get('params_digest')):{SHORT}}  {_short(r.get('input_digest')):{SHORT}}  "
            f"{_short(r.get('output_digest'))}"
        )
    return rows


def _reproduce(record: Mapping[str, Any], *, ref: str) -> list[str]:
    steps = [s for s in str(record.get("reproduce") or "").split(" && ") if s]
    if not steps:
        steps = ["not recorded: check out the code commit above and run make pipeline"]
    lines = [f"reproduce  {steps[0]}"] + [f"           {s}" for s in steps[1:]]
    return lines + [
        f"           privtrail trail {ref} --verify --json   # the full record, checked against dvc.lock"
    ]


def format_trail(record: Mapping[str, Any], *, ref: str) -> str:
    """The trail as a person reads it: which model, its verdict and guarantee, code and params, every stage's
    run and data digests, and how to reproduce it. `ref` is what reproduces this exact output (name/version)."""
    report = record.get("report") or {}
    lines = [str(record.get("resolved") or ref)]
    if record.get("model"):
        aliases = ", ".join(record.get("aliases") or []) or "none"
        lines.append(f"model      {record['model']} (aliases: {aliases}); {record.get('model_uri', '')}")
    else:
        lines.append(f"run        {record.get('run')}: not the source of any registered model version")
    verdict = str(record.get("verdict") or "not recorded").upper()
    gates = f" ({record['gates_passed']} gates passed)" if record.get("gates_passed") else ""
    lines += [
        f"verdict    {verdict}{gates}",
        _privacy(record),
        f"code       git {_short(record.get('code_commit'))}",
        f"params     sha256 {_short(record.get('params_digest'))} (over every stage's params digest)",
    ]
    data = record.get("data") or {}
    lines.append("data md5   " + ("  ".join(f"{k} {_short(v)}" for k, v in data.items()) or "not recorded"))
    lines += _stages(record.get("stages") or {})
    if report.get("path") or report.get("artifact"):
        lines.append(f"report     {report.get('path') or ''} {report.get('artifact') or ''}".rstrip())
    lines.append(_checks(record.get("checks") or {}))
    return "\n".join(lines + _reproduce(record, ref=ref))
