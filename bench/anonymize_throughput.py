"""Anonymization throughput: `privtrail anonymize` vs the `deface` CLI, same images, one run.

What is measured (wall clock, both tools as the command a user runs, in subprocesses):
- Images: builtin scenes (skimage photos + pasted LFW faces, plates, text) generated at a square
  side W and centre-cropped to W×H, saved as JPEG q95 — the same files for both tools.
- Each tool runs twice on a size: on all N images, then on 1 of them. Per-image time is
  (T_N − T_1) / (N − 1); images/s is its inverse; start-up (imports, model load, process pool)
  is T_1 minus one per-image time, reported apart and excluded from images/s.
- deface: one invocation with all N files (`--backend onnxrt`, its defaults otherwise: blur, no
  metadata kept, onnxruntime's own threads on every core), writing JPEGs beside the inputs.
- privtrail: `python -m flows.cli anonymize IN OUT --targets T --jobs J` (decode, detect,
  pixelate, verify by re-detecting, metadata-free PNG). J = every core is the like-for-like row.
- Ratios are privtrail images/s ÷ deface images/s at the same size.

Then a profile of privtrail's engine in-process (one process, one thread per model, warm models):
seconds per image in each detector, split into the first detection pass and the verification
pass, plus decode / obfuscate / encode, and deface's CenterFace call on the same pixels.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import io
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

from PIL import Image

from tasks.anonymize.detectors import build_detectors
from tasks.anonymize.engine import anonymize_image, image_rng, obfuscation_options
from tasks.codec import decode_image, encode_png
from tasks.ingest.builtin import generate_builtin
from tasks.params import AnonymizeParams
from tasks.types import Detections

SIZES = {"640x480": (640, 480), "1280x720": (1280, 720)}
TARGETS = {"faces": ("face",), "all": ("face", "plate", "text")}
GOALS = {"faces": 2.0, "all": 1.0}  # issue 3: privtrail / deface images/s at 640×480
REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


def make_images(folder: Path, *, width: int, height: int, n: int, seed: int = 0) -> list[Path]:
    """Write `n` builtin scenes, centre-cropped to width×height, as JPEG q95; return their paths."""
    folder.mkdir(parents=True, exist_ok=True)
    scenes = generate_builtin(
        n_images=n, image_size=width, max_faces=3, face_size=(width // 20, width // 7), seed=seed
    )
    files = []
    for i, scene in enumerate(scenes):
        top = (width - height) // 2
        files.append(folder / f"img_{i:03d}.jpg")
        Image.fromarray(scene.image[top : top + height]).save(files[-1], quality=95)
    return files


def _wall(cmd: list[str], *, cwd: Path) -> float:
    t0 = time.perf_counter()
    done = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, check=False)
    seconds = time.perf_counter() - t0
    if done.returncode != 0:
        raise RuntimeError(f"{cmd[0]} failed ({done.returncode}): {done.stderr[-2000:]}")
    return seconds


def _deface(files: list[Path], work: Path) -> float:
    work.mkdir(parents=True)
    copies = []
    for f in files:  # deface writes <name>_anonymized.jpg beside each input: give it a fresh folder
        copies.append(work / f.name)
        shutil.copy(f, copies[-1])
    seconds = _wall([str(BIN / "deface"), *map(str, copies), "--backend", "onnxrt"], cwd=work)
    shutil.rmtree(work)
    return seconds


def _privtrail(files: list[Path], work: Path, *, targets: tuple[str, ...], jobs: int, extra: tuple[str, ...] = ()) -> float:
    src = work / "in"
    src.mkdir(parents=True)
    for f in files:
        shutil.copy(f, src / f.name)
    cmd = [sys.executable, "-m", "flows.cli", "anonymize", str(src), str(work / "out"),
           "--targets", ",".join(targets), "--jobs", str(jobs), *extra]  # fmt: skip
    seconds = _wall(cmd, cwd=REPO)
    shutil.rmtree(work)
    return seconds


def per_image(run: Callable[[list[Path], Path], float], files: list[Path], tmp: Path) -> tuple[float, float]:
    """(seconds per image, start-up seconds) from one run on every file and one on the first file."""
    t_all = run(files, tmp / "all")
    t_one = run(files[:1], tmp / "one")
    step = max(t_all - t_one, 1e-9) / (len(files) - 1)
    return step, t_one - step


class _Timed:
    """A detector wrapper that records its seconds per call: call 1 per image is the detection pass,
    later calls are verification passes (the engine re-runs every detector on its output)."""

    def __init__(self, name: str, detector: Callable[[Any], Detections], log: dict[str, float]) -> None:
        self.name, self.detector, self.log, self.calls = name, detector, log, 0

    def __call__(self, image: Any) -> Detections:
        t0 = time.perf_counter()
        out = self.detector(image)
        self.log[f"{self.name} {'detect' if self.calls == 0 else 'verify'}"] += time.perf_counter() - t0
        self.calls += 1
        return out


def profile(files: list[Path], *, targets: tuple[str, ...]) -> dict[str, float]:
    """Seconds per image spent in each part of privtrail's engine, in this process (models warm)."""
    p = AnonymizeParams(targets=targets)  # type: ignore[arg-type]
    detectors = build_detectors(targets=p.targets, face=p.face.model_dump(), text=p.text.model_dump(),
                                plate=p.plate.model_dump())
    options = obfuscation_options(p)
    log: dict[str, float] = defaultdict(float)
    images = [decode_image(f.read_bytes(), name=f.name) for f in files]
    anonymize_image(images[0], detectors=detectors, options=options, rng=image_rng(0, "warm-up"))
    for i, (f, image) in enumerate(zip(files, images, strict=True)):
        t0 = time.perf_counter()
        decode_image(f.read_bytes(), name=f.name)
        log["decode"] += time.perf_counter() - t0
        timed = {name: _Timed(name, det, log) for name, det in detectors.items()}
        t0 = time.perf_counter()
        result = anonymize_image(image, detectors=timed, options=options, rng=image_rng(0, str(i)))
        log["engine total"] += time.perf_counter() - t0
        t0 = time.perf_counter()
        encode_png(result.image if result.image is not None else image)
        log["encode png"] += time.perf_counter() - t0
    in_detectors = sum(v for k, v in log.items() if k.split()[-1] in ("detect", "verify"))
    log["obfuscate + bookkeeping"] = log["engine total"] - in_detectors
    return {k: v / len(files) for k, v in log.items()}


def profile_face_parts(files: list[Path]) -> dict[str, float]:
    """Seconds per image of the face detector's two members, and of deface's own CenterFace call."""
    from deface.centerface import CenterFace

    face = build_detectors(targets=("face",), face=AnonymizeParams().face.model_dump(), text={})["face"]
    images = [decode_image(f.read_bytes(), name=f.name) for f in files]
    face(images[0])  # load
    ours: Any = face
    with contextlib.redirect_stdout(io.StringIO()):  # it prints its execution provider
        theirs = CenterFace(in_shape=None, backend="onnxrt")
    theirs(images[0], threshold=0.2)
    parts = {"privtrail CenterFace (1 thread)": functools.partial(ours._centerface, threshold=ours.threshold)}
    for name, up in ours.cascades.items():
        parts[f"privtrail Haar {name} ({up}x upscaled)"] = functools.partial(ours._haar_faces, name=name)
    parts["privtrail face detector (members + second looks)"] = ours
    parts["deface CenterFace (its threads)"] = lambda im: theirs(im, threshold=0.2)
    out = {}
    for name, fn in parts.items():
        t0 = time.perf_counter()
        for image in images:
            fn(image)
        out[name] = (time.perf_counter() - t0) / len(images)
    return out


def _rows(files: list[Path], tmp: Path, jobs: tuple[int, ...]) -> list[tuple[str, float, float]]:
    rows = [("deface (faces)", *per_image(_deface, files, tmp))]
    for kind, targets in TARGETS.items():
        for j in jobs:
            run = lambda fs, w, t=targets, j=j: _privtrail(fs, w, targets=t, jobs=j)  # noqa: E731
            rows.append((f"privtrail {kind} --jobs {j}", *per_image(run, files, tmp)))
    fast = ("--face-detector", "centerface")
    run = lambda fs, w: _privtrail(fs, w, targets=("face",), jobs=jobs[-1], extra=fast)  # noqa: E731
    rows.append((f"privtrail faces --jobs {jobs[-1]} centerface-only", *per_image(run, files, tmp)))
    return rows


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(
        prog="python -m bench.anonymize_throughput", description=__doc__.splitlines()[0]
    )
    ap.add_argument("--images", type=int, default=20, help="images per size (>= 2)")
    ap.add_argument("--sizes", default=",".join(SIZES), help=f"among {', '.join(SIZES)}")
    ap.add_argument(
        "--profile-images", type=int, default=8, help="images profiled in-process per size (0: none)"
    )
    args = ap.parse_args(argv)
    cores = len(os.sched_getaffinity(0))
    jobs = tuple(sorted({1, cores}))
    print(
        f"anonymize throughput: {args.images} JPEG images per size, {cores} cores; images/s excludes start-up"
    )
    with tempfile.TemporaryDirectory(prefix="privtrail-bench-") as tmp_name:
        tmp = Path(tmp_name)
        for size in args.sizes.split(","):
            width, height = SIZES[size]
            files = make_images(tmp / f"src{size}", width=width, height=height, n=args.images)
            rows = _rows(files, tmp, jobs)
            base = 1 / rows[0][1]
            print(f"\n{size}: {'tool':32} {'images/s':>9} {'start-up s':>10} {'÷ deface':>9}")
            for name, step, startup in rows:
                kind = name.split()[1]
                goal = f"  (goal >= {GOALS[kind]:.0f}x)" if size == "640x480" and kind in GOALS else ""
                print(f"{'':9}{name:32} {1 / step:9.2f} {startup:10.2f} {1 / step / base:9.2f}{goal}")
            if args.profile_images > 0:
                _print_profile(files[: args.profile_images])


def _print_profile(files: list[Path]) -> None:
    for kind, targets in TARGETS.items():
        prof = profile(files, targets=targets)
        print(f"  engine profile, {kind} ({len(files)} images, 1 thread per model), ms/image:")
        for name, seconds in sorted(prof.items(), key=lambda kv: -kv[1]):
            print(f"    {name:34} {1000 * seconds:8.1f}")
    print("  face detector parts, ms/image:")
    for name, seconds in profile_face_parts(files).items():
        print(f"    {name:34} {1000 * seconds:8.1f}")


if __name__ == "__main__":
    main()
