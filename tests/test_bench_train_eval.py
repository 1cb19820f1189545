import subprocess
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "benchmarks"))
from bench_train_eval import NEAR_TIE, rank_agreement  # noqa: E402
from llmemf_lite.provenance import commit  # noqa: E402


def test_a_rank_may_differ_between_the_two_evaluation_paths_only_at_a_near_tie():
    """Case 0 agrees; case 1 differs with a candidate within NEAR_TIE of the target (float rounding may break such
    a tie either way); case 2 differs with every candidate far from the target, which the benchmark refuses."""
    batched = (np.array([3, 5, 7]), np.array([0, 0, 0]))
    looped = (np.array([3, 4, 9]), np.array([0, 1, 0]))
    gaps = np.array([0.3, NEAR_TIE / 10, 0.2])
    same, near_tie = rank_agreement(batched, looped, gaps)
    assert same.tolist() == [True, False, False] and near_tie.tolist() == [False, True, False]
    assert not (same | near_tie).all()


def test_the_recorded_commit_is_dirty_only_where_code_changed_not_where_a_benchmark_wrote_its_results(tmp_path):
    """`make benchmarks` runs one benchmark after another; the first one's JSON in results/ must not mark the
    second one's commit "-dirty"."""
    def git(*args):
        return subprocess.run(["git", *args], cwd=tmp_path, capture_output=True, text=True, check=True).stdout.strip()
    git("init", "-q")
    (tmp_path / "results").mkdir()
    (tmp_path / "code.py").write_text("x = 1\n")
    (tmp_path / "results" / "bench.json").write_text("{}\n")
    git("add", ".")
    git("-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "first")
    head = git("rev-parse", "--short", "HEAD")
    assert commit(tmp_path) == head
    (tmp_path / "results" / "bench.json").write_text('{"sequences_per_s": {}}\n')
    assert commit(tmp_path) == head
    (tmp_path / "code.py").write_text("x = 2\n")
    assert commit(tmp_path) == f"{head}-dirty"


def test_a_run_at_other_negatives_has_its_own_file_and_says_its_negatives_in_the_table(tmp_path, monkeypatch):
    """--negatives N writes train_eval_<pair>_<source>_negatives<N>.json beside the default run's file; the
    rendered table names the negatives it was measured at (a run of the default, written before the field existed,
    names none)."""
    import json

    from llmemf_lite.report import benchmark_train_eval

    run = {"command": "benchmarks/bench_train_eval.py --source llmcdsr", "machine": "m", "commit": "c",
           "batch_size": 128, "steps": 3, "channels": ["id", "text"],
           "sequences_per_s": {"sasrec": 10.0, "llmemf": 4.0},
           "ratio_to_sasrec": {"sasrec": 1.0, "llmemf": 0.4}, "eval_cases": 3, "eval_batched_cases_per_s": 9.0,
           "eval_per_case_cases_per_s": 1.0, "eval_ratio": 9.0, "eval_same_ranks": 3}
    monkeypatch.setenv("LLMEMF_HOME", str(tmp_path))   # the project root the table's links are relative to
    (tmp_path / "benchmarks").mkdir()
    (tmp_path / "benchmarks" / "train_eval_fk_llmcdsr.json").write_text(json.dumps(run))
    (tmp_path / "benchmarks" / "train_eval_fk_llmcdsr_negatives2000.json").write_text(json.dumps(
        {**run, "negatives": 2000, "command": run["command"] + " --negatives 2000"}))
    text = benchmark_train_eval(tmp_path)
    default, other = text.split("\n\n**")[0], text.split("\n\n**")[-1]
    assert default.startswith("**fk_llmcdsr** (channels id, text; batch 128, 3 steps") and "negatives" not in default
    assert other.startswith("fk_llmcdsr_negatives2000** (channels id, text; batch 128, 2,000 sampled negatives, "
                            "3 steps")
    assert "| llmemf | 4 | 0.40 |" in other
