import json
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest

from llmemf_lite.claims import effect, paper_comparison
from llmemf_lite.evaluate import METRICS, expected_rank_metrics
from llmemf_lite.experiment import ExperimentConfig, default_specs, mean_std_table, run_experiment
from tests.helpers_small import SMALL


@pytest.fixture
def home(tmp_path, monkeypatch):
    monkeypatch.setenv("LLMEMF_HOME", str(tmp_path))
    monkeypatch.setenv("LLMEMF_ARTIFACTS", str(tmp_path / "artifacts"))
    return tmp_path


@pytest.mark.slow
def test_experiment_writes_recomputable_results(home):
    cfg = ExperimentConfig(name="t", synthetic=SMALL, n_negatives=99, seeds=(0, 1), epochs=1, max_len=20,
                           progress=False)
    out = run_experiment(cfg, default_specs(["pop", "sasrec", "llmemf_id"]))
    folder = home / "results" / "t" / "food_kitchen_synthetic"
    assert {p.name for p in folder.iterdir()} >= {"metrics.csv", "ranks.csv.gz", "history.csv", "timings.csv",
                                                  "summary.md"}
    timings, history = pd.read_csv(folder / "timings.csv"), pd.read_csv(folder / "history.csv")
    assert len(timings) == len(history) == 2 * 2 and (timings["seconds"] > 0).all()   # 2 trained variants x seeds
    assert "seconds" not in history and "valid_score" not in timings
    metrics, ranks = pd.read_csv(folder / "metrics.csv"), pd.read_csv(folder / "ranks.csv.gz")
    assert len(metrics) == 3 * 2 * 2 * 2          # variants x seeds x protocols x domains
    # warm: the target occurs in a training sequence
    from llmemf_lite.data.build import build_dataset
    from llmemf_lite.data.dataset import items_in_training

    ds = build_dataset("food_kitchen", "synthetic", None, SMALL)
    warm = items_in_training(list(ds.split("train")["items"]), ds.space.n_items)
    assert ranks["warm"].tolist() == warm[ranks["target"]].tolist()
    assert len(ranks) == 3 * 2 * 2 * 60           # ... x test cases
    # every number in metrics.csv follows from the per-case ranks
    per_case = expected_rank_metrics(ranks["greater"], ranks["ties"])
    recomputed = ranks.assign(**per_case).groupby(["label", "seed", "protocol", "domain"])[list(METRICS)].mean()
    names = {0: "food", 1: "kitchen"}
    for row in metrics.itertuples():
        ref = recomputed.loc[(row.label, row.seed, row.protocol, {v: k for k, v in names.items()}[row.domain])]
        assert row.MRR == pytest.approx(ref["MRR"], abs=1e-6)
        assert getattr(row, "_8") == pytest.approx(ref["NDCG@10"], abs=1e-6)   # NDCG@10 column
    # the test candidates are saved once and reused: a second run of popularity gives the same numbers
    again = run_experiment(cfg, default_specs(["pop"]))
    pd.testing.assert_frame_equal(again["metrics"].reset_index(drop=True),
                                  out["metrics"][out["metrics"]["label"] == "pop"].reset_index(drop=True))
    table = mean_std_table(out["metrics"], "full")
    assert table.shape == (6, len(METRICS)) and "±" in table.iloc[0, 0]
    # domains in the pair's order (X first), not alphabetically: a movie_book table starts with movie
    renamed = out["metrics"].replace({"domain": {"food": "movie", "kitchen": "book"}})
    assert list(dict.fromkeys(mean_std_table(renamed, "full").index.get_level_values("domain"))) == ["movie", "book"]
    assert "sasrec" in (folder / "summary.md").read_text()


@pytest.mark.slow
def test_worker_processes_give_the_numbers_of_runs_in_this_process(home):
    from dataclasses import replace

    import torch

    cfg = ExperimentConfig(name="w", synthetic=SMALL, n_negatives=99, seeds=(0, 1), epochs=1, max_len=20,
                           progress=False, workers=2)
    specs = default_specs(["sasrec", "pop", "llmemf_id"])
    parallel = run_experiment(cfg, specs)
    assert list((home / "artifacts" / "runs").rglob("workers.log"))    # worker messages went to the log
    for ckpt in (home / "artifacts" / "runs").rglob("*.safetensors"):  # retrain, do not resume
        ckpt.unlink()
    threads = torch.get_num_threads()
    serial = run_experiment(replace(cfg, workers=1), specs)
    assert torch.get_num_threads() == threads                          # restored after the one-thread runs
    # collected in (variant, seed) order, and bit for bit the numbers of the one-thread runs in this process
    assert parallel["metrics"][["label", "seed"]].drop_duplicates().values.tolist() == \
        [[label, seed] for label in ("sasrec", "pop", "llmemf_id") for seed in (0, 1)]
    pd.testing.assert_frame_equal(parallel["ranks"], serial["ranks"])
    pd.testing.assert_frame_equal(parallel["metrics"], serial["metrics"])
    pd.testing.assert_frame_equal(parallel["history"].drop(columns=["seconds", "sequences_per_s"]),
                                  serial["history"].drop(columns=["seconds", "sequences_per_s"]))


def test_runs_are_handed_to_the_workers_longest_first():
    from llmemf_lite.experiment import ablation_specs, expected_cost, longest_first

    specs = default_specs(["pop", "sasrec"]) + ablation_specs(variants="extended")
    jobs = [(spec, seed) for spec in specs for seed in (0, 1)]
    order = longest_first(jobs)
    assert sorted(order) == list(range(len(jobs)))
    costs = [expected_cost(jobs[i][0]) for i in order]
    assert costs == sorted(costs, reverse=True)
    labels = [jobs[i][0].label for i in order]
    # the variants with every channel first, in their given order; popularity (no training) last, SASRec before it
    assert labels[:6] == ["LLM-EMF (full)"] * 2 + ["w/o LLM enrichment (titles)"] * 2 + \
        ["w/o cross-domain attention"] * 2
    assert labels[-2:] == ["pop", "pop"] and labels[-4:-2] == ["sasrec", "sasrec"]
    assert expected_cost(default_specs(["llmemf_id"])[0]) > expected_cost(default_specs(["sasrec"])[0])


def test_the_tuning_grid_hands_c2dsr_at_its_paper_width_to_the_workers_first():
    # its paper point (d = 256) trains about 30x SASRec per epoch on the real data: handed out last (as when every
    # model but LLM-EMF counted as SASRec), it ran alone for most of an hour with the other core idle
    from llmemf_lite.experiment import longest_first
    from llmemf_lite.tuning import TuningConfig, grid

    specs = grid(TuningConfig())
    labels = [specs[i].label for i in longest_first([(s, 0) for s in specs])]
    assert labels[0] == "c2dsr lr=0.001 dropout=0.2 paper"
    first_baseline = min(labels.index(f"{m} lr=0.001 dropout=0.2") for m in ("gru4rec", "sasrec", "bert4rec"))
    assert all(labels.index(label) < first_baseline for label in labels if label.startswith("c2dsr"))
    assert labels.index("bert4rec lr=0.001 dropout=0.2") < labels.index("gru4rec lr=0.001 dropout=0.2")


def test_workers_are_one_on_a_gpu_and_at_most_the_jobs():
    from llmemf_lite.experiment import _workers

    import torch

    assert _workers(ExperimentConfig(device="cuda", workers=4), 10) == 1
    assert _workers(ExperimentConfig(device="auto", workers=4), 10) == (1 if torch.cuda.is_available() else 4)
    assert _workers(ExperimentConfig(workers=4), 3) == 3
    assert _workers(ExperimentConfig(workers=1), 10) == 1
    assert _workers(ExperimentConfig(workers=0), 0) == 1


def _frame(values_a, values_b):
    rows = [{"label": lab, "seed": s, "protocol": "sampled", "domain": "food", "NDCG@10": v}
            for lab, vals in (("A", values_a), ("B", values_b)) for s, v in enumerate(vals)]
    return pd.DataFrame(rows)


@pytest.mark.parametrize("a, b, verdict", [([0.30, 0.31, 0.29], [0.20, 0.21, 0.19], "holds"),
                                           ([0.20, 0.25, 0.15], [0.21, 0.16, 0.26], "within noise"),
                                           ([0.10, 0.11, 0.09], [0.20, 0.21, 0.19], "does not hold")])
def test_claim_verdicts(a, b, verdict):
    eff = effect(_frame(a, b), "A", "B")
    assert eff["verdict"].tolist() == [verdict]
    assert eff["effect"].iloc[0] == pytest.approx(np.mean(a) - np.mean(b))
    assert eff["spread"].iloc[0] == pytest.approx(np.hypot(np.std(a), np.std(b)))


def test_paper_comparison_says_what_was_not_measured(tmp_path):
    (tmp_path / "results" / "04_train" / "x_y").mkdir(parents=True)
    frame = _frame([0.3, 0.31], [0.2, 0.21]).replace({"A": "llmemf", "B": "sasrec"})
    frame.to_csv(tmp_path / "results" / "04_train" / "x_y" / "metrics.csv", index=False)
    text = paper_comparison(tmp_path / "results", "x_y")
    assert "| LLM-EMF beats SASRec" in text and "holds" in text
    assert "LLM-EMF beats C2DSR (cross-domain baseline): not measured (no `llmemf` and `c2dsr` rows in" in text
    assert "images help: not measured (notebook 05 has not been run on these data: no " \
           "`results/05_ablations/x_y/metrics.csv`)" in text


def test_default_specs_apply_llmemf_overrides_to_llmemf_only():
    specs = default_specs(["sasrec", "llmemf"], "minilm", "title", {"fusion": "representation"})
    assert [s.overrides for s in specs] == [{}, {"fusion": "representation"}]
    assert all(s.text_source == "title" for s in specs)


def test_the_standard_ablations_are_the_studys_seven_and_extended_adds_every_single_channel():
    from llmemf_lite.experiment import ablation_experiment, ablation_specs

    standard = ablation_specs()
    assert [s.label for s in standard] == ["LLM-EMF (full)", "w/o image", "w/o text", "w/o LLM enrichment (titles)",
                                           "w/o cross-domain attention", "ID only", "CLIP text instead of MiniLM"]
    assert standard[3].text_source == "title" and standard[6].text_encoder == "clip"
    specs = {s.label: s for s in ablation_specs(variants="extended")}
    assert list(specs)[:7] == [s.label for s in standard] and len(specs) == 11
    assert (ablation_experiment("standard"), ablation_experiment("extended")) == ("05_ablations",
                                                                                 "05_ablations_extended")
    with pytest.raises(ValueError, match="variants must be one of"):
        ablation_specs(variants="all")
    assert specs["text only"].overrides == {"use_id": False, "use_image": False}
    assert specs["image only"].overrides == {"use_id": False, "use_text": False}
    assert specs["representation-level fusion"].overrides == {"fusion": "representation"}
    assert specs["one network over the fused item (score fusion)"].overrides == {"fusion": "score"}
    assert specs["LLM-EMF (full)"].overrides == {}


def test_variants_the_data_cannot_run_are_skipped_with_a_reason_and_the_claim_says_so(home):
    """Real Food-Kitchen has no images: "image only" has no channel left, "w/o image" is the full model again, and
    "ID only" is "w/o text" again. They are not run, and the paper comparison says why instead of a zero effect."""
    from llmemf_lite.experiment import RunSpec, _write, ablation_specs, runnable_specs
    from llmemf_lite.models import ItemFeatures

    def no_images(spec):   # text for every item, no image anywhere (what load_item_features gives on real data)
        f = ItemFeatures()
        if spec.overrides.get("use_text", True):
            f.add("text", np.zeros((5, 4), np.float32), np.ones(5, bool))
        return f

    cfg = ExperimentConfig(name="05_ablations")
    specs = ablation_specs(variants="extended")
    kept, skipped = runnable_specs(specs, no_images, cfg)
    assert set(skipped) == {"w/o image", "image only", "ID only"}
    assert "'LLM-EMF (full)'" in skipped["w/o image"] and "'w/o text'" in skipped["ID only"]
    assert "absent" in skipped["image only"] and len(kept) == len(specs) - 3
    with_images = lambda spec: no_images(spec).add("image", np.zeros((5, 4), np.float32), np.ones(5, bool))
    assert runnable_specs(specs, with_images, cfg) == (specs, {})       # the synthetic world runs all ten
    # a variant that differs only in its training settings (a tuning grid's learning rates) is another run
    lrs = [RunSpec(f"lr={lr}", "llmemf", {"use_image": False}, train={"lr": lr}) for lr in (1e-3, 3e-3)]
    assert runnable_specs(lrs, no_images, cfg) == (lrs, {})

    # the comparison names the reason
    rows = [{"label": s.label, "seed": seed, "protocol": p, "domain": d, "cases": 1, **{m: 0.1 for m in METRICS},
             "best_epoch": 1} for s in kept for seed in (0, 1) for p in ("sampled", "full") for d in ("food", "kitchen")]
    parts = {"metrics": pd.DataFrame(rows), "ranks": pd.DataFrame(columns=["label", "seed"]),
             "history": pd.DataFrame()}
    folder = home / "results" / "05_ablations" / "food_kitchen_synthetic"
    _write(cfg, kept, {**parts, "skipped": skipped}, {})
    text = paper_comparison(home / "results", "food_kitchen_synthetic")
    assert "images help: not measured (`w/o image` not run: the same model as 'LLM-EMF (full)'" in text
    assert "ID + text + image beats image alone: not measured (notebook 05 with `-p variants extended` has not " \
           "been run on these data: no `results/05_ablations_extended/food_kitchen_synthetic/metrics.csv`)" in text
    _write(replace(cfg, name="05_ablations_extended"), kept, {**parts, "skipped": skipped}, {})
    text = paper_comparison(home / "results", "food_kitchen_synthetic")
    assert "ID + text + image beats image alone: not measured (`image only` not run: every channel" in text
    assert "Variants not run on these data" in (folder / "summary.md").read_text()
    _write(cfg, kept[:1], {**parts, "skipped": {}}, {})       # a run of one variant keeps the others' reasons
    assert set(json.loads((folder / "skipped.json").read_text())) == set(skipped)
    summary = (folder / "summary.md").read_text()
    assert "Variants not run on these data" in summary
    for spec in kept:                                         # and says what every variant in its tables is
        assert f"- **{spec.label}**: model `llmemf`, overrides `{spec.overrides}`" in summary
    _write(cfg, specs, {**parts, "skipped": {}}, {})         # a later run that ran everything: no stale reasons
    assert not (folder / "skipped.json").exists()


def test_results_of_another_setting_are_replaced_not_merged(home, capsys):
    """A later run of the same experiment keeps the rows of variants it did not redo only when it ran the same
    setting: rows trained for 6 epochs must not stand in one table with rows trained for 4."""
    from llmemf_lite.experiment import RunSpec, _write

    def parts(label):
        rows = [{"label": label, "seed": 0, "protocol": p, "domain": "food", "cases": 1, **{m: 0.1 for m in METRICS},
                 "best_epoch": 1} for p in ("sampled", "full")]
        return {"metrics": pd.DataFrame(rows), "ranks": pd.DataFrame({"label": [label], "seed": [0]}),
                "history": pd.DataFrame({"epoch": [1], "label": [label], "seed": [0], "seconds": [1.0],
                                         "sequences_per_s": [1.0]}), "skipped": {}}

    cfg = ExperimentConfig(name="m", seeds=(0,), epochs=4)
    folder = home / "results" / "m" / "food_kitchen_synthetic"
    _write(cfg, [RunSpec("a", "sasrec")], parts("a"), {})
    _write(replace(cfg, device="cuda", workers=3), [RunSpec("b", "sasrec")], parts("b"), {})   # same setting
    assert sorted(set(pd.read_csv(folder / "metrics.csv")["label"])) == ["a", "b"]
    _write(replace(cfg, epochs=6), [RunSpec("b", "sasrec")], parts("b"), {})
    for name in ("metrics.csv", "history.csv", "timings.csv", "ranks.csv.gz"):
        assert set(pd.read_csv(folder / name)["label"]) == {"b"}, name
    assert "another setting" in capsys.readouterr().out
    assert '"epochs": 6' in (folder / "setting.json").read_text()
    (folder / "setting.json").unlink()                  # rows of an unknown setting are replaced, not merged
    _write(cfg, [RunSpec("c", "sasrec")], parts("c"), {})
    assert set(pd.read_csv(folder / "metrics.csv")["label"]) == {"c"}


def test_a_partial_rerun_keeps_every_variant_in_its_place(tmp_path):
    """Re-running some variants into a results folder (tuning's `--models c2dsr`, which re-runs pop too) replaces
    their rows where they stood and appends only variants new to the folder: pop stayed last in the real Movie-Book
    table before."""
    import json

    import pandas as pd

    from llmemf_lite.experiment import _merge, _merged_record

    old = pd.DataFrame({"label": ["pop", "pop", "sasrec", "sasrec", "llmemf"], "seed": [0, 1, 0, 1, 0],
                        "score": [1.0, 1.0, 2.0, 2.0, 3.0]})
    old.to_csv(tmp_path / "metrics.csv", index=False)
    new = pd.DataFrame({"label": ["pop", "pop", "c2dsr", "c2dsr"], "seed": [0, 1, 0, 1], "score": [9.0, 9.0, 4.0, 4.0]})
    merged = _merge(tmp_path / "metrics.csv", new, {("pop", 0), ("pop", 1), ("c2dsr", 0), ("c2dsr", 1)})
    assert merged["label"].tolist() == ["pop", "pop", "sasrec", "sasrec", "llmemf", "c2dsr", "c2dsr"]
    assert merged["score"].tolist() == [9.0, 9.0, 2.0, 2.0, 3.0, 4.0, 4.0]
    (tmp_path / "variants.json").write_text(json.dumps({"pop": "a", "sasrec": "b", "llmemf": "c"}))
    record = _merged_record(tmp_path / "variants.json", {"pop": "A", "c2dsr": "D"}, {"pop", "c2dsr"})
    assert list(record.items()) == [("pop", "A"), ("sasrec", "b"), ("llmemf", "c"), ("c2dsr", "D")]


def test_a_runs_folder_is_named_by_what_it_runs_not_by_how_its_overrides_are_spelled():
    """Overrides that leave the model as it is (a default written out) share the folder, and so resume each other's
    checkpoints; two protocols of one variant (batch 64 and 128) do not, where they overwrote each other's."""
    from llmemf_lite.experiment import RunSpec, _slug, train_config
    from llmemf_lite.models import build_model
    from tests.helpers_small import small_world

    ds, *_ = small_world()
    cfg = ExperimentConfig(name="t", synthetic=SMALL, max_len=20)

    def slug(spec, cfg=cfg):
        return _slug(spec, build_model(spec.model, ds.space, max_len=20, **spec.overrides), train_config(cfg, spec, 0))

    plain, spelled = RunSpec("a", "llmemf_id", {}), RunSpec("b", "llmemf_id", {"fusion": "network", "dropout": 0.2})
    assert slug(plain) == slug(spelled) == slug(plain, replace(cfg, epochs=40))   # the budget: resumed, not a new run
    assert slug(plain) != slug(plain, replace(cfg, batch_size=128))
    assert slug(plain) != slug(RunSpec("c", "llmemf_id", {"dropout": 0.5}))
    assert slug(plain) != slug(RunSpec("d", "llmemf_id", train={"lr": 1e-3}))
    assert slug(plain).startswith("llmemf_id-")
