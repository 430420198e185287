"""Resumable stages: a record of each finished shard, trusted only while everything it depends on is unchanged.

A long stage (anonymize) splits its inputs into shards. When a shard is finished, its output files are
written (atomically, `tasks.atomic`) and only then its `ShardRecord`: the shard's key, the sha256 of every
file it wrote and its per-image records. A rerun after an interruption keeps a shard only when its record's
key equals the key computed now — the digest of the shard's inputs (its manifest rows and the bytes of its
input files), of the stage's params and of the code version — and every recorded file is present with its
recorded digest (`stale_reason`). Anything else is redone, never trusted.

Pure: the flow hashes the files and reads and writes the records.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from tasks.errors import InvalidInputError

RESUME_VERSION = 1


def canonical_digest(obj: Any) -> str:
    """sha256 of `obj` as key-sorted, compact JSON (values JSON cannot hold are written with `str`)."""
    text = json.dumps(obj, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def inputs_digest(rows: Sequence[Mapping[str, Any]], file_digests: Sequence[str | None]) -> str:
    """Digest of a shard's inputs: its manifest rows (in order) and the sha256 of each row's input file
    (None: missing or unreadable, which an anonymizer quarantines: still an input state).

    Raises:
        InvalidInputError: not one file digest per row.
    """
    if len(rows) != len(file_digests):
        raise InvalidInputError(f"inputs_digest: {len(rows)} rows but {len(file_digests)} file digests")
    return canonical_digest({"rows": [dict(r) for r in rows], "files": list(file_digests)})


def code_digest(sources: Mapping[str, bytes], environment: Iterable[str]) -> str:
    """Digest of the code version: the stage's source files (name -> bytes) and the installed distributions
    (`name==version` strings, e.g. the detector models' wheels)."""
    h = hashlib.sha256()
    for name in sorted(sources):
        h.update(name.encode() + b"\0" + hashlib.sha256(sources[name]).digest())
    h.update("\n".join(sorted(environment)).encode())
    return h.hexdigest()


def shard_key(*, inputs: str, params: str, code: str) -> str:
    """The key a shard's record must carry to be trusted: inputs, params and code digests together."""
    return hashlib.sha256(f"resume-v{RESUME_VERSION}\n{inputs}\n{params}\n{code}".encode()).hexdigest()


@dataclass(frozen=True)
class ShardRecord:
    """One finished shard: `files` maps each output file (relative to the shard's folder) to its sha256;
    `records` are its per-image records in input order (JSON-ready, no pixels)."""

    index: int
    key: str
    files: Mapping[str, str]
    records: tuple[Mapping[str, Any], ...]

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready dict with the record format version."""
        return {
            "version": RESUME_VERSION,
            "index": self.index,
            "key": self.key,
            "files": dict(self.files),
            "records": [dict(r) for r in self.records],
        }

    @classmethod
    def from_dict(cls, d: Any, *, where: str) -> ShardRecord:
        """Inverse of `as_dict`.

        Raises:
            InvalidInputError: not a record of this version (names `where`).
        """
        if not isinstance(d, dict) or d.get("version") != RESUME_VERSION:
            raise InvalidInputError(f"{where}: not a shard record of version {RESUME_VERSION}")
        try:
            files = {str(k): str(v) for k, v in d["files"].items()}
            records = tuple(dict(r) for r in d["records"])
            return cls(index=int(d["index"]), key=str(d["key"]), files=files, records=records)
        except (KeyError, TypeError, ValueError, AttributeError) as err:
            raise InvalidInputError(f"{where}: malformed shard record ({err})") from None


def stale_reason(
    record: ShardRecord | None, *, index: int, key: str, digests: Mapping[str, str | None]
) -> str | None:
    """Why a shard must be redone, or None when its record can be trusted.

    Args:
        record: the shard's record as read (None: none, or unreadable).
        index: the shard's position now.
        key: `shard_key` computed now.
        digests: sha256 of each of the record's files as found now (None: missing).
    """
    if record is None:
        return "no finished-shard record"
    if record.index != index or record.key != key:
        return "its inputs, params or code changed since it was recorded"
    for name, expected in sorted(record.files.items()):
        found = digests.get(name)
        if found is None:
            return f"{name} is missing"
        if found != expected:
            return f"{name} changed since it was recorded"
    return None


def merged_records(shards: Sequence[ShardRecord]) -> list[dict[str, Any]]:
    """Every shard's per-image records in shard order (the order of an uninterrupted run).

    Raises:
        InvalidInputError: the shards are not exactly 0..n-1 in order.
    """
    if [s.index for s in shards] != list(range(len(shards))):
        raise InvalidInputError(
            f"merged_records: shards {[s.index for s in shards]} are not 0..{len(shards) - 1}"
        )
    return [dict(r) for s in shards for r in s.records]
