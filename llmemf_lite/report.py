"""The numbers that README.md and docs/ state, made from the files in results/; and the short reading of its numbers
that each of notebooks 04, 05 and 06 ends on.

    python -m llmemf_lite.report           # rewrite every generated table in README.md and docs/*.md
    python -m llmemf_lite.report --check   # exit 1, naming each table that differs from its results file

A generated table sits between `<!-- report:NAME -->` and `<!-- /report:NAME -->`, NAME a key of `TABLES`; the text
between the two markers is the table's, everything around them is written by hand. tests/test_report.py fails when
a committed table no longer matches its file, so a number in the docs is the number in results/.

What this file is: formatting. What it is not: the verdict rule (`claims.py`), the metrics (`evaluate.py`) or the
experiments that write results/ (`experiment.py`).
"""
from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

import numpy as np
import pandas as pd

from . import claims
from .evaluate import METRICS
from .paths import project_root, results_dir
from .pipeline import notebook_sequence

METRIC = "NDCG@10"
PROTOCOLS = (("sampled", "999 sampled"), ("full", "full ranking"))
# the commands that remake each results folder
# the real-data tables: tuned (llmemf_lite.tuning), one command per pair
REAL_MODELS = "pop,gru4rec,sasrec,bert4rec,c2dsr,llmemf_id,llmemf,ifcdsr,hafvt"   # notebook 04's models (Makefile too)
REAL_COMMANDS = {
    "food_kitchen_llmcdsr": "papermill notebooks/04_train.ipynb out.ipynb -p source llmcdsr -p data_dir "
                            f"../shared/data/food-kitchen -p models {REAL_MODELS} -p seeds 0,1,2 -p tuned True",
    "movie_book_llmcdsr": "papermill notebooks/04_train.ipynb out.ipynb -p domain_pair movie_book -p source llmcdsr "
                          f"-p data_dir ../shared/data/movie-book -p models {REAL_MODELS} -p seeds 0,1,2 -p tuned True",
}
REAL_COMMAND = REAL_COMMANDS["food_kitchen_llmcdsr"]
PAIR_TITLES = {"food_kitchen": "Food–Kitchen", "movie_book": "Movie–Book"}   # the real pairs, as the docs name them
REAL_DATA = {f"{pair}_llmcdsr": f"real {title}" for pair, title in PAIR_TITLES.items()}
TUNING_COMMANDS = {"food_kitchen_llmcdsr": "python -m llmemf_lite.tuning grid",
                   "movie_book_llmcdsr": "python -m llmemf_lite.tuning grid --domain-pair movie_book --data-dir "
                                         "../shared/data/movie-book"}
ABLATION_COMMANDS = {   # notebook 05 at the full model's tuned configuration (notebook 04 with -p tuned True first)
    "food_kitchen_llmcdsr": "papermill notebooks/05_ablations.ipynb out.ipynb -p source llmcdsr -p data_dir "
                            "../shared/data/food-kitchen -p tuned True",
    "movie_book_llmcdsr": "papermill notebooks/05_ablations.ipynb out.ipynb -p domain_pair movie_book -p source "
                          "llmcdsr -p data_dir ../shared/data/movie-book -p tuned True",
}
DEFAULT_COMMAND = "make reproduce"
EXTENDED_COMMAND = "papermill notebooks/05_ablations.ipynb out.ipynb -p variants extended"


# ---------------------------------------------------------------------------------------------- numbers as text
def mean_std(values, digits: int = 4) -> str:
    """The mean over seeds, with ± the standard deviation only where there is more than one seed."""
    values = np.asarray(values, dtype=float)
    if len(values) < 2:
        return f"{values.mean():.{digits}f}"
    return f"{values.mean():.{digits}f} ± {values.std():.{digits}f}"


def seed_table(metrics: pd.DataFrame, protocol: str, columns=None) -> pd.DataFrame:
    """Notebook tables of mean ± std over seeds per (domain, variant), as `experiment.mean_std_table`, without the
    ± where every variant ran with one seed (a spread of one draw is no spread)."""
    from .experiment import METRICS, mean_std_table

    table = mean_std_table(metrics, protocol, columns or METRICS)
    if metrics.groupby("label")["seed"].nunique().max() < 2:
        table = table.map(lambda text: text.split(" ± ")[0])
    return table


def metric_table(metrics: pd.DataFrame, metric: str = METRIC, digits: int = 4, bold_best: bool = True,
                 labels: dict | None = None) -> pd.DataFrame:
    """One row per variant (in the order of the file), one column per (domain, protocol), X first and the paper's
    sampled protocol first: `metric` as mean ± std over seeds; the best mean of each column in bold. `labels` renames
    variants (those not named keep their label)."""
    domains = list(dict.fromkeys(metrics["domain"]))
    variants = list(dict.fromkeys(metrics["label"]))
    out = pd.DataFrame({"variant": [(labels or {}).get(v, v) for v in variants]})
    for protocol, name in PROTOCOLS:
        for domain in domains:
            rows = metrics[(metrics["protocol"] == protocol) & (metrics["domain"] == domain)]
            if rows.empty:
                continue
            out[f"{domain.capitalize()}, {name}"] = _column(rows, variants, metric, digits, bold_best)
    return out


def _column(rows: pd.DataFrame, variants: list, metric: str, digits: int, bold_best: bool = True) -> list[str]:
    """One table column: `metric` of each variant as mean ± std over seeds ("" for a variant without rows), the
    best mean in bold where there is one (more than one variant, not all equal)."""
    groups = rows.groupby("label", sort=False)[metric]
    means = groups.mean()
    cells = [mean_std(groups.get_group(v), digits) if v in means.index else "" for v in variants]
    if bold_best and len(means) > 1 and means.max() > means.min():
        best = means.idxmax()
        cells = [f"**{c}**" if v == best else c for v, c in zip(variants, cells)]
    return cells


def warm_cold_metrics(ranks: pd.DataFrame, domains) -> pd.DataFrame:
    """Per (variant, seed, protocol, domain, warm): the cases and every metric, from the per-case ranks
    (`experiment`'s ranks.csv.gz; `warm`: the target occurs in a training sequence). `domains`: the pair's names,
    X first (the ranks hold the domain's index). Ranks written before the warm column existed give no rows."""
    from .evaluate import expected_rank_metrics
    from .experiment import METRICS

    if "warm" not in ranks:
        return pd.DataFrame()
    ranks = ranks.dropna(subset=["warm"]).astype({"warm": bool})
    per_case = ranks.assign(**expected_rank_metrics(ranks["greater"].to_numpy(), ranks["ties"].to_numpy()))
    keys = ["label", "seed", "protocol", "domain", "warm"]
    out = per_case.groupby(keys, sort=False)
    frame = out[list(METRICS)].mean().join(out.size().rename("cases"))
    frame = frame.reset_index()
    frame["domain"] = frame["domain"].map(dict(enumerate(domains)))
    return frame


def warm_cold_table(ranks: pd.DataFrame, domains, protocol: str = "sampled", metric: str = METRIC,
                    digits: int = 3) -> pd.DataFrame:
    """One row per variant, one column per (domain, warm | cold) of `protocol`: `metric` as mean ± std over seeds,
    the column naming its test cases; the best mean of each column in bold. Empty without a warm column."""
    frame = warm_cold_metrics(ranks, domains)
    if frame.empty:
        return frame
    frame = frame[frame["protocol"] == protocol]
    variants = list(dict.fromkeys(frame["label"]))
    out = pd.DataFrame({"variant": variants})
    for domain in domains:
        for warm, word in ((True, "warm"), (False, "cold")):
            rows = frame[(frame["domain"] == domain) & (frame["warm"] == warm)]
            if rows.empty:
                continue
            cases = int(rows.groupby("seed")["cases"].first().iloc[0])
            out[f"{domain.capitalize()}, {word} ({cases:,} case{'' if cases == 1 else 's'})"] = \
                _column(rows, variants, metric, digits)
    return out


def markdown(frame: pd.DataFrame) -> str:
    from .experiment import markdown_table

    return markdown_table(frame)


def _link(path: Path) -> str:
    rel = path.relative_to(project_root()).as_posix()
    return f"[`{rel}`]({{root}}{rel})"


def _source_line(paths: list[Path], *commands: str) -> str:
    return f"from {', '.join(_link(p) for p in paths)}; remade by {'; '.join(f'`{c}`' for c in commands)}."


def _seeds(metrics: pd.DataFrame) -> str:
    seeds = sorted(metrics["seed"].unique())
    return f"{len(seeds)} seed{'s' if len(seeds) > 1 else ''} ({', '.join(map(str, seeds))})"


def _epochs(folder: Path) -> str:
    setting = folder / "setting.json"
    return f", {json.loads(setting.read_text())['epochs']} epochs" if setting.is_file() else ""


# ------------------------------------------------------------------------------------------- the generated tables
def _metrics(root: Path, experiment: str, pair_source: str) -> tuple[Path, pd.DataFrame | None]:
    path = root / experiment / pair_source / "metrics.csv"
    return path, (pd.read_csv(path) if path.is_file() else None)


def _missing(path: Path) -> str:
    return f"*No numbers yet: `{path.relative_to(project_root()).as_posix()}` does not exist.*"


def headline(root: Path) -> str:
    """The README's table: test NDCG@10 of every model of notebook 04, the real data first (each pair whose table
    exists), then the default (synthetic) world; one table per pair of domains (the default world is Food-Kitchen
    too, so it shares the real Food-Kitchen table)."""
    parts, sources = [], []
    for pair_source, what, command in (*((k, REAL_DATA[k], REAL_COMMANDS[k]) for k in REAL_DATA),
                                       ("food_kitchen_synthetic", "default world", DEFAULT_COMMAND)):
        path, metrics = _metrics(root, "04_train", pair_source)
        if metrics is None:
            continue
        table = metric_table(metrics, digits=3)
        table.insert(0, "data", [f"{what}, {_seeds(metrics)}"] + [""] * (len(table) - 1))
        parts.append(table)
        sources.append(f"{what}: numbers {_source_line([path], command)}")
    if not parts:
        return "*No results of notebook 04 yet: run `make reproduce`.*"
    groups: dict[tuple, list] = {}
    for table in parts:
        groups.setdefault(tuple(table.columns), []).append(table)
    body = "\n\n".join(markdown(pd.concat(tables, ignore_index=True)) for tables in groups.values())
    return body + "\n\n" + "\n".join(f"- {s}" for s in sources)


def table_04(root: Path, pair_source: str, command: str) -> str:
    folder = root / "04_train" / pair_source
    path, metrics = _metrics(root, "04_train", pair_source)
    if metrics is None:
        return _missing(path)
    return (f"Test {METRIC}, {_seeds(metrics)}{_epochs(folder)}; mean ± std over seeds where there are several.\n\n"
            + markdown(metric_table(metrics)) + "\n\nNumbers " + _source_line([path, folder / "summary.md"], command))


def warm_cold_04(root: Path, pair_source: str, experiment: str = "04_train") -> str:
    """Test NDCG@10 of warm and cold targets apart (`warm_cold_table`), both protocols, from the per-case ranks."""
    folder = root / experiment / pair_source
    path, metrics = _metrics(root, experiment, pair_source)
    if metrics is None:
        return _missing(path)
    ranks = pd.read_csv(folder / "ranks.csv.gz")
    domains = list(dict.fromkeys(metrics["domain"]))
    parts = []
    for protocol, name in PROTOCOLS:
        table = warm_cold_table(ranks, domains, protocol)
        if table.empty:
            return f"*`{_link(folder / 'ranks.csv.gz')}` predates the warm/cold record; re-run its command.*"
        parts.append(f"**{name}**\n\n" + markdown(table))
    return ("\n\n".join(parts) + f"\n\nTest {METRIC}, {_seeds(metrics)}, mean ± std over seeds; warm: the target "
            "occurs in a training sequence; cold: in none. Computed from " + _link(folder / "ranks.csv.gz") + ".")


def tuning_choice(root: Path, pair_source: str) -> str:
    """Every configuration of the tuning grid: its score at the rung, where it went on its converged validation
    score and best epoch, and each model's choice (choice.json of `llmemf_lite.tuning`)."""
    path = root / "tuning" / pair_source / "choice.json"
    if not path.is_file():
        return _missing(path)
    rows, not_run = [], []
    for model, record in json.loads(path.read_text()).items():
        if "not_run" in record:
            not_run.append(f"- {model}: {record['not_run']}")
            continue
        for r in record["grid"]:
            rows.append({"model": model, "configuration": r["label"].removeprefix(model + " "),
                         f"valid {METRIC} at epoch {record['rung_epochs']}": f"{r['rung_NDCG@10']:.4f}",
                         "went on": "yes" if r["went_on"] else "",
                         f"best valid {METRIC}": f"{r['valid_NDCG@10']:.4f}" if r["went_on"] else "",
                         "best / last epoch": f"{r['best_epoch']} / {r['last_epoch']}" if r["went_on"] else "",
                         "chosen": "**chosen**" if r["label"] == record["chosen"] else ""})
    return (markdown(pd.DataFrame(rows)) + "\n\nValidation NDCG@10 (sampled), seed 0; from " + _link(path)
            + f"; remade by `{TUNING_COMMANDS[pair_source]}`."
            + ("\n\nNot run on these data:\n" + "\n".join(not_run) if not_run else ""))


def convergence(root: Path, pair_source: str) -> str:
    """Each model's training time to its best validation epoch (benchmarks/bench_convergence.py)."""
    path = root / "benchmarks" / f"convergence_{pair_source}.json"
    if not path.is_file():
        return _missing(path)
    run = json.loads(path.read_text())
    rows = [{"model": m, "best epochs (seeds)": ", ".join(str(x["best_epoch"]) for x in r["runs"]),
             "last epochs": ", ".join(str(x["last_epoch"]) for x in r["runs"]),
             "training s to the best epoch": f"{r['mean_seconds_to_best']:,.0f}",
             "training s in all": f"{r['mean_seconds_total']:,.0f}",
             "× SASRec (to the best)": f"{r.get('to_best_ratio_to_sasrec', float('nan')):.2f}",
             "sequences/s": f"{r['runs'][0]['sequences_per_s']:,.0f}"}
            for m, r in run["models"].items()]
    return (markdown(pd.DataFrame(rows)) + f"\n\nMean over seeds; {run['machine']}; commit {run['commit']}; "
            + _source_line([path], run["command"]))


def table_05(root: Path, pair_source: str) -> str:
    """The ablations of notebook 05, and below them the extended variants where `-p variants extended` has run."""
    path, metrics = _metrics(root, "05_ablations", pair_source)
    if metrics is None:
        return _missing(path)
    ext_path, extended = _metrics(root, "05_ablations_extended", pair_source)
    paths, commands = [path], [ABLATION_COMMANDS.get(pair_source, DEFAULT_COMMAND)]
    if extended is not None:
        new = extended[~extended["label"].isin(set(metrics["label"]))]
        metrics = pd.concat([metrics, new.assign(label="*extended:* " + new["label"])], ignore_index=True)
        paths.append(ext_path)
        commands.append(EXTENDED_COMMAND)
    table = metric_table(metrics, digits=3)
    return (f"Test {METRIC}, {_seeds(metrics)}{_epochs(path.parent)}, mean ± std over seeds.\n\n" + markdown(table)
            + "\n\n" + f"Numbers from {', '.join(_link(p) for p in paths)}; remade by "
            + " then ".join(f"`{c}`" for c in commands) + ".")


def claims_table(root: Path, pair_source: str) -> str:
    """The verdict of each of the paper's claims measured on `pair_source` (the rule: `claims.py`)."""
    found = {exp: m for exp in claims.EXPERIMENT_RUNS if (m := _metrics(root, exp, pair_source)[1]) is not None}
    table = claims.verdict_table(found)
    if table.empty:
        return f"*No claim measured on `{pair_source}` yet.*"
    paths = [root / exp / pair_source / "metrics.csv" for exp in found]
    return (markdown(table.fillna("")) + "\n\n"
            + f"Verdict (effect ± spread of {METRIC}, over seeds) from {', '.join(_link(p) for p in paths)}; all of "
            + f"it, with what is not measured and why: {_link(root / 'paper_comparison.md')}.")


def attention_06(root: Path, pair_source: str) -> str:
    share_path = root / f"06_cross_domain_share_{pair_source}.csv"
    heavy_path = root / f"06_heavy_history_attention_{pair_source}.csv"
    if not share_path.is_file() or not heavy_path.is_file():
        return _missing(share_path if not share_path.is_file() else heavy_path)
    share, heavy = pd.read_csv(share_path), pd.read_csv(heavy_path)
    return (attention_reading(share, heavy) + "\n\n" + "Numbers "
            + _source_line([share_path, heavy_path], DEFAULT_COMMAND))


def setting_differences(root: Path) -> str:
    """What differs from the paper's setting: one text (`claims.SETTING_DIFFERENCES`), also written at the end of
    results/paper_comparison.md."""
    return claims.SETTING_DIFFERENCES.split("\n", 2)[2].strip()


def seconds_to_best(timings: pd.DataFrame, best: pd.DataFrame) -> pd.Series:
    """Training seconds up to and including each run's best epoch: `timings` (label, seed, epoch, seconds: an
    experiment's timings.csv), `best` (label, seed, best_epoch) -> a series indexed by (label, seed)."""
    t = timings.merge(best[["label", "seed", "best_epoch"]], on=["label", "seed"])
    return t[t["epoch"] <= t["best_epoch"]].groupby(["label", "seed"], sort=False)["seconds"].sum()


def diagnostic_folder(root: Path, name: str) -> Path:
    """results/diagnostics/<name>/<pair>_<source>/: where a diagnostic's runs are (`diagnostics.data_of`)."""
    from .diagnostics import data_of

    return root / "diagnostics" / name / "_".join(data_of(name))


def diagnostic_summary(name: str, root: Path | None = None) -> pd.DataFrame | None:
    """One row per variant of a diagnostic that has run: seeds, validation NDCG@10 (sampled, the selection score)
    at the best epoch, best and last epoch (a best epoch within `patience` of the budget is budget-limited: the
    run stopped on its budget, not on the validation score), and test NDCG@10 per domain (sampled protocol), mean
    and std over seeds. None where the experiment has not run."""
    from .diagnostics import EXPERIMENTS
    from .train import budget_limited

    folder = diagnostic_folder(root or results_dir(), name)
    if not (folder / "metrics.csv").is_file():
        return None
    metrics, history = pd.read_csv(folder / "metrics.csv"), pd.read_csv(folder / "history.csv")
    timings = pd.read_csv(folder / "timings.csv") if (folder / "timings.csv").is_file() else None
    setting = json.loads((folder / "setting.json").read_text())
    budget, patience = setting["epochs"], setting["patience"]
    rows = []
    for label in dict.fromkeys(spec.label for spec in EXPERIMENTS[name]):
        runs = history[history["label"] == label]
        if runs.empty:
            continue
        per_seed = runs.loc[runs.groupby("seed")["valid_score"].idxmax()]
        last = runs.groupby("seed")["epoch"].max()
        test = metrics[(metrics["label"] == label) & (metrics["protocol"] == "sampled")]
        row = {"variant": label, "seeds": len(per_seed),
               "valid NDCG@10": mean_std(per_seed["valid_score"]),
               "best epoch": "/".join(str(int(e)) for e in per_seed["epoch"]),
               "last epoch": "/".join(str(int(e)) for e in last),
               "budget-limited": "yes" if budget_limited(per_seed["epoch"].to_numpy(), budget, patience).any() else "no"}
        for domain, group in test.groupby("domain", sort=False):
            row[f"test NDCG@10 {domain}"] = mean_std(group["NDCG@10"])
        if timings is not None:   # training seconds up to the best epoch (experiments run since timings.csv exists)
            best = per_seed[["label", "seed", "epoch"]].rename(columns={"epoch": "best_epoch"})
            row["training s to the best epoch"] = f"{seconds_to_best(timings, best).mean():.0f}"
        rows.append(row)
    return pd.DataFrame(rows)


def diagnostic(root: Path, name: str) -> str:
    """One training diagnostic (`diagnostics.EXPERIMENTS`): each variant's validation score, epochs and test
    NDCG@10, with its files and command; or the position / item norms at initialisation (`init_norms`)."""
    if name == "init_norms":
        path = root / "diagnostics" / "init_norms.csv"
        if not path.is_file():
            return _missing(path)
        return markdown(pd.read_csv(path)) + "\n\n" + _source_line([path], "python -m llmemf_lite.diagnostics "
                                                                           "init_norms")
    frame = diagnostic_summary(name, root)
    folder = diagnostic_folder(root, name)
    if frame is None:
        return _missing(folder / "metrics.csv")
    more = sorted(frame.loc[frame["seeds"] > 1, "variant"].str.split(",").str[0].unique())
    extra = "".join(f"; seeds 1 and 2 of the {m} rows by `python -m llmemf_lite.diagnostics {name} --seeds 1 2 "
                    f"--only '{m},'`" for m in more)
    return markdown(frame) + "\n\n" + _source_line([folder / "metrics.csv", folder / "history.csv"],
                                                   f"python -m llmemf_lite.diagnostics {name}")[:-1] + extra + "."


V2_COMMAND = "bash tools/model_version2/run.sh"
V2_LABEL, V3_LABEL = "llmemf version 2", "llmemf"     # the version-2 run's label; notebook 04's tuned LLM-EMF row
# version 3's other forms run at notebook 04's protocol by `diagnostics fusion_level`: (its label there, the row's name)
V3_VARIANTS = (("llmemf, one network per channel", "version 3, content networks at full depth"),
               ("llmemf, one network per channel, text network 1 block, no merged objective",
                "version 3, without the merged objective"),
               ("llmemf, one network over the fused item (score fusion)", "version 3, score fusion (its first default)"))
# every run's label in its results file -> its row's name in model_versions
VERSION_NAMES = {V2_LABEL: "version 2", V3_LABEL: "version 3", **dict(V3_VARIANTS)}
V3_VARIANTS_COMMAND = "python -m llmemf_lite.diagnostics fusion_level --epochs 40 --patience 5 --seeds 0 1 2"


def _version_ranks(metrics_paths: list[Path]) -> pd.DataFrame | None:
    """The ranks.csv.gz beside each metrics file, the rows of the versions' labels relabelled as model_versions names
    them (`VERSION_NAMES`; None where a file is missing)."""
    parts = []
    for path in metrics_paths:
        ranks = path.with_name("ranks.csv.gz")
        if not ranks.is_file():
            return None
        r = pd.read_csv(ranks)
        parts.append(r[r["label"].isin(VERSION_NAMES)].assign(label=lambda f: f["label"].map(VERSION_NAMES)))
    return pd.concat(parts, ignore_index=True)


def model_versions(root: Path) -> str:
    """LLM-EMF model version 3 against version 2 on the real Food-Kitchen data, both under the fair-training
    protocol (issue 19): version 2 from tools/model_version2 (results/diagnostics/model_version2/), version 3 from
    notebook 04's tuned row, at the same configuration, and version 3's switches that `diagnostics fusion_level`
    ran at that configuration where it has. Test NDCG@10 per protocol and domain, the effect of each version-3 row
    over version 2 with its seed spread and verdict (`claims.effect`), and pop in both trees as the check that the
    test cases, candidates and rankings are the same; where the ranks files are there, a paired bootstrap interval of
    each effect over the test cases (`claims.paired_interval`)."""
    v2, v3 = (root / "diagnostics" / "model_version2" / "food_kitchen_llmcdsr" / "metrics.csv",
              root / "04_train" / "food_kitchen_llmcdsr" / "metrics.csv")
    for path in (v2, v3):
        if not path.is_file():
            return _missing(path)
    m2, m3 = pd.read_csv(v2), pd.read_csv(v3)
    parts = [m2[m2["label"] == V2_LABEL].assign(label="version 2"),
             m3[m3["label"] == V3_LABEL].assign(label="version 3")]
    if min(map(len, parts)) == 0:
        return f"*No numbers yet: `{V2_LABEL}` or `{V3_LABEL}` has no rows in {v2.name} / {v3.name}.*"
    variants = root / "diagnostics" / "fusion_level" / "food_kitchen_llmcdsr" / "metrics.csv"
    sources = [v2, v3]
    if variants.is_file():
        mv = pd.read_csv(variants)
        for label, name in V3_VARIANTS:
            if (mv["label"] == label).any():
                parts.append(mv[mv["label"] == label].assign(label=name))
        sources.append(variants)
    both = pd.concat(parts, ignore_index=True)
    rows = []
    for name, g in both.groupby("label", sort=False):
        row = {"model": f"LLM-EMF {name}", "seeds": g["seed"].nunique(),
               "best epochs": "/".join(str(int(e)) for e in g.drop_duplicates("seed").sort_values("seed")["best_epoch"])}
        for (protocol, domain), cell in g.groupby(["protocol", "domain"], sort=False):
            row[f"{protocol} {domain}"] = mean_std(cell["NDCG@10"])
        rows.append(row)
    ranks = _version_ranks(sources)
    verdicts = []
    for name in both["label"].unique()[1:]:
        effects = claims.effect(both, name, "version 2")
        frame = pd.DataFrame({"model": name, "protocol": effects["protocol"], "domain": effects["domain"],
                              "minus version 2": effects["effect"].map("{:+.4f}".format),
                              "spread": effects["spread"].map("{:.4f}".format),
                              "beats version 2": effects["verdict"]})
        if ranks is not None and (ranks["label"] == name).any():
            paired = claims.paired_interval(ranks, name, "version 2")
            frame["95 % interval over test cases"] = [f"[{lo:+.4f}, {hi:+.4f}]"
                                                      for lo, hi in zip(paired["low"], paired["high"])]
        verdicts.append(frame)
    keys = ["protocol", "domain", "seed"]
    pop = m2[m2["label"] == "pop"].merge(m3[m3["label"] == "pop"], on=keys, suffixes=("_2", "_3"))
    gap = float(max((pop[f"{k}_2"] - pop[f"{k}_3"]).abs().max() for k in METRICS)) if len(pop) else None
    check = ("pop is not in both files: the two evaluations are not checked against each other" if gap is None else
             f"pop, which trains nothing, scores alike in both trees (largest difference over every metric, "
             f"protocol and domain: {gap:.1e}), so both evaluate the same cases against the same candidates")
    commands = [V2_COMMAND, V3_VARIANTS_COMMAND][:len(sources) - 1]
    return (markdown(pd.DataFrame(rows)) + "\n\n" + markdown(pd.concat(verdicts, ignore_index=True))
            + f"\n\nTest NDCG@10; {check}; " + _source_line(sources, *commands))


def benchmark_train_eval(root: Path) -> str:
    """The training and evaluation benchmark (`benchmarks/bench_train_eval.py`), one table per dataset it ran on:
    sequences/s and the ratio to SASRec per model, measured side by side, and the batched / per-case evaluation."""
    parts = []
    for path in sorted((root / "benchmarks").glob("train_eval_*.json")):
        run = json.loads(path.read_text())
        rows = [{"model": m, "training sequences/s": f"{v:,.0f}", "× SASRec": f"{run['ratio_to_sasrec'][m]:.2f}"}
                for m, v in run["sequences_per_s"].items()]
        name = path.stem.removeprefix("train_eval_")
        negatives = f", {run['negatives']:,} sampled negatives" if "negatives" in run else ""
        parts.append(f"**{name}** (channels {', '.join(run['channels'])}; batch {run['batch_size']}{negatives}, "
                     f"{run['steps']} steps per model, interleaved; {run['machine']}; commit {run['commit']})\n\n"
                     + markdown(pd.DataFrame(rows)) + "\n\n"
                     f"Evaluation of {run['eval_cases']} cases (LLM-EMF): batched "
                     f"{run['eval_batched_cases_per_s']:,.0f} cases/s, per-case loop {run['eval_per_case_cases_per_s']:,.0f} cases/s, ratio "
                     f"**{run['eval_ratio']}×** (the same ranks in {run['eval_same_ranks']} of {run['eval_cases']}"
                     + (f"; the other {run['eval_other_ranks_at_near_ties']} at a candidate within "
                        f"{run['eval_near_tie']:g} of the target's score, a float rounding of the one-case "
                        f"matrix product" if run.get("eval_other_ranks_at_near_ties") else "") + "); "
                     + _source_line([path], run["command"]))
    return "\n\n".join(parts) if parts else _missing(root / "benchmarks" / "train_eval_<pair>_<source>.json")


def notebook_times(entries: list[dict]) -> dict:
    """{(pair, notebook): (seconds, attempts, completed)} from a pipeline timing record (`pipeline.recorded`): a
    notebook's time is its first completed run plus the interrupted attempts (stopped, failed, or left "running" by
    a kill) before it, which that run resumed from their caches; where no run has completed yet, the attempts so
    far, completed False. Runs after the first completed one are left out: a resumed invocation re-runs the
    notebooks that had completed, from their caches, which one uninterrupted run would not (a new measurement
    starts from an empty record and `artifacts/`)."""
    times = {}
    for e in entries:
        key = (e["parameters"].get("domain_pair", "?"), e["notebook"])
        seconds, attempts, completed = times.get(key, (0.0, 0, False))
        if not completed:
            times[key] = (seconds + e["seconds"], attempts + 1, e["status"] == "done")
    return times


def _duration(seconds: float) -> str:
    minutes = round(seconds / 60)
    return f"{seconds:.0f} s" if seconds < 60 else f"{minutes} min" if minutes < 60 else \
        f"{minutes // 60} h {minutes % 60:02d} min"


def _time_cell(seconds: float, attempts: int, completed: bool) -> str:
    """One notebook's time in the reproduce_real table, with how many runs made it."""
    if not attempts:
        return "not run yet"
    runs = "" if attempts == 1 else f" ({attempts} runs: {attempts - 1} interrupted, then resumed)" if completed \
        else f" ({attempts} runs)"
    return _duration(seconds) + ("" if completed else " so far, not completed") + runs


def reproduce_real(root: Path) -> str:
    """`make reproduce-real`'s wall time notebook by notebook and pair, from its timing record
    (results/reproduce_real.json, `pipeline.py --record`; `notebook_times`), with the total of each pair where every
    notebook has completed, and "not reached" where one has not."""
    path = root / "reproduce_real.json"
    if not path.is_file():
        return _missing(path)
    entries = json.loads(path.read_text())
    times = notebook_times(entries)
    pairs = list(dict.fromkeys([*PAIR_TITLES, *(pair for pair, _ in times)]))   # both real pairs, run or not
    notebooks = sorted({nb.name for nb in notebook_sequence()} | {nb for _, nb in times})
    rows = []
    for nb in notebooks:
        row = {"notebook": nb.removesuffix(".ipynb")}
        for pair in pairs:
            row[PAIR_TITLES.get(pair, pair)] = _time_cell(*times.get((pair, nb), (0.0, 0, False)))
        rows.append(row)
    total = {"notebook": "**all**"}
    for pair in pairs:
        done = [times[(pair, nb)] for nb in notebooks if times.get((pair, nb), (0, 0, False))[2]]
        total[PAIR_TITLES.get(pair, pair)] = f"**{_duration(sum(t[0] for t in done))}**" \
            if len(done) == len(notebooks) else \
            f"not reached ({len(done)} of {len(notebooks)} notebooks completed)"
    rows.append(total)
    machines = sorted({e["machine"] for e in entries})
    commits = list(dict.fromkeys(e["commit"] for e in entries))
    return (markdown(pd.DataFrame(rows)) + f"\n\nWall time per notebook; {'; '.join(machines)}; commits "
            f"{', '.join(commits)}; {entries[0]['started'][:10]} to {entries[-1]['started'][:10]}; "
            + _source_line([path], "make reproduce-real"))


TABLES = {
    "headline": headline,
    "benchmark_train_eval": benchmark_train_eval,
    "model_versions": model_versions,
    **{f"diagnostics_{name}": (lambda root, name=name: diagnostic(root, name))
       for name in ("init_norms", "position_init", "objective", "loss_weighting", "llmemf_design",
                    "content_dropout", "batch_size", "fused_scale_movie_book")},
    "real_04": lambda root: table_04(root, "food_kitchen_llmcdsr", REAL_COMMAND),
    "real_04_movie_book": lambda root: table_04(root, "movie_book_llmcdsr", REAL_COMMANDS["movie_book_llmcdsr"]),
    "real_warm_cold": lambda root: warm_cold_04(root, "food_kitchen_llmcdsr"),
    "real_warm_cold_movie_book": lambda root: warm_cold_04(root, "movie_book_llmcdsr"),
    "tuning_food_kitchen": lambda root: tuning_choice(root, "food_kitchen_llmcdsr"),
    "tuning_movie_book": lambda root: tuning_choice(root, "movie_book_llmcdsr"),
    "convergence_food_kitchen": lambda root: convergence(root, "food_kitchen_llmcdsr"),
    "convergence_movie_book": lambda root: convergence(root, "movie_book_llmcdsr"),
    "real_claims_movie_book": lambda root: claims_table(root, "movie_book_llmcdsr"),
    "real_05": lambda root: table_05(root, "food_kitchen_llmcdsr"),
    "real_05_movie_book": lambda root: table_05(root, "movie_book_llmcdsr"),
    "real_05_warm_cold": lambda root: warm_cold_04(root, "food_kitchen_llmcdsr", "05_ablations"),
    "real_05_warm_cold_movie_book": lambda root: warm_cold_04(root, "movie_book_llmcdsr", "05_ablations"),
    "default_05_warm_cold": lambda root: warm_cold_04(root, "food_kitchen_synthetic", "05_ablations"),
    "default_04": lambda root: table_04(root, "food_kitchen_synthetic", DEFAULT_COMMAND),
    "default_05": lambda root: table_05(root, "food_kitchen_synthetic"),
    "real_claims": lambda root: claims_table(root, "food_kitchen_llmcdsr"),
    "default_claims": lambda root: claims_table(root, "food_kitchen_synthetic"),
    "default_06": lambda root: attention_06(root, "food_kitchen_synthetic"),
    "setting_differences": setting_differences,
    "reproduce_real": reproduce_real,
}

MARKER = re.compile(r"<!-- report:(?P<name>[\w-]+) -->\n(?P<body>.*?)<!-- /report:(?P=name) -->", re.S)


def documents(root: Path | None = None) -> list[Path]:
    """The files that may hold generated tables: README.md and docs/*.md."""
    root = root or project_root()
    return [root / "README.md", *sorted((root / "docs").glob("*.md"))]


def render(text: str, path: Path, results: Path | None = None) -> str:
    """`text` with every generated table between its markers made afresh from `results` (default results/).
    Links are written relative to `path`'s folder. An unknown NAME, or an opening marker without its closing one,
    is an error naming the file and line."""
    results = results or results_dir()
    up = "../" * len(path.resolve().relative_to(project_root().resolve()).parent.parts)
    for number, line in enumerate(text.splitlines(), 1):
        opened = re.fullmatch(r"<!-- report:([\w-]+) -->", line.strip())
        if opened and opened.group(1) not in TABLES:
            raise ValueError(f"{path}:{number}: unknown report table {opened.group(1)!r}; known: {sorted(TABLES)}")
        if opened and f"<!-- /report:{opened.group(1)} -->" not in text:
            raise ValueError(f"{path}:{number}: `{line.strip()}` has no closing `<!-- /report:{opened.group(1)} -->`")

    def fill(match: re.Match) -> str:
        body = TABLES[match["name"]](results).replace("{root}", up)
        return f"<!-- report:{match['name']} -->\n{body}\n<!-- /report:{match['name']} -->"

    return MARKER.sub(fill, text)


def stale(root: Path | None = None) -> list[str]:
    """'file: NAME' for each generated table whose committed text differs from what its results file gives."""
    out = []
    for path in documents(root):
        if not path.is_file():
            continue
        text = path.read_text()
        fresh = render(text, path)
        if fresh != text:
            old = {m["name"]: m[0] for m in MARKER.finditer(text)}
            new = {m["name"]: m[0] for m in MARKER.finditer(fresh)}
            out += [f"{path.relative_to(project_root())}: {n}" for n in new if old.get(n) != new[n]]
    return out


def write(root: Path | None = None) -> list[Path]:
    """Rewrite the generated tables of every document in place; returns the files that changed."""
    changed = []
    for path in documents(root):
        if path.is_file():
            text = path.read_text()
            fresh = render(text, path)
            if fresh != text:
                path.write_text(fresh)
                changed.append(path)
    return changed


# ------------------------------------------------------------------------------------ what the notebooks end on
class TextTable:
    """A table of texts as a notebook shows it: left-aligned and never cut (pandas' HTML right-aligns cells and cuts
    them at `display.max_colwidth`). Its HTML ids come from its content, and its plain-text form is the frame's, so
    a re-run notebook shows the same output."""

    def __init__(self, frame: pd.DataFrame):
        self.frame = frame

    def _repr_html_(self) -> str:
        import hashlib

        uuid = hashlib.sha256(self.frame.to_csv().encode()).hexdigest()[:8]
        left = "text-align: left; vertical-align: top;"
        return (self.frame.style.set_uuid(uuid).set_properties(**{"text-align": "left"})
                .set_table_styles([{"selector": "th", "props": left}, {"selector": "td", "props": left}])._repr_html_())

    def __repr__(self) -> str:
        return self.frame.to_string()


def _best(metrics: pd.DataFrame, protocol: str, domain: str) -> tuple[str, float]:
    rows = metrics[(metrics["protocol"] == protocol) & (metrics["domain"] == domain)]
    means = rows.groupby("label", sort=False)[METRIC].mean()
    return means.idxmax(), means.max()


def _verdict_words(eff: pd.DataFrame) -> str:
    """'holds in 3 of 4 cells (kitchen, sampled: within noise)'-style summary of one comparison's cells."""
    if eff.empty:
        return "not measured"
    counts = eff["verdict"].value_counts()
    if "one seed" in counts:
        ahead = int((eff["effect"] > 0).sum())
        return f"ahead in {ahead} of {len(eff)} cells (one seed: no spread, so no verdict)"
    main = counts.idxmax()
    rest = [f"{r.domain}, {r.protocol}: {r.verdict}" for r in eff.itertuples() if r.verdict != main]
    return f"{main} in {counts.max()} of {len(eff)} cells" + (f" ({'; '.join(rest)})" if rest else "")


def training_reading(metrics: pd.DataFrame, epochs: int | None = None, patience: int = 1) -> str:
    """Markdown for the end of notebook 04: which model leads where, LLM-EMF against the paper's claims, the seed
    spread (or its absence), and whether the runs stopped at their budget: a run whose best epoch is later than
    `epochs - patience` did not end by early stopping."""
    domains = list(dict.fromkeys(metrics["domain"]))
    lines = [f"**What these numbers say** (test {METRIC}, {_seeds(metrics)}):", ""]
    for protocol, name in PROTOCOLS:
        leads = [f"{d}: `{label}` ({value:.4f})" for d in domains for label, value in [_best(metrics, protocol, d)]]
        lines.append(f"- Best under the {name} protocol: " + "; ".join(leads) + ".")
    for claim, experiment, a, b in claims.CLAIMS:
        if experiment == "04_train" and {a, b} <= set(metrics["label"]):
            lines.append(f"- The paper's claim *{claim}*: {_verdict_words(claims.effect(metrics, a, b))}.")
    if metrics["seed"].nunique() < 2:
        lines.append("- One seed gives no spread: a difference here is one draw. Run `-p seeds 0,1,2` to weigh the "
                     "effects against the seeds' spread, as notebook 05 does.")
    if epochs is not None:
        from .train import budget_limited

        trained = metrics[metrics["best_epoch"] > 0]                      # popularity trains no epoch
        at_budget = sorted(trained.loc[budget_limited(trained["best_epoch"], epochs, patience), "label"].unique())
        if at_budget:
            lines.append(f"- Best validation epoch later than {epochs - max(patience, 1)} of {epochs} (patience "
                         f"{patience}) for {', '.join(f'`{x}`' for x in at_budget)}: these runs hit their epoch "
                         "budget; they are budget numbers, not converged ones.")
        else:
            lines.append(f"- Every run ended by early stopping (best epoch at least {max(patience, 1)} before the "
                         f"budget of {epochs}).")
    return "\n".join(lines)


def ablation_reading(metrics: pd.DataFrame, reference: str = "LLM-EMF (full)", experiment: str = "05_ablations",
                     data: str = "") -> str:
    """Notebook 05's ending: the verdict of each of the paper's claims that these runs measure, as a table, then
    every comparison of the full model with a variant in a few words."""
    table = claims.verdict_table({experiment: metrics})
    lines = [f"**The paper's claims on {data or 'these data'}** (test {METRIC}, {_seeds(metrics)}; effect ± spread "
             "over seeds; a claim holds where the effect exceeds the spread, fails where it is below minus the "
             "spread, and is within noise otherwise):", "",
             markdown(table) if not table.empty else "*None of the paper's claims is measured by these variants.*",
             "", f"**Each variant against `{reference}`**:", ""]
    effects = claims.ablation_effects(metrics, reference)
    for label, eff in effects.groupby("B", sort=False):
        lines.append(f"- `{label}`: *the full model beats it* {_verdict_words(eff)}.")
    return "\n".join(lines)


def attention_reading(share: pd.DataFrame, heavy: pd.DataFrame, target: str = "kitchen", other: str = "food") -> str:
    """Notebook 06's ending: how much attention crosses domains, against what the history's mix gives."""
    last = share.sort_values("distance").head(4)
    a, i = last["attention_other_domain"], last["items_other_domain"]
    above = (heavy["attention_other_domain"] > heavy["history_other_domain"]).mean()
    gap = heavy["attention_other_domain"].mean() - heavy["history_other_domain"].mean()
    return "\n".join([
        "**What the attention shows**:", "",
        f"- The merged sequence's last block puts {a.min():.2f} to {a.max():.2f} of its attention on the other domain "
        f"at the latest four positions, where other-domain items are {i.min():.2f} to {i.max():.2f} of what a query "
        "sees: it mixes domains about in proportion to the history, neither avoiding nor seeking the other domain."
        if (a - i).abs().max() < 0.05 else
        f"- The merged sequence's last block puts {a.min():.2f} to {a.max():.2f} of its attention on the other domain "
        f"at the latest four positions, against {i.min():.2f} to {i.max():.2f} of other-domain items in view.",
        f"- For the {len(heavy)} test users with a {target} target after a {other}-heavy history, the {target} "
        f"preference's cross-attention at the last step puts {heavy['attention_other_domain'].mean():.2f} of its "
        f"weight on {other} items (median {heavy['attention_other_domain'].median():.2f}), against a {other} share of "
        f"{heavy['history_other_domain'].mean():.2f} in their histories; {above:.0%} of them lie above the diagonal. "
        + (f"The cross-domain path reads the {other} history at about its weight, which is what lets such a user's "
           f"{target} prediction use it." if abs(gap) < 0.1 else
           f"The cross-domain path reads the {other} history {'below' if gap < 0 else 'above'} its weight."),
        "- The paper shows attention maps and no number to set beside these; they describe one trained model "
        "(seed 0), not a spread over seeds.",
    ])


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--check", action="store_true", help="only say which tables differ from their files (exit 1)")
    args = ap.parse_args(argv)
    if args.check:
        old = stale()
        for entry in old:
            print(f"stale: {entry}")
        return 1 if old else 0
    for path in write():
        print(f"rewrote {path.relative_to(project_root())}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
