"""File names of check_quality's outputs in its plots folder (`paths.plots`/check_quality): named once, for
the stage that writes them and the report that reads them."""

from __future__ import annotations

COMPARE_JSON = "compare_methods.json"  # the method table, one `MethodRow` per method
COMPARE_CSV = "compare_methods.csv"  # the same table for spreadsheets
PRIVACY_UTILITY_PNG = "privacy_utility.png"  # the privacy–utility scatter of the methods
SAMPLES_PNG = "method_samples.png"  # crops of the written (verified) files per method
SAMPLES_JSON = "method_samples.json"  # what the samples figure shows and leaves out, and why (no pixels)
SUMMARY_JSON = "summary.json"  # the headline and LPIPS' status
LOGGED: tuple[str, ...] = (
    COMPARE_JSON,
    COMPARE_CSV,
    PRIVACY_UTILITY_PNG,
    SAMPLES_PNG,
    SAMPLES_JSON,
)  # MLflow artifacts
