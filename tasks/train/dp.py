"""DP-SGD training with Opacus (Abadi et al. 2016), a non-private baseline, and the DP record.

The record (`DpTrainingRecord`) is an immutable description of the mechanism that ran — noise,
sample rate, steps, accountant — kept apart from the accountant that prices it, so anyone can
re-price it (`recompute_epsilon`) without the training code.
"""

from __future__ import annotations

import os
import time
import warnings
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import torch
from numpy.typing import NDArray
from opacus import PrivacyEngine
from opacus.accountants import create_accountant
from opacus.accountants.utils import get_noise_multiplier
from opacus.utils.batch_memory_manager import BatchMemoryManager
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from tasks.errors import InvalidInputError, PrivacyBudgetError
from tasks.train.models import build_model

# make_private_with_epsilon searches the noise to within this of the target (Opacus' default).
EPSILON_TOLERANCE = 0.01
_EVAL_BATCH = 512


@dataclass(frozen=True)
class DpTrainingRecord:
    """What DP-SGD ran, and what the accountant said about it at the end.

    `history` is the accountant's own history: ((noise_multiplier, sample_rate, num_steps), ...).
    """

    noise_multiplier: float
    sample_rate: float
    steps: int
    epochs: int
    accountant: str
    target_epsilon: float
    target_delta: float
    epsilon: float
    max_grad_norm: float
    n_train: int
    batch_size: int
    poisson_sampling: bool
    history: tuple[tuple[float, float, int], ...]
    # Added later; defaults keep older dp_record.json files readable.
    grad_sample_mode: str = "hooks"
    secure_mode: bool = False
    warnings: tuple[str, ...] = ()
    # where the noise and the Poisson sampling came from: "os_entropy" (secret, the default), "csprng"
    # (Opacus secure_mode), "seeded" (an explicit noise_seed: tests only; the guarantee does not hold against
    # whoever knows the seed). Records written before this field existed seeded both from the public seed.
    rng: str = "seeded"
    # the privacy unit when it is not one image (`tasks.train.person.UnitAccounting.as_dict()`: unit, cap, rule,
    # the per-unit ε of both accountants); None: the unit is one image
    privacy_unit: dict[str, Any] | None = None

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready dict (history as lists)."""
        d = asdict(self)
        d["history"] = [list(h) for h in self.history]
        d["warnings"] = list(self.warnings)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> DpTrainingRecord:
        """Inverse of `as_dict` (accepts lists where tuples are expected, as JSON gives)."""
        history = tuple((float(n), float(q), int(s)) for n, q, s in d["history"])
        return cls(**{**d, "history": history, "warnings": tuple(d.get("warnings", ()))})

    def as_metrics(self) -> dict[str, float]:
        """Numeric fields keyed "train/<field>"."""
        keys: tuple[str, ...] = (
            "noise_multiplier",
            "sample_rate",
            "steps",
            "epochs",
            "target_epsilon",
            "target_delta",
        )
        keys += ("epsilon", "max_grad_norm", "n_train", "batch_size")
        return {f"train/{k}": float(getattr(self, k)) for k in keys}


@dataclass(frozen=True)
class EpochStats:
    """One epoch: mean training loss, validation accuracy (nan without x_val), ε so far (nan if non-private)."""

    epoch: int
    train_loss: float
    val_accuracy: float
    epsilon: float
    seconds: float


@dataclass(frozen=True)
class TrainResult:
    """A trained plain `nn.Module` (no Opacus wrapper), its DP record (None if non-private), per-epoch curve."""

    model: nn.Module
    record: DpTrainingRecord | None
    curve: tuple[EpochStats, ...]


def check_xy(x: torch.Tensor, y: torch.Tensor, *, name: str) -> None:
    """Check a training or evaluation set: x (N, C, s, s) float32, y (N,) int64 non-negative, N >= 1.

    Raises:
        InvalidInputError: naming `name` and what is wrong.
    """
    if x.ndim != 4 or x.dtype != torch.float32:
        raise InvalidInputError(f"{name}: x must be (N, C, s, s) float32, got {tuple(x.shape)} {x.dtype}")
    if y.ndim != 1 or y.dtype != torch.int64 or len(y) != len(x):
        raise InvalidInputError(f"{name}: y must be ({len(x)},) int64, got {tuple(y.shape)} {y.dtype}")
    if len(x) == 0:
        raise InvalidInputError(f"{name}: no samples")
    if int(y.min()) < 0:
        raise InvalidInputError(f"{name}: y has negative labels")


def num_classes_of(y: torch.Tensor, num_classes: int | None) -> int:
    """The output size: `num_classes` (the data's label set, from the caller's `ModelSpec`), or, when None,
    the largest label in `y` + 1.

    Raises:
        InvalidInputError: a label in `y` that does not fit `num_classes`.
    """
    top = int(y.max()) + 1
    if num_classes is None:
        return top
    if top > num_classes:
        raise InvalidInputError(f"labels go up to {top - 1} but the model has {num_classes} classes")
    return num_classes


def _in_shape(x: torch.Tensor) -> tuple[int, int, int]:
    return (int(x.shape[1]), int(x.shape[2]), int(x.shape[3]))


def _run_epoch(
    model: nn.Module, optimizer: torch.optim.Optimizer, loader: Any, device: str, criterion: Any = None
) -> float:
    """One pass over `loader`; returns the mean training loss over the samples seen.

    `criterion` defaults to cross-entropy; ghost clipping passes Opacus' wrapped criterion, whose
    `backward()` runs the two passes that clip without materialising per-sample gradients.
    """
    model.train()
    criterion = criterion if criterion is not None else nn.CrossEntropyLoss()
    total, seen = 0.0, 0
    for xb, yb in loader:
        optimizer.zero_grad()
        loss = criterion(model(xb.to(device)), yb.to(device))
        loss.backward()
        optimizer.step()
        total, seen = total + float(loss.detach()) * len(yb), seen + len(yb)
    return total / max(seen, 1)


def _epoch_stats(
    model: nn.Module,
    epoch: int,
    loss: float,
    val: tuple[torch.Tensor, torch.Tensor] | None,
    eps: float,
    t0: float,
) -> EpochStats:
    acc = evaluate(model, *val) if val is not None else float("nan")
    return EpochStats(
        epoch=epoch, train_loss=loss, val_accuracy=acc, epsilon=eps, seconds=time.perf_counter() - t0
    )


def _val_pair(
    x_val: torch.Tensor | None, y_val: torch.Tensor | None
) -> tuple[torch.Tensor, torch.Tensor] | None:
    if (x_val is None) != (y_val is None):
        raise InvalidInputError("x_val and y_val must be given together")
    if x_val is None or y_val is None:
        return None
    check_xy(x_val, y_val, name="validation set")
    return x_val, y_val


def seeded_loader(
    x: torch.Tensor, y: torch.Tensor, *, batch_size: int, seed: int, shuffle: bool
) -> DataLoader[Any]:
    """A `DataLoader` over (x, y) whose order (when `shuffle`) is drawn from `seed`."""
    gen = torch.Generator().manual_seed(seed)
    return DataLoader(TensorDataset(x, y), batch_size=batch_size, shuffle=shuffle, generator=gen)


def check_batch(n: int, batch_size: int, epochs: int) -> None:
    """Check a schedule on `n` training samples: batch_size in [1, n], epochs >= 1.

    Raises:
        InvalidInputError: naming the bad value.
    """
    if not 1 <= batch_size <= n:
        raise InvalidInputError(f"batch_size must be in [1, {n}] (the training-set size), got {batch_size}")
    if epochs < 1:
        raise InvalidInputError(f"epochs must be >= 1, got {epochs}")


def make_private(
    engine: PrivacyEngine,
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    loader: DataLoader[Any],
    **kw: Any,
) -> tuple[Any, Any, Any, DataLoader[Any]]:
    """Opacus' `make_private_with_epsilon` with Poisson sampling, its warnings about secure RNG and GDP muted;
    with `noise_multiplier` (not None) in `kw`, Opacus' `make_private` at that σ instead (no search).

    Returns:
        (module, optimizer, criterion or None, loader); ghost clipping returns a criterion that must be used.
    """
    with warnings.catch_warnings():
        # Opacus warns that its secure_mode is off (our noise is secret without torchcsprng: `dp_generators`)
        # and that GDP is experimental.
        warnings.filterwarnings("ignore", message=".*[Ss]ecure RNG.*")
        warnings.filterwarnings("ignore", message=".*GDP accounting is experimental.*")
        if kw.get("noise_multiplier") is not None:  # σ calibrated by the caller (a per-unit target)
            fixed = {k: v for k, v in kw.items() if k not in ("target_epsilon", "target_delta", "epochs")}
            out = engine.make_private(
                module=model, optimizer=optimizer, data_loader=loader, poisson_sampling=True, **fixed
            )
        else:
            kw.pop("noise_multiplier", None)
            out = engine.make_private_with_epsilon(
                module=model, optimizer=optimizer, data_loader=loader, poisson_sampling=True, **kw
            )
    return (out[0], out[1], out[2], out[3]) if len(out) == 4 else (out[0], out[1], None, out[2])


GRAD_SAMPLE_MODES = ("hooks", "functorch", "ghost")
GDP_WARNING = (
    "accountant gdp (Gaussian DP, CLT approximation) can understate epsilon for few steps or large "
    "sample rates (Gopi et al. 2021); use prv or rdp for a guarantee"
)


SEEDED_WARNING = (
    "DP noise and sampling were seeded (noise_seed): anyone who knows the seed can regenerate "
    "and subtract the noise, so the stated epsilon does not hold against them"
)


def dp_generators(noise_seed: int | None, device: str) -> tuple[torch.Generator, torch.Generator, str]:
    """(sampling generator on the CPU, noise generator on `device`, the RNG's name for the record).

    Both are seeded from OS entropy (`os.urandom`, 64 bits each; never from a committed seed, never logged)
    unless `noise_seed` is given (tests that compare two runs of the same mechanism).
    """

    def seed(k: int) -> int:
        return int.from_bytes(os.urandom(8), "little") if noise_seed is None else noise_seed + k

    sampling = torch.Generator().manual_seed(seed(0))
    noise = torch.Generator(device=device).manual_seed(seed(1))
    return sampling, noise, "os_entropy" if noise_seed is None else "seeded"


def secret_noise(engine: PrivacyEngine, sampling: torch.Generator) -> None:
    """Make Opacus draw the Poisson sampling from `sampling` (it reads `engine.secure_rng`)."""
    engine.secure_rng = sampling


def privacy_engine(accountant: str, *, secure_mode: bool) -> PrivacyEngine:
    """An Opacus `PrivacyEngine` with `accountant` ("prv" | "rdp" | "gdp").

    Raises:
        InvalidInputError: secure_mode without the torchcsprng package.
    """
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*GDP accounting is experimental.*")
            warnings.filterwarnings("ignore", message=".*[Ss]ecure RNG.*")
            return PrivacyEngine(accountant=accountant, secure_mode=secure_mode)
    except ImportError:
        raise InvalidInputError(
            "train.dp.secure_mode=true needs the torchcsprng package, which is not installed"
        ) from None


def check_delta(target_delta: float, n_train: int) -> None:
    """δ must be below 1/n: at δ ≥ 1/n, "release one record in the clear" is (0, δ)-DP.

    Raises:
        InvalidInputError: naming δ, n and 1/n.
    """
    if not target_delta < 1.0 / n_train:
        raise InvalidInputError(
            f"train.dp.target_delta={target_delta:g} must be < 1/n_train = 1/{n_train} = {1.0 / n_train:.3g}"
        )


def planned_history(
    n_train: int, *, batch_size: int, epochs: int, target_epsilon: float, target_delta: float, accountant: str
) -> tuple[tuple[float, float, int], ...]:
    """The mechanism history `train_dp` will run, computed before training (same search as Opacus).

    Poisson sampling at the rate and for the steps of `loop_schedule`, at the noise Opacus' search picks.
    Returns ((noise_multiplier, sample_rate, steps),).
    """
    rate, steps = loop_schedule(n_train, batch_size=batch_size, epochs=epochs)
    with warnings.catch_warnings():  # Opacus searches σ at the rate it samples: 1 / ceil(n / batch)
        warnings.filterwarnings("ignore", message=".*GDP accounting is experimental.*")
        sigma = get_noise_multiplier(target_epsilon=target_epsilon, target_delta=target_delta,
                                     sample_rate=1 / -(-n_train // batch_size), epochs=epochs,
                                     accountant=accountant)  # fmt: skip
    return ((float(sigma), rate, steps),)


def loop_schedule(n_train: int, *, batch_size: int, epochs: int) -> tuple[float, int]:
    """(sample rate, steps) that the DP-SGD loop `train_dp` records in its accountant's history.

    Opacus' Poisson loader samples each image at 1 / ceil(n_train / batch_size) and runs s = int(1 / that)
    logical steps per epoch (`UniformWithReplacementSampler`); its accountant prices q = 1 / s, the rate
    of the loader it returns. s = ceil(n / batch) except for lengths where the float 1 / (1 / k) falls
    below k (e.g. k = 93: 92 steps priced at q = 1/92, above the 1/93 sampled: ε over-, never under-stated).
    DPDDP shards the same q. Returns (q, epochs × s).
    Raises:
        InvalidInputError: batch_size outside [1, n_train], epochs < 1.
    """
    check_batch(n_train, batch_size, epochs)
    per_epoch = int(1 / (1 / -(-n_train // batch_size)))
    return 1 / per_epoch, epochs * per_epoch


_HISTORY_RTOL = 1e-9  # σ and q round-trip JSON exactly; this only absorbs float formatting


def _close(a: float, b: float) -> bool:
    return abs(a - b) <= _HISTORY_RTOL * abs(b)


def history_mismatches(record: DpTrainingRecord) -> list[str]:
    """Every way the record's mechanism history differs from the mechanism its schedule says ran.

    The planned mechanism: Poisson sampling at q and `steps` from `loop_schedule(n_train, batch_size,
    epochs)`, every step with the recorded noise multiplier σ. Empty when they agree.
    """
    rate, steps = loop_schedule(record.n_train, batch_size=record.batch_size, epochs=record.epochs)
    sigma = record.noise_multiplier
    out = [] if record.poisson_sampling else ["poisson_sampling is false (both accountants assume it)"]
    if not record.history:
        return [*out, "the history is empty"]
    if (n := sum(int(s) for _, _, s in record.history)) != steps:
        out.append(f"{n} steps recorded, {steps} planned ({record.epochs} epochs x {steps // record.epochs})")
    if record.steps != steps:
        out.append(f"record.steps = {record.steps}, {steps} planned")
    out += [
        f"history step {i}: q = {q:.6g}, planned {rate:.6g} (1 / {round(1 / rate)} steps per epoch)"
        for i, (_, q, _) in enumerate(record.history)
        if not _close(q, rate)
    ]
    out += [
        f"history step {i}: sigma = {n:.6g}, recorded noise multiplier {sigma:.6g}"
        for i, (n, _, _) in enumerate(record.history)
        if not _close(n, sigma)
    ]
    if not _close(record.sample_rate, rate):
        out.append(f"record.sample_rate = {record.sample_rate:.6g}, planned {rate:.6g}")
    return out


def check_history(record: DpTrainingRecord) -> None:
    """Refuse to price a history that is not the mechanism the record's schedule ran.

    Both accountants price whatever history they are given: a history with fewer steps, a larger q or a
    larger σ than training used would understate ε. Checked against n_train, batch_size, epochs and σ.
    Raises:
        PrivacyBudgetError: one line naming every mismatch and the schedule's numbers.
    """
    problems = history_mismatches(record)
    if problems:
        raise PrivacyBudgetError(
            f"DP record: the mechanism history does not match the training schedule (n_train={record.n_train}, "
            f"batch_size={record.batch_size}, epochs={record.epochs}, sigma={record.noise_multiplier:.6g}): "
            + "; ".join(problems)
            + "; refusing to price it"
        )


def train_dp(
    x: torch.Tensor,
    y: torch.Tensor,
    *,
    model_name: str,
    epochs: int,
    batch_size: int,
    lr: float,
    momentum: float,
    target_epsilon: float,
    target_delta: float,
    max_grad_norm: float,
    accountant: str,
    seed: int,
    device: str = "cpu",
    num_classes: int | None = None,
    physical_batch_size: int = 128,
    grad_sample_mode: str = "hooks",
    secure_mode: bool = False,
    noise_seed: int | None = None,
    x_val: torch.Tensor | None = None,
    y_val: torch.Tensor | None = None,
    on_epoch: Callable[[EpochStats], None] | None = None,
    noise_multiplier: float | None = None,
) -> TrainResult:
    """Train `model_name` with DP-SGD (Abadi et al. 2016) to (target_epsilon, target_delta)-DP.

    Opacus picks the noise multiplier for the declared `epochs` (Poisson sampling with rate
    batch_size / N, per-sample clipping to `max_grad_norm`); `BatchMemoryManager` splits each logical
    batch into physical ones of at most `physical_batch_size`. The weights' initialisation is seeded by
    `seed`; the noise and the Poisson sampling, on which the guarantee rests, are secret: drawn from OS
    entropy (`dp_generators`), and the Gaussian noise is the sum of 2n draws (n = 2) that resists the
    floating-point attack (Holohan & Braghin 2021), as Opacus' secure mode draws it.

    Args:
        x: (N, C, s, s) float32 training inputs (see `prepare_inputs`); N is the DP unit count.
        y: (N,) int64 labels.
        model_name: key of `MODELS`.
        epochs, batch_size, lr, momentum: schedule; batch_size is the expected logical batch.
        target_epsilon, target_delta, max_grad_norm, accountant ("prv" | "rdp" | "gdp"): DP params.
        seed: seed of every random choice.
        device: torch device.
        num_classes: output size (the data's label set); None: the largest label in `y` + 1.
        physical_batch_size: largest batch held in memory at once.
        grad_sample_mode: how Opacus computes per-sample gradient norms: "hooks", "functorch" or
            "ghost" (ghost clipping: norms without materialising per-sample gradients).
        secure_mode: Opacus' cryptographically secure generator for noise and sampling (torchcsprng).
        noise_seed: seed the noise and the sampling instead (tests comparing two runs; recorded as
            "seeded", with a warning in the record: the guarantee does not hold against its holder).
        x_val, y_val: optional validation set for the per-epoch accuracy curve.
        noise_multiplier: run at this σ instead of Opacus' search for the per-image target (a per-unit
            target calibrated by the caller, `tasks.train.person.calibrate_noise`); the record's `epsilon`
            stays the per-image ε of the accountant, which must still be within `target_epsilon`.
    Returns:
        The unwrapped model (plain state_dict keys), its `DpTrainingRecord`, the per-epoch curve.
    Raises:
        InvalidInputError: bad shapes, batch_size outside [1, N], target_delta >= 1/N, unknown
            grad_sample_mode, secure_mode without torchcsprng.
        PrivacyBudgetError: the accountant's final ε exceeds target_epsilon (beyond Opacus' search tolerance).
    """
    check_xy(x, y, name="train_dp")
    check_batch(len(x), batch_size, epochs)
    check_delta(target_delta, len(x))
    if grad_sample_mode not in GRAD_SAMPLE_MODES:
        raise InvalidInputError(
            f"grad_sample_mode {grad_sample_mode!r} is not one of {list(GRAD_SAMPLE_MODES)}"
        )
    val = _val_pair(x_val, y_val)
    model = build_model(
        model_name, num_classes=num_classes_of(y, num_classes), seed=seed, in_shape=_in_shape(x)
    ).to(device)
    optimizer = torch.optim.SGD(model.parameters(), lr=lr, momentum=momentum)
    loader = seeded_loader(x, y, batch_size=batch_size, seed=seed, shuffle=False)
    engine = privacy_engine(accountant, secure_mode=secure_mode)
    sampling, noise_gen, rng = dp_generators(noise_seed, device)
    if not secure_mode:  # Opacus refuses a noise generator in secure mode: its CSPRNG does both
        secret_noise(engine, sampling)
    dp_model, dp_opt, criterion, dp_loader = make_private(
        engine, model, optimizer, loader, target_epsilon=target_epsilon, target_delta=target_delta,
        epochs=epochs, max_grad_norm=max_grad_norm, noise_generator=None if secure_mode else noise_gen,
        grad_sample_mode=grad_sample_mode, criterion=nn.CrossEntropyLoss(), noise_multiplier=noise_multiplier,
    )  # fmt: skip
    dp_opt.secure_mode = True  # the 2n-draw Gaussian of Opacus' secure mode, from our generator
    curve = dp_epochs(engine, model, dp_model, dp_opt, criterion, dp_loader, epochs=epochs,
                      physical_batch_size=physical_batch_size, device=device, target_delta=target_delta,
                      val=val, on_epoch=on_epoch)  # fmt: skip
    notes = ((GDP_WARNING,) if accountant == "gdp" else ()) + ((SEEDED_WARNING,) if rng == "seeded" else ())
    record = build_record(engine, dp_opt, n_train=len(x), batch_size=batch_size, epochs=epochs,
                          target_epsilon=target_epsilon, target_delta=target_delta,
                          grad_sample_mode=grad_sample_mode, secure_mode=secure_mode, warnings=notes,
                          rng="csprng" if secure_mode else rng)  # fmt: skip
    check_target_epsilon(record)
    return TrainResult(model=dp_model.to_standard_module(), record=record, curve=tuple(curve))


def dp_epochs(engine: PrivacyEngine, model: nn.Module, dp_model: nn.Module, dp_opt: Any, criterion: Any,
              dp_loader: Any, *, epochs: int, physical_batch_size: int, device: str, target_delta: float,
              val: tuple[torch.Tensor, torch.Tensor] | None,
              on_epoch: Callable[[EpochStats], None] | None = None) -> list[EpochStats]:  # fmt: skip
    """The DP-SGD epochs of one process (alone or one DPDDP rank): logical batches split by
    BatchMemoryManager, and per epoch the loss, validation accuracy (nan without `val`) and ε so far
    (each passed to `on_epoch` as soon as it is done: a progress bar)."""
    curve = []
    for epoch in range(1, epochs + 1):
        t0 = time.perf_counter()
        memory = BatchMemoryManager(
            data_loader=dp_loader, max_physical_batch_size=physical_batch_size, optimizer=dp_opt
        )
        with memory as mem_loader, warnings.catch_warnings():
            # Opacus' hooks warn on the first layer, whose input needs no grad: harmless.
            warnings.filterwarnings("ignore", message=".*Full backward hook is firing.*")
            loss = _run_epoch(dp_model, dp_opt, mem_loader, device, criterion)
        curve.append(_epoch_stats(model, epoch, loss, val, _epsilon(engine, target_delta), t0))
        if on_epoch is not None:
            on_epoch(curve[-1])
    return curve


def _epsilon(engine: PrivacyEngine, delta: float) -> float:
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*GDP accounting is experimental.*")
        return float(engine.get_epsilon(delta))


def build_record(engine: PrivacyEngine, optimizer: Any, **kw: Any) -> DpTrainingRecord:
    """The `DpTrainingRecord` of a finished run: the mechanism from `engine`'s accountant and `optimizer`.

    Args:
        **kw: the record's remaining fields (n_train, batch_size, epochs, target_epsilon, target_delta, ...).
    """
    history = tuple((float(n), float(q), int(s)) for n, q, s in engine.accountant.history)
    return DpTrainingRecord(
        noise_multiplier=float(optimizer.noise_multiplier),
        sample_rate=history[0][1] if history else 0.0,
        steps=sum(s for _, _, s in history),
        accountant=engine.accountant.mechanism(),
        epsilon=_epsilon(engine, kw["target_delta"]),
        max_grad_norm=float(optimizer.max_grad_norm),
        poisson_sampling=True,
        history=history,
        **kw,
    )


def check_target_epsilon(record: DpTrainingRecord) -> None:
    """Fail when the accountant's final ε exceeds the target by more than `EPSILON_TOLERANCE`.

    Raises:
        PrivacyBudgetError: naming the accountant, ε, the target, δ and the steps.
    """
    if record.epsilon > record.target_epsilon + EPSILON_TOLERANCE:
        raise PrivacyBudgetError(
            f"train_dp: accountant {record.accountant} reports epsilon {record.epsilon:.4f} > target "
            f"{record.target_epsilon} at delta {record.target_delta} after {record.steps} steps"
        )


def train_nonprivate(
    x: torch.Tensor,
    y: torch.Tensor,
    *,
    model_name: str,
    epochs: int,
    batch_size: int,
    lr: float,
    momentum: float,
    seed: int,
    device: str = "cpu",
    num_classes: int | None = None,
    x_val: torch.Tensor | None = None,
    y_val: torch.Tensor | None = None,
    on_epoch: Callable[[EpochStats], None] | None = None,
) -> TrainResult:
    """Train the same architecture with the same schedule (epochs, batch size) and plain SGD.

    The baseline against which DP's utility cost and the audit's leakage are measured.
    Args and shapes as `train_dp`, without the DP params. Returns a `TrainResult` with `record=None`
    and ε = nan in the curve.
    """
    check_xy(x, y, name="train_nonprivate")
    check_batch(len(x), batch_size, epochs)
    val = _val_pair(x_val, y_val)
    model = build_model(
        model_name, num_classes=num_classes_of(y, num_classes), seed=seed, in_shape=_in_shape(x)
    ).to(device)
    optimizer = torch.optim.SGD(model.parameters(), lr=lr, momentum=momentum)
    loader = seeded_loader(x, y, batch_size=batch_size, seed=seed, shuffle=True)
    curve = []
    for epoch in range(1, epochs + 1):
        t0 = time.perf_counter()
        loss = _run_epoch(model, optimizer, loader, device)
        curve.append(_epoch_stats(model, epoch, loss, val, float("nan"), t0))
        if on_epoch is not None:
            on_epoch(curve[-1])
    return TrainResult(model=model, record=None, curve=tuple(curve))


def predict_logits(
    model: nn.Module,
    x: torch.Tensor,
    *,
    device: str | torch.device | None = None,
    batch_size: int = _EVAL_BATCH,
) -> torch.Tensor:
    """Logits of `model` in eval mode, without gradients, on `x` fed in batches of `batch_size`.

    Args:
        model: left in eval mode (and on `device`, when given).
        x: (N, C, s, s) inputs.
        device: where to evaluate (the model is moved there); None: where the model's parameters are.
    Returns:
        (N, num_classes) float32 on the CPU.
    """
    if device is None:
        device = next(model.parameters()).device
    else:
        model = model.to(device)
    model.eval()
    with torch.no_grad():
        return torch.cat(
            [model(x[i : i + batch_size].to(device)).cpu() for i in range(0, len(x), batch_size)]
        )


def evaluate(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    """Top-1 accuracy of `model` on (N, C, s, s) float32 `x` with (N,) int64 labels `y`."""
    check_xy(x, y, name="evaluate")
    return float((predict_logits(model, x).argmax(1) == y).float().mean())


def predict_losses(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> NDArray[np.float64]:
    """Per-sample cross-entropy losses (N,) float64 of `model` on `x` (N, C, s, s), labels `y` (N,)."""
    check_xy(x, y, name="predict_losses")
    losses = nn.functional.cross_entropy(predict_logits(model, x), y, reduction="none")
    return losses.numpy().astype(np.float64)


def recompute_epsilon(record: DpTrainingRecord) -> float:
    """Re-price a record with a fresh Opacus accountant of the recorded type, at the recorded δ.

    Independent of the training code path: only the record's accountant name, history and δ are used.
    Raises:
        InvalidInputError: unknown accountant or empty history.
    """
    if not record.history:
        raise InvalidInputError("recompute_epsilon: record.history is empty")
    try:
        acc = create_accountant(mechanism=record.accountant)
    except ValueError as err:
        raise InvalidInputError(f"recompute_epsilon: unknown accountant {record.accountant!r}") from err
    acc.history = [tuple(h) for h in record.history]
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*GDP accounting is experimental.*")
        return float(acc.get_epsilon(delta=record.target_delta))
