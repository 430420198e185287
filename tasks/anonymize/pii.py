"""Classify a recognised text string as a licence plate, personal text or confidently non-personal text.

Policy (deny by default), after Microsoft Presidio's analyzer: pattern recognisers first (e-mail, URL,
phone, date of birth, street address with a house number, title or initial before a name, plate
formats), then a person-name recogniser (US census first names; census surnames that are rare as
English words), then a dictionary test: a string is `nonpii` only when it is at most two alphanumerics
(a lone digit: the task's placard must survive) or when every word is an ordinary English word
(`tasks.anonymize.lexicon`: wordfreq's English frequencies) and every number has at most 3 digits.
A line English does not keep is judged in its own language (issue 37; `tasks.anonymize.languages`, the
`languages` argument: `anonymize.text.languages`): every word common there (diacritics optional, as OCR
drops them), none a first name of the world list, a census surname, a title's name or, in Chinese, a
surname before one or two characters. Digit groups on a line are judged together (a phone number), and
Chinese resident IDs (checksum), IBANs (mod 97) and Chinese plates are recognised.
Everything else that is not a plate is `pii`: names, codes, and words we cannot classify (OCR misreads,
rare words) are redacted rather than risked. Redacting a harmless sign costs a little utility; keeping a
name costs privacy. No word list here is taken from the builtin dataset.

A line the detector splits into pieces ("+1" | "555 016 6524") is judged as a line: `classify_texts`
redacts a short fragment that sits on the same text line as a personal string or a plate, so only a
lone short string (the placard digit, a glyph much taller than any text line) survives as `nonpii`.
"""

from __future__ import annotations

import math
import re
from collections.abc import Collection, Sequence
from typing import Literal

import numpy as np
from numpy.typing import NDArray

from tasks.anonymize import languages as langs
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
# Other languages (`tasks.anonymize.languages`): a word is ordinary when it is at least `COMMON_ZIPF` common in
# the line's language (1- and 2-letter words: `OTHER_SHORT_ZIPF`) and no first name. Wordfreq's lists hold
# names as words ("jean" 5.5 in French, "jan" 5.3 in Czech), so the world name list decides
# (`lexicon.world_first_names`): a first name given in the language's countries (`languages.NAME_COUNTRIES`)
# (in any EU language's countries: names travel, "Richard, Sophie" is no Romanian) is a name unless commoner
# than `OTHER_NAME_ZIPF` as a word; one given only elsewhere is a name when rarer than `ABROAD_NAME_ZIPF`
# ("loi", a Vietnamese name, is French "law"). In English lines, the census rules below judge names.
# Chosen on half A of `bench.pii_languages`' corpora.
OTHER_SHORT_ZIPF = (6.0, 4.5)
OTHER_NAME_ZIPF = 6.0
ABROAD_NAME_ZIPF = 4.0
# Surnames: the census list holds Europe's too ("novak" 0.010 %, "kowalski", "schmidt"); words are kept that
# are commoner than `OTHER_SURNAME_ZIPF` in the line's language ("post" 4.9 in German, "pan" 4.8 in Spanish).
OTHER_SURNAME_SHARE, OTHER_SURNAME_ZIPF = 0.001, 4.5
EUROPE_POPULARITY = 2  # of gender-guesser's 1-13: "bitte" and "caja" (1: a handful of people) are words
_EUROPE = frozenset(c for lang, countries in langs.NAME_COUNTRIES.items() if lang != "zh" for c in countries)
_CONTINENT = _EUROPE - set(langs.NAME_COUNTRIES["en"])
CONTINENTAL_POPULARITY = 5  # of gender-guesser's 1-13 ("ferry" 4 in the Netherlands stays an English word)
# Chinese: a word (jieba's cut) is ordinary when at least `ZH_COMMON_ZIPF` common; a word shaped like a name
# (a common surname, then one or two characters) is a name unless commoner than `ZH_NAME_ZIPF` ("王伟" 2.6,
# "李女士" 3.5 are names; "周末" 4.7, "马上" 4.8 are words).
# One word alone says little about its language: among K candidate languages, some list holds almost any
# short string of letters as a rare word ("Hado", an OCR fragment of "Haddad", is Lithuanian at Zipf 3.4).
# A line of one word is kept in a language other than English only when that language is settled on its
# image (a line of >= `SETTLING_WORDS` words is ordinary there: `classify_texts`), or when the word is K times
# commoner there than `COMMON_ZIPF` asks (+log10 K on the Zipf scale; K: the allowed Latin-script languages
# but English, 18 by default: 4.26). Naming fewer languages (`anonymize.text.languages`) lowers the bar.
SETTLING_WORDS = 2
ZH_COMMON_ZIPF = 3.0
ZH_NAME_ZIPF = 4.0
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
# Digit groups on one line are judged together: a run of digit groups joined by spaces, dots, dashes, slashes
# or brackets ("Tel. 601 234 567", "+420 601-234-567", "(0)30 / 123 45 67") with >= `PHONE_DIGITS` digits is
# a phone number (or an ID, a date, an account number: personal in any case). A time range ("9.00-17.00") is
# no phone number. The shortest national numbers of the EU and China have 7 digits.
PHONE_DIGITS = 7
_DIGIT_RUN = re.compile(r"(?:\+|(?<!\d)00)?\(?\d+\)?(?:[ \t.\-/\u2013()]{1,3}\d+\)?)*")
_TIME_RANGE = re.compile(r"(?<!\d)\d{1,2}[:.h]\d{2}\s*[-\u2013\u2014]\s*\d{1,2}[:.h]\d{2}(?!\d)")
# Chinese resident identity numbers: 17 digits and an ISO 7064 MOD 11-2 check character (GB 11643-1999).
_CN_ID = re.compile(r"(?<!\d)\d{17}[\dXx](?![\dXx])")
_CN_ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_IBAN = re.compile(r"\b[A-Z]{2}\d{2}(?:[ ]?[A-Z0-9]){11,30}\b")
# Chinese plates: the province's character, the city's letter, then five (six: new energy) characters.
_CN_PLATE = re.compile(
    r"[京津沪渝冀豫云辽黑湘皖鲁新苏浙赣鄂桂甘晋蒙陕吉闽贵粤青藏川宁琼][A-Z][\s·•.\-]?[A-Z0-9]{5,6}(?![A-Z0-9])"
)
_CN_ADDRESS = re.compile(r"[路街道巷弄]\s*\d+\s*[号號]|\d+\s*(号楼|號樓|室|单元|單元)")
_CN_TITLE = re.compile(
    "[" + "".join(sorted(c for c in lexicon.CHINESE_SURNAMES if len(c) == 1)) + "]"
    r"(先生|女士|小姐|老师|經理|经理|医生|醫生|教授|律师|主任|同学)"
)
# Titles before a name, per language (English's are `_TITLE`).
_OTHER_TITLES = {
    "de": "herr|frau|hr|fr|dr|prof|dipl|ing", "fr": "m|mme|mlle|me|dr|pr", "es": "sr|sra|srta|don|do\u00f1a|dona|d\u00f1a|dna|dr|dra",
    "it": "sig|sig\\.ra|dott|dott\\.ssa|ing|avv|prof|dr", "pt": "sr|sra|dr|dra", "nl": "dhr|mevr|mw|dr|ir|mr",
    "cs": "pan|pan\u00ed|pani|ing|mgr|mudr|judr|bc|phdr|rndr|doc|prof|dr", "sk": "pan|pani|ing|mgr|mudr|judr|bc|doc|prof|dr",
    "pl": "pan|pani|in\u017c|inz|mgr|dr|prof", "hu": "dr|prof|id|ifj", "ro": "dl|dna|dr|prof", "sl": "g|ga|dr|prof",
    "hr": "g|ga|dr|prof",
}  # fmt: skip
_OTHER_TITLE = {
    lang: re.compile(rf"\b({t})\b\.?\s+[^\W\d_]", re.IGNORECASE) for lang, t in _OTHER_TITLES.items()
}
_DEFAULT_TITLE = re.compile(r"\b(dr|prof)\b\.?\s+[^\W\d_]", re.IGNORECASE)
_ELIDED = ("fr", "it", "ca")  # languages whose articles elide ("l'entrée", "dell'arte")
_PLATE_CHARS = re.compile(r"^[A-Z0-9][A-Z0-9 .·\-]*[A-Z0-9]$")
_MONTHS = r"(jan|feb|mar|apr|may|jun|jul|aug|sep|sept|oct|nov|dec)[a-z]*\.?"
_DATE = re.compile(
    rf"\b\d{{1,2}}\s*[./-]\s*\d{{1,2}}\s*[./-]\s*(\d{{4}}|\d{{2}})\b|\b(19|20)\d{{2}}\s*[./-]\s*\d{{1,2}}\s*[./-]\s*\d{{1,2}}\b"
    rf"|\b\d{{1,2}}(st|nd|rd|th)?\s+{_MONTHS}\s+(19|20)?\d{{2}}\b|\b{_MONTHS}\s+\d{{1,2}}(st|nd|rd|th)?,?\s+(19|20)\d{{2}}\b"
    r"|\b(dob|d\.o\.b|born|birth)\b",
    re.IGNORECASE,
)
_STREET = (
    r"street|st|road|rd|avenue|ave|lane|ln|drive|dr|way|close|court|ct|place|pl|square|sq|boulevard|blvd"
    r"|crescent|terrace|gardens|grove|row|walk|mews|parade|rue|strasse|straße|str|via|calle|avenida"
    r"|ulice|ul|náměstí|namesti|nám|nam|třída|trida|tř|tr|nábřeží|nabrezi|ulica|aleja|al|plac|os|osiedle|weg|platz|allee|gasse|chemin|allée"
    r"|impasse|quai|cours|bd|avda|av|plaza|paseo|pza|carrer|rua|viale|piazza|corso|largo|straat|laan|plein"
    r"|gatan|vägen|vagen|gade|vej|utca|út|ut|tér|ter|ulitsa|odos|strada|bulevardul|cesta|trg"
)
_ADDRESS = re.compile(
    rf"\b\d{{1,5}}[a-z]?\s*,?\s+([^\W\d_][\w'.-]*\s+){{0,3}}({_STREET})\b\.?|\b({_STREET})\.?\s+[^\W\d_][\w'-]*\s+\d{{1,5}}\b"
    r"|\b(flat|apt|apartment|suite|unit|po box)\s*\d"
    r"|(straße|strasse|str\.|weg|gasse|platz|allee|damm|ufer|straat|laan|gracht|gatan|vägen|vagen|vej)\s+\d{1,4}\b"
    r"|(?<![\d.,:])\b\d{3}\s\d{2}\s+[^\W\d_]{3,}|\b\d{2}-\d{3}\s+[^\W\d_]{3,}"  # postal codes: CZ/SK/GR, PL
    r"|\bc/\s*[^\W\d_]",
    re.IGNORECASE,
)
_TITLE = re.compile(r"\b(mr|mrs|ms|miss|mx|dr|prof|sir|dame|rev|lord|lady)\b\.?\s+[^\W\d_]", re.IGNORECASE)
_INITIAL = re.compile(r"\b([^\W\d_])\.\s*([^\W\d_])[^\W\d_]+")  # "J. Smith", "J.Smith", "V. Černá"
# Titles that are no English word, in any line: "Frau Wolf" must not pass as two English words.
_WORLD_TITLE = re.compile(
    r"\b(herr|frau|mme|mlle|monsieur|madame|mademoiselle|se\u00f1or|senor|se\u00f1ora|senora"
    r"|se\u00f1orita|senorita|signor|signora|signorina|mevr|dhr|sra|srta|d\u00f1a|do\u00f1a|pan\u00ed|mudr|judr|mgr|phdr|rndr"
    r"|dott|dott\.ssa|sig\.ra|in\u017c)\b\.?\s+[^\W\d_]",
    re.IGNORECASE,
)
_NOT_ALNUM, _DIGIT = re.compile(r"[\W_]+"), re.compile(r"\d")
_TOKENS = re.compile(r"[^\W_]+(?:'[^\W_]+)*")  # words, numbers and glued codes ("7ABC123"), apostrophes kept
_SHORT = 2  # a string of at most this many alphanumerics is a lone glyph or a fragment, not a word
# (a Chinese character counts twice: each is a syllable, two make a name such as "王伟")
# Two boxes are on one text line when neither is more than this much taller than the other, each one's
# vertical centre lies within the other's rows, and the horizontal gap between them is at most this many
# heights (of the taller). The task placard's lone digit is 2-4x taller than any text line: never on one.
_LINE_HEIGHT_RATIO = 1.3
_LINE_GAP = 1.0


def _alnum(s: str) -> str:
    return _NOT_ALNUM.sub("", s)


def _digit_count(s: str) -> int:
    return len(_DIGIT.findall(s))


def _size(s: str) -> int:
    """Alphanumerics of `s`, a Chinese character counting twice (`_SHORT`)."""
    core = _alnum(s)
    return len(core) + len(langs.HAN.findall(core))


def _is_phone(s: str) -> bool:
    """A run of digit groups with >= `PHONE_DIGITS` digits, time ranges aside (`PHONE_DIGITS`)."""
    if _digit_count(s) < PHONE_DIGITS:
        return False
    s = _TIME_RANGE.sub(" ", s)
    return any(_digit_count(m.group()) >= PHONE_DIGITS for m in _DIGIT_RUN.finditer(s))


def _is_initial(s: str) -> bool:
    """An upper-case initial, a full stop, then a capitalised word, in any alphabet ("Č. Dvořák")."""
    return any(m.group(1).isupper() and m.group(2).isupper() for m in _INITIAL.finditer(s))


def _is_address(s: str) -> bool:
    """A street address (`_ADDRESS`): every one has a digit, so a line without one is not tried (fast)."""
    return bool(_DIGIT.search(s) and _ADDRESS.search(s))


def _is_date(s: str) -> bool:
    """A date, or a word that introduces one ("DOB"); a time range ("9.00-17.00") is none."""
    return bool(_DATE.search(_TIME_RANGE.sub(" ", s)))


def _is_cn_id(s: str) -> bool:
    """A Chinese resident identity number whose check character is right."""
    if _digit_count(s) < 17:
        return False
    for m in _CN_ID.finditer(s):
        number = m.group()
        total = sum(int(d) * w for d, w in zip(number[:17], _CN_ID_WEIGHTS, strict=True))
        if "10X98765432"[total % 11] == number[17].upper():
            return True
    return False


def _is_iban(s: str) -> bool:
    """An IBAN whose ISO 13616 mod-97 check holds."""
    if _digit_count(s) < 4:
        return False
    for m in _IBAN.finditer(s.upper()):
        code = m.group().replace(" ", "")
        digits = "".join(str(int(ch, 36)) for ch in code[4:] + code[:4])
        if int(digits) % 97 == 1:
            return True
    return False


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
    if any(_is_first_name(f) for f in forms) or _continental_name(word, freq):
        return False
    return not (lexicon.plain(word) in lexicon.surnames() and freq < SURNAME_ZIPF)  # "müller" is "muller"


def _continental_name(word: str, freq: float) -> bool:
    """In an English line: a first name the census lacks, popular (>= `CONTINENTAL_POPULARITY`) in a
    non-English European country, and rarer than `ABROAD_NAME_ZIPF` in English ("François", "José")."""
    if word in lexicon.first_names() or freq >= ABROAD_NAME_ZIPF:
        return False
    given = lexicon.world_first_names().get(word, {})
    return max((v for c, v in given.items() if c in _CONTINENT), default=0) >= CONTINENTAL_POPULARITY


def _plate_first(s: str) -> bool:
    """A plate-shaped string whose letter groups are not all words of >= 4 letters ("ABC 123", "CAR 911";
    not "OPEN 24", "EXIT 4"), or a Chinese plate ("京A·12345"), is judged as a plate before the dictionary
    sees it."""
    if _CN_PLATE.search(s):
        return True
    letters = [t for t in _TOKENS.findall(s) if t.isalpha()]
    return _is_plate(s) and not (letters and all(len(t) >= 4 for t in letters))


def _is_first_name(word: str) -> bool:
    share = lexicon.first_names().get(word)
    return (
        share is not None
        and word not in NAME_WORDS
        and (share >= NAME_SHARE or lexicon.zipf(word) < NAME_ZIPF)
    )


def _looks_like_a_name(tokens: list[str]) -> bool:
    words = [
        lexicon.plain(t.lower().removesuffix("'s")) for t in tokens
    ]  # the census writes "garcia", "jose"
    if len(words) == 1:
        return lexicon.surnames().get(words[0], 0.0) >= LONE_SURNAME_SHARE
    # "May" / "Will" before a surname count only before a common one ("Will Smith", not "MAY-SEPT")
    floor = {a: LONE_SURNAME_SHARE if a in NAME_WORDS else 0.0 for a in words}
    return any(
        a in lexicon.first_names() and b in lexicon.surnames() and lexicon.surnames()[b] >= floor[a]
        for a, b in zip(words, words[1:], strict=False)
    )


def is_ordinary(s: str, *, languages: Sequence[str] = langs.DEFAULT, settled: Collection[str] = ()) -> bool:
    """True when `s` reads as ordinary words in one of `languages` and not as a name (`ordinary_language`)."""
    return ordinary_language(s, languages=languages, settled=settled) is not None


def ordinary_language(
    s: str, *, languages: Sequence[str] = langs.DEFAULT, settled: Collection[str] = ()
) -> str | None:
    """The language in which `s` reads as ordinary words and not as a name, or None.

    English first (today's rule: every token ordinary by `_is_ordinary_word`, at least one a word, and the
    tokens do not read as a name: a lone common surname, a first name before a surname); otherwise the
    line's language (`languages.line_language`) judges it (`_other_ordinary`, `_chinese_ordinary`). A line
    of one word in another Latin-script language must be `lone_zipf(languages)` common there, unless that
    language is in `settled` (other lines of the image are ordinary in it: `classify_texts`).
    """
    tokens = _TOKENS.findall(s)
    if not any(not t.isdigit() for t in tokens):
        return None
    english = "en" in languages and langs.script(s) == "latin"
    if english and all(_is_ordinary_word(t) for t in tokens) and not _looks_like_a_name(tokens):
        return "en"
    han = langs.HAN.search(s) is not None
    if not han and any(
        any(ch.isdigit() for ch in t) and not (t.isdigit() and len(t) <= _MAX_DIGITS) for t in tokens
    ):
        return None  # a code ("A1") or a long number: ordinary in no language (Chinese is cut anew below)
    words = [t.lower() for t in tokens if not t.isdigit()]
    lang = _settled_language(words, settled, languages) or langs.line_language(s, words, languages)
    if lang is None or lang == "en":
        return None
    if lang == "zh":
        return lang if _chinese_ordinary(s, languages) else None
    if (
        len(words) == 1
        and lang not in settled
        and lang not in langs.NON_LATIN
        and langs.zipf(words[0], lang) < lone_zipf(languages)
    ):
        return None  # a lone rare word: a guess among many languages (`lone_zipf`)
    title = _OTHER_TITLE.get(lang, _DEFAULT_TITLE)
    if title.search(s) or title.search(lexicon.plain(s)) or not all(_other_word(t, lang) for t in tokens):
        return None
    return lang


def _settled_language(words: Sequence[str], settled: Collection[str], languages: Sequence[str]) -> str | None:
    """For a line of one word: the settled language it is commonest in, when it is common there."""
    if len(words) != 1 or not settled:
        return None
    found = max(((langs.zipf(words[0], lang), lang) for lang in languages if lang in settled), default=None)
    return found[1] if found and found[0] >= COMMON_ZIPF else None


def doubtful(
    texts: Sequence[str], classes: Sequence[TextClass], languages: Sequence[str] = langs.DEFAULT
) -> list[bool]:
    """Kept lines of one word that English does not know (`classes` from `classify_texts`): the piece of a
    longer line OCR may have read alone ("Hado" of "Li Haddad"), worth a second look at its rows."""
    return [
        c == "nonpii"
        and not is_fragment(t)
        and sum(not w.isdigit() for w in _TOKENS.findall(t)) == 1
        and ordinary_language(t, languages=languages, settled=languages) != "en"
        for t, c in zip(texts, classes, strict=True)
    ]


def lone_zipf(languages: Sequence[str]) -> float:
    """How common a lone word must be in a Latin-script language but English whose use is not settled on
    its image: `COMMON_ZIPF` + log10 of how many such languages are allowed (`SETTLING_WORDS`)."""
    latin = [lang for lang in languages if lang != "en" and lang not in langs.NON_LATIN]
    return COMMON_ZIPF + math.log10(max(len(latin), 1))


def _other_word(token: str, lang: str) -> bool:
    """One token is ordinary in `lang` (not English): a short number, or a common word that is no name."""
    if token.isdigit():
        return len(token) <= _MAX_DIGITS
    if any(ch.isdigit() for ch in token) or _camel(token):  # "MrEze": glued words, not Croatian "mreže"
        return False
    parts = token.lower().split("'")
    if len(parts) > 1 and lang in _ELIDED and len(parts[0]) <= 3:  # "l'entrée": the article, then its word
        parts = parts[1:]
    return all(_other_form(part, lang) for part in parts)


def _camel(token: str) -> bool:
    """A lower-case letter right before a capital ("MrEze", "RahulBauer"): words glued together."""
    return any(a.islower() and b.isupper() for a, b in zip(token, token[1:], strict=False))


def _other_form(word: str, lang: str) -> bool:
    freq = langs.zipf(word, lang)
    if len(word) <= len(OTHER_SHORT_ZIPF):
        return freq >= OTHER_SHORT_ZIPF[len(word) - 1]
    if freq < COMMON_ZIPF:
        return False
    return not (_world_name(word, lang, freq) or _other_surname(word, lang, freq))


def _other_surname(word: str, lang: str, freq: float) -> bool:
    """`word` (`freq` common in `lang`) is a surname: a US census surname (diacritics dropped: "novák" is
    "novak") borne by many ("garcía", "schmidt": `LONE_SURNAME_SHARE`) unless very common as a word, or by a
    few thousand (`OTHER_SURNAME_SHARE`) and not common as a word (`OTHER_SURNAME_ZIPF`: "Post", "Herbst"
    stay words); or a Czech or Slovak married name ("Nováková") that is no common word."""
    share = lexicon.surnames().get(lexicon.plain(word), 0.0)
    if (share >= LONE_SURNAME_SHARE and freq < OTHER_NAME_ZIPF) or (
        share >= OTHER_SURNAME_SHARE and freq < OTHER_SURNAME_ZIPF
    ):
        return True
    return lang in ("cs", "sk") and word.endswith("ová") and freq < OTHER_SURNAME_ZIPF


def _world_name(word: str, lang: str, freq: float) -> bool:
    """`word` (`freq` common in `lang`) is a first name (`OTHER_NAME_ZIPF`): one given in Europe, unless very
    common as a word; one given only elsewhere, unless common."""
    given = lexicon.world_first_names().get(lexicon.latin(word) if lang in ("el", "bg") else word)
    if not given:
        return False
    europe = any(given.get(country, 0) >= EUROPE_POPULARITY for country in _EUROPE)
    return freq < (OTHER_NAME_ZIPF if europe else ABROAD_NAME_ZIPF)


def _name_shaped(word: str) -> bool:
    """A Chinese word that is a common surname and one or two more characters ("王伟", "欧阳娜娜")."""
    return any(word[:n] in lexicon.CHINESE_SURNAMES and 1 <= len(word) - n <= 2 for n in (1, 2))


def _chinese_ordinary(s: str, languages: Sequence[str]) -> bool:
    """Every jieba word of `s` is a common Chinese word that is not shaped like a name (or, in Latin
    script, ordinary in English or another allowed language; a number of at most 3 digits); a surname
    before a title ("王先生") or a lone surname character before a short rare word is a name."""
    if _CN_TITLE.search(s):
        return False
    words = [w for w in langs.han_words(s) if any(ch.isalnum() for ch in w)]
    for word, after in zip(words, [*words[1:], ""], strict=True):
        if langs.script(word) != "han":
            latin = [lang for lang in languages if lang != "zh"]
            if not (word.isdigit() and len(word) <= _MAX_DIGITS) and not (
                latin and is_ordinary(word, languages=latin)
            ):
                return False
            continue
        freq = langs.zipf(word, "zh")
        if freq < ZH_COMMON_ZIPF or (_name_shaped(word) and freq < ZH_NAME_ZIPF):
            return False
        if (
            word in lexicon.CHINESE_SURNAMES
            and langs.script(after) == "han"
            and len(after) <= 2
            and langs.zipf(after, "zh") < ZH_NAME_ZIPF
        ):
            return False
    return True


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
        humps = [found for found in (h.findall(token) for h in _HUMPS) if "".join(found) == token]
        parts = next((p for p in map(_split_humps, humps) if p is not None), None)  # "Marková": no humps
        if parts is None:
            return None
        out.append(" ".join(parts))
        changed = True
    return " ".join(out) if changed else None


def recognised_pii(s: str) -> str | None:
    """The first pattern recogniser that fires on `s` ("email", "url", "id", "iban", "phone", "date",
    "address", "name"), or None."""
    checks = (("email", _EMAIL.search), ("url", _URL.search), ("id", _is_cn_id), ("iban", _is_iban),
              ("phone", _is_phone), ("date", _is_date), ("address", _is_address),
              ("address", _CN_ADDRESS.search), ("name", _TITLE.search), ("name", _is_initial), ("name", _WORLD_TITLE.search), ("name", _CN_TITLE.search))  # fmt: skip
    bare = lexicon.plain(s)  # OCR without the diacritics: "namesti Prochazka 85", "Dna. Lopez"
    return next((kind for kind, check in checks if check(s) or (bare != s and check(bare))), None)


def classify_text(
    s: str, *, languages: Sequence[str] = langs.DEFAULT, settled: Collection[str] = ()
) -> TextClass:
    """Classify one recognised string.

    Rules, in order: ≤ 2 alphanumerics → nonpii (a lone digit such as the task placard); a pattern
    recogniser fires (`recognised_pii`: e-mail, URL, phone, date, street address, title or initial and a
    name) → pii; only ordinary words and short numbers (`is_ordinary`) → nonpii; plate (5–9 upper-case
    alphanumerics mixing letters and digits, with separators) → plate; anything else → pii (deny by
    default: person names, IDs, codes, OCR misreads). A string with glued words is nonpii when it is so
    with its words split (`respaced`: "NOPARKING" is "NO PARKING"; "JOHNSMITH" stays personal).

    Args:
        s: the recognised string.
        languages: the ISO codes whose ordinary words are kept (`languages.DEFAULT`, or any subset of
            `languages.SUPPORTED`: `anonymize.text.languages`); a line in none of them stays personal.
        settled: languages other lines of the same image are ordinary in (`ordinary_language`).
    Returns:
        "plate", "pii" or "nonpii".
    """
    if _size(s) <= _SHORT:
        return "nonpii"
    if recognised_pii(s):
        return "pii"
    if _plate_first(s):
        return "plate"
    if is_ordinary(s, languages=languages, settled=settled):
        return "nonpii"
    split = respaced(s)
    if split is not None and classify_text(split, languages=languages, settled=settled) == "nonpii":
        return "nonpii"
    if _is_plate(s):
        return "plate"
    return "pii"  # names, IDs and anything unrecognised: deny by default


def settled_languages(
    texts: Sequence[str], classes: Sequence[TextClass], languages: Sequence[str]
) -> frozenset[str]:
    """The Latin-script languages but English in which a line of >= `SETTLING_WORDS` words of one image is
    ordinary (`classes`: each string's class without any settled language)."""
    found = (
        ordinary_language(t, languages=languages)
        for t, c in zip(texts, classes, strict=True)
        if c == "nonpii" and sum(not w.isdigit() for w in _TOKENS.findall(t)) >= SETTLING_WORDS
    )
    return frozenset(
        lang for lang in found if lang is not None and lang != "en" and lang not in langs.NON_LATIN
    )


def is_fragment(s: str) -> bool:
    """True when `s` has at most two alphanumerics: `classify_text` calls it nonpii only for its length."""
    return _size(s) <= _SHORT


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


def classify_texts(
    texts: Sequence[str], boxes: NDArray[np.float64], *, languages: Sequence[str] = langs.DEFAULT
) -> list[TextClass]:
    """Classify the strings of one image, each with its box: `classify_text`, then as text lines.

    The detector may split one line into pieces ("RNM" | "3882", "+1" | "555 016 6524"). Pieces on one
    text line (similar height, same rows, at most a line height apart) are also judged together: when
    the joined line is a plate, every piece is "plate"; when its digit groups make a phone number
    ("Tel. 601" | "234 567"), every piece is "pii"; otherwise, when a piece is personal, each short
    fragment (<= 2 alphanumerics) beside it becomes "pii". A lone short string (the task's placard digit,
    far taller than a text line) stays "nonpii"; so does ordinary text (`is_ordinary`).

    Args:
        texts: N recognised strings.
        boxes: (N, 4) float [x0, y0, x1, y1] boxes of the strings, in pixels.
        languages: as `classify_text`.
    Returns:
        N classes, as `classify_text`.
    Raises:
        InvalidInputError: `boxes` is not (N, 4).
    """
    boxes = np.asarray(boxes, np.float64)
    if boxes.shape != (len(texts), 4):
        raise InvalidInputError(f"classify_texts: boxes {boxes.shape} do not match {len(texts)} strings")
    classes = [classify_text(t, languages=languages) for t in texts]
    settled = settled_languages(texts, classes, languages)
    if settled:  # a lone word in a language the image's other lines are in: judged at the usual bar
        classes = [
            classify_text(t, languages=languages, settled=settled) if c == "pii" else c
            for t, c in zip(texts, classes, strict=True)
        ]
    for line in text_lines(boxes) if len(texts) > 1 else []:
        if len(line) < 2:
            continue
        pieces = [i for i in line if classes[i] != "nonpii" or is_fragment(texts[i])]  # signage stays
        joined = " ".join(texts[i] for i in line)
        if classify_text(joined, languages=languages) == "plate":
            new: TextClass = "plate"
        elif _is_phone(joined):  # digit groups split over pieces are one number
            pieces, new = [i for i in line if classes[i] == "nonpii"], "pii"
        elif any(classes[i] != "nonpii" for i in line):
            pieces, new = [i for i in pieces if classes[i] == "nonpii"], "pii"
        else:
            continue
        classes = [new if i in pieces else c for i, c in enumerate(classes)]
    return classes
