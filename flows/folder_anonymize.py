"""`privtrail anonymize IN_DIR OUT_DIR`: anonymize any folder outside the DAG (no Prefect, no MLflow).

The folder walker (what is read, what is refused unread and why), the output names, and a process
pool over chunks of files. Each image goes through the anonymize stage's own engine
(`flows.anonymize.anonymize_one`), so the CLI and the DAG redact alike.
"""

from __future__ import annotations

import contextlib
import functools
import os
import secrets
import stat
import sys
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

from tqdm import tqdm

from flows import io
from flows.anonymize import anonymize_one, resolved
from flows.common import one_cv_thread
from flows.video_anonymize import VIDEO_EXTENSIONS, anonymize_video, video_output_names
from tasks.anonymize.engine import image_rng
from tasks.anonymize.folder import (
    chunks,
    file_row,
    folder_counts,
    manifest_rows,
    output_names,
    settings_record,
    split_media,
)
from tasks.codec import MAX_PIXELS, SUPPORTED_EXTENSIONS, decode_image
from tasks.errors import InvalidInputError
from tasks.params import AnonymizeParams

REPORT_JSON, MANIFEST_JSONL = "anonymize_report.json", "privtrail-manifest.jsonl"  # written into OUT_DIR
MAX_FILE_BYTES = 1 << 30  # 1 GiB: more than any camera file; a bigger "image" is refused unread
OUTSIDE = "symlink leading outside IN_DIR (not followed)"


def list_inputs(in_dir: Path, out_dir: Path) -> tuple[list[str], list[tuple[str, str]], list[str]]:
    """Walk `in_dir` (recursive, sorted; `out_dir` and symlinked folders are not walked into).

    Returns:
        (inputs, refused, unlisted): image- and video-named files to read, as relpaths; such entries
        refused unread as (relpath, reason) — symlinks leading outside `in_dir`, broken symlinks,
        FIFOs, devices and sockets; folders that could not be listed, with the OS's reason.
    """
    found: list[str] = []
    refused: list[tuple[str, str]] = []
    unlisted: list[str] = []
    walk = os.walk(
        in_dir, followlinks=False, onerror=lambda e: unlisted.append(f"{e.filename}: {e.strerror}")
    )
    for root, dirs, files in walk:
        links = [d for d in dirs if (Path(root) / d).is_symlink()]
        dirs[:] = sorted(d for d in dirs if d not in links and (Path(root) / d).resolve() != out_dir)
        for name in sorted(files + links):
            f = Path(root) / name
            if f.suffix.lower() not in SUPPORTED_EXTENSIONS | VIDEO_EXTENSIONS:
                continue
            rel, why = f.relative_to(in_dir).as_posix(), _refusal(f, in_dir)
            if why:
                refused.append((rel, why))
            else:
                found.append(rel)
    return found, refused, unlisted


def _refusal(file: Path, in_dir: Path) -> str | None:
    """Why an image-named entry must not be opened, or None when it is a regular file inside `in_dir`."""
    if file.is_symlink() and not file.resolve().is_relative_to(in_dir):
        return OUTSIDE
    try:
        mode = file.stat().st_mode
    except OSError as err:
        return f"unreadable: {'broken symlink' if file.is_symlink() else 'cannot stat'}: {err.strerror}"
    if not stat.S_ISREG(mode):
        return f"not a regular file ({_KINDS.get(stat.S_IFMT(mode), 'special file')})"
    return None


_KINDS = {
    stat.S_IFDIR: "a folder",
    stat.S_IFIFO: "a FIFO",
    stat.S_IFSOCK: "a socket",
    stat.S_IFCHR: "a character device",
    stat.S_IFBLK: "a block device",
}


def read_input(file: Path, *, name: str, max_bytes: int = MAX_FILE_BYTES) -> bytes:
    """The bytes of one listed input, re-checked on the open descriptor (the tree may change after
    listing): a regular file of at most `max_bytes`, never a FIFO that would block the read.

    Raises:
        InvalidInputError: unreadable, not a regular file, or too large; the message names `name`.
    """
    try:
        fd = os.open(file, os.O_RDONLY | os.O_NONBLOCK)
        with os.fdopen(fd, "rb") as f:
            info = os.fstat(f.fileno())
            if not stat.S_ISREG(info.st_mode):
                raise InvalidInputError(f"{name}: not a regular file")
            if info.st_size > max_bytes:
                raise InvalidInputError(f"{name}: file too large ({info.st_size} bytes, limit {max_bytes})")
            return f.read()
    except OSError as err:
        raise InvalidInputError(f"{name}: cannot read: {err.strerror or err}") from None


def anonymize_files(
    items: list[tuple[str, str]],
    *,
    in_dir: str,
    out_dir: str,
    p: AnonymizeParams,
    seed: int,
    threads: int = 1,
) -> list[dict[str, Any]]:
    """Anonymize (input relpath, output relpath) pairs; write those that pass; return one row each (no pixels).

    Any size is accepted down to 1×1 pixel (the stage's ingest keeps its own minimum); headers
    announcing more than `MAX_PIXELS` pixels are refused before decoding.
    """
    rows = []
    for rel, out_rel in items:
        try:
            data = read_input(Path(in_dir) / rel, name=rel)
            image = decode_image(data, name=rel, min_side=1, max_pixels=MAX_PIXELS)
        except InvalidInputError as err:
            rows.append(file_row(rel, None, f"unreadable: {err}", None))
            continue
        result = anonymize_one(image, p=p, rng=image_rng(seed, rel), threads=threads)
        if result.image is not None:
            io.write_png(Path(out_dir) / out_rel, result.image)
        rows.append(
            file_row(rel, out_rel if result.image is not None else None, result.quarantine_reason, result)
        )
    return rows


def detector_threads() -> int:
    """Threads one image's detectors may share in a process that has the machine to itself: the cores
    this process may use, at most 2 (the face detector and OCR cost the most; the rest is small)."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return max(1, min(2, cores))


def _run_chunks(chunks: list[list[tuple[str, str]]], *, jobs: int, **kw: Any) -> list[dict[str, Any]]:
    import cv2

    # one job: this process has the cores to itself, and its detectors share them (face beside OCR)
    work = functools.partial(anonymize_files, **kw, threads=detector_threads() if jobs == 1 else 1)
    # A bar only on a terminal: a redirected stderr (CI logs, pipes) gets no carriage-return noise.
    progress = tqdm(total=sum(map(len, chunks)), unit="img", disable=not sys.stderr.isatty(), file=sys.stderr)
    rows: list[dict[str, Any]] = []
    with progress, contextlib.ExitStack() as stack:
        if jobs == 1:
            stack.callback(cv2.setNumThreads, one_cv_thread())
        pool = stack.enter_context(ProcessPoolExecutor(jobs, initializer=one_cv_thread)) if jobs > 1 else None
        for part in pool.map(work, chunks) if pool else map(work, chunks):
            rows += part
            progress.update(len(part))
    return rows


def _check_dirs(in_dir: str | Path, out_dir: str | Path) -> tuple[Path, Path]:
    src, dst = Path(in_dir).resolve(), Path(out_dir).resolve()
    if not src.is_dir():
        raise InvalidInputError(f"IN_DIR {in_dir}: not a folder")
    if src.is_relative_to(dst):
        raise InvalidInputError(
            f"OUT_DIR {out_dir}: is IN_DIR or contains it (outputs could overwrite inputs)"
        )
    return src, dst


def anonymize_folder(
    in_dir: str | Path, out_dir: str | Path, *, p: AnonymizeParams, jobs: int = 1, seed: int | None = None
) -> dict[str, Any]:
    """Anonymize every image under `in_dir` into `out_dir` (same tree, .png, metadata-free), and every video
    (`flows.video_anonymize`: frame by frame with a tracker, one at a time); quarantined files are not written. Writes `REPORT_JSON` and `MANIFEST_JSONL` (one row per
    image-named input: input, output, status, reason, detections); returns the report.

    `seed` seeds dp_pixelate's noise; None (the default) draws a secret one from the OS (see `image_rng`).
    """
    src, dst = _check_dirs(in_dir, out_dir)
    p, device = resolved(p)  # once, before any file is read; the workers get cpu or cuda, never auto
    found, refused, unlisted = list_inputs(src, dst)
    images, videos = split_media(found)
    names = output_names(images)
    items = [(rel, names[rel]) for rel in images]
    seed = secrets.randbits(63) if seed is None else seed
    rows = (
        _run_chunks(chunks(items, jobs=jobs), jobs=jobs, in_dir=str(src), out_dir=str(dst), p=p, seed=seed)
        if items
        else []
    )
    video_names = video_output_names(videos)
    rows += [
        anonymize_video(
            src / rel,
            dst / video_names[rel],
            rel=rel,
            out_rel=video_names[rel],
            p=p,
            seed=seed,
            threads=detector_threads(),
        )
        for rel in videos
    ]  # one video at a time
    rows = sorted(rows + [file_row(rel, None, why, None) for rel, why in refused], key=lambda r: r["input"])
    report = {
        "in_dir": str(src),
        "out_dir": str(dst),
        "counts": folder_counts(rows),
        "files": rows,
        "unlisted_folders": unlisted,
        "params": settings_record(p),
        "device": device.as_record(),
    }
    io.write_json(dst / REPORT_JSON, report)
    io.write_jsonl(dst / MANIFEST_JSONL, manifest_rows(rows))
    return report
