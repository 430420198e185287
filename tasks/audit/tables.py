"""Rows of the audit's tables (per-class attacks, gradient inversion) and the metrics read off them."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from tasks.audit.mia import AttackResult

# The gradient-inversion row that stands for each target: DP noise at the training σ for the DP model,
# no defence for the baseline.
GI_TARGET_DEFENCES = (("dp", "dp_train_sigma"), ("nonprivate", "none"))


def per_class_row(which: str, attack: str, label: int, result: AttackResult) -> dict[str, Any]:
    """One row of per_class.jsonl: attack `attack` on target `which`, restricted to class `label`."""
    return {
        "model": which,
        "attack": attack,
        "class": label,
        "auc": result.auc,
        "advantage": result.advantage,
        "tpr_at_1pct_fpr": result.tpr_at_1pct_fpr,
        "n_members": result.n_members,
        "n_nonmembers": result.n_nonmembers,
    }


def attack_row(
    model: str, defence: str, method: str, batch_size: int, *, psnr: float, ssim: float
) -> dict[str, Any]:
    """One gradient-inversion attack: a reconstruction's mean PSNR (dB) and SSIM."""
    return {"model": model, "defence": defence, "method": method, "batch_size": batch_size, "psnr": psnr,
            "ssim": ssim}  # fmt: skip


def defence_row(
    model: str, defence: str, level: float, *, psnr_max: float, ssim_max: float, accuracy: float
) -> dict[str, Any]:
    """One defence on one model: the best reconstruction over methods and batch sizes, and the test accuracy
    of federated training under it (its utility cost)."""
    return {"model": model, "defence": defence, "level": level, "psnr_max": psnr_max, "ssim_max": ssim_max,
            "accuracy": accuracy}  # fmt: skip


def gi_metrics(table: Sequence[Mapping[str, Any]]) -> dict[str, float]:
    """Metrics of the defence table (`defence_row`s): every row's PSNR / SSIM / accuracy, and per target the
    best PSNR and SSIM over the models under its defence (`GI_TARGET_DEFENCES`).

    Raises:
        ValueError: no row for one of the target defences.
    """
    out: dict[str, float] = {}
    for r in table:
        base = f"audit/gradient_inversion/{r['model']}/{r['defence']}"
        out |= {
            f"{base}/psnr_max": r["psnr_max"],
            f"{base}/ssim_max": r["ssim_max"],
            f"{base}/accuracy": r["accuracy"],
        }
    for which, defence in GI_TARGET_DEFENCES:
        sel = [r for r in table if r["defence"] == defence]
        out[f"audit/{which}/gradient_inversion/psnr"] = max(r["psnr_max"] for r in sel)
        out[f"audit/{which}/gradient_inversion/ssim"] = max(r["ssim_max"] for r in sel)
    return out
