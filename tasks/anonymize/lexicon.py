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
import unicodedata
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
        raise AnonymizationError(
            f"PII text policy: the census name lists (names package) are missing: {err}"
        ) from err


@functools.cache
def first_names() -> dict[str, float]:
    """Lower-case US census first names, female and male → the share of people called so, in percent."""
    return _census("dist.female.first", "dist.male.first")


@functools.cache
def surnames() -> dict[str, float]:
    """Lower-case US census surnames → the share of people called so, in percent."""
    return _census("dist.all.last")


# gender-guesser's country columns (from column 30 of its name lines, one character each), in order.
NAME_COUNTRIES: tuple[str, ...] = (
    "great_britain",
    "ireland",
    "usa",
    "italy",
    "malta",
    "portugal",
    "spain",
    "france",
    "belgium",
    "luxembourg",
    "the_netherlands",
    "east_frisia",
    "germany",
    "austria",
    "swiss",
    "iceland",
    "denmark",
    "norway",
    "sweden",
    "finland",
    "estonia",
    "latvia",
    "lithuania",
    "poland",
    "czech_republic",
    "slovakia",
    "hungary",
    "romania",
    "bulgaria",
    "bosnia_and_herzegovina",
    "croatia",
    "kosovo",
    "macedonia",
    "montenegro",
    "serbia",
    "slovenia",
    "albania",
    "greece",
    "russia",
    "belarus",
    "moldova",
    "ukraine",
    "armenia",
    "azerbaijan",
    "georgia",
    "the_stans",
    "turkey",
    "arabia",
    "israel",
    "china",
    "india",
    "japan",
    "korea",
    "vietnam",
    "other_countries",
)


@functools.cache
def world_first_names() -> dict[str, dict[str, int]]:
    """Lower-case first names of Europe and beyond → {country: popularity 1-13} where it is given.

    From Jörg Michael's name dictionary as shipped in the `gender-guesser` package (~45,000 names with a
    popularity digit per country, `NAME_COUNTRIES`; GFDL); a compound written "Jan+Peter" stands for
    "janpeter", "jan peter" and "jan-peter". Names with diacritics are also listed without them ("jiri").
    """
    try:
        text = (resources.files("gender_guesser") / "data" / "nam_dict.txt").read_text(encoding="utf-8")
    except (ModuleNotFoundError, FileNotFoundError) as err:  # pragma: no cover - a pinned dependency
        raise AnonymizationError(f"PII text policy: gender-guesser's name list is missing: {err}") from err
    names: dict[str, dict[str, int]] = {}
    for line in text.splitlines():
        if not line or line[0] in "#=" or len(line) < 31:
            continue
        popularity = {country: int(ch, 16) for country, ch in zip(NAME_COUNTRIES, line[30:], strict=False)
                      if ch in "123456789ABCDEF"}  # fmt: skip
        name = line.split()[1].lower()
        forms = {name.replace("+", sep) for sep in ("", " ", "-")}
        for form in forms | {plain(f) for f in forms}:
            entry = names.setdefault(form, {})
            for country, value in popularity.items():
                entry[country] = max(entry.get(country, 0), value)
    return names


# Greek (ELOT 743, simplified) and Cyrillic (Bulgaria's 2009 streamlined system; Russian letters too) to Latin,
# so that "Μαρία" and "Мария" are looked up as "maria".
_TO_LATIN = str.maketrans(
    {
        **dict(zip("αβγδεζηικλμνξοπρσςτυφω", "abgdeziiklmnxoprsstyfo", strict=True)),
        "θ": "th",
        "χ": "ch",
        "ψ": "ps",
        **dict(zip("абвгдезийклмнопрстуфхъьыэё", "abvgdeziyklmnoprstufhayyee", strict=True)),
        "ж": "zh",
        "ц": "ts",
        "ч": "ch",
        "ш": "sh",
        "щ": "sht",
        "ю": "yu",
        "я": "ya",
    }
)


def latin(word: str) -> str:
    """A lower-case Greek or Cyrillic `word` in Latin letters, accents dropped ("γιώργος" -> "giorgos")."""
    return plain(word.translate(_TO_LATIN)).translate(_TO_LATIN)  # "й" first, then accented Greek letters


_UNDECOMPOSED = str.maketrans(
    {"ł": "l", "Ł": "L", "ø": "o", "Ø": "O", "đ": "d", "Đ": "D", "ß": "ss", "ı": "i"}
)


@functools.lru_cache(maxsize=65536)
def plain(word: str) -> str:
    """`word` without its diacritics ("jiří" -> "jiri"; "ł" -> "l")."""
    decomposed = unicodedata.normalize("NFKD", word.translate(_UNDECOMPOSED))
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch))


# The commonest Chinese surnames (about 85 % of people: the 2020 census' top 100 and the usual compound
# ones), written in simplified characters.
CHINESE_SURNAMES: frozenset[str] = frozenset(
    "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋蔡余杜叶程苏魏吕丁任沈姚卢姜"
    "崔钟谭陆汪范金石廖贾夏韦付方白邹孟熊秦邱江尹薛闫段雷侯龙史陶黎贺顾毛郝龚邵万钱严覃武戴莫孔向汤"
) | frozenset(
    {"欧阳", "司马", "诸葛", "上官", "东方", "皇甫", "令狐", "慕容", "尉迟", "公孙", "夏侯", "端木"}
)
