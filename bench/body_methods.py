"""Body methods on a real CCTV clip (issue 36, part 3): are people still there, and can they still be linked?

opencv-doc's `vtest.avi` (768×576, 10 fps; `tests/real_photos.py` fetches it) with `--targets face,body`:
each measured frame gets the body boxes the stage would redact there (`anonymize.body` detectors on that
frame and the `LOOKBACK` frames before it, the IoU tracker's carried boxes, the MOG2 motion blobs after
every earlier frame: `bench.video_people`'s "all"), and each method (`silhouette`, `inpaint` = remove,
`pixelate`, `blur`, with the stage's options) obfuscates them. The obfuscation alone is measured: no
verification pass, and no face pass (on these frames faces are 8-15 px, inside the body boxes).

1. **Person-detector recall**: the same detector on the raw and the anonymized frame: OpenCV's HOG people
   detector (on a 2× copy: its window is 128 px tall, these people 30-150 px) and BlazePose's person
   detector (`tasks/anonymize/detectors/pose.py`, on 192-px tiles). A hand-labelled person
   (`tests/data/real_photos_gt.json`, the 7 labelled frames) is found when a detection holds the centre of
   their box and is 0.6-2.5× as tall (one detection, one person). Recall ratio = people found on the
   output / people found on the raw frame; target >= 0.80.
2. **Body re-identification across frames**: each labelled person is followed on the RAW frames to frame
   t + Δ by median-flow tracking (Lucas-Kanade on a grid of points in the box's centre, forward-backward
   filtered; Kalal et al. 2010) and kept only when tracking back from t + Δ returns to their labelled box
   (IoU >= `FB_IOU`): identities by construction; how many survive is printed. The attack is a CCTV
   operator's matcher on the output video: the video's own background plate (the median of its measured
   frames), and in each person's box the pixels that differ from it (`--fg-diff`, default 40 of 255, the
   person as the operator sees them, not the floor); HSV colour and uniform-LBP texture histograms of the
   upper and lower half over those pixels; every person of frame t matched to the nearest person of frame
   t + Δ. Rank-1 accuracy against chance (1 / candidates); target: within 10 points of chance. Raw rank-1
   too. Position is left out of the descriptor on purpose: over 1 s where someone stands links them by
   continuity alone (a first version of this matcher, on the whole box with a HOG of the crop, scored 0.92
   at Δ = 10 on a person-free background plate cut at the same boxes). Size and outline cannot be left
   out of a figure, and at Δ = 10 they still link a silhouette (0.59); at Δ = 40 (4 s) much less (0.31,
   chance 0.22).

Run time: ~150 s of CPU (stage boxes on 21 frames with their lookback, the two detectors on 5 × 7 frames),
printed at the end; silhouette and blur dominate the obfuscation time.

    python -m bench.body_methods                      # Δ = 10 and 40 frames (1 s, 4 s)
    python -m bench.body_methods --deltas 10 20 30 60 --methods silhouette inpaint
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import yaml
from numpy.typing import NDArray
from skimage.feature import local_binary_pattern

from tasks.anonymize.detectors import build_detectors
from tasks.anonymize.detectors.body import BodyDetector
from tasks.anonymize.detectors.pose import PoseDetector
from tasks.anonymize.engine import obfuscation_options
from tasks.anonymize.motion import MotionDetector
from tasks.anonymize.obfuscate import obfuscate
from tasks.anonymize.tracker import IouTracker
from tasks.boxes import iou_matrix
from tasks.params import AnonymizeParams
from tasks.types import Detections
from tests.real_photos import GT_PATH, VIDEO, default_cache, fetch_opencv_doc

REPO = Path(__file__).resolve().parents[1]
METHODS = ("silhouette", "inpaint", "pixelate", "blur")
LOOKBACK = 6  # frames the stage's detectors also see before a measured one (the tracker carries up to 5)
FB_IOU = 0.5  # forward-backward tracking must return to the labelled box this well to keep an identity
CROP = (32, 64)  # (w, h) every person crop is resized to for the descriptors
FG_DIFF = 40  # a pixel this far (any channel) from the video's background plate is foreground (default)
MIN_FG = 0.03  # a box with less foreground than this shows no one: a zero descriptor
Frame = NDArray[np.uint8]
Boxes = NDArray[np.int64]


def labelled_people() -> dict[int, Boxes]:
    """Frame index → (N, 4) hand-labelled person boxes of that vtest.avi frame."""
    out = {}
    for e in json.loads(GT_PATH.read_text())["images"]:
        if e["file"].startswith(f"{VIDEO}#frame="):
            boxes = [b["bbox"] for b in e["boxes"] if b["category"] == "person"]
            out[int(e["file"].rpartition("=")[2])] = np.asarray(boxes, np.int64).reshape(-1, 4)
    return dict(sorted(out.items()))


@dataclass(frozen=True)
class Clip:
    """The frames the bench needs: RGB frames (measured ones and their lookback), grey frames for tracking,
    and the motion cue's boxes of every measured frame."""

    rgb: dict[int, Frame]
    grey: dict[int, NDArray[np.uint8]]
    moving: dict[int, Detections]


def read_clip(video: Path, measured: set[int], tracked: set[int], p: AnonymizeParams) -> Clip:
    """Decode `video` up to the last frame needed, running the motion cue on every frame in order."""
    m = p.motion
    motion = MotionDetector(history=m.history, var_threshold=m.var_threshold, min_area=m.min_area,
                            pad=p.body.pad, max_share=m.max_share)  # fmt: skip
    keep = {n - k for n in measured for k in range(LOOKBACK + 1)}
    rgb, grey, moving = {}, {}, {}
    cap = cv2.VideoCapture(str(video))
    try:
        for index in range(max(measured | tracked) + 1):
            ok, bgr = cap.read()
            if not ok:
                raise FileNotFoundError(f"{video}: cannot read frame {index}")
            frame = np.ascontiguousarray(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))
            found = motion(frame)
            if index in keep:
                rgb[index] = frame
            if index in measured:
                moving[index] = found
            if index in tracked:
                grey[index] = cv2.cvtColor(bgr, cv2.COLOR_BGR2GRAY)
    finally:
        cap.release()
    return Clip(rgb, grey, moving)


def stage_boxes(clip: Clip, measured: set[int], p: AnonymizeParams) -> dict[int, Boxes]:
    """The body boxes the stage redacts on each measured frame: detectors + tracker + motion."""
    body = build_detectors(targets=("body",), face=p.face.model_dump(), text=p.text.model_dump(),
                           body=p.body.model_dump())["body"]  # fmt: skip
    out = {}
    for n in sorted(measured):
        tracker = IouTracker()
        for k in range(LOOKBACK, 0, -1):
            tracker.update(body(clip.rgb[n - k]), shape=clip.rgb[n].shape[:2])
        found = body(clip.rgb[n])
        dets = Detections.concat([found, tracker.update(found, shape=clip.rgb[n].shape[:2]), clip.moving[n]])
        out[n] = dets.boxes.astype(np.int64)
    return out


# --- identities: median-flow tracking on the raw frames ------------------------------------------------


def _flow_step(
    g0: NDArray[np.uint8], g1: NDArray[np.uint8], box: NDArray[np.float64]
) -> NDArray[np.float64] | None:
    """One frame of median flow: the box moved by the median motion of a grid of points in its centre
    (inner half of its width, 10-90 % of its height: a static camera's background would pull it to 0),
    scaled by the median change of their pairwise distances; None when too few points track both ways."""
    x0, y0, x1, y1 = box
    xs = np.linspace(x0 + 0.25 * (x1 - x0), x1 - 0.25 * (x1 - x0), 5)
    ys = np.linspace(y0 + 0.1 * (y1 - y0), y1 - 0.1 * (y1 - y0), 10)
    pts = np.stack(np.meshgrid(xs, ys), -1).reshape(-1, 1, 2).astype(np.float32)
    lk = {"winSize": (11, 11), "maxLevel": 2}
    fwd, st1, _ = cv2.calcOpticalFlowPyrLK(g0, g1, pts, None, **lk)  # type: ignore[call-overload]
    back, st2, _ = cv2.calcOpticalFlowPyrLK(g1, g0, fwd, None, **lk)  # type: ignore[call-overload]
    fb = np.linalg.norm((back - pts).reshape(-1, 2), axis=1)
    ok = (st1.ravel() == 1) & (st2.ravel() == 1)
    ok &= fb <= max(float(np.median(fb[ok])) if ok.any() else 0.0, 0.5)
    if ok.sum() < 6:
        return None
    a, b = pts.reshape(-1, 2)[ok], fwd.reshape(-1, 2)[ok]
    shift = np.median(b - a, axis=0)
    i, j = np.triu_indices(len(a), 1)
    da, db = np.linalg.norm(a[i] - a[j], axis=1), np.linalg.norm(b[i] - b[j], axis=1)
    scale = float(np.clip(np.median(db[da > 1] / da[da > 1]), 0.9, 1.1)) if (da > 1).any() else 1.0
    cx, cy = (x0 + x1) / 2 + shift[0], (y0 + y1) / 2 + shift[1]
    hw, hh = (x1 - x0) / 2 * scale, (y1 - y0) / 2 * scale
    return np.array([cx - hw, cy - hh, cx + hw, cy + hh])


def follow(
    grey: dict[int, NDArray[np.uint8]], box: NDArray[np.int64], frames: Sequence[int]
) -> NDArray[np.float64] | None:
    """Track `box` from frames[0] through `frames` in order; its box on the last one, or None when lost."""
    b: NDArray[np.float64] | None = box.astype(np.float64)
    for f0, f1 in zip(frames[:-1], frames[1:], strict=True):
        b = _flow_step(grey[f0], grey[f1], b) if b is not None else None
    return b


def identities(grey: dict[int, NDArray[np.uint8]], people: Boxes, start: int, delta: int,
               shape: tuple[int, int]) -> tuple[Boxes, Boxes, NDArray[np.float64]]:  # fmt: skip
    """(boxes at `start`, their boxes at start + delta, round-trip IoU of every labelled person) for the
    people whose forward-backward track returns to their box (IoU >= FB_IOU) and stays inside the frame."""
    h, w = shape
    frames = list(range(start, start + delta + 1))
    kept_a, kept_b, trips = [], [], []
    for box in people:
        ahead = follow(grey, box, frames)
        back = follow(grey, np.rint(ahead).astype(np.int64), frames[::-1]) if ahead is not None else None
        trip = float(iou_matrix(box[None].astype(np.float64), back[None])[0, 0]) if back is not None else 0.0
        trips.append(trip)
        if ahead is None or trip < FB_IOU:
            continue
        clipped = np.rint(np.clip(ahead, 0, [w, h, w, h])).astype(np.int64)
        if (clipped[2:] - clipped[:2]).prod() >= 0.7 * (ahead[2:] - ahead[:2]).prod():
            kept_a.append(box)
            kept_b.append(clipped)
    return (np.asarray(kept_a, np.int64).reshape(-1, 4), np.asarray(kept_b, np.int64).reshape(-1, 4),
            np.asarray(trips))  # fmt: skip


# --- the attack: a CCTV operator's colour + texture matcher ----------------------------------------------


def plate(frames: Sequence[Frame]) -> Frame:
    """The attacker's background plate of a video: the per-pixel median of its frames (people move on)."""
    return np.asarray(np.median(np.stack(frames), axis=0), np.uint8)


def _hist(
    values: NDArray[np.uint8], mask: NDArray[np.uint8], bins: Sequence[int], ranges: Sequence[int]
) -> NDArray[np.float64]:
    """Square-rooted, L2-normalised histogram of the `mask` pixels (Hellinger: Euclidean distance then
    compares distributions); zeros when the mask is empty."""
    h = (
        cv2.calcHist([values], list(range(len(bins))), mask, list(bins), list(ranges))
        .ravel()
        .astype(np.float64)
    )
    h = np.sqrt(h / max(h.sum(), 1e-9))
    return h / max(float(np.linalg.norm(h)), 1e-9)


def foreground(frame: Frame, background: Frame, box: NDArray[np.int64], *, diff: int) -> NDArray[np.uint8]:
    """(h, w) uint8 0/1: the box's pixels that differ from the plate by more than `diff` in some channel,
    specks opened away: what the operator sees of the person (not the floor they stand on)."""
    x0, y0, x1, y1 = box
    far = np.abs(frame[y0:y1, x0:x1].astype(np.int16) - background[y0:y1, x0:x1].astype(np.int16)).max(-1)
    return cv2.morphologyEx((far > diff).astype(np.uint8), cv2.MORPH_OPEN, np.ones((3, 3), np.uint8))


def describe(frame: Frame, background: Frame, boxes: Boxes, *, diff: int = FG_DIFF) -> NDArray[np.float64]:
    """(N, D) appearance descriptors of the people in `boxes`: HSV colour (8×4×4) and uniform-LBP texture
    (10 codes) histograms of the upper and lower half of each box, over its foreground pixels only, each
    block L2-normalised; a zero descriptor when less than `MIN_FG` of the box is foreground."""
    rows = []
    for box in boxes:
        x0, y0, x1, y1 = box
        crop = cv2.resize(np.ascontiguousarray(frame[y0:y1, x0:x1]), CROP, interpolation=cv2.INTER_AREA)
        fg = cv2.resize(foreground(frame, background, box, diff=diff), CROP, interpolation=cv2.INTER_NEAREST)
        if fg.mean() < MIN_FG:
            rows.append(np.zeros(2 * (8 * 4 * 4 + 10)))
            continue
        hsv = cv2.cvtColor(crop, cv2.COLOR_RGB2HSV)
        lbp = local_binary_pattern(cv2.cvtColor(crop, cv2.COLOR_RGB2GRAY), 8, 1, "uniform").astype(np.uint8)
        blocks = []
        for part in (slice(0, CROP[1] // 2), slice(CROP[1] // 2, None)):
            m = np.ascontiguousarray(fg[part])
            blocks.append(_hist(np.ascontiguousarray(hsv[part]), m, (8, 4, 4), (0, 180, 0, 256, 0, 256)))
            blocks.append(_hist(np.ascontiguousarray(lbp[part]), m, (10,), (0, 10)))
        rows.append(np.concatenate(blocks))
    return np.asarray(rows, np.float64)


def rank1(query: NDArray[np.float64], gallery: NDArray[np.float64]) -> float:
    """Expected rank-1 hits: query i's true match is gallery row i; a tie for nearest (Euclidean) counts
    1 / the number tied (random tie-breaking: identical descriptors are at chance)."""
    d = np.linalg.norm(query[:, None] - gallery[None], axis=2)
    best = np.isclose(d, d.min(axis=1, keepdims=True), rtol=0, atol=1e-9)
    return float(sum(best[i, i] / best[i].sum() for i in range(len(query))))


# --- person-detector recall ---------------------------------------------------------------------------


def found(detections: NDArray[np.float64], people: Boxes) -> int:
    """How many labelled people a detection finds: it holds the centre of their box and is 0.6-2.5× as tall;
    each detection finds one person (the nearest centre first)."""
    det = np.asarray(detections, np.float64).reshape(-1, 4)
    used, n = set(), 0
    for x0, y0, x1, y1 in people:
        cx, cy, h = (x0 + x1) / 2, (y0 + y1) / 2, y1 - y0
        dh = det[:, 3] - det[:, 1]
        ok = (det[:, 0] <= cx) & (cx <= det[:, 2]) & (det[:, 1] <= cy) & (cy <= det[:, 3])
        ok &= (dh >= 0.6 * h) & (dh <= 2.5 * h)
        dist = np.hypot((det[:, 0] + det[:, 2]) / 2 - cx, (det[:, 1] + det[:, 3]) / 2 - cy)
        for j in np.argsort(np.where(ok, dist, np.inf)):
            if ok[j] and j not in used:
                used.add(int(j))
                n += 1
                break
    return n


def person_detectors() -> dict[str, object]:
    """The two detectors run on raw and anonymized frames alike (boxes unpadded)."""
    return {"HOG": BodyDetector(hog=True, cascades=(), upscale=2.0, hit_threshold=0.0, pad=0.0),
            "BlazePose": PoseDetector(tile=192)}  # fmt: skip


def _boxes_of(detector: object, frame: Frame) -> NDArray[np.float64]:
    out = detector(frame)  # type: ignore[operator]
    return np.asarray(out.boxes if isinstance(out, Detections) else out[:, :4], np.float64).reshape(-1, 4)


# --- the run ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Row:
    """One method's numbers (raw: the unanonymized frames)."""

    method: str
    found: dict[str, int]  # detector → labelled people found
    rank1: dict[int, tuple[float, int, float]]  # Δ → (expected hits, queries, chance)
    ms_per_frame: float


def anonymized(
    frame: Frame, boxes: Boxes, method: str, opts: dict[str, dict[str, object]], p: AnonymizeParams
) -> tuple[Frame, float]:
    """(the frame with `boxes` obfuscated by `method`, seconds taken)."""
    if method == "raw":
        return frame, 0.0
    t = time.perf_counter()
    out = obfuscate(
        frame, boxes, method=method, block=p.pixelate_block, blur_strength=p.blur_strength, options=opts
    )
    return out, time.perf_counter() - t


def measure(video: Path, p: AnonymizeParams, methods: Sequence[str], deltas: Sequence[int], *, detect: bool = True,
            diff: int = FG_DIFF) -> tuple[list[Row], dict[int, NDArray[np.float64]], int]:  # fmt: skip
    """Every method's row, the round-trip IoUs of the identity tracks per Δ, and the labelled people."""
    labels = labelled_people()
    anchors = set(labels)
    measured = anchors | {a + d for a in anchors for d in deltas}
    tracked = {a + k for a in anchors for k in range(max(deltas) + 1)}
    clip = read_clip(video, measured, tracked, p)
    boxes = stage_boxes(clip, measured, p)
    shape = next(iter(clip.rgb.values())).shape[:2]
    ids = {d: {a: identities(clip.grey, labels[a], a, d, shape) for a in anchors} for d in deltas}
    detectors = person_detectors() if detect else {}
    opts = obfuscation_options(p)
    rows = []
    for method in ("raw", *methods):
        outs, spent = {}, 0.0
        for n in sorted(measured):
            outs[n], dt = anonymized(clip.rgb[n], boxes[n], method, opts, p)
            spent += dt
        hits = {
            name: sum(found(_boxes_of(det, outs[a]), labels[a]) for a in anchors)
            for name, det in detectors.items()
        }
        background = plate(list(outs.values()))
        r1 = {}
        for d in deltas:
            queries = 0
            correct = chance = 0.0
            for a in anchors:
                qa, qb, _ = ids[d][a]
                if len(qa) < 2:
                    continue
                correct += rank1(describe(outs[a], background, qa, diff=diff),
                                 describe(outs[a + d], background, qb, diff=diff))  # fmt: skip
                queries += len(qa)
                chance += len(qa) / len(qb)
            r1[d] = (correct, queries, chance / max(queries, 1))
        rows.append(Row(method, hits, r1, 1000 * spent / len(measured)))
    trips = {d: np.concatenate([ids[d][a][2] for a in anchors]) for d in deltas}
    return rows, trips, sum(len(v) for v in labels.values())


def table(rows: list[Row], deltas: Sequence[int]) -> list[str]:
    """The printed table: recall ratio per detector, rank-1 vs chance per Δ, ms per frame."""
    raw = rows[0]
    dets = list(raw.found)
    head = (
        ["method"] + [f"{d} recall" for d in dets] + [f"rank-1 Δ{d} (chance)" for d in deltas] + ["ms/frame"]
    )
    lines = [" | ".join(head), " | ".join("---" for _ in head)]
    for r in rows:
        cells = [r.method]
        cells += [f"{r.found[d]}/{raw.found[d]} = {r.found[d] / max(raw.found[d], 1):.2f}" for d in dets]
        cells += [
            f"{c:.1f}/{q} = {c / max(q, 1):.2f} ({ch:.2f})" for c, q, ch in (r.rank1[d] for d in deltas)
        ]
        cells += [f"{r.ms_per_frame:.0f}"]
        lines.append(" | ".join(cells))
    return lines


def load_params(overrides: Sequence[str]) -> AnonymizeParams:
    """The repo's anonymize params with `key=yaml` overrides, targets face,body."""
    params = yaml.safe_load((REPO / "params.yaml").read_text())["anonymize"]
    for assignment in overrides:
        key, _, value = assignment.partition("=")
        params[key] = yaml.safe_load(value)
    return AnonymizeParams(**{**params, "targets": ["face", "body"]})


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(prog="python -m bench.body_methods", description=__doc__.splitlines()[0])
    ap.add_argument("--methods", nargs="+", default=list(METHODS))
    ap.add_argument(
        "--deltas", nargs="+", type=int, default=[10, 40], help="frames between query and gallery"
    )
    ap.add_argument(
        "--no-detect", action="store_true", help="skip the person detectors (re-identification only)"
    )
    ap.add_argument("--fg-diff", type=int, default=FG_DIFF, help="the operator's foreground threshold, 0-255")
    ap.add_argument("--set", action="append", default=[], help="anonymize param override: key=yaml")
    args = ap.parse_args(argv)
    start = time.process_time()
    p = load_params(args.set)
    rows, trips, people = measure(fetch_opencv_doc(default_cache()) / VIDEO, p, args.methods, args.deltas,
                                  detect=not args.no_detect, diff=args.fg_diff)  # fmt: skip
    print(f"vtest.avi, --targets face,body: {people} hand-labelled people on {len(labelled_people())} frames")
    for d in args.deltas:
        t = trips[d]
        print(
            f"  identities over Δ = {d} frames: {(t >= FB_IOU).sum()}/{len(t)} labelled people tracked there and "
            f"back (round-trip IoU >= {FB_IOU}; median {np.median(t):.2f})"
        )
    print()
    print("\n".join(table(rows, args.deltas)))
    print(f"\n{time.process_time() - start:.0f} s of CPU")


if __name__ == "__main__":
    main()
