"""File names inside a data folder (`paths.raw`, `paths.anonymized`): named once, for the stage that writes a
file and every stage that reads it."""

from __future__ import annotations

MANIFEST = "manifest.parquet"  # one row per image: id, path, sha256, width, height, label, split
ANNOTATIONS = "annotations.json"  # COCO ground truth in privtrail's categories (raw folder)
QUARANTINE = "quarantine.jsonl"  # every refused input with its reason
RECORDS = "records.jsonl"  # anonymize's per-image records: boxes, categories, status (anonymized folder)
LABELS = "labels.json"  # the label names, index = label
SOURCE = "source.json"  # the raw source's identity and the digest of what was read
BOOKKEEPING: frozenset[str] = frozenset(
    {MANIFEST, RECORDS, QUARANTINE, LABELS, SOURCE}
)  # anonymized folder, not images
