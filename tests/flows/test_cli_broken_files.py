"""`privtrail anonymize` on a folder of broken files and valid odd ones, all built at run time.

The CLI runs in a subprocess, as a user would run it: every valid image must come out anonymized
(decodable, the size it is shown at, no metadata), every broken one quarantined with a reason that
names its cause, no traceback anywhere, exit code 0, and the manifest must account for every input.
"""

from __future__ import annotations

import io
import json
import os
import struct
import subprocess
import sys
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageCms
from PIL.PngImagePlugin import PngInfo

from tasks.codec import decode_image
from tasks.errors import InvalidInputError

REPO = Path(__file__).resolve().parents[2]

# relpath → (width, height) the image is shown at (after EXIF orientation)
VALID: dict[str, tuple[int, int]] = {
    "rgb.png": (48, 40),
    "deep16.png": (40, 32),
    "rgba.png": (40, 40),
    "palette.png": (36, 30),
    "cmyk.jpg": (48, 40),
    "grey.jpeg": (40, 40),
    "one.png": (1, 1),
    "rotated gps.jpg": (40, 64),  # stored 64x40 with EXIF orientation 6 (rotate 90°)
    "photo.webp": (48, 40),
    "scan.tif": (40, 48),
    "paint.BMP": (32, 24),
    "café straße/日本 photo 1.png": (40, 40),
    "a/b/c/deep.tiff": (40, 40),
    "actually png.jpg": (44, 36),
    "text chunks.png": (40, 40),
    "inside link.png": (48, 40),  # a symlink to rgb.png: inside IN_DIR, so it is followed
}
# relpath → words the quarantine reason must contain
BROKEN: dict[str, str] = {
    "zero.jpg": "empty file",
    "truncated.jpg": "truncated",
    "notes.png": "not a PNG, JPEG",
    "bad crc.png": "bad CRC",
    "bomb.png": "decompression bomb",
    "bomb 100mp.png": "decompression bomb",
    "etc.png": "symlink leading outside IN_DIR",
    "outside.png": "symlink leading outside IN_DIR",
    "fifo.png": "not a regular file",
}


def _pixels(width: int, height: int, channels: int = 3, *, seed: int = 0) -> np.ndarray:
    """A smooth gradient with noise: something a JPEG encoder and the detectors chew on."""
    rng = np.random.default_rng(seed)
    ramp = np.add.outer(np.arange(height) * 3, np.arange(width) * 2)[:, :, None] + np.arange(channels) * 40
    pixels = np.asarray((ramp + rng.integers(0, 30, ramp.shape)) % 256, np.uint8)
    return pixels[:, :, 0] if channels == 1 else pixels


def _save(image: Image.Image, fmt: str, **kwargs: object) -> bytes:
    buf = io.BytesIO()
    image.save(buf, format=fmt, **kwargs)
    return buf.getvalue()


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def _png_header_only(width: int, height: int) -> bytes:
    """A PNG whose header announces width × height grey pixels, with a tiny IDAT: ~60 bytes on disk."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    idat = zlib.compress(b"\x00" * 64)
    return b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", ihdr) + _chunk(b"IDAT", idat) + _chunk(b"IEND", b"")


def _bad_crc_png() -> bytes:
    """A valid PNG whose IDAT CRC is flipped (the pixels themselves still inflate)."""
    data = bytearray(_save(Image.fromarray(_pixels(40, 40)), "PNG"))
    at = data.index(b"IDAT")
    length = struct.unpack(">I", data[at - 4 : at])[0]
    data[at + 4 + length] ^= 0xFF
    return bytes(data)


def _rotated_gps_jpeg() -> bytes:
    exif = Image.Exif()
    exif[0x0112] = 6  # Orientation: rotate 90° clockwise to display
    exif[0x010F] = "CameraMaker"
    exif[0x8825] = {1: "N", 2: (48.0, 51.0, 24.0), 3: "E", 4: (2.0, 21.0, 3.0)}  # GPSInfo
    icc = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    return _save(Image.fromarray(_pixels(64, 40)), "JPEG", quality=90, exif=exif, icc_profile=icc)


def _write(root: Path, rel: str, data: bytes) -> None:
    (root / rel).parent.mkdir(parents=True, exist_ok=True)
    (root / rel).write_bytes(data)


def _valid_files() -> dict[str, bytes]:
    info = PngInfo()
    info.add_text("Author", "Jane Doe, +33 6 12 34 56 78")
    info.add_itxt("Comment", "lat 48.85 lon 2.35")
    return {
        "rgb.png": _save(Image.fromarray(_pixels(48, 40)), "PNG"),
        "deep16.png": _save(Image.fromarray(_pixels(40, 32, 1).astype(np.uint16) * 257), "PNG"),
        "rgba.png": _save(Image.fromarray(_pixels(40, 40, 4)), "PNG"),
        "palette.png": _save(Image.fromarray(_pixels(36, 30)).convert("P"), "PNG"),
        "cmyk.jpg": _save(Image.fromarray(_pixels(48, 40, 4), mode="CMYK"), "JPEG"),
        "grey.jpeg": _save(Image.fromarray(_pixels(40, 40, 1)), "JPEG"),
        "one.png": _save(Image.fromarray(_pixels(1, 1)), "PNG"),
        "rotated gps.jpg": _rotated_gps_jpeg(),
        "photo.webp": _save(Image.fromarray(_pixels(48, 40)), "WEBP", quality=90),
        "scan.tif": _save(Image.fromarray(_pixels(40, 48)), "TIFF", compression="tiff_lzw"),
        "paint.BMP": _save(Image.fromarray(_pixels(32, 24)), "BMP"),
        "café straße/日本 photo 1.png": _save(Image.fromarray(_pixels(40, 40, seed=1)), "PNG"),
        "a/b/c/deep.tiff": _save(Image.fromarray(_pixels(40, 40, seed=2)), "TIFF"),
        "actually png.jpg": _save(Image.fromarray(_pixels(44, 36)), "PNG"),
        "text chunks.png": _save(Image.fromarray(_pixels(40, 40, seed=3)), "PNG", pnginfo=info),
    }


@pytest.fixture(scope="module")
def tree(tmp_path_factory: pytest.TempPathFactory) -> Path:
    base = tmp_path_factory.mktemp("broken")
    root = base / "in"
    root.mkdir()
    for rel, data in _valid_files().items():
        _write(root, rel, data)
    (root / "inside link.png").symlink_to("rgb.png")
    jpeg = _save(Image.fromarray(_pixels(64, 48)), "JPEG", quality=90)
    for rel, data in {
        "zero.jpg": b"",
        "truncated.jpg": jpeg[: len(jpeg) // 2],
        "notes.png": b"Dear diary,\nthis is text, not a picture.\n",
        "bad crc.png": _bad_crc_png(),
        "bomb.png": _png_header_only(40000, 40000),
        "bomb 100mp.png": _png_header_only(10000, 10000),  # over Pillow's limit, under its error level
    }.items():
        _write(root, rel, data)
    outside = base / "outside"
    outside.mkdir()
    (outside / "secret.png").write_bytes(_save(Image.fromarray(_pixels(40, 40, seed=9)), "PNG"))
    (root / "etc").symlink_to("/etc")  # a folder link: never walked into, not image-named
    (root / "etc.png").symlink_to("/etc")
    (root / "outside.png").symlink_to(outside / "secret.png")
    os.mkfifo(root / "fifo.png")  # reading it would block forever
    (root / "readme.txt").write_text("not image-named: ignored")
    return root


def _run_cli(in_dir: Path, out_dir: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    cmd = [sys.executable, "-m", "flows.cli", "anonymize", str(in_dir), str(out_dir), *extra]
    return subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=300, check=False)


def _assert_metadata_free(file: Path) -> None:
    with Image.open(file) as im:
        assert im.format == "PNG"
        assert not im.getexif(), file
        assert not set(im.info) & {"exif", "icc_profile", "xmp", "XML:com.adobe.xmp", "Author", "Comment"}, (
            im.info
        )
        assert not getattr(im, "text", {}), file
    data = file.read_bytes()
    for chunk in (b"eXIf", b"iCCP", b"tEXt", b"zTXt", b"iTXt"):
        assert chunk not in data, (file, chunk)


def _check_run(tree: Path, out: Path, done: subprocess.CompletedProcess[str]) -> None:
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stdout + done.stderr, done.stderr
    manifest = [json.loads(line) for line in (out / "privtrail-manifest.jsonl").read_text().splitlines()]
    rows = {r["input"]: r for r in manifest}
    assert len(rows) == len(manifest) == len(VALID) + len(BROKEN)
    assert set(rows) == set(VALID) | set(BROKEN)  # etc/ (a folder link) and readme.txt are not image-named
    assert all(list(r) == ["detections", "escalated", "input", "masked", "output", "reason", "status"] for r in manifest)
    for rel, (width, height) in VALID.items():
        row = rows[rel]
        assert row["status"] == "anonymized" and row["reason"] is None, row
        assert row["output"].endswith(".png") and (out / row["output"]).is_file()
        with Image.open(out / row["output"]) as im:
            assert im.size == (width, height) and im.mode == "RGB", (rel, im.size, im.mode)
        _assert_metadata_free(out / row["output"])
    for rel, cause in BROKEN.items():
        row = rows[rel]
        assert row["status"] == "quarantined" and row["output"] is None, row
        assert cause in row["reason"] and str(tree) not in row["reason"], row
    written = {p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file()}
    assert written == {rows[r]["output"] for r in VALID} | {
        "privtrail-manifest.jsonl",
        "anonymize_report.json",
    }
    summary = f"{len(VALID) + len(BROKEN)} inputs: {len(VALID)} anonymized, {len(BROKEN)} quarantined"
    assert summary in done.stdout
    report = json.loads((out / "anonymize_report.json").read_text())
    assert report["counts"]["inputs"] == report["counts"]["anonymized"] + report["counts"]["quarantined"]
    assert sum(sum(r["detections"].values()) for r in manifest) == sum(
        report["counts"]["detections"].values()
    )


def test_faces_only_anonymizes_valid_and_quarantines_broken(tree: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    done = _run_cli(tree, out, "--targets", "face", "--jobs", "2")
    _check_run(tree, out, done)
    rotated = np.asarray(Image.open(out / "rotated gps.png"))
    stored = np.asarray(Image.open(io.BytesIO(_rotated_gps_jpeg())))
    # orientation 6: the shown image is the stored one turned 90° clockwise
    assert np.abs(rotated.astype(int) - np.rot90(stored, k=-1).astype(int)).mean() < 2
    assert not (tree / "etc").resolve().is_relative_to(tree) and not (out / "etc").exists()


def test_default_targets_and_fail_on_quarantine(tree: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    _check_run(tree, out, _run_cli(tree, out))
    done = _run_cli(tree, tmp_path / "strict", "--targets", "face", "--fail-on-quarantine")
    assert done.returncode == 3 and "Traceback" not in done.stderr


def test_mutated_files_decode_or_raise_invalid_input() -> None:
    """Seeded byte flips and cuts of every valid file: `decode_image` returns RGB pixels or raises
    InvalidInputError naming the file — never another exception (which the CLI would print as a traceback)."""
    rng = np.random.default_rng(0)
    outcomes = {"decoded": 0, "refused": 0}
    for rel, data in _valid_files().items():
        for _ in range(40):
            mutated = bytearray(data)
            for at in rng.integers(0, len(mutated), rng.integers(1, 6)):
                mutated[at] = int(rng.integers(0, 256))
            cut = bytes(mutated[: rng.integers(1, len(mutated))] if rng.random() < 0.3 else mutated)
            try:
                pixels = decode_image(cut, name=rel, min_side=1)
            except InvalidInputError as err:
                assert str(err).startswith(f"{rel}: ")
                outcomes["refused"] += 1
            else:
                assert pixels.dtype == np.uint8 and pixels.ndim == 3 and pixels.shape[2] == 3
                outcomes["decoded"] += 1
    assert outcomes["decoded"] > 50 and outcomes["refused"] > 50, outcomes
