"""Classify a recognised text string as a licence plate, personal text or confidently non-personal text.

Policy (deny by default): a string is `nonpii` only when it is *confidently* non-personal — at most
two alphanumerics (a lone digit: the task's placard must survive) or made only of common signage
words. Everything else that is not a plate is `pii`, including text we cannot classify: OCR misreads
and unknown words are redacted rather than risked. Redacting a harmless sign costs a little utility;
keeping a name costs privacy.

A line the detector splits into pieces ("+1" | "555 016 6524") is judged as a line: `classify_texts`
redacts a short fragment that sits on the same text line as a personal string or a plate, so only a
lone short string (the placard digit, a glyph much taller than any text line) survives as `nonpii`.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Literal

import numpy as np
from numpy.typing import NDArray

from tasks.errors import InvalidInputError

TextClass = Literal["plate", "pii", "nonpii"]

# Common shop and street signage. Only whole strings made of these words count as non-personal.
SIGNAGE_WORDS: frozenset[str] = frozenset(
    [
        "open",
        "closed",
        "bakery",
        "cafe",
        "coffee",
        "bar",
        "pub",
        "hotel",
        "shop",
        "store",
        "market",
        "pharmacy",
        "bank",
        "exit",
        "entrance",
        "enter",
        "push",
        "pull",
        "stop",
        "sale",
        "pizza",
        "books",
        "bookshop",
        "florist",
        "tea",
        "food",
        "restaurant",
        "taxi",
        "bus",
        "parking",
        "park",
        "no",
        "entry",
        "welcome",
        "toilet",
        "toilets",
        "wc",
        "police",
        "hospital",
        "post",
        "office",
        "the",
        "and",
        "of",
        "a",
        "in",
        "on",
        "to",
        "sushi",
        "deli",
        "grocery",
        "butcher",
        "barber",
        "salon",
        "gym",
        "cinema",
        "museum",
        "library",
        "school",
        "station",
        "street",
        "road",
        "avenue",
        "ave",
        "st",
        "one",
        "way",
        "keep",
        "out",
        "danger",
        "caution",
        "fire",
        "info",
        "information",
        "menu",
        "daily",
        "fresh",
        "bread",
        "flowers",
        "news",
        "kiosk",
        "atm",
        "wifi",
        "free",
        "hours",
        "mon",
        "tue",
        "wed",
        "thu",
        "fri",
        "sat",
        "sun",
        "today",
        "late",
        "night",
        "day",
        "shoes",
        "shoe",
        "fruit",
        "fruits",
        "vegetables",
        "flower",
        "gifts",
        "toys",
        "wine",
        "laundry",
        "repair",
        "hardware",
    ]
)

_EMAIL = re.compile(r"[\w.+-]+@[\w-]+(\.[\w-]+)*", re.IGNORECASE)
_URL = re.compile(r"(https?:|www\.)\S+", re.IGNORECASE)
_PHONE_CHARS = re.compile(r"^[+(]?[\d][\d\s().\-/]*$")
_PLATE_CHARS = re.compile(r"^[A-Z0-9][A-Z0-9 .·\-]*[A-Z0-9]$")
_SHORT = 2  # a string of at most this many alphanumerics is a lone glyph or a fragment, not a word
# Two boxes are on one text line when neither is more than this much taller than the other, each one's
# vertical centre lies within the other's rows, and the horizontal gap between them is at most this many
# heights (of the taller). The task placard's lone digit is 2-4x taller than any text line: never on one.
_LINE_HEIGHT_RATIO = 1.3
_LINE_GAP = 1.0


def _alnum(s: str) -> str:
    return "".join(ch for ch in s if ch.isalnum())


def _is_phone(s: str) -> bool:
    digits = sum(ch.isdigit() for ch in s)
    return digits >= 7 and bool(_PHONE_CHARS.match(s.strip()))


def _is_plate(s: str) -> bool:
    core = _alnum(s)
    has_both = any(ch.isalpha() for ch in core) and any(ch.isdigit() for ch in core)
    upper = not any(ch.islower() for ch in core)  # plates are upper-case; "12 Elm Road" is not a plate
    return 5 <= len(core) <= 9 and has_both and upper and bool(_PLATE_CHARS.match(s.strip()))


def _is_signage(s: str) -> bool:
    words = re.findall(r"[a-z]+|\d+", s.lower())
    letters = [w for w in words if w.isalpha()]
    return bool(letters) and all(w in SIGNAGE_WORDS or (w.isdigit() and len(w) <= 2) for w in words)


def classify_text(s: str) -> TextClass:
    """Classify one recognised string.

    Rules, in order: ≤ 2 alphanumerics → nonpii (a lone digit such as the task placard); e-mail or URL →
    pii; phone number (≥ 7 digits, only digits and separators) → pii; only signage words (and numbers
    of ≤ 2 digits) → nonpii; plate (5–9 upper-case alphanumerics mixing letters and digits, with
    separators) → plate; anything
    else → pii (deny by default: person names, IDs, addresses, OCR misreads).

    Args:
        s: the recognised string.
    Returns:
        "plate", "pii" or "nonpii".
    """
    core = _alnum(s)
    if len(core) <= _SHORT:
        return "nonpii"
    if _EMAIL.search(s) or _URL.search(s) or _is_phone(s):
        return "pii"
    if _is_signage(s):
        return "nonpii"
    if _is_plate(s):
        return "plate"
    return "pii"  # names, IDs, addresses and anything unrecognised: deny by default


def is_fragment(s: str) -> bool:
    """True when `s` has at most two alphanumerics: `classify_text` calls it nonpii only for its length."""
    return len(_alnum(s)) <= _SHORT


def _same_line(boxes: NDArray[np.float64], height_ratio: float, gap: float) -> NDArray[np.bool_]:
    """(N, N) True where two of (N, 4) boxes lie on one text line: similar height, same rows, close."""
    h = boxes[:, 3] - boxes[:, 1]
    centre = (boxes[:, 1] + boxes[:, 3]) / 2
    taller = np.maximum(h[:, None], h[None, :])
    similar = taller <= height_ratio * np.minimum(h[:, None], h[None, :])
    rows = (boxes[None, :, 1] <= centre[:, None]) & (centre[:, None] <= boxes[None, :, 3])
    apart = np.maximum(boxes[None, :, 0] - boxes[:, None, 2], boxes[:, None, 0] - boxes[None, :, 2])
    return np.asarray(similar & rows & rows.T & (apart <= gap * taller), bool)


def text_lines(
    boxes: NDArray[np.float64], *, height_ratio: float = _LINE_HEIGHT_RATIO, gap: float = _LINE_GAP
) -> list[list[int]]:
    """Group boxes into text lines, each a list of indices sorted left to right.

    Two boxes are on one line when neither is more than `height_ratio` times taller than the other,
    each one's vertical centre lies within the other's rows, and at most `gap` heights (of the taller)
    separate them horizontally; lines are the connected components of that relation.

    Args:
        boxes: (N, 4) float [x0, y0, x1, y1].
        height_ratio: the largest height ratio of two boxes on one line, >= 1.
        gap: the largest horizontal gap, in heights of the taller box.
    Returns:
        The lines, each a list of indices into `boxes`; every index is in exactly one line.
    """
    boxes = np.asarray(boxes, np.float64).reshape(-1, 4)
    link, label = _same_line(boxes, height_ratio, gap), list(range(len(boxes)))
    for _ in range(len(boxes)):  # label propagation: each box takes the smallest label of its line
        label = [min(label[j] for j in np.flatnonzero(link[i])) for i in range(len(boxes))]
    groups: dict[int, list[int]] = {}
    for i in np.argsort(boxes[:, 0], kind="stable"):
        groups.setdefault(label[int(i)], []).append(int(i))
    return list(groups.values())


def classify_texts(texts: Sequence[str], boxes: NDArray[np.float64]) -> list[TextClass]:
    """Classify the strings of one image, each with its box: `classify_text`, then as text lines.

    The detector may split one line into pieces ("RNM" | "3882", "+1" | "555 016 6524"). Pieces on one
    text line (similar height, same rows, at most a line height apart) are also judged together: when
    the joined line is a plate, every piece is "plate"; otherwise, when a piece is personal, each short
    fragment (<= 2 alphanumerics) beside it becomes "pii". A lone short string (the task's placard digit,
    far taller than a text line) stays "nonpii"; so do signage words.

    Args:
        texts: N recognised strings.
        boxes: (N, 4) float [x0, y0, x1, y1] boxes of the strings, in pixels.
    Returns:
        N classes, as `classify_text`.
    Raises:
        InvalidInputError: `boxes` is not (N, 4).
    """
    boxes = np.asarray(boxes, np.float64)
    if boxes.shape != (len(texts), 4):
        raise InvalidInputError(f"classify_texts: boxes {boxes.shape} do not match {len(texts)} strings")
    classes = [classify_text(t) for t in texts]
    for line in text_lines(boxes) if len(texts) > 1 else []:
        if len(line) < 2:
            continue
        pieces = [i for i in line if classes[i] != "nonpii" or is_fragment(texts[i])]  # signage stays
        if classify_text(" ".join(texts[i] for i in line)) == "plate":
            new: TextClass = "plate"
        elif any(classes[i] != "nonpii" for i in line):
            pieces, new = [i for i in pieces if classes[i] == "nonpii"], "pii"
        else:
            continue
        classes = [new if i in pieces else c for i, c in enumerate(classes)]
    return classes
