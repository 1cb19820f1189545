import json

import pandas as pd
import pytest

from llmemf_lite.tuning import TuningConfig, grid, run_final, run_grid
from tests.helpers_small import SMALL


@pytest.fixture
def home(tmp_path, monkeypatch):
    monkeypatch.setenv("LLMEMF_HOME", str(tmp_path))
    monkeypatch.setenv("LLMEMF_ARTIFACTS", str(tmp_path / "artifacts"))
    return tmp_path


def test_every_model_gets_the_same_grid_and_its_paper_settings_as_grid_points():
    from llmemf_lite.tuning import PAPER_SETTINGS

    cfg = TuningConfig(models=("gru4rec", "llmemf", "sasrec"))
    specs = grid(cfg)
    per_model = {m: [(s.overrides, s.train) for s in specs if s.model == m] for m in cfg.models}
    assert len(per_model["llmemf"]) == 4 and per_model["gru4rec"] == per_model["llmemf"]
    assert {s.train["lr"] for s in specs} == {1e-3, 3e-3} and {s.overrides["dropout"] for s in specs} == {0.2, 0.5}
    assert {s.overrides["n_negatives"] for s in specs} == {2000}          # one objective for every model
    paper = [o for o, _ in per_model["sasrec"] if o.get("item_scale")]
    assert len(per_model["sasrec"]) == 8 and len(paper) == 4
    assert all(o.items() >= PAPER_SETTINGS["sasrec"].items() for o in paper)
    assert [o for o, _ in per_model["sasrec"] if not o.get("item_scale")] == [o for o, _ in per_model["llmemf"]]


@pytest.mark.slow
def test_the_grid_records_its_scores_and_choice_and_the_final_run_reuses_seed_0(home):
    cfg = TuningConfig(source="synthetic", data_dir=None, synthetic=SMALL, models=("gru4rec",), lrs=(1e-3, 3e-3),
                       dropouts=(0.2,), epochs=2, patience=1, final_seeds=(0, 1), n_negatives=99, workers=1)
    choice = run_grid(cfg)
    saved = json.loads((home / "results" / "tuning" / "food_kitchen_synthetic" / "choice.json").read_text())
    assert saved == choice and [r["label"] for r in saved["gru4rec"]["grid"]] == ["gru4rec lr=0.001 dropout=0.2",
                                                                                  "gru4rec lr=0.003 dropout=0.2"]
    best = max(saved["gru4rec"]["grid"], key=lambda r: r["valid_NDCG@10"])
    assert saved["gru4rec"]["chosen"] == best["label"]
    run_final(cfg)
    final = pd.read_csv(home / "results" / "04_train" / "food_kitchen_synthetic" / "metrics.csv")
    assert set(final["label"]) == {"pop", "gru4rec"} and set(final["seed"]) == {0, 1}
    tuned = pd.read_csv(home / "results" / "tuning" / "food_kitchen_synthetic" / "metrics.csv")
    pick = lambda f, label: f[(f["label"] == label) & (f["seed"] == 0)].sort_values(["protocol", "domain"])
    assert pick(final, "gru4rec")["NDCG@10"].tolist() == pick(tuned, best["label"])["NDCG@10"].tolist()
