"""Real group photos (issue 35's yardstick): dlib's nine labelled PASCAL VOC photos, 43 faces of 37-109 px.

The slow test runs `privtrail anonymize` (the folder flow) with the stage's params from params.yaml, and
with preset `fast` once the params know presets: every labelled face redacted (>= 70 % of its box's
pixels changed; the output is PNG, so the comparison is exact), none re-detected by dlib HOG (upsample 1
on a 2× copy; `bench.real_photos.face_hit`), nothing quarantined. The photos are fetched from PyPI's
dlib 19.5.0 sdist into `$PRIVTRAIL_DATA_CACHE/dlib` (or read from `$PRIVTRAIL_DLIB_FACES`); the test skips
with the reason where they cannot be had.

The fast tests cover the fetcher and the box reader offline: tiny XML, a tiny tarball and a PEP 691
index served from `file://` URLs.
"""

from __future__ import annotations

import hashlib
import io
import json
import tarfile
from pathlib import Path

import numpy as np
import pytest
import yaml
from pydantic import ValidationError

from tasks.params import AnonymizeParams
from tests.real_photos import (
    DLIB_ENV_VAR,
    DLIB_FACES,
    DLIB_SDIST,
    RealPhotosUnavailable,
    default_dlib_cache,
    dlib_face_boxes,
    fetch_dlib_faces,
)

REPO = Path(__file__).resolve().parents[2]
TRAINING = """<?xml version='1.0' encoding='ISO-8859-1'?>
<dataset><images>
  <image file='a.jpg'>
    <box top='10' left='20' width='30' height='40'/>
    <box top='1' left='2' width='3' height='4' ignore='1'/>
  </image>
  <image file='empty.jpg'/>
</images></dataset>
"""
TESTING = """<?xml version='1.0' encoding='ISO-8859-1'?>
<dataset><images>
  <image file='a.jpg'><box top='0' left='5' width='37' height='37'/></image>
  <image file='b.jpg'><box top='100' left='200' width='109' height='110'/></image>
</images></dataset>
"""


def _faces_folder(folder: Path, *, photos: bool = True) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "training.xml").write_text(TRAINING)
    (folder / "testing.xml").write_text(TESTING)
    for name in ("a.jpg", "b.jpg", "empty.jpg") if photos else ():
        (folder / name).write_bytes(b"not decoded here")
    return folder


def test_dlib_face_boxes_reads_both_files_as_x0_y0_x1_y1_and_skips_ignored(tmp_path: Path) -> None:
    boxes = dlib_face_boxes(_faces_folder(tmp_path))
    assert sorted(boxes) == ["a.jpg", "b.jpg", "empty.jpg"]
    # a.jpg: training.xml's box (its ignore='1' box left out), then testing.xml's
    np.testing.assert_array_equal(boxes["a.jpg"], [[20, 10, 50, 50], [5, 0, 42, 37]])
    np.testing.assert_array_equal(boxes["b.jpg"], [[200, 100, 309, 210]])
    assert boxes["empty.jpg"].shape == (0, 4)
    assert all(b.dtype == np.int64 for b in boxes.values())


def test_dlib_face_boxes_names_the_file_and_photo_of_a_bad_box(tmp_path: Path) -> None:
    _faces_folder(tmp_path)
    (tmp_path / "testing.xml").write_text("<dataset><images><image file='c.jpg'><box top='x' left='1' "
                                          "width='2' height='3'/></image></images></dataset>")  # fmt: skip
    with pytest.raises(ValueError, match=r"testing\.xml: c\.jpg: bad box"):
        dlib_face_boxes(tmp_path)


def test_fetch_honours_the_env_var_without_touching_the_network(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = _faces_folder(tmp_path / "extracted")
    monkeypatch.setenv(DLIB_ENV_VAR, str(folder))
    # an unreachable index: had it been asked, the fetch would have failed
    assert fetch_dlib_faces(tmp_path / "cache", index_url="http://127.0.0.1:9/", timeout=2) == folder
    assert not (tmp_path / "cache").exists()


def test_fetch_refuses_an_env_var_folder_without_the_photos(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(DLIB_ENV_VAR, str(_faces_folder(tmp_path / "xml-only", photos=False)))
    with pytest.raises(RealPhotosUnavailable, match=rf"\${DLIB_ENV_VAR}=.*xml-only.*no a\.jpg"):
        fetch_dlib_faces(tmp_path / "cache")
    monkeypatch.setenv(DLIB_ENV_VAR, str(tmp_path / "nowhere"))
    with pytest.raises(RealPhotosUnavailable, match="no training.xml"):
        fetch_dlib_faces(tmp_path / "cache")


def test_fetch_offline_raises_real_photos_unavailable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(DLIB_ENV_VAR, raising=False)
    with pytest.raises(RealPhotosUnavailable, match="dlib photos unavailable: URLError"):
        fetch_dlib_faces(tmp_path / "cache", index_url="http://127.0.0.1:9/", timeout=2)


def _sdist(tmp_path: Path) -> Path:
    """A tiny stand-in for the sdist: the faces folder, plus members that must not be extracted."""
    members = {
        f"{DLIB_FACES}{name}": (tmp_path / "src" / name).read_bytes()
        for name in ("a.jpg", "b.jpg", "empty.jpg")
    }
    members |= {f"{DLIB_FACES}training.xml": TRAINING.encode(), f"{DLIB_FACES}testing.xml": TESTING.encode(),
                f"{DLIB_FACES}sub/deeper.jpg": b"x", "dlib-19.5.0/setup.py": b"x", f"{DLIB_FACES}../evil.txt": b"x"}  # fmt: skip
    tarball = tmp_path / DLIB_SDIST
    with tarfile.open(tarball, "w:gz") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return tarball


def _index(tmp_path: Path, tarball: Path, sha256: str) -> str:
    """A PEP 691 JSON index page listing `tarball` by a file:// URL; returns the page's URL."""
    page = tmp_path / "index.json"
    files = [{"filename": "dlib-19.4.0.tar.gz", "url": "file:///nowhere", "hashes": {"sha256": "0"}},
             {"filename": DLIB_SDIST, "url": tarball.as_uri(), "hashes": {"sha256": sha256}}]  # fmt: skip
    page.write_text(json.dumps({"meta": {"api-version": "1.0"}, "name": "dlib", "files": files}))
    return page.as_uri()


def test_fetch_checks_the_sha256_extracts_only_the_faces_folder_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(DLIB_ENV_VAR, raising=False)
    _faces_folder(tmp_path / "src")
    tarball = _sdist(tmp_path)
    with pytest.raises(RealPhotosUnavailable, match="sha256"):
        fetch_dlib_faces(tmp_path / "cache", index_url=_index(tmp_path, tarball, "0" * 64))
    assert not (tmp_path / "cache" / "faces").exists()

    index = _index(tmp_path, tarball, hashlib.sha256(tarball.read_bytes()).hexdigest())
    faces = fetch_dlib_faces(tmp_path / "cache", index_url=index)
    assert faces == tmp_path / "cache" / "faces"
    assert sorted(p.name for p in faces.iterdir()) == [
        "a.jpg",
        "b.jpg",
        "empty.jpg",
        "testing.xml",
        "training.xml",
    ]
    assert sorted(p.name for p in (tmp_path / "cache").iterdir()) == [
        "faces"
    ]  # no tarball, no temp folder left
    tarball.unlink()  # a second call finds the cache and fetches nothing
    assert fetch_dlib_faces(tmp_path / "cache", index_url="http://127.0.0.1:9/", timeout=2) == faces


# --- the real photos ------------------------------------------------------------------------------------


def _stage_params(preset: str | None) -> AnonymizeParams:
    """The anonymize section of params.yaml, with `preset` when given (skips if the params reject it)."""
    raw = yaml.safe_load((REPO / "params.yaml").read_text())["anonymize"]
    if preset is None:
        return AnonymizeParams(**raw)
    try:
        return AnonymizeParams(**{**raw, "preset": preset})
    except ValidationError as err:
        if any(e["loc"][:1] == ("preset",) for e in err.errors()):
            pytest.skip(
                f"anonymize params reject preset={preset!r} (not available yet): {err.errors()[0]['msg']}"
            )
        raise


@pytest.mark.slow
@pytest.mark.parametrize("preset", [None, "fast"], ids=["stage-params", "preset-fast"])
def test_every_labelled_face_of_the_group_photos_is_redacted_and_not_re_detected(
    tmp_path: Path, preset: str | None
) -> None:
    from bench.group_photos import REDACTED_SHARE, changed_share
    from bench.real_photos import face_hit
    from flows.folder_anonymize import anonymize_folder
    from tasks.auditors import dlib_hog_detector
    from tasks.codec import decode_image

    p = _stage_params(preset)
    try:
        folder = fetch_dlib_faces(default_dlib_cache())
    except RealPhotosUnavailable as err:
        pytest.skip(str(err))
    boxes = dlib_face_boxes(folder)
    assert len(boxes) == 9 and sum(map(len, boxes.values())) == 43
    (tmp_path / "in").mkdir()
    for name in boxes:
        (tmp_path / "in" / name).write_bytes((folder / name).read_bytes())
    report = anonymize_folder(tmp_path / "in", tmp_path / "out", p=p, jobs=1, seed=0)
    assert report["counts"]["inputs"] == 9 and report["counts"]["quarantined"] == 0, report["counts"]

    hog = dlib_hog_detector(upsample=1, upscale=2)
    shares, seen = {}, []
    for name, faces in boxes.items():
        raw = decode_image((folder / name).read_bytes(), name=name)
        out = decode_image((tmp_path / "out" / f"{Path(name).stem}.png").read_bytes(), name=name)
        found = hog(out).boxes
        for box in faces:
            shares[f"{name} {box.tolist()}"] = changed_share(raw, out, box, tolerance=0)
            if face_hit(found, box.tolist()):
                seen.append(f"{name} {box.tolist()}")
    assert len(shares) == 43
    assert {k: v for k, v in shares.items() if v < REDACTED_SHARE} == {}
    assert seen == []
