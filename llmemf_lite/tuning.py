"""One tuning budget for every trainable model: the same small grid (learning rate x dropout, four
configurations), each configuration trained with seed 0 to early stopping and scored on validation NDCG@10
(sampled, the selection score of every run); the best configuration per model is then trained with three seeds
and tested once, on the real Food-Kitchen data, under the fair-training protocol (docs/training.md).

    python -m llmemf_lite.tuning grid     # results/tuning/food_kitchen_llmcdsr/: every configuration, seed 0
    python -m llmemf_lite.tuning final    # results/04_train/food_kitchen_llmcdsr/: the chosen ones, seeds 0, 1, 2

Written: results/tuning/<pair>_<source>/ (metrics.csv, history.csv, summary.md as every experiment, and
choice.json: per model the grid, each configuration's validation score and best epoch, and the chosen one).
Every model gets the same four configurations, and a model whose paper sets something otherwise than the project's
defaults gets each of them again with its paper's settings (`PAPER_SETTINGS`: SASRec's sqrt(d) input scaling,
BERT4Rec's mask ratio for dense data, C2DSR's window of 15), none applied silently. Runs resume from
their checkpoints (artifacts/), so an interrupted grid continues where it stopped, and `final` reuses the grid's
seed-0 run of each chosen configuration.
"""
from __future__ import annotations

import argparse
import itertools
import json
from dataclasses import dataclass, replace

import pandas as pd

from .experiment import ExperimentConfig, RunSpec, run_experiment


@dataclass
class TuningConfig:
    domain_pair: str = "food_kitchen"
    source: str = "llmcdsr"
    data_dir: str = "../shared/data/food-kitchen"
    models: tuple = ("gru4rec", "sasrec", "bert4rec", "llmemf_id", "llmemf")
    lrs: tuple = (1e-3, 3e-3)
    dropouts: tuple = (0.2, 0.5)
    epochs: int = 40               # an ample budget: a run ends by early stopping, well inside it
    patience: int = 5
    batch_size: int = 128
    text_encoder: str = "minilm"
    text_source: str = "title"     # the real data's text: MiniLM over titles until every item is LLM-enriched
    train_negatives: int = 2000    # sampled negatives per domain and batch in training, for every model: on the
                                   # real data 2,000 led 500 on validation beyond the spread over 3 seeds (SASRec,
                                   # docs/diagnostics.md); the default world's 1,200-item domains keep 500
    final_seeds: tuple = (0, 1, 2)
    workers: int = 0
    synthetic: object = None       # a SyntheticConfig for source="synthetic" (tests)
    n_negatives: int = 999         # the sampled protocol's negatives per case


# A model's own paper settings that differ from the project's defaults: a third grid axis for that model (so at most
# 8 configurations), never applied silently. SASRec's paper scales the item inputs by sqrt(d) over N(0, 1)
# positions (on the real data ahead of the std-0.02 positions on validation, 3 seeds: docs/diagnostics.md);
# BERT4Rec's mask ratio 0.2 is its value for dense data (0.6, the default, for Amazon Beauty); C2DSR's window is 15.
PAPER_SETTINGS = {
    "sasrec": {"item_scale": 8.0, "pos_std": 1.0},
    "bert4rec": {"mask_prob": 0.2},
    "c2dsr": {"max_len": 15},
}


def grid(cfg: TuningConfig) -> list[RunSpec]:
    """Every (model, lr, dropout) configuration, labelled "<model> lr=<lr> dropout=<p>", and for a model with its own
    paper settings (`PAPER_SETTINGS`) each of them again with those settings ("... paper")."""
    specs = []
    for model, lr, p in itertools.product(cfg.models, cfg.lrs, cfg.dropouts):
        for paper in ((False, True) if model in PAPER_SETTINGS else (False,)):
            overrides = {"dropout": p, "n_negatives": cfg.train_negatives,
                         **(PAPER_SETTINGS[model] if paper else {})}
            specs.append(RunSpec(f"{model} lr={lr:g} dropout={p:g}" + (" paper" if paper else ""), model, overrides,
                                 cfg.text_encoder, cfg.text_source, {"lr": lr}))
    return specs


def _experiment(cfg: TuningConfig, name: str, seeds) -> ExperimentConfig:
    return ExperimentConfig(name=name, domain_pair=cfg.domain_pair, source=cfg.source, data_dir=cfg.data_dir,
                            seeds=tuple(seeds), epochs=cfg.epochs, patience=cfg.patience,
                            batch_size=cfg.batch_size, workers=cfg.workers, synthetic=cfg.synthetic,
                            n_negatives=cfg.n_negatives, progress=False)


def choose(history: pd.DataFrame, specs: list[RunSpec], cfg: TuningConfig) -> dict:
    """Per model: each configuration's best validation score and epoch (seed 0), and the configuration with the
    highest score (ties: the first in grid order)."""
    out = {}
    for model in cfg.models:
        rows = []
        for spec in (s for s in specs if s.model == model):
            runs = history[(history["label"] == spec.label) & (history["seed"] == 0)]
            if runs.empty:
                continue
            best = runs.loc[runs["valid_score"].idxmax()]
            rows.append({"label": spec.label, "overrides": spec.overrides, "train": spec.train,
                         "valid_NDCG@10": round(float(best["valid_score"]), 6), "best_epoch": int(best["epoch"]),
                         "last_epoch": int(runs["epoch"].max()),
                         "budget_limited": bool(best["epoch"] > cfg.epochs - cfg.patience)})
        if rows:
            out[model] = {"grid": rows, "chosen": max(rows, key=lambda r: r["valid_NDCG@10"])["label"]}
    return out


def run_grid(cfg: TuningConfig = TuningConfig()) -> dict:
    from .experiment import results_folder

    specs = grid(cfg)
    exp = _experiment(cfg, "tuning", (0,))
    out = run_experiment(exp, specs)
    choice = choose(out["history"], specs, cfg)
    (results_folder(exp) / "choice.json").write_text(json.dumps(choice, indent=1) + "\n")
    return choice


def final_specs(choice: dict, cfg: TuningConfig) -> list[RunSpec]:
    """The chosen configuration of each model under its plain model name, and popularity."""
    by_label = {s.label: s for s in grid(cfg)}
    return [RunSpec("pop", "pop")] + [replace(by_label[choice[m]["chosen"]], label=m)
                                      for m in cfg.models if m in choice]


def run_final(cfg: TuningConfig = TuningConfig()) -> dict:
    from .experiment import results_folder

    choice = json.loads((results_folder(_experiment(cfg, "tuning", (0,))) / "choice.json").read_text())
    return run_experiment(_experiment(cfg, "04_train", cfg.final_seeds), final_specs(choice, cfg))


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("stage", choices=["grid", "final"])
    parser.add_argument("--models", nargs="+", default=list(TuningConfig.models))
    parser.add_argument("--workers", type=int, default=TuningConfig.workers)
    args = parser.parse_args(argv)
    cfg = TuningConfig(models=tuple(args.models), workers=args.workers)
    if args.stage == "grid":
        print(json.dumps(run_grid(cfg), indent=1))
    else:
        run_final(cfg)


if __name__ == "__main__":
    main()
