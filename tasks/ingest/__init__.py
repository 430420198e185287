"""The `ingest` stage's pure logic: the built-in dataset, the folder source, splits and the manifest."""

from tasks.ingest.builtin import Annotation, Sample, generate_builtin
from tasks.ingest.folder import SUPPORTED_EXTENSIONS, decode_image, encode_png
from tasks.ingest.manifest import MANIFEST_COLUMNS, manifest_frame, sha256_hex, to_coco
from tasks.ingest.splits import assign_splits

__all__ = [
    "MANIFEST_COLUMNS",
    "SUPPORTED_EXTENSIONS",
    "Annotation",
    "Sample",
    "assign_splits",
    "decode_image",
    "encode_png",
    "generate_builtin",
    "manifest_frame",
    "sha256_hex",
    "to_coco",
]
