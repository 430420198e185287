"""The image codec every stage uses: decode bytes as a viewer shows them, downscale, encode metadata-free PNG.

No file I/O here: the flows read the bytes. Pixels are decoded the way a viewer shows them (EXIF
orientation applied, alpha composited on white) and re-encoded as a metadata-free PNG. Which files make
up a collection, and their labels, is `tasks.ingest.collection`.
"""

from __future__ import annotations

import io
import struct
import warnings
import zlib

import numpy as np
from numpy.typing import NDArray
from PIL import Image, ImageOps, UnidentifiedImageError

from tasks.errors import InvalidInputError
from tasks.types import check_image

SUPPORTED_EXTENSIONS: frozenset[str] = frozenset({".png", ".jpg", ".jpeg", ".webp", ".bmp", ".tif", ".tiff"})
# Videos, decoded with OpenCV's FFmpeg backend: `privtrail anonymize` takes them whole, ingest samples frames
VIDEO_EXTENSIONS: frozenset[str] = frozenset({".mp4", ".avi", ".mov", ".mkv", ".m4v"})


def frame_step(fps: float, video_fps: float) -> int:
    """Keep every n-th frame of a video at `fps` to sample about `video_fps` frames per second (n >= 1);
    an unknown rate (0 or NaN, as some containers report) counts as 25 fps."""
    rate = fps if fps and fps == fps and fps > 0 else 25.0
    return max(1, round(rate / video_fps))


_FORMATS = ("BMP", "JPEG", "PNG", "TIFF", "WEBP")  # JPEG also opens MPO (multi-picture) camera files
MIN_SIDE = 8
# Pillow's own default limit (Image.MAX_IMAGE_PIXELS): about 89 megapixels, ~268 MB as RGB.
MAX_PIXELS = 89_478_485
_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def decode_image(
    data: bytes, *, name: str, min_side: int = MIN_SIDE, max_pixels: int = MAX_PIXELS
) -> NDArray[np.uint8]:
    """Decode image bytes to the pixels a viewer shows: EXIF orientation applied, RGB.

    Alpha is composited onto white, palettes are expanded, 16-bit and float images are scaled to
    8 bits. Only the first frame of a multi-frame file is read. The header is checked before any
    pixel is decoded: a PNG with a bad chunk CRC and an image of more than `max_pixels` pixels (a
    decompression bomb: a few bytes on disk, gigabytes once decoded) are refused.

    Args:
        data: the encoded file (PNG, JPEG, WebP, BMP or TIFF).
        name: the file's name, used in error messages.
        min_side: smallest accepted width and height in pixels (after orientation), >= 1.
        max_pixels: largest accepted width × height (Pillow refuses over twice its
            `Image.MAX_IMAGE_PIXELS` whatever this says).
    Returns:
        (H, W, 3) uint8 RGB.
    Raises:
        InvalidInputError: empty, corrupt, truncated or unsupported data, too many pixels, or a
            side under `min_side` px.
    """
    if not data:
        raise InvalidInputError(f"{name}: empty file")
    if data.startswith(_PNG_SIGNATURE):
        _check_png_chunks(data, name=name)
    try:
        with warnings.catch_warnings():
            # `_check_pixel_count` decides; Pillow's own hard stop (twice its limit) stays as a ceiling.
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            # "Corrupt EXIF data", "Truncated File Read" in a tag: the pixels still decode or raise below.
            warnings.filterwarnings("ignore", category=UserWarning, module=r"PIL\.")
            # `formats` stops Pillow from even trying other decoders (EPS would call Ghostscript).
            with Image.open(io.BytesIO(data), formats=_FORMATS) as opened:
                _check_pixel_count(opened.size, name=name, max_pixels=max_pixels)
                opened.load()  # decode now: truncated or corrupt data raises here, not later
                image = ImageOps.exif_transpose(opened)
    except InvalidInputError:
        raise
    except UnidentifiedImageError as err:
        raise InvalidInputError(f"{name}: not a PNG, JPEG, WebP, BMP or TIFF image") from err
    except Image.DecompressionBombError as err:
        raise InvalidInputError(f"{name}: decompression bomb refused before decoding ({err})") from err
    except (OSError, SyntaxError, ValueError, EOFError, struct.error) as err:
        raise InvalidInputError(f"{name}: corrupt or truncated image data ({err})") from err
    if min(image.size) < min_side:
        raise InvalidInputError(
            f"{name}: image too small ({image.width}x{image.height}), minimum {min_side} px"
        )
    try:
        return _to_rgb(image)
    except (OSError, ValueError) as err:
        raise InvalidInputError(f"{name}: unsupported pixel format {image.mode!r} ({err})") from err


def _check_pixel_count(size: tuple[int, int], *, name: str, max_pixels: int) -> None:
    """Refuse a header announcing more than `max_pixels` pixels, before anything is decoded."""
    width, height = size
    if width * height > max_pixels:
        raise InvalidInputError(
            f"{name}: decompression bomb refused before decoding: {width}x{height} = "
            f"{width * height} pixels, limit {max_pixels}"
        )


def _check_png_chunks(data: bytes, *, name: str) -> None:
    """Walk a PNG's chunks up to IEND and check each CRC (Pillow checks none after the header).

    Raises:
        InvalidInputError: a chunk whose CRC does not match (a chunk cut short is left to the decoder).
    """
    pos = len(_PNG_SIGNATURE)
    while pos + 12 <= len(data):
        length, kind = struct.unpack(">I4s", data[pos : pos + 8])
        end = pos + 12 + length
        if end > len(data):
            return  # truncated: Pillow reports it with the decoder's own words
        crc = struct.unpack(">I", data[end - 4 : end])[0]
        if zlib.crc32(data[pos + 4 : end - 4]) != crc:
            label = kind.decode("latin-1", "replace")
            raise InvalidInputError(f"{name}: corrupt PNG: bad CRC in the {label!r} chunk at byte {pos}")
        if kind == b"IEND":
            return
        pos = end


def _to_rgb(image: Image.Image) -> NDArray[np.uint8]:
    """Return `image` as (H, W, 3) uint8 RGB: alpha composited on white, high bit depths scaled."""
    if image.mode in ("I", "I;16", "I;16B", "I;16L", "I;16N", "F"):
        values = np.asarray(image, dtype=np.float64)
        # Integer modes hold 16-bit samples; float TIFFs are taken as [0, 1] when they fit, else [0, 255].
        top = 65535.0 if image.mode != "F" else 1.0 if values.max(initial=0) <= 1.0 else 255.0
        gray = np.clip(np.round(values / top * 255), 0, 255).astype(np.uint8)
        return np.ascontiguousarray(np.repeat(gray[:, :, None], 3, axis=2))
    if image.mode in ("RGBA", "LA", "PA", "RGBa", "La") or "transparency" in image.info:
        rgba = image.convert("RGBA")
        image = Image.alpha_composite(Image.new("RGBA", rgba.size, (255, 255, 255, 255)), rgba)
    return np.ascontiguousarray(np.asarray(image.convert("RGB"), dtype=np.uint8))


def downscale(
    image: NDArray[np.uint8], *, max_side: int | None, name: str
) -> tuple[NDArray[np.uint8], float]:
    """Shrink `image` so its longer side is at most `max_side` (aspect kept, cv2 INTER_AREA).

    Args:
        image: (H, W, 3) uint8 RGB.
        max_side: the longest side allowed; None: no limit.
        name: the file, for error messages.
    Returns:
        (the image, the scale applied: 1.0 when it was not resized).
    """
    import cv2

    h, w = check_image(image, name=name).shape[:2]
    if max_side is None or max(h, w) <= max_side:
        return image, 1.0
    scale = max_side / max(h, w)
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    return np.ascontiguousarray(cv2.resize(image, size, interpolation=cv2.INTER_AREA)), scale


def encode_png(image: NDArray[np.uint8]) -> bytes:
    """Return `image` as a lossless PNG built from its pixels only (no EXIF, ICC or text chunks).

    Args:
        image: (H, W, 3) uint8 RGB.
    Raises:
        InvalidInputError: not an (H, W, 3) uint8 array.
    """
    pixels = np.ascontiguousarray(check_image(image, name="encode_png"))
    buffer = io.BytesIO()
    # Level 1: slightly larger files than level 3 for clearly less time (the encoder is a real share of the
    # anonymizer's time with the fast preset); the default 6 is slower still
    # (numbers: docs/measurements-archive.md#png-encoding).
    Image.fromarray(pixels).save(buffer, format="PNG", compress_level=1)
    return buffer.getvalue()
