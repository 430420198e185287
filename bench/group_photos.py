"""Real group photos: `deface` vs `privtrail anonymize --preset P`, side by side, one run, same files.

The photos are dlib's nine labelled PASCAL VOC pictures (2-7 people each, 43 faces of 37-109 px; dlib
19.5.0's `examples/faces`, fetched from PyPI by `tests/real_photos.py`, never committed), copied byte
for byte as JPEG files into a temp folder: the same files for every tool.

Each row:
- **images/s**: both tools as the command a user runs, in subprocesses (`bench.anonymize_throughput`'s
  `run_deface` / `run_privtrail`): once on all 9 photos, once on the first J (J: the tool's worker
  processes, 1 for deface, so every worker starts in both runs); (T_9 - T_J) / (9 - J) per image, so
  start-up (imports, model load, process pool) is excluded and shown apart (`per_image`).
  deface: its defaults (`--thresh 0.2`, onnxrt backend, blur, its own threads on every core).
  privtrail: `privtrail anonymize IN OUT --preset P --targets T --jobs J`, T = faces or all (face, plate,
  text) (`--targets`). A preset the CLI rejects prints "preset P: not available"; `none` runs without
  `--preset` (the CLI's defaults).
- **÷ deface**: images/s over deface's.
- **redacted**: labelled faces with >= 70 % of their box's pixels changed, comparing the decoded output
  with what the tool writes when it redacts nothing: for privtrail (lossless PNG) the input itself, so
  every changed pixel is a redaction; for deface the input re-encoded as deface writes it (Pillow JPEG,
  quality 75 — deface's `imageio.imsave`), which its output matches bit for bit wherever it redacted
  nothing, so JPEG noise does not count as a change. **kept**: the share of pixels outside the labelled
  faces identical to that reference: 1.0 less what else was redacted (plates, text, false positives,
  unlabelled faces, the margin around each face: deface blurs an ellipse 1.3× its detection, and the
  JPEG blocks that blur touches). A deface row near 0.1-0.3 would mean its encoder no longer matches the
  reference (the input and its quality-75 re-encode share only 7-29 % of their pixels).
  **>10 levels**: the cruder rule against the raw input, where a pixel changed when the mean absolute
  difference over its channels exceeds 10 grey levels (above most JPEG noise): a blur leaves smooth skin
  within 10 levels, so this undercounts blurred faces (deface measured 38/43 on it, while its boxes
  cover all 43). Faces in quarantined photos (not written at all) are counted apart.
- **re-detected**: labelled faces that dlib's HOG (upsample 1 on a 2× copy) and MMOD CNN (upsample 1)
  still find on the output (`bench.real_photos.face_hit`: IoU >= 0.3, or covering >= 50 % of the box),
  `+k` other detections (false positives or unlabelled faces). The first row runs them on the raw
  photos: what each auditor can see at all.

    python -m bench.group_photos                              # ~12 min on 2 cores (MMOD: ~5 s a photo)
    python -m bench.group_photos --presets default --no-mmod
"""

from __future__ import annotations

import argparse
import functools
import io
import os
import shutil
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from numpy.typing import NDArray
from PIL import Image as PILImage

from bench.anonymize_throughput import TARGETS, per_image, run_deface, run_privtrail
from bench.real_photos import face_hit
from tasks.auditors import dlib_cnn_detector, dlib_hog_detector
from tasks.codec import decode_image
from tasks.types import Detector
from tests.real_photos import default_dlib_cache, dlib_face_boxes, fetch_dlib_faces

REDACTED_SHARE = 0.7  # of the box's pixels changed
DEFACE_JPEG_QUALITY = 75  # deface writes with imageio.imsave: imageio 2's Pillow JPEG writer, quality 75
Image = NDArray[np.uint8]
Reference = Callable[[Image], Image]  # the input -> what the tool writes when it redacts nothing


def lossless(raw: Image) -> Image:
    """privtrail's reference: PNG keeps every pixel."""
    return raw


def deface_jpeg(raw: Image) -> Image:
    """deface's reference: the input re-encoded as deface writes it (Pillow JPEG, quality 75), decoded."""
    buf = io.BytesIO()
    PILImage.fromarray(raw).save(buf, format="JPEG", quality=DEFACE_JPEG_QUALITY)
    return decode_image(buf.getvalue(), name="reference.jpg")


@dataclass(frozen=True)
class Row:
    """One tool's run: seconds per image, start-up seconds, and its decoded outputs (None: not written)."""

    name: str
    step: float
    startup: float
    outputs: dict[str, Image | None]  # photo -> output RGB, or None: not written (quarantined)
    reference: Reference


@dataclass(frozen=True)
class Score:
    """Counts over the labelled faces of one row."""

    faces: int
    redacted: int
    redacted_10: int  # faces with >= 70 % of their pixels > 10 grey levels away from the raw input
    quarantined: int  # faces in photos the tool did not write
    kept: float  # share of the written photos' pixels outside labelled faces identical to the reference
    hits: dict[str, tuple[int, int]]  # auditor -> (labelled faces re-detected, other detections)


def changed_share(raw: Image, out: Image, box: NDArray[np.int64], *, tolerance: int = 0) -> float:
    """Share of the box's pixels whose mean absolute difference over channels is > `tolerance`.

    Args:
        raw, out: (H, W, 3) uint8, the same size (`raw`: the input, or its reference encoding).
        box: [x0, y0, x1, y1] in pixels, inside the image.
    """
    x0, y0, x1, y1 = (int(v) for v in box)
    diff = np.abs(raw[y0:y1, x0:x1].astype(np.int16) - out[y0:y1, x0:x1].astype(np.int16)).mean(axis=-1)
    return float((diff > tolerance).mean())


def audit(
    images: Mapping[str, Image | None], boxes: dict[str, NDArray[np.int64]], auditors: dict[str, Detector]
) -> dict[str, tuple[int, int]]:
    """Per auditor: (labelled faces it finds, its detections matching no labelled face) over `images`."""
    out = {}
    for name, detect in auditors.items():
        hits = others = 0
        for photo, image in images.items():
            if image is None:
                continue
            found = detect(image).boxes
            hits += sum(face_hit(found, list(map(int, b))) for b in boxes[photo])
            others += sum(not any(face_hit(d[None], list(map(int, b))) for b in boxes[photo]) for d in found)
        out[name] = (hits, others)
    return out


def score(
    row: Row, raws: dict[str, Image], boxes: dict[str, NDArray[np.int64]], auditors: dict[str, Detector]
) -> Score:
    """Redacted and re-detected labelled faces of one row's outputs."""
    redacted = redacted_10 = quarantined = kept = outside = 0
    for photo, out in row.outputs.items():
        if out is None:
            quarantined += len(boxes[photo])
            continue
        reference = row.reference(raws[photo])
        redacted += sum(changed_share(reference, out, b) >= REDACTED_SHARE for b in boxes[photo])
        redacted_10 += sum(
            changed_share(raws[photo], out, b, tolerance=10) >= REDACTED_SHARE for b in boxes[photo]
        )
        mask = np.ones(out.shape[:2], bool)
        for x0, y0, x1, y1 in boxes[photo]:
            mask[y0:y1, x0:x1] = False
        kept += int((out == reference).all(axis=-1)[mask].sum())
        outside += int(mask.sum())
    faces = sum(len(b) for b in boxes.values())
    hits = audit(row.outputs, boxes, auditors)
    return Score(faces, redacted, redacted_10, quarantined, kept / max(outside, 1), hits)


def _decode(file: Path) -> Image:
    return decode_image(file.read_bytes(), name=file.name)


def _timed(name: str, run: Callable[[list[Path], Path], float], files: list[Path], tmp: Path,
           output: Callable[[Path, Path], Path], reference: Reference, *, base: int = 1) -> Row:  # fmt: skip
    """Time `run` with `per_image` in `tmp/name` (`base`: its worker processes); decode what the all-files
    run wrote (`output(work, file)`)."""
    work = tmp / name.replace(" ", "_")
    step, startup = per_image(run, files, work, base=base)
    outputs: dict[str, Image | None] = {}
    for f in files:
        file = output(work / "all", f)
        outputs[f.name] = _decode(file) if file.is_file() else None
    shutil.rmtree(work)
    return Row(name, step, startup, outputs, reference)


def deface_row(files: list[Path], tmp: Path) -> Row:
    """deface with its defaults; outputs `<stem>_anonymized.jpg` beside the copies."""
    run = functools.partial(run_deface, thresh=0.2, keep=True)
    output: Callable[[Path, Path], Path] = lambda work, f: work / f"{f.stem}_anonymized{f.suffix}"  # noqa: E731
    return _timed("deface (thresh 0.2)", run, files, tmp, output, deface_jpeg)


def privtrail_row(files: list[Path], tmp: Path, *, preset: str, kind: str, jobs: int) -> Row:
    """`privtrail anonymize` with `--preset preset` (none: no flag), targets `TARGETS[kind]`; PNG outputs.

    Raises:
        RuntimeError: the CLI failed (a rejected `--preset` among others; the message has its stderr).
    """
    extra = () if preset == "none" else ("--preset", preset)
    run = functools.partial(run_privtrail, targets=TARGETS[kind], jobs=jobs, extra=extra, keep=True)
    output: Callable[[Path, Path], Path] = lambda work, f: work / "out" / f"{f.stem}.png"  # noqa: E731
    return _timed(f"privtrail {preset} {kind} --jobs {jobs}", run, files, tmp, output, lossless, base=jobs)


def _rows(files: list[Path], tmp: Path, presets: list[str], kinds: list[str], jobs: int) -> list[Row]:
    rows = [deface_row(files, tmp)]
    for preset in presets:
        for kind in kinds:
            try:
                rows.append(privtrail_row(files, tmp, preset=preset, kind=kind, jobs=jobs))
            except RuntimeError as err:
                if "preset" not in str(err):
                    raise
                why = str(err).strip().splitlines()[-1]
                print(f"preset {preset}: not available ({why})")
                break
    return rows


HEADER = ("images/s", "start-up s", "÷ deface", "redacted", ">10 levels", "quarantined", "kept")


def _fmt(score: Score, auditors: dict[str, Detector]) -> str:
    hits = " ".join(f"{f'{score.hits[a][0]}/{score.faces} +{score.hits[a][1]}':>11}" for a in auditors)
    counts = f"{f'{score.redacted}/{score.faces}':>8} {f'{score.redacted_10}/{score.faces}':>10}"
    return f"{counts} {score.quarantined:>11} {score.kept:6.3f} {hits}"


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(prog="python -m bench.group_photos", description=__doc__.splitlines()[0])
    ap.add_argument(
        "--presets", default="fast,default,thorough", help="comma-separated; none: no --preset flag"
    )
    ap.add_argument(
        "--jobs", type=int, default=len(os.sched_getaffinity(0)), help="privtrail worker processes"
    )
    ap.add_argument(
        "--targets", default=",".join(TARGETS), help=f"comma-separated, among {', '.join(TARGETS)}"
    )
    ap.add_argument("--no-mmod", action="store_true", help="skip dlib's MMOD CNN auditor (slow)")
    args = ap.parse_args(argv)
    presets = [p.strip() for p in args.presets.split(",") if p.strip()]
    kinds = [k.strip() for k in args.targets.split(",") if k.strip()]
    if not kinds or set(kinds) - set(TARGETS):
        ap.error(f"--targets: choose among {', '.join(TARGETS)}, got {args.targets!r}")
    folder = fetch_dlib_faces(default_dlib_cache())
    boxes = dlib_face_boxes(folder)
    auditors: dict[str, Detector] = {"hog": dlib_hog_detector(upsample=1, upscale=2)}
    if not args.no_mmod:
        auditors["mmod"] = dlib_cnn_detector(upsample=1)
    with tempfile.TemporaryDirectory(prefix="privtrail-group-") as tmp_name:
        tmp = Path(tmp_name)
        (tmp / "src").mkdir()
        files = [Path(shutil.copy(folder / name, tmp / "src" / name)) for name in sorted(boxes)]
        raws = {f.name: _decode(f) for f in files}
        sides = np.concatenate([b[:, 2] - b[:, 0] for b in boxes.values()])
        print(f"group photos: {len(files)} photos, {len(sides)} labelled faces ({sides.min()}-{sides.max()} px), "
              f"{len(os.sched_getaffinity(0))} cores; images/s excludes start-up; redacted: >= 70 % of the box's "
              "pixels differ from what the tool writes when it redacts nothing (see the module docstring)")  # fmt: skip
        rows = _rows(files, tmp, presets, kinds, args.jobs)
        widths = (8, 10, 8, 8, 10, 11, 6)
        hits = " ".join(f"{a + ' re-det.':>11}" for a in auditors)
        print(
            f"{'row':36} " + " ".join(f"{h:>{w}}" for h, w in zip(HEADER, widths, strict=True)) + f" {hits}"
        )
        raw = audit(raws, boxes, auditors)  # what the auditors find on the photos themselves
        print(f"{'raw photos (auditors only)':36} " + " ".join(f"{'-':>{w}}" for w in widths) + " "
              + " ".join(f"{f'{raw[a][0]}/{len(sides)} +{raw[a][1]}':>11}" for a in auditors))  # fmt: skip
        for row in rows:
            s = score(row, raws, boxes, auditors)
            ratio = rows[0].step / row.step
            print(f"{row.name:36} {1 / row.step:8.2f} {row.startup:10.2f} {ratio:8.2f} {_fmt(s, auditors)}")


if __name__ == "__main__":
    main()
