"""`privtrail anonymize IN_DIR OUT_DIR`'s bookkeeping, pure: output names, the work split into chunks, one
manifest row per input (no pixels, no recognised text), the report's counts and the settings it records."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from pathlib import PurePosixPath
from typing import Any

from tasks.anonymize.engine import AnonymizedImage
from tasks.codec import VIDEO_EXTENSIONS
from tasks.params import AnonymizeParams

MANIFEST_KEYS = (
    "input",
    "output",
    "status",
    "reason",
    "detections",
    "escalated",
    "masked",
)  # privtrail-manifest.jsonl
CHUNKS_PER_JOB = 4  # chunks per worker process: a slow chunk does not leave the others idle


def output_names(relpaths: Sequence[str]) -> dict[str, str]:
    """Input relpath → output relpath, all distinct: the same path as .png when no other input claims
    it ('a.png' keeps its name), else the input's full name + '.png' ('a.jpg' → 'a.jpg.png'), numbered
    if even that is taken ('a.jpg.1.png')."""
    plain = {rel: str(PurePosixPath(rel).with_suffix(".png")) for rel in relpaths}
    claims = Counter(plain.values())
    names = {rel: out for rel, out in plain.items() if claims[out] == 1 or rel == out}
    taken = set(names.values())
    for rel in sorted(set(relpaths) - set(names)):
        out, n = f"{rel}.png", 0
        while out in taken:
            n += 1
            out = f"{rel}.{n}.png"
        names[rel] = out
        taken.add(out)
    return names


def split_media(relpaths: Sequence[str]) -> tuple[list[str], list[str]]:
    """(images, videos) among the listed inputs, each in listing order (videos by `VIDEO_EXTENSIONS`)."""
    videos = [rel for rel in relpaths if PurePosixPath(rel).suffix.lower() in VIDEO_EXTENSIONS]
    kept = set(videos)
    return [rel for rel in relpaths if rel not in kept], videos


def chunks(items: Sequence[tuple[str, str]], *, jobs: int) -> list[list[tuple[str, str]]]:
    """`items` dealt round-robin into at most `CHUNKS_PER_JOB` × `jobs` chunks (at least one, never empty but
    when `items` is)."""
    n = max(1, min(len(items), jobs * CHUNKS_PER_JOB))
    return [list(items[i::n]) for i in range(n)]


def file_row(rel: str, out: str | None, reason: str | None, result: AnonymizedImage | None) -> dict[str, Any]:
    """One input's row: output (None: quarantined), reason, detections per category, escalation rounds and the
    boxes filled black in the last rounds, and the dp_pixelate ε when it applied."""
    dets = Counter(result.detections.category) if result is not None else Counter()
    row = {
        "input": rel,
        "output": out,
        "status": "quarantined" if out is None else "anonymized",
        "reason": reason,
        "detections": dict(sorted(dets.items())),
        "escalated": result.escalated if result is not None else 0,
        "masked": result.masked if result is not None else 0,
    }
    return row | (
        {"dp_epsilon": result.dp_epsilon} if result is not None and result.dp_epsilon is not None else {}
    )


def manifest_rows(rows: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """The manifest's rows: `MANIFEST_KEYS` of each file row."""
    return [{k: r[k] for k in MANIFEST_KEYS} for r in rows]


def folder_counts(rows: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Inputs, anonymized, quarantined, anonymized with boxes masked black, and detections per category."""
    detections: Counter[str] = Counter()
    for r in rows:
        detections.update(r["detections"])
    n_q = sum(r["status"] == "quarantined" for r in rows)
    masked = sum(r["status"] == "anonymized" and r.get("masked", 0) > 0 for r in rows)
    return {
        "inputs": len(rows),
        "anonymized": len(rows) - n_q,
        "quarantined": n_q,
        "masked": masked,
        "detections": dict(sorted(detections.items())),
    }


def settings_record(p: AnonymizeParams) -> dict[str, Any]:
    """The anonymize settings the report records (targets, preset, face detector, methods, text policy)."""
    return {
        "targets": list(p.targets),
        "preset": p.preset,
        "face": p.face.model_dump(),
        "method": p.method,
        "methods": dict(p.methods),
        "text_policy": p.text.policy,
    }
