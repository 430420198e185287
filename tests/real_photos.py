"""Real photos for tests and benchmarks, fetched at test time and never committed.

Images of people must not live in the repository. Debian's `opencv-doc` package ships real photos
(Apache-2.0 AND BSD-3-Clause, see its `copyright` file): `fetch_opencv_doc` downloads and unpacks it
once into a cache folder; `build_labelled_folder` turns it into a 3-label image folder (an ingest
`folder` source); `build_coco` writes the hand-labelled photos of `tests/data/real_photos_gt.json`
(numbers only, no pixels) as a COCO dataset.

dlib's group photos: the PyPI sdist `dlib-19.5.0.tar.gz` (dlib is under the Boost Software License 1.0)
ships `docs/docs/cache/examples/faces/`: nine PASCAL VOC 2011 photos of 2-7 people with 43 hand-drawn
face boxes (37-109 px) in `training.xml` and `testing.xml`, plus `bald_guys.jpg` and `dogs.jpg`
(unlabelled). The photos are Flickr pictures collected by PASCAL VOC (used under Flickr's terms, see
the VOC site) and redistributed by dlib. `fetch_dlib_faces` downloads the sdist from PyPI (sha256 checked
against PyPI's index) and keeps only that folder; `dlib_face_boxes` reads the boxes.

No pytest import here: benchmarks use this module too. Tests turn `RealPhotosUnavailable` into a skip:

    try:
        examples = fetch_opencv_doc(cache)
    except RealPhotosUnavailable as err:
        pytest.skip(str(err))
"""

from __future__ import annotations

import hashlib
import http.client
import json
import os
import shutil
import subprocess
import tarfile
import tempfile
import urllib.error
import urllib.request
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np
from numpy.typing import NDArray

GT_PATH = Path(__file__).resolve().parent / "data" / "real_photos_gt.json"
ENV_VAR = "PRIVTRAIL_OPENCV_DOC"  # an already extracted `.../opencv-doc/examples` folder
EXAMPLES = Path("usr/share/doc/opencv-doc/examples")  # inside the package (and the cache)
CATEGORIES = ("face", "license_plate", "text", "person")  # COCO ids 1..4 in this order
VIDEO = "data/vtest.avi"

# Sources: a path relative to the examples folder, "skimage:<name>", or "data/vtest.avi#frame=<n>".
# Only real photographs: no synthetic chart, chessboard, logo, render or painting.
PEOPLE = (
    "data/messi5.jpg",
    "data/basketball1.png",
    "data/basketball2.png",
    "skimage:astronaut",
    "skimage:camera",
    "text/scenetext01.jpg",
)
STREET = (
    "text/scenetext02.jpg",
    "text/scenetext03.jpg",
    "text/scenetext04.jpg",
    "text/scenetext05.jpg",
    "text/scenetext06.jpg",
    "data/licenseplate_motion.jpg",
    "data/building.jpg",
    "data/leuvenA.jpg",
    "data/leuvenB.jpg",
    "data/aero1.jpg",
    "data/aero3.jpg",
    "data/home.jpg",
    "data/graf1.png",
    "data/graf3.png",
)
OBJECTS = (
    "data/fruits.jpg",
    "data/baboon.jpg",
    "data/apple.jpg",
    "data/orange.jpg",
    "data/butterfly.jpg",
    "data/squirrel_cls.jpg",
    "data/board.jpg",
    "data/box_in_scene.png",
    "data/box.png",
    "data/smarties.png",
    "data/blox.jpg",
    "data/chicky_512.png",
    "data/aloeL.jpg",
    "data/rubberwhale1.png",
    "data/stuff.jpg",
    "data/left.jpg",
)
LABELS = ("people", "street", "objects")


def default_cache() -> Path:
    """Where tests and benchmarks keep the package: `$PRIVTRAIL_DATA_CACHE/opencv-doc`, by default
    ~/.cache/privtrail/opencv-doc."""
    return Path(os.environ.get("PRIVTRAIL_DATA_CACHE", Path.home() / ".cache/privtrail")) / "opencv-doc"


class RealPhotosUnavailable(Exception):
    """Raised when the real photos cannot be had here (no apt-get, no network, a failed unpack)."""


def fetch_opencv_doc(cache: Path) -> Path:
    """Return the `examples` folder of Debian's opencv-doc, downloading it into `cache` if needed.

    Order: `$PRIVTRAIL_OPENCV_DOC` when set and existing; `cache/usr/share/doc/opencv-doc/examples`
    when already there; else `apt-get download opencv-doc` (~96 MB) and `dpkg -x` into `cache`. The
    .deb and the package's HTML manual (~240 MB) are deleted afterwards; the examples (~56 MB) and the
    `copyright` file stay.

    Raises:
        RealPhotosUnavailable: with a one-line reason, when any step fails.
    """
    env = os.environ.get(ENV_VAR)
    if env and Path(env).is_dir():
        return Path(env)
    examples = cache / EXAMPLES
    if examples.is_dir():
        return examples
    for tool in ("apt-get", "dpkg"):
        if shutil.which(tool) is None:
            raise RealPhotosUnavailable(
                f"opencv-doc photos unavailable: no {tool} on PATH (or set ${ENV_VAR})"
            )
    try:
        cache.mkdir(parents=True, exist_ok=True)
        # Unpack into a private folder, then rename: two test processes may race on one cache.
        with tempfile.TemporaryDirectory(dir=cache, prefix=".fetch-") as tmp:
            _run(["apt-get", "download", "opencv-doc"], cwd=Path(tmp))
            debs = sorted(Path(tmp).glob("opencv-doc_*.deb"))
            if not debs:
                raise RealPhotosUnavailable("opencv-doc photos unavailable: apt-get download wrote no .deb")
            _run(["dpkg", "-x", str(debs[0]), str(Path(tmp) / "x")], cwd=Path(tmp))
            shutil.rmtree(Path(tmp) / "x" / EXAMPLES.parent / "opencv4", ignore_errors=True)
            if not (Path(tmp) / "x" / EXAMPLES).is_dir():
                raise RealPhotosUnavailable(
                    f"opencv-doc photos unavailable: {debs[0].name} has no {EXAMPLES}"
                )
            if not examples.is_dir():
                (cache / "usr").mkdir(exist_ok=True)
                os.replace(Path(tmp) / "x" / "usr" / "share", cache / "usr" / "share")
    except OSError as err:
        if examples.is_dir():  # another process won the race
            return examples
        raise RealPhotosUnavailable(f"opencv-doc photos unavailable: {err}") from err
    return examples


def _run(cmd: list[str], *, cwd: Path) -> None:
    try:
        subprocess.run(cmd, cwd=cwd, check=True, capture_output=True, text=True, timeout=300)
    except subprocess.TimeoutExpired as err:
        raise RealPhotosUnavailable(
            f"opencv-doc photos unavailable: `{' '.join(cmd)}` took over 300 s"
        ) from err
    except subprocess.CalledProcessError as err:
        lines = (err.stderr or err.stdout or "").strip().splitlines()
        why = lines[-1] if lines else f"exit status {err.returncode}"
        raise RealPhotosUnavailable(
            f"opencv-doc photos unavailable: `{' '.join(cmd)}` failed: {why}"
        ) from err


def load_image(examples: Path, source: str) -> NDArray[np.uint8]:
    """Return one source as a BGR (H, W, 3) or grey (H, W) uint8 array.

    Args:
        examples: the folder `fetch_opencv_doc` returns.
        source: a path relative to `examples`, "skimage:<name>" or "data/vtest.avi#frame=<n>".
    Raises:
        FileNotFoundError: the file is missing or unreadable, or the video has no such frame.
    """
    if source.startswith("skimage:"):
        from skimage import data as skdata  # imported late: only two sources need it

        rgb = np.asarray(getattr(skdata, source.removeprefix("skimage:"))(), np.uint8)
        return cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR) if rgb.ndim == 3 else rgb
    if "#frame=" in source:
        path, _, index = source.partition("#frame=")
        return _video_frames(examples / path, [int(index)])[int(index)]  # (H, W, 3) BGR
    image = cv2.imread(str(examples / source), cv2.IMREAD_UNCHANGED)
    if image is None:
        raise FileNotFoundError(f"cannot read {examples / source}")
    return image


def _video_frames(path: Path, indices: Sequence[int]) -> dict[int, NDArray[np.uint8]]:
    """Frames `indices` of a video, read in order from the start (no seeking: exact on any backend)."""
    cap = cv2.VideoCapture(str(path))
    wanted, frames, i = set(indices), {}, 0
    try:
        while len(frames) < len(wanted):
            ok, frame = cap.read()
            if not ok:
                raise FileNotFoundError(f"{path}: cannot read frame {i} (wanted {sorted(wanted)})")
            if i in wanted:
                frames[i] = frame
            i += 1
    finally:
        cap.release()
    return frames


def _frame_sources(examples: Path, n_frames: int) -> list[str]:
    cap = cv2.VideoCapture(str(examples / VIDEO))
    count = int(cap.get(cv2.CAP_PROP_FRAME_COUNT))
    cap.release()
    if count <= 0:
        raise FileNotFoundError(f"cannot read {examples / VIDEO}")
    return [f"{VIDEO}#frame={i * count // n_frames}" for i in range(n_frames)]  # evenly spaced, from 0


def _dest_name(source: str) -> str:
    if source.startswith("skimage:"):
        return source.removeprefix("skimage:") + ".png"
    if "#frame=" in source:
        return f"cctv/frame_{_frame_index(source):04d}.jpg"  # nested folder: the label is the first level
    return Path(source).name


def _available(examples: Path, sources: Sequence[str]) -> list[str]:
    return [s for s in sources if s.startswith("skimage:") or (examples / s).is_file()]


def _even_subset(items: list[str], k: int) -> list[str]:
    if k >= len(items):
        return items
    return [items[i] for i in np.linspace(0, len(items) - 1, k).round().astype(int)]


def build_labelled_folder(
    examples: Path, dest: Path, *, n_frames: int = 12, max_images: int | None = None
) -> dict[str, list[str]]:
    """Write real photos as `dest/<label>/<file>` in 3 labels: people, street, objects.

    Files are copied byte for byte, except the skimage photos (written as PNG) and `n_frames` frames
    evenly spaced over vtest.avi (JPEG quality 90, under `people/cctv/`). Files missing from this
    opencv-doc version are left out. Deterministic.

    Args:
        examples: the folder `fetch_opencv_doc` returns.
        dest: output folder, created if needed.
        n_frames: CCTV frames added to `people`.
        max_images: when given, keep an even subset of each label, `max_images // 3` each (the
            remainder to the first labels).
    Returns:
        label -> sorted paths relative to `dest` ("people/cctv/frame_0000.jpg", ...).
    Raises:
        ValueError: `max_images` < 3 or `n_frames` < 0.
    """
    if n_frames < 0 or (max_images is not None and max_images < len(LABELS)):
        raise ValueError(f"need n_frames >= 0 and max_images >= {len(LABELS)}, got {n_frames}, {max_images}")
    frame_sources = _frame_sources(examples, n_frames) if n_frames else []
    plan = {
        "people": _available(examples, PEOPLE) + frame_sources,
        "street": _available(examples, STREET),
        "objects": _available(examples, OBJECTS),
    }
    if max_images is not None:
        share = [max_images // len(LABELS) + (i < max_images % len(LABELS)) for i in range(len(LABELS))]
        plan = {label: _even_subset(plan[label], k) for label, k in zip(LABELS, share, strict=True)}
    frames = _video_frames(examples / VIDEO, [_frame_index(s) for s in plan["people"] if "#frame=" in s])
    out: dict[str, list[str]] = {}
    for label, sources in plan.items():
        for source in sources:
            rel = f"{label}/{_dest_name(source)}"
            _write(examples, source, dest / rel, frames)
            out.setdefault(label, []).append(rel)
    return {label: sorted(paths) for label, paths in out.items()}


def _write(examples: Path, source: str, target: Path, frames: dict[int, NDArray[np.uint8]]) -> None:
    """Copy an opencv-doc file byte for byte; encode a skimage array (PNG) or a frame (JPEG 90)."""
    target.parent.mkdir(parents=True, exist_ok=True)
    if "#frame=" in source:
        ok = cv2.imwrite(str(target), frames[_frame_index(source)], [cv2.IMWRITE_JPEG_QUALITY, 90])
    elif source.startswith("skimage:"):
        ok = cv2.imwrite(str(target), load_image(examples, source))
    else:
        shutil.copyfile(examples / source, target)
        ok = True
    if not ok:
        raise OSError(f"cannot write {target}")


def _frame_index(source: str) -> int:
    return int(source.partition("#frame=")[2])


def load_gt(path: Path = GT_PATH) -> dict:
    """The hand-drawn boxes: {"source", "licence", "images": [{"file", "width", "height", "boxes"}]}."""
    return json.loads(path.read_text())


def _coco_name(source: str) -> str:
    if source.startswith("skimage:"):
        return f"images/{source.removeprefix('skimage:')}.png"
    if "#frame=" in source:
        return f"images/{Path(source.partition('#')[0]).stem}_frame_{_frame_index(source):04d}.png"
    return f"images/{Path(source).name}"


def build_coco(examples: Path, dest: Path) -> Path:
    """Copy the hand-labelled photos into `dest/images/` and write `dest/annotations.json` (COCO).

    opencv-doc files are copied byte for byte; skimage photos and video frames are written as PNG
    (lossless: the pixels the boxes were drawn on). COCO bbox = [x, y, w, h] of the gt [x0, y0, x1, y1].

    Returns:
        The path of `annotations.json`.
    Raises:
        ValueError: an image's size differs from the gt json (another opencv-doc version).
    """
    gt = load_gt()
    cat_id = {name: i + 1 for i, name in enumerate(CATEGORIES)}
    images, annotations = [], []
    for image_id, entry in enumerate(gt["images"], start=1):
        source, name = entry["file"], _coco_name(entry["file"])
        pixels = load_image(examples, source)
        if pixels.shape[:2] != (entry["height"], entry["width"]):
            raise ValueError(
                f"{source}: image is {pixels.shape[1]}x{pixels.shape[0]}, "
                f"gt says {entry['width']}x{entry['height']}"
            )
        (dest / "images").mkdir(parents=True, exist_ok=True)
        if source.startswith("skimage:") or "#frame=" in source:
            if not cv2.imwrite(str(dest / name), pixels):
                raise OSError(f"cannot write {dest / name}")
        else:
            shutil.copyfile(examples / source, dest / name)
        images.append({"id": image_id, "file_name": name, "width": entry["width"], "height": entry["height"]})
        for box in entry["boxes"]:
            x0, y0, x1, y1 = box["bbox"]
            annotations.append(
                {
                    "id": len(annotations) + 1,
                    "image_id": image_id,
                    "category_id": cat_id[box["category"]],
                    "bbox": [x0, y0, x1 - x0, y1 - y0],
                    "area": float((x1 - x0) * (y1 - y0)),
                    "iscrowd": 0,
                }
            )
    coco = {
        "info": {"description": gt["source"], "licence": gt["licence"]},
        "images": images,
        "annotations": annotations,
        "categories": [{"id": i, "name": n} for n, i in cat_id.items()],
    }
    path = dest / "annotations.json"
    path.write_text(json.dumps(coco, indent=1))
    return path


# --- dlib's labelled group photos (PyPI sdist) ------------------------------------------------------

DLIB_ENV_VAR = "PRIVTRAIL_DLIB_FACES"  # an already extracted `.../examples/faces` folder
DLIB_INDEX = "https://pypi.org/simple/dlib/"  # PEP 691 JSON: file names, URLs and sha256 of every file
DLIB_SDIST = "dlib-19.5.0.tar.gz"  # 46.8 MB; the last sdist whose docs ship the examples' photos
DLIB_FACES = "dlib-19.5.0/docs/docs/cache/examples/faces/"  # inside the sdist
# dlib imglab datasets: <image file=...><box top= left= width= height=/></image>
DLIB_XML = ("training.xml", "testing.xml")
_PYPI_JSON = "application/vnd.pypi.simple.v1+json"


def default_dlib_cache() -> Path:
    """Where tests and benchmarks keep dlib's photos: `$PRIVTRAIL_DATA_CACHE/dlib`, by default
    ~/.cache/privtrail/dlib."""
    return Path(os.environ.get("PRIVTRAIL_DATA_CACHE", Path.home() / ".cache/privtrail")) / "dlib"


def fetch_dlib_faces(cache: Path, *, index_url: str = DLIB_INDEX, timeout: float = 60.0) -> Path:
    """Return a folder holding dlib's `examples/faces` (photos + `training.xml`, `testing.xml`).

    Order: `$PRIVTRAIL_DLIB_FACES` when set (it must hold both XML files and every photo they name);
    `cache/faces` when already complete; else the sdist `DLIB_SDIST` is downloaded from the URL that
    PyPI's JSON index `index_url` lists, its sha256 checked against that index, and only the faces folder
    (~1.7 MB) is extracted into `cache/faces`; the tarball is deleted.

    Raises:
        RealPhotosUnavailable: with a one-line reason: a bad `$PRIVTRAIL_DLIB_FACES`, no network, no such
            file on the index, a hash mismatch, or a tarball without the folder.
    """
    env = os.environ.get(DLIB_ENV_VAR)
    if env:
        missing = _missing_faces(Path(env))
        if missing:
            raise RealPhotosUnavailable(
                f"${DLIB_ENV_VAR}={env}: not dlib's examples/faces folder: no {missing}"
            )
        return Path(env)
    faces = cache / "faces"
    if not _missing_faces(faces):
        return faces
    try:
        url, sha256 = _index_entry(index_url, DLIB_SDIST, timeout=timeout)
        cache.mkdir(parents=True, exist_ok=True)
        # Extract into a private folder, then rename: two test processes may race on one cache.
        with tempfile.TemporaryDirectory(dir=cache, prefix=".fetch-") as tmp:
            tarball = Path(tmp) / DLIB_SDIST
            _download(url, tarball, sha256=sha256, timeout=timeout)
            _extract_folder(tarball, Path(tmp) / "faces", prefix=DLIB_FACES)
            tarball.unlink()
            missing = _missing_faces(Path(tmp) / "faces")
            if missing:
                raise RealPhotosUnavailable(
                    f"dlib photos unavailable: {DLIB_SDIST} has no {DLIB_FACES}{missing}"
                )
            os.replace(Path(tmp) / "faces", faces)
    except (
        OSError,
        http.client.HTTPException,
        ValueError,
        KeyError,
        tarfile.TarError,
    ) as err:  # URLError: OSError too
        if not _missing_faces(faces):  # another process won the race
            return faces
        raise RealPhotosUnavailable(f"dlib photos unavailable: {type(err).__name__}: {err}") from err
    return faces


def _missing_faces(folder: Path) -> str | None:
    """The first file of dlib's faces folder missing from `folder` (an XML, or a photo it names), or None."""
    for xml in DLIB_XML:
        if not (folder / xml).is_file():
            return xml
    try:
        names = dlib_face_boxes(folder)
    except (ET.ParseError, ValueError) as err:
        return f"readable XML ({err})"
    return next((name for name in sorted(names) if not (folder / name).is_file()), None)


def _index_entry(index_url: str, filename: str, *, timeout: float) -> tuple[str, str]:
    """(download URL, sha256) of `filename` from a PEP 691 JSON simple index page."""
    request = urllib.request.Request(index_url, headers={"Accept": _PYPI_JSON})
    with urllib.request.urlopen(request, timeout=timeout) as response:
        index = json.load(response)
    for entry in index["files"]:
        if entry["filename"] == filename:
            return entry["url"], entry["hashes"]["sha256"]
    raise ValueError(f"{index_url} lists no {filename}")


def _download(url: str, dest: Path, *, sha256: str, timeout: float) -> None:
    """Stream `url` into `dest`; ValueError when its sha256 is not `sha256`."""
    digest = hashlib.sha256()
    with urllib.request.urlopen(url, timeout=timeout) as response, dest.open("wb") as out:
        while chunk := response.read(1 << 20):
            digest.update(chunk)
            out.write(chunk)
    if digest.hexdigest() != sha256:
        raise ValueError(f"{url}: sha256 {digest.hexdigest()}, the index says {sha256}")


def _extract_folder(tarball: Path, dest: Path, *, prefix: str) -> None:
    """Write the regular files directly under `prefix` in `tarball` to `dest/<name>`: nothing else, no
    subfolder, no link (names are taken as a base name, so no member can write outside `dest`)."""
    dest.mkdir(parents=True, exist_ok=True)
    with tarfile.open(tarball, "r:*") as tar:
        for member in tar:
            name = member.name.removeprefix("./")
            rest = name.removeprefix(prefix)
            if not member.isfile() or rest == name or not rest or "/" in rest or rest in (".", ".."):
                continue
            data = tar.extractfile(member)
            if data is not None:
                (dest / rest).write_bytes(data.read())


def dlib_face_boxes(folder: Path) -> dict[str, NDArray[np.int64]]:
    """The labelled faces of dlib's `training.xml` and `testing.xml` in `folder`.

    dlib's `<box top= left= width= height=>` becomes [left, top, left + width, top + height]; boxes with
    `ignore='1'` are left out. A photo named in both files gets the boxes of both.

    Returns:
        photo file name -> (N, 4) int64 [x0, y0, x1, y1] in pixels (N may be 0).
    Raises:
        FileNotFoundError: an XML file is missing.
        xml.etree.ElementTree.ParseError: an XML file is malformed.
        ValueError: an <image> without `file`, or a box attribute that is missing or not an integer
            (the message names the file and the photo).
    """
    boxes: dict[str, list[list[int]]] = {}
    for xml in DLIB_XML:
        for image in ET.parse(folder / xml).getroot().iter("image"):
            name = image.get("file")
            if not name:
                raise ValueError(f"{folder / xml}: an <image> without a file attribute")
            rows = boxes.setdefault(name, [])
            for box in image.iter("box"):
                if box.get("ignore", "0") == "1":
                    continue
                try:
                    top, left, width, height = (
                        int(box.attrib[k]) for k in ("top", "left", "width", "height")
                    )
                except (KeyError, ValueError) as err:
                    raise ValueError(f"{folder / xml}: {name}: bad box {box.attrib}: {err}") from err
                rows.append([left, top, left + width, top + height])
    return {name: np.array(rows, np.int64).reshape(-1, 4) for name, rows in boxes.items()}
