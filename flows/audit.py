"""audit: attack the DP model and the non-private baseline the way an adversary would.

Membership inference (loss threshold, Shokri shadow models, LiRA online/offline with K shadow models
trained like each target), empirical ε lower bounds (Clopper–Pearson over the attacks, and a one-run
canary audit), model inversion (MI-Face) and gradient inversion (DLG, iDLG, Inverting Gradients)
under client-side defences. Members are the train split, non-members the holdout split, both from the
anonymized data; no raw pixels are read. Uses CUDA when present (same code, device chosen here).
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import pandas as pd
import torch
from prefect import flow, get_run_logger

from flows import io, tracking
from flows.common import SKIPPED, load_spec, run_stage, skip_outputs, write_metrics
from tasks.audit.canary import canary_audit, make_canaries
from tasks.audit.epsilon import check_empirical_epsilon, empirical_epsilon
from tasks.audit.gradient_inversion import (
    Defence,
    InversionConfig,
    attack_batch,
    defended_training,
    gi_model,
)
from tasks.audit.lira import logit_confidence
from tasks.audit.mia import SHADOW_ATTACKS, mia_data, per_class_results, run_attack
from tasks.audit.model_inversion import class_representatives, score_inversion
from tasks.audit.plots import image_grid, psnr_vs_accuracy_figure, roc_figure
from tasks.audit.shadow import Trainer, membership_matrix, predict_logits, train_shadows
from tasks.params import AuditParams, TrainParams
from tasks.train.dp import DpTrainingRecord, evaluate, train_dp, train_nonprivate
from tasks.train.models import ModelSpec, is_user_model
from tasks.train.preprocess import prepare_inputs


def _load_model(folder: str, which: str, spec: ModelSpec) -> torch.nn.Module:
    model = spec.build()
    model.load_state_dict(io.load_state_dict(f"{folder}/{which}.pt"))
    return model.eval()


def _subsample(n: int, k: int, seed: int) -> np.ndarray:
    return np.sort(np.random.default_rng(seed).permutation(n)[: min(n, k)])


def _pool(params: Any, meta: ModelSpec) -> tuple[torch.Tensor, torch.Tensor, np.ndarray]:
    """Audited samples: up to max_samples members (train) then non-members (holdout); x, y, is_member."""
    data, p = params.paths.anonymized, params.audit
    manifest = io.read_table(f"{data}/manifest.parquet")
    xs, ys = [], []
    for split, offset in (("train", 0), ("holdout", 1)):
        rows = manifest[manifest["split"] == split]
        rows = rows.iloc[
            _subsample(len(rows), p.max_samples, params.seed + offset)
        ]  # read only what is attacked
        images, labels = io.load_split(rows, data, split)
        xs.append(prepare_inputs(images, features=meta.features, input_size=meta.input_size))
        ys.append(torch.from_numpy(labels.copy()))
    is_member = np.r_[np.ones(len(xs[0]), bool), np.zeros(len(xs[1]), bool)]
    return torch.cat(xs), torch.cat(ys), is_member


def _trainers(record: DpTrainingRecord, t: TrainParams, spec: ModelSpec, device: str) -> dict[str, Trainer]:
    """Shadow trainers: the target's architecture and schedule; DP-SGD to the same (ε, δ) for the DP model."""

    def common(n: int, seed: int) -> dict[str, Any]:
        return {
            "model_name": spec.model,
            "num_classes": spec.num_classes,
            "epochs": record.epochs,
            "batch_size": min(record.batch_size, n),
            "momentum": t.momentum,
            "seed": seed,
            "device": device,
        }

    def dp(x: torch.Tensor, y: torch.Tensor, seed: int) -> torch.nn.Module:
        return train_dp(
            x,
            y,
            lr=t.lr,
            target_epsilon=record.target_epsilon,
            target_delta=record.target_delta,
            max_grad_norm=record.max_grad_norm,
            accountant=record.accountant,
            physical_batch_size=t.physical_batch_size,
            grad_sample_mode=record.grad_sample_mode,
            **common(len(x), seed),
        ).model

    def nonprivate(x: torch.Tensor, y: torch.Tensor, seed: int) -> torch.nn.Module:
        return train_nonprivate(x, y, lr=t.nonprivate_lr, **common(len(x), seed)).model

    return {"dp": dp, "nonprivate": nonprivate}


def _membership(
    which: str, model: torch.nn.Module, trainer: Trainer, pool: tuple, p: AuditParams, seed: int, device: str
) -> tuple[dict[str, float], dict[str, Any], dict[str, np.ndarray], list[dict]]:
    """Every membership attack on one target: metrics, results (for the ROC), scores, per-class rows."""
    x, y, is_member = pool
    shadow_logits = shadow_in = None
    extra: dict[str, float] = {}
    if p.shadow.k >= 2 and SHADOW_ATTACKS & set(p.attacks):
        # shadows trained exactly like the target: its training-set size (so its q, steps and σ), not half the pool
        shadow_in = membership_matrix(len(x), p.shadow.k, seed=seed, size=min(int(is_member.sum()), len(x) - 1))
        shadow_logits = train_shadows(x, y, shadow_in, trainer=trainer, seed=seed + 1000, device=device)
        sizes = shadow_in.sum(1)
        extra = {f"audit/{which}/shadow_n_train_min": float(sizes.min()),
                 f"audit/{which}/shadow_n_train_max": float(sizes.max()),
                 f"audit/{which}/target_n_train": float(is_member.sum())}
    data = mia_data(
        predict_logits(model, x, device=device),
        y.numpy(),
        is_member,
        shadow_logits=shadow_logits,
        shadow_in=shadow_in,
        fixed_variance=p.shadow.fixed_variance,
        seed=seed,
    )
    metrics, results, scores, rows = {f"audit/{which}/shadow_models": float(p.shadow.k)} | extra, {}, {}, []
    for name in p.attacks:
        res, scores[name] = run_attack(name, data)
        results[f"{which}/{name}"] = res
        metrics |= res.as_metrics(f"audit/{which}")
        for c, r in per_class_results(name, scores[name], data).items():
            metrics[f"audit/{which}/{name}/class_{c}/auc"] = r.auc
            rows.append(
                {
                    "model": which,
                    "attack": name,
                    "class": c,
                    "auc": r.auc,
                    "advantage": r.advantage,
                    "tpr_at_1pct_fpr": r.tpr_at_1pct_fpr,
                    "n_members": r.n_members,
                    "n_nonmembers": r.n_nonmembers,
                }
            )
    return metrics, results, scores, rows


def preregistered(p: AuditParams) -> tuple[str, ...]:
    """The tests whose bounds make the reported empirical ε, fixed before any score is seen: the strongest
    membership attack run (LiRA online, else the first) and the canary audit. Their confidence is joint
    (Bonferroni: α / number of tests each); the other attacks' bounds are exploratory, each at α."""
    strongest = next((a for a in ("lira_online", "lira_offline", "shadow") if a in p.attacks), p.attacks[0])
    return (strongest, *(("canary",) if p.epsilon.canary.enabled else ()))


def joint_alpha(p: AuditParams) -> float:
    """Each pre-registered test's level, so that all of them hold at once with confidence 1 − α."""
    return p.epsilon.alpha / len(preregistered(p))


def _epsilon_bounds(
    which: str, scores: dict[str, np.ndarray], is_member: np.ndarray, delta: float, p: AuditParams, seed: int
) -> dict[str, float]:
    out, joint = {}, preregistered(p)
    for name, s in scores.items():
        alpha = joint_alpha(p) if name in joint else p.epsilon.alpha
        b = empirical_epsilon(s[is_member], s[~is_member], delta=delta, alpha=alpha, seed=seed)
        out |= b.as_metrics(f"audit/{which}/{name}")
    pre = [out[f"audit/{which}/{n}/empirical_epsilon_lower_bound"] for n in joint if n in scores]
    out[f"audit/{which}/empirical_epsilon_lower_bound"] = max(pre, default=0.0)
    out[f"audit/{which}/exploratory_epsilon_lower_bound"] = max(
        (v for k, v in out.items() if k.endswith("/empirical_epsilon_lower_bound")), default=0.0)
    return out


def _canary(
    record: DpTrainingRecord, t: TrainParams, meta: ModelSpec, pool: tuple, p: AuditParams, seed: int, device: str
) -> dict[str, float]:
    """One extra DP run on the members plus the canaries that won the coin flip (Steinke et al. 2023)."""
    x, y, is_member = pool
    c = p.epsilon.canary
    cx, cy, inc = make_canaries(
        c.n, shape=tuple(x.shape[1:]), num_classes=meta.num_classes, seed=seed + 77
    )
    low, high = meta.input_range  # canaries are drawn in [0, 1]: map them into the model's input range
    cx = cx * (high - low) + low if (low, high) != (0.0, 1.0) else cx
    xm, ym = x[torch.from_numpy(is_member)], y[torch.from_numpy(is_member)]
    sel = torch.from_numpy(inc)
    model = _trainers(record, t, meta, device)["dp"](
        torch.cat([xm, cx[sel]]), torch.cat([ym, cy[sel]]), seed + 78
    )
    scores = logit_confidence(predict_logits(model, cx, device=device), cy.numpy())
    audit = canary_audit(scores, inc, k_pos=c.guesses // 2, k_neg=c.guesses - c.guesses // 2,
                         beta=joint_alpha(p), delta=record.target_delta)
    return audit.as_metrics("audit/dp") | {"audit/dp/canary/ceiling_ratio": audit.ceiling / record.target_epsilon}


def _unit(a: np.ndarray, bounds: tuple[float, float]) -> np.ndarray:
    """Inputs in `bounds` → [0, 1], channels averaged: what the figure grid shows."""
    low, high = bounds
    return ((np.asarray(a, np.float64) - low) / (high - low)).mean(axis=1, keepdims=True)


def _model_inversion(
    models: dict[str, torch.nn.Module], pool: tuple, meta: ModelSpec, p: AuditParams, plots: str, device: str
) -> dict[str, float]:
    x, y, is_member = pool
    xm, ym = x[torch.from_numpy(is_member)], y[torch.from_numpy(is_member)]
    mi, bounds = p.model_inversion, meta.input_range
    metrics, rows = {}, {}
    for which, model in models.items():
        reps = class_representatives(model, num_classes=meta.num_classes, shape=tuple(x.shape[1:]), steps=mi.steps,
                                     lr=mi.lr, tv=mi.tv, device=device, bounds=bounds)
        result = score_inversion(model, reps, xm, ym, data_range=bounds[1] - bounds[0])
        metrics |= result.as_metrics(f"audit/{which}")
        if which == "dp":  # the baseline has no guarantee: its numbers are reported, never its pictures
            rows[f"MI-Face {which}"] = _unit(reps.numpy(), bounds)
    rows["train mean"] = _unit(np.stack([xm[ym == c].mean(0).numpy() if (ym == c).any() else np.zeros(x.shape[1:])
                                         for c in range(meta.num_classes)]), bounds)
    title = "MI-Face class representatives of the DP model vs mean anonymized training input"
    io.save_figure(f"{plots}/model_inversion.png",
                   image_grid(rows, title=title, col_labels=list(meta.class_names)))
    return metrics


def _defences(p: AuditParams, record: DpTrainingRecord) -> dict[str, Defence]:
    g = p.gradient_inversion
    out = {
        "none": Defence("none"),
        "dp_train_sigma": Defence("dp", record.noise_multiplier, record.max_grad_norm),
    }
    out |= {
        Defence("dp", s, record.max_grad_norm).label: Defence("dp", s, record.max_grad_norm)
        for s in g.dp_sigmas
    }
    out |= {Defence("prune", r).label: Defence("prune", r) for r in g.prune}
    return out | {q: Defence(q) for q in g.quantize}


def _distinct_batch(y: torch.Tensor, b: int) -> torch.Tensor:
    first = {int(c): i for i, c in reversed(list(enumerate(y.tolist())))}  # first index of each class
    return torch.tensor(sorted(first.values())[:b])


def _figure_method(methods: tuple[str, ...]) -> str:
    """The gradient-inversion method whose reconstructions the figure shows (the strongest one run)."""
    return "inverting_gradients" if "inverting_gradients" in methods else methods[-1]


def gi_label(name: str, spec: ModelSpec) -> str:
    """How a gradient-inversion model is named in metrics and figures: "target" → the trained model's
    registry name (a user model's import path stays "target": ':' is not allowed in an MLflow key)."""
    return "target" if name == "target" and is_user_model(spec.model) else spec.model if name == "target" else name


def _gradient_inversion(
    record: DpTrainingRecord, t: TrainParams, meta: ModelSpec, pool: tuple, p: AuditParams, plots: str, seed: int
) -> dict[str, float]:
    """Invert one client gradient per (model, defence, method, batch size); accuracy cost per defence."""
    x, y, is_member = pool
    xm, ym = x[torch.from_numpy(is_member)], y[torch.from_numpy(is_member)]
    xh, yh = x[torch.from_numpy(~is_member)], y[torch.from_numpy(~is_member)]
    low, high = meta.input_range
    g = p.gradient_inversion
    cfg = InversionConfig(steps=g.steps, seed=seed, low=low, high=high)
    defences, rows, table, fig_rows = _defences(p, record), [], [], {}
    kw = {"num_classes": meta.num_classes, "seed": seed, "input_size": meta.input_size, "in_shape": meta.in_shape}
    for gi_name in g.models:
        model_name = meta.model if gi_name == "target" else gi_name
        label_name = gi_label(gi_name, meta)
        swept = gi_name in g.sweep_models
        for label, d in ((k, v) for k, v in defences.items() if swept or k in ("none", "dp_train_sigma")):
            best = {"psnr": -np.inf, "ssim": -np.inf}
            for b in g.batch_sizes:
                idx = _distinct_batch(ym, b)
                for method in g.methods:
                    recon, s = attack_batch(
                        gi_model(model_name, **kw), xm[idx], ym[idx], d, method=method, config=cfg
                    )
                    rows.append(
                        {
                            "model": label_name,
                            "defence": label,
                            "method": method,
                            "batch_size": len(idx),
                            "psnr": s.psnr,
                            "ssim": s.ssim,
                        }
                    )
                    best = {"psnr": max(best["psnr"], s.psnr), "ssim": max(best["ssim"], s.ssim)}
                    if method == _figure_method(g.methods) and b == max(g.batch_sizes):
                        fig_rows.setdefault("anonymized truth", _unit(xm[idx].numpy(), (low, high)))
                        fig_rows[f"{label_name} {label}"] = _unit(recon.numpy(), (low, high))
            trained = defended_training(
                gi_model(model_name, **kw),
                xm,
                ym,
                d,
                epochs=g.defence_epochs,
                batch_size=min(record.batch_size, len(xm)),
                lr=t.lr,
                momentum=t.momentum,
                seed=seed,
            )
            acc = evaluate(trained, xh, yh)
            get_run_logger().info(
                "audit: gradient inversion %s %s: PSNR %.2f dB, accuracy %.3f",
                label_name,
                label,
                best["psnr"],
                acc,
            )
            table.append(
                {
                    "model": label_name,
                    "defence": label,
                    "level": d.level,
                    "psnr_max": best["psnr"],
                    "ssim_max": best["ssim"],
                    "accuracy": acc,
                }
            )
    io.write_json(f"{plots}/gradient_inversion.json", {"attacks": rows, "defences": table})
    io.write_csv(f"{plots}/gradient_inversion.csv", pd.DataFrame(table))
    io.save_figure(
        f"{plots}/gradient_inversion.png",
        image_grid(
            fig_rows,
            title=f"{_figure_method(g.methods)}, batch {max(g.batch_sizes)}: reconstructions under each defence",
        ),
    )
    io.save_figure(
        f"{plots}/gradient_inversion_psnr_vs_accuracy.png",
        psnr_vs_accuracy_figure(table, title="Gradient inversion vs defence utility"),
    )
    return _gi_metrics(table)


def _gi_metrics(table: list[dict]) -> dict[str, float]:
    out = {}
    for r in table:
        base = f"audit/gradient_inversion/{r['model']}/{r['defence']}"
        out |= {
            f"{base}/psnr_max": r["psnr_max"],
            f"{base}/ssim_max": r["ssim_max"],
            f"{base}/accuracy": r["accuracy"],
        }
    for which, defence in (("dp", "dp_train_sigma"), ("nonprivate", "none")):
        sel = [r for r in table if r["defence"] == defence]
        out[f"audit/{which}/gradient_inversion/psnr"] = max(r["psnr_max"] for r in sel)
        out[f"audit/{which}/gradient_inversion/ssim"] = max(r["ssim_max"] for r in sel)
    return out


@flow(name="audit")
def audit() -> dict[str, float]:
    params = io.load_params()
    p, models, seed = params.audit, params.paths.models, params.seed
    plots = f"{params.paths.plots}/audit"
    io.clean_dir(plots)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    with tracking.stage_run(
        "audit",
        params=params,
        inputs=[models, f"{params.paths.anonymized}/manifest.parquet"],
        outputs=[plots],
    ) as run:
        if "skipped" in io.read_json(f"{models}/meta.json"):  # no labels: no model, nothing to attack
            run.extra["skipped"] = SKIPPED
            metrics = skip_outputs(params, stage="audit", reason=SKIPPED)
            run.log_metrics(metrics)
            return metrics
        meta = load_spec(models)
        record = DpTrainingRecord.from_dict(io.read_json(f"{models}/dp_record.json"))
        pool = _pool(params, meta)
        targets = {"dp": _load_model(models, "dp", meta),
                   "nonprivate": _load_model(params.paths.restricted, "nonprivate", meta)}
        trainers = _trainers(record, params.train, meta, device)
        metrics: dict[str, float] = {"audit/dp/theoretical_epsilon": record.epsilon}
        results, class_rows, t0 = {}, [], time.perf_counter()
        for which, model in targets.items():
            m, res, scores, rows = _membership(which, model, trainers[which], pool, p, seed, device)
            metrics |= m | _epsilon_bounds(which, scores, pool[2], record.target_delta, p, seed)
            results |= res
            class_rows += rows
        if p.epsilon.canary.enabled:
            metrics |= _canary(record, params.train, meta, pool, p, seed, device)
            metrics["audit/dp/empirical_epsilon_lower_bound"] = max(
                metrics["audit/dp/empirical_epsilon_lower_bound"],
                metrics["audit/dp/canary/epsilon_lower_bound"],
            )
        metrics["audit/dp/empirical_epsilon_margin"] = (
            record.epsilon - metrics["audit/dp/empirical_epsilon_lower_bound"]
        )
        metrics |= {"audit/dp/empirical_epsilon_confidence": 1 - p.epsilon.alpha,
                    "audit/dp/empirical_epsilon_tests": float(len(preregistered(p)))}
        metrics["audit/seconds_membership"] = time.perf_counter() - t0
        get_run_logger().info(
            "audit: membership done in %.0f s: %s",
            metrics["audit/seconds_membership"],
            {
                k: round(v, 4)
                for k, v in metrics.items()
                if k.endswith(("/auc", "_bound")) and "class_" not in k
            },
        )
        if p.model_inversion.enabled:
            metrics |= _model_inversion(targets, pool, meta, p, plots, device)
        if p.gradient_inversion.enabled:
            metrics |= _gradient_inversion(record, params.train, meta, pool, p, plots, seed)
        metrics["audit/seconds"] = time.perf_counter() - t0
        io.save_figure(f"{plots}/roc.png", roc_figure(results))
        io.write_jsonl(f"{plots}/per_class.jsonl", class_rows)
        metrics = write_metrics("audit", metrics, metrics_dir=params.paths.metrics)
        run.log_metrics(metrics)
        for name in io.list_files(plots):
            run.log_artifact(f"{plots}/{name}", "plots")
        get_run_logger().info(
            "audit: empirical epsilon lower bound %.4f vs accountant epsilon %.4f",
            metrics["audit/dp/empirical_epsilon_lower_bound"],
            record.epsilon,
        )
    check_empirical_epsilon(
        metrics["audit/dp/empirical_epsilon_lower_bound"],
        record.epsilon,
        source="the membership attacks and canaries on the DP model",
    )
    return metrics


if __name__ == "__main__":
    run_stage("audit")
