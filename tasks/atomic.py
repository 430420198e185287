"""Atomic file writes: a file appears complete, or not at all.

A stage killed mid-write (kill -9, out of memory, a reboot) must not leave a truncated PNG or half a JSON
file that a later run trusts. Each write goes to a temporary name in the same folder (so the rename stays
on one file system), is flushed and fsync'ed, then `os.replace`d over the final name (atomic on POSIX), and
the folder is fsync'ed so the rename itself survives a power cut. A temporary file left by a kill is
recognisable by its name (`is_temporary`) and removed by `remove_temporaries`.
"""

from __future__ import annotations

import contextlib
import os
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

TEMP_SUFFIX = ".partial"


def temporary_name(final: Path) -> Path:
    """A fresh hidden name beside `final`: `.<name>.<random>.partial`."""
    return final.with_name(f".{final.name}.{secrets.token_hex(6)}{TEMP_SUFFIX}")


def is_temporary(file: Path) -> bool:
    """Whether `file` is a temporary file of an unfinished atomic write."""
    return file.name.startswith(".") and file.name.endswith(TEMP_SUFFIX)


def fsync_dir(folder: Path) -> None:
    """Make a rename or unlink in `folder` durable (no-op where directories cannot be opened)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:  # some file systems (e.g. a few network mounts) refuse fsync on a directory
        pass
    finally:
        os.close(fd)


@contextlib.contextmanager
def atomic_open(final: str | Path, mode: str = "wb", **kwargs: Any) -> Iterator[IO[Any]]:
    """Open a temporary file beside `final` for writing; on a clean exit, fsync it and rename it to `final`.

    On an exception the temporary file is removed and `final` is left as it was (absent, or the old file).

    Args:
        final: the file to write (its folder is created).
        mode: "wb" or "w" (text; `kwargs` such as `newline` pass to `open`).
    Raises:
        ValueError: a mode that does not write a new file.
    """
    if mode not in ("w", "wb"):
        raise ValueError(f"atomic_open: mode must be 'w' or 'wb', got {mode!r}")
    target = Path(final)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = temporary_name(target)
    try:
        with open(tmp, mode, **kwargs) as f:  # noqa: PTH123 - open's full keyword set (newline, encoding)
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    fsync_dir(target.parent)


def write_bytes(final: str | Path, data: bytes) -> None:
    """Write `data` to `final` atomically (see the module docstring)."""
    with atomic_open(final, "wb") as f:
        f.write(data)


def write_text(final: str | Path, text: str) -> None:
    """Write `text` (UTF-8) to `final` atomically."""
    write_bytes(final, text.encode())


def remove_temporaries(root: str | Path) -> int:
    """Delete every temporary file of an unfinished atomic write under `root` (a killed run's); return how many."""
    base = Path(root)
    if not base.is_dir():
        return 0
    stale = [f for f in base.rglob(f"*{TEMP_SUFFIX}") if f.is_file() and is_temporary(f)]
    for f in stale:
        f.unlink(missing_ok=True)
    return len(stale)
