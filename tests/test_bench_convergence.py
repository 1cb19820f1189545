import sys
from pathlib import Path

import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "benchmarks"))
from bench_convergence import convergence  # noqa: E402


def test_time_to_convergence_sums_the_training_seconds_up_to_the_best_epoch():
    timings = pd.DataFrame([{"label": label, "seed": seed, "epoch": e, "seconds": secs, "sequences_per_s": 100.0}
                            for label, secs in (("sasrec", 10.0), ("llmemf", 20.0)) for seed in (0, 1)
                            for e in range(1, 9)])
    metrics = pd.DataFrame([{"label": label, "seed": seed, "protocol": p, "best_epoch": best}
                            for label, seed, best in (("sasrec", 0, 3), ("sasrec", 1, 5), ("llmemf", 0, 2),
                                                      ("llmemf", 1, 2)) for p in ("sampled", "full")])
    out = convergence(timings, metrics)
    assert [r["seconds_to_best"] for r in out["sasrec"]["runs"]] == [30.0, 50.0]
    assert out["sasrec"]["mean_seconds_to_best"] == 40.0 and out["llmemf"]["mean_seconds_total"] == 160.0
    assert out["llmemf"]["to_best_ratio_to_sasrec"] == 1.0 and out["sasrec"]["runs"][0]["last_epoch"] == 8
