"""Benchmark: training sequences/s per model, and evaluation test cases/s of the batched evaluator against a
straightforward per-case loop on the same model and candidates, measured side by side in one run.

    .venv/bin/python benchmarks/bench_train_eval.py [--source synthetic|llmcdsr] [--steps 20] [--device cuda]

The per-case loop is what a first implementation does: for each test case, score its history alone, then count
the candidates above and tied with the target. Both paths must give the same ranks (asserted on a CPU; on a GPU
the count of cases ranked alike is printed).
"""
from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from llmemf_lite.batching import evaluation_views, training_views
from llmemf_lite.data.build import build_dataset
from llmemf_lite.evaluate import EvalConfig, evaluate_ranking, sample_candidates
from llmemf_lite.models import ItemFeatures, build_model


def per_case_loop(model, views, targets, candidates, device="cpu"):
    greater, ties = [], []
    model.eval()
    with torch.inference_mode():
        for i in range(len(targets)):
            scores = model.score_all(views.take(np.array([i])), device)[0]
            t = scores[targets[i]]
            c = scores[torch.as_tensor(candidates[i])]
            greater.append(int((c > t).sum()))
            ties.append(int((c == t).sum()))
    return np.array(greater), np.array(ties)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--source", default="synthetic")
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--cases", type=int, default=300)
    ap.add_argument("--device", default="cpu", help="cpu | cuda: where both training and evaluation run")
    args = ap.parse_args()
    device = args.device
    torch.manual_seed(0)
    ds = build_dataset("food_kitchen", args.source)
    space = ds.space
    train = training_views(list(ds.split("train")["items"]), space, 50)
    views, targets = evaluation_views(list(ds.split("test")["items"])[:args.cases], space, 50)
    cands = sample_candidates(targets, space, 999, seed=0)
    rng = np.random.default_rng(0)
    feats = ItemFeatures().add("text", rng.normal(size=(space.n_items, 384)).astype(np.float32),
                               np.ones(space.n_items, bool)).add(
        "image", rng.normal(size=(space.n_items, 512)).astype(np.float32), np.ones(space.n_items, bool))
    where = (torch.cuda.get_device_name(0) if device.startswith("cuda")
             else f"cpu, torch threads {torch.get_num_threads()}")
    print(f"dataset {ds.pair.name} ({args.source}), {where}")
    print("\n| model | training sequences/s |\n|---|---|")
    gen = torch.Generator().manual_seed(0)
    for label, name, overrides in (("gru4rec", "gru4rec", {}), ("sasrec", "sasrec", {}),
                                   ("sasrec_domain", "sasrec_domain", {}),
                                   ("llmemf (score fusion, the default)", "llmemf", {}),
                                   ("llmemf (representation fusion)", "llmemf", {"fusion": "representation"})):
        model = build_model(name, space, feats, **overrides).to(device)
        opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
        batches = [rng.choice(len(train), 64, replace=False) for _ in range(args.steps + 2)]
        for i, idx in enumerate(batches):
            if i == 2:
                _sync(device)
                start = time.perf_counter()
            loss = model(train.take(idx), device, gen)
            opt.zero_grad()
            loss.backward()
            opt.step()
        _sync(device)
        print(f"| {label} | {64 * args.steps / (time.perf_counter() - start):.0f} |")

    model = build_model("llmemf", space, feats).to(device).eval()
    few = np.arange(min(8, len(targets)))   # warm-up of both paths (first calls on a GPU pay for set-up)
    evaluate_ranking(model, views.take(few), targets[few], space, cands[few], EvalConfig(), device)
    per_case_loop(model, views.take(few), targets[few], cands[few], device)
    _sync(device)
    start = time.perf_counter()
    frame = evaluate_ranking(model, views, targets, space, cands, EvalConfig(), device)
    batched = time.perf_counter() - start
    start = time.perf_counter()
    g, t = per_case_loop(model, views, targets, cands, device)
    _sync(device)
    looped = time.perf_counter() - start
    sampled = frame[frame["protocol"] == "sampled"]
    same = (sampled["greater"].to_numpy() == g) & (sampled["ties"].to_numpy() == t)
    if device == "cpu":   # on a CPU the two paths agree to the bit; a GPU picks kernels by batch size
        assert same.all(), f"{(~same).sum()} cases ranked differently"
    print(f"\nevaluation of {len(targets)} cases (LLM-EMF, both protocols batched vs sampled only per case):")
    print(f"batched {len(targets) / batched:.0f} cases/s, per-case loop {len(targets) / looped:.0f} cases/s, "
          f"ratio {looped / batched:.1f}x (same ranks in {same.sum()} of {len(same)} cases)")


def _sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


if __name__ == "__main__":
    main()
