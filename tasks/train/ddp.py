"""Multi-process DP-SGD with Opacus' distributed support (`DPDDP`): gloo on CPU, NCCL on GPUs.

Every rank builds the same seeded model, wraps it in `DifferentiallyPrivateDistributedDataParallel`
and hands Opacus a loader over the *whole* training set with the *global* batch size. Opacus then
(1) derives the sample rate q = 1 / ceil(N / batch_size) exactly as in one process, (2) replaces the
sampler with `DistributedUniformWithReplacementSampler`: each rank Poisson-samples its 1/W slice of
the data at rate q, so the union of the local batches is one Poisson sample of the whole set, and
(3) has rank 0 alone add the Gaussian noise to the all-reduced clipped-gradient sum. The mechanism is
the same (σ, q, steps) as the one-process run, so the accountant gives the same ε.
"""

from __future__ import annotations

import hashlib
import multiprocessing as mp
import time
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist
from opacus.distributed import DifferentiallyPrivateDistributedDataParallel as DPDDP
from torch import nn

from tasks.errors import InvalidInputError
from tasks.train.dp import (
    GDP_WARNING,
    SEEDED_WARNING,
    DpTrainingRecord,
    EpochStats,
    build_record,
    check_batch,
    check_delta,
    check_target_epsilon,
    check_xy,
    dp_epochs,
    dp_generators,
    make_private,
    num_classes_of,
    privacy_engine,
    secret_noise,
    seeded_loader,
)
from tasks.train.models import build_model

BACKENDS = ("gloo", "nccl")


@dataclass(frozen=True)
class DdpResult:
    """Rank 0's trained plain module and DP record, the curve, and every rank's final-weights digest.

    `weight_digests` are equal when the replicas stayed in sync (DPDDP all-reduces every step).
    """

    model: nn.Module
    record: DpTrainingRecord
    curve: tuple[EpochStats, ...]
    world_size: int
    backend: str
    weight_digests: tuple[str, ...]

    def as_metrics(self) -> dict[str, float]:
        """The record's "train/<field>" metrics plus "train/world_size"."""
        return self.record.as_metrics() | {"train/world_size": float(self.world_size)}


def weights_digest(model: nn.Module) -> str:
    """sha256 over the model's state dict tensors (name order), to compare replicas."""
    h = hashlib.sha256()
    for name, t in sorted(model.state_dict().items()):
        h.update(name.encode())
        h.update(t.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()


def train_dp_ddp(
    x: torch.Tensor,
    y: torch.Tensor,
    *,
    world_size: int,
    port: int,
    backend: str = "gloo",
    threads_per_rank: int = 1,
    timeout_s: float = 600.0,
    **train_kw: Any,
) -> DdpResult:
    """Train with DP-SGD on `world_size` processes (one rank each) and return rank 0's result.

    Args:
        x: (N, C, s, s) float32 training inputs; N is the DP unit count (shared by every rank).
        y: (N,) int64 labels.
        world_size: processes (GPUs with NCCL: rank r uses cuda:r).
        port: free TCP port on 127.0.0.1 for the process-group rendezvous.
        backend: "gloo" (CPU) or "nccl" (one GPU per rank).
        threads_per_rank: torch intra-op threads in each process.
        timeout_s: wait at most this long for the ranks.
        **train_kw: `train_dp`'s keyword options: model_name, epochs, batch_size (the *global*
            expected logical batch), lr, momentum, target_epsilon, target_delta, max_grad_norm,
            accountant, seed, physical_batch_size (per rank), grad_sample_mode.
    Raises:
        InvalidInputError: bad shapes, backend, world size, batch size or δ; a rank failed.
        PrivacyBudgetError: the final ε exceeds target_epsilon.
    """
    _check_args(x, y, world_size=world_size, backend=backend, kw=train_kw)
    ctx = mp.get_context("spawn")
    queue = ctx.SimpleQueue()
    init = f"tcp://127.0.0.1:{port}"
    procs = [ctx.Process(target=_rank_main, args=(r, world_size, backend, init, threads_per_rank, x, y, train_kw,
                                                  queue), daemon=True) for r in range(world_size)]  # fmt: skip
    for p in procs:
        p.start()
    out = _collect(queue, procs, timeout_s=timeout_s)
    digests = tuple(out[r]["digest"] for r in range(world_size))
    model = build_model(
        train_kw["model_name"],
        num_classes=num_classes_of(y, train_kw.get("num_classes")),
        seed=train_kw["seed"],
        in_shape=(int(x.shape[1]), int(x.shape[2]), int(x.shape[3])),
    )
    model.load_state_dict({k: torch.from_numpy(v) for k, v in out[0]["state"].items()})
    return DdpResult(model=model, record=DpTrainingRecord.from_dict(out[0]["record"]),
                     curve=tuple(EpochStats(**c) for c in out[0]["curve"]), world_size=world_size,
                     backend=backend, weight_digests=digests)  # fmt: skip


def _check_args(
    x: torch.Tensor, y: torch.Tensor, *, world_size: int, backend: str, kw: dict[str, Any]
) -> None:
    check_xy(x, y, name="train_dp_ddp")
    if backend not in BACKENDS:
        raise InvalidInputError(f"train_dp_ddp: backend {backend!r} is not one of {list(BACKENDS)}")
    if world_size < 1 or (backend == "nccl" and world_size > torch.cuda.device_count()):
        raise InvalidInputError(
            f"train_dp_ddp: world_size {world_size} needs 1 <= world_size (<= GPUs with nccl)"
        )
    check_batch(len(x), kw["batch_size"], kw["epochs"])
    if kw["batch_size"] < world_size:
        raise InvalidInputError(f"train_dp_ddp: batch_size {kw['batch_size']} < world_size {world_size}")
    check_delta(kw["target_delta"], len(x))


def _collect(queue: Any, procs: list[Any], *, timeout_s: float) -> dict[int, dict[str, Any]]:
    """One message per rank: {"rank", "digest", ...} or {"rank", "error"}; then join every process."""
    out: dict[int, dict[str, Any]] = {}
    deadline = time.monotonic() + timeout_s
    while len(out) < len(procs):
        if not queue.empty():
            msg = queue.get()
            out[msg["rank"]] = msg
            if "error" in msg:  # the other ranks would wait for it in all-reduce forever
                break
        elif time.monotonic() > deadline or any(p.exitcode not in (None, 0) for p in procs):
            break
        else:
            time.sleep(0.05)
    for p in procs:
        p.join(timeout=30 if len(out) == len(procs) else 1)
        if p.is_alive():
            p.terminate()
    errors = [f"rank {r}: {m['error']}" for r, m in sorted(out.items()) if "error" in m]
    missing = sorted(set(range(len(procs))) - set(out))
    if errors or missing:
        raise InvalidInputError(
            f"train_dp_ddp failed: {'; '.join(errors)}"
            + (f" (no result from ranks {missing}: crashed or timed out)" if missing else "")
        )
    return out


def _rank_main(rank: int, world_size: int, backend: str, init: str, threads: int, x: torch.Tensor,
               y: torch.Tensor, kw: dict[str, Any], queue: Any) -> None:  # fmt: skip
    """One rank: join the group, train, report (rank 0: weights, record, curve; others: digest only)."""
    torch.set_num_threads(threads)
    try:
        dist.init_process_group(backend, init_method=init, rank=rank, world_size=world_size)
        try:
            model, record, curve = _train_rank(rank, x, y, device=f"cuda:{rank}" if backend == "nccl" else "cpu",
                                               **kw)  # fmt: skip
        finally:
            dist.destroy_process_group()
    except Exception as err:  # noqa: BLE001 - reported to the parent, which raises a typed error
        queue.put({"rank": rank, "error": f"{type(err).__name__}: {err}"})
        return
    msg: dict[str, Any] = {"rank": rank, "digest": weights_digest(model)}
    if rank == 0:
        # numpy, pickled by value: a torch tensor would travel as a shared-memory fd that dies with this process
        state = {k: v.detach().cpu().numpy() for k, v in model.state_dict().items()}
        msg |= {"state": state, "record": record.as_dict(), "curve": [c.__dict__ for c in curve]}
    queue.put(msg)


def _train_rank(rank: int, x: torch.Tensor, y: torch.Tensor, *, model_name: str, epochs: int, batch_size: int,
                lr: float, momentum: float, target_epsilon: float, target_delta: float, max_grad_norm: float,
                accountant: str, seed: int, device: str, physical_batch_size: int = 128,
                grad_sample_mode: str = "hooks", num_classes: int | None = None, noise_seed: int | None = None,
                ) -> tuple[nn.Module, DpTrainingRecord, list[EpochStats]]:  # fmt: skip
    """`train_dp`'s loop on one rank (same model seed everywhere; own sampling seed; noise on rank 0)."""
    in_shape = (int(x.shape[1]), int(x.shape[2]), int(x.shape[3]))
    model = DPDDP(
        build_model(model_name, num_classes=num_classes_of(y, num_classes), seed=seed, in_shape=in_shape).to(
            device
        )
    )
    optimizer = torch.optim.SGD(model.parameters(), lr=lr, momentum=momentum)
    # The whole set and the global batch: Opacus derives q = 1/len(loader) and shards the sampling itself.
    loader = seeded_loader(x, y, batch_size=batch_size, seed=seed + 7919 * rank, shuffle=False)
    engine = privacy_engine(accountant, secure_mode=False)
    # each rank's sampling and noise are its own secret draws (a seeded run offsets the seed by rank)
    sampling, noise, rng = dp_generators(None if noise_seed is None else noise_seed + 7919 * rank, device)
    secret_noise(engine, sampling)
    dp_model, dp_opt, criterion, dp_loader = make_private(
        engine, model, optimizer, loader, target_epsilon=target_epsilon, target_delta=target_delta,
        epochs=epochs, max_grad_norm=max_grad_norm, noise_generator=noise, grad_sample_mode=grad_sample_mode,
        criterion=nn.CrossEntropyLoss(),
    )  # fmt: skip
    dp_opt.secure_mode = True  # the 2n-draw Gaussian (see train_dp)
    curve = dp_epochs(engine, model, dp_model, dp_opt, criterion, dp_loader, epochs=epochs,
                      physical_batch_size=physical_batch_size, device=device, target_delta=target_delta,
                      val=None)  # fmt: skip
    record = build_record(engine, dp_opt, n_train=len(x), batch_size=batch_size, epochs=epochs,
                          target_epsilon=target_epsilon, target_delta=target_delta,
                          grad_sample_mode=grad_sample_mode, secure_mode=False,
                          warnings=((GDP_WARNING,) if accountant == "gdp" else ())
                          + ((SEEDED_WARNING,) if rng == "seeded" else ()), rng=rng)  # fmt: skip
    check_target_epsilon(record)
    plain = dp_model.to_standard_module() if hasattr(dp_model, "to_standard_module") else dp_model._module
    return plain.module if isinstance(plain, DPDDP) else plain, record, curve
