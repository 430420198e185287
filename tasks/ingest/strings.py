"""Strings rendered into the built-in dataset: licence plates, PII text and non-PII shop words.

All names, numbers and addresses are synthetic. Phone numbers use the fictional 555-01xx range.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

_LETTERS = "ABCDEFGHJKLMNPRSTUVWXYZ"  # no I, O, Q: as on most real plates
_FIRST = (
    "John", "Maria", "Ahmed", "Li", "Sofia", "Lucas", "Emma", "Noah", "Olga", "Ravi",
    "Anna", "Pierre", "Yuki", "Carlos", "Fatima", "David", "Chen", "Laura", "Omar", "Nina",
)  # fmt: skip
_LAST = (
    "Smith", "Garcia", "Khan", "Wang", "Rossi", "Martin", "Novak", "Silva", "Ivanova", "Patel",
    "Muller", "Dubois", "Tanaka", "Lopez", "Haddad", "Brown", "Zhang", "Moreau", "Nasser", "Berg",
)  # fmt: skip
_DOMAINS = ("mail.com", "inbox.org", "post.net", "webmail.eu", "example.com")
NONPII_WORDS: tuple[str, ...] = (
    "BAKERY", "OPEN", "SALE", "CAFE", "PHARMACY", "EXIT", "PARKING", "HOTEL", "BOOKS", "PIZZA",
    "FLOWERS", "CLOSED", "BAR", "MARKET", "TAXI", "BUS STOP", "NO ENTRY", "SHOES", "BANK", "FRESH FRUIT",
)  # fmt: skip


def _letters(rng: np.random.Generator, n: int) -> str:
    return "".join(_LETTERS[i] for i in rng.integers(0, len(_LETTERS), size=n))


def _digits(rng: np.random.Generator, n: int) -> str:
    return "".join(str(d) for d in rng.integers(0, 10, size=n))


_PLATE_FORMATS: tuple[Callable[[np.random.Generator], str], ...] = (
    lambda r: f"{_letters(r, 2)} {_digits(r, 3)} {_letters(r, 2)}",  # AB 123 CD
    lambda r: f"{_letters(r, 2)}-{_digits(r, 4)}",  # KX-4821
    lambda r: f"{_letters(r, 3)} {_digits(r, 4)}",  # ABC 1234
    lambda r: f"{_digits(r, 1)}{_letters(r, 3)}{_digits(r, 3)}",  # 7ABC123
    lambda r: f"{_letters(r, 1)} {_letters(r, 2)} {_digits(r, 4)}",  # B MW 2041
)


def plate_string(rng: np.random.Generator) -> str:
    """Return a random licence-plate string such as "AB 123 CD" or "KX-4821"."""
    return _PLATE_FORMATS[int(rng.integers(len(_PLATE_FORMATS)))](rng)


def _name(rng: np.random.Generator) -> str:
    return f"{_FIRST[int(rng.integers(len(_FIRST)))]} {_LAST[int(rng.integers(len(_LAST)))]}"


def _phone(rng: np.random.Generator) -> str:
    if rng.random() < 0.5:
        return f"+1 555 01{_digits(rng, 1)} {_digits(rng, 4)}"
    return f"(555) 01{_digits(rng, 1)}-{_digits(rng, 4)}"


def _email(rng: np.random.Generator) -> str:
    first, last = _name(rng).lower().split(" ")
    return f"{first[0]}.{last}@{_DOMAINS[int(rng.integers(len(_DOMAINS)))]}"


_PII_KINDS: tuple[Callable[[np.random.Generator], str], ...] = (_name, _phone, _email)


def pii_string(rng: np.random.Generator) -> str:
    """Return a synthetic personal string: a name, a phone number or an email address."""
    return _PII_KINDS[int(rng.integers(len(_PII_KINDS)))](rng)


def nonpii_string(rng: np.random.Generator) -> str:
    """Return a non-personal shop or street word such as "BAKERY" or "OPEN"."""
    return NONPII_WORDS[int(rng.integers(len(NONPII_WORDS)))]
