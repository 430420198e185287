"""The only module that reads params.yaml and reads or writes pipeline files.

Stages exchange paths, never pixels: Prefect tasks get shard lists of relative paths and call
these helpers themselves, so raw images never become Prefect results.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml

from tasks import atomic
from tasks.codec import decode_image, encode_png
from tasks.errors import InvalidInputError
from tasks.params import Params, TrainParams, parse_params

PARAMS_FILE = "params.yaml"


def repo_root() -> Path:
    """The workspace root: DVC runs every stage command from there."""
    return Path(os.environ.get("PRIVTRAIL_ROOT", Path.cwd())).resolve()


def load_params(path: str | Path | None = None) -> Params:
    """Read and validate params.yaml; a bad key or value raises InvalidInputError naming it."""
    file = Path(path) if path else repo_root() / PARAMS_FILE
    try:
        raw = yaml.safe_load(file.read_text())
    except FileNotFoundError:
        raise InvalidInputError(f"{file}: params file not found") from None
    except yaml.YAMLError as err:
        raise InvalidInputError(f"{file}: not valid YAML: {err}") from None
    if not isinstance(raw, dict):
        raise InvalidInputError(f"{file}: expected a mapping at the top level")
    return parse_params(raw, source=file.name)


def path(rel: str | Path) -> Path:
    """Absolute path of a workspace-relative path."""
    p = Path(rel)
    return p if p.is_absolute() else repo_root() / p


def clean_dir(rel: str | Path) -> Path:
    """Create `rel` empty (DVC outputs are rewritten whole by their stage)."""
    import shutil

    d = path(rel)
    if d.exists():
        shutil.rmtree(d)
    d.mkdir(parents=True)
    return d


def resume_dir(out: str | Path, stage: str) -> Path:
    """Where `stage` keeps its finished work until DVC has recorded the run: `<out's parent>/.resume/<stage>`,
    beside its DVC output, never inside one (`dvc repro` deletes a stage's outputs before running it)."""
    return path(out).parent / ".resume" / stage


def remove_dir(rel: str | Path) -> None:
    """Delete a folder and everything in it, if it exists."""
    import shutil

    d = path(rel)
    if d.is_dir():
        shutil.rmtree(d)


def remove_resume_dir(out: str | Path, stage: str) -> None:
    """Delete `stage`'s resume folder (`resume_dir`), and `.resume` itself once no stage keeps one there."""
    folder = resume_dir(out, stage)
    remove_dir(folder)
    parent = folder.parent
    if parent.is_dir() and not any(parent.iterdir()):
        parent.rmdir()


def remove_temporaries(rel: str | Path) -> int:
    """Delete the temporary files a killed run's unfinished atomic writes left under `rel`; how many."""
    return atomic.remove_temporaries(path(rel))


def link_or_copy(src: str | Path, dst: str | Path) -> None:
    """Make `dst` the same file as `src`: a hard link (no bytes copied), else an atomic copy."""
    s, d = path(src), path(dst)
    d.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.link(s, d)
    except OSError:  # another file system, or one without hard links
        atomic.write_bytes(d, s.read_bytes())


# --- images ---------------------------------------------------------------------------------


def read_image(file: str | Path) -> np.ndarray:
    """Decode an image file to (H, W, 3) uint8 RGB with EXIF orientation applied."""
    p = path(file)
    try:
        data = p.read_bytes()
    except OSError as err:
        raise InvalidInputError(f"{p}: cannot read: {err.strerror or err}") from None
    return decode_image(data, name=str(p))


def read_video_frames(file: str | Path, *, step: int) -> Iterator[tuple[int, np.ndarray]]:
    """(index, (H, W, 3) uint8 RGB) of every `step`-th frame of a video, from frame 0, read in order.

    Raises:
        InvalidInputError: the file cannot be opened as a video, yields no frame, or breaks off before the
            frame count its container declares (raised after the frames it did yield).
    """
    import cv2

    p = path(file)
    cap = cv2.VideoCapture(str(p))
    if not cap.isOpened():
        raise InvalidInputError(f"{p}: cannot be opened as a video (OpenCV / FFmpeg)")
    declared = int(cap.get(cv2.CAP_PROP_FRAME_COUNT) or 0)
    index = 0
    try:
        while True:
            ok, bgr = cap.read()
            if not ok:
                break
            if index % step == 0:
                yield index, cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
            index += 1
    finally:
        cap.release()
    if index == 0:
        raise InvalidInputError(f"{p}: no frame could be decoded")
    if declared > 0 and index < declared - 1:  # one frame of slack: some containers count one too many
        raise InvalidInputError(f"{p}: the video breaks off at frame {index} of the {declared} it declares")


def video_info(file: str | Path) -> tuple[float, int]:
    """(frame rate, frame count) a video's container declares; 0 for what it does not say (or unreadable)."""
    import cv2

    cap = cv2.VideoCapture(str(path(file)))
    try:
        if not cap.isOpened():
            return 0.0, 0
        fps = float(cap.get(cv2.CAP_PROP_FPS) or 0.0)
        return (fps if fps == fps else 0.0), int(cap.get(cv2.CAP_PROP_FRAME_COUNT) or 0)
    finally:
        cap.release()


def write_png(file: str | Path, image: np.ndarray) -> str:
    """Write pixels as a metadata-free PNG, atomically (complete or absent); return its sha256."""
    data = encode_png(image)
    atomic.write_bytes(path(file), data)
    return hashlib.sha256(data).hexdigest()


# --- tables and json ------------------------------------------------------------------------


def read_bytes(file: str | Path) -> bytes:
    """A file's bytes (e.g. to inspect PNG chunks); names the file when it is missing."""
    p = path(file)
    if not p.exists():
        raise InvalidInputError(f"{p}: not found (did its stage run?)")
    return p.read_bytes()


def write_json(file: str | Path, obj: Any) -> None:
    """Write `obj` as indented, key-sorted JSON, atomically (every writer here is: see `tasks.atomic`)."""
    atomic.write_text(path(file), json.dumps(obj, indent=2, sort_keys=True, default=_json_default) + "\n")


def read_json(file: str | Path) -> Any:
    p = path(file)
    try:
        return json.loads(p.read_text())
    except FileNotFoundError:
        raise InvalidInputError(f"{p}: not found (did its stage run?)") from None


def write_jsonl(file: str | Path, rows: Iterable[Mapping[str, Any]]) -> int:
    n = 0
    with atomic.atomic_open(path(file), "w") as f:
        for row in rows:
            f.write(json.dumps(row, sort_keys=True, default=_json_default) + "\n")
            n += 1
    return n


def read_jsonl(file: str | Path) -> list[dict[str, Any]]:
    p = path(file)
    if not p.exists():
        raise InvalidInputError(f"{p}: not found (did its stage run?)")
    return [json.loads(line) for line in p.read_text().splitlines() if line.strip()]


def append_line(file: str | Path, line: str) -> None:
    """Append one newline-terminated line and fsync it (append-only logs such as the privacy ledger).

    One `write` of a short line in append mode: concurrent appenders do not interleave within a line.
    """
    if not line.endswith("\n") or "\n" in line[:-1]:
        raise InvalidInputError(f"{file}: append_line takes exactly one newline-terminated line")
    p = path(file)
    p.parent.mkdir(parents=True, exist_ok=True)
    with p.open("a") as f:
        f.write(line)
        f.flush()
        os.fsync(f.fileno())


def ledger_path(train: TrainParams) -> str:
    """The privacy ledger: `train.budget.ledger`, or `PRIVTRAIL_LEDGER` (an absolute path shared by
    every workspace, e.g. the temporary copies `dvc exp run --queue` trains in)."""
    return os.environ.get("PRIVTRAIL_LEDGER") or train.budget.ledger


def read_text_if_exists(file: str | Path) -> str:
    """The file's text, or "" when it does not exist yet (e.g. a ledger before its first entry)."""
    p = path(file)
    return p.read_text() if p.exists() else ""


def write_table(file: str | Path, frame: pd.DataFrame) -> None:
    with atomic.atomic_open(path(file), "wb") as f:
        frame.to_parquet(f, index=False)


def write_csv(file: str | Path, frame: pd.DataFrame) -> None:
    """A table as CSV (what `dvc plots` and spreadsheets read)."""
    with atomic.atomic_open(path(file), "w", newline="") as f:
        frame.to_csv(f, index=False)


def read_table(file: str | Path) -> pd.DataFrame:
    p = path(file)
    if not p.exists():
        raise InvalidInputError(f"{p}: not found (did its stage run?)")
    return pd.read_parquet(p)


def _json_default(o: Any) -> Any:
    if isinstance(o, np.integer):
        return int(o)
    if isinstance(o, np.floating):
        return float(o)
    if isinstance(o, np.ndarray):
        return o.tolist()
    if isinstance(o, Path):
        return str(o)
    raise TypeError(f"not JSON serialisable: {type(o).__name__}")


# --- digests ------------------------------------------------------------------------------


def file_sha256(file: str | Path) -> str:
    h = hashlib.sha256()
    with path(file).open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def digest(paths: Sequence[str | Path]) -> str:
    """sha256 over the relative names and contents of files and folders (recursively), order-free."""
    h = hashlib.sha256()
    for rel in sorted(str(p) for p in paths):
        p = path(rel)
        files = sorted(f for f in p.rglob("*") if f.is_file()) if p.is_dir() else [p] if p.exists() else []
        for f in files:
            h.update(str(f.relative_to(repo_root()) if f.is_relative_to(repo_root()) else f).encode())
            h.update(file_sha256(f).encode())
    return h.hexdigest()


def outside_root(root: str | Path, rel: str) -> str | None:
    """Why `root/rel` must not be read — it resolves (through symlinks) outside `root`, or is not a regular
    file — or None when it may be."""
    base = path(root).resolve()
    file = base / rel
    if not file.resolve().is_relative_to(base):
        return "path leaves the dataset root (a symlink out, or '..'): not read"
    if not file.is_file():
        return "listed but not found (or not a regular file) under the dataset root"
    return None


def list_files(root: str | Path) -> list[str]:
    """Every file under `root`, as POSIX paths relative to it, sorted."""
    r = path(root)
    if not r.is_dir():
        raise InvalidInputError(f"{r}: not a folder")
    return sorted(f.relative_to(r).as_posix() for f in r.rglob("*") if f.is_file())


# --- models -------------------------------------------------------------------------------


def save_state_dict(file: str | Path, state: Mapping[str, Any]) -> None:
    import torch

    with atomic.atomic_open(path(file), "wb") as f:
        torch.save(dict(state), f)


def load_state_dict(file: str | Path) -> dict[str, Any]:
    import torch

    p = path(file)
    if not p.exists():
        raise InvalidInputError(f"{p}: model weights not found (did train run?)")
    return dict(torch.load(p, map_location="cpu", weights_only=True))


def split_rows(manifest: pd.DataFrame, split: str) -> pd.DataFrame:
    """The rows of one split of an image manifest: what `load_split` loads (the train split's count is the
    n_train DP-SGD runs on, and the report's plan checks the DP record against)."""
    return manifest[manifest["split"] == split]


def load_split(manifest: pd.DataFrame, root: str, split: str) -> tuple[list[np.ndarray], np.ndarray]:
    """Images and labels of one split of an image manifest (pixels stay inside the calling process)."""
    rows = split_rows(manifest, split)
    images = [read_image(f"{root}/{rel}") for rel in rows["path"]]
    return images, rows["label"].to_numpy(dtype=np.int64)


def save_figure(file: str | Path, fig: Any) -> None:
    """Save a matplotlib figure as PNG and close it."""
    import matplotlib.pyplot as plt

    try:
        with atomic.atomic_open(path(file), "wb") as f:
            fig.savefig(f, format="png", dpi=110, bbox_inches="tight")
    finally:
        plt.close(fig)
