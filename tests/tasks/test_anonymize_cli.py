"""`privtrail anonymize IN_DIR OUT_DIR`: a folder built at run time, in-process and in a subprocess (--jobs)."""

from __future__ import annotations

import fcntl
import io
import json
import os
import pty
import struct
import subprocess
import sys
import termios
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from flows.cli import main
from tasks.anonymize.folder import output_names
from tasks.codec import encode_png
from tasks.ingest.builtin import generate_builtin

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def in_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("in")
    (root / "street" / "deeper").mkdir(parents=True)
    scenes = [
        s.image
        for s in generate_builtin(n_images=3, image_size=256, max_faces=3, face_size=(32, 64), seed=11)
    ]
    (root / "a.png").write_bytes(encode_png(scenes[0]))
    buf = io.BytesIO()
    Image.fromarray(scenes[1]).save(buf, format="JPEG", quality=95)
    (root / "a.jpg").write_bytes(buf.getvalue())  # same stem as a.png: must not overwrite it
    (root / "street" / "deeper" / "b c.png").write_bytes(encode_png(scenes[2]))
    (root / "street" / "empty.png").write_bytes(b"")
    (root / "street" / "notes.txt").write_text("not an image")
    (root / "escape.png").symlink_to("/etc/hostname")
    return root


def _run(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    rc = main(["anonymize", *args])
    out, err = capsys.readouterr()
    return rc, out, err


def test_anonymizes_the_tree_and_reports(
    in_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out_dir = tmp_path / "out"
    rc, out, err = _run([str(in_dir), str(out_dir)], capsys)
    assert rc == 0 and err == ""
    assert out.count("\n") == 1 and "5 inputs: 3 anonymized, 2 quarantined" in out
    written = sorted(p.relative_to(out_dir).as_posix() for p in out_dir.rglob("*.png"))
    assert written == ["a.jpg.png", "a.png", "street/deeper/b c.png"]
    report = json.loads((out_dir / "anonymize_report.json").read_text())
    assert report["counts"]["inputs"] == 5 and report["counts"]["quarantined"] == 2
    assert report["counts"]["detections"]["face"] >= 3
    files = {f["input"]: f for f in report["files"]}
    assert files["escape.png"]["reason"] == "symlink leading outside IN_DIR (not followed)"
    assert (
        files["street/empty.png"]["status"] == "quarantined"
        and "empty file" in files["street/empty.png"]["reason"]
    )
    assert files["a.jpg"]["output"] == "a.jpg.png" and files["a.png"]["output"] == "a.png"
    assert "notes.txt" not in files
    assert all(
        set(f) <= {"input", "output", "status", "reason", "detections", "escalated", "masked"} for f in files.values()
    )  # no text
    assert all(f["masked"] == 0 for f in files.values()) and report["counts"]["masked"] == 0
    manifest = [json.loads(line) for line in (out_dir / "privtrail-manifest.jsonl").read_text().splitlines()]
    assert manifest == report["files"]
    original = np.asarray(Image.open(in_dir / "a.png"))
    anonymized = np.asarray(Image.open(out_dir / "a.png"))
    assert anonymized.shape == original.shape and (anonymized != original).any()
    with Image.open(out_dir / "a.jpg.png") as im:
        assert not im.getexif() and "icc_profile" not in im.info


def test_fail_on_quarantine_and_bad_input(
    in_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rc, _, _ = _run(
        [str(in_dir / "street"), str(tmp_path / "o1"), "--targets", "face", "--fail-on-quarantine"], capsys
    )
    assert rc == 3  # street/empty.png is quarantined
    rc, out, err = _run([str(tmp_path / "missing"), str(tmp_path / "o2")], capsys)
    assert rc == 2 and out == "" and err.count("\n") == 1 and "not a folder" in err
    rc, _, err = _run([str(in_dir), str(tmp_path / "o3"), "--targets", "face,car"], capsys)
    assert rc == 2 and "car" in err and "Traceback" not in err


def test_jobs_in_a_subprocess_match_one_job(in_dir: Path, tmp_path: Path) -> None:
    cmd = [
        sys.executable,
        "-m",
        "flows.cli",
        "anonymize",
        str(in_dir),
        str(tmp_path / "j2"),
        "--targets",
        "face",
        "--method",
        "blur",
        "--jobs",
        "2",
    ]
    done = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr
    assert (
        main(["anonymize", str(in_dir), str(tmp_path / "j1"), "--targets", "face", "--method", "blur"]) == 0
    )
    for rel in ("a.png", "a.jpg.png", "street/deeper/b c.png"):
        np.testing.assert_array_equal(
            np.asarray(Image.open(tmp_path / "j2" / rel)), np.asarray(Image.open(tmp_path / "j1" / rel))
        )


def test_output_names_are_distinct_and_keep_pngs() -> None:
    rels = ["a.png", "a.jpg", "a.jpg.png", "b.jpg", "c.webp", "c.tif", "d/e.JPEG", "f.PNG"]
    names = output_names(rels)
    assert names == {
        "a.png": "a.png",
        "a.jpg": "a.jpg.1.png",
        "a.jpg.png": "a.jpg.png",
        "b.jpg": "b.png",
        "c.tif": "c.tif.png",
        "c.webp": "c.webp.png",
        "d/e.JPEG": "d/e.png",
        "f.PNG": "f.png",
    }
    assert len(set(names.values())) == len(rels)


def test_refuses_out_dir_holding_in_dir(in_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    for out in (in_dir, in_dir.parent):
        rc, out_text, err = _run([str(in_dir), str(out), "--targets", "face"], capsys)
        assert rc == 2 and out_text == "" and "outputs could overwrite inputs" in err
    assert not (in_dir / "privtrail-manifest.jsonl").exists()


def test_progress_bar_only_on_a_terminal(in_dir: Path, tmp_path: Path) -> None:
    cmd = [
        sys.executable,
        "-m",
        "flows.cli",
        "anonymize",
        str(in_dir / "street"),
        str(tmp_path / "o"),
        "--targets",
        "face",
    ]
    leader, follower = pty.openpty()
    fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 100, 0, 0))  # a 100-column terminal
    with subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.PIPE, stderr=follower) as proc:
        os.close(follower)
        stdout, _ = proc.communicate(timeout=300)
    chunks = []
    while True:
        try:
            chunk = os.read(leader, 4096)
        except OSError:  # EIO: the child closed its end
            break
        if not chunk:
            break
        chunks.append(chunk)
    os.close(leader)
    bar = b"".join(chunks).decode(errors="replace")
    assert proc.returncode == 0 and "2/2" in bar and "img" in bar, bar
    assert b"2 inputs: 1 anonymized, 1 quarantined" in stdout  # the summary goes to stdout, the bar to stderr


def test_centerface_only_finds_no_more_faces_than_the_ensemble(
    in_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    counts = {}
    for detector in ("ensemble", "centerface"):
        rc, _, _ = _run([str(in_dir), str(tmp_path / detector), "--targets", "face", "--face-detector", detector], capsys)
        assert rc == 0
        counts[detector] = json.loads((tmp_path / detector / "anonymize_report.json").read_text())["counts"]
    assert counts["centerface"]["inputs"] == counts["ensemble"]["inputs"] == 5
    assert 0 < counts["centerface"]["detections"].get("face", 0) <= counts["ensemble"]["detections"]["face"]
