"""Classify a recognised text string as a licence plate, personal text or confidently non-personal text.

Policy (deny by default), after Microsoft Presidio's analyzer: pattern recognisers first (e-mail, URL,
phone, date of birth, street address with a house number, title or initial before a name, plate
formats), then a person-name recogniser (US census first names; census surnames that are rare as
English words), then a dictionary test: a string is `nonpii` only when it is at most two alphanumerics
(a lone digit: the task's placard must survive) or when every word is an ordinary English word
(`tasks.anonymize.lexicon`: wordfreq's English frequencies) and every number has at most 3 digits.
Everything else that is not a plate is `pii`: names, codes, and words we cannot classify (OCR misreads,
rare words) are redacted rather than risked. Redacting a harmless sign costs a little utility; keeping a
name costs privacy. No word list here is taken from the builtin dataset.

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

from tasks.anonymize import lexicon
from tasks.errors import InvalidInputError

TextClass = Literal["plate", "pii", "nonpii"]

# An ordinary word is at least this frequent in English (wordfreq's Zipf scale: 3.0 is once per million
# words), in its own form or as the singular of a plural ("butchers"). Rarer words are names, places,
# codes or misreads: denied. Both thresholds were chosen on half A of `bench.pii_text`'s vocabulary and
# scored on half B too.
COMMON_ZIPF = 3.0
SHORT_WORD_ZIPF = (7.0, 5.5)  # 1- and 2-letter words must be this common ("a", "no", "to"; not "AB", "KX")
# A census surname rarer than this as an English word ("Sharma", "Gupta") is a name; commoner ones are
# trades and things too ("Baker", "Butcher", "Tow"), judged by their company (a first name, a title).
SURNAME_ZIPF = 3.5
# A census first name is read as a name when at least this share of people (percent) bears it, or when it
# is rarer than `NAME_ZIPF` as a word: "Laura" (0.51 %), "Hana" (0.002 %, Zipf 3.2) are names; "Royal",
# "Star", "Golden", "Lane" (<= 0.009 %, common words) are words. Added after half B's misses were seen.
NAME_SHARE = 0.01
NAME_ZIPF = 4.0
# A string that is one census surname borne by at least this share of people ("SMITH" 1.0 %, "Miller"
# 0.42 %) is a name, however common the word; and a first-name-list word right before a surname-list word
# is a full name ("Will Smith", "Rose Baker").
LONE_SURNAME_SHARE = 0.05
# First names that are first of all calendar words or auxiliaries: read as the word ("OPEN MAY-SEPT").
NAME_WORDS: frozenset[str] = frozenset({"may", "june", "april", "august", "will", "can"})
_MAX_DIGITS = 3  # longer numbers are phone pieces, IDs, house or account numbers: not ordinary
# OCR drops the spaces between words ("NOPARKING", "FOR HOME OROFFICE USE"). A glued token of >= `GLUED_MIN`
# letters that is no census name is read again split at its camel-case humps, and each hump that is no word
# (nor a census name) into at most `GLUED_PARTS` words, each of >= 3 letters and at least `GLUED_ZIPF` common
# (or a common 2-letter word, `SHORT_WORD_ZIPF`); the split string then goes through every rule again
# (pattern recognisers included: "MrSmith" is "Mr Smith", a name). Stricter than `COMMON_ZIPF`: a long
# string of letters splits into rare words by chance (at 3.5 the lone name "Themba" became "the mba").
# Chosen on half A of `bench.pii_text`'s corpus with its spaces dropped, checked on halves B and C.
GLUED_MIN, GLUED_PARTS, GLUED_ZIPF = 5, 4, 4.0
# Camel-case humps, tried in turn: "WithEcoStand" -> With | Eco | Stand, "ABCdef" -> AB | Cdef; then case runs,
# "WEEKmedia" -> WEEK | media.
_HUMPS = (re.compile(r"[A-Z]?[a-z]+|[A-Z]+(?![a-z])"), re.compile(r"[A-Z]+|[a-z]+"))

_EMAIL = re.compile(r"[\w.+-]+@[\w-]+(\.[\w-]+)*", re.IGNORECASE)
_URL = re.compile(r"(https?:|www\.)\S+", re.IGNORECASE)
_PHONE_CHARS = re.compile(r"^[+(]?[\d][\d\s().\-/]*$")
_PLATE_CHARS = re.compile(r"^[A-Z0-9][A-Z0-9 .·\-]*[A-Z0-9]$")
_MONTHS = r"(jan|feb|mar|apr|may|jun|jul|aug|sep|sept|oct|nov|dec)[a-z]*\.?"
_DATE = re.compile(
    rf"\b\d{{1,2}}\s*[./-]\s*\d{{1,2}}\s*[./-]\s*(\d{{4}}|\d{{2}})\b|\b(19|20)\d{{2}}\s*[./-]\s*\d{{1,2}}\s*[./-]\s*\d{{1,2}}\b"
    rf"|\b\d{{1,2}}(st|nd|rd|th)?\s+{_MONTHS}\s+(19|20)?\d{{2}}\b|\b{_MONTHS}\s+\d{{1,2}}(st|nd|rd|th)?,?\s+(19|20)\d{{2}}\b"
    r"|\b(dob|d\.o\.b|born|birth)\b",
    re.IGNORECASE,
)
_STREET = (r"street|st|road|rd|avenue|ave|lane|ln|drive|dr|way|close|court|ct|place|pl|square|sq|boulevard|blvd"
           r"|crescent|terrace|gardens|grove|row|walk|mews|parade|rue|strasse|straße|str|via|calle|avenida")
_ADDRESS = re.compile(
    rf"\b\d{{1,5}}[a-z]?\s*,?\s+([^\W\d_][\w'.-]*\s+){{0,3}}({_STREET})\b\.?|\b({_STREET})\.?\s+[^\W\d_][\w'-]*\s+\d{{1,5}}\b"
    r"|\b(flat|apt|apartment|suite|unit|po box)\s*\d",
    re.IGNORECASE,
)
_TITLE = re.compile(r"\b(mr|mrs|ms|miss|mx|dr|prof|sir|dame|rev|lord|lady)\b\.?\s+[^\W\d_]", re.IGNORECASE)
_INITIAL = re.compile(r"\b[A-Z]\.\s*[A-Z][^\W\d_]+")  # "J. Smith", "J.Smith"
_TOKENS = re.compile(r"[^\W_]+(?:'[^\W_]+)*")  # words, numbers and glued codes ("7ABC123"), apostrophes kept
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


def _is_ordinary_word(token: str) -> bool:
    """One token is ordinary: a number of <= 3 digits, or a common English word that is not a name."""
    if token.isdigit():
        return len(token) <= _MAX_DIGITS
    if any(ch.isdigit() for ch in token):  # a code glued of letters and digits: "7ABC123", "A1"
        return False
    word = token.lower().removesuffix("'s")
    if len(word) <= len(SHORT_WORD_ZIPF):
        return lexicon.zipf(word) >= SHORT_WORD_ZIPF[len(word) - 1]
    forms = [word] + ([word[:-1]] if word.endswith("s") and not word.endswith("ss") and len(word) > 3 else [])
    freq = max(lexicon.zipf(f) for f in forms)
    if freq < COMMON_ZIPF:
        return False
    if any(_is_first_name(f) for f in forms):
        return False
    return not (word in lexicon.surnames() and freq < SURNAME_ZIPF)


def _plate_first(s: str) -> bool:
    """A plate-shaped string whose letter groups are not all words of >= 4 letters ("ABC 123", "CAR 911";
    not "OPEN 24", "EXIT 4") is judged as a plate before the dictionary sees it."""
    letters = [t for t in _TOKENS.findall(s) if t.isalpha()]
    return _is_plate(s) and not (letters and all(len(t) >= 4 for t in letters))


def _is_first_name(word: str) -> bool:
    share = lexicon.first_names().get(word)
    return share is not None and word not in NAME_WORDS and (share >= NAME_SHARE or lexicon.zipf(word) < NAME_ZIPF)


def _looks_like_a_name(tokens: list[str]) -> bool:
    words = [t.lower().removesuffix("'s") for t in tokens]
    if len(words) == 1:
        return lexicon.surnames().get(words[0], 0.0) >= LONE_SURNAME_SHARE
    # "May" / "Will" before a surname count only before a common one ("Will Smith", not "MAY-SEPT")
    floor = {a: LONE_SURNAME_SHARE if a in NAME_WORDS else 0.0 for a in words}
    return any(a in lexicon.first_names() and b in lexicon.surnames() and lexicon.surnames()[b] >= floor[a]
               for a, b in zip(words, words[1:], strict=False))


def is_ordinary(s: str) -> bool:
    """True when every token of `s` is ordinary (`_is_ordinary_word`), at least one is a word, and the
    tokens do not read as a name (a lone common surname, a first name before a surname)."""
    tokens = _TOKENS.findall(s)
    return (any(not t.isdigit() for t in tokens) and all(_is_ordinary_word(t) for t in tokens)
            and not _looks_like_a_name(tokens))


def _census_name(word: str) -> bool:
    return word.lower() in lexicon.first_names() or word.lower() in lexicon.surnames()


def _segment(word: str) -> list[str] | None:
    """`word` (lower-case letters) as the fewest common words (at most `GLUED_PARTS`; the commonest such
    split), or None."""
    def fits(part: str) -> bool:
        if len(part) == 2:
            return lexicon.zipf(part) >= SHORT_WORD_ZIPF[1]
        return len(part) >= 3 and lexicon.zipf(part) >= GLUED_ZIPF and _is_ordinary_word(part)

    best: list[tuple[int, float, list[str]] | None] = [(0, 0.0, [])] + [None] * len(word)
    for end in range(1, len(word) + 1):
        for start in range(end):
            prev, part = best[start], word[start:end]
            if prev is None or prev[0] >= GLUED_PARTS or not fits(part):
                continue
            cand = (prev[0] + 1, prev[1] - lexicon.zipf(part), [*prev[2], part])
            if best[end] is None or cand[:2] < best[end][:2]:  # type: ignore[index]
                best[end] = cand
    last = best[len(word)]
    return None if last is None else last[2]


def _split_humps(humps: list[str]) -> list[str] | None:
    """Each hump as itself (a word) or as common words (`_segment`), in the case it was read in; None when
    a hump is a census name or cannot be split."""
    parts: list[str] = []
    for hump in humps:
        ordinary = _is_ordinary_word(hump)
        if not ordinary and _census_name(hump):
            return None  # a name is never taken apart ("Rosemary" is no "rose mary")
        split = [hump] if ordinary else _segment(hump.lower())
        if split is None:
            return None
        at = 0
        for part in split:  # "NOPARKING" -> "NO PARKING"
            parts.append(hump[at : at + len(part)])
            at += len(part)
    return parts


def respaced(s: str) -> str | None:
    """`s` with its glued tokens split into words ("NOPARKING" -> "NO PARKING"), or None when no token
    needs it or one cannot be split (a token with digits, a census name, no split into common words)."""
    tokens, out, changed = _TOKENS.findall(s), [], False
    for token in tokens:
        if _is_ordinary_word(token):
            out.append(token)
            continue
        if not token.isalpha() or len(token) < GLUED_MIN or _census_name(token):
            return None
        parts = next((p for p in (_split_humps(h.findall(token)) for h in _HUMPS) if p is not None), None)
        if parts is None:
            return None
        out.append(" ".join(parts))
        changed = True
    return " ".join(out) if changed else None


def recognised_pii(s: str) -> str | None:
    """The first pattern recogniser that fires on `s` ("email", "url", "phone", "date", "address", "name"),
    or None."""
    checks = (("email", _EMAIL.search), ("url", _URL.search), ("phone", _is_phone), ("date", _DATE.search),
              ("address", _ADDRESS.search), ("name", _TITLE.search), ("name", _INITIAL.search))  # fmt: skip
    return next((kind for kind, check in checks if check(s)), None)


def classify_text(s: str) -> TextClass:
    """Classify one recognised string.

    Rules, in order: ≤ 2 alphanumerics → nonpii (a lone digit such as the task placard); a pattern
    recogniser fires (`recognised_pii`: e-mail, URL, phone, date, street address, title or initial and a
    name) → pii; only ordinary words and short numbers (`is_ordinary`) → nonpii; plate (5–9 upper-case
    alphanumerics mixing letters and digits, with separators) → plate; anything else → pii (deny by
    default: person names, IDs, codes, OCR misreads). A string with glued words is nonpii when it is so
    with its words split (`respaced`: "NOPARKING" is "NO PARKING"; "JOHNSMITH" stays personal).

    Args:
        s: the recognised string.
    Returns:
        "plate", "pii" or "nonpii".
    """
    core = _alnum(s)
    if len(core) <= _SHORT:
        return "nonpii"
    if recognised_pii(s):
        return "pii"
    if _plate_first(s):
        return "plate"
    if is_ordinary(s):
        return "nonpii"
    split = respaced(s)
    if split is not None and classify_text(split) == "nonpii":
        return "nonpii"
    if _is_plate(s):
        return "plate"
    return "pii"  # names, IDs and anything unrecognised: deny by default


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
    far taller than a text line) stays "nonpii"; so does ordinary text (`is_ordinary`).

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
