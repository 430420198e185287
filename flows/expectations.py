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
    out += [
        e.ExpectColumnValuesToNotBeNull(column=c)
        for c in ("id", "path", "sha256", "width", "height", "label", "split", "status")
    ]
    out += [
        e.ExpectColumnValuesToBeBetween(column=c, min_value=8, max_value=max_side)
        for c in ("width", "height")
    ]
    out += [
        e.ExpectColumnValuesToBeInSet(column="label", value_set=list(labels)),
        e.ExpectColumnValuesToBeInSet(column="split", value_set=list(splits)),
        e.ExpectColumnDistinctValuesToContainSet(column="split", value_set=list(splits)),
        e.ExpectColumnValueLengthsToEqual(column="sha256", value=64),
    ]
    return out


def validate_manifest(
    frame: pd.DataFrame,
    *,
    suite: str,
    out_dir: str,
    n_rows: int,
    labels: Sequence[int],
    max_side: int,
    splits: Sequence[str] = ("train", "holdout", "test"),
) -> dict[str, Any]:
    """Run the manifest suite with a checkpoint; write results.json and Data Docs; return the summary."""
    return _run_suite(
        frame,
        suite=suite,
        out_dir=out_dir,
        expectations=_expectations(n_rows=n_rows, labels=labels, max_side=max_side, splits=splits),
    )


def _run_suite(
    frame: pd.DataFrame, *, suite: str, out_dir: str, expectations: Sequence[Any]
) -> dict[str, Any]:
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
        vd = ctx.validation_definitions.add_or_update(
            gx.ValidationDefinition(name=suite, data=batch, suite=s)
        )
        cp = ctx.checkpoints.add_or_update(
            gx.Checkpoint(
                name=suite,
                validation_definitions=[vd],
                result_format="SUMMARY",
                actions=[gx.checkpoint.UpdateDataDocsAction(name="data_docs")],
            )
        )
        result = cp.run(batch_parameters={"dataframe": frame})
        docs = Path(tmp) / "gx" / "uncommitted" / "data_docs" / "local_site"
        if docs.exists():
            shutil.copytree(docs, out / "data_docs")
    checks = [
        {
            "expectation": r.expectation_config.type,
            "kwargs": {k: v for k, v in r.expectation_config.kwargs.items() if k != "batch_id"},
            "success": bool(r.success),
        }
        for run in result.run_results.values()
        for r in run.results
        if r.expectation_config is not None
    ]
    summary = {
        "suite": suite,
        "success": bool(result.success),
        "n_expectations": len(checks),
        "n_failed": sum(not c["success"] for c in checks),
        "results": checks,
    }
    io.write_json(out / "results.json", summary)
    return summary


def _anonymized_expectations(*, n_raw: int, max_residual_share: float) -> list[Any]:
    import great_expectations as gx

    e = gx.expectations
    out: list[Any] = [
        e.ExpectTableRowCountToEqual(value=n_raw)
    ]  # one row per raw image, none for anything else
    out += [e.ExpectColumnValuesToBeUnique(column=c) for c in ("id", "path", "sha256")]
    out += [e.ExpectColumnValuesToNotBeNull(column=c) for c in ("id", "path")]
    out += [
        e.ExpectColumnValuesToBeInSet(
            column="in_raw", value_set=[1]
        ),  # every row and file traces to a raw image
        e.ExpectColumnValuesToBeInSet(column="file_format", value_set=["PNG"]),  # NaN (no file) is skipped
        e.ExpectColumnValuesToBeBetween(column="n_metadata", min_value=0, max_value=0),  # no EXIF/text/ICC
        # the check's own residual-face auditor (dlib): at most the residual gate's share of images
        e.ExpectColumnValuesToBeBetween(
            column="n_auditor_residual", min_value=0, max_value=0, mostly=1.0 - max_residual_share
        ),
    ]
    out += [
        e.ExpectColumnPairValuesToBeEqual(column_A=a, column_B=b)  # rows where both are missing are skipped
        for a, b in (
            ("outcomes", "in_raw"),  # every raw image exactly once: processed or quarantined
            ("written", "processed"),  # the files on disk are the manifest's rows: none extra, none missing
            ("audited", "processed"),  # the residual auditor read every written image
            ("file_sha256", "sha256"),  # re-hashed file = the manifest's hash (no change after the manifest)
            ("file_width", "width"),
            ("file_height", "height"),
        )
    ]
    out += [  # sizes unchanged by anonymization; a file that is not there fails above
        e.ExpectColumnPairValuesToBeEqual(column_A=a, column_B=b, ignore_row_if="either_value_is_missing")
        for a, b in (("file_width", "raw_width"), ("file_height", "raw_height"))
    ]
    return out


def validate_anonymized_manifest(
    frame: pd.DataFrame, *, out_dir: str, n_raw: int, max_residual_share: float, suite: str = "check_quality"
) -> dict[str, Any]:
    """The anonymized-manifest suite: the manifest's claims against facts read back from the files, not from
    the anonymizer's records. Every raw image is processed or quarantined exactly once; the image files in
    the folder are exactly the processed rows; each file's sha256 and size (re-read) match the manifest and
    its raw original; no file carries metadata (EXIF, text, ICC, time); the check's own residual-face
    auditor finds no face in more than `max_residual_share` of the written images.

    `frame`: `tasks.check_quality.manifest.audit_frame`'s table. Results and Data Docs go to `out_dir`.
    """
    return _run_suite(
        frame,
        suite=suite,
        out_dir=out_dir,
        expectations=_anonymized_expectations(n_raw=n_raw, max_residual_share=max_residual_share),
    )
