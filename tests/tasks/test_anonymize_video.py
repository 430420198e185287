"""Video: the tracker carries a missed detection over short gaps; a video is all or nothing (fail closed);
the CLI writes the anonymized video with the same frame count and a per-frame manifest."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from tasks.anonymize.engine import anonymize_image
from tasks.anonymize.tracker import IouTracker
from tasks.anonymize.video import anonymize_frames, describe_ranges, frame_ranges
from tasks.errors import InvalidInputError
from tasks.types import Detections


def _dets(*boxes: tuple[int, int, int, int], category: str = "face") -> Detections:
    b = np.asarray(boxes, np.int64).reshape(-1, 4)
    return Detections(b, np.ones(len(b), np.float32), (category,) * len(b))


def test_a_face_missed_for_a_frame_is_carried_at_its_predicted_place() -> None:
    tracker = IouTracker(max_gap=2, grow=0.0)
    shape = (100, 200)
    assert len(tracker.update(_dets((10, 10, 30, 30)), shape=shape)) == 0
    assert len(tracker.update(_dets((14, 10, 34, 30)), shape=shape)) == 0  # moving right 4 px a frame
    carried = tracker.update(Detections.empty(), shape=shape)
    np.testing.assert_array_equal(carried.boxes, [[18, 10, 38, 30]])
    assert carried.category == ("face",)
    np.testing.assert_array_equal(tracker.update(Detections.empty(), shape=shape).boxes, [[22, 10, 42, 30]])
    assert len(tracker.update(Detections.empty(), shape=shape)) == 0  # max_gap 2: lost after two frames


def test_a_carried_box_grows_and_a_returning_face_continues_its_track() -> None:
    tracker = IouTracker(max_gap=3, grow=0.1)
    shape = (100, 100)
    tracker.update(_dets((40, 40, 60, 60)), shape=shape)
    np.testing.assert_array_equal(tracker.update(Detections.empty(), shape=shape).boxes, [[38, 38, 62, 62]])
    assert len(tracker.update(_dets((41, 40, 61, 60)), shape=shape)) == 0  # matched: nothing carried
    assert len(tracker.tracks) == 1


def test_categories_do_not_continue_each_other_and_bad_options_are_refused() -> None:
    tracker = IouTracker(max_gap=1)
    tracker.update(_dets((0, 0, 10, 10), category="face"), shape=(50, 50))
    carried = tracker.update(_dets((0, 0, 10, 10), category="plate"), shape=(50, 50))
    assert carried.category == ("face",)  # the plate did not continue the face's track
    with pytest.raises(InvalidInputError):
        IouTracker(iou=0)
    with pytest.raises(InvalidInputError):
        tracker.update(Detections.empty(), shape=(0, 10))


def test_frame_ranges() -> None:
    assert frame_ranges([9, 3, 4, 5, 4]) == [(3, 5), (9, 9)]
    assert describe_ranges(frame_ranges([3, 4, 5, 9])) == "frames 3-5, 9"


class _WhiteSquare:
    """A fake face detector that finds the white square (the test's wrapper makes it blind on some frames)."""

    def __call__(self, image: np.ndarray) -> Detections:
        ys, xs = np.nonzero(image[..., 0] == 255)
        if not len(xs):
            return Detections.empty()
        return _dets((int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1))


def _frames(n: int) -> list[np.ndarray]:
    out = []
    for i in range(n):
        f = np.full((64, 96, 3), 90, np.uint8)
        f[20:40, 10 + 3 * i : 30 + 3 * i] = 255
        out.append(f)
    return out


def test_the_tracker_covers_the_frame_the_detector_missed() -> None:
    blind = {2}
    detector = _WhiteSquare()

    def anonymize(frame: np.ndarray, carry, index: int):  # type: ignore[no-untyped-def]
        first_pass = {"n": 0}

        def det(image: np.ndarray) -> Detections:  # blind only on the first pass of frame 2
            first_pass["n"] += 1
            return Detections.empty() if index in blind and first_pass["n"] == 1 else detector(image)

        return anonymize_image(frame, detectors={"face": det}, method="mask", carry=carry, verify="off")

    outcomes = list(anonymize_frames(_frames(5), anonymize=anonymize, tracker=IouTracker(max_gap=2)))
    assert [o.carried for o in outcomes] == [0, 0, 1, 0, 0]
    assert all(o.image is not None and (o.image[..., 0] == 255).sum() == 0 for o in outcomes)  # all masked
    without = list(anonymize_frames(_frames(5), anonymize=anonymize, tracker=IouTracker(max_gap=0)))
    assert (without[2].image[..., 0] == 255).sum() > 0  # no carry-over: the face stays visible in frame 2


def _write_video(path: Path, frames: list[np.ndarray], fourcc: str) -> None:
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*fourcc), 10.0, (frames[0].shape[1], frames[0].shape[0]))
    for f in frames:
        writer.write(cv2.cvtColor(f, cv2.COLOR_RGB2BGR))
    writer.release()


def test_the_cli_writes_the_video_with_every_frame_and_a_manifest(tmp_path: Path) -> None:
    from flows.folder_anonymize import anonymize_folder
    from tasks.params import AnonymizeParams

    src, out = tmp_path / "in", tmp_path / "out"
    src.mkdir()
    _write_video(src / "walk.avi", _frames(6), "MJPG")
    (src / "broken.mp4").write_bytes(b"not a video")
    report = anonymize_folder(src, out, p=AnonymizeParams(targets=("body",)), seed=0)
    rows = {r["input"]: r for r in report["files"]}
    assert rows["walk.avi"]["status"] == "anonymized" and rows["walk.avi"]["frames"] == 6
    assert rows["broken.mp4"]["status"] == "quarantined" and "unreadable" in rows["broken.mp4"]["reason"]
    cap = cv2.VideoCapture(str(out / "walk.avi"))
    n = 0
    while cap.read()[0]:
        n += 1
    assert n == 6
    manifest = [json.loads(line) for line in (out / "walk.avi.frames.jsonl").read_text().splitlines()]
    assert [m["frame"] for m in manifest] == list(range(6)) and {m["status"] for m in manifest} == {"ok"}
    assert not (out / "broken.mp4").exists() and report["counts"]["inputs"] == 2


def test_a_video_with_a_failed_frame_is_quarantined_with_its_frame_range(tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    import flows.video_anonymize as va
    from tasks.anonymize.engine import AnonymizedImage
    from tasks.params import AnonymizeParams

    real = va.anonymize_one

    def failing(frame, *, p, rng, carry=None, threads=1):  # type: ignore[no-untyped-def]
        result = real(frame, p=p, rng=rng, carry=carry, threads=threads)
        if frame[0:8, 0:8].mean() < 40:  # frames 3 and 4 are marked (a black corner) to fail
            return AnonymizedImage(None, result.detections, Detections.empty(), "sensitive content survived: 1 face")
        return result

    monkeypatch.setattr(va, "anonymize_one", failing)
    frames = _frames(6)
    for i in (3, 4):
        frames[i][0:8, 0:8] = 0
    src = tmp_path / "cam.avi"
    _write_video(src, frames, "MJPG")
    dst = tmp_path / "out" / "cam.avi"
    row = va.anonymize_video(src, dst, rel="cam.avi", out_rel="cam.avi", p=AnonymizeParams(targets=("body",)), seed=0)
    assert row["status"] == "quarantined" and "frames 3-4" in row["reason"] and row["output"] is None
    assert not dst.exists() and not list(dst.parent.glob(".*partial*"))  # nothing of it written
    manifest = [json.loads(line) for line in (tmp_path / "out" / "cam.avi.frames.jsonl").read_text().splitlines()]
    assert [m["status"] for m in manifest] == ["ok", "ok", "ok", "failed", "failed", "ok"]


def test_output_names_never_collide() -> None:
    from flows.video_anonymize import video_output_names

    names = video_output_names(["a.mp4", "a.mov", "a.mov.mp4", "b.avi", "c.MKV"])
    assert names["a.mp4"] == "a.mp4" and names["b.avi"] == "b.avi" and names["c.MKV"] == "c.mp4"
    assert len(set(names.values())) == 5, names


def test_a_video_the_writer_cannot_store_whole_is_quarantined(tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    import flows.video_anonymize as va
    from tasks.params import AnonymizeParams

    src = tmp_path / "cam.avi"
    _write_video(src, _frames(4), "MJPG")
    monkeypatch.setattr(va, "count_frames", lambda file: 3)  # the written file plays one frame short
    dst = tmp_path / "out" / "cam.avi"
    row = va.anonymize_video(src, dst, rel="cam.avi", out_rel="cam.avi", p=AnonymizeParams(targets=("body",)), seed=0)
    assert row["status"] == "quarantined" and "does not decode to its 4 frames" in row["reason"]
    assert not dst.exists() and not list(dst.parent.glob(".*partial*"))


def test_ingest_refuses_a_video_that_breaks_off(tmp_path: Path) -> None:
    from flows import io

    whole = tmp_path / "whole.avi"
    _write_video(whole, _frames(20), "MJPG")
    assert [i for i, _ in io.read_video_frames(whole, step=5)] == [0, 5, 10, 15]
    cut = tmp_path / "cut.avi"
    cut.write_bytes(whole.read_bytes()[: whole.stat().st_size // 2])  # the header still declares 20 frames
    with pytest.raises(InvalidInputError, match="breaks off|no frame|cannot be opened"):
        list(io.read_video_frames(cut, step=1))


def test_a_carried_box_keeps_the_last_size_and_moves_with_the_centre() -> None:
    tracker = IouTracker(max_gap=3, grow=0.0)
    shape = (400, 400)
    tracker.update(_dets((100, 100, 140, 140)), shape=shape)
    tracker.update(_dets((96, 96, 164, 164)), shape=shape)  # the box jumped in size (detector jitter), centre +10
    np.testing.assert_array_equal(tracker.update(Detections.empty(), shape=shape).boxes, [[106, 106, 174, 174]])
    np.testing.assert_array_equal(tracker.update(Detections.empty(), shape=shape).boxes, [[116, 116, 184, 184]])
