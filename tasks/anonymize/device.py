"""Where the anonymizer's ONNX models run: `anonymize.device` (auto | cpu | cuda) resolved to onnxruntime providers.

CenterFace (the face detector and its second looks) and PP-OCR (rapidocr's text detector and recogniser) are
onnxruntime sessions, so they can run on a GPU through onnxruntime-gpu's `CUDAExecutionProvider`. The Haar
cascades, the HOG people detector, YuNet (`yuface`) and the obfuscation are OpenCV / numpy code: CPU always.

onnxruntime-gpu ships the same `onnxruntime` module as the CPU wheel (which rapidocr-onnxruntime requires),
so the GPU build replaces the CPU one (`make setup-gpu`); a machine has one or the other.
"""

from __future__ import annotations

import importlib.metadata
import multiprocessing
import warnings
from collections.abc import Iterable, Sequence
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from typing import Any, Literal

from tasks.errors import AnonymizationError, InvalidInputError

CPU_PROVIDER = "CPUExecutionProvider"
CUDA_PROVIDER = "CUDAExecutionProvider"
PROVIDERS = (CUDA_PROVIDER, CPU_PROVIDER)
DEVICES = ("auto", "cpu", "cuda")
INSTALL_HINT = (
    "on a machine with an NVIDIA GPU and its driver, run `make setup-gpu`: it replaces onnxruntime (the CPU "
    "build) by onnxruntime-gpu, the `privtrail[gpu]` extra (`pip install 'privtrail[gpu]'` alone leaves both "
    "wheels writing one `onnxruntime` module)"
)
# what runs where, in words (the manifest's and the report's sentence)
_WHERE = {
    "cpu": "onnxruntime CPUExecutionProvider and OpenCV, all on CPU",
    "cuda": "onnxruntime CUDAExecutionProvider for CenterFace and PP-OCR; OpenCV cascades, HOG and YuNet on CPU",
}


@dataclass(frozen=True)
class ResolvedDevice:
    """Where the anonymizer's onnxruntime sessions run, as one run resolved `anonymize.device`.

    Attributes:
        name: "cpu" or "cuda".
        providers: onnxruntime execution providers, in order of preference, for every session.
        reason: why this device, in words ("auto: CUDAExecutionProvider not available (...)").
    """

    name: Literal["cpu", "cuda"]
    providers: tuple[str, ...]
    reason: str

    def describe(self) -> str:
        """The device in words, as the manifest and the report record it, e.g.
        "cuda (onnxruntime CUDAExecutionProvider for CenterFace and PP-OCR; OpenCV cascades, HOG and YuNet on CPU)"."""
        return f"{self.name} ({_WHERE[self.name]})"

    def as_record(self) -> dict[str, Any]:
        """JSON-ready: name, providers, description, reason."""
        return {
            "name": self.name,
            "providers": list(self.providers),
            "description": self.describe(),
            "reason": self.reason,
        }


def onnxruntime_build() -> str:
    """The installed onnxruntime distribution(s) in words: "onnxruntime 1.32.0, the CPU build",
    "onnxruntime-gpu 1.31.1", or both (then one overwrote the other's files)."""
    found = {}
    for dist in ("onnxruntime", "onnxruntime-gpu"):
        try:
            found[dist] = importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            continue
    words = (
        " and ".join(f"{dist} {version}" for dist, version in found.items()) or "no onnxruntime distribution"
    )
    if len(found) == 2:
        return f"{words} both installed, one over the other's module: rerun make setup-gpu"
    return f"{words}, the CPU build" if "onnxruntime" in found else words


def cuda_session_error(*, isolated: bool = True) -> str | None:
    """Why onnxruntime cannot run a session on CUDA here, or None when it can.

    onnxruntime-gpu lists `CUDAExecutionProvider` whether or not a GPU, its driver and the CUDA / cuDNN
    libraries are there, and a session asked for it falls back to the CPU with a log line. So build a
    one-node session on it and look at the providers the session really got.

    Args:
        isolated: build it in a fresh (spawned) process, so that this one never starts CUDA: a CUDA context
            does not survive a fork, and the CLI forks its workers after resolving the device.
    """
    if not isolated:
        return _probe_cuda()
    try:
        with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:
            return pool.submit(_probe_cuda).result()
    except BrokenProcessPool as err:  # the driver or a CUDA library crashed the probe process
        return f"the CUDA probe process died ({err})"


def _probe_cuda() -> str | None:
    """`cuda_session_error(isolated=False)`: a one-node (Relu) session asked for CUDA, then CPU."""
    import onnx
    import onnxruntime as ort
    from onnxruntime.capi import onnxruntime_pybind11_state as ort_state

    x = onnx.helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, [1])
    y = onnx.helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, [1])
    graph = onnx.helper.make_graph([onnx.helper.make_node("Relu", ["x"], ["y"])], "probe", [x], [y])
    model = onnx.helper.make_model(graph, opset_imports=[onnx.helper.make_opsetid("", 13)])
    opts = ort.SessionOptions()
    opts.log_severity_level = 4  # the fallback's own error line is replaced by the reason returned here
    try:
        with warnings.catch_warnings():  # a CPU build warns that it has no CUDA provider: the reason says so
            warnings.simplefilter("ignore", UserWarning)
            got = ort.InferenceSession(
                model.SerializeToString(), opts, providers=[CUDA_PROVIDER, CPU_PROVIDER]
            )
    except (ort_state.Fail, ort_state.EPFail, ort_state.RuntimeException, RuntimeError) as err:
        return f"onnxruntime could not create a CUDA session: {err}"
    if CUDA_PROVIDER not in got.get_providers():
        return (
            f"a session asked for {CUDA_PROVIDER} ran on {', '.join(got.get_providers())} "
            f"({onnxruntime_build()}; no GPU, driver, or CUDA / cuDNN libraries it could load)"
        )
    return None


def resolve_device(requested: str, *, available: Sequence[str] | None = None) -> ResolvedDevice:
    """Resolve `anonymize.device` to the providers every onnxruntime session of the run gets.

    auto: CUDA when onnxruntime lists `CUDAExecutionProvider` (and, when `available` is None, a probe
    session really runs on it: `cuda_session_error`), else CPU. cpu: CPU. cuda: CUDA, or an error.

    Args:
        requested: "auto" | "cpu" | "cuda" (`anonymize.device`, the CLI's `--device`).
        available: the providers onnxruntime lists, taken as they are (tests); None:
            `onnxruntime.get_available_providers()`, with the probe session.
    Raises:
        InvalidInputError: an unknown value; or "cuda" where CUDA cannot run (names anonymize.device
            and how to install onnxruntime-gpu).
    """
    if requested not in DEVICES:
        raise InvalidInputError(f"anonymize.device: {requested!r} is not one of {', '.join(DEVICES)}")
    if requested == "cpu":
        return ResolvedDevice("cpu", (CPU_PROVIDER,), "requested: anonymize.device is cpu")
    why_not = _cuda_unavailable(available)
    if why_not is None:
        reason = (
            "requested: anonymize.device is cuda"
            if requested == "cuda"
            else f"auto: {CUDA_PROVIDER} available"
        )
        return ResolvedDevice("cuda", (CUDA_PROVIDER, CPU_PROVIDER), reason)
    if requested == "cuda":
        raise InvalidInputError(
            f"anonymize.device: cuda was asked for, but {why_not}; {INSTALL_HINT}, "
            "or set anonymize.device to auto or cpu"
        )
    return ResolvedDevice("cpu", (CPU_PROVIDER,), f"auto: {why_not}")


def _cuda_unavailable(available: Sequence[str] | None) -> str | None:
    """Why CUDA cannot be used (None: it can)."""
    if available is not None:
        return (
            None
            if CUDA_PROVIDER in available
            else (
                f"{CUDA_PROVIDER} not available (onnxruntime lists {', '.join(available) or 'no provider'})"
            )
        )
    import onnxruntime as ort

    listed = ort.get_available_providers()
    if CUDA_PROVIDER not in listed:
        return f"{CUDA_PROVIDER} not available ({onnxruntime_build()}; it lists {', '.join(listed)})"
    return cuda_session_error()


def check_providers(providers: Iterable[str], *, what: str) -> tuple[str, ...]:
    """`providers` as a tuple, checked: non-empty, distinct, each one of `PROVIDERS` (what `resolve_device`
    chooses among, and what rapidocr can be switched to).

    Raises:
        InvalidInputError: empty, repeated or unknown names; the message names `what`.
    """
    out = tuple(providers)
    if not out or len(set(out)) != len(out) or not set(out) <= set(PROVIDERS):
        raise InvalidInputError(
            f"{what}: providers must be distinct, among {', '.join(PROVIDERS)}, in order of "
            f"preference; got {out!r}"
        )
    return out


def confirm_providers(sessions: Iterable[Any], providers: Sequence[str], *, what: str) -> None:
    """Fail when an onnxruntime session did not get the first of `providers` (onnxruntime falls back to the
    CPU silently when CUDA cannot start; the run would then record a device it did not use).

    Raises:
        AnonymizationError: a session runs on other providers; the message names `what`.
    """
    for session in sessions:
        got = list(session.get_providers())
        if providers[0] not in got:
            raise AnonymizationError(
                f"{what}: onnxruntime was asked for {list(providers)} but runs on {got}; "
                f"{INSTALL_HINT}, or set anonymize.device to cpu"
            )
