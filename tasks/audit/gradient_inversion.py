"""Gradient inversion in the federated setting: recover a client's images from one shared gradient.

A client computes the mean cross-entropy gradient of the task model on one batch and sends it;
the server (the adversary) knows the model weights and optimises dummy images until their gradient
matches. Attacks (registry `INVERSIONS`):

- "dlg": Deep Leakage from Gradients (Zhu et al. 2019): L-BFGS on images *and* soft labels, L2
  gradient distance.
- "idlg": improved DLG (Zhao et al. 2020): labels read off the last layer's bias gradient (the true
  classes are the negative entries), then L-BFGS on the images only.
- "inverting_gradients": Geiping et al. 2020: cosine gradient distance + total variation, Adam on
  signed gradients, images boxed to the input range, labels as iDLG.

Defences applied by the client before sending (registry `DEFENCES`): DP-SGD's per-sample clipping
plus Gaussian noise at noise multiplier σ (Abadi et al. 2016), magnitude pruning of the gradient
(Zhu et al. 2019's defence), fp16 and int8 quantisation.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from numpy.typing import NDArray
from scipy.optimize import linear_sum_assignment
from skimage.metrics import peak_signal_noise_ratio, structural_similarity
from torch import nn
from torch.func import functional_call, grad, vmap

from tasks.audit.priors import total_variation
from tasks.errors import InvalidInputError
from tasks.train.models import MODELS, DigitLinear, build_model

Grads = list[torch.Tensor]


def _params(model: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach() for k, v in model.named_parameters() if v.requires_grad}


def batch_gradient(
    model: nn.Module, x: torch.Tensor, y: torch.Tensor, *, create_graph: bool = False
) -> Grads:
    """Mean cross-entropy gradient of the trainable parameters on one batch (what a client sends).

    Args:
        model: the task model (its weights are the server's current global model).
        x: (B, C, s, s) float32 images; y: (B,) int64 labels, or (B, num_classes) soft labels.
        create_graph: keep the graph (the attacks differentiate the gradient w.r.t. `x`).
    """
    logits = model(x)
    if y.ndim == 2:  # soft labels (DLG optimises them)
        loss = torch.mean(torch.sum(-torch.softmax(y, 1) * torch.log_softmax(logits, 1), 1))
    else:
        loss = nn.functional.cross_entropy(logits, y)
    params = [p for p in model.parameters() if p.requires_grad]
    return list(torch.autograd.grad(loss, params, create_graph=create_graph))


def per_sample_gradients(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> Grads:
    """Per-sample gradients (B, *param.shape) of the cross-entropy, one tensor per trainable parameter."""
    params = _params(model)

    def loss_one(p: dict[str, torch.Tensor], xi: torch.Tensor, yi: torch.Tensor) -> torch.Tensor:
        out = functional_call(model, p, (xi[None],))
        return nn.functional.cross_entropy(out, yi[None])

    per = vmap(grad(loss_one), in_dims=(None, 0, 0))(params, x, y)
    return [per[k] for k in params]


def pixel_linear(*, num_classes: int, seed: int, input_size: int = 28, in_channels: int = 1) -> nn.Module:
    """Logistic regression on every pixel of the (C, s, s) input (`DigitLinear` at grid = s), seeded init.

    The textbook federated client model whose gradient contains its input (Phong et al. 2017).
    """
    model = DigitLinear(num_classes=num_classes, grid=input_size, in_channels=in_channels)
    gen = torch.Generator().manual_seed(seed)
    nn.init.kaiming_uniform_(model.head.weight, nonlinearity="relu", generator=gen)
    nn.init.zeros_(model.head.bias)
    return model


def gi_model(
    name: str, *, num_classes: int, seed: int, input_size: int, in_shape: tuple[int, int, int] | None = None
) -> nn.Module:
    """The federated model whose gradient is attacked: a `MODELS` entry, a user's "package.module:factory"
    or "pixel_linear", fresh seeded weights (the global model at round 0; the head is not zeroed so every
    class's logit depends on the input).

    Args:
        in_shape: (C, s, s) of one input; pixel_linear takes its channels, a user model needs it.
    Raises:
        InvalidInputError: unknown name.
    """
    if name == "pixel_linear":
        channels = in_shape[0] if in_shape is not None else 1
        return pixel_linear(num_classes=num_classes, seed=seed, input_size=input_size, in_channels=channels)
    if name not in MODELS and ":" not in name:
        raise InvalidInputError(
            f"gradient inversion model {name!r} is not one of {sorted(MODELS) + ['pixel_linear']}"
        )
    return build_model(name, num_classes=num_classes, seed=seed, zero_head=False, in_shape=in_shape)


# --- defences -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Defence:
    """A client-side defence: `kind` (key of `DEFENCES`) at `level` (σ, pruned share; unused otherwise).

    `clip` is DP-SGD's per-sample clipping norm (used by "dp" only).
    """

    kind: str
    level: float = 0.0
    clip: float = 1.0

    @property
    def label(self) -> str:
        """Short name for tables and metric keys, e.g. "dp_sigma_2.25", "prune_95", "fp16"."""
        if self.kind == "dp":
            return f"dp_sigma_{self.level:g}"
        if self.kind == "prune":
            return f"prune_{round(self.level * 100)}"
        return self.kind


DefenceFn = Callable[[nn.Module, torch.Tensor, torch.Tensor, Defence, torch.Generator], Grads]


def _none(model: nn.Module, x: torch.Tensor, y: torch.Tensor, d: Defence, gen: torch.Generator) -> Grads:
    return [g.detach() for g in batch_gradient(model, x, y)]


def _dp(model: nn.Module, x: torch.Tensor, y: torch.Tensor, d: Defence, gen: torch.Generator) -> Grads:
    # DP-SGD (Abadi et al. 2016): clip each sample's gradient to norm C, sum, add N(0, σ²C²), divide by B.
    per = per_sample_gradients(model, x, y)
    norms = torch.sqrt(torch.stack([g.flatten(1).pow(2).sum(1) for g in per]).sum(0))
    scale = torch.clamp(d.clip / (norms + 1e-12), max=1.0)
    out = []
    for g in per:
        clipped = (g * scale.view(-1, *([1] * (g.ndim - 1)))).sum(0)
        noise = torch.randn(clipped.shape, generator=gen, dtype=clipped.dtype) * d.level * d.clip
        out.append((clipped + noise.to(clipped.device)) / len(x))
    return out


def _prune(model: nn.Module, x: torch.Tensor, y: torch.Tensor, d: Defence, gen: torch.Generator) -> Grads:
    # Zero the `level` share of entries with the smallest magnitude, per tensor (Zhu et al. 2019, §5).
    out = []
    for g in _none(model, x, y, d, gen):
        k = int(math.floor(d.level * g.numel()))
        if k == 0:
            out.append(g)
            continue
        cut = g.abs().flatten().kthvalue(k).values
        out.append(torch.where(g.abs() > cut, g, torch.zeros_like(g)))
    return out


def _fp16(model: nn.Module, x: torch.Tensor, y: torch.Tensor, d: Defence, gen: torch.Generator) -> Grads:
    return [g.half().float() for g in _none(model, x, y, d, gen)]


def _int8(model: nn.Module, x: torch.Tensor, y: torch.Tensor, d: Defence, gen: torch.Generator) -> Grads:
    # Symmetric per-tensor quantisation to the 255 levels of int8.
    out = []
    for g in _none(model, x, y, d, gen):
        step = g.abs().max().clamp(min=1e-30) / 127
        out.append(torch.round(g / step).clamp(-127, 127) * step)
    return out


DEFENCES: dict[str, DefenceFn] = {"none": _none, "dp": _dp, "prune": _prune, "fp16": _fp16, "int8": _int8}


def defended_gradient(
    model: nn.Module, x: torch.Tensor, y: torch.Tensor, defence: Defence, *, seed: int
) -> Grads:
    """The gradient a client sends for batch (x, y) under `defence` (noise drawn from `seed`).

    Raises:
        InvalidInputError: unknown defence kind, or a level outside its range.
    """
    if defence.kind not in DEFENCES:
        raise InvalidInputError(f"defence {defence.kind!r} is not one of {sorted(DEFENCES)}")
    if defence.kind == "prune" and not 0 <= defence.level < 1:
        raise InvalidInputError(f"defence prune: level must be in [0, 1), got {defence.level}")
    if defence.kind == "dp" and defence.level < 0:
        raise InvalidInputError(f"defence dp: sigma must be >= 0, got {defence.level}")
    return DEFENCES[defence.kind](model, x, y, defence, torch.Generator().manual_seed(seed))


# --- attacks ----------------------------------------------------------------------------------


def infer_labels(model: nn.Module, grads: Sequence[torch.Tensor], *, batch_size: int) -> torch.Tensor:
    """iDLG label restoration (Zhao et al. 2020): the most negative entries of the output bias gradient.

    For cross-entropy, d loss / d b_c = mean_i (p_ic - [y_i = c]) is negative only for classes present
    in the batch (exactly one class for a single image). Assumes distinct labels when batch_size > 1.

    Returns:
        (batch_size,) int64 labels, sorted ascending.
    """
    names = [k for k, v in model.named_parameters() if v.requires_grad]
    if not names or not names[-1].endswith("bias"):
        raise InvalidInputError("infer_labels: the model's last trainable parameter must be an output bias")
    bias_grad = grads[-1].detach().flatten().cpu()
    return torch.sort(torch.argsort(bias_grad)[:batch_size]).values


def _l2(a: Grads, b: Sequence[torch.Tensor]) -> torch.Tensor:
    return sum(((g - t) ** 2).sum() for g, t in zip(a, b, strict=True))  # type: ignore[return-value]


def _cosine(a: Grads, b: Sequence[torch.Tensor]) -> torch.Tensor:
    dot = torch.stack([(g * t).sum() for g, t in zip(a, b, strict=True)]).sum()
    na = torch.sqrt(torch.stack([g.pow(2).sum() for g in a]).sum())
    nb = torch.sqrt(torch.stack([t.pow(2).sum() for t in b]).sum())
    return 1 - dot / (na * nb + 1e-12)


@dataclass(frozen=True)
class InversionConfig:
    """Optimiser settings: `steps` iterations (L-BFGS: outer steps), `lr`, `tv` weight (IG only),
    the input box [`low`, `high`] and the `seed` of the dummy initialisation."""

    steps: int = 300
    lr: float = 0.1
    tv: float = 1e-4
    low: float = 0.0
    high: float = 1.0
    seed: int = 0


def _dummy(shape: tuple[int, ...], cfg: InversionConfig, device: torch.device) -> torch.Tensor:
    gen = torch.Generator().manual_seed(cfg.seed)
    x = cfg.low + (cfg.high - cfg.low) * torch.rand(shape, generator=gen)
    return x.to(device).requires_grad_(True)


def _lbfgs(
    model: nn.Module,
    target: Sequence[torch.Tensor],
    xs: list[torch.Tensor],
    y_of: Callable[[], torch.Tensor],
    cfg: InversionConfig,
) -> None:
    opt = torch.optim.LBFGS(
        xs,
        lr=1.0,
        max_iter=20,
        history_size=100,
        line_search_fn="strong_wolfe",
        tolerance_grad=1e-12,
        tolerance_change=1e-16,
    )
    scale = 1.0 / (float(sum(t.pow(2).sum() for t in target)) + 1e-30)  # relative distance: scale-free stop

    def closure() -> torch.Tensor:
        opt.zero_grad()
        loss = scale * _l2(batch_gradient(model, xs[0], y_of(), create_graph=True), target)
        loss.backward()  # type: ignore[no-untyped-call]
        return loss

    for _ in range(max(1, cfg.steps // 20)):
        loss = opt.step(closure)  # type: ignore[no-untyped-call]
        if not torch.isfinite(loss) or float(loss.detach()) < 1e-14:
            break


def _dlg(
    model: nn.Module, target: Sequence[torch.Tensor], shape: tuple[int, ...], cfg: InversionConfig
) -> torch.Tensor:
    device = next(model.parameters()).device
    x = _dummy(shape, cfg, device)
    n_cls = target[-1].numel()
    gen = torch.Generator().manual_seed(cfg.seed + 1)
    soft = torch.randn((shape[0], n_cls), generator=gen).to(device).requires_grad_(True)
    _lbfgs(model, target, [x, soft], lambda: soft, cfg)
    return x.detach()


def _idlg(
    model: nn.Module, target: Sequence[torch.Tensor], shape: tuple[int, ...], cfg: InversionConfig
) -> torch.Tensor:
    device = next(model.parameters()).device
    labels = infer_labels(model, target, batch_size=shape[0]).to(device)
    x = _dummy(shape, cfg, device)
    _lbfgs(model, target, [x], lambda: labels, cfg)
    return x.detach()


def _inverting_gradients(
    model: nn.Module, target: Sequence[torch.Tensor], shape: tuple[int, ...], cfg: InversionConfig
) -> torch.Tensor:
    device = next(model.parameters()).device
    labels = infer_labels(model, target, batch_size=shape[0]).to(device)
    x = _dummy(shape, cfg, device)
    opt = torch.optim.Adam([x], lr=cfg.lr)
    sched = torch.optim.lr_scheduler.MultiStepLR(
        opt, [int(cfg.steps * f) for f in (0.375, 0.625, 0.875)], 0.1
    )
    for _ in range(cfg.steps):
        opt.zero_grad()
        distance = _cosine(batch_gradient(model, x, labels, create_graph=True), target)
        loss = distance + cfg.tv * total_variation(x)
        loss.backward()  # type: ignore[no-untyped-call]
        assert x.grad is not None
        x.grad.sign_()  # signed gradients, as Geiping et al.
        opt.step()
        sched.step()
        with torch.no_grad():
            x.clamp_(cfg.low, cfg.high)
    return x.detach()


Inversion = Callable[[nn.Module, Sequence[torch.Tensor], tuple[int, ...], InversionConfig], torch.Tensor]
INVERSIONS: dict[str, Inversion] = {"dlg": _dlg, "idlg": _idlg, "inverting_gradients": _inverting_gradients}


def invert_gradient(
    model: nn.Module,
    target_grads: Sequence[torch.Tensor],
    *,
    method: str,
    shape: tuple[int, ...],
    config: InversionConfig | None = None,
) -> torch.Tensor:
    """Reconstruct a batch of inputs from its gradient with attack `method` (key of `INVERSIONS`).

    Args:
        model: the model the gradient was computed on (weights known to the server).
        target_grads: one tensor per trainable parameter, as `defended_gradient` returns.
        shape: (B, C, s, s) of the batch to reconstruct.
    Returns:
        (B, C, s, s) float32 reconstruction, clamped to the configured box.
    Raises:
        InvalidInputError: unknown method.
    """
    if method not in INVERSIONS:
        raise InvalidInputError(f"gradient inversion method {method!r} is not one of {sorted(INVERSIONS)}")
    cfg = config or InversionConfig()
    model.eval()
    target = [g.detach().to(next(model.parameters()).device) for g in target_grads]
    x = INVERSIONS[method](model, target, shape, cfg)
    return torch.nan_to_num(x, nan=cfg.low).clamp(cfg.low, cfg.high).cpu()


# --- scoring ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class ReconstructionScore:
    """Mean PSNR (dB) and SSIM of a batch's reconstructions against the true images (best matching)."""

    psnr: float
    ssim: float
    order: tuple[int, ...]  # order[i] = index of the reconstruction matched to true image i


def reconstruction_score(
    truth: NDArray[np.floating], recon: NDArray[np.floating], *, data_range: float = 1.0
) -> ReconstructionScore:
    """PSNR / SSIM between true and reconstructed images, pairing them by least total MSE
    (a batch gradient is invariant to the order of its samples).

    Args:
        truth, recon: (B, C, s, s) arrays in a range of width `data_range`.
    Raises:
        InvalidInputError: shapes differ.
    """
    t, r = np.asarray(truth, np.float64), np.asarray(recon, np.float64)
    if t.shape != r.shape or t.ndim != 4:
        raise InvalidInputError(
            f"reconstruction_score: shapes must be equal (B, C, s, s), got {t.shape} {r.shape}"
        )
    cost = ((t[:, None] - r[None]) ** 2).reshape(len(t), len(r), -1).mean(-1)
    rows, cols = linear_sum_assignment(cost)
    psnr = [
        min(peak_signal_noise_ratio(t[i], r[j], data_range=data_range), 100.0)  # type: ignore[no-untyped-call]
        for i, j in zip(rows, cols, strict=True)
    ]
    ssim = [
        structural_similarity(t[i, 0] if t.shape[1] == 1 else t[i].transpose(1, 2, 0),  # type: ignore[no-untyped-call]
                              r[j, 0] if r.shape[1] == 1 else r[j].transpose(1, 2, 0),
                              data_range=data_range, channel_axis=None if t.shape[1] == 1 else -1, win_size=7)
        for i, j in zip(rows, cols, strict=True)
    ]  # fmt: skip
    return ReconstructionScore(
        psnr=float(np.mean(psnr)), ssim=float(np.mean(ssim)), order=tuple(int(c) for c in cols)
    )


# --- experiment -------------------------------------------------------------------------------


def attack_batch(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    defence: Defence,
    *,
    method: str,
    config: InversionConfig,
) -> tuple[torch.Tensor, ReconstructionScore]:
    """Defended gradient of (x, y) → reconstruction with `method` → its score against x.

    Args:
        x: (B, C, s, s) float32 in [config.low, config.high]; y: (B,) int64 (distinct when B > 1 for iDLG/IG).
    Returns:
        (B, C, s, s) reconstruction ordered like `x`, and its score.
    """
    g = defended_gradient(model, x, y, defence, seed=config.seed)
    recon = invert_gradient(model, g, method=method, shape=tuple(x.shape), config=config)
    score = reconstruction_score(x.numpy(), recon.numpy(), data_range=config.high - config.low)
    return recon[list(score.order)], score


def defended_training(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    defence: Defence,
    *,
    epochs: int,
    batch_size: int,
    lr: float,
    momentum: float,
    seed: int,
) -> nn.Module:
    """Federated SGD in which every step uses the gradient a client sends under `defence`.

    The accuracy of the result against the undefended run is the defence's utility cost.
    Args:
        model: freshly initialised model (trained in place and returned).
        x: (N, C, s, s) float32; y: (N,) int64.
    """
    gen = torch.Generator().manual_seed(seed)
    opt = torch.optim.SGD(model.parameters(), lr=lr, momentum=momentum)
    params = [p for p in model.parameters() if p.requires_grad]
    for epoch in range(epochs):
        perm = torch.randperm(len(x), generator=gen)
        for step, i in enumerate(range(0, len(x), batch_size)):
            idx = perm[i : i + batch_size]
            model.train()
            grads = defended_gradient(model, x[idx], y[idx], defence, seed=seed + 7919 * epoch + step)
            for p, g in zip(params, grads, strict=True):
                p.grad = g.to(p.device)
            opt.step()
    return model.eval()
