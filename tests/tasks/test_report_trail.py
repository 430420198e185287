"""tasks.report.trail: what a typed MODEL means, which version a bare name resolves to, the readable trail."""

from __future__ import annotations

from typing import Any

import pytest

from tasks.errors import InvalidInputError
from tasks.report.trail import (
    ModelRef,
    choose_version,
    format_trail,
    parse_model_ref,
    unknown_alias,
    unknown_model,
    unknown_name,
    unknown_version,
)

RUN = {s: f"{i:032x}" for i, s in enumerate(("anonymize", "audit", "ingest", "report", "train"), start=1)}


@pytest.mark.parametrize(
    ("text", "ref"),
    [
        ("privtrail-dp@audited", ModelRef(name="privtrail-dp", alias="audited")),
        ("models:/privtrail-dp@audited", ModelRef(name="privtrail-dp", alias="audited")),
        ("privtrail-dp/3", ModelRef(name="privtrail-dp", version="3")),
        ("models:/privtrail-dp/3", ModelRef(name="privtrail-dp", version="3")),
        ("3", ModelRef(name=None, version="3")),
        ("privtrail-dp", ModelRef(name="privtrail-dp")),
        (RUN["train"], ModelRef(name=RUN["train"])),
    ],
)
def test_parse_model_ref_forms(text: str, ref: ModelRef) -> None:
    assert parse_model_ref(text) == ref


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("privtrail-dp@", "give both sides of '@', e.g. privtrail-dp@audited"),
        ("@audited", "give both sides of '@'"),
        ("privtrail-dp/latest", "the version after '/' is a number, e.g. privtrail-dp/1"),
        ("/3", "the version after '/' is a number"),
        ("  ", "MODEL is empty; type privtrail trail NAME"),
    ],
)
def test_parse_model_ref_says_what_to_type(text: str, says: str) -> None:
    with pytest.raises(InvalidInputError, match="privtrail trail NAME") as err:
        parse_model_ref(text)
    assert says in str(err.value) and "\n" not in str(err.value)


def test_a_bare_name_means_its_audited_version_first() -> None:
    chosen = choose_version("m", aliases={"candidate": "5", "audited": "3"}, latest="5", prefer="audited")
    assert (chosen.version, chosen.how) == ("3", "alias audited")


def test_a_bare_name_without_the_alias_means_its_latest_version() -> None:
    chosen = choose_version("m", aliases={"candidate": 4}, latest=5, prefer="audited")
    assert (chosen.version, chosen.how) == ("5", "the latest version: no version has alias 'audited'")


def test_a_bare_name_without_versions_is_refused() -> None:
    with pytest.raises(InvalidInputError, match="m: registered but has no version yet; promote one first"):
        choose_version("m", aliases={}, latest=None, prefer="audited")


def test_lookup_messages_name_the_mistake_and_the_command_to_type() -> None:
    assert unknown_alias("m", "nope", aliases={"audited": "2"}, latest="3") == (
        "model 'm' has no version with alias 'nope' (its aliases: audited (version 2)); "
        "type privtrail trail m@audited or privtrail trail m/3"
    )
    assert unknown_version("m", "9", latest="3") == (
        "model 'm' has no version 9 (versions 1 to 3); type privtrail trail m/3 or privtrail trail m"
    )
    assert "registered models: a, b" in unknown_model("c", registered=["b", "a"], store="sqlite:///x.db")
    none_yet = unknown_name("x", registered=[], store="sqlite:///x.db")
    assert none_yet.startswith("'x' is neither a registered model nor a run id in sqlite:///x.db")
    assert "none yet (make pipeline promotes one)" in none_yet and "privtrail trail NAME" in none_yet


def _record(**over: Any) -> dict[str, Any]:
    stages = {
        s: {
            "run_id": r,
            "run_name": s,
            "git_sha": "c0ffee" * 7,
            "params_digest": f"{s[0]}" * 64,
            "input_digest": "1" * 64,
            "output_digest": "2" * 64,
            "dvc_stage_hash": "3" * 64,
        }
        for s, r in RUN.items()
    }
    return {
        "model": "privtrail-dp v3",
        "model_uri": "models:/privtrail-dp/3",
        "aliases": ["audited"],
        "resolved": "privtrail-dp: version 3 (alias audited)",
        "verdict": "pass",
        "gates_passed": "40/41",
        "epsilon": "2.9512345",
        "delta": "1e-05",
        "accountant": "prv",
        "code_commit": "ab" * 20,
        "params_digest": "9" * 64,
        "data": {"raw": "d" * 32, "anonymized": "e" * 32},
        "stages": stages,
        "dp_unit": None,
        "report": {"path": "/w/reports/compliance.html", "artifact": "runs:/x/compliance/compliance.html"},
        "reproduce": "git clone https://example.org/p.git privtrail && cd privtrail && git checkout abab && "
        "make pipeline",
        "checks": {
            "dvc_lock": "/w/dvc.lock",
            "stage_hashes": {"train": True},
            "data_md5": {"raw": True},
            "ok": True,
        },
    } | over


def test_readable_trail_says_what_resolved_first_and_every_part() -> None:
    lines = format_trail(_record(), ref="privtrail-dp/3").splitlines()
    assert lines[0] == "privtrail-dp: version 3 (alias audited)"
    assert lines[1] == "model      privtrail-dp v3 (aliases: audited); models:/privtrail-dp/3"
    assert lines[2] == "verdict    PASS (40/41 gates passed)"
    assert lines[3] == (
        "privacy    ε = 2.951, δ = 1e-05 per image (unit not recorded; image is the default); accountant prv"
    )
    assert lines[4] == "code       git abababababab" and lines[5].startswith(
        "params     sha256 999999999999 "
    )
    assert lines[6] == f"data md5   raw {'d' * 12}  anonymized {'e' * 12}"
    rows = [line.split() for line in lines if line.startswith(" " * 11) and line.split()[0] in RUN]
    assert [r[0] for r in rows] == ["ingest", "anonymize", "train", "audit", "report"]  # in pipeline order
    # each stage: its run id whole, params / input / output digests short
    for stage, run_id, *digests in rows:
        assert (run_id, digests) == (RUN[stage], [stage[0] * 12, "1" * 12, "2" * 12])
    assert "checked    every stage hash and data md5 matches /w/dvc.lock" in lines
    at = lines.index("reproduce  git clone https://example.org/p.git privtrail")
    assert [x.strip() for x in lines[at + 1 : at + 4]] == [
        "cd privtrail",
        "git checkout abab",
        "make pipeline",
    ]
    assert lines[-1].strip().startswith("privtrail trail privtrail-dp/3 --verify --json")
    assert len(lines) < 25  # a short trail, not the 200-line record


def test_readable_trail_reads_the_dp_unit_from_the_record() -> None:
    text = format_trail(_record(dp_unit={"unit": "person", "cap": 4}), ref="privtrail-dp/3")
    assert "ε = 2.951, δ = 1e-05 per person, each person's images capped at 4; accountant prv" in text
    assert "per image" not in text


def test_readable_trail_names_what_differs_from_dvc_lock_and_what_is_missing() -> None:
    checks = {
        "dvc_lock": "/w/dvc.lock",
        "stage_hashes": {"train": False, "audit": True},
        "data_md5": {"raw": True, "anonymized": False},
        "ok": False,
    }
    text = format_trail(
        _record(checks=checks, code_commit="ab" * 20 + "-dirty", reproduce=None, epsilon=None),
        ref="privtrail-dp/3",
    )
    assert "checked    DIFFERS from /w/dvc.lock: train, data anonymized" in text
    assert "code       git abababababab-dirty" in text
    assert "privacy    ε, δ: not recorded (not tagged on this model version)" in text
    assert "reproduce  not recorded: check out the code commit above and run make pipeline" in text


def test_readable_trail_of_a_run_alone() -> None:
    record = {
        "run": RUN["train"],
        "resolved": f"run {RUN['train']} (stage train): no registered model version comes from it",
        "stages": {},
        "checks": {"ok": None, "dvc_lock": "none"},
    }
    lines = format_trail(record, ref=RUN["train"]).splitlines()
    assert lines[0] == record["resolved"]
    assert lines[1] == f"run        {RUN['train']}: not the source of any registered model version"
    assert "verdict    NOT RECORDED" in lines and "stages     none recorded" in lines
