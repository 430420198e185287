"""The `privtrail` console script."""

from __future__ import annotations

import argparse
import json
import sys

from tasks.errors import PipelineError


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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="privtrail", description="privacy-by-design CV pipeline")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("lineage", help="tag MLflow runs with their dvc.lock stage hashes").set_defaults(fn=_lineage)
    trail = sub.add_parser("trail", help="print the audit trail of a model (name@alias, name/version or run id)")
    trail.add_argument("model")
    trail.set_defaults(fn=_trail)
    args = parser.parse_args(argv)
    try:
        return int(args.fn(args))
    except PipelineError as err:
        print(f"privtrail: error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
