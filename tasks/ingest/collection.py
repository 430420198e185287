"""A user's image collection: which files it holds, their labels and their COCO ground truth.

No file I/O here: the flow lists the collection root, reads the label table or the COCO json, and
passes the listing, the text or the `json.load`-ed object in. This module decides which paths are
accepted (any depth: `IMG.jpg`, `cat/1.png`, `2023/07/IMG_0001.JPG`), where each label comes from,
and turns a user's COCO file into privtrail's ground-truth boxes. Paths that could escape the root
are rejected by name before anything is read; the flow still checks that resolved paths (symlinks)
stay inside it.
"""

from __future__ import annotations

import csv
import io
import json
import math
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import PurePosixPath
from typing import Any, Literal, TypeGuard

from tasks.codec import SUPPORTED_EXTENSIONS, VIDEO_EXTENSIONS
from tasks.errors import InvalidInputError
from tasks.types import CATEGORY_ID

LabelFrom = Literal["dir", "file", "none"]
Box = tuple[int, int, int, int]  # x0, y0, x1, y1 in pixels; x1, y1 exclusive: image[y0:y1, x0:x1]

# privtrail categories a user's COCO category may be mapped to (`placard` is the built-in task's digit).
MAPPABLE_CATEGORIES: tuple[str, ...] = ("face", "body", "plate", "text_pii", "text_nonpii")
# privtrail category → the user's COCO category names (case-insensitive). Text whose personal nature
# is unknown counts as text_pii: it must be redacted (fail closed).
DEFAULT_CATEGORY_MAP: dict[str, tuple[str, ...]] = {
    "face": ("face", "head"),
    "plate": ("license_plate", "licence_plate", "plate"),
    "text_pii": ("text",),
    "body": ("person",),
}
# Where an annotation's person / track id is looked for, first present wins: (attributes key) or top-level key.
IDENTITY_KEYS: tuple[tuple[str, str], ...] = (
    ("attributes", "identity"),
    ("attributes", "track_id"),
    ("attributes", "person_id"),
    ("", "track_id"),
    ("", "person_id"),
    ("", "identity"),
)
BBOX_TOLERANCE = 1.0  # px a COCO bbox may stick out of its image (float rounding); it is clipped
MAX_ISSUES = 50  # problems listed in one error message; the rest are counted
_EPS = 1e-9  # px: float noise ignored when flooring a box's start and ceiling its end
_UNSAFE = "unsafe or non-normalised path (absolute, '..', '.', empty part or backslash)"
_NOT_IN_LABEL_FOLDER = "label_from: dir needs <label>/<...>: file is not inside a label folder"
_NO_LABEL = "no label for this path in the label file"


@dataclass(frozen=True)
class Entry:
    """One accepted file of a collection.

    Attributes:
        relpath: "/"-separated path relative to the collection root.
        label: its class name, or None when the collection is unlabelled (`label_from: none`).
    """

    relpath: str
    label: str | None


@dataclass(frozen=True)
class GtBox:
    """One ground-truth box of a user's image, in privtrail's categories.

    Attributes:
        category: a privtrail category name (`tasks.types.CATEGORY_ID`).
        box: (x0, y0, x1, y1) pixels, x1/y1 exclusive, non-empty, inside the image.
        identity: the person / track id the annotation carried, as a string; None when absent.
    """

    category: str
    box: Box
    identity: str | None = None

    def __post_init__(self) -> None:
        if self.category not in CATEGORY_ID:
            raise InvalidInputError(
                f"GtBox: unknown category {self.category!r}, expected one of {list(CATEGORY_ID)}"
            )
        x0, y0, x1, y1 = self.box
        if not (0 <= x0 < x1 and 0 <= y0 < y1):
            raise InvalidInputError(f"GtBox: box {self.box} is empty or has a negative corner")


@dataclass(frozen=True)
class CocoImage:
    """An image of a user's COCO file with its boxes (annotation order).

    Attributes:
        file_name: path relative to the collection root, as in the file (a leading "./" removed).
        width: pixels, as the COCO file states (the flow checks it against the decoded image).
        height: pixels.
        boxes: its ground truth in privtrail's categories.
    """

    file_name: str
    width: int
    height: int
    boxes: tuple[GtBox, ...] = ()


@dataclass(frozen=True)
class CocoCollection:
    """A user's COCO ground truth, validated and mapped to privtrail's categories.

    `n_annotations == sum(len(i.boxes) for i in images) + sum(ignored_categories.values()) + n_dropped`.

    Attributes:
        images: accepted images, sorted by file_name (images without annotations included).
        rejected: (file_name, reason) of images whose file name is unsafe, hidden or unsupported,
            sorted by file name; they must never be read.
        ignored_categories: user category name → annotations ignored because no privtrail
            category lists it (annotations of rejected images not counted here).
        n_annotations: annotations in the file.
        n_dropped: annotations of rejected images, dropped unread.
    """

    images: tuple[CocoImage, ...]
    rejected: tuple[tuple[str, str], ...]
    ignored_categories: dict[str, int]
    n_annotations: int
    n_dropped: int

    def as_metrics(self) -> dict[str, float]:
        """Return the counts keyed "ingest/coco_<count>"."""
        return {
            "ingest/coco_n_images": float(len(self.images)),
            "ingest/coco_n_rejected_images": float(len(self.rejected)),
            "ingest/coco_n_annotations": float(self.n_annotations),
            "ingest/coco_n_boxes": float(sum(len(i.boxes) for i in self.images)),
            "ingest/coco_n_ignored": float(sum(self.ignored_categories.values())),
            "ingest/coco_n_dropped": float(self.n_dropped),
        }


# ---------------------------------------------------------------------------------------- listing


def list_entries(
    relpaths: Sequence[str], *, label_from: LabelFrom, labels: Mapping[str, str] | None = None
) -> tuple[list[Entry], list[tuple[str, str]]]:
    """Split a collection's files into accepted entries and rejected ones, each with its reason.

    Every input path ends up in exactly one of the two lists (a repeated path: its first
    occurrence is judged, the others are rejected as duplicates).

    Args:
        relpaths: paths relative to the collection root, "/"-separated, any depth.
        label_from: "dir": the label is the first path component (`people/cctv/f1.jpg` → people);
            "file": `labels[relpath]`; "none": no labels (None).
        labels: relpath → label, from `parse_label_table`; needed for "file", ignored otherwise.
    Returns:
        (accepted, rejected), both sorted by path; rejected items are (relpath, one-line reason).
    Raises:
        InvalidInputError: an unknown `label_from`, or "file" without `labels`.
    """
    if label_from not in _LABELLERS:
        raise InvalidInputError(f"list_entries: label_from {label_from!r} is not one of {sorted(_LABELLERS)}")
    if label_from == "file" and labels is None:
        raise InvalidInputError("list_entries: label_from 'file' needs the label table (labels)")
    labeller, table = _LABELLERS[label_from], labels or {}
    accepted: list[Entry] = []
    rejected: list[tuple[str, str]] = []
    seen: set[str] = set()
    for relpath in sorted(relpaths):
        reason = "duplicate path" if relpath in seen else path_rejection(relpath)
        seen.add(relpath)
        label: str | None = None
        if reason is None:
            label, reason = labeller(relpath, table)
        if reason is None:
            accepted.append(Entry(relpath, label))
        else:
            rejected.append((relpath, reason))
    return accepted, rejected


def unmatched_labels(relpaths: Sequence[str], labels: Mapping[str, str]) -> list[str]:
    """Return the paths of the label table that name no listed file, sorted.

    Args:
        relpaths: the collection's files, as given to `list_entries`.
        labels: relpath → label, from `parse_label_table`.
    """
    return sorted(set(labels) - set(relpaths))


def path_rejection(relpath: str) -> str | None:
    """Return why `relpath` may not be read as an image of the collection, or None when it may.

    Refused: absolute or non-normalised paths ('..', '.', empty parts, backslashes, NUL), hidden
    files or folders (any part starting with '.'), and extensions outside `SUPPORTED_EXTENSIONS` (images)
    and `VIDEO_EXTENSIONS` (videos, whose frames ingest samples at `ingest.video_fps`).

    Args:
        relpath: "/"-separated path relative to the collection root.
    """
    parts = relpath.split("/")
    if "\\" in relpath or "\x00" in relpath or any(p in ("", ".", "..") for p in parts):
        return _UNSAFE  # an absolute path starts with an empty part
    if any(p.startswith(".") for p in parts):
        return "hidden file or folder"
    suffix = PurePosixPath(relpath).suffix.lower()
    if suffix not in SUPPORTED_EXTENSIONS | VIDEO_EXTENSIONS:
        return f"unsupported extension {suffix or '(none)'!r}"
    return None


def _label_dir(relpath: str, labels: Mapping[str, str]) -> tuple[str | None, str | None]:
    if "/" not in relpath:
        return None, _NOT_IN_LABEL_FOLDER
    return _checked_label(relpath.split("/", 1)[0])


def _label_file(relpath: str, labels: Mapping[str, str]) -> tuple[str | None, str | None]:
    if relpath not in labels:
        return None, _NO_LABEL
    return _checked_label(labels[relpath])


def _label_none(relpath: str, labels: Mapping[str, str]) -> tuple[str | None, str | None]:
    return None, None


def _checked_label(label: str) -> tuple[str | None, str | None]:
    """Return (label, None), or (None, reason) when the label is empty or blank."""
    return (label, None) if label.strip() else (None, "empty label")


# label_from → (relpath, label table) → (label, None) or (None, why the file is rejected)
_LABELLERS: dict[str, Callable[[str, Mapping[str, str]], tuple[str | None, str | None]]] = {
    "dir": _label_dir,
    "file": _label_file,
    "none": _label_none,
}


# ------------------------------------------------------------------------------------ label table


def parse_label_table(text: str, *, name: str) -> dict[str, str]:
    """Parse a label table: CSV with a `path,label` header, or JSONL of {"path", "label"} objects.

    CSV header names are matched case-insensitively, extra columns and JSON keys are ignored,
    blank lines skipped, values stripped of surrounding whitespace. Paths are normalised to POSIX
    (backslashes → "/", "./" and repeated "/" removed). A path listed twice with the same label is
    kept once. Empty labels are kept: `list_entries` rejects their files. JSONL labels may be
    integers (stored as their decimal string).

    Args:
        text: the file's content.
        name: the file's name; its extension (.csv or .jsonl) picks the format; used in messages.
    Returns:
        normalised path → label.
    Raises:
        InvalidInputError: an unsupported extension, or every bad line at once (line number and
            why: missing column or key, empty path, a duplicate path with a different label, bad JSON).
    """
    suffix = PurePosixPath(name).suffix.lower()
    if suffix not in _TABLE_READERS:
        raise InvalidInputError(f"{name}: a label table must be a .csv or .jsonl file")
    issues: list[str] = []
    table: dict[str, str] = {}
    first_line: dict[str, int] = {}
    for line, raw_path, label in _TABLE_READERS[suffix](text.removeprefix("\ufeff"), issues):
        path = _normalised(raw_path)
        if not path:
            issues.append(f"line {line}: empty path")
        elif path in table and table[path] != label:
            issues.append(
                f"line {line}: duplicate path {path!r} with a different label "
                f"({label!r}; line {first_line[path]} says {table[path]!r})"
            )
        elif path not in table:
            table[path], first_line[path] = label, line
    _raise_if(issues, name=name)
    return table


def _normalised(path: str) -> str:
    """Return `path` as POSIX without "./", repeated or trailing "/" ("" when nothing is left)."""
    posix = path.strip().replace("\\", "/")
    if not posix:
        return ""
    normalised = PurePosixPath(posix).as_posix()
    return "" if normalised == "." else normalised


def _csv_rows(text: str, issues: list[str]) -> list[tuple[int, str, str]]:
    """Return (line, path, label) per CSV row; append each bad row's problem to `issues`."""
    reader = csv.DictReader(io.StringIO(text, newline=""))
    rows: list[tuple[int, str, str]] = []
    try:
        header = [(f or "").strip().lower() for f in reader.fieldnames or []]
        missing = [c for c in ("path", "label") if c not in header]
        if missing:
            issues.append(
                f"line 1: the header must name the columns path,label (missing {missing}, got {header})"
            )
            return rows
        reader.fieldnames = header
        for row in reader:
            path, label = row.get("path"), row.get("label")
            if path is None or label is None:
                issues.append(
                    f"line {reader.line_num}: missing column {'path' if path is None else 'label'!r}"
                )
            else:
                rows.append((reader.line_num, path, label.strip()))
    except csv.Error as err:
        issues.append(f"line {reader.line_num}: unreadable CSV ({err})")
    return rows


def _jsonl_rows(text: str, issues: list[str]) -> list[tuple[int, str, str]]:
    """Return (line, path, label) per JSONL object; append each bad line's problem to `issues`."""
    rows: list[tuple[int, str, str]] = []
    # split("\n"), not splitlines(): a JSON string may hold a raw U+2028, which splitlines() splits on.
    for line, content in enumerate(text.split("\n"), start=1):
        if not content.strip():
            continue
        try:
            obj = json.loads(content)
        except json.JSONDecodeError as err:
            issues.append(f"line {line}: bad JSON ({err.msg} at column {err.colno})")
            continue
        if not isinstance(obj, dict):
            issues.append(f"line {line}: expected a JSON object, got {type(obj).__name__}")
            continue
        path, label = obj.get("path"), obj.get("label")
        if isinstance(label, int) and not isinstance(label, bool):
            label = str(label)
        if not isinstance(path, str) or not isinstance(label, str):
            key, value = ("path", path) if not isinstance(path, str) else ("label", label)
            issues.append(
                f"line {line}: missing key {key!r}"
                if value is None
                else f"line {line}: {key} must be a string"
            )
            continue
        rows.append((line, path, label.strip()))
    return rows


_TABLE_READERS: dict[str, Callable[[str, list[str]], list[tuple[int, str, str]]]] = {
    ".csv": _csv_rows,
    ".jsonl": _jsonl_rows,
}


# ------------------------------------------------------------------------------------------- COCO


@dataclass(frozen=True)
class _Image:
    """An image entry being parsed: its (normalised) file name, size, and whether it was rejected."""

    file_name: str
    width: int
    height: int
    rejected: bool


def parse_coco(obj: Any, *, name: str, category_map: Mapping[str, Sequence[str]]) -> CocoCollection:
    """Validate a user's COCO ground truth and map it to privtrail's categories.

    Image file names that are unsafe, hidden or of an unsupported type (`path_rejection`) are not
    errors: they go to `rejected` and their annotations are dropped, unread. Boxes [x, y, w, h]
    become (x0, y0, x1, y1) with the start floored and the end ceiled (the box still covers the
    object); a box may stick out of its image by `BBOX_TOLERANCE` px (it is clipped).

    Args:
        obj: the `json.load`-ed file.
        name: the file's name, used in messages.
        category_map: privtrail category (one of `MAPPABLE_CATEGORIES`) → user category names,
            matched case-insensitively; annotations of user categories in no list are ignored
            and counted.
    Returns:
        The images with their boxes, the rejected file names and the counts.
    Raises:
        InvalidInputError: a bad `category_map`, or every problem of the file at once, each naming
            the entry (missing or mistyped keys, duplicate ids or file names, an unknown image or
            category id, an empty bbox or one outside its image, a bad identity).
    """
    lookup = _category_lookup(category_map)
    images, annotations, categories = _top_level(obj, name=name)
    issues: list[str] = []
    category_names = _parse_categories(categories, issues)
    parsed_images, rejected = _parse_images(images, issues)
    boxes: dict[int, list[GtBox]] = {
        i: [] for i, image in parsed_images.items() if image and not image.rejected
    }
    ignored: Counter[str] = Counter()
    n_dropped = 0
    for index, ann in enumerate(annotations):
        parsed = _parse_annotation(ann, index, category_names, parsed_images, issues)
        if parsed is None:
            continue
        image_id, user_category, box, identity = parsed
        category = lookup.get(user_category.strip().casefold())
        if image_id not in boxes:
            n_dropped += 1
        elif category is None:
            ignored[user_category] += 1
        else:
            boxes[image_id].append(GtBox(category, box, identity))
    _raise_if(issues, name=name)
    kept = [(img, boxes[i]) for i, img in parsed_images.items() if img is not None and i in boxes]
    return CocoCollection(
        images=tuple(
            CocoImage(img.file_name, img.width, img.height, tuple(b))
            for img, b in sorted(kept, key=lambda pair: pair[0].file_name)
        ),
        rejected=tuple(sorted(rejected)),
        ignored_categories=dict(sorted(ignored.items())),
        n_annotations=len(annotations),
        n_dropped=n_dropped,
    )


def scale_boxes(
    boxes: Sequence[GtBox], *, sx: float, sy: float, width: int, height: int
) -> tuple[GtBox, ...]:
    """Return `boxes` scaled for a resized image, floored / ceiled to cover, inside and non-empty.

    Args:
        boxes: boxes of the original image.
        sx: new width / old width, > 0.
        sy: new height / old height, > 0.
        width: the resized image's width in pixels, >= 1.
        height: the resized image's height in pixels, >= 1.
    Returns:
        One box per input box, same order, category and identity; a box that would vanish keeps
        at least one pixel.
    Raises:
        InvalidInputError: a non-positive or non-finite scale, or a size under 1 px.
    """
    if not (math.isfinite(sx) and math.isfinite(sy) and sx > 0 and sy > 0):
        raise InvalidInputError(f"scale_boxes: scales must be finite and > 0, got sx={sx}, sy={sy}")
    if width < 1 or height < 1:
        raise InvalidInputError(f"scale_boxes: the new size must be at least 1x1, got {width}x{height}")
    scaled: list[GtBox] = []
    for gt in boxes:
        x0, y0, x1, y1 = gt.box
        xs = _cover(x0 * sx, x1 * sx, width) or _one_pixel(x0 * sx, width)
        ys = _cover(y0 * sy, y1 * sy, height) or _one_pixel(y0 * sy, height)
        scaled.append(replace(gt, box=(xs[0], ys[0], xs[1], ys[1])))
    return tuple(scaled)


def _cover(start: float, end: float, size: int) -> tuple[int, int] | None:
    """Return the pixel span [lo, hi) covering [start, end) clipped to [0, size], or None when empty."""
    lo = math.floor(min(max(start, 0.0), size) + _EPS)
    hi = math.ceil(min(max(end, 0.0), size) - _EPS)
    return (lo, hi) if lo < hi else None


def _one_pixel(start: float, size: int) -> tuple[int, int]:
    """Return the 1-px span nearest `start` inside [0, size)."""
    lo = min(max(math.floor(start), 0), size - 1)
    return lo, lo + 1


def _category_lookup(category_map: Mapping[str, Sequence[str]]) -> dict[str, str]:
    """Return casefolded user category name → privtrail category, checking the map."""
    issues: list[str] = []
    lookup: dict[str, str] = {}
    for ours, theirs in category_map.items():
        if ours not in MAPPABLE_CATEGORIES:
            issues.append(f"unknown privtrail category {ours!r}, expected one of {list(MAPPABLE_CATEGORIES)}")
        if isinstance(theirs, str):  # ("text") is a str, not a tuple: it would map "t", "e", "x"
            issues.append(f"{ours}: expected a list of category names, got the string {theirs!r}")
            continue
        for user_name in theirs:
            key = str(user_name).strip().casefold()
            if lookup.get(key, ours) != ours:
                issues.append(f"{user_name!r} is mapped to both {lookup[key]!r} and {ours!r}")
            lookup.setdefault(key, ours)
    if issues:
        raise InvalidInputError("category_map: " + "; ".join(issues))
    return lookup


def _top_level(obj: Any, *, name: str) -> tuple[list[Any], list[Any], list[Any]]:
    """Return the images, annotations and categories lists, or raise naming what is missing."""
    keys = ("images", "annotations", "categories")
    if not isinstance(obj, dict):
        raise InvalidInputError(f"{name}: expected a JSON object with {list(keys)}, got {type(obj).__name__}")
    issues = [f"missing or non-list {key!r}" for key in keys if not isinstance(obj.get(key), list)]
    _raise_if(issues, name=name)
    return obj["images"], obj["annotations"], obj["categories"]


def _parse_categories(categories: list[Any], issues: list[str]) -> dict[int, str]:
    """Return category id → user name; append each bad entry's problem to `issues`."""
    names: dict[int, str] = {}
    for index, cat in enumerate(categories):
        cat_id = cat.get("id") if isinstance(cat, dict) else None
        where = f"category {cat_id}" if _is_int(cat_id) else f"categories[{index}]"
        if not isinstance(cat, dict):
            issues.append(f"{where}: not a JSON object")
        elif not _is_int(cat_id):
            issues.append(f"{where}: missing or non-integer 'id'")
        elif not isinstance(cat.get("name"), str):
            issues.append(f"{where}: missing or non-string 'name'")
        elif cat_id in names:
            issues.append(f"{where}: duplicate category id")
        else:
            names[cat_id] = cat["name"]
    return names


def _parse_images(
    images: list[Any], issues: list[str]
) -> tuple[dict[int, _Image | None], list[tuple[str, str]]]:
    """Return image id → parsed entry (None when invalid) and the rejected (file_name, reason).

    Appends each bad entry's problem to `issues`.
    """
    parsed: dict[int, _Image | None] = {}
    by_file: dict[str, str] = {}
    rejected: list[tuple[str, str]] = []
    for index, img in enumerate(images):
        image_id = img.get("id") if isinstance(img, dict) else None
        where = f"image {image_id}" if _is_int(image_id) else f"images[{index}]"
        problems = _image_problems(img)
        if _is_int(image_id) and image_id in parsed:
            problems.append("duplicate image id")
        elif _is_int(image_id):
            parsed[image_id] = None  # known id; replaced below when the entry is valid
        file_name = _without_dot_slash(img["file_name"]) if not problems else ""
        if file_name in by_file:
            problems.append(f"duplicate file_name {file_name!r} (also {by_file[file_name]})")
        if problems:
            issues.extend(f"{where}: {p}" for p in problems)
            continue
        by_file[file_name] = where
        reason = path_rejection(file_name)
        if reason is not None:
            rejected.append((img["file_name"], reason))
        parsed[img["id"]] = _Image(file_name, img["width"], img["height"], rejected=reason is not None)
    return parsed, rejected


def _image_problems(img: Any) -> list[str]:
    """Return what is wrong with one image entry's keys and types."""
    if not isinstance(img, dict):
        return ["not a JSON object"]
    problems = [] if _is_int(img.get("id")) else ["missing or non-integer 'id'"]
    if not isinstance(img.get("file_name"), str):
        problems.append("missing or non-string 'file_name'")
    for key in ("width", "height"):
        if not (_is_int(img.get(key)) and img[key] > 0):
            problems.append(f"missing or non-positive integer {key!r} (got {img.get(key)!r})")
    return problems


def _without_dot_slash(file_name: str) -> str:
    while file_name.startswith("./"):
        file_name = file_name[2:]
    return file_name


def _parse_annotation(
    ann: Any,
    index: int,
    category_names: Mapping[int, str],
    images: Mapping[int, _Image | None],
    issues: list[str],
) -> tuple[int, str, Box, str | None] | None:
    """Return (image id, user category name, box, identity), or None after appending its problems."""
    if not isinstance(ann, dict):
        issues.append(f"annotations[{index}]: not a JSON object")
        return None
    image_id, category_id = ann.get("image_id"), ann.get("category_id")
    where = f"annotation {ann['id']}" if _is_int(ann.get("id")) else f"annotations[{index}]"
    where += f" (image {image_id})" if _is_int(image_id) else ""
    problems: list[str] = []
    if not _is_int(image_id):
        problems.append("missing or non-integer 'image_id'")
    elif image_id not in images:
        problems.append(f"unknown image id {image_id}")
    if not _is_int(category_id):
        problems.append("missing or non-integer 'category_id'")
    elif category_id not in category_names:
        problems.append(f"unknown category id {category_id}")
    image = images.get(image_id) if _is_int(image_id) else None
    box = _parse_bbox(ann.get("bbox"), image, problems)
    identity = _identity(ann, problems)
    issues.extend(f"{where}: {p}" for p in problems)
    if problems or box is None:
        return None  # box is None without a problem only when its image's entry was invalid (reported)
    return ann["image_id"], category_names[ann["category_id"]], box, identity


def _parse_bbox(bbox: Any, image: _Image | None, problems: list[str]) -> Box | None:
    """Return a COCO [x, y, w, h] as a covering (x0, y0, x1, y1) inside `image`, else None.

    Appends the problem to `problems`; returns None without one when `image` is unknown.
    """
    if not (
        isinstance(bbox, list)
        and len(bbox) == 4
        and all(isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v) for v in bbox)
    ):
        problems.append(f"bbox {bbox!r} is not 4 finite numbers [x, y, w, h]")
        return None
    x, y, w, h = (float(v) for v in bbox)
    if w <= 0 or h <= 0:
        problems.append(f"bbox {bbox} has a width or height <= 0")
        return None
    if image is None:
        return None
    tol = BBOX_TOLERANCE
    xs = _cover(x, x + w, image.width) if -tol <= x and x + w <= image.width + tol else None
    ys = _cover(y, y + h, image.height) if -tol <= y and y + h <= image.height + tol else None
    if xs is None or ys is None:
        problems.append(f"bbox {bbox} outside the {image.width}x{image.height} image")
        return None
    return xs[0], ys[0], xs[1], ys[1]


def _identity(ann: Mapping[str, Any], problems: list[str]) -> str | None:
    """Return the first identity of `IDENTITY_KEYS` present in `ann` as a string, None when absent."""
    attributes = ann.get("attributes")
    sources: dict[str, Mapping[str, Any]] = {
        "attributes": attributes if isinstance(attributes, dict) else {},
        "": ann,
    }
    for source, key in IDENTITY_KEYS:
        value = sources[source].get(key)
        if value is None:
            continue
        if (_is_int(value)) or (isinstance(value, str) and value.strip()):
            return str(value)
        label = f"attributes.{key}" if source else key
        problems.append(f"{label} must be an integer or a non-empty string, got {value!r}")
        return None
    return None


def _is_int(value: object) -> TypeGuard[int]:
    """True for a JSON integer (bool excluded)."""
    return isinstance(value, int) and not isinstance(value, bool)


def _raise_if(issues: Sequence[str], *, name: str) -> None:
    """Raise one InvalidInputError listing the first `MAX_ISSUES` issues, each naming `name`."""
    if not issues:
        return
    lines = [f"{name}: {issue}" for issue in issues[:MAX_ISSUES]]
    more = len(issues) - MAX_ISSUES
    raise InvalidInputError("; ".join(lines) + (f"; ... and {more} more problem(s)" if more > 0 else ""))
