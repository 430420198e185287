"""GPU anonymization throughput: `deface` on onnxruntime's CUDA provider beside `privtrail anonymize --device cuda`
and `--device cpu`, on the same 640x480 composites, in one run.

What is measured (wall clock, each tool as the command a user runs, in a subprocess):
- Images: `bench.anonymize_throughput.make_scenes` (builtin scenes: photos, pasted LFW faces, plates, text), JPEG.
- images/s excludes start-up: `bench.anonymize_throughput.per_image` runs each command on all N files and on
  1, and takes (T_N - T_1) / (N - 1) per image.
- deface: `deface FILES --backend onnxrt --execution-provider EP` (its defaults otherwise: threshold 0.2, blur),
  EP = CUDAExecutionProvider, then CPUExecutionProvider; the provider deface says it ran on is printed.
- privtrail: `python -m flows.cli anonymize IN OUT --targets T --jobs J --device D` (+ `--privtrail-args`,
  e.g. "--preset fast"), faces only and all default targets.
- CenterFace alone, in this process: one blob per image vs `FaceDetector.centerface_batch` of `--batch`
  same-shape images (what batched frames would gain), on each device.

A CUDA row where CUDA cannot run says "not available: <why>" (`tasks.anonymize.device.resolve_device`), so the
script runs and prints on a CPU-only machine too: `python -m bench.gpu_anonymize --images 4`.
"""

from __future__ import annotations

import argparse
import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from bench.anonymize_throughput import BIN, REPO, make_scenes, per_image
from tasks.anonymize.detectors import FaceDetector
from tasks.anonymize.device import (
    CPU_PROVIDER,
    CUDA_PROVIDER,
    ResolvedDevice,
    onnxruntime_build,
    resolve_device,
)
from tasks.codec import decode_image

TARGETS = {"faces": ("face",), "all": ("face", "plate", "text")}
WIDTH, HEIGHT = 640, 480


def _run(cmd: list[str], *, cwd: Path) -> tuple[float, str]:
    """(wall seconds, stdout) of `cmd`; a failure raises with the end of its stderr."""
    t0 = time.perf_counter()
    done = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, check=False)
    seconds = time.perf_counter() - t0
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd[:4])} ... failed ({done.returncode}): {done.stderr[-1500:]}")
    return seconds, done.stdout


def _copies(files: list[Path], folder: Path) -> list[Path]:
    folder.mkdir(parents=True)
    for f in files:
        shutil.copy(f, folder / f.name)
    return [folder / f.name for f in files]


def deface_runner(provider: str, said: list[str]) -> Callable[[list[Path], Path], float]:
    """A `per_image` runner of deface on `provider`; appends the provider deface reports running on to `said`."""

    def run(files: list[Path], work: Path) -> float:
        cmd = [str(BIN / "deface"), *map(str, _copies(files, work)), "--backend", "onnxrt",
               "--execution-provider", provider]  # fmt: skip
        seconds, out = _run(cmd, cwd=work)
        said.extend(re.findall(r"Running on (\w+)", out))
        shutil.rmtree(work)
        return seconds

    return run


def privtrail_runner(targets: tuple[str, ...], *, device: str, jobs: int, extra: tuple[str, ...]) -> Callable[[list[Path], Path], float]:
    """A `per_image` runner of `privtrail anonymize --device DEVICE` on copies of the files."""

    def run(files: list[Path], work: Path) -> float:
        _copies(files, work / "in")
        cmd = [sys.executable, "-m", "flows.cli", "anonymize", str(work / "in"), str(work / "out"),
               "--targets", ",".join(targets), "--jobs", str(jobs), "--device", device, *extra]  # fmt: skip
        seconds, _ = _run(cmd, cwd=REPO)
        shutil.rmtree(work)
        return seconds

    return run


def centerface_rates(files: list[Path], *, providers: tuple[str, ...], batch: int) -> tuple[float, float]:
    """CenterFace alone in this process (models warm), images/s: one image per call, then `batch` per call."""
    images = [decode_image(f.read_bytes(), name=f.name) for f in files]
    face = FaceDetector(providers=providers)
    face.centerface_batch(images[:batch])  # load, and let a GPU settle on its kernels
    rates = []
    for size in (1, batch):
        t0 = time.perf_counter()
        for i in range(0, len(images), size):
            face.centerface_batch(images[i : i + size])
        rates.append(len(images) / (time.perf_counter() - t0))
    return rates[0], rates[1]


def _gpu_name() -> str:
    if shutil.which("nvidia-smi") is None:
        return "no nvidia-smi"
    done = subprocess.run(["nvidia-smi", "--query-gpu=name,driver_version", "--format=csv,noheader"],
                          capture_output=True, text=True, check=False)
    return done.stdout.strip() or f"nvidia-smi failed: {done.stderr.strip()[:200]}"


def _header(auto: ResolvedDevice) -> str:
    import onnxruntime as ort

    return (f"onnxruntime.get_available_providers(): {ort.get_available_providers()} ({onnxruntime_build()})\n"
            f"GPU: {_gpu_name()}; CPU cores: {len(os.sched_getaffinity(0))}\n"
            f"anonymize.device auto -> {auto.describe()}: {auto.reason}")


def _rows(files: list[Path], tmp: Path, args: argparse.Namespace, auto: ResolvedDevice) -> list[tuple[str, str]]:
    """(tool, images/s or why not) per row, deface's CUDA row first; `auto`: what auto resolved to here."""
    no_cuda = None if auto.name == "cuda" else auto.reason.removeprefix("auto: ")
    rows: list[tuple[str, str]] = []

    def timed(name: str, run: Callable[[list[Path], Path], float], *, cuda: bool) -> None:
        if cuda and no_cuda:
            rows.append((name, f"not available: {no_cuda}"))
            return
        step, startup = per_image(run, files, tmp / re.sub(r"\W+", "_", name))
        rows.append((name, f"{1 / step:8.2f} images/s  (start-up {startup:.1f} s)"))

    for provider in (CUDA_PROVIDER, CPU_PROVIDER):
        said: list[str] = []
        timed(f"deface --ep {provider}", deface_runner(provider, said), cuda=provider == CUDA_PROVIDER)
        if said:
            rows[-1] = (rows[-1][0], f"{rows[-1][1]}  [deface: running on {', '.join(sorted(set(said)))}]")
    extra = tuple(shlex.split(args.privtrail_args))
    for kind, targets in TARGETS.items():
        for device in ("cuda", "cpu"):
            for jobs in args.jobs:
                name = f"privtrail {kind} --device {device} --jobs {jobs} {args.privtrail_args}".rstrip()
                timed(name, privtrail_runner(targets, device=device, jobs=jobs, extra=extra), cuda=device == "cuda")
    for device, providers in (("cuda", (CUDA_PROVIDER, CPU_PROVIDER)), ("cpu", (CPU_PROVIDER,))):
        name = f"CenterFace alone on {device}: 1 / {args.batch} images per call"
        if device == "cuda" and no_cuda:
            rows.append((name, f"not available: {no_cuda}"))
            continue
        one, batched = centerface_rates(files, providers=providers, batch=args.batch)
        rows.append((name, f"{one:8.2f} / {batched:.2f} images/s"))
    return rows


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(prog="python -m bench.gpu_anonymize", description=__doc__.splitlines()[0])
    ap.add_argument("--images", type=int, default=40, help="640x480 composites (>= 2)")
    ap.add_argument("--jobs", type=lambda s: [int(j) for j in s.split(",")], default=[1],
                    help="privtrail --jobs values, comma-separated (default 1)")
    ap.add_argument("--batch", type=int, default=8, help="images per CenterFace call in the batched row")
    ap.add_argument("--privtrail-args", default="", help='more privtrail anonymize options, e.g. "--preset fast"')
    args = ap.parse_args(argv)
    if args.images < 2 or args.batch < 1:
        ap.error("--images must be >= 2 and --batch >= 1")
    print(f"GPU anonymize throughput: {args.images} JPEG composites of {WIDTH}x{HEIGHT}, one run; "
          "images/s excludes start-up")
    auto = resolve_device("auto")
    print(_header(auto))
    with tempfile.TemporaryDirectory(prefix="privtrail-gpu-bench-") as tmp_name:
        tmp = Path(tmp_name)
        files, faces = make_scenes(tmp / "src", width=WIDTH, height=HEIGHT, n=args.images)
        print(f"{sum(len(f) for f in faces)} ground-truth faces")
        rows = _rows(files, tmp, args, auto)
    width = max(len(name) for name, _ in rows)
    for name, value in rows:
        print(f"  {name:{width}}  {value}")


if __name__ == "__main__":
    main()
