"""The docs' numbers are results/' numbers: every generated table of README.md and docs/ matches its file; the
readings the notebooks end on; committed notebooks carry no run record and the installed kernel's kernelspec."""
from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from llmemf_lite import claims, report
from llmemf_lite.experiment import METRICS
from llmemf_lite.paths import project_root

ROOT = project_root()
sys.path.insert(0, str(ROOT / "tools"))
import nbbuild  # noqa: E402


def test_every_committed_table_matches_its_results_file():
    stale = report.stale()
    assert not stale, (f"generated tables differ from their results files: {stale}; "
                       "run `.venv/bin/python -m llmemf_lite.report` and commit the result")


def test_the_readme_and_every_docs_page_it_links_exist_and_are_short_enough():
    readme = (ROOT / "README.md").read_text()
    assert len(readme.splitlines()) <= 200
    assert readme.split("```bash\n", 1)[1].startswith("make reproduce") and "make test" in readme.split("```")[1]
    for page in ("data", "enrichment", "embeddings", "model", "evaluation", "training", "performance",
                 "reproducing", "results"):
        assert (ROOT / "docs" / f"{page}.md").is_file() and f"docs/{page}.md" in readme
    assert "<!-- report:headline -->" in readme


@pytest.mark.parametrize("word", ["this session", "previous session", "a reviewer", "today", "earlier day"])
def test_the_docs_speak_about_the_project_only(word):
    for path in report.documents() + [ROOT / "CHANGELOG.md"]:
        assert word not in path.read_text().lower(), f"{path.name} says {word!r}"


def _metrics(seeds=(0, 1, 2)):
    # seeds 0, 1, 2 spread each variant by 0.01 either way: a spread of 0.012 against effects of 0.1 and 0.001
    rows = [{"label": label, "seed": s, "protocol": p, "domain": d, "NDCG@10": base + 0.01 * (s - 1), "best_epoch": 4}
            for label, base in (("LLM-EMF (full)", 0.30), ("w/o image", 0.20), ("w/o text", 0.299))
            for s in seeds for p in ("full", "sampled") for d in ("movie", "book")]
    return pd.DataFrame(rows)


def test_one_seed_has_no_plus_minus_and_no_verdict():
    one = _metrics(seeds=(0,))
    assert report.mean_std([0.25]) == "0.2500" and report.mean_std([0.2, 0.3], 2) == "0.25 ± 0.05"
    assert "±" not in "".join(report.metric_table(one).iloc[:, 1:].to_numpy().ravel())
    assert set(claims.effect(one, "LLM-EMF (full)", "w/o image")["verdict"]) == {"one seed"}
    assert "one seed" in report.training_reading(one.assign(label=one["label"].map(
        {"LLM-EMF (full)": "llmemf", "w/o image": "sasrec", "w/o text": "pop"})), epochs=4)


def test_a_run_whose_best_epoch_is_within_its_patience_of_the_budget_is_called_budget_limited():
    runs = _metrics().assign(label=lambda f: f["label"].map({"LLM-EMF (full)": "llmemf", "w/o image": "sasrec",
                                                             "w/o text": "pop"}))
    runs["best_epoch"] = runs["label"].map({"llmemf": 36, "sasrec": 35, "pop": 0})
    text = report.training_reading(runs, epochs=40, patience=5)
    assert "later than 35 of 40 (patience 5) for `llmemf`: these runs hit their epoch budget" in text
    assert "`sasrec`" not in text.split("later than")[1] and "`pop`" not in text.split("later than")[1]
    runs["best_epoch"] = runs["label"].map({"llmemf": 30, "sasrec": 35, "pop": 0})
    assert "Every run ended by early stopping" in report.training_reading(runs, epochs=40, patience=5)


def test_the_warm_and_cold_table_scores_each_kind_of_target_apart_from_the_per_case_ranks():
    # two variants, two seeds; food: 3 warm targets ranked first, 1 cold ranked 100th; kitchen: 2 warm ranked 2nd
    rows = [{"label": label, "seed": seed, "protocol": "sampled", "case": c, "target": c, "domain": d,
             "greater": g + (label == "b"), "ties": 0, "warm": w}
            for label in ("a", "b") for seed in (0, 1)
            for c, d, g, w in ((0, 0, 0, True), (1, 0, 0, True), (2, 0, 0, True), (3, 0, 99, False),
                               (4, 1, 1, True), (5, 1, 1, True))]
    ranks = pd.DataFrame(rows)
    per = report.warm_cold_metrics(ranks, ("food", "kitchen")).set_index(["label", "seed", "domain", "warm"])
    assert per.loc[("a", 0, "food", True), "HR@1"] == 1.0 and per.loc[("a", 0, "food", True), "cases"] == 3
    assert per.loc[("a", 0, "food", False), "HR@10"] == 0.0
    table = report.warm_cold_table(ranks, ("food", "kitchen"), metric="HR@1")
    assert list(table.columns) == ["variant", "Food, warm (3 cases)", "Food, cold (1 case)",
                                   "Kitchen, warm (2 cases)"]
    assert table["Food, warm (3 cases)"].tolist() == ["**1.000 ± 0.000**", "0.000 ± 0.000"]
    assert table["Food, cold (1 case)"].tolist() == ["0.000 ± 0.000"] * 2                 # equal: none in bold
    assert report.warm_cold_table(ranks.drop(columns="warm"), ("food", "kitchen")).empty   # older ranks files


def test_tables_keep_the_pairs_order_sampled_first_and_bold_the_best():
    table = report.metric_table(_metrics())
    assert list(table.columns) == ["variant", "Movie, 999 sampled", "Book, 999 sampled", "Movie, full ranking",
                                   "Book, full ranking"]
    assert table["Movie, 999 sampled"].iloc[0].startswith("**") and "±" in table["Movie, 999 sampled"].iloc[1]
    verdicts = claims.verdict_table({"05_ablations": _metrics()})
    assert list(verdicts.columns) == ["claim", "movie, sampled", "book, sampled", "movie, full", "book, full"]
    assert verdicts.set_index("claim").loc["images help"].str.startswith("holds").all()
    assert verdicts.set_index("claim").loc["text helps"].str.startswith("within noise").all()


def test_the_ablation_reading_shows_the_claims_as_a_table():
    text = report.ablation_reading(_metrics(), data="movie_book (synthetic)")
    assert "| claim | movie, sampled |" in text and "| images help | holds" in text
    assert "`w/o text`: *the full model beats it* within noise in 4 of 4 cells" in text


def _project(tmp_path, monkeypatch, doc: str) -> Path:
    monkeypatch.setenv("LLMEMF_HOME", str(tmp_path))
    (tmp_path / "docs").mkdir()
    folder = tmp_path / "results" / "04_train" / "food_kitchen_synthetic"
    folder.mkdir(parents=True)
    _metrics(seeds=(0,)).assign(domain=lambda f: f["domain"].map({"movie": "food", "book": "kitchen"})).to_csv(
        folder / "metrics.csv", index=False)
    page = tmp_path / "docs" / "results.md"
    page.write_text(doc)
    return page


def test_render_fills_between_the_markers_links_from_the_page_and_finds_stale_tables(tmp_path, monkeypatch):
    page = _project(tmp_path, monkeypatch, "before\n<!-- report:default_04 -->\nold\n<!-- /report:default_04 -->\nafter\n")
    assert report.stale(tmp_path) == ["docs/results.md: default_04"]
    assert report.write(tmp_path) == [page] and report.stale(tmp_path) == []
    text = page.read_text()
    assert text.startswith("before\n<!-- report:default_04 -->\nTest NDCG@10, 1 seed (0)") and text.endswith(
        "<!-- /report:default_04 -->\nafter\n")
    assert "(../results/04_train/food_kitchen_synthetic/metrics.csv)" in text and "`make reproduce`" in text


@pytest.mark.parametrize("doc, message", [
    ("<!-- report:nonsense -->\n<!-- /report:nonsense -->\n", "results.md:1: unknown report table 'nonsense'"),
    ("x\n<!-- report:default_04 -->\nno end\n", "results.md:2: `<!-- report:default_04 -->` has no closing"),
])
def test_a_bad_marker_names_the_file_and_line(tmp_path, monkeypatch, doc, message):
    page = _project(tmp_path, monkeypatch, doc)
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        report.render(doc, page)


def test_the_setting_differences_are_written_once():
    text = (ROOT / "docs" / "results.md").read_text()
    body = claims.SETTING_DIFFERENCES.split("\n", 2)[2].strip()
    assert "<!-- report:setting_differences -->\n" + body in text
    assert body not in (ROOT / "README.md").read_text()


def test_text_tables_are_left_aligned_uncut_and_the_same_on_every_run():
    frame = pd.DataFrame({"title": ["a" * 200, "b"]})
    html = report.TextTable(frame)._repr_html_()
    assert "a" * 200 in html and "text-align: left" in html and html == report.TextTable(frame.copy())._repr_html_()
    assert repr(report.TextTable(frame)) == frame.to_string()


def test_nbbuild_kernelspec_is_the_installed_kernels():
    from jupyter_client.kernelspec import KernelSpecManager

    installed = KernelSpecManager().get_kernel_spec(nbbuild.KERNELSPEC["name"])
    assert installed.display_name == nbbuild.KERNELSPEC["display_name"]
    assert installed.language == nbbuild.KERNELSPEC["language"]


@pytest.mark.parametrize("path", sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb")), ids=lambda p: p.name)
def test_committed_notebooks_carry_no_run_record(path):
    nb = json.loads(path.read_text())
    assert "papermill" not in nb["metadata"], f"{path.name}: run `python tools/nbbuild.py clean {path}`"
    assert nb["metadata"]["kernelspec"] == nbbuild.KERNELSPEC
    for cell in nb["cells"]:
        assert not {"papermill", "execution"} & set(cell.get("metadata", {})), f"{path.name}: cell {cell.get('id')}"


def test_clean_strips_the_run_record_and_keeps_the_rest(tmp_path):
    nb = {"cells": [{"cell_type": "code", "id": "c00", "execution_count": 1, "outputs": [], "source": "1",
                     "metadata": {"tags": ["parameters"], "execution": {"iopub.status.idle": "t"},
                                  "papermill": {"duration": 0.1}}}],
          "metadata": {"kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"},
                       "language_info": {"name": "python"}, "papermill": {"input_path": "/tmp/x.ipynb"}},
          "nbformat": 4, "nbformat_minor": 5}
    path = tmp_path / "n.ipynb"
    path.write_text(json.dumps(nb))
    assert nbbuild.clean_notebook(path) and not nbbuild.clean_notebook(path)
    clean = json.loads(path.read_text())
    assert clean["metadata"] == {"kernelspec": nbbuild.KERNELSPEC, "language_info": {"name": "python"}}
    assert clean["cells"][0]["metadata"] == {"tags": ["parameters"]}


def test_the_tuning_table_shows_every_configuration_and_marks_the_choice(tmp_path, monkeypatch):
    _project(tmp_path, monkeypatch, "")
    folder = tmp_path / "results" / "tuning" / "food_kitchen_llmcdsr"
    folder.mkdir(parents=True)
    grid = [{"label": "sasrec lr=0.001 dropout=0.2", "rung_NDCG@10": 0.2, "went_on": True, "valid_NDCG@10": 0.28,
             "best_epoch": 9, "last_epoch": 14},
            {"label": "sasrec lr=0.003 dropout=0.5", "rung_NDCG@10": 0.1, "went_on": False}]
    (folder / "choice.json").write_text(json.dumps({"sasrec": {"rung_epochs": 4, "keep": 1, "grid": grid,
                                                              "chosen": grid[0]["label"]}}))
    text = report.TABLES["tuning_food_kitchen"](tmp_path / "results")
    assert "| sasrec | lr=0.001 dropout=0.2 | 0.2000 | yes | 0.2800 | 9 / 14 | **chosen** |" in text
    assert "| sasrec | lr=0.003 dropout=0.5 | 0.1000 |  |  |  |  |" in text
    assert "valid NDCG@10 at epoch 4" in text


def test_the_headline_gives_each_pair_of_domains_its_own_table(tmp_path, monkeypatch):
    """The README's table: the default world shares the real Food-Kitchen columns; Movie-Book, whose domains are
    others, is a table of its own (one table would leave half of every row empty)."""
    _project(tmp_path, monkeypatch, "")
    for pair_source, domains in (("food_kitchen_llmcdsr", ("food", "kitchen")),
                                 ("movie_book_llmcdsr", ("movie", "book")),
                                 ("food_kitchen_synthetic", ("food", "kitchen"))):
        rows = [{"label": label, "seed": 0, "protocol": protocol, "domain": domain, "cases": 10,
                 **{m: 0.1 for m in METRICS}, "best_epoch": 1}
                for label in ("pop", "sasrec") for protocol in ("sampled", "full") for domain in domains]
        folder = tmp_path / "results" / "04_train" / pair_source
        folder.mkdir(parents=True, exist_ok=True)
        pd.DataFrame(rows).to_csv(folder / "metrics.csv", index=False)
    tables = [block for block in report.headline(tmp_path / "results").split("\n\n") if block.startswith("|")]
    assert len(tables) == 2
    assert "Food, 999 sampled" in tables[0] and "default world" in tables[0] and "Movie" not in tables[0]
    assert tables[1].splitlines()[0].count("Movie") == 2 and "real Movie–Book" in tables[1]
    assert not any("|  |  |" in line for line in tables[1].splitlines()[2:])          # no empty cells


def test_the_model_version_table_gives_each_cell_a_verdict_and_checks_the_two_evaluations_by_pop(tmp_path,
                                                                                                 monkeypatch):
    _project(tmp_path, monkeypatch, "")
    results = tmp_path / "results"
    assert "No numbers yet" in report.model_versions(results)
    rows = lambda label, base, pop_shift: pd.DataFrame(   # noqa: E731
        [{"label": label, "seed": s, "protocol": p, "domain": d, "best_epoch": 5 + s,
          **{m: base + 0.01 * (s - 1) for m in METRICS}} for s in (0, 1, 2) for p in ("sampled", "full")
         for d in ("food", "kitchen")]
        + [{"label": "pop", "seed": s, "protocol": p, "domain": d, "best_epoch": 0,
            **{m: 0.02 + pop_shift for m in METRICS}} for s in (0, 1, 2) for p in ("sampled", "full")
           for d in ("food", "kitchen")])
    v2 = results / "diagnostics" / "model_version2" / "food_kitchen_llmcdsr"
    v2.mkdir(parents=True)
    rows("llmemf version 2", 0.20, 0.0).to_csv(v2 / "metrics.csv", index=False)
    v3 = results / "04_train" / "food_kitchen_llmcdsr"
    v3.mkdir()
    rows("llmemf", 0.25, 0.0).to_csv(v3 / "metrics.csv", index=False)
    text = report.model_versions(results)
    assert "| LLM-EMF version 3 | 3 | 5/6/7 | 0.2500 ± 0.0082 |" in text
    assert text.count("| +0.0500 | 0.0115 | holds |") == 4
    assert "largest difference over every metric, protocol and domain: 0.0e+00" in text
    rows("llmemf", 0.19, 0.001).to_csv(v3 / "metrics.csv", index=False)
    text = report.model_versions(results)
    assert text.count("| -0.0100 | 0.0115 | within noise |") == 4 and "1.0e-03" in text
    assert "full depth" not in text
    variants = results / "diagnostics" / "fusion_level" / "food_kitchen_llmcdsr"
    variants.mkdir(parents=True)
    rows("llmemf, one network per channel", 0.23, 0.0).to_csv(variants / "metrics.csv", index=False)
    text = report.model_versions(results)
    assert "| LLM-EMF version 3, content networks at full depth | 3 | 5/6/7 | 0.2300 ± 0.0082 |" in text
    assert text.count("| version 3, content networks at full depth |") == 4
    assert text.count("| +0.0300 | 0.0115 | holds |") == 4 and "fusion_level --epochs 40" in text
    assert "interval over test cases" not in text                         # no ranks files: no case-level interval
    ranks = lambda label, greater: pd.DataFrame(   # noqa: E731
        [{"label": label, "seed": s, "protocol": p, "domain": d, "case": c, "greater": greater, "ties": 0}
         for s in (0, 1) for p in ("sampled", "full") for d in (0, 1) for c in range(20)])
    ranks("llmemf version 2", 5).to_csv(v2 / "ranks.csv.gz", index=False)
    ranks("llmemf", 5).to_csv(v3 / "ranks.csv.gz", index=False)
    ranks("llmemf, one network per channel", 5).to_csv(variants / "ranks.csv.gz", index=False)
    text = report.model_versions(results)
    assert text.count("| [+0.0000, +0.0000] |") == 8                      # 2 rows x 4 cells, the same ranks


def test_the_paired_interval_averages_each_case_over_seeds_and_brackets_the_effect_over_the_test_cases():
    """A beats B by one rank place at every case: the effect is the mean per-case gain and the interval lies above
    0; A against itself: effect 0 and interval [0, 0]. Each case counts once, whatever its number of seeds."""
    from llmemf_lite.evaluate import expected_rank_metrics

    rng = np.random.default_rng(0)
    greater = rng.integers(0, 12, 200)
    frames = []
    for label, shift, seeds in (("A", 0, (0, 1, 2)), ("B", 1, (0, 1))):
        for s in seeds:
            frames.append(pd.DataFrame({"label": label, "seed": s, "protocol": "sampled", "domain": 0,
                                        "case": np.arange(200), "greater": greater + shift, "ties": 0}))
    ranks = pd.concat(frames, ignore_index=True)
    out = claims.paired_interval(ranks, "A", "B")
    gain = (expected_rank_metrics(greater, np.zeros(200))["NDCG@10"]
            - expected_rank_metrics(greater + 1, np.zeros(200))["NDCG@10"]).mean()
    assert out["cases"].tolist() == [200] and out["effect"].iloc[0] == pytest.approx(gain)
    assert 0 < out["low"].iloc[0] < gain < out["high"].iloc[0]
    same = claims.paired_interval(ranks, "A", "A")
    assert same[["effect", "low", "high"]].abs().max().max() == 0


def test_a_diagnostic_runs_on_and_is_read_from_the_data_its_name_says(tmp_path):
    from llmemf_lite.diagnostics import EXPERIMENTS, data_of

    assert data_of("fused_scale_movie_book") == ("movie_book", "llmcdsr")
    assert data_of("fusion_level_default_world") == ("food_kitchen", "synthetic")
    assert data_of("fusion_level") == ("food_kitchen", "llmcdsr")
    assert {data_of(name) for name in EXPERIMENTS} == {("movie_book", "llmcdsr"), ("food_kitchen", "synthetic"),
                                                      ("food_kitchen", "llmcdsr")}
    assert report.diagnostic_folder(tmp_path, "fused_scale_movie_book") == \
        tmp_path / "diagnostics" / "fused_scale_movie_book" / "movie_book_llmcdsr"


def test_the_reproduce_real_time_adds_a_resumed_notebooks_attempts_and_names_a_total_not_reached():
    entries = [{"parameters": {"domain_pair": "food_kitchen"}, "notebook": f"0{i}_x.ipynb", "seconds": 600.0,
                "status": "done", "machine": "m", "commit": "c", "started": "2026-12-03T14:00:00"} for i in range(1, 7)]
    stopped = dict(entries[3], seconds=3000.0, status="running")      # 04 killed outright, then resumed
    entries.insert(3, stopped)
    partial = [dict(e, parameters={"domain_pair": "movie_book"}) for e in entries[:3]]
    partial.append(dict(entries[4], parameters={"domain_pair": "movie_book"}, status="stopped"))
    times = report.notebook_times(entries + partial)
    assert times[("food_kitchen", "04_x.ipynb")] == (3600.0, 2, True)
    assert times[("movie_book", "04_x.ipynb")] == (600.0, 1, False)
    # a run after a completed one (a resumed invocation re-runs it from its caches) is not counted
    again = dict(entries[0], seconds=5.0)
    assert report.notebook_times(entries + [again])[("food_kitchen", "01_x.ipynb")] == (600.0, 1, True)
    assert report._duration(3600 + 6 * 600) == "2 h 00 min" and report._duration(59) == "59 s"
