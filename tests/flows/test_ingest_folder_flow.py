"""The `folder` source end to end: bad files are quarantined with their reason, counts add up,
metadata does not survive, the Great Expectations suite runs."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from PIL import Image, PngImagePlugin

from tests.flows.conftest import copy_workspace, run

pytestmark = pytest.mark.integration


def _user_folder(root: Path) -> int:
    rng = np.random.default_rng(0)
    for label in ("cat", "dog"):
        (root / label).mkdir(parents=True)
        for i in range(6):
            img = Image.fromarray(rng.integers(0, 255, (40, 50, 3), dtype=np.uint8))
            if i % 2:
                info = PngImagePlugin.PngInfo()
                info.add_text("Author", "Jane Doe, +1 555 0100")
                img.save(root / label / f"{i}.png", pnginfo=info)
            else:
                exif = Image.Exif()
                exif[0x010E] = "GPS secret"  # ImageDescription
                img.save(root / label / f"{i}.jpg", exif=exif.tobytes())
    (root / "cat" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\nnot really")
    (root / "dog" / "notes.txt").write_text("hello")
    (root / "stray.png").write_bytes((root / "cat" / "1.png").read_bytes())
    return 15


def _ingest_folder(ws: Path, env: dict[str, str], **ingest: object) -> tuple[pd.DataFrame, list[dict]]:
    """Run the ingest stage on a folder source (quarantine gate 0.5); its manifest and quarantine rows."""
    p = yaml.safe_load((ws / "params.yaml").read_text())
    p["ingest"].update({"source": "folder", **{k: str(v) if isinstance(v, Path) else v for k, v in ingest.items()}})
    p["gates"]["max_quarantine_fraction"] = 0.5
    p["gates_policy_changes"] = {"max_quarantine_fraction": "these tests quarantine broken files on purpose"}
    (ws / "params.yaml").write_text(yaml.safe_dump(p))
    proc = run(["python", "-m", "flows.ingest"], ws, env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    manifest = pd.read_parquet(ws / "data/raw/manifest.parquet")
    return manifest, [json.loads(x) for x in (ws / "data/raw/quarantine.jsonl").read_text().splitlines()]


def test_folder_source_quarantines_and_strips(tmp_path: Path, workspace_env: dict[str, str]) -> None:
    ws = copy_workspace(tmp_path / "ws")
    n_inputs = _user_folder(tmp_path / "photos")
    manifest, quarantine = _ingest_folder(ws, workspace_env, folder=tmp_path / "photos")
    assert len(manifest) == 12 and len(quarantine) == 3 and len(manifest) + len(quarantine) == n_inputs
    reasons = {q["path"]: q["reason"] for q in quarantine}
    assert "broken.png" in reasons["cat/broken.png"] and set(reasons) == {"cat/broken.png", "dog/notes.txt", "stray.png"}
    assert sorted(manifest["label"].unique()) == [0, 1]
    for rel in manifest["path"]:
        out = Image.open(ws / "data/raw" / rel)
        assert out.format == "PNG" and not out.info.get("exif") and "Author" not in out.info
    gx = json.loads((ws / "reports/gx/ingest/results.json").read_text())
    assert gx["success"] and gx["n_expectations"] >= 10
    assert (ws / "reports/gx/ingest/data_docs/index.html").exists()
    metrics = json.loads((ws / "reports/metrics/ingest.json").read_text())
    assert metrics["ingest/n_inputs"] == n_inputs and metrics["ingest/n_quarantined"] == 3


def test_videos_in_a_folder_become_frames_sampled_at_video_fps(tmp_path: Path, workspace_env: dict[str, str]) -> None:
    import cv2

    ws = copy_workspace(tmp_path / "ws")
    photos = tmp_path / "photos"
    (photos / "cam").mkdir(parents=True)
    writer = cv2.VideoWriter(str(photos / "cam" / "walk.avi"), cv2.VideoWriter_fourcc(*"MJPG"), 10.0, (64, 48))
    for i in range(25):  # 2.5 s at 10 fps
        writer.write(np.full((48, 64, 3), 10 * i, np.uint8))
    writer.release()
    (photos / "cam" / "broken.mp4").write_bytes(b"not a video")
    for i in range(4):  # with the video's one block of frames: 5 split groups, so every split gets one
        Image.fromarray(np.full((40, 50, 3), 40 * i, np.uint8)).save(photos / "cam" / f"still{i}.png")
    manifest, quarantine = _ingest_folder(ws, workspace_env, folder=photos, label_from="none", video_fps=2.0)
    frames = sorted(s for s in manifest["source"] if "#frame=" in s)
    assert sorted(int(s.split("=")[1]) for s in frames) == [0, 5, 10, 15, 20], frames  # 2 per second at 10 fps
    assert "cam/still0.png" in set(manifest["source"]) and len(manifest) == 9
    assert manifest.loc[manifest["source"].str.contains("#frame="), "split"].nunique() == 1  # one block: one split
    assert [q["path"] for q in quarantine] == ["cam/broken.mp4"] and "video" in quarantine[0]["reason"]
    metrics = json.loads((ws / "reports/metrics/ingest.json").read_text())
    assert metrics["ingest/n_videos"] == 2 and metrics["ingest/n_video_frames"] == 5
    assert metrics["ingest/n_inputs"] == 6 and metrics["ingest/n_quarantined"] == 1  # files: 4 images, 2 videos
