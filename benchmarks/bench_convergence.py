"""Benchmark: each model's time to convergence on the real data, read from the tuned runs' own records.

    .venv/bin/python benchmarks/bench_convergence.py [--experiment 04_train] [--pair food_kitchen_llmcdsr]

Reads results/<experiment>/<pair>/timings.csv (training seconds per epoch, one torch thread per run, the runs two
side by side on a 2-core machine) and metrics.csv (the best epoch, chosen on validation NDCG@10) of the runs that
`python -m llmemf_lite.tuning all` made, so no model is trained again. Time to convergence is the training time
up to and including the best epoch; the validation passes (960 cases, about a second each) are not counted. The
ratios to SASRec are of per-seed means, all seeds of all models made by one command on one machine.
Writes results/benchmarks/convergence_<pair>.json: per model the best and last epoch of each seed, the seconds to
the best epoch and in all, training sequences/s, the ratio of the time to convergence to SASRec's; the machine and
the commit.
"""
from __future__ import annotations

import argparse
import json

import pandas as pd

from llmemf_lite.provenance import commit, machine
from llmemf_lite.paths import results_dir
from llmemf_lite.report import seconds_to_best


def convergence(timings: pd.DataFrame, metrics: pd.DataFrame) -> dict:
    """Per label: seeds, best and last epochs, seconds to the best epoch and in all, median sequences/s."""
    best = metrics.groupby(["label", "seed"], as_index=False)["best_epoch"].first()
    to_best = seconds_to_best(timings, best)
    best = best.set_index(["label", "seed"])["best_epoch"]
    out = {}
    for label, runs in timings.groupby("label", sort=False):
        rows = []
        for seed, run in runs.groupby("seed"):
            rows.append({"seed": int(seed), "best_epoch": int(best[(label, seed)]),
                         "last_epoch": int(run["epoch"].max()),
                         "seconds_to_best": round(float(to_best[(label, seed)]), 1),
                         "seconds_total": round(float(run["seconds"].sum()), 1),
                         "sequences_per_s": round(float(run["sequences_per_s"].median()), 1)})
        frame = pd.DataFrame(rows)
        out[label] = {"runs": rows, "mean_seconds_to_best": round(float(frame["seconds_to_best"].mean()), 1),
                      "mean_seconds_total": round(float(frame["seconds_total"].mean()), 1)}
    if "sasrec" in out:
        for record in out.values():
            record["to_best_ratio_to_sasrec"] = round(record["mean_seconds_to_best"]
                                                      / out["sasrec"]["mean_seconds_to_best"], 2)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--experiment", default="04_train")
    ap.add_argument("--pair", default="food_kitchen_llmcdsr")
    args = ap.parse_args()
    folder = results_dir() / args.experiment / args.pair
    if not (folder / "timings.csv").is_file():
        raise SystemExit(f"{folder / 'timings.csv'}: not there; make it with `python -m llmemf_lite.tuning all`")
    record = {"command": f"benchmarks/bench_convergence.py --experiment {args.experiment} --pair {args.pair}",
              "source": f"results/{args.experiment}/{args.pair}/timings.csv",
              "machine": f"{machine()}, one torch thread per run, two runs side by side", "commit": commit(),
              "models": convergence(pd.read_csv(folder / "timings.csv"), pd.read_csv(folder / "metrics.csv"))}
    out = results_dir() / "benchmarks" / f"convergence_{args.pair}.json"
    out.write_text(json.dumps(record, indent=1) + "\n")
    for label, r in record["models"].items():
        print(f"{label:12s} best epochs {[x['best_epoch'] for x in r['runs']]}, {r['mean_seconds_to_best']:.0f} s to "
              f"the best epoch, {r['mean_seconds_total']:.0f} s in all")
    print(f"written: {out}")


if __name__ == "__main__":
    main()
