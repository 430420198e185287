"""The `privtrail` console script."""

from __future__ import annotations

import argparse
import json
import sys
from typing import get_args

from tasks.errors import PipelineError
from tasks.params import Method


def _lineage(_: argparse.Namespace) -> int:
    from flows import io, tracking

    tagged = tracking.sync_lineage(reports_dir=io.load_params().paths.reports)
    print(f"tagged {len(tagged)} stage runs with their dvc.lock hashes: {', '.join(tagged)}")
    return 0


def _trail(args: argparse.Namespace) -> int:
    from flows import tracking

    ref = args.model
    if "@" in ref or "/" in ref:
        mv = tracking.model_version(ref)
        out = {"model": f"{mv['name']} v{mv['version']}", "source": mv["source"], **mv["tags"]}
        run_ids = {k.split(".", 1)[1]: v for k, v in mv["tags"].items() if k.startswith("run_id.")}
    else:
        out, run_ids = {"run": ref}, {"train": ref}
    out["stages"] = {}
    for stage, run_id in sorted(run_ids.items()):
        info = tracking.run_info(run_id)
        out["stages"][stage] = {"run_id": run_id, **{k: info["tags"].get(k) for k in (
            "git_sha", "dvc_stage_hash", "params_digest", "input_digest", "output_digest")}}
        if stage == "audit":
            out["attacks"] = {k: v for k, v in info["metrics"].items() if k.startswith("audit/")}
    print(json.dumps(out, indent=2, sort_keys=True))
    return 0


def _anonymize(args: argparse.Namespace) -> int:
    from flows.anonymize import anonymize_folder
    from tasks.errors import InvalidInputError
    from tasks.params import AnonymizeParams, Category, TextDetectorParams

    targets = tuple(t.strip() for t in args.targets.split(",") if t.strip())
    bad = sorted(set(targets) - set(get_args(Category)))
    if bad or not targets:
        raise InvalidInputError(f"--targets: unknown {bad or 'none given'}; choose among {', '.join(get_args(Category))}")
    if args.jobs < 1:
        raise InvalidInputError(f"--jobs: must be >= 1, got {args.jobs}")
    p = AnonymizeParams(targets=targets, method=args.method, text=TextDetectorParams(policy=args.text_policy))  # type: ignore[arg-type]
    try:
        report = anonymize_folder(args.in_dir, args.out_dir, p=p, jobs=args.jobs)
    except OSError as err:  # OUT_DIR not writable, disk full: one line, not a traceback
        raise PipelineError(f"{err.filename or args.out_dir}: cannot write: {err.strerror or err}") from err
    c = report["counts"]
    found = ", ".join(f"{n} {cat}" for cat, n in c["detections"].items()) or "nothing"
    print(f"privtrail anonymize: {c['inputs']} images: {c['anonymized']} anonymized, {c['quarantined']} quarantined; "
          f"redacted {found}; report: {report['out_dir']}/anonymize_report.json")
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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="privtrail", description="privacy-by-design CV pipeline")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("lineage", help="tag MLflow runs with their dvc.lock stage hashes").set_defaults(fn=_lineage)
    trail = sub.add_parser("trail", help="print the audit trail of a model (name@alias, name/version or run id)")
    trail.add_argument("model")
    trail.set_defaults(fn=_trail)
    budget = sub.add_parser("budget", help="print the privacy budget ledger: DP runs and composed epsilon per dataset")
    budget.add_argument("--check", action="store_true", help="exit 3 when a dataset is over its budget")
    budget.set_defaults(fn=_budget)
    anon = sub.add_parser("anonymize", help="anonymize every image under IN_DIR (recursive) into OUT_DIR as PNG")
    anon.add_argument("in_dir", metavar="IN_DIR")
    anon.add_argument("out_dir", metavar="OUT_DIR")
    anon.add_argument("--targets", default="face,plate,text", help="comma-separated: face,body,plate,text")
    anon.add_argument("--method", default="inpaint", choices=get_args(Method),
                      help="how every target is removed (default inpaint: pixelated/blurred faces can be re-identified)")
    anon.add_argument("--text-policy", default="pii", choices=["pii", "all"])
    anon.add_argument("--jobs", type=int, default=1, help="worker processes")
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
