"""classify_text: plates, personal text, confidently non-personal text (deny by default);
classify_texts: the same with line context (fragments of a personal line are personal)."""

from __future__ import annotations

import numpy as np
import pytest

from tasks.anonymize.pii import classify_text, classify_texts
from tasks.errors import InvalidInputError


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # the task's placard and other lone characters must survive
        ("3", "nonpii"),
        ("7", "nonpii"),
        ("12", "nonpii"),
        ("", "nonpii"),
        # plates, also as OCR returns them with spaces lost
        ("AB 123 CD", "plate"),
        ("AB123CD", "plate"),
        ("KL-482-XZ", "plate"),
        ("B 4821 XY", "plate"),
        # e-mail, URLs, phone numbers
        ("j.smith@mail.com", "pii"),
        ("www.janedoe.net", "pii"),
        ("+1 555 014 2231", "pii"),
        ("+15550142231", "pii"),
        ("(555) 014-2231", "pii"),
        # names and unknown text: deny by default
        ("John Smith", "pii"),
        ("JohnSmith", "pii"),
        ("Maria Garcia", "pii"),
        ("Baker", "pii"),
        ("BAKFRY", "pii"),
        ("12 Elm Road", "pii"),
        # signage
        ("BAKERY", "nonpii"),
        ("OPEN", "nonpii"),
        ("Open Daily", "nonpii"),
        ("NO ENTRY", "nonpii"),
        ("Park Street", "nonpii"),
        ("SHOES", "nonpii"),
        ("FRESH FRUIT", "nonpii"),
    ],
)
def test_classify_text(text: str, expected: str) -> None:
    assert classify_text(text) == expected


def test_short_digit_strings_are_not_phone_numbers() -> None:
    assert classify_text("555 01") == "pii"  # six digits: not a phone, not signage → denied anyway
    assert classify_text("OPEN 24") == "nonpii"


# A 16 px tall text line at y 100-116 and the task placard's digit: a lone glyph 56 px tall.
PLACARD = (180.0, 70.0, 216.0, 126.0)


def test_a_short_fragment_of_a_phone_line_is_redacted() -> None:
    texts = ["+1", "555 016 6524", "7"]
    boxes = np.array([[10, 100, 30, 116], [36, 101, 150, 117], PLACARD])
    assert [classify_text(t) for t in texts] == ["nonpii", "pii", "nonpii"]
    assert classify_texts(texts, boxes) == ["pii", "pii", "nonpii"]  # the placard digit is not on the line


def test_plate_pieces_on_one_line_are_a_plate() -> None:
    boxes = np.array([[95, 190, 147, 210], [137, 189, 214, 211]], np.float64)
    assert [classify_text(t) for t in ("RNM", "3882")] == ["pii", "pii"]
    assert classify_texts(["RNM", "3882"], boxes) == ["plate", "plate"]
    assert classify_texts(["B", "XP1815"], boxes) == ["plate", "plate"]  # a lone letter joins its plate


def test_fragments_off_the_line_and_signage_keep_their_class() -> None:
    line = [36, 100, 150, 116]
    cases = {
        "below": [10, 130, 30, 146],  # another line
        "far": [200, 100, 220, 116],  # 50 px (3 line heights) to the right
        "tall": [160, 80, 200, 136],  # beside it but 3.5x taller: a placard glyph
    }
    for name, box in cases.items():
        assert classify_texts(["Anna Silva", "4"], np.array([line, box]))[1] == "nonpii", name
    assert classify_texts(["HOTEL", "Anna Silva"], np.array([[0, 100, 30, 116], line])) == ["nonpii", "pii"]
    assert classify_texts(["4", "7"], np.array([[0, 100, 30, 116], line])) == ["nonpii", "nonpii"]
    assert classify_texts([], np.zeros((0, 4))) == []


def test_classify_texts_rejects_mismatched_boxes() -> None:
    with pytest.raises(InvalidInputError, match="classify_texts"):
        classify_texts(["a", "b"], np.zeros((3, 4)))
