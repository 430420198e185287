"""train: DP-SGD (Opacus) to the target (ε, δ) and a non-private baseline of the same architecture
and schedule, both on the anonymized train split; test accuracy of both; the DP mechanism record."""

from __future__ import annotations

import time

import torch
from prefect import flow

from flows import io, tracking
from flows.common import run_stage, write_metrics
from tasks.params import TrainParams
from tasks.train.dp import evaluate, train_dp, train_nonprivate
from tasks.train.models import INPUT_CHANNELS
from tasks.train.preprocess import prepare_inputs


def _tensors(manifest, root: str, split: str, p: TrainParams) -> tuple[torch.Tensor, torch.Tensor]:
    images, labels = io.load_split(manifest, root, split)
    return prepare_inputs(images, features=p.features, input_size=p.input_size), torch.from_numpy(labels)


@flow(name="train")
def train() -> dict[str, float]:
    params = io.load_params()
    p, data, models = params.train, params.paths.anonymized, params.paths.models
    io.clean_dir(models)
    with tracking.stage_run("train", params=params,
                            inputs=[f"{data}/manifest.parquet", f"{data}/images"], outputs=[models]) as run:
        manifest = io.read_table(f"{data}/manifest.parquet")
        x, y = _tensors(manifest, data, "train", p)
        x_test, y_test = _tensors(manifest, data, "test", p)
        device = "cuda" if torch.cuda.is_available() else "cpu"
        common = {"model_name": p.model, "epochs": p.epochs, "batch_size": min(p.batch_size, len(x)),
                  "momentum": p.momentum, "seed": params.seed, "device": device, "x_val": x_test, "y_val": y_test}
        t0 = time.perf_counter()
        dp = train_dp(x, y, lr=p.lr, target_epsilon=p.dp.target_epsilon, target_delta=p.dp.target_delta,
                      max_grad_norm=p.dp.max_grad_norm, accountant=p.dp.accountant,
                      physical_batch_size=p.physical_batch_size, **common)
        t1 = time.perf_counter()
        base = train_nonprivate(x, y, lr=p.nonprivate_lr, **common)
        t2 = time.perf_counter()
        assert dp.record is not None
        io.save_state_dict(f"{models}/dp.pt", dp.model.state_dict())
        io.save_state_dict(f"{models}/nonprivate.pt", base.model.state_dict())
        io.write_json(f"{models}/dp_record.json", dp.record.as_dict())
        meta = {"model": p.model, "features": p.features, "input_size": p.input_size, "num_classes": int(y.max()) + 1, "seed": params.seed}
        io.write_json(f"{models}/meta.json", meta)
        metrics = dp.record.as_metrics() | {
            "train/dp_test_accuracy": evaluate(dp.model, x_test, y_test),
            "train/nonprivate_test_accuracy": evaluate(base.model, x_test, y_test),
            "train/dp_train_accuracy": evaluate(dp.model, x, y),
            "train/nonprivate_train_accuracy": evaluate(base.model, x, y),
            "train/n_test": len(x_test), "train/dp_seconds": t1 - t0, "train/nonprivate_seconds": t2 - t1}
        metrics = write_metrics("train", metrics, metrics_dir=params.paths.metrics)
        run.log_metrics(metrics)
        run.log_curve("train/curve/dp_val_accuracy", [e.val_accuracy for e in dp.curve])
        run.log_curve("train/curve/dp_epsilon", [e.epsilon for e in dp.curve])
        run.log_curve("train/curve/nonprivate_val_accuracy", [e.val_accuracy for e in base.curve])
        run.log_artifact(f"{models}/dp_record.json")
        run.extra["model_uri"] = run.log_torch_model(dp.model.cpu(), name="dp_model",
                                                     input_shape=(1, INPUT_CHANNELS[p.model], p.input_size, p.input_size))
    return metrics


if __name__ == "__main__":
    run_stage("train")
