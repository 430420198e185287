"""Which DP model for a user's own photos: fixed-feature models vs a CNN trained end to end, at the same ε.

    python -m bench.photo_models --data data/anonymized [--models photo_hog,gn_cnn] [--epsilon 3]

Trains every candidate with DP-SGD (the train stage's schedule from params.yaml, whole-image "full"
features at `--input-size`) and without DP on the data set's train split, and prints the test accuracy of
each, side by side in one run. The default `train.model` for photos is chosen from this table; run it on
the builtin set (`data/anonymized` after `make pipeline`: whole scenes, 10 classes) and on a real folder.
"""

from __future__ import annotations

import argparse
import time

import torch

from flows import io
from flows.common import class_names
from tasks.train.dp import evaluate, train_dp, train_nonprivate
from tasks.train.preprocess import prepare_inputs


def _split(manifest, root: str, split: str, size: int) -> tuple[torch.Tensor, torch.Tensor]:
    images, labels = io.load_split(manifest, root, split)
    return prepare_inputs(images, features="full", input_size=size), torch.from_numpy(labels)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.photo_models", description=__doc__.splitlines()[0])
    ap.add_argument("--data", default="data/anonymized")
    ap.add_argument("--models", default="photo_hog,gn_cnn")
    ap.add_argument("--epsilon", type=float, default=3.0)
    ap.add_argument("--input-size", type=int, default=64)
    args = ap.parse_args(argv)
    t = io.load_params().train
    manifest = io.read_table(f"{args.data}/manifest.parquet")
    names = class_names(args.data)
    x, y = _split(manifest, args.data, "train", args.input_size)
    xt, yt = _split(manifest, args.data, "test", args.input_size)
    print(f"{args.data}: {len(x)} train / {len(xt)} test images, {len(names)} classes, eps {args.epsilon}, "
          f"{args.input_size} px, {t.epochs} epochs")
    print(f"{'model':<12} {'DP acc':>7} {'non-DP acc':>10} {'DP s':>6}")
    common = {"epochs": t.epochs, "batch_size": min(t.batch_size, len(x)), "momentum": t.momentum, "seed": 0,
              "num_classes": len(names)}
    for name in args.models.split(","):
        t0 = time.perf_counter()
        dp = train_dp(x, y, model_name=name, lr=t.lr, target_epsilon=args.epsilon, target_delta=t.dp.target_delta,
                      max_grad_norm=t.dp.max_grad_norm, accountant=t.dp.accountant,
                      physical_batch_size=t.physical_batch_size, **common)
        seconds = time.perf_counter() - t0
        base = train_nonprivate(x, y, model_name=name, lr=t.nonprivate_lr, **common)
        print(f"{name:<12} {evaluate(dp.model, xt, yt):>7.3f} {evaluate(base.model, xt, yt):>10.3f} {seconds:>6.1f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
