"""Metadata never survives: a camera JPEG with EXIF (GPS, orientation 6), XMP and an ICC profile,
decoded by `decode_image` and re-encoded by `encode_png`, has its pixels rotated and no metadata chunk."""

from __future__ import annotations

import io
import struct

import numpy as np
from PIL import Image, ImageCms

from tasks.codec import decode_image, encode_png

XMP = (
    b'<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">'
    b'<rdf:Description xmlns:dc="http://purl.org/dc/elements/1.1/"><dc:creator>Jane Doe</dc:creator>'
    b"</rdf:Description></rdf:RDF></x:xmpmeta>"
)


def _camera_jpeg() -> tuple[bytes, np.ndarray]:
    """A 48 wide × 32 high JPEG: left half black, right half white; EXIF says rotate 90° clockwise."""
    pixels = np.zeros((32, 48, 3), np.uint8)
    pixels[:, 24:] = 255
    exif = Image.Exif()
    exif[0x0112] = 6  # Orientation: rotate 90° CW to display
    exif[0x010F] = "PhoneMaker"
    gps = exif.get_ifd(0x8825)
    gps.update({1: "N", 2: (52.0, 22.0, 5.0), 3: "E", 4: (4.0, 53.0, 33.0)})  # GPSLatitude / Longitude
    icc = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    buf = io.BytesIO()
    Image.fromarray(pixels).save(
        buf, format="JPEG", quality=95, exif=exif.tobytes(), icc_profile=icc, xmp=XMP
    )
    return buf.getvalue(), pixels


def _png_chunks(data: bytes) -> list[bytes]:
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    chunks, pos = [], 8
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        chunks.append(data[pos + 4 : pos + 8])
        pos += 12 + length
    return chunks


def test_source_jpeg_really_carries_the_metadata() -> None:
    data, _ = _camera_jpeg()
    with Image.open(io.BytesIO(data)) as im:
        exif = im.getexif()
        assert exif[0x0112] == 6 and exif.get_ifd(0x8825)[1] == "N"
        assert im.info.get("icc_profile") and b"Jane Doe" in data and b"http://ns.adobe.com/xap/1.0/" in data


def test_decoded_pixels_are_rotated_and_png_has_no_metadata() -> None:
    data, pixels = _camera_jpeg()
    shown = decode_image(data, name="camera.jpg")
    assert shown.shape == (48, 32, 3)  # rotated: 32 wide × 48 high
    # Orientation 6: the stored left (black) half ends up on top.
    assert shown[:20].mean() < 10 and shown[28:].mean() > 245
    png = encode_png(shown)
    assert set(_png_chunks(png)) <= {b"IHDR", b"IDAT", b"IEND"}  # no eXIf, iCCP, tEXt, iTXt, zTXt, tIME, ...
    for marker in (b"Exif", b"PhoneMaker", b"Jane Doe", b"adobe", b"sRGB", b"GPS"):
        assert marker not in png
    with Image.open(io.BytesIO(png)) as im:
        assert not im.getexif() and "icc_profile" not in im.info and "xmp" not in im.info
        np.testing.assert_array_equal(np.asarray(im), shown)
