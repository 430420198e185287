"""The audit's inversion experiments: MI-Face on each target, and the gradient-inversion grid over models,
client-side defences, attack methods and batch sizes, with each defence's accuracy cost."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from numpy.typing import NDArray
from torch import nn

from tasks.audit.experiments import Pool
from tasks.audit.gradient_inversion import Defence, InversionConfig, attack_batch, defended_training, gi_model
from tasks.audit.model_inversion import class_representatives, score_inversion
from tasks.audit.plots import unit_range
from tasks.audit.tables import attack_row, defence_row, gi_metrics
from tasks.params import GradientInversionParams, ModelInversionParams
from tasks.train.dp import DpTrainingRecord, evaluate
from tasks.train.models import ModelSpec, is_user_model


def model_inversion_experiment(
    models: Mapping[str, nn.Module],
    pool: Pool,
    *,
    spec: ModelSpec,
    settings: ModelInversionParams,
    device: str,
) -> tuple[dict[str, float], dict[str, NDArray[np.float64]]]:
    """MI-Face class representatives of every target, scored against the members.

    Args:
        models: target name ("dp" | "nonprivate") → model.
        settings: the audit's model_inversion section (steps, lr, tv).
    Returns:
        "audit/<which>/model_inversion/..." metrics, and the figure's rows (row label → (num_classes, 1, s, s)
        in [0, 1]): the DP model's representatives and the mean member input per class. The baseline has no
        guarantee: its numbers are reported, never its pictures.
    """
    xm, ym = pool.members()
    shape, bounds = pool.input_shape, spec.input_range
    metrics: dict[str, float] = {}
    rows: dict[str, NDArray[np.float64]] = {}
    for which, model in models.items():
        reps = class_representatives(model, num_classes=spec.num_classes, shape=shape, steps=settings.steps,
                                     lr=settings.lr, tv=settings.tv, device=device, bounds=bounds)  # fmt: skip
        result = score_inversion(model, reps, xm, ym, data_range=bounds[1] - bounds[0])
        metrics |= result.as_metrics(f"audit/{which}")
        if which == "dp":
            rows[f"MI-Face {which}"] = unit_range(reps.numpy(), bounds)
    means = [xm[ym == c].mean(0).numpy() if (ym == c).any() else np.zeros(pool.x.shape[1:])
             for c in range(spec.num_classes)]  # fmt: skip
    rows["train mean"] = unit_range(np.stack(means), bounds)
    return metrics, rows


def defence_grid(settings: GradientInversionParams, record: DpTrainingRecord) -> dict[str, Defence]:
    """Label → client-side defence: none, DP noise at the training σ, then the swept σs, pruning shares and
    quantisations of `settings` (σ and clipping norm of the DP ones from the DP target's `record`)."""
    out = {
        "none": Defence("none"),
        "dp_train_sigma": Defence("dp", record.noise_multiplier, record.max_grad_norm),
    }
    out |= {
        Defence("dp", s, record.max_grad_norm).label: Defence("dp", s, record.max_grad_norm)
        for s in settings.dp_sigmas
    }
    out |= {Defence("prune", r).label: Defence("prune", r) for r in settings.prune}
    return out | {q: Defence(q) for q in settings.quantize}


def distinct_batch(y: torch.Tensor, b: int) -> torch.Tensor:
    """Indices of the first sample of each of the first `b` classes present (by first appearance), ascending.

    Args:
        y: (N,) int64 labels.
    Returns:
        (min(b, classes present),) int64.
    """
    first = {int(c): i for i, c in reversed(list(enumerate(y.tolist())))}  # first index of each class
    return torch.tensor(sorted(first.values())[:b])


def figure_method(methods: tuple[str, ...]) -> str:
    """The gradient-inversion method whose reconstructions the figure shows (the strongest one run)."""
    return "inverting_gradients" if "inverting_gradients" in methods else methods[-1]


def gi_label(name: str, spec: ModelSpec) -> str:
    """How a gradient-inversion model is named in metrics and figures: "target" → the trained model's
    registry name (a user model's import path stays "target": ':' is not allowed in an MLflow key)."""
    return (
        "target"
        if name == "target" and is_user_model(spec.model)
        else spec.model
        if name == "target"
        else name
    )


@dataclass(frozen=True)
class GradientInversionOutcome:
    """The gradient-inversion grid.

    Attributes:
        attacks: one `attack_row` per (model, defence, batch size, method).
        defences: one `defence_row` per (model, defence).
        figure_rows: row label → (B, 1, s, s) in [0, 1]: the true batch, then each (model, defence)'s
            reconstruction by `figure_method` at the largest batch size.
    """

    attacks: list[dict[str, Any]]
    defences: list[dict[str, Any]]
    figure_rows: dict[str, NDArray[np.float64]] = field(repr=False)

    def as_metrics(self) -> dict[str, float]:
        """`gi_metrics` of the defence table."""
        return gi_metrics(self.defences)


def _best_attacks(
    model_name: str, labels: tuple[str, str], d: Defence, xm: torch.Tensor, ym: torch.Tensor, *,
    settings: GradientInversionParams, config: InversionConfig, model_kw: dict[str, Any],
    attacks: list[dict[str, Any]], figure_rows: dict[str, NDArray[np.float64]],
) -> dict[str, float]:  # fmt: skip
    """Every (batch size, method) attack on one (model, defence) labelled `labels`, appended to `attacks`
    (and the figure's batch to `figure_rows`); returns the best PSNR and SSIM."""
    label_name, label = labels
    best = {"psnr": -np.inf, "ssim": -np.inf}
    bounds = (config.low, config.high)
    for b in settings.batch_sizes:
        idx = distinct_batch(ym, b)
        for method in settings.methods:
            model = gi_model(model_name, **model_kw)
            recon, s = attack_batch(model, xm[idx], ym[idx], d, method=method, config=config)
            attacks.append(attack_row(label_name, label, method, len(idx), psnr=s.psnr, ssim=s.ssim))
            best = {"psnr": max(best["psnr"], s.psnr), "ssim": max(best["ssim"], s.ssim)}
            if method == figure_method(settings.methods) and b == max(settings.batch_sizes):
                figure_rows.setdefault("anonymized truth", unit_range(xm[idx].numpy(), bounds))
                figure_rows[f"{label_name} {label}"] = unit_range(recon.numpy(), bounds)
    return best


def gradient_inversion_experiment(
    record: DpTrainingRecord,
    pool: Pool,
    *,
    spec: ModelSpec,
    settings: GradientInversionParams,
    lr: float,
    momentum: float,
    seed: int,
    on_defence: Callable[[dict[str, Any]], None] | None = None,
) -> GradientInversionOutcome:
    """Invert one client gradient per (model, defence, method, batch size); accuracy cost per defence.

    Models in `settings.sweep_models` get every defence of `defence_grid`, the others only "none" and
    "dp_train_sigma". Attacks use the members; accuracy is that of federated SGD under the defence
    (`defence_epochs`, the DP target's batch size, lr and momentum of the train section) on the non-members.

    Args:
        record: the DP target's record (training σ, clipping norm, batch size).
        on_defence: called with each `defence_row` as soon as it is done (progress logging).
    """
    xm, ym = pool.members()
    xh, yh = pool.nonmembers()
    low, high = spec.input_range
    config = InversionConfig(steps=settings.steps, seed=seed, low=low, high=high)
    defences = defence_grid(settings, record)
    attacks: list[dict[str, Any]] = []
    table: list[dict[str, Any]] = []
    figure_rows: dict[str, NDArray[np.float64]] = {}
    kw: dict[str, Any] = {"num_classes": spec.num_classes, "seed": seed, "input_size": spec.input_size,
                          "in_shape": spec.in_shape}  # fmt: skip
    for gi_name in settings.models:
        model_name = spec.model if gi_name == "target" else gi_name
        label_name = gi_label(gi_name, spec)
        swept = gi_name in settings.sweep_models
        for label, d in ((k, v) for k, v in defences.items() if swept or k in ("none", "dp_train_sigma")):
            best = _best_attacks(model_name, (label_name, label), d, xm, ym, settings=settings, config=config,
                                 model_kw=kw, attacks=attacks, figure_rows=figure_rows)  # fmt: skip
            trained = defended_training(gi_model(model_name, **kw), xm, ym, d, epochs=settings.defence_epochs,
                                        batch_size=min(record.batch_size, len(xm)), lr=lr, momentum=momentum,
                                        seed=seed)  # fmt: skip
            row = defence_row(label_name, label, d.level, psnr_max=best["psnr"], ssim_max=best["ssim"],
                              accuracy=evaluate(trained, xh, yh))  # fmt: skip
            table.append(row)
            if on_defence is not None:
                on_defence(row)
    return GradientInversionOutcome(attacks, table, figure_rows)
