"""Looking at item embeddings (notebook 03): coverage, a 2-D PCA projection by domain, cross-domain nearest
neighbours with titles, and how often a nearest neighbour shares a known label (the synthetic world's theme / style).

What this file is: read-only views of `ItemEmbeddings`. What it is not: computing embeddings (embed.py). Similarities
are rounded before ranking (ties broken by item id) so that tables do not reorder on float noise between machines.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd


def coverage_table(ds, embeddings: dict) -> pd.DataFrame:
    """Items with a vector, per domain and in total, for each named `ItemEmbeddings`."""
    space = ds.space
    rows = []
    for name, emb in embeddings.items():
        row = {"embedding": name, "dim": emb.dim}
        for d, dom in enumerate(ds.pair.domains):
            r = space.domain_range(d)
            row[f"{dom} with vector"] = f"{int(emb.mask[r.start:r.stop].sum())} / {len(r)}"
        row["all"] = f"{int(emb.mask.sum())} / {len(emb.mask)} ({emb.mask.mean():.1%})"
        row["weights"] = "pretrained" if emb.manifest.get("pretrained") else "NONE (random init)"
        rows.append(row)
    return pd.DataFrame(rows).set_index("embedding")


def pca_2d(vectors: np.ndarray) -> np.ndarray:
    """The first two principal components of the rows; each axis' sign is fixed (largest loading positive)."""
    x = vectors.astype(np.float64) - vectors.mean(axis=0, keepdims=True)
    _, _, vt = np.linalg.svd(x, full_matrices=False)
    axes = vt[:2]
    axes *= np.sign(axes[np.arange(2), np.abs(axes).argmax(axis=1)])[:, None]
    return x @ axes.T


def plot_projections(ds, embeddings: dict, path: str | Path) -> Path:
    """One PCA panel per embedding, items coloured by domain (only items that have a vector)."""
    import matplotlib.pyplot as plt

    from ..plots import _save

    fig, axes = plt.subplots(1, len(embeddings), figsize=(4.6 * len(embeddings), 4.2), squeeze=False,
                             gridspec_kw={"wspace": 0.3})
    domain = ds.space.domain_of(np.arange(ds.space.n_items))
    for ax, (name, emb) in zip(axes[0], embeddings.items()):
        keep = np.flatnonzero(emb.mask)
        if len(keep) < 3:
            ax.text(0.5, 0.5, "fewer than 3 items have a vector", ha="center", va="center")
        else:
            xy = pca_2d(emb.vectors[keep])
            for d, (dom, colour) in enumerate(zip(ds.pair.domains, ("tab:blue", "tab:orange"))):
                sel = domain[keep] == d
                ax.scatter(xy[sel, 0], xy[sel, 1], s=5, alpha=0.5, color=colour, label=f"{dom} ({int(sel.sum())})")
            ax.legend(fontsize=8, markerscale=3)
        weights = "pretrained" if emb.manifest.get("pretrained") else "RANDOM-INIT weights"
        ax.set_title(f"{name}\n{emb.manifest.get('model')} ({weights})", fontsize=9)
        ax.set_xlabel("PC 1"), ax.set_ylabel("PC 2")
    tag = "SYNTHETIC " if ds.card.get("synthetic") else ""
    fig.suptitle(f"{tag}{ds.pair.name}: item embeddings, 2-D PCA, coloured by domain", y=1.02)
    out = _save(fig, path)
    plt.close(fig)
    return out


def _ranked(sims: np.ndarray, candidates: np.ndarray, k: int) -> np.ndarray:
    # rank by similarity rounded to 4 decimals, then by item id: stable across machines' float noise
    order = np.lexsort((candidates, -np.round(sims, 4)))
    return order[:k]


def synthetic_label_names(ds, label: str) -> list[str] | None:
    """The synthetic world's theme or style name per item (parsed from its description), or None for real data."""
    if not ds.card.get("synthetic") or label not in ("theme", "style"):
        return None
    pattern = r"theme ([^,]+)," if label == "theme" else r"style (.+)$"
    names = ds.items["description"].fillna("").str.extract(pattern)[0]
    return None if names.isna().all() else names.fillna("?").tolist()


def cross_domain_neighbours(ds, emb, query_ids, k: int = 3, label: str | None = None) -> pd.DataFrame:
    """For each query item, its `k` nearest items of the *other* domain by cosine similarity, with titles (and, for
    the synthetic world, the `label` "theme" or "style" of both, in brackets)."""
    space, titles = ds.space, ds.items["title"].fillna("(no title)").tolist()
    names = synthetic_label_names(ds, label) if label else None
    show = (lambda i: f"{titles[i]} [{names[i]}]") if names else (lambda i: titles[i])  # noqa: E731
    rows = []
    for q in query_ids:
        q = int(q)
        if not emb.mask[q]:
            rows.append({"query": show(q), "rank": None, "neighbour": "(query has no vector)", "cosine": None})
            continue
        other = np.array(space.domain_range(1 - int(space.domain_of(q))))
        other = other[emb.mask[other]]
        sims = emb.vectors[other] @ emb.vectors[q]
        for rank, j in enumerate(_ranked(sims, other, k), 1):
            rows.append({"query": show(q), "rank": rank, "neighbour": show(int(other[j])),
                         "cosine": round(float(sims[j]), 2)})
    return pd.DataFrame(rows)


def neighbour_agreement(ds, emb, labels, cross_domain: bool = True) -> dict:
    """Share of items whose nearest neighbour (in the other domain, by default) carries the same label, next to the
    share expected by chance (the label frequencies of the candidates)."""
    labels = np.asarray(labels)
    space = ds.space
    domain = space.domain_of(np.arange(space.n_items))
    hits, chance, n = 0, 0.0, 0
    for d in (0, 1):
        queries = np.flatnonzero(emb.mask & (domain == d))
        cands = np.flatnonzero(emb.mask & ((domain != d) if cross_domain else (domain == d)))
        if len(queries) == 0 or len(cands) == 0:
            continue
        for start in range(0, len(queries), 1024):  # blocks: the full matrix of a real dataset is gigabytes
            block = queries[start:start + 1024]
            sims = emb.vectors[block] @ emb.vectors[cands].T
            if not cross_domain:
                sims[block[:, None] == cands[None, :]] = -np.inf  # an item is not its own neighbour
            # nearest by rounded similarity, then lowest id (see _ranked)
            best = np.round(sims, 4).argmax(axis=1)
            hits += int((labels[cands[best]] == labels[block]).sum())
        freq = pd.Series(labels[cands]).value_counts(normalize=True)
        chance += float(freq.reindex(labels[queries]).fillna(0).sum())
        n += len(queries)
    return {"items": n, "agree": hits / n if n else 0.0, "chance": chance / n if n else 0.0}


def agreement_table(ds, embeddings: dict, labels: tuple[str, ...] = ("theme", "style")) -> pd.DataFrame:
    """Nearest cross-domain neighbour shares the label: rate next to chance, per embedding and label column (for
    the synthetic world, whose items carry their true theme and style). Empty when the items have no such column."""
    rows = []
    for label in [c for c in labels if c in ds.items.columns]:
        for name, emb in embeddings.items():
            a = neighbour_agreement(ds, emb, ds.items[label].to_numpy())
            rows.append({"embedding": name, "label": label, "items": a["items"],
                         "neighbour shares it": f"{a['agree']:.0%}", "chance": f"{a['chance']:.0%}"})
    return pd.DataFrame(rows).set_index(["label", "embedding"]) if rows else pd.DataFrame()


def embedding_summary(ds, embeddings: dict, agreement: pd.DataFrame | None = None) -> dict:
    """What notebook 03 records in results/: per embedding its model, weights in words, shape and coverage (no
    timings, so that a re-run with nothing changed rewrites the same file)."""
    out = {"dataset": ds.pair.name, "source": ds.card.get("source"), "synthetic": bool(ds.card.get("synthetic")),
           "embeddings": {}}
    for name, emb in embeddings.items():
        m = emb.manifest
        entry = {k: m.get(k) for k in ("modality", "encoder", "model", "pretrained", "weights_note", "weights_reason",
                                       "image_size", "image_size_rule", "text_source") if m.get(k) is not None}
        entry.update(shape=list(emb.vectors.shape), coverage=m["coverage"])
        if m.get("bad_files"):
            entry["bad_files"] = len(m["bad_files"])
        out["embeddings"][name] = entry
    if agreement is not None and len(agreement):
        out["nearest_cross_domain_neighbour_agreement"] = {
            f"{label} / {name}": {"agree": r["neighbour shares it"], "chance": r["chance"]}
            for (label, name), r in agreement.iterrows()}
    return out
