"""Reading LLM-EMF's attention: weights from the trained model through its documented hook
(`LLMEMF.record_attention` / `attention_maps`), never from a re-implementation.

What this file is: getting a trained model back (training it if no checkpoint exists), per-user attention maps with
the item ids on both axes, and summaries over many users (how much attention crosses domains, by position).
What it is not: plotting (`plots.py`).
"""
from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
import pandas as pd
import torch

from .batching import evaluation_views


@dataclass
class UserAttention:
    case: int
    target: int
    mixed_items: np.ndarray         # the history, oldest first (merged sequence)
    domain_items: list[np.ndarray]  # the history's X items and Y items, oldest first
    mixed: np.ndarray               # last merged self-attention block [len(mixed), len(mixed)]
    cross: list[np.ndarray]         # cross-attention of domain d's items over the merged history [len(d), len(mixed)]
    domain: list[np.ndarray]        # last self-attention block of domain d's own sequence [len(d), len(d)]


def trained_llmemf(cfg, spec, seed: int = 0):
    """The LLM-EMF of `spec` trained under `cfg` (seed `seed`), from its checkpoint; trains it first if needed
    (the experiment runner resumes finished runs instantly). Returns (model, dataset)."""
    from .data.build import build_dataset, dataset_folder
    from .experiment import _model_overrides, _slug, load_item_features, run_experiment, train_config
    from .models import build_model
    from .paths import artifacts_dir
    from .train import load_checkpoint

    run_experiment(replace(cfg, seeds=(seed,)), [spec])
    ds = build_dataset(cfg.domain_pair, cfg.source, cfg.data_dir, cfg.synthetic)
    features, _ = load_item_features(ds, spec, progress=False) if spec.uses_features else (None, {})
    model = build_model(spec.model, ds.space, features, **_model_overrides(spec, features, cfg))
    run_dir = artifacts_dir() / "runs" / dataset_folder(cfg.domain_pair, cfg.source, cfg.data_dir,
                                                         cfg.synthetic).name / _slug(spec, model,
                                                                                     train_config(cfg, spec, seed))
    load_checkpoint(run_dir / f"seed{seed}" / "best.safetensors", model)
    return model.eval(), ds


def user_attention(model, ds, sequence, case: int = -1, max_len: int = 50, stream: int | str = 0) -> UserAttention:
    """Attention maps of one evaluation sequence (history + target), trimmed to its real items. `stream`: which
    sequence network (`model.stream_names`; under fusion="network", the default, each item channel has its own)."""
    if not model.network.cross_domain:
        raise ValueError("user_attention reads the merged and cross-domain attention: this model was built with "
                         "cross_domain=False and has neither")
    views, targets = evaluation_views([np.asarray(sequence)], ds.space, max_len)
    model.record_attention(True)
    try:
        with torch.inference_mode():
            model.score_all(views)
        maps = model.attention_maps(stream)
    finally:
        model.record_attention(False)
    pad = ds.space.n_items
    mixed = views.mixed[0][views.mixed[0] != pad]
    dom = [views.domain_seq[d, 0][views.domain_seq[d, 0] != pad] for d in range(2)]
    m = len(mixed)
    # sequences are left-padded, so a user's real items are the last rows and columns of each map
    last = {prefix: max(int(k.split(".")[1]) for k in maps if k.startswith(prefix + "."))
            for prefix in ("mixed", "domain0", "domain1")}
    mixed_map = maps[f"mixed.{last['mixed']}"][0].numpy()[-m:, -m:]
    cross = [maps[f"cross{d}"][0].numpy()[-len(dom[d]):, -m:] if len(dom[d]) else np.zeros((0, m))
             for d in range(2)]
    own = [maps[f"domain{d}.{last[f'domain{d}']}"][0].numpy()[-len(dom[d]):, -len(dom[d]):] if len(dom[d])
           else np.zeros((0, 0)) for d in range(2)]
    return UserAttention(case, int(targets[0]), mixed, dom, mixed_map, cross, own)


def cross_domain_share_by_position(model, ds, sequences, max_positions: int = 20, max_len: int = 50,
                                   stream: int | str = 0) -> pd.DataFrame:
    """For the last merged self-attention block: the share of each query's attention that lands on items of the
    other domain, by the query's distance from the end of the history (0 = latest item), averaged over users,
    next to the share of other-domain items among the keys it may see (what uniform attention would give)."""
    rows = []
    for seq in sequences:
        ua = user_attention(model, ds, seq, max_len=max_len, stream=stream)
        dom = ds.space.domain_of(ua.mixed_items)
        for q in range(len(dom)):
            distance = len(dom) - 1 - q
            if distance >= max_positions:
                continue
            other = dom[: q + 1] != dom[q]
            rows.append({"distance": distance, "attention_other_domain": float(ua.mixed[q, : q + 1][other].sum()),
                         "items_other_domain": float(other.mean())})
    frame = pd.DataFrame(rows)
    return frame.groupby("distance").agg(attention_other_domain=("attention_other_domain", "mean"),
                                         items_other_domain=("items_other_domain", "mean"),
                                         queries=("distance", "size")).reset_index()


def heavy_history_cases(ds, split: str = "test", target_domain: int = 1, min_share: float = 0.7,
                        min_length: int = 6) -> list[int]:
    """Cases whose target is in `target_domain` while at least `min_share` of the history is the other domain
    (e.g. a Kitchen target after a Food-heavy history)."""
    out = []
    for i, seq in enumerate(ds.split(split)["items"]):
        history, target = seq[:-1], seq[-1]
        if len(history) < min_length or ds.space.domain_of([target])[0] != target_domain:
            continue
        if (ds.space.domain_of(history) != target_domain).mean() >= min_share:
            out.append(i)
    return out


def final_step_attention(model, ds, sequences, max_len: int = 50, stream: int | str = 0,
                         cases: list[int] | None = None) -> pd.DataFrame:
    """For each sequence: at the last history step, how much of the target-domain preference's cross-attention
    lands on items of the other domain, next to the other-domain share of the history. `cases` names the sequences
    in the table (e.g. their test case numbers; default 0, 1, ...); a history with no item of the target's domain
    has no such cross-attention and no row."""
    rows = []
    for i, seq in enumerate(sequences):
        ua = user_attention(model, ds, seq, max_len=max_len, stream=stream)
        d = int(ds.space.domain_of([ua.target])[0])
        if not len(ua.cross[d]):
            continue
        dom = ds.space.domain_of(ua.mixed_items)
        weights = ua.cross[d][-1]
        rows.append({"case": cases[i] if cases is not None else i, "target_domain": d,
                     "history_other_domain": float((dom != d).mean()),
                     "attention_other_domain": float(weights[dom != d].sum())})
    return pd.DataFrame(rows, columns=["case", "target_domain", "history_other_domain", "attention_other_domain"])
