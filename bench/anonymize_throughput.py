"""Anonymization throughput: `privtrail anonymize` vs the `deface` CLI, same images, one run.

What is measured (wall clock, both tools as the command a user runs, in subprocesses):
- Images: builtin scenes (skimage photos + pasted LFW faces, plates, text) generated at a square
  side W and centre-cropped to W×H, saved as JPEG q95 — the same files for both tools.
- Each tool runs twice on a size: on all N images, then on 1 of them. Per-image time is
  (T_N − T_1) / (N − 1); images/s is its inverse; start-up (imports, model load, process pool)
  is T_1 minus one per-image time, reported apart and excluded from images/s.
- deface: one invocation with all N files (`--backend onnxrt`, `--thresh` 0.2 (its default) and 0.1,
  its defaults otherwise: blur, no metadata kept, onnxruntime's own threads on every core), writing
  JPEGs beside the inputs. Ratios are against the 0.2 row.
- Face recall: the share of ground-truth faces (>= 70 % of each box) the tool's boxes cover on the same
  files (`face_recall`, in-process).
- privtrail: `python -m flows.cli anonymize IN OUT --targets T --jobs J` (decode, detect,
  pixelate, verify by re-detecting, metadata-free PNG). J = every core is the like-for-like row.
- Ratios are privtrail images/s ÷ deface images/s at the same size.

Then a profile of privtrail's engine in-process (one process, one thread per model, warm models):
seconds per image in each detector, split into the first detection pass and the verification
pass, plus decode / obfuscate / encode, and deface's CenterFace call on the same pixels.

`--ab-text-runtime N`: the engine (default preset, all targets, in-process, warm models) on the first N
images with PP-OCR on each CPU runtime (`anonymize.text.cpu_runtime`), alternating onnxruntime, openvino,
onnxruntime, openvino (each round every image once per runtime): ms/image per round, the ratio of the
totals, and how many images came out pixel-identical under both.
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

import numpy as np
from numpy.typing import NDArray
from PIL import Image

from tasks.anonymize.detectors import build_detectors, detectors_from_params
from tasks.anonymize.engine import anonymize_image, image_rng, obfuscation_options
from tasks.anonymize.regions import detect_crop
from tasks.codec import decode_image, encode_png
from tasks.coverage import redaction_recall
from tasks.ingest.builtin import generate_builtin
from tasks.params import AnonymizeParams
from tasks.types import Detections

SIZES = {"640x480": (640, 480), "1280x720": (1280, 720)}
TARGETS = {"faces": ("face",), "all": ("face", "plate", "text")}
PRESETS = ("fast", "default", "thorough")
# issue 35: privtrail / deface (thresh 0.2) images/s at 640×480, per (preset, targets)
GOALS = {("fast", "faces"): 1.0, ("default", "faces"): 0.5, ("default", "all"): 0.25}
REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


def make_images(folder: Path, *, width: int, height: int, n: int, seed: int = 0) -> list[Path]:
    """Write `n` builtin scenes, centre-cropped to width×height, as JPEG q95; return their paths."""
    return make_scenes(folder, width=width, height=height, n=n, seed=seed)[0]


def make_scenes(
    folder: Path, *, width: int, height: int, n: int, seed: int = 0
) -> tuple[list[Path], list[NDArray[np.int64]]]:
    """`make_images`, plus each image's ground-truth face boxes (cropped with it, clipped; faces the crop
    keeps less than half of are dropped)."""
    folder.mkdir(parents=True, exist_ok=True)
    scenes = generate_builtin(
        n_images=n, image_size=width, max_faces=3, face_size=(width // 20, width // 7), seed=seed
    )
    files, faces = [], []
    top = (width - height) // 2
    for i, scene in enumerate(scenes):
        files.append(folder / f"img_{i:03d}.jpg")
        Image.fromarray(scene.image[top : top + height]).save(files[-1], quality=95)
        boxes = np.array([a.box for a in scene.annotations if a.category == "face"], np.int64).reshape(-1, 4)
        shifted = boxes - np.array([0, top, 0, top], np.int64)
        clipped = np.clip(shifted, 0, [width, height, width, height]).astype(np.int64)
        kept = _area(clipped) >= 0.5 * _area(shifted)
        faces.append(clipped[kept])
    return files, faces


def _area(b: NDArray[np.int64]) -> NDArray[np.int64]:
    return np.asarray((b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1]), np.int64)


def _wall(cmd: list[str], *, cwd: Path) -> float:
    t0 = time.perf_counter()
    done = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, check=False)
    seconds = time.perf_counter() - t0
    if done.returncode != 0:
        raise RuntimeError(f"{cmd[0]} failed ({done.returncode}): {done.stderr[-2000:]}")
    return seconds


def run_deface(files: list[Path], work: Path, *, thresh: float = 0.2, keep: bool = False) -> float:
    """Seconds `deface` takes on copies of `files` in `work`; keep: leave `work` (and its
    `<stem>_anonymized.jpg` outputs) in place."""
    work.mkdir(parents=True)
    copies = []
    for f in files:  # deface writes <name>_anonymized.jpg beside each input: give it a fresh folder
        copies.append(work / f.name)
        shutil.copy(f, copies[-1])
    seconds = _wall([str(BIN / "deface"), *map(str, copies), "--backend", "onnxrt", "--thresh", str(thresh)], cwd=work)
    if not keep:
        shutil.rmtree(work)
    return seconds


def run_privtrail(
    files: list[Path], work: Path, *, targets: tuple[str, ...], jobs: int, extra: tuple[str, ...] = (), keep: bool = False
) -> float:
    """Seconds `privtrail anonymize` takes on copies of `files` in `work/in`; keep: leave `work` (and
    `work/out`) in place."""
    src = work / "in"
    src.mkdir(parents=True)
    for f in files:
        shutil.copy(f, src / f.name)
    cmd = [sys.executable, "-m", "flows.cli", "anonymize", str(src), str(work / "out"),
           "--targets", ",".join(targets), "--jobs", str(jobs), *extra]  # fmt: skip
    seconds = _wall(cmd, cwd=REPO)
    if not keep:
        shutil.rmtree(work)
    return seconds


def per_image(run: Callable[[list[Path], Path], float], files: list[Path], tmp: Path, *,
              base: int = 1) -> tuple[float, float]:
    """(seconds per image, start-up seconds) from one run on every file and one on the first `base` files.

    `base` is the number of worker processes the run starts (`--jobs`): with as many files as workers, the
    short run starts (and loads the models in) every worker too, so start-up is the same in both runs and
    drops out of the difference. With one file, the second worker's start-up would count as work.
    """
    if not 1 <= base < len(files):
        raise ValueError(f"per_image: base must be in [1, {len(files) - 1}] for {len(files)} files, got {base}")
    t_all = run(files, tmp / "all")
    t_base = run(files[:base], tmp / "base")
    step = max(t_all - t_base, 1e-9) / (len(files) - base)
    return step, t_base - base * step


class _Timed:
    """A detector wrapper that records its seconds per call: call 1 per image is the detection pass,
    later calls are verification passes (the engine re-runs every detector on its output, on windows
    around the changes or on the whole image). It passes on what region verification asks of a detector
    (`context`, `detect_crop`), so the windows are cut and scaled as without it."""

    def __init__(self, name: str, detector: Callable[[Any], Detections], log: dict[str, float]) -> None:
        self.name, self.detector, self.log, self.calls = name, detector, log, 0
        self.context = getattr(detector, "context", "box")

    def _timed(self, run: Callable[[], Detections]) -> Detections:
        t0 = time.perf_counter()
        out = run()
        self.log[f"{self.name} {'detect' if self.calls == 0 else 'verify'}"] += time.perf_counter() - t0
        self.calls += 1
        return out

    def __call__(self, image: Any) -> Detections:
        return self._timed(lambda: self.detector(image))

    def detect_crop(self, crop: Any, *, full_shape: tuple[int, int]) -> Detections:
        return self._timed(lambda: detect_crop(self.detector, crop, full_shape=full_shape))


def profile(files: list[Path], *, targets: tuple[str, ...]) -> dict[str, float]:
    """Seconds per image spent in each part of privtrail's engine, in this process (models warm)."""
    p = AnonymizeParams(targets=targets)  # type: ignore[arg-type]
    detectors = detectors_from_params(p)
    options = obfuscation_options(p)
    log: dict[str, float] = defaultdict(float)
    images = [decode_image(f.read_bytes(), name=f.name) for f in files]
    stage = {"method": p.method, "methods": p.methods, "verify": p.verify}  # what the stage applies
    anonymize_image(images[0], detectors=detectors, options=options, rng=image_rng(0, "warm-up"), **stage)
    for i, (f, image) in enumerate(zip(files, images, strict=True)):
        t0 = time.perf_counter()
        decode_image(f.read_bytes(), name=f.name)
        log["decode"] += time.perf_counter() - t0
        timed = {name: _Timed(name, det, log) for name, det in detectors.items()}
        t0 = time.perf_counter()
        result = anonymize_image(image, detectors=timed, options=options, rng=image_rng(0, str(i)), **stage)
        log["engine total"] += time.perf_counter() - t0
        t0 = time.perf_counter()
        encode_png(result.image if result.image is not None else image)
        log["encode png"] += time.perf_counter() - t0
    in_detectors = sum(v for k, v in log.items() if k.split()[-1] in ("detect", "verify"))
    log["obfuscate + bookkeeping"] = log["engine total"] - in_detectors
    return {k: v / len(files) for k, v in log.items()}


CPU_RUNTIMES = ("onnxruntime", "openvino")


def runtime_ab(files: list[Path], *, rounds: int = 2) -> tuple[dict[str, list[float]], int]:
    """(seconds per image of each timed round, per CPU runtime; images with identical output pixels under
    both): the engine with all targets and the default preset, the runtimes alternating A B A B on the same
    images. An untimed first round per runtime loads the models and the lexicons every image needs."""
    images = [decode_image(f.read_bytes(), name=f.name) for f in files]
    runs, outputs = {}, {}
    for runtime in CPU_RUNTIMES:
        p = AnonymizeParams(targets=TARGETS["all"], text={"cpu_runtime": runtime})  # type: ignore[arg-type]
        stage = {"method": p.method, "methods": p.methods, "verify": p.verify, "options": obfuscation_options(p)}
        runs[runtime] = (detectors_from_params(p), stage)
        outputs[runtime] = _engine_round(images, *runs[runtime])
    seconds: dict[str, list[float]] = defaultdict(list)
    for _ in range(rounds):
        for runtime, run in runs.items():
            t0 = time.perf_counter()
            _engine_round(images, *run)
            seconds[runtime].append((time.perf_counter() - t0) / len(images))
    a, b = (outputs[k] for k in CPU_RUNTIMES)
    same = sum((x is None and y is None) or (x is not None and y is not None and np.array_equal(x, y)) for x, y in zip(a, b, strict=True))
    return dict(seconds), same


def _engine_round(images: list[Any], detectors: Any, stage: dict[str, Any]) -> list[Any]:
    """Every image through the engine once (rng per image index); the output pixels (None: quarantined)."""
    return [anonymize_image(im, detectors=detectors, rng=image_rng(0, str(i)), **stage).image for i, im in enumerate(images)]


def _print_runtime_ab(files: list[Path]) -> None:
    seconds, same = runtime_ab(files)
    print(f"  PP-OCR CPU runtime A/B, all targets, default preset, {len(files)} images in-process, "
          f"rounds alternating {' / '.join(CPU_RUNTIMES)}, ms/image:")  # fmt: skip
    for runtime, per_round in seconds.items():
        print(f"    {runtime:12} " + "  ".join(f"{1000 * s:7.1f}" for s in per_round))
    a, b = (sum(seconds[k]) for k in CPU_RUNTIMES)
    print(f"    openvino / onnxruntime time: {b / a:.3f} (images/s x{a / b:.2f}); identical outputs {same}/{len(files)}")


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


DEFACE_THRESHOLDS = (0.2, 0.1)  # deface's default, and a looser one that trades false positives for recall


def face_recall(files: list[Path], faces: list[NDArray[np.int64]], presets: tuple[str, ...] = PRESETS) -> dict[str, float]:
    """Share of ground-truth faces (>= 70 % of the box) that each tool's redactions cover, in-process on
    the same files: deface's CenterFace at each threshold with its 1.3 mask scale, and privtrail's engine
    (faces only, all targets) with each preset's params, counting every box it redacted."""
    from deface.centerface import CenterFace
    from deface.deface import scale_bb

    images = [decode_image(f.read_bytes(), name=f.name) for f in files]
    with contextlib.redirect_stdout(io.StringIO()):  # it prints its execution provider
        centerface = CenterFace(in_shape=None, backend="onnxrt")
    redacted: dict[str, list[NDArray[np.int64]]] = defaultdict(list)
    for image in images:
        for t in DEFACE_THRESHOLDS:
            found, _ = centerface(image, threshold=t)
            boxes = [scale_bb(*d[:4], mask_scale=1.3) for d in found]
            redacted[f"deface (faces, thresh {t})"].append(np.asarray(boxes, np.int64).reshape(-1, 4))
    for preset in presets:
        for kind, targets in TARGETS.items():
            p = AnonymizeParams(targets=targets, preset=preset)  # type: ignore[arg-type]
            detectors = detectors_from_params(p)
            options = obfuscation_options(p)
            stage = {"method": p.method, "methods": p.methods, "verify": p.verify}
            for i, image in enumerate(images):
                result = anonymize_image(image, detectors=detectors, options=options, rng=image_rng(0, str(i)), **stage)
                redacted[f"privtrail {preset} {kind}"].append(result.detections.boxes)
    out = {}
    for name, per_image_boxes in redacted.items():
        covered = total = 0
        for gt, redaction, image in zip(faces, per_image_boxes, images, strict=True):
            c, n = redaction_recall({"face": gt}, redaction, image_shape=image.shape[:2])["face"]
            covered, total = covered + c, total + n
        out[name] = covered / max(total, 1)
    return out


def _rows(files: list[Path], tmp: Path, jobs: tuple[int, ...], presets: tuple[str, ...]) -> list[tuple[str, float, float]]:
    rows = [(f"deface (faces, thresh {t})", *per_image(functools.partial(run_deface, thresh=t), files, tmp))
            for t in DEFACE_THRESHOLDS]
    for preset in presets:
        for kind, targets in TARGETS.items():
            for j in jobs if preset == "default" else jobs[-1:]:
                run = lambda fs, w, t=targets, j=j, pr=preset: run_privtrail(fs, w, targets=t, jobs=j, extra=("--preset", pr))  # noqa: E731
                rows.append((f"privtrail {preset} {kind} --jobs {j}", *per_image(run, files, tmp, base=j)))
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
    ap.add_argument("--presets", default=",".join(PRESETS), help=f"among {', '.join(PRESETS)}")
    ap.add_argument(
        "--ab-text-runtime", type=int, default=0, metavar="N",
        help="only the PP-OCR CPU runtime A/B (onnxruntime vs openvino) on N 640x480 images, in-process",
    )  # fmt: skip
    args = ap.parse_args(argv)
    if args.ab_text_runtime:
        with tempfile.TemporaryDirectory(prefix="privtrail-bench-") as tmp_name:
            _print_runtime_ab(make_images(Path(tmp_name), width=640, height=480, n=args.ab_text_runtime))
        return
    presets = tuple(p for p in args.presets.split(",") if p)
    cores = len(os.sched_getaffinity(0))
    jobs = tuple(sorted({1, cores}))
    print(
        f"anonymize throughput: {args.images} JPEG images per size, {cores} cores; images/s excludes start-up"
    )
    with tempfile.TemporaryDirectory(prefix="privtrail-bench-") as tmp_name:
        tmp = Path(tmp_name)
        for size in args.sizes.split(","):
            width, height = SIZES[size]
            files, faces = make_scenes(tmp / f"src{size}", width=width, height=height, n=args.images)
            rows = _rows(files, tmp, jobs, presets)
            recall = face_recall(files, faces, presets)
            base = 1 / rows[0][1]
            n_faces = sum(len(f) for f in faces)
            print(f"\n{size}: {'tool':36} {'images/s':>9} {'start-up s':>10} {'÷ deface':>9} "
                  f"{'face recall':>11} (of {n_faces})")
            for name, step, startup in rows:
                key = name if name.startswith("deface") else " ".join(name.split()[:3])
                rec = f"{recall[key]:11.3f}" if key in recall else f"{'-':>11}"
                aim = GOALS.get(tuple(name.split()[1:3]))  # type: ignore[arg-type]
                goal = f"  (goal >= {aim:g}x)" if size == "640x480" and aim and f"--jobs {jobs[-1]}" in name else ""
                print(f"{'':9}{name:36} {1 / step:9.2f} {startup:10.2f} {1 / step / base:9.2f} {rec}{goal}")
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
