"""audit: membership-inference attacks on the DP model and the non-private baseline.

Members are the train split (what the models were trained on), non-members the holdout split of the
same distribution. Both come from the anonymized data; no raw pixels are read.
"""

from __future__ import annotations

import numpy as np
import torch
from prefect import flow

from flows import io, tracking
from flows.common import run_stage, write_metrics
from tasks.audit.mia import ATTACKS
from tasks.audit.plots import roc_figure
from tasks.train.dp import predict_losses
from tasks.train.models import build_model
from tasks.train.preprocess import prepare_inputs


def _load_model(models: str, which: str, meta: dict) -> torch.nn.Module:
    model = build_model(meta["model"], num_classes=meta["num_classes"], seed=meta["seed"])
    model.load_state_dict(io.load_state_dict(f"{models}/{which}.pt"))
    return model.eval()


def _subsample(n: int, k: int, seed: int) -> np.ndarray:
    return np.sort(np.random.default_rng(seed).permutation(n)[: min(n, k)])


@flow(name="audit")
def audit() -> dict[str, float]:
    params = io.load_params()
    p, data, models = params.audit, params.paths.anonymized, params.paths.models
    plots = f"{params.paths.plots}/audit"
    io.clean_dir(plots)
    with tracking.stage_run("audit", params=params, inputs=[models, f"{data}/manifest.parquet"],
                            outputs=[plots]) as run:
        meta = io.read_json(f"{models}/meta.json")
        manifest = io.read_table(f"{data}/manifest.parquet")
        split_xy = {}
        for split, offset in (("train", 0), ("holdout", 1)):
            rows = manifest[manifest["split"] == split]
            rows = rows.iloc[_subsample(len(rows), p.max_samples, params.seed + offset)]  # read only what is attacked
            images, labels = io.load_split(rows, data, split)
            split_xy[split] = (prepare_inputs(images, features=meta["features"], input_size=meta["input_size"]),
                               torch.from_numpy(labels))
        metrics: dict[str, float] = {}
        results = {}
        for which in ("dp", "nonprivate"):
            model = _load_model(models, which, meta)
            member, nonmember = (predict_losses(model, *split_xy[s]) for s in ("train", "holdout"))
            for name in p.attacks:
                res = ATTACKS[name](member, nonmember)
                results[f"{which}/{name}"] = res
                metrics |= res.as_metrics(f"audit/{which}")
        io.save_figure(f"{plots}/roc.png", roc_figure(results))
        metrics = write_metrics("audit", metrics, metrics_dir=params.paths.metrics)
        run.log_metrics(metrics)
        run.log_artifact(f"{plots}/roc.png", "plots")
    return metrics


if __name__ == "__main__":
    run_stage("audit")
