"""Classify a recognised text string as a licence plate, personal text or confidently non-personal text.

Policy (deny by default): a string is `nonpii` only when it is *confidently* non-personal — at most
two alphanumerics (a lone digit: the task's placard must survive) or made only of common signage
words. Everything else that is not a plate is `pii`, including text we cannot classify: OCR misreads
and unknown words are redacted rather than risked. Redacting a harmless sign costs a little utility;
keeping a name costs privacy.
"""

from __future__ import annotations

import re
from typing import Literal

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
    ]
)

_EMAIL = re.compile(r"[\w.+-]+@[\w-]+(\.[\w-]+)*", re.IGNORECASE)
_URL = re.compile(r"(https?:|www\.)\S+", re.IGNORECASE)
_PHONE_CHARS = re.compile(r"^[+(]?[\d][\d\s().\-/]*$")
_PLATE_CHARS = re.compile(r"^[A-Z0-9][A-Z0-9 .·\-]*[A-Z0-9]$")


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
    if len(core) <= 2:
        return "nonpii"
    if _EMAIL.search(s) or _URL.search(s) or _is_phone(s):
        return "pii"
    if _is_signage(s):
        return "nonpii"
    if _is_plate(s):
        return "plate"
    return "pii"  # names, IDs, addresses and anything unrecognised: deny by default
