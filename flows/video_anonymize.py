"""Anonymize one video file: read frames (OpenCV / FFmpeg), anonymize each with the stage's engine and a
tracker, write the video and a per-frame manifest; quarantine the video when a frame fails.

- Output: the same frame size, rate and count; `.avi` stays Motion-JPEG AVI, every other container
  becomes MPEG-4 Part 2 in `.mp4`. Audio is dropped (never read) and no metadata is carried over
  (OpenCV's writer writes only its own stream headers).
- Manifest: `<output>.frames.jsonl` (or `<input name>.frames.jsonl` for a quarantined video), one row
  per frame: status, detected, carried (tracker) and moving (motion cue) box counts, categories, reason.
  No pixels, no text.
- With `body` among the targets, a `MotionDetector` (`anonymize.motion`) sees every frame: what moves on a
  fixed camera is redacted as body too, beside the detectors' and the tracker's boxes.
- Fail closed: a video with any failed frame is not written (its partial file is deleted); the
  reason names the frame ranges. A file OpenCV cannot open, that yields no frame, or that breaks off
  before the frame count it declares is quarantined too.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path, PurePosixPath
from typing import Any

from flows import io
from flows.anonymize import anonymize_one
from flows.common import progress_bar
from tasks.anonymize.engine import image_rng
from tasks.anonymize.motion import MotionDetector
from tasks.anonymize.tracker import IouTracker
from tasks.anonymize.video import anonymize_frames, describe_ranges, frame_ranges
from tasks.codec import VIDEO_EXTENSIONS
from tasks.errors import AnonymizationError, InvalidInputError
from tasks.params import AnonymizeParams

__all__ = ["VIDEO_EXTENSIONS", "anonymize_video", "video_output_name", "video_output_names"]


def video_output_name(rel: str) -> str:
    """The output relpath of a video input: `.avi` kept, anything else `.mp4`."""
    path = PurePosixPath(rel)
    return str(path.with_suffix(".avi" if path.suffix.lower() == ".avi" else ".mp4"))


def video_output_names(rels: list[str]) -> dict[str, str]:
    """Input relpath → distinct output relpath: `video_output_name`, or the full input name plus the
    output suffix when two inputs would share one ('a.mov' and 'a.mp4': 'a.mp4', 'a.mov.mp4')."""
    names: dict[str, str] = {}
    for rel in sorted(
        rels, key=lambda r: (video_output_name(r) != r, r)
    ):  # an input already named so keeps it
        out, suffix, n = video_output_name(rel), PurePosixPath(video_output_name(rel)).suffix, 0
        while out in names.values():  # 'a.mov.mp4', then 'a.mov.1.mp4', ...
            out = f"{rel}{suffix}" if n == 0 else f"{rel}.{n}{suffix}"
            n += 1
        names[rel] = out
    return names


def anonymize_video(src: Path, dst: Path, *, rel: str, out_rel: str, p: AnonymizeParams, seed: int,
                    max_gap: int = 5, threads: int = 1) -> dict[str, Any]:  # fmt: skip
    """Anonymize the video at `src` (input relpath `rel`) into `dst` (output relpath `out_rel`), written only
    when every frame passed; return its manifest row: input, output (None when quarantined), status,
    reason, detections (boxes per category over all frames), frames.

    Frames come from `io.read_video_frames` (the reader ingest uses); the writer is sized from the first
    decoded frame, not the container's header. Each frame's detectors run `threads` at a time
    (`DetectorSet`)."""
    import cv2

    fps, total = io.video_info(src)
    dst.parent.mkdir(parents=True, exist_ok=True)
    partial = dst.with_name(f".{dst.name}.partial{dst.suffix}")
    fourcc = cv2.VideoWriter_fourcc(*("MJPG" if dst.suffix == ".avi" else "mp4v"))  # type: ignore[attr-defined]
    tracker, rows, failed = IouTracker(max_gap=max_gap), [], []
    counts: dict[str, int] = {}
    m = p.motion
    motion = MotionDetector(history=m.history, var_threshold=m.var_threshold, min_area=m.min_area, pad=p.body.pad,
                            max_share=m.max_share) if m.enabled and "body" in p.targets else None  # fmt: skip
    writer: Any = None

    def anonymize(frame: Any, carry: Any, index: int) -> Any:
        return anonymize_one(frame, p=p, rng=image_rng(seed, f"{rel}#{index}"), carry=carry, threads=threads)

    crashed = None
    try:
        frames = (frame for _, frame in io.read_video_frames(src, step=1))
        with progress_bar(f"video {PurePosixPath(rel).name}", total=total or None, unit="frame") as bar:
            for outcome in anonymize_frames(frames, anonymize=anonymize, tracker=tracker, motion=motion):
                rows.append(outcome.as_row())
                for c in outcome.categories:
                    counts[c] = counts.get(c, 0) + 1
                if outcome.image is None:
                    failed.append(outcome.index)
                elif not failed:
                    if writer is None:
                        size = (outcome.image.shape[1], outcome.image.shape[0])
                        writer = cv2.VideoWriter(str(partial), fourcc, fps or 25.0, size)
                        if not writer.isOpened():
                            raise InvalidInputError(
                                f"cannot write {dst.suffix} video here (OpenCV's FFmpeg writer refused it)"
                            )
                    writer.write(cv2.cvtColor(outcome.image, cv2.COLOR_RGB2BGR))
                bar.update()
    except (
        InvalidInputError,
        AnonymizationError,
    ) as err:  # unreadable, broken off, not writable, motion cue failed
        crashed = f"unreadable: {err}" if not rows else f"after frame {len(rows)}: {err}"
    except cv2.error as err:  # the decoder or the encoder failed mid-stream
        crashed = f"OpenCV failed after frame {len(rows)}: {str(err).strip().splitlines()[-1]}"
    finally:
        if writer is not None:
            writer.release()
        if crashed is not None or sys.exc_info()[0] is not None:
            partial.unlink(missing_ok=True)  # never leave a half-written video behind
    reason = crashed
    if reason is None and failed:
        reason = (
            f"{len(failed)} of {len(rows)} frames failed ({describe_ranges(frame_ranges(failed))}): "
            + str(next(r["reason"] for r in rows if r["status"] == "failed"))
        )
    if reason is None and count_frames(partial) != len(rows):  # written, but does it play whole?
        reason = f"the written video does not decode to its {len(rows)} frames"
    if reason is None:
        os.replace(partial, dst)
    else:
        partial.unlink(missing_ok=True)
    if rows:
        manifest = (dst if reason is None else dst.with_name(PurePosixPath(rel).name)).with_suffix(
            (dst.suffix if reason is None else PurePosixPath(rel).suffix) + ".frames.jsonl"
        )
        io.write_jsonl(manifest, rows)
    print(f"privtrail anonymize: {rel}: {len(rows)} frames, {reason or 'anonymized'}", file=sys.stderr)
    return _row(rel, None if reason else out_rel, reason, counts, rows)


def count_frames(file: Path) -> int:
    """Frames a video decodes to, read to the end (a container's frame count can be wrong)."""
    import cv2

    cap, n = cv2.VideoCapture(str(file)), 0
    try:
        while cap.read()[0]:
            n += 1
    finally:
        cap.release()
    return n


def _row(rel: str, out: str | None, reason: str | None, counts: dict[str, int],
         frames: list[dict[str, Any]]) -> dict[str, Any]:  # fmt: skip
    """The video's manifest row; escalated and masked are frames, not boxes (the frame rows have the boxes)."""
    return {"input": rel, "output": out, "status": "quarantined" if out is None else "anonymized",
            "reason": reason, "detections": dict(sorted(counts.items())), "frames": len(frames),
            "escalated": sum(r["escalated"] > 0 for r in frames),
            "masked": sum(r["masked"] > 0 for r in frames)}  # fmt: skip
