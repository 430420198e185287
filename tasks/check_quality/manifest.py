"""Facts about an anonymized image file for the Great Expectations suite: PNG metadata chunks."""

from __future__ import annotations

import struct

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
