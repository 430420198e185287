"""Which language a recognised line is in, and how common a word is in it (offline, no model download).

- `SUPPORTED`: the EU's official languages that wordfreq covers (all but Estonian, Irish and Maltese),
  and Chinese; `DEFAULT` leaves Greek and Bulgarian out (see there). `anonymize.text.languages` picks a
  subset; a line in none of them is judged by no dictionary, so it stays personal (fail closed).
- `zipf(word, lang)`: wordfreq's Zipf frequency in that language (its "small" list, `WORDLIST`; Croatian
  through wordfreq's Serbo-Croatian list), 0.0 when unknown or rarer than once per million words.
- `line_language(tokens, languages)`: the script decides first (Han characters: Chinese; Greek: Greek;
  Cyrillic: Bulgarian); a Latin-script line is in the allowed language whose frequency list knows most
  of its words as common words (ties: the higher summed frequency; English first on a full tie), so a
  Czech sign is read as Czech and an English one stays English.
- `han_words(s)`: a Chinese line cut into words by jieba (wordfreq's own Chinese tokenizer uses it).

Loading every Latin-script list with its diacritic-free index costs ~3 s and ~180 MB once per process (at
the first line English does not keep), Chinese ~1.6 s and ~70 MB more; a cached look-up about a microsecond.
"""

from __future__ import annotations

import functools
import logging
import math
import re
from collections.abc import Sequence

from tasks.anonymize import lexicon
from tasks.errors import AnonymizationError, InvalidInputError

SUPPORTED: tuple[str, ...] = (
    "en", "bg", "cs", "da", "de", "el", "es", "fi", "fr", "hr", "hu", "it", "lt", "lv", "nl", "pl", "pt",
    "ro", "sk", "sl", "sv", "zh",
)  # fmt: skip
# Where each language's first names are given: gender-guesser's countries (`lexicon.NAME_COUNTRIES`).
NAME_COUNTRIES: dict[str, tuple[str, ...]] = {
    "en": ("great_britain", "ireland", "usa", "malta"), "bg": ("bulgaria",), "cs": ("czech_republic",),
    "da": ("denmark",), "de": ("germany", "austria", "swiss", "east_frisia", "luxembourg"), "el": ("greece",),
    "es": ("spain",), "fi": ("finland",), "fr": ("france", "belgium", "swiss", "luxembourg"),
    "hr": ("croatia", "bosnia_and_herzegovina"), "hu": ("hungary",), "it": ("italy", "swiss"),
    "lt": ("lithuania",), "lv": ("latvia",), "nl": ("the_netherlands", "belgium"), "pl": ("poland",),
    "pt": ("portugal",), "ro": ("romania", "moldova"), "sk": ("slovakia",), "sl": ("slovenia",),
    "sv": ("sweden", "finland"), "zh": ("china",),
}  # fmt: skip
# The default set: Greek and Bulgarian lines are judged only on request, because the name list is in Latin
# letters (looked up transliterated: "Μαρία" as "maria") and misses common spoken forms ("Γιώργος"): a Greek
# name could pass as two common Greek words. Off by default, their text stays redacted (fail closed).
DEFAULT: tuple[str, ...] = tuple(lang for lang in SUPPORTED if lang not in ("el", "bg"))
_WORDFREQ_CODE = {"hr": "sh"}  # wordfreq's Croatian is its Serbo-Croatian list
_SCRIPT_LANGUAGE = {"han": "zh", "greek": "el", "cyrillic": "bg"}
NON_LATIN: frozenset[str] = frozenset(_SCRIPT_LANGUAGE.values())  # languages told by their script
# wordfreq's "small" lists hold every word at least once per million (Zipf >= 3, the policy's threshold for
# a common word): the same decisions as its "large" lists in a fifth of the memory (~140 MB for all).
WORDLIST = "small"
# A word counts towards a language when it is at least this common there (the policy's `COMMON_ZIPF`).
DETECT_ZIPF = 3.0
HAN = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")
_GREEK = re.compile(r"[\u0370-\u03ff\u1f00-\u1fff]")
_CYRILLIC = re.compile(r"[\u0400-\u04ff]")


def check_languages(languages: Sequence[str]) -> tuple[str, ...]:
    """`languages` as a tuple, each an ISO 639-1 code in `SUPPORTED`.

    Raises:
        InvalidInputError: an unsupported code, or none at all.
    """
    unknown = sorted(set(languages) - set(SUPPORTED))
    if unknown or not languages:
        raise InvalidInputError(
            f"anonymize.text.languages: {unknown or 'empty'} not supported; choose from {', '.join(SUPPORTED)}"
        )
    return tuple(languages)


@functools.lru_cache(maxsize=262144)
def zipf(word: str, lang: str) -> float:
    """Zipf frequency of one lower-case word in `lang` (0.0 when unknown), its diacritics optional.

    The anonymizer's OCR (PP-OCR's Chinese+Latin recogniser) has no "ř", "š", "ł", "ñ", "ö" or "ß": it
    reads "Zákaz kouření" as "Zakaz koureni". A word is looked up as written, without its diacritics, and
    as the commonest word that reads the same without them ("koureni" is "kouření").
    """
    try:
        from wordfreq import zipf_frequency
    except ImportError as err:  # pragma: no cover - a pinned dependency
        raise AnonymizationError(f"PII text policy: the wordfreq package is missing: {err}") from err
    code = _WORDFREQ_CODE.get(lang, lang)
    found = float(zipf_frequency(word, code, wordlist=WORDLIST))
    if lang == "zh":
        return found
    bare = lexicon.plain(word)
    if bare != word:
        found = max(found, float(zipf_frequency(bare, code, wordlist=WORDLIST)))
    return max(found, _folded(lang).get(bare, 0.0))


@functools.cache
def _folded(lang: str) -> dict[str, float]:
    """Each word of `lang`'s list that has diacritics, written without them → its Zipf frequency (the
    commonest such word's)."""
    from wordfreq import get_frequency_dict

    folded: dict[str, float] = {}
    for word, freq in get_frequency_dict(_WORDFREQ_CODE.get(lang, lang), wordlist=WORDLIST).items():
        if not word.isascii():
            bare = lexicon.plain.__wrapped__(word)  # not through its cache: ~10^5 words, each once
            folded[bare] = max(folded.get(bare, 0.0), round(math.log10(freq) + 9, 2))
    return folded


def script(s: str) -> str:
    """ "han", "greek", "cyrillic" or "latin" (anything else): the first non-Latin script found in `s`."""
    for name, pattern in (("han", HAN), ("greek", _GREEK), ("cyrillic", _CYRILLIC)):
        if pattern.search(s):
            return name
    return "latin"


def line_language(text: str, words: Sequence[str], languages: Sequence[str]) -> str | None:
    """The language of one line: by script, else the allowed Latin-script language that knows most words.

    Args:
        text: the line as recognised.
        words: its lower-case words (no numbers).
        languages: allowed ISO codes (`check_languages`).
    Returns:
        An ISO code from `languages`, or None when the line's script belongs to none of them.
    """
    found = script(text)
    if found != "latin":
        lang = _SCRIPT_LANGUAGE[found]
        return lang if lang in languages else None
    latin = tuple(lang for lang in languages if lang not in NON_LATIN)
    if not latin:
        return None
    profiles = [_profile(w, latin) for w in words]

    def coverage(i: int) -> tuple[int, float, bool]:
        return sum(p[i] >= DETECT_ZIPF for p in profiles), sum(p[i] for p in profiles), latin[i] == "en"

    return latin[max(range(len(latin)), key=coverage)]


@functools.lru_cache(maxsize=65536)
def _profile(word: str, languages: tuple[str, ...]) -> tuple[float, ...]:
    """`word`'s Zipf frequency in each of `languages`."""
    return tuple(zipf(word, lang) for lang in languages)


@functools.cache
def _jieba() -> object:
    try:
        import jieba
    except ImportError as err:  # pragma: no cover - a pinned dependency
        raise AnonymizationError(f"PII text policy: the jieba package is missing: {err}") from err
    jieba.setLogLevel(logging.WARNING)
    return jieba


def han_words(s: str) -> list[str]:
    """`s` cut into words by jieba (precise mode), blanks dropped."""
    jieba = _jieba()
    return [w for w in jieba.lcut(s) if w.strip()]  # type: ignore[attr-defined]
