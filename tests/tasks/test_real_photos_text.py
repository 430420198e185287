"""Issue 17's signage check on real photos: the default anonymizer (text_policy pii) keeps ordinary
signs and shop fronts readable and leaves no personal line readable. Labelled lines: the `text`
boxes of tests/data/real_photos_gt.json; the photos are fetched at test time (skipped with the reason
when they cannot be had)."""

from __future__ import annotations

import pytest
import yaml

from bench.real_photos import runner, text_lines, text_rates
from tasks.params import AnonymizeParams
from tests.conftest import REPO
from tests.real_photos import RealPhotosUnavailable, default_cache, fetch_opencv_doc, load_gt


def test_ordinary_signage_stays_readable_and_personal_text_does_not() -> None:
    """Measured: 15 of the 18 ordinary lines OCR reads on the raw photos stay readable (0.833; the issue
    asks >= 0.8): lost are a place name ("Wivenhoe Park", rare: denied), a plate-shaped model number
    ("GM 125") and a line OCR misreads ("gallerRies"). The 3 personal lines (the astronaut's name tag
    and patch) are not readable even on the raw photo, so this photo set cannot show that personal text
    goes (`bench.pii_text` and the builtin set do)."""
    try:
        examples = fetch_opencv_doc(default_cache())
    except RealPhotosUnavailable as err:
        pytest.skip(str(err))
    raw = yaml.safe_load((REPO / "params.yaml").read_text())
    run = runner(examples, AnonymizeParams(**raw["anonymize"]))
    rows = text_lines(load_gt()["images"], lambda f: run(f)[:2], min_similarity=raw["check_quality"]["text_min_similarity"])
    m = text_rates(rows)
    assert m["ordinary_read_raw"] >= 15, rows  # the reader itself works on these photos
    assert m["kept"] >= 0.8, [r for r in rows if r["raw"] and not r["anon"]]
    assert m["personal_readable"] == 0.0, [r for r in rows if r["personal"] and r["anon"]]
