"""Side-by-side gallery for the docs: deface's blur beside privtrail's output for each face method.

Built at build time (`make gallery`) into docs/gallery/ (gitignored, never committed), from photos whose
licence allows it: scikit-image's `astronaut` (NASA, public domain; in the installed package) and the
two basketball photos of Debian's opencv-doc (`tests/real_photos.py` fetches it into a cache). Each photo gets
one sheet, `docs/gallery/<name>.jpg`: deface (`--thresh 0.2`, its default blur) first, then
`privtrail anonymize --targets face --method M` for each method of `check_quality.compare_methods`
(the same detections and verification as the CLI). `docs/gallery/index.html` shows them.

Only anonymized outputs are shown, never the input: a tile the tool did not write (quarantined) is a
grey card saying so. As a second guard, dlib's HOG face detector runs on every tile (privtrail's `replace`
tiles excepted: their faces are k-Same averages of package faces, not the person's) and greys out any
face it still finds, so a face a tool missed is never shown.

    python -m bench.gallery            # ~1-2 min on 2 cores
    python -m bench.gallery --out /tmp/gallery --photos skimage:astronaut
"""

from __future__ import annotations

import argparse
import html
import shutil
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
from numpy.typing import NDArray

from bench.anonymize_throughput import BIN, REPO, run_deface
from flows.folder_anonymize import anonymize_folder
from tasks.auditors import dlib_hog_detector
from tasks.codec import decode_image
from tasks.params import AnonymizeParams, CheckQualityParams
from tasks.types import Detector
from tests.real_photos import RealPhotosUnavailable, default_cache, fetch_opencv_doc, load_image

Image = NDArray[np.uint8]
# messi5.jpg is left out: its stadium crowd's small faces are redacted by neither tool
PHOTOS = ("skimage:astronaut", "data/basketball1.png", "data/basketball2.png")
UNGUARDED = ("privtrail replace",)  # tiles whose faces are synthetic by design (k-Same averages)
TILE_HEIGHT = 260
LABEL_HEIGHT = 26
GREY = (128, 128, 128)


@dataclass(frozen=True)
class Tile:
    """One anonymized output of one photo (None: the tool did not write it) and its label."""

    label: str
    image: Image | None
    note: str = ""


def photo_name(source: str) -> str:
    """A file name for a source: "skimage:astronaut" → "astronaut", "data/messi5.jpg" → "messi5"."""
    return Path(source.removeprefix("skimage:")).stem


def write_inputs(sources: Sequence[str], folder: Path, examples: Path | None) -> list[Path]:
    """Each source as a PNG in `folder` (RGB order as the tools read files); opencv-doc sources are skipped
    when `examples` is None (the package could not be had)."""
    folder.mkdir(parents=True, exist_ok=True)
    files = []
    for source in sources:
        if examples is None and not source.startswith("skimage:"):
            print(f"gallery: {source}: skipped (opencv-doc is not available here)")
            continue
        image = load_image(examples or Path("."), source)
        image = cv2.cvtColor(image, cv2.COLOR_GRAY2BGR) if image.ndim == 2 else image[..., :3]
        files.append(folder / f"{photo_name(source)}.png")
        cv2.imwrite(str(files[-1]), image)
    return files


def _read(file: Path) -> Image | None:
    return decode_image(file.read_bytes(), name=file.name) if file.is_file() else None


def deface_tiles(files: list[Path], tmp: Path) -> dict[str, Tile]:
    """deface with its defaults on every file (`<stem>_anonymized.png`); a note when it is not installed."""
    if not (BIN / "deface").is_file():
        return {f.stem: Tile("deface", None, "deface is not installed") for f in files}
    run_deface(files, tmp / "deface", thresh=0.2, keep=True)
    return {f.stem: Tile("deface", _read(tmp / "deface" / f"{f.stem}_anonymized{f.suffix}"), "") for f in files}


def privtrail_tiles(src: Path, files: list[Path], tmp: Path, method: str) -> dict[str, Tile]:
    """`privtrail anonymize --targets face --method method` on `src`, in process; dp_pixelate's noise from a
    secret OS seed, as the CLI draws it (a known seed would let anyone subtract the noise)."""
    out = tmp / f"privtrail-{method}"
    anonymize_folder(src, out, p=AnonymizeParams(targets=("face",), method=method, methods={}))  # type: ignore[arg-type]
    return {f.stem: Tile(f"privtrail {method}", _read(out / f"{f.stem}.png")) for f in files}


def guarded(tile: Tile, detector: Detector) -> Tile:
    """`tile` with every face `detector` still finds greyed out (and a note), unless the tile is unguarded."""
    if tile.image is None or tile.label in UNGUARDED:
        return tile
    found = detector(tile.image).boxes
    if not len(found):
        return tile
    image = tile.image.copy()
    for x0, y0, x1, y1 in found:
        image[y0:y1, x0:x1] = GREY
    return Tile(tile.label, image, f"{len(found)} face(s) still found: hidden")


def _card(text: str, width: int) -> Image:
    card = np.full((TILE_HEIGHT, width, 3), 200, np.uint8)
    cv2.putText(card, text, (8, TILE_HEIGHT // 2), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (40, 40, 40), 1, cv2.LINE_AA)
    return card


def _tile_image(tile: Tile, width: int) -> Image:
    body = _card(tile.note or "not written (quarantined)", width) if tile.image is None else cv2.resize(
        tile.image, (width, TILE_HEIGHT), interpolation=cv2.INTER_AREA)  # fmt: skip
    bar = np.full((LABEL_HEIGHT, width, 3), 255, np.uint8)
    text = tile.label + (f" ({tile.note})" if tile.note and tile.image is not None else "")
    cv2.putText(bar, text, (6, 18), cv2.FONT_HERSHEY_SIMPLEX, 0.48, (0, 0, 0), 1, cv2.LINE_AA)
    return np.vstack([bar, body])


def sheet(tiles: Sequence[Tile], *, aspect: float) -> Image:
    """The tiles side by side, 4 to a row, each `TILE_HEIGHT` px high with its label above (RGB)."""
    width = max(1, round(TILE_HEIGHT * aspect))
    cells = [_tile_image(t, width) for t in tiles]
    cells += [np.full_like(cells[0], 255)] * (-len(cells) % 4)
    return np.vstack([np.hstack(cells[i : i + 4]) for i in range(0, len(cells), 4)])


def index_html(names: Sequence[str], methods: Sequence[str]) -> str:
    """A page showing every sheet."""
    items = "\n".join(f'<h2>{html.escape(n)}</h2><img src="{html.escape(n)}.jpg" alt="anonymized outputs of '
                      f'{html.escape(n)}" style="max-width:100%">' for n in names)  # fmt: skip
    return (f"<!doctype html><meta charset=utf-8><title>privtrail gallery</title><h1>deface beside privtrail</h1>"
            f"<p>Anonymized outputs only. privtrail methods: {html.escape(', '.join(methods))}. Built by "
            f"<code>make gallery</code>; see docs/gallery.md.</p>\n{items}\n")  # fmt: skip


def build(out: Path, *, sources: Sequence[str], methods: Sequence[str], examples: Path | None,
          detector: Detector) -> list[Path]:  # fmt: skip
    """Write one sheet per photo and index.html into `out` (emptied first); return the sheets."""
    with tempfile.TemporaryDirectory(prefix="privtrail-gallery-") as name:
        tmp = Path(name)
        files = write_inputs(sources, tmp / "src", examples)
        aspects = {f.stem: (lambda im: im.shape[1] / im.shape[0])(cv2.imread(str(f))) for f in files}
        columns: list[dict[str, Tile]] = [deface_tiles(files, tmp)]
        columns += [privtrail_tiles(tmp / "src", files, tmp, m) for m in methods]
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    sheets = []
    for stem, aspect in aspects.items():
        tiles = [guarded(col[stem], detector) for col in columns]
        sheets.append(out / f"{stem}.jpg")
        cv2.imwrite(str(sheets[-1]), cv2.cvtColor(sheet(tiles, aspect=aspect), cv2.COLOR_RGB2BGR))
    (out / "index.html").write_text(index_html(list(aspects), methods))
    return sheets


def _examples() -> Path | None:
    try:
        return fetch_opencv_doc(default_cache())
    except RealPhotosUnavailable as err:  # no apt-get / network here: the package photo alone
        print(f"gallery: opencv-doc unavailable ({err}); scikit-image photos only")
        return None


def main(argv: list[str] | None = None, *, detector: Callable[[], Detector] | None = None) -> None:
    ap = argparse.ArgumentParser(prog="python -m bench.gallery", description=__doc__.splitlines()[0])
    ap.add_argument("--out", default=str(REPO / "docs" / "gallery"), help="output folder (emptied first)")
    ap.add_argument("--photos", default=",".join(PHOTOS), help="comma-separated sources (tests/real_photos.py)")
    ap.add_argument("--methods", default=",".join(CheckQualityParams().compare_methods), help="privtrail methods")
    args = ap.parse_args(argv)
    sources = [s.strip() for s in args.photos.split(",") if s.strip()]
    methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    examples = _examples() if any(not s.startswith("skimage:") for s in sources) else None
    guard = detector() if detector is not None else dlib_hog_detector(upsample=1, upscale=2)
    for path in build(Path(args.out), sources=sources, methods=methods, examples=examples, detector=guard):
        print(f"gallery: wrote {path}")


if __name__ == "__main__":
    main()
