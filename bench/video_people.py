"""People on a real CCTV clip (issue 17): what share of the hand-labelled people would be redacted?

opencv-doc's `vtest.avi` (795 frames, 768×576, 10 fps; `tests/real_photos.py` fetches it) and the people
boxed by hand in `tests/data/real_photos_gt.json` (`data/vtest.avi#frame=N`). A person counts as covered
when >= 50 % of their box lies in the frame's redaction boxes, under four cue sets:

- **detectors**: the stage's body detector (`anonymize.body`: HOG + Haar) on that frame alone;
- **+ tracker**: the detector on the 6 frames before too, the IoU tracker carrying what it missed;
- **motion**: the MOG2 foreground blobs (`anonymize.motion`) after every frame up to that one;
- **all** (what `privtrail anonymize --targets body` redacts): detectors + tracker + motion.

`% px` is the share of the frame inside the boxes (over-redaction). Frames 100 and 400 were labelled
first and the motion options chosen on them; the other frames were labelled afterwards and are held out.

    python -m bench.video_people           # ~1 min on 2 cores
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import cv2
import numpy as np
import yaml

from tasks.anonymize.detectors import build_detectors
from tasks.anonymize.motion import MotionDetector
from tasks.anonymize.tracker import IouTracker
from tasks.params import AnonymizeParams
from tasks.types import Detections
from tests.real_photos import GT_PATH, VIDEO, default_cache, fetch_opencv_doc

REPO = Path(__file__).resolve().parents[1]
TUNED = (100, 400)  # the frames the motion options were chosen on
LOOKBACK = 6  # frames the detector also runs on before a labelled one (the tracker carries up to 5)
CUES = ("detectors", "+ tracker", "motion", "all")


def labelled_people() -> dict[int, list[list[int]]]:
    """Frame index → the hand-labelled person boxes of that vtest.avi frame."""
    out = {}
    for e in json.loads(GT_PATH.read_text())["images"]:
        if e["file"].startswith(f"{VIDEO}#frame="):
            out[int(e["file"].rpartition("=")[2])] = [b["bbox"] for b in e["boxes"] if b["category"] == "person"]
    return dict(sorted(out.items()))


def covered(boxes: np.ndarray, people: list[list[int]], shape: tuple[int, int]) -> tuple[list[float], float]:
    """(share of each person's box inside the union of `boxes`, share of the frame inside it)."""
    mask = np.zeros(shape, bool)
    for x0, y0, x1, y1 in np.asarray(boxes, np.int64).reshape(-1, 4):
        mask[y0:y1, x0:x1] = True
    return [float(mask[y0:y1, x0:x1].mean()) for x0, y0, x1, y1 in people], float(mask.mean())


def measure(video: Path, p: AnonymizeParams) -> list[dict[str, object]]:
    """One row per labelled person and cue set: frame, person index, cue, share covered, frame % px."""
    labels = labelled_people()
    body = build_detectors(targets=("body",), face=p.face.model_dump(), text=p.text.model_dump(),
                           body=p.body.model_dump())["body"]
    m = p.motion
    motion = MotionDetector(history=m.history, var_threshold=m.var_threshold, min_area=m.min_area,
                            pad=p.body.pad, max_share=m.max_share)  # fmt: skip
    wanted = {n - k for n in labels for k in range(LOOKBACK + 1)}
    tracker, last, rows = IouTracker(), -2, []
    cap = cv2.VideoCapture(str(video))
    try:
        for index in range(max(labels) + 1):
            ok, bgr = cap.read()
            if not ok:
                raise FileNotFoundError(f"{video}: cannot read frame {index}")
            frame = np.ascontiguousarray(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))
            moving = motion(frame)
            if index not in wanted:
                continue
            if index != last + 1:
                tracker = IouTracker()  # a fresh track history before each labelled frame
            last = index
            found = body(frame)
            carried = tracker.update(found, shape=frame.shape[:2])
            if index not in labels:
                continue
            cues = {"detectors": found, "+ tracker": Detections.concat([found, carried]), "motion": moving,
                    "all": Detections.concat([found, carried, moving])}  # fmt: skip
            for cue, dets in cues.items():
                shares, px = covered(dets.boxes, labels[index], frame.shape[:2])
                rows += [{"frame": index, "person": i, "cue": cue, "share": s, "px": px} for i, s in enumerate(shares)]
    finally:
        cap.release()
    return rows


def summary(rows: list[dict[str, object]], frames: set[int]) -> dict[str, tuple[int, int, float]]:
    """cue → (people covered, people labelled, mean % px of those frames)."""
    out = {}
    for cue in CUES:
        sel = [r for r in rows if r["cue"] == cue and r["frame"] in frames]
        px = {r["frame"]: r["px"] for r in sel}
        out[cue] = (sum(float(r["share"]) >= 0.5 for r in sel), len(sel), 100 * float(np.mean(list(px.values()))))  # type: ignore[arg-type]
    return out


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(prog="python -m bench.video_people", description=__doc__.splitlines()[0])
    ap.add_argument("--set", action="append", default=[], help="anonymize param override: key=yaml")
    args = ap.parse_args(argv)
    params = yaml.safe_load((REPO / "params.yaml").read_text())["anonymize"]
    for assignment in args.set:
        key, _, value = assignment.partition("=")
        params[key] = yaml.safe_load(value)
    p = AnonymizeParams(**{**params, "targets": ["body"]})
    rows = measure(fetch_opencv_doc(default_cache()) / VIDEO, p)
    frames = sorted({int(r["frame"]) for r in rows})  # type: ignore[call-overload]
    print(f"vtest.avi: people covered (>= 50 % of the box in redaction boxes), {len(frames)} labelled frames")
    for frame in frames:
        s = summary(rows, {frame})
        print(f"  frame {frame:3d}{' (tuned on)' if frame in TUNED else ''}: "
              + "; ".join(f"{cue} {c}/{n}, {px:.1f} % px" for cue, (c, n, px) in s.items()))  # fmt: skip
    for name, sel in (("tuned on", set(TUNED) & set(frames)), ("held out", set(frames) - set(TUNED)),
                      ("all", set(frames))):  # fmt: skip
        s = summary(rows, sel)
        print(f"  {name:8s}: " + "; ".join(f"{cue} {c}/{n} = {c / max(n, 1):.3f}, {px:.1f} % px"
                                          for cue, (c, n, px) in s.items()))  # fmt: skip


if __name__ == "__main__":
    main()
