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
    paper = [(o, t) for o, t in per_model["sasrec"] if o.get("item_scale")]
    assert len(per_model["sasrec"]) == 5 and len(paper) == 1               # one more point, at the first lr and p
    assert paper[0][0].items() >= PAPER_SETTINGS["sasrec"].items()
    assert paper[0][0]["dropout"] == 0.2 and paper[0][1] == {"lr": 1e-3}
    assert [(o, t) for o, t in per_model["sasrec"] if not o.get("item_scale")] == per_model["llmemf"]


def test_c2dsr_trains_at_the_projects_width_but_at_its_paper_point():
    specs = grid(TuningConfig(models=("c2dsr", "sasrec")))
    c2dsr = [s.overrides for s in specs if s.model == "c2dsr"]
    assert [o["d"] for o in c2dsr] == [64, 64, 64, 64, 256]               # the paper's width at the paper point
    assert [o.get("max_len") for o in c2dsr] == [None] * 4 + [15]         # the project's window (50) otherwise
    assert all("d" not in s.overrides for s in specs if s.model == "sasrec")   # sasrec's default is already 64


def test_a_grid_of_one_model_more_keeps_the_earlier_models_choices_of_the_same_setting(tmp_path):
    from llmemf_lite.tuning import _with_earlier_models

    path = tmp_path / "choice.json"
    path.write_text(json.dumps({"gru4rec": {"chosen": "gru4rec lr=0.001 dropout=0.2"},
                                "sasrec": {"chosen": "sasrec lr=0.003 dropout=0.2"}}))
    pd.DataFrame({"label": ["gru4rec lr=0.001 dropout=0.2", "c2dsr lr=0.001 dropout=0.2"]}).to_csv(
        tmp_path / "metrics.csv", index=False)         # sasrec's runs are gone (replaced by another setting's)
    merged = _with_earlier_models(path, {"c2dsr": {"chosen": "c2dsr lr=0.001 dropout=0.2"}})
    assert list(merged) == ["gru4rec", "c2dsr"]
    assert _with_earlier_models(tmp_path / "absent.json", {"c2dsr": {}}) == {"c2dsr": {}}


def test_successive_halving_keeps_the_best_at_the_rung_and_scores_a_longer_run_as_if_stopped_there():
    from llmemf_lite.tuning import choose, rung_survivors

    cfg = TuningConfig(models=("gru4rec",), rung_epochs=2, keep=2, epochs=10, patience=2)
    specs = grid(cfg)                                                   # four configurations
    curves = {specs[0].label: [0.1, 0.2, 0.9, 0.95],                    # best late: scored 0.2 at the rung
              specs[1].label: [0.3, 0.25], specs[2].label: [0.1, 0.28], specs[3].label: [0.05, 0.1]}
    history = pd.DataFrame([{"label": label, "seed": 0, "epoch": e + 1, "valid_score": v}
                            for label, vals in curves.items() for e, v in enumerate(vals)])
    survivors = rung_survivors(history, specs, cfg)
    assert [s.label for s in survivors] == [specs[1].label, specs[2].label]
    on = history[history["label"].isin([specs[1].label, specs[2].label])]
    longer = pd.DataFrame([{"label": specs[2].label, "seed": 0, "epoch": e, "valid_score": v}
                           for e, v in ((3, 0.31), (4, 0.3), (5, 0.29))])
    choice = choose(pd.concat([history[~history["label"].isin({s.label for s in survivors})], on, longer]),
                    specs, cfg, survivors)["gru4rec"]
    assert choice["chosen"] == specs[2].label
    rows = {r["label"]: r for r in choice["grid"]}
    assert rows[specs[0].label]["rung_NDCG@10"] == 0.2 and not rows[specs[0].label]["went_on"]
    assert "valid_NDCG@10" not in rows[specs[0].label]
    assert rows[specs[2].label]["valid_NDCG@10"] == 0.31 and rows[specs[2].label]["best_epoch"] == 3


@pytest.mark.slow
def test_the_grid_records_its_scores_and_choice_and_the_final_run_reuses_seed_0(home):
    cfg = TuningConfig(source="synthetic", data_dir=None, synthetic=SMALL, models=("gru4rec",), lrs=(1e-3, 3e-3),
                       dropouts=(0.2,), epochs=3, patience=1, rung_epochs=1, keep=1, final_seeds=(0, 1),
                       n_negatives=99, workers=1)
    choice = run_grid(cfg)
    saved = json.loads((home / "results" / "tuning" / "food_kitchen_synthetic" / "choice.json").read_text())
    assert saved == choice and [r["label"] for r in saved["gru4rec"]["grid"]] == ["gru4rec lr=0.001 dropout=0.2",
                                                                                  "gru4rec lr=0.003 dropout=0.2"]
    went_on = [r for r in saved["gru4rec"]["grid"] if r["went_on"]]
    assert len(went_on) == 1 and saved["gru4rec"]["chosen"] == went_on[0]["label"]
    best = went_on[0]
    assert best["rung_NDCG@10"] == max(r["rung_NDCG@10"] for r in saved["gru4rec"]["grid"])
    rung = pd.read_csv(home / "results" / "tuning_rung" / "food_kitchen_synthetic" / "history.csv")
    assert set(rung["label"]) == {r["label"] for r in saved["gru4rec"]["grid"]} and rung["epoch"].max() == 1
    run_final(cfg)
    final = pd.read_csv(home / "results" / "04_train" / "food_kitchen_synthetic" / "metrics.csv")
    assert set(final["label"]) == {"pop", "gru4rec"} and set(final["seed"]) == {0, 1}
    tuned = pd.read_csv(home / "results" / "tuning" / "food_kitchen_synthetic" / "metrics.csv")
    pick = lambda f, label: f[(f["label"] == label) & (f["seed"] == 0)].sort_values(["protocol", "domain"])
    assert pick(final, "gru4rec")["NDCG@10"].tolist() == pick(tuned, best["label"])["NDCG@10"].tolist()


def test_ablation_variants_take_the_full_models_tuned_configuration_and_keep_their_own_switches():
    from llmemf_lite.experiment import ExperimentConfig, ablation_specs
    from llmemf_lite.tuning import tuned_experiment, tuned_variants

    cfg = TuningConfig()
    choice = {"llmemf": {"chosen": "llmemf lr=0.003 dropout=0.5"}}
    variants = tuned_variants(ablation_specs(), choice, cfg)
    assert all(v.train == {"lr": 3e-3} and v.overrides["dropout"] == 0.5 and v.overrides["n_negatives"] == 2000
               for v in variants)
    assert next(v for v in variants if v.label == "w/o text").overrides["use_text"] is False
    exp = tuned_experiment(ExperimentConfig(name="05_ablations", epochs=4), cfg)
    assert (exp.epochs, exp.patience, exp.batch_size, exp.name) == (40, 5, 128, "05_ablations")


def test_a_model_none_of_whose_grid_points_run_is_recorded_with_why_and_left_out_of_the_final_runs():
    from llmemf_lite.tuning import final_specs, not_run

    cfg = TuningConfig(models=("llmemf_id", "ifcdsr"))
    specs = grid(cfg)
    skipped = {s.label: "not run: the same model as '" + s.label.replace("ifcdsr", "llmemf_id") + "' on these data"
               for s in specs if s.model == "ifcdsr"}                 # IFCDSR without images: LLM-EMF ID-only
    record = not_run(specs, skipped, cfg)
    assert list(record) == ["ifcdsr"] and "the same model as 'llmemf_id lr=0.001 dropout=0.2'" in \
        record["ifcdsr"]["not_run"]
    assert not_run(specs, dict(list(skipped.items())[:2]), cfg) == {}  # some of its points ran: it is tuned
    choice = {"llmemf_id": {"chosen": "llmemf_id lr=0.001 dropout=0.2"}, **record}
    assert [s.label for s in final_specs(choice, cfg)] == ["pop", "llmemf_id"]
