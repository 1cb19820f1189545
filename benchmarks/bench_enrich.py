"""Benchmark: tokens/s of batched vs one-item-at-a-time generation on the local backend, side by side in one run.

    .venv/bin/python benchmarks/bench_enrich.py [--items 64] [--single 8] [--batch-size 64] [--threads N]

The same SmolLM2-135M-Instruct GGUF model (loaded once), the same synthetic item titles and the same `describe`
prompt, greedy, max_new_tokens as in EnrichConfig. Three ways:
    one at a time          batch size 1 (the first --single items: it is slow)
    batched                --batch-size prompts per generate() call, plain left padding
    batched, shared prefix the same, the prompt's common prefix computed once per batch (the default)
With --processes N, instead: `enrich_dataset` over --items items as one process with torch's threads against N
processes side by side with one thread each (EnrichConfig.workers), alternating --rounds times, each round into
fresh caches; the generation's wall clock (model loading excluded) and its ratio are printed.
With --dtypes float32,bfloat16, instead: `enrich_dataset` over --items items in each dtype, one process, one
thread, alternating --rounds times into fresh caches (of --pair / --data-dir: the real titles where given, else the
synthetic world's): seconds of generation per dtype, their ratio, how many texts the two agree on and how many fell
back, written to results/benchmarks/enrich_dtypes_<pair>_<source>.json with the machine and commit.
Wall-clock rates are printed next to CPU-time rates (tokens per CPU-second of this process): on a machine shared with
other jobs the wall clock is noisy, while with --threads 1 the CPU-time rate is what an idle core would do.
Not a test: nothing here is asserted.
"""
from __future__ import annotations

import argparse
import os
import time

os.environ.setdefault("HF_HUB_OFFLINE", "1")


def measure(backend, prompts, batch_size: int) -> dict:
    wall, cpu = time.perf_counter(), time.process_time()
    tokens = 0
    for start in range(0, len(prompts), batch_size):
        tokens += sum(g.n_tokens for g in backend.generate(prompts[start:start + batch_size]))
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    return {"items": len(prompts), "tokens": tokens, "wall_s": wall, "tokens_per_s": tokens / wall,
            "tokens_per_cpu_s": tokens / cpu, "items_per_s": len(prompts) / wall}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--items", type=int, default=64, help="items for the batched runs")
    ap.add_argument("--single", type=int, default=8, help="items for the one-at-a-time run")
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's choice)")
    ap.add_argument("--processes", type=int, default=0, help="compare one process with this many side by side")
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--dtypes", default=None, help="compare these generation dtypes, e.g. float32,bfloat16")
    ap.add_argument("--pair", default="food_kitchen", help="--dtypes: the domain pair")
    ap.add_argument("--data-dir", default=None, help="--dtypes: an LLMCDSR release folder (default: synthetic)")
    args = ap.parse_args()
    if args.processes:
        return compare_processes(args)
    if args.dtypes:
        return compare_dtypes(args)

    import torch

    import llmemf_lite as L
    from llmemf_lite.enrich import TransformersBackend
    from llmemf_lite.enrich.enrich import generator_key
    from llmemf_lite.enrich.enrich import item_prompts
    from llmemf_lite.enrich.local import load_causal_lm

    if args.threads:
        torch.set_num_threads(args.threads)
    config = L.EnrichConfig()
    ds = L.build_dataset("food_kitchen", "synthetic")
    _, _, prompts = item_prompts(ds, config)
    step = max(len(prompts) // args.items, 1)  # spread over both domains
    prompts = [p for p in prompts[::step] if p is not None][:args.items]
    start = time.perf_counter()
    model, tokenizer = load_causal_lm(config.model, config.gguf_file, "cpu")
    print(f"SmolLM2-135M-Instruct (GGUF) loaded in {time.perf_counter() - start:.1f} s; torch threads "
          f"{torch.get_num_threads()}; max_new_tokens {config.max_new_tokens}; greedy")

    def backend(share_prefix: bool) -> TransformersBackend:
        return TransformersBackend(model, tokenizer, generator_key(config), max_new_tokens=config.max_new_tokens,
                                   repetition_penalty=config.repetition_penalty, share_prefix=share_prefix)

    backend(False).generate(prompts[:2])  # warm-up: first calls pay for allocations
    rows = {"one at a time": measure(backend(False), prompts[:args.single], 1),
            f"batched ({args.batch_size})": measure(backend(False), prompts, args.batch_size),
            f"batched ({args.batch_size}), shared prefix": measure(backend(True), prompts, args.batch_size)}
    base = rows["one at a time"]
    print(f"{'':34s} {'items':>6s} {'tokens':>7s} {'wall s':>7s} {'tokens/s':>9s} {'tok/cpu-s':>10s} "
          f"{'items/s':>8s} {'x wall':>7s} {'x cpu':>6s}")
    for name, r in rows.items():
        print(f"{name:34s} {r['items']:6d} {r['tokens']:7d} {r['wall_s']:7.1f} {r['tokens_per_s']:9.1f} "
              f"{r['tokens_per_cpu_s']:10.1f} {r['items_per_s']:8.2f} {r['tokens_per_s'] / base['tokens_per_s']:7.1f} "
              f"{r['tokens_per_cpu_s'] / base['tokens_per_cpu_s']:6.1f}")
    print(f"load average while measuring: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")


def compare_processes(args) -> None:
    import tempfile
    from dataclasses import replace

    import llmemf_lite as L
    from llmemf_lite.enrich import enrich_dataset

    ds = L.build_dataset("food_kitchen", "synthetic")
    base = L.EnrichConfig(limit=args.items, batch_size=args.batch_size, threads=args.threads)
    setups = {"one process, torch's threads": replace(base, workers=1),
              f"{args.processes} processes, one thread each": replace(base, workers=args.processes)}
    seconds = {name: [] for name in setups}
    for r in range(args.rounds):
        for name, config in (setups.items() if r % 2 == 0 else reversed(setups.items())):
            with tempfile.TemporaryDirectory() as cache:
                run = enrich_dataset(ds, replace(config, cache_dir=cache), progress=False)
            seconds[name].append(run.run_seconds)
            print(f"round {r}: {name}: {run.run_seconds:.1f} s generating {args.items} items "
                  f"(model loaded in {run.load_seconds:.1f} s)", flush=True)
    (a, sa), (b, sb) = seconds.items()
    print(f"\n{b} against {a}: {sum(sa) / sum(sb):.2f}x the items/s (wall clock, {args.rounds} rounds alternating; "
          f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores)")


def compare_dtypes(args) -> None:
    import json
    import tempfile
    from dataclasses import replace

    from llmemf_lite.provenance import commit, machine

    import llmemf_lite as L
    from llmemf_lite.enrich import enrich_dataset

    source = "llmcdsr" if args.data_dir else "synthetic"
    ds = L.build_dataset(args.pair, source, args.data_dir)
    dtypes = [d.strip() for d in args.dtypes.split(",")]
    base = L.EnrichConfig(limit=args.items, batch_size=args.batch_size, workers=1, threads=1)
    seconds, texts, fallbacks = {d: [] for d in dtypes}, {}, {}
    for r in range(args.rounds):
        for dtype in (dtypes if r % 2 == 0 else dtypes[::-1]):
            with tempfile.TemporaryDirectory() as cache:
                run = enrich_dataset(ds, replace(base, dtype=dtype, cache_dir=cache), progress=False)
            seconds[dtype].append(round(run.run_seconds, 1))
            texts[dtype] = {i: run.texts[i] for i, o in enumerate(run.origin) if o == "generated"}
            fallbacks[dtype] = sum(run.reasons[i] is not None for i in texts[dtype])
            print(f"round {r}: {dtype}: {run.run_seconds:.1f} s generating {args.items} items "
                  f"(model loaded in {run.load_seconds:.1f} s)", flush=True)
    first, *others = dtypes
    record = {"machine": machine(), "commit": commit(), "pair": args.pair, "source": source, "items": args.items,
              "batch_size": args.batch_size, "threads": 1, "rounds": args.rounds, "generation_seconds": seconds,
              f"speed_vs_{first}": {d: round(sum(seconds[first]) / sum(seconds[d]), 2) for d in others},
              f"same_text_as_{first}": {d: sum(texts[d].get(i) == t for i, t in texts[first].items()) for d in others},
              "fallbacks": fallbacks,
              "load_average": round(os.getloadavg()[0], 1)}
    out = L.results_dir() / "benchmarks" / f"enrich_dtypes_{args.pair}_{source}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(record, indent=1) + "\n")
    print(json.dumps(record, indent=1), f"\n-> {out}")


if __name__ == "__main__":
    main()
