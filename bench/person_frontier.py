"""Per-person DP on the builtin data: per-person ε vs DP test accuracy, against the non-private baseline.

Reads a workspace where ingest and anonymize have run (its `data/anonymized` images and the identities in
`data/raw/annotations.json`), trains the non-private baseline once on the whole train split, then for each
cap k (images per person) and target per-person ε: bounds every person's images to k (`bound_contributions`),
calibrates σ for the per-person target with the mixture accountant, trains DP-SGD at that σ, and prices
the run with both accountants. Train stage only; runs one training at a time.

    python -m bench.person_frontier --workspace . --caps 1,2,4,8 --epsilons 2,4,8
    python -m bench.person_frontier --workspace . --caps 1 --epsilons 3,8 --batch-size 128   # another schedule
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import pandas as pd
import torch
import yaml

from tasks.params import TrainParams, resolve_train_choice
from tasks.train.checked import train_batch_size
from tasks.train.dp import evaluate, loop_schedule, train_dp, train_nonprivate
from tasks.train.person import (
    bound_contributions,
    calibrate_noise,
    image_units,
    max_contribution,
    persons_from_coco,
    price_unit,
)
from tasks.train.preprocess import prepare_inputs

REPO = Path(__file__).resolve().parents[1]


def _split(ws: Path, manifest: pd.DataFrame, split: str, features: str, size: int) -> tuple[list[str], torch.Tensor,
                                                                                             torch.Tensor]:
    from flows.io import read_image

    rows = manifest[manifest["split"] == split]
    x = prepare_inputs([read_image(ws / "data/anonymized" / p) for p in rows["path"]], features=features,
                       input_size=size)
    return rows["id"].tolist(), x, torch.from_numpy(rows["label"].to_numpy(dtype="int64"))


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--workspace", type=Path, default=REPO)
    ap.add_argument("--caps", default="1,2,4,8")
    ap.add_argument("--epsilons", default="2,4,8")
    ap.add_argument("--seed", type=int, default=0, help="selection seed of the kept images")
    ap.add_argument("--json", type=Path, default=None, help="also write the rows here")
    ap.add_argument("--batch-size", type=int, default=None, help="DP-SGD's expected batch (default: train's)")
    ap.add_argument("--epochs", type=int, default=None, help="DP-SGD's epochs (default: train's)")
    a = ap.parse_args(argv)
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    p = TrainParams(**params["train"])
    dp_batch, dp_epochs = a.batch_size or p.batch_size, a.epochs or p.epochs
    features, model = resolve_train_choice(p.features, p.model, source="builtin")
    manifest = pd.read_parquet(a.workspace / "data/anonymized/manifest.parquet")
    coco = json.loads((a.workspace / "data/raw/annotations.json").read_text())
    ids, x, y = _split(a.workspace, manifest, "train", features, p.input_size)
    _, x_test, y_test = _split(a.workspace, manifest, "test", features, p.input_size)
    units = image_units(ids, persons_from_coco(coco))
    common = {"model_name": model, "epochs": p.epochs, "momentum": p.momentum, "seed": int(params["seed"])}
    base = train_nonprivate(x, y, lr=p.nonprivate_lr, batch_size=train_batch_size(p.batch_size, len(x)), **common)
    base_acc = evaluate(base.model, x_test, y_test)
    print(f"non-private baseline: test accuracy {base_acc:.4f} on {len(x)} train images "
          f"(max {max_contribution(units)} images per person)")
    print("cap | kept | q | steps | sigma | target eps | eps PLD | eps PRV | DP acc | ratio | s")
    rows = []
    for cap in (int(c) for c in a.caps.split(",")):
        kept = bound_contributions(units, cap=cap, seed=a.seed)
        where = {image: k for k, image in enumerate(ids)}
        idx = torch.tensor([where[i] for i in kept])
        batch = train_batch_size(dp_batch, len(kept))
        q, steps = loop_schedule(len(kept), batch_size=batch, epochs=dp_epochs)
        for target in (float(e) for e in a.epsilons.split(",")):
            t0 = time.perf_counter()
            sigma = calibrate_noise(target_epsilon=target, delta=p.dp.target_delta, sample_rate=q, steps=steps,
                                    cap=cap)
            dp = train_dp(x[idx], y[idx], lr=p.lr, batch_size=batch, target_epsilon=target,
                          target_delta=p.dp.target_delta, max_grad_norm=p.dp.max_grad_norm,
                          accountant=p.dp.accountant, noise_multiplier=sigma, **(common | {"epochs": dp_epochs}))
            assert dp.record is not None
            pld, prv = price_unit(dp.record.history, cap=cap, delta=p.dp.target_delta)
            acc = evaluate(dp.model, x_test, y_test)
            row = {"cap": cap, "kept": len(kept), "q": q, "steps": steps, "sigma": sigma, "target": target,
                   "eps_pld": pld, "eps_prv": prv, "dp_acc": acc, "ratio": acc / base_acc,
                   "seconds": time.perf_counter() - t0, "base_acc": base_acc}
            rows.append(row)
            print(f"{cap} | {len(kept)} | {q:.4g} | {steps} | {sigma:.3f} | {target:g} | {pld:.3f} | {prv:.3f} | "
                  f"{acc:.4f} | {acc / base_acc:.3f} | {row['seconds']:.0f}", flush=True)
    if a.json:
        a.json.write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
