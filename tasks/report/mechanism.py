"""The report's sentences about the mechanisms of one run, made from that run's params and records.

The anonymize stage records an `AnonymizationSetup` (`tasks/anonymize/setup.py`: targets, detectors,
verification, methods, preset, device) in `reports/runs/anonymize.json`; every sentence that describes the
anonymizer is worded from that record, never fixed prose, so `verify: off` or `targets: [face]` change what it
says. The audit's conclusion states its power (the canary audit's ceiling).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from tasks.anonymize.setup import AnonymizationSetup

# category (anonymize.targets) → how the report names what was searched for
CATEGORY_WORDS: dict[str, str] = {
    "face": "faces",
    "plate": "licence plates",
    "text": "personal text",
    "body": "people's bodies",
}
ALL_CATEGORIES: tuple[str, ...] = ("face", "plate", "text", "body")
VERIFY_WORDS: dict[str, str] = {
    "regions": "the detectors ran again on each written image, around every changed region",
    "whole": "the detectors ran again on each whole written image",
}


def _join(words: Sequence[str]) -> str:
    return words[0] if len(words) == 1 else ", ".join(words[:-1]) + " and " + words[-1]


def searched_words(targets: Sequence[str], *, text_policy: str = "pii") -> str:
    """The searched categories in words: "faces, licence plates and personal text" ("all text" under policy all)."""
    words = CATEGORY_WORDS | ({"text": "all text"} if text_policy == "all" else {})
    return _join([words.get(t, t) for t in targets]) if targets else "nothing"


def mechanism_sentences(setup: AnonymizationSetup | None) -> dict[str, str]:
    """The report's sentences about the anonymizer, from the run's record.

    Returns keys: searched (what was searched for, and what was not), detectors, methods, verification,
    device (with the preset, if any). With no record: each says the settings were not recorded.
    """
    if setup is None:
        unknown = "The anonymization settings of this run were not recorded, so this report cannot say them."
        return dict.fromkeys(("searched", "detectors", "methods", "verification", "device"), unknown)
    skipped = [t for t in ALL_CATEGORIES if t not in setup.targets]
    searched = (
        f"Every image was searched for {searched_words(setup.targets, text_policy=setup.text_policy)} "
        "(anonymize.targets)"
        + (f"; {searched_words(skipped)} were not searched for and stay as they are" if skipped else "")
        + "."
    )
    detectors = "; ".join(
        f"{CATEGORY_WORDS.get(c, c)}: {', '.join(d) or 'no detector enabled'}"
        for c, d in setup.detectors.items()
    )
    methods = "; ".join(f"{CATEGORY_WORDS.get(c, c)}: {m}" for c, m in setup.methods.items())
    if setup.verify in VERIFY_WORDS:
        verification = (
            f"Verification ({setup.verify}): {VERIFY_WORDS[setup.verify]}; an image in which a "
            "sensitive detection survived was quarantined, never written."
        )
    else:
        verification = (
            "Verification is off (anonymize.verify: off): the written images were not checked again "
            "by the detectors, so a detection that survived obfuscation is not caught by anonymization."
        )
    device = (
        f"The detectors ran on {setup.device}"
        + (f", detector preset {setup.preset!r}" if setup.preset else "")
        + "."
    )
    return {
        "searched": searched,
        "detectors": f"Detectors: {detectors}." if detectors else "No detector ran.",
        "methods": f"Obfuscation: {methods}." if methods else "",
        "verification": verification,
        "device": device,
    }


def _num(value: float) -> str:
    return f"{value:.3g}"


MARGIN_GATE = "min_empirical_epsilon_margin"


def audit_conclusion(
    *,
    lower_bound: float | None,
    claimed: float | None,
    ceiling: float | None,
    ceiling_ratio: float | None = None,
    margin_gate: Mapping[str, Any] | None = None,
) -> str | None:
    """The audit's conclusion about the claimed (checked) ε, with its power; None without a bound.

    Args:
        lower_bound, claimed: the empirical ε lower bound and the checked ε.
        ceiling, ceiling_ratio: the canary audit's ceiling and its ratio to the claimed ε.
        margin_gate: compliance.json's gate `min_empirical_epsilon_margin` (the same claimed ε minus the same
            bound): where its threshold, not the claim, decides it, the sentence says what the gate decided.
    """
    found = _claim_conclusion(
        lower_bound=lower_bound, claimed=claimed, ceiling=ceiling, ceiling_ratio=ceiling_ratio
    )
    if found is None or lower_bound is None or claimed is None:
        return found
    return found + _margin_clause(margin_gate, violated=lower_bound > claimed)


def _margin_clause(gate: Mapping[str, Any] | None, *, violated: bool) -> str:
    """What the margin gate decided where its threshold differs from the claim's own test (0); empty otherwise."""
    if not gate or gate.get("value") is None:
        return ""
    name, status = f"gates.{MARGIN_GATE}", gate.get("status")
    if not violated and status == "failed":
        return (
            f" The gate {name} fails nonetheless: the claimed ε exceeds the bound by {_num(gate['value'])}, "
            f"less than the {_num(gate['threshold'])} it requires."
        )
    if violated and status == "passed":
        return (
            f" The gate {name} passes only because its threshold {_num(gate['threshold'])} tolerates a bound "
            f"above the claim (margin {_num(gate['value'])})."
        )
    if violated and status == "waived":
        return f" The gate {name} is waived: {gate.get('reason') or 'no reason recorded'}."
    return ""


def _claim_conclusion(
    *,
    lower_bound: float | None,
    claimed: float | None,
    ceiling: float | None,
    ceiling_ratio: float | None = None,
) -> str | None:
    """The audit's conclusion with its power ("could have detected ε above X", X its ceiling); None without a bound.

    It never says the implementation behaves as claimed: an empirical bound can refute a claim, not prove it,
    and an audit whose ceiling is at or below the claimed ε could not have refuted it at all.
    """
    if lower_bound is None or claimed is None:
        return None
    found = f"The attacks prove a leak of at least ε = {_num(lower_bound)}"
    if lower_bound > claimed:
        return f"{found}, above the claimed ε = {_num(claimed)}: the DP implementation does not keep its guarantee."
    if ceiling is None:
        return (
            f"{found}, below the claimed ε = {_num(claimed)}; the audit's power (its ceiling) was not recorded, "
            "so this shows no more than that no violation was found."
        )
    if ceiling <= claimed:
        return (
            f"{found}, below the claimed ε = {_num(claimed)}, but this audit can certify at most ε = "
            f"{_num(ceiling)} (its ceiling, below the claim): it could not have detected a violation of the "
            "claim, so it neither confirms nor refutes it."
        )
    ratio = f", {_num(ceiling_ratio)}× the claim" if ceiling_ratio is not None else ""
    return (
        f"{found}, below the claimed ε = {_num(claimed)}: no violation was detected. Power: this audit could "
        f"have detected ε above the claim only as far as ε = {_num(ceiling)} (its ceiling{ratio}: what it "
        "certifies when every guess is right); a violation it cannot measure that strongly goes unseen."
    )
