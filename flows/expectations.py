"""Great Expectations suites on stage manifests; results (JSON + Data Docs HTML) go to reports/gx/<suite>/."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from flows import io


def _expectations(*, n_rows: int, labels: Sequence[int], max_side: int, splits: Sequence[str]) -> list[Any]:
    import great_expectations as gx

    e = gx.expectations
    out: list[Any] = [e.ExpectTableRowCountToEqual(value=n_rows)]
    out += [e.ExpectColumnValuesToBeUnique(column=c) for c in ("id", "sha256", "path")]
    out += [e.ExpectColumnValuesToNotBeNull(column=c) for c in ("id", "path", "sha256", "width", "height",
                                                                "label", "split", "status")]
    out += [e.ExpectColumnValuesToBeBetween(column=c, min_value=8, max_value=max_side) for c in ("width", "height")]
    out += [
        e.ExpectColumnValuesToBeInSet(column="label", value_set=list(labels)),
        e.ExpectColumnValuesToBeInSet(column="split", value_set=list(splits)),
        e.ExpectColumnDistinctValuesToContainSet(column="split", value_set=list(splits)),
        e.ExpectColumnValueLengthsToEqual(column="sha256", value=64),
    ]
    return out


def validate_manifest(frame: pd.DataFrame, *, suite: str, out_dir: str, n_rows: int, labels: Sequence[int],
                      max_side: int, splits: Sequence[str] = ("train", "holdout", "test")) -> dict[str, Any]:
    """Run the manifest suite with a checkpoint; write results.json and Data Docs; return the summary."""
    return _run_suite(frame, suite=suite, out_dir=out_dir,
                      expectations=_expectations(n_rows=n_rows, labels=labels, max_side=max_side, splits=splits))


def _run_suite(frame: pd.DataFrame, *, suite: str, out_dir: str, expectations: Sequence[Any]) -> dict[str, Any]:
    """Run `expectations` on `frame` with a checkpoint; write results.json and Data Docs; return the summary."""
    import great_expectations as gx

    out = io.clean_dir(out_dir)
    with tempfile.TemporaryDirectory(prefix="privtrail-gx-") as tmp:
        ctx = gx.get_context(mode="file", project_root_dir=tmp)
        asset = ctx.data_sources.add_or_update_pandas(suite).add_dataframe_asset(suite)
        batch = asset.add_batch_definition_whole_dataframe("whole")
        s = gx.ExpectationSuite(name=suite)
        for exp in expectations:
            s.add_expectation(exp)
        s = ctx.suites.add_or_update(s)
        vd = ctx.validation_definitions.add_or_update(gx.ValidationDefinition(name=suite, data=batch, suite=s))
        cp = ctx.checkpoints.add_or_update(gx.Checkpoint(
            name=suite, validation_definitions=[vd], result_format="SUMMARY",
            actions=[gx.checkpoint.UpdateDataDocsAction(name="data_docs")]))
        result = cp.run(batch_parameters={"dataframe": frame})
        docs = Path(tmp) / "gx" / "uncommitted" / "data_docs" / "local_site"
        if docs.exists():
            shutil.copytree(docs, out / "data_docs")
    checks = [
        {"expectation": r.expectation_config.type, "kwargs": {k: v for k, v in r.expectation_config.kwargs.items()
                                                              if k != "batch_id"}, "success": bool(r.success)}
        for run in result.run_results.values() for r in run.results
    ]
    summary = {"suite": suite, "success": bool(result.success), "n_expectations": len(checks),
               "n_failed": sum(not c["success"] for c in checks), "results": checks}
    io.write_json(out / "results.json", summary)
    return summary


def _anonymized_expectations(*, n_rows: int) -> list[Any]:
    import great_expectations as gx

    e = gx.expectations
    out: list[Any] = [e.ExpectTableRowCountToEqual(value=n_rows)]  # processed + quarantined == raw images
    out += [e.ExpectColumnValuesToBeUnique(column=c) for c in ("id", "path", "sha256")]
    out += [
        e.ExpectColumnValuesToNotBeNull(column=c)
        for c in (
            "id",
            "path",
            "sha256",
            "file_width",
            "file_height",
            "raw_width",
            "raw_height",
            "n_residual",
            "n_metadata_chunks",
        )
    ]
    out += [
        e.ExpectColumnValuesToBeBetween(column=c, min_value=0, max_value=0)  # nothing survived, nothing kept
        for c in ("n_residual", "n_metadata_chunks")
    ]
    out += [
        e.ExpectColumnPairValuesToBeEqual(column_A=a, column_B=b)  # sizes unchanged, manifest = file
        for a, b in (
            ("file_width", "raw_width"),
            ("file_height", "raw_height"),
            ("width", "raw_width"),
            ("height", "raw_height"),
        )
    ]
    return out


def validate_anonymized_manifest(
    frame: pd.DataFrame, *, out_dir: str, n_raw: int, n_quarantined: int, suite: str = "check_quality"
) -> dict[str, Any]:
    """The anonymized-manifest suite: counts add up (rows == raw − quarantined), ids/paths/sha256 unique,
    no residual detection, no metadata chunk, every image the size of its raw original.

    `frame`: the anonymized manifest joined with, per image, `file_width`/`file_height` (decoded file),
    `n_metadata_chunks` (PNG text/EXIF/time chunks), `n_residual` (detections that survived verification)
    and `raw_width`/`raw_height` (raw manifest). Results and Data Docs go to `out_dir`.
    """
    return _run_suite(
        frame,
        suite=suite,
        out_dir=out_dir,
        expectations=_anonymized_expectations(n_rows=n_raw - n_quarantined),
    )
