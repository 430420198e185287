"""`privtrail report --pdf`: print the self-contained compliance.html to PDF with headless Chromium.

The page is printed by the system's Debian chromium (`make browser` installs it) with its own print
stylesheet: A4, the first page (the officer's summary) alone on page 1. Chromium runs with a fresh
profile and no network services; the page itself fetches nothing (inline CSS, data: images).
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path

from tasks.errors import InvalidInputError, PipelineError

CHROMIUM_CANDIDATES = ("/usr/bin/chromium", "chromium", "chromium-browser", "google-chrome")
FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-pdf-header-footer",
    "--run-all-compositor-stages-before-draw",
)


def find_chromium() -> str:
    """The first Chromium on this machine.

    Raises:
        PipelineError: none is installed (with how to install it).
    """
    for name in CHROMIUM_CANDIDATES:
        found = shutil.which(name)
        if found:
            return found
    raise PipelineError(
        "privtrail report --pdf: no Chromium found (looked for "
        f"{', '.join(CHROMIUM_CANDIDATES)}); install it with `make browser` (Debian's chromium, as root)"
    )


def html_to_pdf(html: Path, pdf: Path, *, chromium: str | None = None, timeout_s: float = 120) -> Path:
    """Print `html` to `pdf` with headless Chromium; return `pdf`.

    Raises:
        InvalidInputError: `html` is not a file.
        PipelineError: no Chromium, or it failed or wrote no PDF (its output is in the message).
    """
    if not html.is_file():
        raise InvalidInputError(f"{html}: no such report (run `dvc repro report` first)")
    browser = chromium or find_chromium()
    pdf.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="privtrail-chromium-") as profile:
        cmd = [
            browser,
            *FLAGS,
            f"--user-data-dir={profile}",
            f"--print-to-pdf={pdf.resolve()}",
            html.resolve().as_uri(),
        ]
        try:
            proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout_s, check=False)
        except subprocess.TimeoutExpired as err:
            raise PipelineError(
                f"privtrail report --pdf: chromium did not finish in {timeout_s:.0f} s"
            ) from err
    if proc.returncode != 0 or not pdf.is_file() or pdf.stat().st_size == 0:
        raise PipelineError(
            f"privtrail report --pdf: chromium exited {proc.returncode} without a PDF: "
            f"{(proc.stderr or proc.stdout)[-800:]}"
        )
    return pdf
