import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from llmemf_lite.models import build_model
from llmemf_lite.train import TrainConfig, length_bucketed_batches, read_meta, train_model
from tests.helpers_small import ground_truth_features, small_world

ROOT = Path(__file__).resolve().parent.parent


def _train(run_dir, epochs, resume=True, name="llmemf", device="cpu", **overrides):
    ds, train, valid, targets, cands = small_world()
    torch.manual_seed(0)
    model = build_model(name, ds.space, ground_truth_features(ds), max_len=20, **overrides)
    cfg = TrainConfig(epochs=epochs, batch_size=64, patience=10, progress=False, resume=resume, device=device)
    return model, train_model(model, train, valid, targets, cands, ds.space, ds.pair.domains, cfg, run_dir)


def test_cpu_training_repeats_bit_for_bit_and_keeps_best(tmp_path):
    m1, r1 = _train(tmp_path / "a", 2)
    m2, r2 = _train(tmp_path / "b", 2)
    assert r1.history["train_loss"].tolist() == r2.history["train_loss"].tolist()
    for (k, a), (_, b) in zip(m1.state_dict().items(), m2.state_dict().items()):
        assert torch.equal(a, b), k
    assert (tmp_path / "a" / "best.safetensors").is_file() and (tmp_path / "a" / "history.csv").is_file()
    assert read_meta(tmp_path / "a" / "best.safetensors")["epoch"] == r1.best_epoch
    assert r1.best_score == pytest.approx(r1.history["valid_score"].max())


def test_interrupted_training_resumes_exactly(tmp_path):
    _, full = _train(tmp_path / "full", 3)
    _, cut = _train(tmp_path / "cut", 1)            # "killed" after epoch 1: its last.safetensors remains
    _, resumed = _train(tmp_path / "cut", 3)        # the same command again continues at epoch 2
    assert resumed.history["epoch"].tolist() == [1, 2, 3]
    # epoch 1 was read back from the checkpoint, not trained again: its measured wall time is the first run's
    assert resumed.history["seconds"].iloc[0] == cut.history["seconds"].iloc[0]
    np.testing.assert_array_equal(resumed.history["train_loss"], full.history["train_loss"])
    np.testing.assert_array_equal(resumed.history["valid_score"], full.history["valid_score"])


def test_a_run_resumes_where_the_device_asked_for_resolves_to_the_same_one(tmp_path, capsys):
    _, cut = _train(tmp_path / "cut", 1, device="cpu")
    _, resumed = _train(tmp_path / "cut", 2, device="auto" if not torch.cuda.is_available() else "cpu")
    assert "written by another" not in capsys.readouterr().out
    assert resumed.history["seconds"].iloc[0] == cut.history["seconds"].iloc[0]      # epoch 1 read back


def test_training_improves_over_the_untrained_model(tmp_path):
    ds, train, valid, targets, cands = small_world()
    model, result = _train(tmp_path / "r", 4)
    first, best = result.history["valid_score"].iloc[0], result.best_score
    assert result.history["train_loss"].iloc[-1] < result.history["train_loss"].iloc[0]
    assert best > 0.1 and best >= first


def test_length_buckets_cover_every_row_once():
    lengths = np.random.default_rng(0).integers(1, 50, size=1000)
    batches = length_bucketed_batches(lengths, 64, np.random.default_rng(1))
    flat = np.concatenate(batches)
    assert sorted(flat.tolist()) == list(range(1000))
    spread = np.mean([lengths[b].max() - lengths[b].min() for b in batches])
    assert spread < 10          # a random batch would spread over ~45


def test_a_last_batch_too_small_to_shard_joins_the_one_before():
    lengths = np.random.default_rng(0).integers(1, 50, size=129)      # 129 = 2 * 64 + 1
    plain = length_bucketed_batches(lengths, 64, np.random.default_rng(1))
    assert sorted(map(len, plain)) == [1, 64, 64]
    batches = length_bucketed_batches(lengths, 64, np.random.default_rng(1), min_size=2)
    assert sorted(map(len, batches)) == [64, 65]                     # no process gets an empty shard
    assert sorted(np.concatenate(batches).tolist()) == list(range(129))


@pytest.mark.slow
def test_two_process_ddp_reaches_the_single_process_metrics(tmp_path):
    script = ROOT / "tests" / "ddp_train_script.py"
    subprocess.run([sys.executable, str(script), str(tmp_path / "one.json"), str(tmp_path / "one")], check=True,
                   cwd=ROOT, timeout=600)
    subprocess.run([sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port",
                    "29517", str(script), str(tmp_path / "two.json"), str(tmp_path / "two")], check=True,
                   cwd=ROOT, timeout=600)
    one, two = json.loads((tmp_path / "one.json").read_text()), json.loads((tmp_path / "two.json").read_text())
    np.testing.assert_allclose(two["ndcg10"], one["ndcg10"], atol=0.03)
    np.testing.assert_allclose(two["loss"], one["loss"], rtol=0.05)


def test_a_checkpoint_of_another_model_config_is_not_resumed(tmp_path, capsys):
    _train(tmp_path / "run", 1)
    _, result = _train(tmp_path / "run", 1, fusion="representation")
    assert "written by another model or training configuration" in capsys.readouterr().out
    assert result.history["epoch"].tolist() == [1]   # trained, not loaded (loading would have failed on shapes)
    assert read_meta(tmp_path / "run" / "last.safetensors")["model"]["config"]["fusion"] == "representation"
