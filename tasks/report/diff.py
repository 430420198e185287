"""What changed since the last promoted model: ε, attack results, redaction and gates, direction-aware.

`diff_compliance` compares two compliance.json dicts (tasks/report/compliance.py) and returns the
`since_promoted` section:

```
{"against": "privtrail-dp@audited (version 3, git abc123)", "available": bool,
 "reason": None | "why there is no diff (nothing promoted yet, artifact missing)",
 "rows": [{"section": "privacy guarantee" | "attacks" | "redaction" | "gates", "what": "ε (recomputed)",
           "key": "dp.epsilon_recomputed", "before": 2.9 | "passed" | None, "after": ..., "change": 0.1 | None,
           "worse": True | False | None}],
 "gates_changed": [{"name", "before", "after"}]}   # gate status, None where the gate is on one side only
```
`worse` is None when either side is missing; numbers that are NaN (not measured) read as missing. A gate whose
threshold changed gets a row `gates.<name>.threshold`, worse when loosened (a larger maximum, a smaller
minimum); its state change then reads worse too, even failed → passed: a lowered bar is not an improvement.
A gate's state change is worse unless it now passes: newly waived is a policy decision and newly not assessed
is lost evidence, whatever it was before (`gate_worse`). The verdict's change to "pass" is worse when a
threshold was loosened or a gate newly waived: either may be what made it pass. The privacy budget per
dataset (`dp.ledger_max_total_epsilon`, train.budget.max_total_epsilon) reads worse when raised; against a
report without it, a budget policy change is compared with the packaged default.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping
from typing import Any, Literal

from tasks.params import BUDGET_POLICY, gate_op
from tasks.report.definitions import define

Direction = Literal["higher_worse", "higher_better"]

# compliance.json sections holding the anonymizer's redaction metrics, and the stage that measured them
REDACTION_SECTIONS = {"anonymization": "anonymize", "quality": "check_quality"}
CATEGORY_WORDS = {"face": "face", "plate": "licence-plate", "text_pii": "personal-text"}
# a gate's states (`gate_worse`: any change to a state other than passed is worse); one side only: no direction
GATE_STATES = frozenset({"passed", "waived", "not_assessed", "failed"})
VERDICT_RANK = {"pass": 0, "fail": 1}
BUDGET_KEY = "dp.ledger_max_total_epsilon"  # compliance.json: train.budget.max_total_epsilon, from the ledger
# attacks.<attack>.dp fields compared; "lira" is the worse of lira_online / lira_offline, already listed
ATTACK_FIELDS = {"auc": "AUC", "tpr_at_1pct_fpr": "TPR at 1 % FPR"}
DERIVED_ATTACKS = frozenset({"lira"})


def diff_compliance(
    current: Mapping[str, Any], previous: Mapping[str, Any] | None, *, previous_ref: str
) -> dict[str, Any]:
    """Compare this run's compliance.json with the one of the last promoted model version.

    Args:
        current: this run's compliance.json.
        previous: the promoted version's compliance.json; None when there is none to compare with.
        previous_ref: what `previous` is (e.g. "privtrail-dp@audited (version 3, git abc123)"); when
            `previous` is None, the reason there is none (it becomes `reason`).
    Returns:
        The JSON-ready `since_promoted` dict described in the module docstring.
    """
    if previous is None:
        return {
            "against": previous_ref,
            "available": False,
            "reason": previous_ref,
            "rows": [],
            "gates_changed": [],
        }
    rows = [
        _number_row(section, what, key, direction, current, previous)
        for section, what, key, direction in _numbers(current, previous)
    ]
    rows = [r for r in rows if r["before"] is not None or r["after"] is not None]
    rows += [
        r for r in (_budget_row(current, previous),) if r["before"] is not None or r["after"] is not None
    ]
    changed = _gates_changed(current, previous)
    thresholds = _threshold_rows(current, previous)
    loosened = {r["key"].split(".")[1] for r in thresholds if r["worse"]}
    waived = any(g["after"] == "waived" and g["before"] is not None for g in changed)
    verdicts = previous.get("verdict"), current.get("verdict")
    rows += [
        _status_row(
            "gates",
            "verdict",
            "verdict",
            *verdicts,
            rank=VERDICT_RANK,
            loosened=verdicts[1] == "pass" and bool(loosened or waived),
        )
    ]
    rows += [_gate_row(g, loosened=g["name"] in loosened) for g in changed]
    rows += thresholds
    return {
        "against": previous_ref,
        "available": True,
        "reason": None,
        "rows": rows,
        "gates_changed": changed,
    }


def _numbers(
    current: Mapping[str, Any], previous: Mapping[str, Any]
) -> Iterator[tuple[str, str, str, Direction]]:
    """(section, label, dotted key, direction) of every number compared, in reading order."""
    yield (
        "privacy guarantee",
        "ε (checked: the larger of Opacus and PLD)",
        "dp.epsilon_checked",
        "higher_worse",
    )
    yield "privacy guarantee", "ε (recomputed)", "dp.epsilon_recomputed", "higher_worse"
    yield "privacy guarantee", "δ", "dp.delta", "higher_worse"
    yield (
        "privacy guarantee",
        "ε composed over the dataset (ledger)",
        "dp.ledger_total_epsilon",
        "higher_worse",
    )
    yield "attacks", "empirical ε lower bound (audit)", "dp.empirical_epsilon_lower_bound", "higher_worse"
    attacks = sorted(
        (set(_section(current, "attacks")) | set(_section(previous, "attacks"))) - DERIVED_ATTACKS
    )
    for attack in attacks:
        for field, label in ATTACK_FIELDS.items():
            key = f"attacks.{attack}.dp.{field}"
            if _get(current, key) is not None or _get(previous, key) is not None:
                yield "attacks", f"{attack.replace('_', ' ')}: {label} (DP model)", key, "higher_worse"
    for section, stage in REDACTION_SECTIONS.items():
        names = set(_section(current, section)) | set(_section(previous, section))
        for name in sorted(names):
            found = _redaction(name)
            if found is not None:
                yield "redaction", f"{found[0]} ({stage})", f"{section}.{name}", found[1]


def _redaction(name: str) -> tuple[str, Direction] | None:
    """Label and direction of a redaction metric name, None for the metrics the diff leaves out.

    Recalls: `<cat>_redaction_recall` (check_quality), `gt_<cat>_recall` (anonymize); residual faces:
    `*residual_face*_rate`; text an OCR still reads after anonymization: `<cat>_readable_anon`.
    """
    for cat, word in CATEGORY_WORDS.items():
        if name in (f"{cat}_redaction_recall", f"gt_{cat}_recall"):
            return f"{word} redaction recall", "higher_better"
        if name == f"{cat}_readable_anon":
            return f"{word} still readable after anonymization", "higher_worse"
    if "residual_face" in name and name.endswith("_rate"):
        what = (
            "ground-truth faces still detected"
            if "matched" in name or name.startswith("gt_")
            else "face detections left per image"
        )
        return f"residual faces: {what}", "higher_worse"
    return None


def _number_row(
    section: str,
    what: str,
    key: str,
    direction: Direction,
    current: Mapping[str, Any],
    previous: Mapping[str, Any],
) -> dict[str, Any]:
    before, after = _number(_get(previous, key)), _number(_get(current, key))
    change = None if before is None or after is None else after - before
    worse = None if change is None else (change > 0 if direction == "higher_worse" else change < 0)
    shared = define(key.replace(".", "/"))  # the report's one table of labels, where it has this path
    return {
        "section": section,
        "what": shared.label if shared else what,
        "key": key,
        "before": before,
        "after": after,
        "change": change,
        "worse": worse,
    }


def _budget_row(current: Mapping[str, Any], previous: Mapping[str, Any]) -> dict[str, Any]:
    """The privacy budget per dataset, worse when raised; a promoted report without it is compared, when this
    run raised the budget above the policy, with the packaged default (like a gate new since promotion)."""
    row = _number_row(
        "privacy guarantee",
        "ε budget per dataset (train.budget.max_total_epsilon)",
        BUDGET_KEY,
        "higher_worse",
        current,
        previous,
    )
    change = next((ch for ch in current.get("policy_changes") or () if ch.get("name") == BUDGET_POLICY), None)
    default = _number(change.get("default")) if change else None
    if row["before"] is None and row["after"] is not None and default is not None:
        row |= {"before": default, "change": row["after"] - default, "worse": row["after"] > default}
    return row


def gate_worse(before: str | None, after: str | None) -> bool | None:
    """A gate's state change: worse unless it now passes (newly waived: a policy decision; newly not assessed:
    lost evidence; newly failed); None when either side is missing or unknown."""
    if before not in GATE_STATES or after not in GATE_STATES:
        return None
    return before != after and after != "passed"


def _gate_row(g: Mapping[str, Any], *, loosened: bool) -> dict[str, Any]:
    """A gate's state change (`gate_worse`); worse too when its threshold was loosened: a gate that now passes
    because its bar was lowered did not improve."""
    worse = gate_worse(g["before"], g["after"])
    return {
        "section": "gates",
        "what": f"gate {g['name']}",
        "key": f"gates.{g['name']}",
        "before": g["before"],
        "after": g["after"],
        "change": None,
        "worse": True if loosened else worse,
    }


def _status_row(
    section: str,
    what: str,
    key: str,
    before: Any,
    after: Any,
    *,
    rank: Mapping[str, int],
    loosened: bool = False,
) -> dict[str, Any]:
    """A state change; worse when the state ranks worse, or when `loosened` (the verdict passes after a
    threshold was loosened or a gate newly waived: the lowered bar may be what made it pass)."""
    known = before in rank and after in rank
    worse = True if loosened else rank[after] > rank[before] if known else None
    return {
        "section": section,
        "what": what,
        "key": key,
        "before": before,
        "after": after,
        "change": None,
        "worse": worse,
    }


def _threshold_rows(current: Mapping[str, Any], previous: Mapping[str, Any]) -> list[dict[str, Any]]:
    """One row per gate whose threshold differs from the promoted report's; worse when it is looser (a larger
    maximum, a smaller minimum). A gate the promoted report lacks is compared with the packaged policy
    (its `default`) when it is loosened. Sorted by gate name."""
    then = {str(g["name"]): g for g in previous.get("gates", [])}
    rows = []
    for g in sorted(current.get("gates", []), key=lambda g: str(g["name"])):
        name, after = str(g["name"]), _number(g.get("threshold"))
        before = _number(then.get(name, {}).get("threshold"))
        if before is None and g.get("loosened"):
            before = _number(g.get("default"))
        if after is None or before is None or after == before:
            continue
        op = str(g.get("op") or gate_op(name))
        rows.append(
            {
                "section": "gates",
                "what": f"threshold of {name} ({'maximum' if op == '<=' else 'minimum'})",
                "key": f"gates.{name}.threshold",
                "before": before,
                "after": after,
                "change": after - before,
                "worse": _looser(op, before, after),
            }
        )
    return rows


def _looser(op: str, before: float, after: float) -> bool:
    """A larger maximum or a smaller minimum (`tasks.params.gate_loosened`, for any two thresholds)."""
    return after > before if op == "<=" else after < before


def _gates_changed(current: Mapping[str, Any], previous: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Gates whose status differs, including gates on one side only (the other side None); sorted by name."""
    now = {str(g["name"]): _status(g) for g in current.get("gates", [])}
    then = {str(g["name"]): _status(g) for g in previous.get("gates", [])}
    return [
        {"name": n, "before": then.get(n), "after": now.get(n)}
        for n in sorted(now.keys() | then.keys())
        if then.get(n) != now.get(n)
    ]


def _status(gate: Mapping[str, Any]) -> str:
    # gates written before `status` existed carry only `passed`
    return str(gate.get("status") or ("passed" if gate.get("passed") else "failed"))


def _section(doc: Mapping[str, Any], name: str) -> Mapping[str, Any]:
    value = doc.get(name)
    return value if isinstance(value, Mapping) else {}


def _get(doc: Mapping[str, Any], key: str) -> Any:
    """`doc["a"]["b"]` for key "a.b"; None where any part is missing (no compared field name holds a dot)."""
    node: Any = doc
    for part in key.split("."):
        if not isinstance(node, Mapping) or part not in node:
            return None
        node = node[part]
    return node


def _number(value: Any) -> float | None:
    """A finite float, else None (missing, NaN: not measured, or not a number)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if math.isfinite(value) else None
