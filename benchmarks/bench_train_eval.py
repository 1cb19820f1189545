"""Benchmark: training sequences/s per model, and evaluation test cases/s of the batched evaluator against a
straightforward per-case loop on the same model and candidates, measured side by side in one run.

    .venv/bin/python benchmarks/bench_train_eval.py [--source synthetic|llmcdsr] [--steps 20] [--batch-size 128]
                                                    [--negatives 2000]

Training: the models' steps are interleaved (one step of each model in turn), so a machine whose speed drifts slows
every model alike, over the training loop's own batches (`train.length_bucketed_batches`: sequences of similar
length together); one torch thread unless --threads. The item features are random vectors of
the real widths (text 384, image 512; the real Food-Kitchen data have no images, so there: text only).
The per-case loop is what a first implementation does: for each test case, score its history alone, then count
the candidates above and tied with the target. Both paths must give the same ranks (asserted on a CPU).
With --negatives N every model trains against N sampled negatives per domain and batch (the tuning protocol's
2,000 on the real data) instead of its own default (500), written to train_eval_<pair>_<source>_negatives<N>.json.
Writes results/benchmarks/train_eval_<pair>_<source>.json: sequences_per_s (model -> training sequences/s),
ratios to SASRec, eval_ratio (batched over per-case), the machine and the commit.
"""
from __future__ import annotations

import argparse
import json
import time

import numpy as np
import torch

from llmemf_lite.batching import evaluation_views, training_views
from llmemf_lite.data.build import build_dataset
from llmemf_lite.evaluate import EvalConfig, evaluate_ranking, sample_candidates
from llmemf_lite.models import ItemFeatures, build_model
from llmemf_lite.paths import results_dir
from llmemf_lite.provenance import commit, machine
from llmemf_lite.train import length_bucketed_batches

def per_case_loop(model, views, targets, candidates, device="cpu"):
    """(candidates above the target, tied with it, and the smallest |score gap| between the target and a
    candidate), per case."""
    greater, ties, gaps = [], [], []
    model.eval()
    with torch.inference_mode():
        for i in range(len(targets)):
            scores = model.score_all(views.take(np.array([i])), device)[0]
            t = scores[targets[i]]
            c = scores[torch.as_tensor(candidates[i])]
            greater.append(int((c > t).sum()))
            ties.append(int((c == t).sum()))
            gaps.append(float((c - t).abs().min()))
    return np.array(greater), np.array(ties), np.array(gaps)


# a one-case matrix product and a batched one may sum in another order (the CPU's GEMV and GEMM kernels): scores
# then differ in their last bits (about 1e-5 here), and a rank may differ only where a candidate is that close
NEAR_TIE = 1e-4


def rank_agreement(batched: tuple, looped: tuple, gaps: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per case: whether both paths give the same (greater, ties), and whether a case that differs has a candidate
    within NEAR_TIE of the target (a near tie the two summation orders break apart)."""
    same = (np.asarray(batched[0]) == looped[0]) & (np.asarray(batched[1]) == looped[1])
    return same, ~same & (gaps < NEAR_TIE)


# c2dsr: its paper's d = 256 and window 15 (its defaults); c2dsr_project_width: the tuning grid's main points
# (tuning.PROJECT_SETTINGS: d = 64, the project's window of 50)
MODELS = (("gru4rec", "gru4rec", {}), ("sasrec", "sasrec", {}), ("bert4rec", "bert4rec", {}), ("c2dsr", "c2dsr", {}),
          ("c2dsr_project_width", "c2dsr", {"d": 64, "max_len": 50}), ("llmemf_id", "llmemf_id", {}),
          ("llmemf", "llmemf", {}),   # the default: one network per channel, content networks 1 block deep
          # one content network over image + text summed (where there are both: the default world)
          ("llmemf_joint_content_network", "llmemf", {"content_network": "joint"}),
          # the other fusion levels and forms measured in docs/diagnostics.md section 7
          ("llmemf_score_fusion", "llmemf", {"fusion": "score"}),
          ("llmemf_representation_fusion", "llmemf", {"fusion": "representation"}),
          ("llmemf_network_fusion_full_depth", "llmemf", {"content_blocks": None}),
          ("llmemf_no_merged_objective", "llmemf", {"aux_weight": 0.0}))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--source", default="synthetic")
    ap.add_argument("--data-dir", default=None)
    ap.add_argument("--steps", type=int, default=20, help="timed training steps per model")
    ap.add_argument("--batch-size", type=int, default=128)
    ap.add_argument("--cases", type=int, default=300)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--device", default="cpu", help="cpu | cuda: where both training and evaluation run")
    ap.add_argument("--negatives", type=int, default=None,
                    help="sampled negatives per domain and batch for every model (default: each model's own, 500); "
                         "the tuning protocol trains at 2,000 on the real data (tuning.TuningConfig.train_negatives)")
    args = ap.parse_args()
    device = args.device
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    ds = build_dataset("food_kitchen", args.source, args.data_dir)
    space = ds.space
    train_seqs = list(ds.split("train")["items"])
    train = training_views(train_seqs, space, 50)
    views, targets = evaluation_views(list(ds.split("test")["items"])[:args.cases], space, 50)
    cands = sample_candidates(targets, space, 999, seed=0)
    rng = np.random.default_rng(0)
    feats = ItemFeatures().add("text", rng.normal(size=(space.n_items, 384)).astype(np.float32),
                               np.ones(space.n_items, bool))
    if args.source == "synthetic":
        feats.add("image", rng.normal(size=(space.n_items, 512)).astype(np.float32), np.ones(space.n_items, bool))
    where = (torch.cuda.get_device_name(0) if device.startswith("cuda") else f"{machine()}, torch threads "
             f"{torch.get_num_threads()}")
    print(f"dataset {ds.pair.name} ({args.source}), channels {['id', *feats.vectors]}, {where}")
    gen = torch.Generator().manual_seed(0)
    models, optims = {}, {}
    for label, name, overrides in MODELS:   # (row label, model name, its overrides)
        if "content_network" in overrides and "image" not in feats.vectors:
            continue   # with one content modality the same model as the default, bit for bit
        if "image" not in feats.vectors and name == "llmemf":
            overrides = {**overrides, "use_image": False}
        if args.negatives is not None:
            overrides = {**overrides, "n_negatives": args.negatives}
        models[label] = build_model(name, space, feats, train_sequences=train_seqs, **overrides).to(device)
        optims[label] = torch.optim.AdamW(models[label].parameters(), lr=1e-3)
    # the training loop's own batches (sequences of similar length together, little padding): uniformly drawn ones
    # hold a long sequence in nearly every batch, and so timed mostly padding, which the training loop does not pay
    lengths = np.minimum((train.mixed != train.pad).sum(1), train.mixed.shape[1])
    batches = length_bucketed_batches(lengths, args.batch_size, rng)[:args.steps + 2]
    seconds = dict.fromkeys(models, 0.0)
    for i, idx in enumerate(batches):          # one step of every model in turn; the first two are warm-up
        views_i = train.take(idx)
        for label, model in models.items():
            _sync(device)
            start = time.perf_counter()
            loss = model(views_i, device, gen)
            optims[label].zero_grad()
            loss.backward()
            optims[label].step()
            _sync(device)
            if i >= 2:
                seconds[label] += time.perf_counter() - start
    rate = {label: round(args.batch_size * args.steps / s, 1) for label, s in seconds.items()}
    print("\n| model | training sequences/s | x SASRec |\n|---|---|---|")
    for label, r in rate.items():
        print(f"| {label} | {r:.0f} | {r / rate['sasrec']:.2f} |")

    model = models["llmemf"].eval()
    few = np.arange(min(8, len(targets)))   # warm-up of both paths (first calls on a GPU pay for set-up)
    evaluate_ranking(model, views.take(few), targets[few], space, cands[few], EvalConfig(), device)
    per_case_loop(model, views.take(few), targets[few], cands[few], device)
    _sync(device)
    start = time.perf_counter()
    frame = evaluate_ranking(model, views, targets, space, cands, EvalConfig(), device)
    batched = time.perf_counter() - start
    start = time.perf_counter()
    g, t, gaps = per_case_loop(model, views, targets, cands, device)
    _sync(device)
    looped = time.perf_counter() - start
    sampled = frame[frame["protocol"] == "sampled"]
    same, near_tie = rank_agreement((sampled["greater"].to_numpy(), sampled["ties"].to_numpy()), (g, t), gaps)
    if device == "cpu":   # a GPU picks kernels by batch size, and its scores differ more
        assert (same | near_tie).all(), f"{(~same & ~near_tie).sum()} cases ranked differently beyond a near tie"
    print(f"\nevaluation of {len(targets)} cases (LLM-EMF, both protocols batched vs sampled only per case):")
    print(f"batched {len(targets) / batched:.0f} cases/s, per-case loop {len(targets) / looped:.0f} cases/s, "
          f"ratio {looped / batched:.1f}x (same ranks in {same.sum()} of {len(same)} cases; the others at a "
          f"candidate within {NEAR_TIE:g} of the target: {near_tie.sum()})")
    negatives = "" if args.negatives is None else f"_negatives{args.negatives}"
    out = results_dir() / "benchmarks" / f"train_eval_{ds.pair.name}_{args.source}{negatives}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    record = {"command": f"benchmarks/bench_train_eval.py --source {args.source} --steps {args.steps} "
                         f"--batch-size {args.batch_size} --threads {args.threads}"
                         + ("" if args.negatives is None else f" --negatives {args.negatives}"),
              "machine": where, "commit": commit(), "batch_size": args.batch_size, "steps": args.steps,
              "negatives": models["sasrec"].n_negatives,
              "channels": ["id", *feats.vectors], "sequences_per_s": rate,
              "ratio_to_sasrec": {k: round(v / rate["sasrec"], 3) for k, v in rate.items()},
              "eval_cases": int(len(targets)), "eval_batched_cases_per_s": round(len(targets) / batched, 1),
              "eval_per_case_cases_per_s": round(len(targets) / looped, 1),
              "eval_ratio": round(looped / batched, 1), "eval_same_ranks": int(same.sum()),
              "eval_other_ranks_at_near_ties": int(near_tie.sum()), "eval_near_tie": NEAR_TIE}
    out.write_text(json.dumps(record, indent=1) + "\n")
    print(f"written: {out}")


def _sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


if __name__ == "__main__":
    main()
