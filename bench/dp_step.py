"""DP-SGD step time vs a non-private step, same model, same batch, one process, side by side.

Prints seconds per step and the DP / non-private ratio for each Opacus grad_sample_mode (`hooks`,
`functorch`, `ghost` clipping) on the default model `digit_hog` (fixed HOG features + linear head,
placard crops) and on `gn_cnn` (whole scenes); CPU always, CUDA as well where present.
"""

from __future__ import annotations

import time
import warnings

import torch
from opacus import PrivacyEngine
from torch.utils.data import DataLoader, TensorDataset

from tasks.train.models import INPUT_CHANNELS, build_model

# model -> (batch, input side): each model at its pipeline shape (digit_hog: the default batch of 256).
SHAPES = {"digit_hog": (256, 28), "gn_cnn": (128, 64)}
MODES = ("hooks", "functorch", "ghost")
STEPS, WARMUP = 8, 2
warnings.filterwarnings("ignore", message="Full backward hook")


def _step_time(model: torch.nn.Module, opt: torch.optim.Optimizer, loss_fn: torch.nn.Module,
               x: torch.Tensor, y: torch.Tensor) -> float:  # fmt: skip
    times = []
    for i in range(WARMUP + STEPS):
        t0 = time.perf_counter()
        opt.zero_grad(set_to_none=True)
        loss_fn(model(x), y).backward()
        opt.step()
        if x.is_cuda:
            torch.cuda.synchronize()
        if i >= WARMUP:
            times.append(time.perf_counter() - t0)
    return sorted(times)[len(times) // 2]  # median


def _private(name: str, mode: str, x: torch.Tensor, y: torch.Tensor) -> float:
    model = build_model(name, num_classes=10, seed=0).to(x.device)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    loader = DataLoader(TensorDataset(x, y), batch_size=len(x))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        out = PrivacyEngine().make_private(module=model, optimizer=opt, data_loader=loader,
                                           criterion=torch.nn.CrossEntropyLoss(), noise_multiplier=1.0,
                                           max_grad_norm=1.0, grad_sample_mode=mode, poisson_sampling=False)  # fmt: skip
    # ghost clipping returns (module, optimizer, criterion, loader): its criterion runs both backward passes
    model, opt, loss_fn = (
        (out[0], out[1], out[2]) if mode == "ghost" else (out[0], out[1], torch.nn.CrossEntropyLoss())
    )
    return _step_time(model, opt, loss_fn, x, y)


def _inputs(name: str, device: str) -> tuple[torch.Tensor, torch.Tensor]:
    batch, side = SHAPES[name]
    g = torch.Generator().manual_seed(0)
    x = torch.randn(batch, INPUT_CHANNELS[name], side, side, generator=g)
    return x.to(device), torch.randint(0, 10, (batch,), generator=g).to(device)


def main() -> None:
    devices = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    print(f"DP-SGD step time vs non-private, median of {STEPS} steps, threads {torch.get_num_threads()}")
    print(
        f"{'device':8} {'model':10} {'batch':>5} {'side':>4} {'mode':12} {'s/step':>9} {'ratio vs non-private':>22}"
    )
    for device in devices:
        for name, (batch, side) in SHAPES.items():
            x, y = _inputs(name, device)
            base_model = build_model(name, num_classes=10, seed=0).to(device)
            opt = torch.optim.SGD(base_model.parameters(), lr=0.1)
            base = _step_time(base_model, opt, torch.nn.CrossEntropyLoss(), x, y)
            row = f"{device:8} {name:10} {batch:5d} {side:4d}"
            print(f"{row} {'non-private':12} {base:9.4f} {1.0:22.2f}")
            for mode in MODES:
                t = _private(name, mode, x, y)
                print(f"{row} {mode:12} {t:9.4f} {t / base:22.2f}")


if __name__ == "__main__":
    main()
