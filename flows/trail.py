"""`privtrail trail`: a model version's audit trail from MLflow's registry and runs, checked against dvc.lock.

What the user typed is parsed and its version chosen in `tasks.report.trail` (pure); this module asks the
registry and the runs, and assembles the record `privtrail trail --json` prints.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

from flows import io, tracking
from tasks.errors import InvalidInputError
from tasks.params import Params
from tasks.redact import redact_uri
from tasks.report.inventory import DATASETS
from tasks.report.trail import (
    RUN_ID,
    ModelRef,
    choose_version,
    parse_model_ref,
    unknown_alias,
    unknown_model,
    unknown_name,
    unknown_version,
)

RUN_TAGS = ("git_sha", "params_digest", "dvc_stage_hash", "input_digest", "output_digest")
ATTACK_FIELDS = (
    "auc",
    "tpr_at_0_1pct_fpr",
    "tpr_at_1pct_fpr",
    "empirical_epsilon_lower_bound",
    "empirical_epsilon_margin",
    "psnr",
)


@dataclass(frozen=True)
class Target:
    """What MODEL resolved to: a model version, or a run that is no model's source."""

    version: dict[str, Any] | None  # tracking.model_version's record
    run_id: str | None  # set when `version` is None
    resolved: str  # the first line of the trail: what MODEL resolved to, and why that one
    ref: str  # name/version or the run id: what names exactly this trail again


def resolve(text: str, *, params: Params) -> Target:
    """Resolve MODEL: `name@alias`, `name/version`, a version of promote.model_name, a bare registered name (its
    promote.alias version, else its latest), or a run id (the version it is the source of, else the run alone).

    Raises:
        InvalidInputError: the model, alias, version or run is not in the store (the message says what is).
    """
    ref = parse_model_ref(text)
    if ref.name is None:  # a bare number
        ref = ModelRef(name=params.promote.model_name, version=ref.version)
    assert ref.name is not None
    if ref.alias is not None or ref.version is not None:
        return _explicit(ref)
    reg = tracking.registered_model(ref.name)
    if reg is None:
        return _run(ref.name)
    chosen = choose_version(
        ref.name, aliases=reg["aliases"], latest=reg["latest"], prefer=params.promote.alias
    )
    mv = tracking.model_version(f"{ref.name}/{chosen.version}")
    return Target(
        mv, None, f"{ref.name}: version {chosen.version} ({chosen.how})", f"{ref.name}/{chosen.version}"
    )


def _explicit(ref: ModelRef) -> Target:
    assert ref.name is not None
    reg = tracking.registered_model(ref.name)
    if reg is None:
        raise InvalidInputError(
            unknown_model(
                ref.name, registered=tracking.registered_model_names(), store=tracking.tracking_uri()
            )
        )
    if ref.alias is not None:
        if ref.alias not in reg["aliases"]:
            raise InvalidInputError(
                unknown_alias(ref.name, ref.alias, aliases=reg["aliases"], latest=reg["latest"])
            )
        aliased = tracking.model_version(f"{ref.name}@{ref.alias}")
        return Target(
            aliased,
            None,
            f"{ref.name}@{ref.alias}: version {aliased['version']}",
            f"{ref.name}/{aliased['version']}",
        )
    mv = tracking.find_model_version(f"{ref.name}/{ref.version}")
    if mv is None:
        raise InvalidInputError(unknown_version(ref.name, str(ref.version), latest=reg["latest"]))
    return Target(mv, None, f"{ref.name}: version {mv['version']}", f"{ref.name}/{mv['version']}")


def _run(word: str) -> Target:
    """A word that names no registered model: a run id, the source of a model version or a run alone."""
    unknown = InvalidInputError(
        unknown_name(word, registered=tracking.registered_model_names(), store=tracking.tracking_uri())
    )
    if not RUN_ID.fullmatch(word):
        raise unknown
    versions = tracking.model_versions_of_run(word)
    if versions:
        mv = versions[0]
        return Target(
            mv,
            None,
            f"run {word}: the source run of {mv['name']} version {mv['version']}",
            f"{mv['name']}/{mv['version']}",
        )
    info = tracking.find_run(word)
    if info is None:
        raise unknown
    stage = info["tags"].get("stage", info["name"])
    return Target(None, word, f"run {word} (stage {stage}): no registered model version comes from it", word)


def _stage_runs(run_ids: dict[str, str]) -> dict[str, dict[str, Any]]:
    return {stage: tracking.run_info(run_id) for stage, run_id in sorted(run_ids.items())}


def _dp_unit(runs: dict[str, dict[str, Any]]) -> dict[str, Any] | None:
    """The unit ε protects and its cap, as the train run logged them (its params, its train/unit_cap metric)."""
    train = runs.get("train")
    if train is None or not train["params"].get("train.dp.unit"):
        return None
    cap = train["metrics"].get("train/unit_cap")
    return {"unit": train["params"]["train.dp.unit"], "cap": None if cap is None else int(cap)}


def _checks(out: dict[str, Any], params: Params) -> dict[str, Any]:
    """The chain against this workspace's dvc.lock: each stage's lock-entry hash and each dataset's md5."""
    lock = tracking.dvc_lock_entries()
    if not lock:
        return {"dvc_lock": "no dvc.lock in this workspace", "ok": None}
    paths = params.paths.model_dump()
    hashes = {
        s: r["dvc_stage_hash"] == tracking.stage_hash(lock[s])
        for s, r in out["stages"].items()
        if r.get("dvc_stage_hash") and s in lock
    }
    data = {}
    for role, md5 in out["data"].items():
        key, stage = DATASETS[role][:2]
        outs = {o["path"]: o.get("md5") for o in lock.get(stage, {}).get("outs", [])}
        data[role] = outs.get(paths[key]) == md5
    return {
        "dvc_lock": str(io.path("dvc.lock")),
        "stage_hashes": hashes,
        "data_md5": data,
        "ok": bool(hashes) and all(hashes.values()) and all(data.values()),
    }


def _head(target: Target) -> tuple[dict[str, Any], dict[str, str], dict[str, str]]:
    """The record's head, the tags it reads, and stage → run id."""
    mv = target.version
    if mv is None:
        info = tracking.run_info(str(target.run_id))
        return {"run": target.run_id}, {}, {info["tags"].get("stage", info["name"]): str(target.run_id)}
    tags = mv["tags"]
    run_ids = {k.split(".", 1)[1]: v for k, v in tags.items() if k.startswith("run_id.")}
    run_ids |= {"report": tags["report_run_id"]} if tags.get("report_run_id") else {}
    reg = tracking.registered_model(mv["name"]) or {"aliases": {}}
    head = {
        "model": f"{mv['name']} v{mv['version']}",
        "model_uri": f"models:/{mv['name']}/{mv['version']}",
        "source_run_id": mv["run_id"],
        "source": redact_uri(mv["source"]),
        "aliases": sorted(a for a, v in reg["aliases"].items() if v == str(mv["version"])),
    }
    return head, tags, run_ids


def record(target: Target, *, params: Params) -> dict[str, Any]:
    """The full trail record (`privtrail trail --json`)."""
    out, tags, run_ids = _head(target)
    out |= {
        k: tags.get(k)
        for k in ("verdict", "epsilon", "delta", "accountant", "gates_passed", "dvc_lock_sha256", "reproduce")
    }
    out["resolved"], out["code_commit"] = target.resolved, tags.get("git_sha")
    out["report"] = {
        "path": tags.get("report_path"),
        "artifact": tags.get("report_artifact"),
        "run_id": tags.get("report_run_id"),
        "audit_run_id": tags.get("audit_run_id"),
    }
    out["data"] = {
        k.split(".")[1]: v for k, v in tags.items() if k.startswith("data.") and k.endswith(".md5")
    }
    runs = _stage_runs(run_ids)
    out["stages"] = {
        s: {"run_id": i["run_id"], "run_name": i["name"], **{k: i["tags"].get(k) for k in RUN_TAGS}}
        for s, i in runs.items()
    }
    out["attacks"] = (
        {k: v for k, v in sorted(runs["audit"]["metrics"].items()) if k.endswith(ATTACK_FIELDS)}
        if "audit" in runs
        else {}
    )
    out["dp_unit"] = _dp_unit(runs)
    digests = sorted(f"{s}:{r['params_digest']}" for s, r in out["stages"].items() if r.get("params_digest"))
    out["params_digest"] = hashlib.sha256("\n".join(digests).encode()).hexdigest() if digests else None
    out["checks"] = _checks(out, params)
    return out
