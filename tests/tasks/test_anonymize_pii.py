"""classify_text: plates, personal text, confidently non-personal text (deny by default)."""

from __future__ import annotations

import pytest

from tasks.anonymize.pii import classify_text


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
    ],
)
def test_classify_text(text: str, expected: str) -> None:
    assert classify_text(text) == expected


def test_short_digit_strings_are_not_phone_numbers() -> None:
    assert classify_text("555 01") == "pii"  # six digits: not a phone, not signage → denied anyway
    assert classify_text("OPEN 24") == "nonpii"
