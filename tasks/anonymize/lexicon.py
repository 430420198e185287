"""Word lists the PII text policy reads: how common a word is in English, and who is called what.

- `zipf(word)`: the word's frequency on the Zipf scale (log10 of occurrences per billion words) in
  wordfreq's English list (Speer et al., built from subtitles, Wikipedia, news, books, web text; the
  `wordfreq` package, data CC BY-SA 4.0). 3.0 is once per million words; unknown words score 0.
- `first_names()` / `surnames()`: the US Census Bureau's 1990 lists (4,275 female and 1,219 male first
  names, 88,799 surnames; public domain), as shipped in the `names` package.

Both load on first use (~0.2 s) and stay cached in the process. Nothing here is shaped after the builtin
dataset's words.
"""

from __future__ import annotations

import functools
from importlib import resources

from tasks.errors import AnonymizationError


@functools.lru_cache(maxsize=65536)
def zipf(word: str) -> float:
    """Zipf frequency of one lower-case word in English (0.0 when unknown)."""
    try:
        from wordfreq import zipf_frequency
    except ImportError as err:  # pragma: no cover - a pinned dependency
        raise AnonymizationError(f"PII text policy: the wordfreq package is missing: {err}") from err
    return float(zipf_frequency(word, "en"))


def _census(*files: str) -> dict[str, float]:
    """Lower-case name → its largest share of the population in `files`, in percent (column 2)."""
    try:
        root = resources.files("names")
        shares: dict[str, float] = {}
        for name in files:
            for line in (root / name).read_text(encoding="ascii").splitlines():
                if line.strip():
                    word, share = line.split()[:2]
                    shares[word.lower()] = max(shares.get(word.lower(), 0.0), float(share))
        return shares
    except (ModuleNotFoundError, FileNotFoundError) as err:  # pragma: no cover - a pinned dependency
        raise AnonymizationError(f"PII text policy: the census name lists (names package) are missing: {err}") from err


@functools.cache
def first_names() -> dict[str, float]:
    """Lower-case US census first names, female and male → the share of people called so, in percent."""
    return _census("dist.female.first", "dist.male.first")


@functools.cache
def surnames() -> dict[str, float]:
    """Lower-case US census surnames → the share of people called so, in percent."""
    return _census("dist.all.last")
