"""Peak memory of reading a raw Amazon review file: streaming vs loading it whole (a stand-alone script, not a test).

Generates a 2014-style pair in a temporary folder: a 1,000,000-line `reviews_Movies_and_TV_5.json.gz`, a 300,000-line
`reviews_Books_5.json.gz` and both metadata files (Python literals), then measures, each in a fresh process, how far the peak resident memory rises above the memory in use when the
phase starts (Linux VmHWM after resetting it through /proc/self/clear_refs; resource.getrusage elsewhere), during:
  1. streaming the 1M-line file line by line (`amazon.iter_records`), keeping nothing;
  2. streaming it into the importer's compact arrays (`amazon.read_reviews`: what the importer keeps per review);
  3. the naive way: the whole file as a list of dicts (`[json.loads(l) for l in gzip.open(...)]`);
  4. the whole importer (`import_amazon`: both categories, k-core, split, metadata).
Run: .venv/bin/python benchmarks/bench_amazon_stream.py [n_lines]
"""
from __future__ import annotations

import gzip
import json
import sys
import resource
import subprocess
import tempfile
import time
from pathlib import Path

import numpy as np

from llmemf_lite.data.amazon import AmazonConfig, Interactions, import_amazon, iter_records, read_reviews


def generate(folder: Path, n_x: int, n_y: int, seed: int = 0) -> None:
    rng = np.random.default_rng(seed)
    n_users, items = 50_000, (20_000, 30_000)
    for cat, n, n_items, prefix in (("Movies_and_TV", n_x, items[0], "M"), ("Books", n_y, items[1], "B")):
        users = rng.integers(0, n_users, n)
        item = np.minimum(rng.zipf(1.3, n), n_items) - 1
        times = rng.integers(1_000_000_000, 1_400_000_000, n)
        with gzip.open(folder / f"reviews_{cat}_5.json.gz", "wt", encoding="utf-8", compresslevel=1) as f:
            for u, i, t in zip(users, item, times):
                f.write(json.dumps({"reviewerID": f"A{u:09d}", "asin": f"{prefix}{i:09d}", "reviewerName": "Reader",
                                    "helpful": [0, 0], "reviewText": "A fine product, would buy again. " * 4,
                                    "overall": 5.0, "summary": "Good", "unixReviewTime": int(t),
                                    "reviewTime": "01 1, 2014"}) + "\n")
        with gzip.open(folder / f"meta_{cat}.json.gz", "wt", encoding="utf-8", compresslevel=1) as f:
            for i in range(n_items):
                f.write(repr({"asin": f"{prefix}{i:09d}", "title": f"Title {i}", "price": 9.99,
                              "imUrl": f"http://example.com/{i}.jpg", "categories": [[cat]]}) + "\n")


PHASES = {
    "stream": "1. stream the {n:,}-line file, keep nothing",
    "compact": "2. stream the {n:,}-line file into compact arrays",
    "naive": "3. naive: the {n:,}-line file as a list of dicts",
    "import": "4. import_amazon: {total:,} reviews + metadata, 5-core, LOO",
}


def _status_kib(field: str) -> int | None:
    try:
        for line in open("/proc/self/status"):
            if line.startswith(field + ":"):
                return int(line.split()[1])
    except OSError:
        return None
    return None


def reset_peak_rss() -> int:
    """Reset the kernel's peak-RSS mark to the current RSS (Linux: write 5 to /proc/self/clear_refs), so that the
    imports' transient peak does not hide the phase's; return the current RSS in KiB."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
    except OSError:
        pass
    return _status_kib("VmRSS") or resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def peak_rss() -> int:
    return _status_kib("VmHWM") or resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def run_phase(phase: str, folder: Path) -> None:
    """Runs in a fresh process: prints the growth of peak RSS (resource.getrusage) over the phase, and its time."""
    big = folder / "reviews_Movies_and_TV_5.json.gz"
    before = reset_peak_rss()
    start = time.perf_counter()
    if phase == "stream":
        result = sum(1 for _ in iter_records(big, "json"))
    elif phase == "compact":
        result = Interactions()
        read_reviews(big, 0, result)
    elif phase == "naive":
        with gzip.open(big, "rt", encoding="utf-8") as f:
            result = [json.loads(line) for line in f]
    else:
        result = import_amazon(folder, "movie_book", AmazonConfig(k_core=5), progress=False)
    seconds = time.perf_counter() - start
    peak = peak_rss()
    print(json.dumps({"peak_growth_mib": (peak - before) / 1024, "seconds": seconds}))
    del result


def main(n_lines: int = 1_000_000) -> None:
    n_small = 300_000
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        t0 = time.perf_counter()
        generate(folder, n_lines, n_small)
        big = folder / "reviews_Movies_and_TV_5.json.gz"
        print(f"generated {n_lines:,} + {n_small:,} review lines ({big.stat().st_size / 2**20:.1f} MiB gzip, "
              f"{sum(1 for _ in gzip.open(big, 'rb')):,} lines in the big file) in {time.perf_counter() - t0:.0f} s")
        peaks = {}
        for phase, label in PHASES.items():
            out = subprocess.run([sys.executable, __file__, "--phase", phase, str(folder)], capture_output=True,
                                 text=True, check=True).stdout
            r = json.loads(out.strip().splitlines()[-1])
            peaks[phase] = r["peak_growth_mib"]
            print(f"{label.format(n=n_lines, total=n_lines + n_small):<60} peak RSS +{r['peak_growth_mib']:7.1f} MiB"
                  f"   {r['seconds']:6.1f} s", flush=True)
        print(f"ratio naive / streaming into arrays: {peaks['naive'] / max(peaks['compact'], 1):.1f}x; "
              f"naive / stream only: {peaks['naive'] / max(peaks['stream'], 1):.0f}x")


if __name__ == "__main__":
    if len(sys.argv) > 2 and sys.argv[1] == "--phase":
        run_phase(sys.argv[2], Path(sys.argv[3]))
    else:
        main(int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000)
