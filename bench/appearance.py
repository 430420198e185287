"""What a person sees on real group photos: privtrail's face redactions beside deface's blur, on the same faces.

The photos are dlib's nine labelled PASCAL VOC pictures (43 faces; `tests/real_photos.py` fetches them
from PyPI into a cache, never committed), copied byte for byte into a temp folder. deface runs with its
defaults (`--thresh 0.2`, blur), privtrail as `privtrail anonymize IN OUT --preset P --targets T`
(`bench.anonymize_throughput`'s `run_deface` / `run_privtrail`, one process each, not timed).

Changed pixels are measured against what each tool writes when it redacts nothing (`bench.group_photos`):
the input itself for privtrail (PNG), the input re-encoded as deface writes it (JPEG q75) for deface, so
JPEG noise is no change. Per photo and overall (`tasks.check_quality.appearance`):

- **edge**: border edge energy — mean Sobel magnitude of the output on the 2-px ring either side of the
  visible change's boundary (changed by > 8 grey levels, closed, holes filled), over the same on the
  reference, pooled over the photo; 1.0 is seamless, a black box on a light wall ≫ 1, < 1 smoother than the photo.
- **regions / seams / nested**: connected regions of visible change (two faces whose redactions touch make
  one); those whose own border ring has >= 1.5× the reference's edge energy (a visible outline: one outlined
  redaction is diluted in the pooled edge ratio); those with a hard straight step inside (a box within the box, or
  where two overlapping redactions meet).
- **flat**: labelled faces whose output is a solid fill (a mask; `black` when dark), beside **masks**: what
  privtrail's manifest (`privtrail-manifest.jsonl`) counts as masked for that photo (`-`: it has no such field).
- **outside**: share of the pixels outside the labelled faces padded by `anonymize.face.pad` that changed.
- **redacted**: labelled faces with >= 70 % of their box changed.

    python -m bench.appearance                 # ~1-2 min on 2 cores
    python -m bench.appearance --preset fast --targets all
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from bench.anonymize_throughput import TARGETS, run_deface, run_privtrail
from bench.group_photos import REDACTED_SHARE, changed_share, deface_jpeg, lossless
from tasks.check_quality.appearance import Appearance, appearance, flat_boxes, pad_sensitive, pooled
from tasks.codec import decode_image
from tasks.params import AnonymizeParams
from tests.real_photos import default_dlib_cache, dlib_face_boxes, fetch_dlib_faces

Image = NDArray[np.uint8]
MASK_KEYS = ("masked", "masks", "mask", "escalated")  # a manifest row's count of solid masks, first found


@dataclass(frozen=True)
class PhotoScore:
    """One tool's output of one photo (None fields: the tool did not write it)."""

    faces: int
    written: bool
    look: Appearance | None
    redacted: int
    flat: int
    black: int
    masks: int | None  # the manifest's count for the photo; None: no such field (or no manifest)


def score_photo(raw: Image, out: Image | None, boxes: NDArray[np.int64], *, reference: Callable[[Image], Image],
                pad: float, masks: int | None) -> PhotoScore:  # fmt: skip
    """Appearance of one output against the tool's reference, over its labelled face boxes."""
    if out is None:
        return PhotoScore(len(boxes), False, None, 0, 0, 0, masks)
    ref = reference(raw)
    padded = pad_sensitive({"face": boxes}, pads={"face": pad}, shape=raw.shape[:2])
    flat = flat_boxes(out, boxes)
    dark = np.array([float(out[y0:y1, x0:x1].mean()) < 16 for x0, y0, x1, y1 in boxes], bool)
    redacted = sum(changed_share(ref, out, b) >= REDACTED_SHARE for b in boxes)
    return PhotoScore(len(boxes), True, appearance(ref, out, sensitive_boxes=padded), redacted,
                      int(flat.sum()), int((flat & dark).sum()), masks)  # fmt: skip


def manifest_masks(out_dir: Path) -> dict[str, int | None]:
    """Input name → the manifest's mask count (`MASK_KEYS`, the first present), None without one."""
    file = out_dir / "privtrail-manifest.jsonl"
    rows = [json.loads(line) for line in file.read_text().splitlines() if line.strip()] if file.is_file() else []
    return {r["input"]: next((int(r[k]) for k in MASK_KEYS if r.get(k) is not None), None) for r in rows}


def _decode(file: Path) -> Image | None:
    return decode_image(file.read_bytes(), name=file.name) if file.is_file() else None


def run_tools(files: list[Path], tmp: Path, *, preset: str, targets: tuple[str, ...]) -> dict[str, Any]:
    """deface and privtrail once each on `files`: {tool: {photo: output or None}}, and privtrail's masks."""
    run_deface(files, tmp / "deface", thresh=0.2, keep=True)
    extra = () if preset == "none" else ("--preset", preset)
    run_privtrail(files, tmp / "privtrail", targets=targets, jobs=1, extra=extra, keep=True)
    return {
        "deface": {f.name: _decode(tmp / "deface" / f"{f.stem}_anonymized{f.suffix}") for f in files},
        "privtrail": {f.name: _decode(tmp / "privtrail" / "out" / f"{f.stem}.png") for f in files},
        "masks": manifest_masks(tmp / "privtrail" / "out"),
    }


def _cell(score: PhotoScore) -> list[str]:
    if not score.written or score.look is None:
        return ["not written", "", "", "", ""]
    a = score.look
    flat = f"{score.flat}" + (f" ({score.black} black)" if score.black else "")
    return [f"{a.border_edge_energy:.2f}", f"{a.regions}/{a.seams}/{a.nested}", flat,
            f"{a.changed_outside_share:.3f}", f"{score.redacted}/{score.faces}"]  # fmt: skip


def total(scores: Sequence[PhotoScore]) -> PhotoScore:
    """The photos of one tool pooled (pixel-weighted shares and edge ratio; summed counts)."""
    looks = [s.look for s in scores if s.look is not None]
    masks = [s.masks for s in scores if s.masks is not None]
    return PhotoScore(sum(s.faces for s in scores), bool(looks), pooled(looks) if looks else None,
                      sum(s.redacted for s in scores), sum(s.flat for s in scores), sum(s.black for s in scores),
                      sum(masks) if masks else None)  # fmt: skip


COLUMNS = ("edge", "regions/seams/nested", "flat faces", "outside", "redacted")


def table(rows: Mapping[str, Mapping[str, PhotoScore]]) -> str:
    """photo → tool → score as a fixed-width table, privtrail's manifest masks last."""
    head = ["photo", "faces"] + [f"{t} {c}" for t in ("privtrail", "deface") for c in COLUMNS] + ["manifest masks"]
    lines = []
    for photo, tools in rows.items():
        p, d = tools["privtrail"], tools["deface"]
        lines.append([photo, str(p.faces), *_cell(p), *_cell(d), "-" if p.masks is None else str(p.masks)])
    widths = [max(len(str(x)) for x in col) for col in zip(head, *lines, strict=True)]
    fmt = lambda row: "  ".join(f"{c:>{w}}" for c, w in zip(row, widths, strict=True))  # noqa: E731
    return "\n".join([fmt(head), *map(fmt, lines)])


def measure(folder: Path, *, preset: str, targets: tuple[str, ...]) -> dict[str, dict[str, PhotoScore]]:
    """Run both tools on the labelled photos of `folder` and score every photo; the last row is "all"."""
    boxes = dlib_face_boxes(folder)
    pad = AnonymizeParams().face.pad
    with tempfile.TemporaryDirectory(prefix="privtrail-appearance-") as name:
        tmp = Path(name)
        (tmp / "src").mkdir()
        files = [Path(shutil.copy(folder / photo, tmp / "src" / photo)) for photo in sorted(boxes)]
        raws = {f.name: decode_image(f.read_bytes(), name=f.name) for f in files}
        outs = run_tools(files, tmp, preset=preset, targets=targets)
    refs: dict[str, Callable[[Image], Image]] = {"privtrail": lossless, "deface": deface_jpeg}
    rows: dict[str, dict[str, PhotoScore]] = {}
    for photo, raw in raws.items():
        rows[photo] = {tool: score_photo(raw, outs[tool][photo], boxes[photo], reference=ref, pad=pad,
                                         masks=outs["masks"].get(photo) if tool == "privtrail" else None)
                       for tool, ref in refs.items()}  # fmt: skip
    rows["all"] = {tool: total([r[tool] for r in rows.values()]) for tool in refs}
    return rows


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(prog="python -m bench.appearance", description=__doc__.splitlines()[0])
    ap.add_argument("--preset", default="default", help="privtrail --preset (none: no flag)")
    ap.add_argument("--targets", default="faces", choices=sorted(TARGETS), help="faces: face; all: face,plate,text")
    args = ap.parse_args(argv)
    folder = fetch_dlib_faces(default_dlib_cache())
    rows = measure(folder, preset=args.preset, targets=TARGETS[args.targets])
    print(f"appearance on dlib's 9 VOC group photos: privtrail --preset {args.preset} --targets "
          f"{','.join(TARGETS[args.targets])} vs deface (thresh 0.2, blur). edge: border edge energy (1 = no seam); "
          "regions/seams/nested: regions / with a visible outline / with a hard edge inside; outside: changed "
          "share outside the padded labelled faces; privtrail's seed is drawn per run, so a mask can come and go")  # fmt: skip
    print(table(rows))
    print(verdict(rows))


def verdict(rows: Mapping[str, Mapping[str, PhotoScore]]) -> str:
    """Issue 36's face bullets on these photos, one line each (re-detection: `python -m bench.group_photos`)."""
    p, d = rows["all"]["privtrail"], rows["all"]["deface"]
    unexplained = sum(r["privtrail"].black for name, r in rows.items()
                      if name != "all" and r["privtrail"].black and not r["privtrail"].masks)  # fmt: skip
    pe, de = (x.look.border_edge_energy if x.look else float("nan") for x in (p, d))
    return "\n".join([
        f"every face redacted: {p.redacted}/{p.faces}",
        f"black faces the manifest does not count as masked: {unexplained} (black faces: {p.black})",
        f"regions with a hard edge inside (nested): {p.look.nested if p.look else '-'}; with an outline: "
        f"{p.look.seams if p.look else '-'}",
        f"border edge energy {pe:.2f} vs deface's {de:.2f}: {'no higher' if pe <= de else 'HIGHER'}",
    ])  # fmt: skip


if __name__ == "__main__":
    main()
