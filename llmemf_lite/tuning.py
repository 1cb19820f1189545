"""One tuning budget for every trainable model: the same small grid (learning rate x dropout, four
configurations, and one more with the model's own paper settings where they differ from the project's), searched
by successive halving with seed 0: every configuration trains `rung_epochs` epochs, the best `keep` of each model
by validation NDCG@10 (sampled, the selection score of every run) train on to early stopping, and the best of
those is chosen; the chosen configuration per model is then trained with three seeds and tested once, on the real
Food-Kitchen data, under the fair-training protocol (docs/training.md).

    python -m llmemf_lite.tuning grid     # results/tuning_rung/ and tuning/food_kitchen_llmcdsr/: seed 0
    python -m llmemf_lite.tuning final    # results/04_train/food_kitchen_llmcdsr/: the chosen ones, seeds 0, 1, 2
    python -m llmemf_lite.tuning all      # both, one after the other (notebook 04 with -p tuned True)
    python -m llmemf_lite.tuning all --models c2dsr   # one model more: added to the others' choices and tables

Written: results/tuning_rung/<pair>_<source>/ (every configuration's run as it stands when the grid last ran: a
configuration that went on has its finished run there; its rung score is always read from its first
`rung_epochs` epochs) and results/tuning/<pair>_<source>/
(the configurations that went on; metrics.csv, history.csv, summary.md as every experiment, and
choice.json: per model the grid, each configuration's score at the rung and, if it went on, its converged
validation score and best epoch, and the chosen one). Every model gets the same four configurations, and a model
whose paper sets something otherwise than the project's defaults gets one more, its paper's settings at the first
grid point (`PAPER_SETTINGS`: SASRec's sqrt(d) input scaling, BERT4Rec's mask ratio for dense data, C2DSR's
width 256 and window of 15), none applied silently; the other points train at the project's width
(`PROJECT_SETTINGS`). Successive halving (Jamieson & Talwalkar, 2016) halves the cost of the search against
training every configuration to convergence; its known bias, towards configurations that start fast, is the same
for every model. Runs resume from their checkpoints (artifacts/), so an interrupted grid
continues where it stopped, a configuration that goes on from the rung continues its rung run, and `final`
reuses the grid's seed-0 run of each chosen configuration.
"""
from __future__ import annotations

import argparse
import itertools
import json
from dataclasses import dataclass, replace

import pandas as pd

from .experiment import ExperimentConfig, RunSpec, results_folder, run_experiment


@dataclass
class TuningConfig:
    domain_pair: str = "food_kitchen"
    source: str = "llmcdsr"
    data_dir: str = "../shared/data/food-kitchen"
    # the group's earlier models (presets of the LLM-EMF class) come after the ones they may coincide with on data
    # without a channel (IFCDSR is LLM-EMF ID-only without images), so that the duplicate is the one not run
    models: tuple = ("gru4rec", "sasrec", "bert4rec", "c2dsr", "llmemf_id", "llmemf", "ifcdsr", "hafvt")
    lrs: tuple = (1e-3, 3e-3)
    dropouts: tuple = (0.2, 0.5)
    epochs: int = 40               # an ample budget: a run ends by early stopping, well inside it
    patience: int = 5
    rung_epochs: int = 4           # successive halving: every configuration trains this long (about half of the
                                   # best epochs seen on the real data at lr 2e-3), then the best `keep` go on
    keep: int = 2
    batch_size: int = 128
    text_encoder: str = "minilm"
    text_source: str = "title"     # the real data's text: MiniLM over titles until every item is LLM-enriched
    train_negatives: int = 2000    # sampled negatives per domain and batch in training, for every model: on the
                                   # real data 2,000 led 500 on validation beyond the spread over 3 seeds (SASRec,
                                   # docs/diagnostics.md); the default world's 1,200-item domains keep 500
    final_seeds: tuple = (0, 1, 2)
    device: str = "cpu"
    workers: int = 0
    synthetic: object = None       # a SyntheticConfig for source="synthetic" (tests)
    n_negatives: int = 999         # the sampled protocol's negatives per case


# A model's own paper settings that differ from the project's defaults: one more grid point for that model, at the
# grid's first learning rate and dropout (SASRec's paper: lr 1e-3, dropout 0.2 on Amazon data), never applied
# silently. SASRec's paper scales the item inputs by sqrt(d) over N(0, 1)
# positions (on the real data ahead of the std-0.02 positions on validation, 3 seeds: docs/diagnostics.md);
# BERT4Rec's mask ratio 0.2 is its value for dense data (0.6, the default, for Amazon Beauty); C2DSR's window is 15.
PAPER_SETTINGS = {
    "sasrec": {"item_scale": 8.0, "pos_std": 1.0},
    "bert4rec": {"mask_prob": 0.2},
    "c2dsr": {"max_len": 15, "d": 256},
}

# The project's settings where a model's own defaults are its paper's, applied at every grid point of that model but
# its paper point: width d = 64, as every other model here has by default. C2DSR's defaults are its paper's
# (`C2DSRConfig`: d = 256, window 15). On the real Food-Kitchen data it trains at 0.06x SASRec's sequences/s at
# d = 256 and window 15, at 0.18x at d = 64 and the project's window of 50 (benchmarks/bench_train_eval.py:
# c2dsr, c2dsr_project_width).
PROJECT_SETTINGS = {"c2dsr": {"d": 64}}


def grid(cfg: TuningConfig) -> list[RunSpec]:
    """Every (model, lr, dropout) configuration, labelled "<model> lr=<lr> dropout=<p>", and for a model with its own
    paper settings (`PAPER_SETTINGS`) one more at the first lr and dropout with those settings ("... paper")."""
    specs = []
    for model in cfg.models:
        points = [(lr, p, False) for lr, p in itertools.product(cfg.lrs, cfg.dropouts)]
        if model in PAPER_SETTINGS:
            points.append((cfg.lrs[0], cfg.dropouts[0], True))
        for lr, p, paper in points:
            overrides = {"dropout": p, "n_negatives": cfg.train_negatives, **PROJECT_SETTINGS.get(model, {}),
                         **(PAPER_SETTINGS[model] if paper else {})}
            specs.append(RunSpec(f"{model} lr={lr:g} dropout={p:g}" + (" paper" if paper else ""), model, overrides,
                                 cfg.text_encoder, cfg.text_source, {"lr": lr}))
    return specs


def _experiment(cfg: TuningConfig, name: str, seeds) -> ExperimentConfig:
    return ExperimentConfig(name=name, domain_pair=cfg.domain_pair, source=cfg.source, data_dir=cfg.data_dir,
                            seeds=tuple(seeds), epochs=cfg.epochs, patience=cfg.patience,
                            batch_size=cfg.batch_size, device=cfg.device, workers=cfg.workers,
                            synthetic=cfg.synthetic, n_negatives=cfg.n_negatives, progress=False)


def rung_survivors(history: pd.DataFrame, specs: list[RunSpec], cfg: TuningConfig) -> list[RunSpec]:
    """Per model, the `keep` configurations with the best validation score within the first `rung_epochs` epochs
    (seed 0; ties: the first in grid order)."""
    out = []
    for model in cfg.models:
        scored = [(_rung_score(history, s, cfg), i, s) for i, s in enumerate(specs) if s.model == model]
        ranked = sorted((x for x in scored if x[0] == x[0]), key=lambda x: (-x[0], x[1]))   # a run not made: NaN
        out += [s for _, _, s in ranked[:cfg.keep]]
    return out


def _runs(history: pd.DataFrame, spec: RunSpec) -> pd.DataFrame:
    return history[(history["label"] == spec.label) & (history["seed"] == 0)]


def _rung_score(history: pd.DataFrame, spec: RunSpec, cfg: TuningConfig) -> float:
    """The best validation score of a configuration within the rung's epochs (a run resumed from beyond the rung
    is scored as if it had stopped there)."""
    runs = _runs(history, spec)
    return float(runs.loc[runs["epoch"] <= cfg.rung_epochs, "valid_score"].max())


def choose(history: pd.DataFrame, specs: list[RunSpec], cfg: TuningConfig, went_on: list[RunSpec]) -> dict:
    """Per model: each configuration's validation score at the rung; for those that went on, their best score and
    epoch (seed 0); the chosen configuration: the best of those that went on (ties: the first in grid order)."""
    from .train import budget_limited

    out, on = {}, {s.label for s in went_on}
    for model in cfg.models:
        rows = []
        for spec in (s for s in specs if s.model == model):
            runs = _runs(history, spec)
            if runs.empty:
                continue
            row = {"label": spec.label, "overrides": spec.overrides, "train": spec.train,
                   "rung_NDCG@10": round(_rung_score(history, spec, cfg), 6), "went_on": spec.label in on}
            if spec.label in on:
                best = runs.loc[runs["valid_score"].idxmax()]
                row.update({"valid_NDCG@10": round(float(best["valid_score"]), 6), "best_epoch": int(best["epoch"]),
                            "last_epoch": int(runs["epoch"].max()),
                            "budget_limited": bool(budget_limited(best["epoch"], cfg.epochs, cfg.patience))})
            rows.append(row)
        finished = [r for r in rows if r["went_on"]]
        if finished:
            out[model] = {"rung_epochs": cfg.rung_epochs, "keep": cfg.keep, "grid": rows,
                          "chosen": max(finished, key=lambda r: r["valid_NDCG@10"])["label"]}
    return out


def run_grid(cfg: TuningConfig = TuningConfig()) -> dict:
    """Successive halving over `grid(cfg)`: every configuration for `rung_epochs` epochs, then the survivors to early
    stopping within `epochs`; writes choice.json beside the grid's metrics and history."""
    specs = grid(cfg)
    # the rung's runs are an experiment of their own (results/tuning_rung/): its epoch budget is another setting
    rung = run_experiment(replace(_experiment(cfg, "tuning_rung", (0,)), epochs=cfg.rung_epochs), specs)
    survivors = rung_survivors(rung["history"], specs, cfg)
    exp = _experiment(cfg, "tuning", (0,))
    out = run_experiment(exp, survivors)
    history = pd.concat([rung["history"][~rung["history"]["label"].isin({s.label for s in survivors})],
                         out["history"]], ignore_index=True)
    choice = choose(history, specs, cfg, survivors) | not_run(specs, rung.get("skipped") or {}, cfg)
    choice = _with_earlier_models(results_folder(exp) / "choice.json", choice)
    (results_folder(exp) / "choice.json").write_text(json.dumps(choice, indent=1) + "\n")
    return choice


def not_run(specs: list[RunSpec], skipped: dict, cfg: TuningConfig) -> dict:
    """{model: {"not_run": why}} for each model none of whose grid points these data can run (every point the same
    model as another's, e.g. IFCDSR as LLM-EMF ID-only where no item has an image): `skipped` is the rung's."""
    out = {}
    for model in cfg.models:
        labels = [s.label for s in specs if s.model == model]
        if labels and all(label in skipped for label in labels):
            out[model] = {"not_run": f"none of its grid points run on these data ('{labels[0]}': "
                                     f"{skipped[labels[0]]})"}
    return out


def _with_earlier_models(path, choice: dict) -> dict:
    """`choice` and the entries of an earlier grid's choice.json for the models this grid did not search (a grid
    run with --models c2dsr adds C2DSR to the others' choices), kept only where that model's chosen run is still in
    the folder's metrics: an earlier grid of another setting had its rows replaced, and its choices go with them."""
    known = json.loads(path.read_text()) if path.is_file() else {}
    metrics = path.with_name("metrics.csv")
    labels = set(pd.read_csv(metrics)["label"]) if metrics.is_file() else set()
    return {**{m: v for m, v in known.items() if m not in choice and v.get("chosen") in labels}, **choice}


def final_specs(choice: dict, cfg: TuningConfig) -> list[RunSpec]:
    """The chosen configuration of each model under its plain model name, and popularity."""
    by_label = {s.label: s for s in grid(cfg)}
    return [RunSpec("pop", "pop")] + [replace(by_label[choice[m]["chosen"]], label=m)
                                      for m in cfg.models if "chosen" in choice.get(m, {})]


def run_final(cfg: TuningConfig = TuningConfig()) -> dict:
    """The chosen configurations with the final seeds; the models the grid could not run are recorded with why in
    skipped.json beside the results (read by results/paper_comparison.md and the notebooks)."""
    choice = load_choice(cfg)
    why = {m: choice[m]["not_run"] for m in cfg.models if "not_run" in choice.get(m, {})}
    return run_experiment(_experiment(cfg, "04_train", cfg.final_seeds), final_specs(choice, cfg), not_run=why)


def load_choice(cfg: TuningConfig) -> dict:
    """choice.json of the grid of `cfg`'s data; SystemExit naming the command that makes it where it is absent."""
    path = results_folder(_experiment(cfg, "tuning", (0,))) / "choice.json"
    if not path.is_file():
        raise SystemExit(f"{path}: no tuning grid on these data yet; run `python -m llmemf_lite.tuning grid` "
                         "(or notebook 04 with -p tuned True) first")
    return json.loads(path.read_text())


def tuned_variants(specs: list[RunSpec], choice: dict, cfg: TuningConfig, model: str = "llmemf") -> list[RunSpec]:
    """Ablation variants at `model`'s chosen configuration (its dropout, negatives, learning rate), each variant's
    own switches kept: the ablations of notebook 05 with -p tuned True change one part of the tuned full model."""
    chosen = {s.label: s for s in grid(replace(cfg, models=(model,)))}[choice[model]["chosen"]]
    return [replace(s, overrides={**chosen.overrides, **s.overrides}, train={**chosen.train, **s.train})
            for s in specs]


def tuned_experiment(exp: ExperimentConfig, cfg: TuningConfig) -> ExperimentConfig:
    """`exp` under the tuning's protocol: its epoch budget, patience, batch size and test negatives."""
    return replace(exp, epochs=cfg.epochs, patience=cfg.patience, batch_size=cfg.batch_size,
                   n_negatives=cfg.n_negatives)


def run_tuned(cfg: TuningConfig = TuningConfig()) -> dict:
    """The grid (each run resumed from its checkpoint, so a finished grid costs one test pass per configuration),
    then the final runs: notebook 04's `tuned` mode and `make reproduce-real`."""
    run_grid(cfg)
    return run_final(cfg)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("stage", choices=["grid", "final", "all"])
    parser.add_argument("--domain-pair", default=TuningConfig.domain_pair)
    parser.add_argument("--data-dir", default=TuningConfig.data_dir, help="the LLMCDSR release folder of the pair")
    parser.add_argument("--models", nargs="+", default=list(TuningConfig.models))
    parser.add_argument("--workers", type=int, default=TuningConfig.workers)
    args = parser.parse_args(argv)
    cfg = TuningConfig(domain_pair=args.domain_pair, data_dir=args.data_dir, models=tuple(args.models),
                       workers=args.workers)
    if args.stage == "grid":
        print(json.dumps(run_grid(cfg), indent=1))
    elif args.stage == "final":
        run_final(cfg)
    else:
        run_tuned(cfg)


if __name__ == "__main__":
    main()
