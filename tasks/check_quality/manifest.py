"""Facts about the anonymized files for the Great Expectations suite, read back from disk: hashes, sizes,
metadata (PNG chunks, EXIF, text), and which files exist, beside what the anonymized manifest claims.

None of it comes from the anonymizer's own records: the suite compares its claims with the files.
"""

from __future__ import annotations

import hashlib
import struct
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from io import BytesIO

import pandas as pd
from PIL import Image, UnidentifiedImageError

from tasks import layout
from tasks.errors import InvalidInputError

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
# Chunks that carry text, EXIF, time stamps or other metadata rather than pixels.
METADATA_CHUNKS: frozenset[str] = frozenset({"tEXt", "zTXt", "iTXt", "eXIf", "tIME", "iCCP", "dSIG"})


def png_chunks(data: bytes, *, name: str = "image") -> tuple[str, ...]:
    """The chunk types of a PNG file, in order.

    Raises:
        InvalidInputError: not a PNG, or a truncated chunk.
    """
    if not data.startswith(PNG_SIGNATURE):
        raise InvalidInputError(f"{name}: not a PNG file")
    pos, out = len(PNG_SIGNATURE), []
    while pos + 8 <= len(data):
        length, kind = struct.unpack(">I4s", data[pos : pos + 8])
        if pos + 12 + length > len(data):
            raise InvalidInputError(f"{name}: truncated {kind!r} chunk")
        out.append(kind.decode("latin-1"))
        pos += 12 + length
    return tuple(out)


def metadata_chunks(data: bytes, *, name: str = "image") -> tuple[str, ...]:
    """The PNG's metadata chunk types (`METADATA_CHUNKS`); empty when its metadata was stripped."""
    return tuple(c for c in png_chunks(data, name=name) if c in METADATA_CHUNKS)


# What anonymize writes into its output folder besides the images (everything else there is an image it wrote).
BOOKKEEPING_FILES: frozenset[str] = layout.BOOKKEEPING
# Pillow `info` keys that carry metadata rather than pixels (EXIF, ICC profile, XMP, comments).
_PIL_METADATA_KEYS: frozenset[str] = frozenset({"exif", "icc_profile", "xmp", "XML:com.adobe.xmp", "comment"})


@dataclass(frozen=True)
class FileFacts:
    """What a written file holds, read back from its bytes (not from any stage's record).

    Attributes:
        sha256: hex digest of the bytes.
        format: Pillow's format name ("PNG"), or "unreadable: <reason>".
        width, height: the decoded header's size in pixels (-1 when unreadable).
        n_metadata: EXIF tags + text entries + metadata chunks/keys (ICC, XMP, time stamps, ...).
    """

    sha256: str
    format: str
    width: int
    height: int
    n_metadata: int


def file_facts(data: bytes, *, name: str) -> FileFacts:
    """Hash `data` and read its size and every kind of metadata with Pillow (and, for a PNG, its chunks)."""
    digest = hashlib.sha256(data).hexdigest()
    try:
        with Image.open(BytesIO(data)) as im:
            width, height, fmt = int(im.size[0]), int(im.size[1]), str(im.format)
            n = len(im.getexif()) + len(getattr(im, "text", {}) or {})
            n += sum(k in _PIL_METADATA_KEYS for k in im.info)
    except (UnidentifiedImageError, OSError, SyntaxError) as err:  # Pillow's ways of refusing a file
        return FileFacts(digest, f"unreadable: {name}: {err}", -1, -1, 0)
    if fmt == "PNG":
        try:
            n += len(metadata_chunks(data, name=name))
        except InvalidInputError as err:
            return FileFacts(digest, f"unreadable: {err}", width, height, n)
    return FileFacts(digest, fmt, width, height, n)


def audit_frame(
    *,
    raw: pd.DataFrame,
    anonymized: pd.DataFrame,
    quarantined: Sequence[str],
    written: Mapping[str, FileFacts],
    residual: Mapping[str, int],
) -> pd.DataFrame:
    """One row per raw image and per file found on disk: the anonymized manifest's claims beside facts
    read independently of the anonymizer, for the Great Expectations suite to compare.

    Args:
        raw: the raw manifest (ingest's): `id`, `path`, `width`, `height`.
        anonymized: the anonymized manifest: `id`, `path`, `sha256`, `width`, `height`.
        quarantined: ids of the images anonymize refused to write.
        written: relative path → `FileFacts` of every image file in the anonymized folder
            (bookkeeping files excluded, see `BOOKKEEPING_FILES`).
        residual: id → faces the check's own auditor (dlib) still finds in the written image.
    Returns:
        Columns id, path, in_raw, processed, quarantined, outcomes (processed + quarantined), written,
        audited (0/1), sha256 / width / height (manifest), file_sha256 / file_width / file_height /
        file_format / n_metadata (read from the file), raw_width / raw_height, n_auditor_residual.
        Counts are 0/1 ints; facts of rows without a file are missing (NaN).
    """
    r = raw[["id", "path", "width", "height"]].rename(columns={"width": "raw_width", "height": "raw_height"})
    a = anonymized[["id", "path", "sha256", "width", "height"]].rename(columns={"path": "manifest_path"})
    frame = r.assign(in_raw=1).merge(a.assign(processed=1), on="id", how="outer")
    frame["path"] = frame["path"].fillna(frame["manifest_path"])
    frame["quarantined"] = frame["id"].isin(set(quarantined)).astype(int)
    files = pd.DataFrame(
        [
            {"path": p, "written": 1} | {f"file_{k}": v for k, v in asdict(f).items()}
            for p, f in written.items()
        ],
        columns=["path", "written", *(f"file_{k}" for k in FileFacts.__dataclass_fields__)],
    ).rename(columns={"file_n_metadata": "n_metadata"})
    frame = frame.merge(files, on="path", how="outer")
    seen = pd.DataFrame({"id": list(residual), "n_auditor_residual": list(residual.values()), "audited": 1})
    frame = frame.merge(seen, on="id", how="left")
    for col in ("in_raw", "processed", "written", "audited"):
        frame[col] = frame[col].fillna(0).astype(int)
    frame["quarantined"] = frame["quarantined"].fillna(0).astype(int)
    frame["outcomes"] = frame["processed"] + frame["quarantined"]
    return frame.drop(columns="manifest_path")
