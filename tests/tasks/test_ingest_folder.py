"""The folder source: which paths are accepted, how bytes decode, and metadata-free PNG encoding."""

from __future__ import annotations

import io
import struct
import zlib

import numpy as np
import pytest
from numpy.typing import NDArray
from PIL import Image, PngImagePlugin

from tasks.codec import decode_image, encode_png
from tasks.errors import InvalidInputError


def _pixels(h: int = 12, w: int = 20, seed: int = 0) -> NDArray[np.uint8]:
    return np.random.default_rng(seed).integers(0, 256, size=(h, w, 3), dtype=np.uint8)


def _save(image: Image.Image, fmt: str, **kwargs: object) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **kwargs)
    return buffer.getvalue()


def _png_chunks(data: bytes) -> list[bytes]:
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    chunks, pos = [], 8
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        kind = data[pos + 4 : pos + 8]
        body = data[pos + 8 : pos + 8 + length]
        (crc,) = struct.unpack(">I", data[pos + 8 + length : pos + 12 + length])
        assert crc == zlib.crc32(kind + body)
        chunks.append(kind)
        pos += 12 + length
    return chunks


@pytest.mark.parametrize("fmt", ["PNG", "BMP", "TIFF", "WEBP"])
def test_decode_lossless_formats_round_trip(fmt: str) -> None:
    pixels = _pixels()
    kwargs = {"lossless": True} if fmt == "WEBP" else {}
    np.testing.assert_array_equal(
        decode_image(_save(Image.fromarray(pixels), fmt, **kwargs), name="a"), pixels
    )


def test_decode_jpeg_is_close() -> None:
    pixels = np.full((16, 16, 3), (200, 40, 90), np.uint8)
    out = decode_image(_save(Image.fromarray(pixels), "JPEG", quality=95), name="a.jpg")
    assert out.shape == (16, 16, 3) and out.dtype == np.uint8
    assert np.abs(out.astype(int) - pixels).max() <= 6


@pytest.mark.parametrize(("orientation", "k"), [(6, -1), (8, 1), (3, 2)])
def test_decode_applies_exif_orientation_to_pixels(orientation: int, k: int) -> None:
    pixels = _pixels(10, 24)
    exif = Image.Exif()
    exif[0x0112] = orientation  # 6: rotate 90° clockwise to display, 8: counter-clockwise, 3: 180°
    data = _save(Image.fromarray(pixels), "PNG", exif=exif)
    assert Image.open(io.BytesIO(data)).getexif()[0x0112] == orientation  # the tag really is in the file
    out = decode_image(data, name="phone.png")
    np.testing.assert_array_equal(out, np.rot90(pixels, k=k))


def test_decode_composites_alpha_on_white_and_expands_palette_and_gray() -> None:
    rgba = np.zeros((10, 10, 4), np.uint8)
    rgba[:5] = (255, 0, 0, 255)  # top half opaque red, bottom half fully transparent black
    out = decode_image(_save(Image.fromarray(rgba), "PNG"), name="a.png")
    assert (out[:5] == (255, 0, 0)).all() and (out[5:] == 255).all()

    gray = np.arange(100, dtype=np.uint8).reshape(10, 10)
    out = decode_image(_save(Image.fromarray(gray), "PNG"), name="g.png")
    assert out.shape == (10, 10, 3) and (out == gray[:, :, None]).all()

    palette = Image.fromarray(_pixels(10, 10)).convert("P", palette=Image.Palette.ADAPTIVE, colors=8)
    out = decode_image(_save(palette, "PNG"), name="p.png")
    np.testing.assert_array_equal(out, np.asarray(palette.convert("RGB")))


def test_decode_scales_16_bit_gray_to_8_bit() -> None:
    values = np.array([[0, 257 * 10, 65535, 257 * 128]] * 8, dtype=np.uint16)
    values = np.tile(values, (1, 2))
    out = decode_image(_save(Image.fromarray(values), "PNG"), name="deep.png")
    assert out.dtype == np.uint8 and out.shape == (8, 8, 3)
    np.testing.assert_array_equal(out[0, :4, 0], [0, 10, 255, 128])


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"", "empty file"),
        (b"this is not an image at all", "not a PNG, JPEG, WebP, BMP or TIFF image"),
        (_save(Image.fromarray(_pixels(40, 40)), "PNG")[:300], "corrupt or truncated"),
        (_save(Image.fromarray(_pixels(40, 40)), "GIF"), "not a PNG, JPEG"),
        (_save(Image.fromarray(_pixels(5, 40)), "PNG"), r"too small \(40x5\)"),
    ],
)
def test_decode_bad_data_raises_naming_the_file(data: bytes, reason: str) -> None:
    with pytest.raises(InvalidInputError, match=rf"^cats/bad\.png: .*{reason}|^cats/bad\.png: {reason}"):
        decode_image(data, name="cats/bad.png")


def test_encode_png_round_trips_and_is_deterministic() -> None:
    pixels = _pixels(33, 17)
    data = encode_png(pixels)
    assert data == encode_png(pixels.copy())
    with Image.open(io.BytesIO(data)) as image:
        assert image.format == "PNG" and image.mode == "RGB"
        np.testing.assert_array_equal(np.asarray(image), pixels)


def test_encode_png_drops_every_metadata_chunk() -> None:
    info = PngImagePlugin.PngInfo()
    info.add_text("Author", "Jane Doe, +1 555 0100")
    exif = Image.Exif()
    exif[0x010F] = "PhoneMaker"
    source = _save(Image.fromarray(_pixels()), "PNG", pnginfo=info, exif=exif, dpi=(300, 300))
    assert {b"tEXt", b"eXIf", b"pHYs"} <= set(_png_chunks(source))  # the source really carries them
    out = encode_png(decode_image(source, name="meta.png"))
    assert set(_png_chunks(out)) == {b"IHDR", b"IDAT", b"IEND"}
    assert b"Jane" not in out and b"PhoneMaker" not in out


@pytest.mark.parametrize(
    "bad", [np.zeros((4, 4), np.uint8), np.zeros((4, 4, 3), np.float32), np.zeros((4, 4, 4), np.uint8)]
)
def test_encode_png_rejects_non_rgb_uint8(bad: NDArray[np.generic]) -> None:
    with pytest.raises(InvalidInputError, match="encode_png"):
        encode_png(bad)  # type: ignore[arg-type]
