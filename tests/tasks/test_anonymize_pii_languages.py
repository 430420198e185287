"""The PII text policy beyond English (issue 37): digit groups judged together (phone numbers of the EU and
China), Chinese IDs / plates / addresses, IBANs, and ordinary words kept in the line's own language while
names, titles and unknown strings stay personal."""

from __future__ import annotations

import numpy as np
import pytest

from tasks.anonymize.languages import DEFAULT, SUPPORTED, check_languages, line_language
from tasks.anonymize.pii import classify_text, classify_texts, recognised_pii
from tasks.errors import InvalidInputError


@pytest.mark.parametrize(
    "text",
    [
        "Tel. 601 234 567",  # Czechia: three groups of three, each <= 3 digits
        "tel. 912 345 678",  # Spain
        "Tel: 512 345 678",  # Poland
        "TEL. 601 234 567",
        "601 234 567",
        "Tél. 06 12 34 56 78",  # France: five pairs
        "06.12.34.56.78",
        "+420 601 234 567",
        "00420 601-234-567",
        "+49 (0)30 / 123 45 67",
        "Tel. 02/212 345 67",  # Slovakia, with a slash
        "(0-612) 34567",  # Lithuania
        "+45 34 41 23 45",  # Denmark: four pairs
        "电话：138 0013 8000",  # Chinese mobile
        "電話 010-6552 9988",
        "13800138000",
    ],
)
def test_digit_groups_on_one_line_are_one_phone_number(text: str) -> None:
    assert recognised_pii(text) == "phone"
    assert classify_text(text) == "pii"


def test_time_ranges_and_short_numbers_are_no_phone_numbers() -> None:
    assert recognised_pii("OPEN 9.00-17.00") is None
    assert classify_text("Otevřeno 9.00-17.00", settled={"cs"}) == "nonpii"  # on a Czech page
    assert recognised_pii("PLATFORM 2 GATE 14") is None


def test_phone_pieces_split_over_boxes_are_judged_as_one_line() -> None:
    texts = ["Tel. 601", "234 567"]  # each piece alone has <= 3-digit groups
    boxes = np.array([[10, 100, 80, 116], [90, 100, 160, 116]], np.float64)
    assert classify_texts(texts, boxes) == ["pii", "pii"]


def test_chinese_resident_id_checksum_and_iban_mod97() -> None:
    assert recognised_pii("身份证号：11010519491231002X") == "id"
    assert recognised_pii("110105194912310021") != "id"  # wrong check character: a long number still
    assert classify_text("110105194912310021") == "pii"  # personal, by the digit-run rule
    assert recognised_pii("DE89 3704 0044 0532 0130 00") == "iban"
    assert recognised_pii("DE88 3704 0044 0532 0130 00") != "iban"


@pytest.mark.parametrize("text", ["京A·12345", "粤B 88D21", "沪AD12345"])
def test_chinese_plates_with_the_province_character(text: str) -> None:
    assert classify_text(text) == "plate"


@pytest.mark.parametrize(
    ("text", "lang"),
    [
        ("Zákaz vjezdu", "cs"), ("Lékárna", "cs"), ("Zakaz palenia", "pl"), ("Apteka", "pl"),
        ("Rauchen verboten", "de"), ("Bäckerei", "de"), ("Sortie de secours", "fr"), ("Défense de fumer", "fr"),
        ("Salida de emergencia", "es"), ("Prohibido fumar", "es"), ("禁止吸烟", "zh"), ("安全出口", "zh"),
    ],
)  # fmt: skip
def test_ordinary_words_are_kept_in_their_own_language(text: str, lang: str) -> None:
    assert classify_text(text, settled={lang}) == "nonpii"  # on a page whose other lines are in `lang`
    if len(text.split()) > 1 or lang == "zh":
        assert classify_text(text) == "nonpii"  # a line of words tells its language alone
    assert classify_text(text, languages=["en", lang]) == "nonpii"
    assert classify_text(text, languages=["en"]) == "pii"  # English alone: unknown words, redacted


@pytest.mark.parametrize(
    "text",
    [
        "Jan Novák", "Ing. Petr Svoboda", "V. Černá", "Piotr Kowalski", "Pani Kowalska", "Jürgen Weber",
        "Frau Wolf", "Pierre Dupont", "Mme Martin", "François Garcia", "Richard, Sophie", "José García",
        "Sra. López", "王伟", "张晓明", "王先生", "李女士", "联系人：刘洋",
    ],
)  # fmt: skip
def test_names_stay_personal_in_every_language(text: str) -> None:
    assert classify_text(text) == "pii"


@pytest.mark.parametrize(
    "text",
    ["Hauptstraße 5", "Richter-Straße 170", "12 rue de la Paix", "ul. Marszałkowska 10", "C/ Mayor 3",
     "Benešova 147, 328 28 Plzeň", "北京市朝阳区建国路88号"],
)  # fmt: skip
def test_addresses_stay_personal(text: str) -> None:
    assert classify_text(text) == "pii"


def test_chinese_short_strings_are_no_fragments() -> None:
    """Two Chinese characters are a whole name ("王伟"), not a two-glyph fragment; one stays a fragment."""
    assert classify_text("王伟") == "pii"
    assert classify_text("张") == "nonpii"
    assert classify_text("3号线") == "nonpii"


def test_line_language_by_script_then_by_common_words() -> None:
    assert line_language("禁止吸烟", [], SUPPORTED) == "zh"
    assert line_language("禁止吸烟", [], ("en", "de")) is None
    assert line_language("Zákaz vjezdu", ["zákaz", "vjezdu"], SUPPORTED) == "cs"
    assert line_language("no parking", ["no", "parking"], SUPPORTED) == "en"
    assert line_language("Rauchen verboten", ["rauchen", "verboten"], ("en", "fr")) in ("en", "fr")


def test_a_language_outside_the_set_stays_personal() -> None:
    assert classify_text("Rauchen verboten", languages=["en", "fr"]) == "pii"
    assert classify_text("NO PARKING", languages=["de"]) == "pii"  # English off: English is unknown too


def test_unsupported_languages_are_refused() -> None:
    with pytest.raises(InvalidInputError, match="anonymize.text.languages"):
        check_languages(["en", "xx"])
    with pytest.raises(InvalidInputError, match="anonymize.text.languages"):
        check_languages([])


def test_the_params_languages_are_the_supported_set() -> None:
    from tasks.params import TextDetectorParams

    assert TextDetectorParams().languages == DEFAULT
    assert TextDetectorParams(languages=SUPPORTED).languages == SUPPORTED
    with pytest.raises(ValueError, match="languages"):
        TextDetectorParams(languages=("en", "xx"))  # type: ignore[arg-type]


def test_the_policy_generalises_to_other_languages() -> None:
    """`bench.pii_languages`' held-out half B, per language: issue 37 asks ordinary kept >= 0.85 and
    personal caught >= 0.98 (phone numbers >= 0.99), for lines on a page in their language and with only
    English and that language named; alone, nothing personal may pass. Figures: docs/benchmarks.md."""
    from bench import pii_languages
    from bench.pii_text import rates, score

    for lang in pii_languages.LANGUAGES:
        rows = pii_languages.corpus(lang, 300, half="B", seed=1)
        for how in ({"settled": {lang}}, {"languages": ("en", lang)}, {}):
            kept, caught = rates(score(rows, **how)[0])  # type: ignore[arg-type]
            assert caught >= 0.98 and (kept >= 0.85 or not how), (lang, how, kept, caught)
    rows = pii_languages.phones(280, seed=1)
    caught_phones = sum(classify_text(text) != "nonpii" for _, text, _ in rows) / len(rows)
    assert caught_phones >= 0.99


def test_glued_word_splitting_never_drops_letters_with_diacritics() -> None:
    """`respaced` read "Marková" as the hump "Markov" (its "á" dropped), and "pan Marková" passed as words."""
    from tasks.anonymize.pii import respaced

    assert respaced("pan Marková") is None
    assert classify_text("pan Marková") == "pii"
    assert respaced("NOPARKING") == "NO PARKING"


def test_greek_and_bulgarian_only_on_request_with_names_looked_up_in_latin_letters() -> None:
    for text in ("Аптека", "Φαρμακείο"):
        assert classify_text(text) == "pii"  # not in the default set: redacted, as before
        assert classify_text(text, languages=SUPPORTED) == "nonpii"
    for name in ("Иван Петров", "Мария Иванова", "Μαρία Παπαδοπούλου", "Νίκος Ιωάννου"):
        assert classify_text(name, languages=SUPPORTED) == "pii", name


@pytest.mark.parametrize("text", ["Novák", "NOVÁK", "Kowalski", "Dupont", "Schmidt", "García", "Paní Nováková",
                                  "Nováková", "Dvořák a syn"])  # fmt: skip
def test_lone_surnames_stay_personal_once_their_language_is_known(text: str) -> None:
    """Unknown to English, these were redacted as unknown words; read as Czech, German, ... they are common
    words there, so the census surname list (diacritics dropped) and Czech married names must catch them."""
    assert classify_text(text) == "pii"


@pytest.mark.parametrize("text", ["Deutsche Post", "Pan y leche", "Wetter heute", "Nová prodejna", "Petit déjeuner"])
def test_words_that_are_also_rare_surnames_stay_words(text: str) -> None:
    assert classify_text(text) == "nonpii"


def test_the_text_detector_takes_the_languages_param() -> None:
    """`anonymize.text.languages` reaches the OCR detector's policy (no model is loaded to build it)."""
    from tasks.anonymize.detectors.text import OcrTextDetector

    assert OcrTextDetector().languages == DEFAULT
    assert OcrTextDetector(languages=("en", "cs")).languages == ("en", "cs")
    with pytest.raises(InvalidInputError, match="anonymize.text.languages"):
        OcrTextDetector(languages=("en", "xx"))


@pytest.mark.parametrize("text", ["Zakaz vjezdu", "ZAKAZ KOURENI", "Wyjscie", "Sklep spozywczy", "Backerei"])
def test_ordinary_words_are_kept_as_ocr_reads_them_without_diacritics(text: str) -> None:
    """The anonymizer's OCR has no "ř", "š", "ł", "ż" or "ä": it reads "Zákaz kouření" as "ZAKAZ KOURENI"."""
    assert classify_text(text, settled={"cs", "pl", "de"}) == "nonpii"


@pytest.mark.parametrize("text", ["Jan Novak", "Novak", "Senor Garcia", "Señora López", "namesti Prochazka 85",
                                  "pani Prochazka", "Monsieur Dupont"])  # fmt: skip
def test_names_and_addresses_stay_personal_without_diacritics(text: str) -> None:
    assert classify_text(text) == "pii"


def test_glued_camel_case_names_are_no_words_of_another_language() -> None:
    """OCR glues "Mr Eze" into "MrEze", which reads as Croatian "mreže" without its diacritics."""
    assert classify_text("MrEze") == "pii"
    assert classify_text("ZÁKAZ VJEZDU") == "nonpii"


def test_a_lone_rare_word_needs_its_language_settled_on_the_image() -> None:
    """Builtin image 827: OCR read "Hado" of "Li Haddad" alone; Lithuanian lists it at Zipf 3.4, so with 18
    candidate languages it was kept (a leak). A lone word must be log10(18) commoner unless the image's
    other lines settle its language; naming fewer languages lowers the bar."""
    from tasks.anonymize.pii import doubtful, lone_zipf

    assert classify_text("Hado") == "pii"
    assert lone_zipf(DEFAULT) == pytest.approx(3.0 + np.log10(18)) and lone_zipf(["en", "cs"]) == 3.0
    assert classify_text("Pekárna") == "pii" and classify_text("Pekárna", languages=["en", "cs"]) == "nonpii"
    boxes = np.array([[10, 10, 90, 30], [10, 60, 150, 80]], np.float64)
    assert classify_texts(["Pekárna", "Čerstvé pečivo"], boxes) == ["nonpii", "nonpii"]  # a Czech page
    assert classify_texts(["Hado", "Fresh bread"], boxes) == ["pii", "nonpii"]  # English does not settle it
    assert classify_texts(["Hado", "Fresh bread"], boxes, languages=["en", "lt"]) == ["nonpii", "nonpii"]
    # a kept lone word English does not know gets a second look at its rows; English words do not
    assert doubtful(["Pekárna", "Exit", "Zákaz vjezdu", "Hado"], ["nonpii", "nonpii", "nonpii", "pii"]) == [
        True, False, False, False]
