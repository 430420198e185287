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
        ("Baker", "pii"),  # a trade, but alone a common surname (0.17 % of people): a name
        ("Grace Baker", "pii"),
        ("Mrs Baker", "pii"),
        ("BAKFRY", "pii"),
        ("12 Elm Road", "pii"),
        ("221B Baker Street", "pii"),
        ("Flat 4, 12 Mill Lane", "pii"),
        ("J. Smith", "pii"),
        ("Dr Okafor", "pii"),
        ("Priya Sharma", "pii"),  # neither name is a common English word
        ("Laura", "pii"),  # a first name alone (a name badge)
        ("DOB 12/03/1985", "pii"),
        ("born 1985-03-12", "pii"),
        ("12 March 1985", "pii"),
        ("ID 4821 7730", "pii"),
        ("Tel: 020 7946 0958", "pii"),
        ("7ABC123", "plate"),
        # signage
        ("BAKERY", "nonpii"),
        ("OPEN", "nonpii"),
        ("Open Daily", "nonpii"),
        ("NO ENTRY", "nonpii"),
        ("Park Street", "nonpii"),
        ("SHOES", "nonpii"),
        ("FRESH FRUIT", "nonpii"),
        # ordinary signage that no list of ours names (issue 17: a real street sign)
        ("NOTICE", "nonpii"),
        ("DOUBLE PARKING PROHIBITED AT ALL TIMES", "nonpii"),
        ("Conference Centre", "nonpii"),
        ("Car Parks", "nonpii"),
        ("Royal Newsagents", "nonpii"),  # "newsagents" is rare, but "news agents" are common words
        ("Royal Butchers", "nonpii"),  # "Royal" is a first name of 0.006 % of people: a word
        ("OPEN MAY-SEPT", "nonpii"),
        ("Wivenhoe Park", "pii"),  # a place name: rare, denied
        # common surnames are common words too: alone or after a first name they are names
        ("SMITH", "pii"),
        ("Miller", "pii"),
        ("Will Smith", "pii"),
        # plate-shaped strings with short letter groups are plates before they are words
        ("ABC 123", "plate"),
        ("CAR 911", "plate"),
        ("EXIT 4", "nonpii"),
        ("GATE 14", "nonpii"),
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


def test_the_policy_generalises_to_text_it_was_not_built_from() -> None:
    """`bench.pii_text`'s corpus (vocabularies of its own; half A chose the thresholds, C is held out):
    issue 17 asks >= 80 % of ordinary signage kept and >= 98 % of personal strings caught. Measured
    (2,000 strings per half): A 0.911 / 1.000, B 0.971 / 0.999, C 0.908 / 0.999."""
    from bench.pii_text import corpus, rates, score

    for half in ("A", "B", "C"):
        kept, caught = rates(score(corpus(1000, half=half, seed=1))[0])
        assert kept >= 0.85 and caught >= 0.99, (half, kept, caught)


def test_the_policy_reads_no_builtin_word_list() -> None:
    """The builtin generator's words must come from a set the classifier never sees."""
    import inspect

    from tasks.anonymize import lexicon, pii
    from tasks.ingest import strings

    source = inspect.getsource(pii) + inspect.getsource(lexicon)
    assert "tasks.ingest" not in source  # no import of the generator's strings
    for word in strings.NONPII_WORDS:
        assert f'"{word.lower()}"' not in source, word


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # OCR drops the spaces between words: signage read again with its words split
        ("NOPARKING", "nonpii"),
        ("FOR HOME OROFFICE USE", "nonpii"),
        ("CARPARK", "nonpii"),
        ("WayOut", "nonpii"),
        ("WEEKmedia", "nonpii"),  # case runs when the camel humps do not split: WEEK | media
        ("ROSEmary", "pii"),
        # names stay names however they are glued, and a lone name is never taken apart
        ("JOHNSMITH", "pii"),
        ("MariaGarcia", "pii"),
        ("MrSmith", "pii"),
        ("DrSmith", "pii"),
        ("Rosemary", "pii"),
        ("Themba", "pii"),
        ("Goodwin", "pii"),
        # digits are never split off: a handle stays personal
        ("sunshine77", "pii"),
    ],
)
def test_glued_words_are_read_split(text: str, expected: str) -> None:
    assert classify_text(text) == expected


def test_respaced_splits_only_what_needs_it() -> None:
    from tasks.anonymize.pii import respaced

    assert respaced("NOPARKING") == "NO PARKING"
    assert respaced("NO PARKING") is None  # nothing glued
    assert respaced("JOHNSMITH") is None  # no split into common words that are not names
    assert respaced("OPEN24HOURS") is None  # digits: left as read
