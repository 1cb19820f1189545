"""Training throughput of the baselines on the synthetic default (one epoch each, measured side by side in one run),
and optionally the validation NDCG@10 after a short run.

    .venv/bin/python benchmarks/bench_baselines.py [--models sasrec,bert4rec,c2dsr] [--epochs 0]

Each model at its own config defaults (C2DSR: d 256, max length 15; BERT4Rec: d 64, max length 50; SASRec: d 64,
max length 50), batch 64 as the shared TrainConfig. Prints sequences/s and the ratio to SASRec.
"""
from __future__ import annotations

import argparse
import tempfile
import time

import numpy as np
import torch

from llmemf_lite.batching import evaluation_views, training_views
from llmemf_lite.data.build import build_dataset
from llmemf_lite.evaluate import evaluate_ranking, sample_candidates, summarize
from llmemf_lite.models import build_model
from llmemf_lite.train import TrainConfig, length_bucketed_batches, train_model


def one_epoch(model, views, batch_size: int = 64) -> float:
    """Seconds for one training epoch (loss, backward, AdamW step) over every row of `views`."""
    optimizer = torch.optim.AdamW(model.parameters(), lr=2e-3)
    lengths = (views.mixed != views.pad).sum(1)
    gen = torch.Generator().manual_seed(0)
    model.train()
    start = time.perf_counter()
    for idx in length_bucketed_batches(lengths, batch_size, np.random.default_rng(0)):
        loss = model(views.take(idx), "cpu", gen)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--models", default="sasrec,bert4rec,c2dsr")
    parser.add_argument("--epochs", type=int, default=0, help="also train this many epochs and report valid NDCG@10")
    args = parser.parse_args()
    ds = build_dataset("food_kitchen", "synthetic")
    seqs = list(ds.split("train")["items"])
    views = training_views(seqs, ds.space, 50)
    print(f"synthetic food_kitchen: {len(seqs)} training sequences, {ds.space.n_items} items, "
          f"{torch.get_num_threads()} torch threads")
    rates = {}
    for name in args.models.split(","):
        torch.manual_seed(0)
        model = build_model(name, ds.space, train_sequences=seqs)
        seconds = one_epoch(model, views)
        rates[name] = len(seqs) / seconds
        ratio = f", {rates[name] / rates['sasrec']:.2f}x SASRec" if "sasrec" in rates else ""
        print(f"{name}: one epoch {seconds:.1f} s, {rates[name]:.1f} sequences/s{ratio}", flush=True)
    if args.epochs:
        valid, targets = evaluation_views(list(ds.split("valid")["items"]), ds.space, 50)
        cands = sample_candidates(targets, ds.space, 999, seed=2025)
        pop = build_model("pop", ds.space).fit(seqs)
        for name, model in [("pop", pop)] + [(n, None) for n in args.models.split(",")]:
            if model is None:
                torch.manual_seed(0)
                model = build_model(name, ds.space, train_sequences=seqs)
                cfg = TrainConfig(epochs=args.epochs, patience=args.epochs, progress=False, resume=False)
                train_model(model, views, valid, targets, cands, ds.space, ds.pair.domains, cfg, tempfile.mkdtemp())
            s = summarize(evaluate_ranking(model, valid, targets, ds.space, cands), ds.pair.domains)
            print(f"{name}: valid NDCG@10 (sampled, mean of domains) "
                  f"{s.loc[s['protocol'] == 'sampled', 'NDCG@10'].mean():.4f}", flush=True)


if __name__ == "__main__":
    main()
