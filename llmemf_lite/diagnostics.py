"""Training diagnostics: decisive one-change-at-a-time experiments on the real Food-Kitchen data, each a list of
variants run through `experiment.run_experiment` under one protocol, so that the only difference between two rows
is the change named in their labels.

    python -m llmemf_lite.diagnostics init_norms position_init objective loss_weighting llmemf_design content_dropout
    python -m llmemf_lite.diagnostics batch_size
    python -m llmemf_lite.diagnostics fusion_level --epochs 40 --patience 5 --seeds 0 1 2   # notebook 04's protocol
    python -m llmemf_lite.diagnostics fusion_level_default_world --epochs 4 --seeds 0 1 2    # the synthetic world
    python -m llmemf_lite.diagnostics fused_scale_movie_book --epochs 40 --patience 5 --seeds 0 1 2

Each experiment writes results/diagnostics/<name>/food_kitchen_llmcdsr/ (those named *_default_world:
food_kitchen_synthetic/, the default synthetic world; those named *_movie_book: movie_book_llmcdsr/, the real
Movie-Book data) (metrics.csv, history.csv, summary.md; see
`experiment.py`); `init_norms` writes results/diagnostics/init_norms.csv (the position / item input norms of every
model with a position table, at initialisation). What each experiment found and the decision taken is in
docs/diagnostics.md, whose tables `report.diagnostic_summary` makes from those files. A variant shared by two
experiments (the same effective model configuration and training settings, notebook 04's protocol included) is
trained once: the second experiment resumes its finished checkpoint.
"""
from __future__ import annotations

import argparse
from dataclasses import dataclass

from .experiment import ExperimentConfig, RunSpec, run_experiment


@dataclass
class DiagnosticsConfig:
    data_dir: str = "../shared/data/food-kitchen"
    movie_book_dir: str = "../shared/data/movie-book"   # the experiments named *_movie_book
    seeds: tuple = (0,)
    epochs: int = 12
    patience: int = 3
    batch_size: int = 128
    workers: int = 0               # runs side by side, one thread each (0: one per core)
    progress: bool = True


OLD_POS = {"pos_std": 1.0}         # the position tables' initialisation before the fix (nn.Embedding's N(0, 1))
TITLES = dict(text_encoder="minilm", text_source="title")   # the real data's text channel: MiniLM over titles
# notebook 04's tuned LLM-EMF setting on real Food-Kitchen (results/04_train/food_kitchen_llmcdsr/variants.json)
TUNED_LLMEMF = dict(overrides={"dropout": 0.2, "n_negatives": 2000}, train={"lr": 1e-3}, **TITLES)

# notebook 04's tuned LLM-EMF setting on real Movie-Book (results/tuning/movie_book_llmcdsr/choice.json)
TUNED_LLMEMF_MOVIE_BOOK = dict(overrides={"dropout": 0.5, "n_negatives": 2000}, train={"lr": 3e-3}, **TITLES)

# name -> variants; each label names its one change against the experiment's reference row
EXPERIMENTS: dict[str, list[RunSpec]] = {
    "position_init": [
        RunSpec("sasrec, positions N(0, 1)", "sasrec", OLD_POS),
        RunSpec("sasrec, positions N(0, 0.02)", "sasrec", {}),
        RunSpec("sasrec, positions N(0, 1), items x sqrt(d)", "sasrec", {**OLD_POS, "item_scale": 8.0}),
        RunSpec("llmemf_id, positions N(0, 1)", "llmemf_id", OLD_POS),
        RunSpec("llmemf_id, positions N(0, 0.02)", "llmemf_id", {}),
    ],
    "objective": [
        RunSpec("sasrec, 500 sampled negatives", "sasrec", {}),
        RunSpec("sasrec, 2000 sampled negatives", "sasrec", {"n_negatives": 2000}),
        RunSpec("sasrec, full softmax", "sasrec", {"n_negatives": 0}),
    ],
    "loss_weighting": [
        RunSpec("sasrec, domain means summed", "sasrec", {}),
        RunSpec("sasrec, every target alike", "sasrec", {"loss_weighting": "target"}),
        RunSpec("gru4rec, domain means summed", "gru4rec", {}),
        RunSpec("gru4rec, every target alike", "gru4rec", {"loss_weighting": "target"}),
        RunSpec("llmemf_id, domain means summed", "llmemf_id", {}),
        RunSpec("llmemf_id, every target alike", "llmemf_id", {"loss_weighting": "target"}),
    ],
    "llmemf_design": [   # model version 3's alternatives, IDs only (the sequence network alone)
        RunSpec("llmemf_id, no merged next-item objective", "llmemf_id", {"aux_weight": 0.0}),
        RunSpec("llmemf_id, no merged next-item objective, 4 heads (2 merged, 2 own-domain)", "llmemf_id",
                {"aux_weight": 0.0, "n_heads": 4}),
        RunSpec("llmemf_id, + merged next-item objective at weight 1 (the default)", "llmemf_id", {}),
    ],
    "batch_size": [      # (e): does a larger batch, with its learning rate scaled by sqrt(batch ratio), converge sooner?
        RunSpec(f"sasrec, batch {b}, lr {lr:g}", "sasrec", {"n_negatives": 2000}, train={"batch_size": b, "lr": lr})
        for b, lr in ((128, 2e-3), (256, 2.83e-3), (512, 4e-3))
    ],
    "fusion_level": [    # issue 19: was version 3's accuracy gap to version 2 its one network over the fused item?
        # the default (fusion="network", content networks 1 block) is notebook 04's llmemf row, same protocol
        RunSpec("llmemf, one network per channel", "llmemf",
                {**TUNED_LLMEMF["overrides"], "fusion": "network", "content_blocks": None},
                train=TUNED_LLMEMF["train"], **TITLES),
        # cheaper forms (0.5x SASRec or more?): the text network one block deep (now the default); and without the
        # merged objective
        RunSpec("llmemf, one network per channel, text network 1 block", "llmemf",
                {**TUNED_LLMEMF["overrides"], "fusion": "network", "content_blocks": 1},
                train=TUNED_LLMEMF["train"], **TITLES),
        RunSpec("llmemf, one network per channel, text network 1 block, no merged objective", "llmemf",
                {**TUNED_LLMEMF["overrides"], "fusion": "network", "content_blocks": 1, "aux_weight": 0.0},
                train=TUNED_LLMEMF["train"], **TITLES),
        # version 3's first default: one network over the fused item vector (its notebook 04 row until commit e3d5aec)
        RunSpec("llmemf, one network over the fused item (score fusion)", "llmemf",
                {**TUNED_LLMEMF["overrides"], "fusion": "score"}, train=TUNED_LLMEMF["train"], **TITLES),
    ],
    "fusion_level_default_world": [   # the same question on the default (synthetic) world, with ID, image and text
        RunSpec("llmemf, one network over the fused item (score fusion)", "llmemf", {"fusion": "score"}),
        RunSpec("llmemf, one network per channel", "llmemf", {"fusion": "network", "content_blocks": None}),
        RunSpec("llmemf, one network per channel, content networks 1 block (the default)", "llmemf", {}),
        # issue 19's 0.4x SASRec with three channels: one content network over image + text beside the ID network
        RunSpec("llmemf, one ID network and one joint content network of 1 block", "llmemf",
                {"content_network": "joint"}),
    ],
    "fused_scale_movie_book": [   # Books have no text: is their fused score, twice its ID part, why they trail?
        # the first is notebook 04's llmemf row on this pair (the default), same protocol
        RunSpec("llmemf, fused score x the model's channels", "llmemf",
                {**TUNED_LLMEMF_MOVIE_BOOK["overrides"], "fused_scale": "model"},
                train=TUNED_LLMEMF_MOVIE_BOOK["train"], **TITLES),
        RunSpec("llmemf, fused score x the item's own channels", "llmemf",
                {**TUNED_LLMEMF_MOVIE_BOOK["overrides"], "fused_scale": "item"},
                train=TUNED_LLMEMF_MOVIE_BOOK["train"], **TITLES),
    ],
    "content_dropout": [
        RunSpec("llmemf, content dropout 0.2", "llmemf", {}, **TITLES),
        RunSpec("llmemf, content dropout 0", "llmemf", {"content_dropout": 0.0}, **TITLES),
    ],
}


def data_of(name: str) -> tuple[str, str]:
    """(domain pair, source) of an experiment, by its name: *_default_world the default synthetic world,
    *_movie_book the real Movie-Book data, any other the real Food-Kitchen data."""
    if name.endswith("_default_world"):
        return "food_kitchen", "synthetic"
    return ("movie_book" if name.endswith("_movie_book") else "food_kitchen"), "llmcdsr"


def run_diagnostic(name: str, config: DiagnosticsConfig = DiagnosticsConfig(), only: str | None = None):
    """Run (or resume) one experiment; `only`: just its variants whose label starts with this (e.g. "sasrec,")."""
    if name not in EXPERIMENTS:
        raise ValueError(f"unknown diagnostic {name!r}; known: {sorted(EXPERIMENTS)} and 'init_norms'")
    specs = [s for s in EXPERIMENTS[name] if only is None or s.label.startswith(only)]
    pair, source = data_of(name)
    cfg = ExperimentConfig(name=f"diagnostics/{name}", source=source, domain_pair=pair,
                           data_dir=None if source == "synthetic" else
                           {"food_kitchen": config.data_dir, "movie_book": config.movie_book_dir}[pair],
                           seeds=config.seeds, epochs=config.epochs, patience=config.patience,
                           batch_size=config.batch_size, workers=config.workers, progress=config.progress)
    return run_experiment(cfg, specs)


def init_norms(d: int = 64, n_items: int = 1000, seed: int = 0):
    """Mean row norm of the position table and of the item inputs of every model with a position table, at
    initialisation, and their ratio (a frame; written by `main`). Item inputs as the encoder sees them (C2DSR:
    graph-enhanced + ID, times sqrt(d))."""
    import numpy as np
    import pandas as pd
    import torch

    from .data.dataset import ItemSpace
    from .models import build_model

    space = ItemSpace(n_items // 2, n_items - n_items // 2)
    rng = np.random.default_rng(seed)
    seqs = [rng.integers(0, n_items, 8) for _ in range(50)]
    ids = torch.arange(n_items)
    rows = []
    for name, overrides in (("sasrec", OLD_POS), ("sasrec", {}), ("llmemf_id", OLD_POS), ("llmemf_id", {}),
                            ("bert4rec", {}), ("c2dsr", {})):
        torch.manual_seed(seed)
        model = build_model(name, space, train_sequences=seqs, **({"d": d} | overrides))
        if name == "sasrec":
            pos, items = model.encoders[0].pos.weight, model.items(ids)[0] * model.config.item_scale
        elif name == "llmemf_id":
            pos, items = model.network.pos.weight, model._input_items(ids)
        elif name == "bert4rec":
            pos, items = model.pos.weight, model.items.table(ids)
        else:
            pos, items = model.encoders[0].pos.weight, model._item_inputs()[2](ids)
        p, i = float(pos.detach().norm(dim=-1).mean()), float(items.detach().norm(dim=-1).mean())
        rows.append({"model": name, "setting": "positions N(0, 1)" if overrides else "default",
                     "position_norm": round(p, 4), "item_norm": round(i, 4), "ratio": round(p / i, 2)})
    return pd.DataFrame(rows)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("names", nargs="+", help=f"{sorted(EXPERIMENTS)} or init_norms")
    parser.add_argument("--epochs", type=int, default=DiagnosticsConfig.epochs)
    parser.add_argument("--patience", type=int, default=DiagnosticsConfig.patience)
    parser.add_argument("--workers", type=int, default=DiagnosticsConfig.workers)
    parser.add_argument("--seeds", type=int, nargs="+", default=list(DiagnosticsConfig.seeds))
    parser.add_argument("--only", default=None, help="just the variants whose label starts with this")
    args = parser.parse_args(argv)
    for name in args.names:
        if name == "init_norms":
            from .paths import results_dir

            out = results_dir() / "diagnostics" / "init_norms.csv"
            out.parent.mkdir(parents=True, exist_ok=True)
            frame = init_norms()
            frame.to_csv(out, index=False)
            print(f"{out}:\n{frame.to_string(index=False)}")
            continue
        run_diagnostic(name, DiagnosticsConfig(seeds=tuple(args.seeds), epochs=args.epochs,
                                                        patience=args.patience, workers=args.workers),
                       args.only)
        print(f"{name}: done")


if __name__ == "__main__":
    main()
