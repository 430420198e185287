"""DP-SGD step time vs a non-private step, same model, same batch, one process, side by side.

Prints seconds per step and the DP / non-private ratio for Opacus' grad_sample_mode `hooks` and
`functorch` (CPU always; CUDA as well where present).
"""

from __future__ import annotations

import time
import warnings

import torch
from opacus import PrivacyEngine
from torch.utils.data import DataLoader, TensorDataset

from tasks.train.models import build_model

BATCH, SIZE, STEPS, WARMUP = 128, 64, 8, 2
warnings.filterwarnings("ignore", message="Full backward hook")


def _step_time(model: torch.nn.Module, opt: torch.optim.Optimizer, x: torch.Tensor, y: torch.Tensor) -> float:
    loss_fn = torch.nn.CrossEntropyLoss()
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


def _private(mode: str, device: str, x: torch.Tensor, y: torch.Tensor) -> float:
    model = build_model("gn_cnn", num_classes=10, seed=0).to(device)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    loader = DataLoader(TensorDataset(x, y), batch_size=BATCH)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model, opt, _ = PrivacyEngine().make_private(module=model, optimizer=opt, data_loader=loader,
                                                     noise_multiplier=1.0, max_grad_norm=1.0,
                                                     grad_sample_mode=mode, poisson_sampling=False)
    return _step_time(model, opt, x, y)


def main() -> None:
    devices = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    print(f"DP-SGD step time, gn_cnn, batch {BATCH}, {SIZE}x{SIZE}, median of {STEPS} steps")
    print(f"{'device':8} {'mode':12} {'s/step':>9} {'ratio vs non-private':>22}")
    for device in devices:
        g = torch.Generator().manual_seed(0)
        x = torch.randn(BATCH, 3, SIZE, SIZE, generator=g).to(device)
        y = torch.randint(0, 10, (BATCH,), generator=g).to(device)
        base_model = build_model("gn_cnn", num_classes=10, seed=0).to(device)
        base = _step_time(base_model, torch.optim.SGD(base_model.parameters(), lr=0.1), x, y)
        print(f"{device:8} {'non-private':12} {base:9.4f} {1.0:22.2f}")
        for mode in ("hooks", "functorch"):
            t = _private(mode, device, x, y)
            print(f"{device:8} {mode:12} {t:9.4f} {t / base:22.2f}")


if __name__ == "__main__":
    main()
