"""The record of what one anonymize run was set to do: targets, detectors, verification, methods, device.

The stage writes it to `reports/runs/anonymize.json` (`setup`); the report words every sentence about the
mechanism from it (`tasks/report/mechanism.py`), so what the report says follows the params of that run.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

from tasks.params import AnonymizeParams


@dataclass(frozen=True)
class AnonymizationSetup:
    """The anonymizer as one run configured it: the record the report's mechanism sentences are made from.

    Attributes:
        targets: the categories searched for (anonymize.targets), in params order.
        verify: "regions" | "whole" | "off" (anonymize.verify).
        detectors: category → the detectors that searched for it, in words.
        methods: category → the obfuscation method applied to it.
        device: where the detectors ran, in words (`ResolvedDevice.describe()`: "cpu (...)" or "cuda (...)").
        device_reason: why that device (`ResolvedDevice.reason`, e.g. "auto: CUDAExecutionProvider not
            available (...)"); "" when not recorded.
        preset: the detector preset the params named (anonymize.preset), None when none.
        face_params: the face detector's resolved params (the preset's, with the keys params set on top);
            empty when faces were not a target.
        text_policy: "pii" (personal text only) | "all" (every string OCR finds) — anonymize.text.policy.
    """

    targets: tuple[str, ...]
    verify: str
    detectors: dict[str, tuple[str, ...]] = field(default_factory=dict)
    methods: dict[str, str] = field(default_factory=dict)
    device: str = "cpu"
    device_reason: str = ""
    preset: str | None = None
    text_policy: str = "pii"
    face_params: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready (tuples as lists)."""
        return asdict(self) | {
            "targets": list(self.targets),
            "detectors": {k: list(v) for k, v in self.detectors.items()},
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> AnonymizationSetup:
        """Rebuild the record `as_dict` wrote."""
        return cls(
            targets=tuple(d["targets"]),
            verify=str(d["verify"]),
            detectors={k: tuple(v) for k, v in (d.get("detectors") or {}).items()},
            methods=dict(d.get("methods") or {}),
            device=str(d.get("device") or "cpu"),
            device_reason=str(d.get("device_reason") or ""),
            preset=d.get("preset"),
            text_policy=str(d.get("text_policy") or "pii"),
            face_params=dict(d.get("face_params") or {}),
        )


def _face_detectors(face: Mapping[str, Any]) -> tuple[str, ...]:
    found = ["CenterFace"] if face["centerface"] else []
    if face["yunet"] > 0:
        found.append("YuNet" + (f" (on a {face['yunet']:g}x copy)" if face["yunet"] != 1 else ""))
    if face["cascades"]:
        limit = face.get("cascade_max_pixels") or 0
        found.append(
            "Haar cascades ("
            + ", ".join(sorted(face["cascades"]))
            + ")"
            + (f" on images of at most {limit:,} pixels" if limit else "")
        )
    if face["verify"] > 0:
        found.append("a second look by CenterFace at each weak candidate")
    return tuple(found)


def _body_detectors(body: Mapping[str, Any], motion: Mapping[str, Any]) -> tuple[str, ...]:
    found = ["OpenCV HOG people detector"] if body["hog"] else []
    if body["cascades"]:
        found.append("Haar cascades (" + ", ".join(body["cascades"]) + ")")
    found += (["BlazePose"] if body["pose"] else []) + (["motion (videos)"] if motion["enabled"] else [])
    return tuple(found)


# How `anonymize.orientation` turns the detectors (tasks/anonymize/detectors/orient.py), in words.
_FACE_TURNS = {
    "cue": "the face detector also on the image turned by 90, 180 or 270 degrees where a cheap cue "
    "says a face lies turned",
    "all": "the face detector also on the image turned by 90, 180 and 270 degrees",
}
_TEXT_TURNS = "lines on their side or upside down read again turned where their shape says so"


def detectors_of(p: AnonymizeParams) -> dict[str, tuple[str, ...]]:
    """Category → the detectors the params enable for it; only the categories in `p.targets`."""
    kept = f", keeping ordinary words in {', '.join(p.text.languages)}" if p.text.policy == "pii" else ""
    turned = p.orientation != "off"
    on_cpu = p.text.cpu_runtime == "openvino" and p.device == "cpu"  # the stage records the resolved device
    runtime = ", OpenVINO on the CPU" if on_cpu else ""
    ocr = f"PP-OCR text detection and recognition (rapidocr{runtime}, {p.text.policy} policy{kept})" + (
        f"; {_TEXT_TURNS}" if turned else ""
    )
    face = _face_detectors(p.face.model_dump()) + ((_FACE_TURNS[p.orientation],) if turned else ())
    every = {
        "face": face,
        "plate": (ocr + " with the plate-pattern check",)
        + (("licence-plate Haar cascade",) if p.plate.cascade else ()),
        "text": (ocr,),
        "body": _body_detectors(p.body.model_dump(), p.motion.model_dump()),
    }
    return {c: every[c] for c in p.targets}


def anonymization_setup(
    p: AnonymizeParams, *, device: str = "cpu", device_reason: str = ""
) -> AnonymizationSetup:
    """The record of what `p` makes the anonymizer do (`device`: where its detectors run, in words;
    `device_reason`: why there, as `tasks.anonymize.device.resolve_device` said)."""
    preset = getattr(p, "preset", None)  # a detector preset, where the params have one
    return AnonymizationSetup(
        targets=tuple(p.targets),
        verify=p.verify,
        detectors=detectors_of(p),
        methods={c: p.methods.get(c, p.method) for c in p.targets},
        device=device,
        device_reason=device_reason,
        preset=None if preset is None else str(preset),
        text_policy=p.text.policy,
        face_params=p.face.model_dump() if "face" in p.targets else {},
    )
