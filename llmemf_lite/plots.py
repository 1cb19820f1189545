"""Figures. Each function draws one figure a reader understands without the code, saves a PNG and returns the path.

matplotlib is imported inside the functions so that `import llmemf_lite` stays light.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np


def _save(fig, path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    # A fixed 'Software' entry keeps PNG bytes identical across matplotlib runs.
    fig.savefig(path, dpi=110, bbox_inches="tight", metadata={"Software": None})
    return path


def plot_sequence_lengths(ds, path: str | Path) -> Path:
    """Histograms of how many items of each domain a sequence holds, per split; log-scaled counts."""
    import matplotlib.pyplot as plt

    space = ds.space
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.4), sharey=True)
    for d, (ax, name) in enumerate(zip(axes, ds.pair.domains)):
        for split, colour in (("train", "tab:blue"), ("valid", "tab:orange"), ("test", "tab:green")):
            seqs = ds.split(split)["items"]
            counts = np.array([int((space.domain_of(a) == d).sum()) for a in seqs])
            counts = counts[counts > 0]
            if len(counts):
                bins = np.arange(1, max(counts.max(), 2) + 2) if counts.max() <= 40 else 40
                ax.hist(counts, bins=bins, histtype="step", linewidth=1.6, color=colour, label=f"{split} (n={len(counts)})")
        ax.set_yscale("log")
        ax.set_xlabel(f"{name} items in a user's sequence")
        ax.set_title(f"domain {'XY'[d]}: {name}")
        ax.legend(fontsize=8)
    axes[0].set_ylabel("sequences")
    tag = "SYNTHETIC " if ds.card.get("synthetic") else ""
    fig.suptitle(f"{tag}{ds.pair.name} ({ds.card.get('source')}): sequence lengths per domain", y=1.02)
    out = _save(fig, path)
    plt.close(fig)
    return out


def plot_item_gallery(ds, path: str | Path, per_domain: int = 6, seed: int = 0) -> Path:
    """A few items of each domain: picture (if any) with its title underneath."""
    import textwrap

    import matplotlib.pyplot as plt
    from PIL import Image

    rng = np.random.default_rng(seed)
    space = ds.space
    fig, axes = plt.subplots(2, per_domain, figsize=(1.9 * per_domain, 4.6))
    for d, name in enumerate(ds.pair.domains):
        ids = rng.choice(np.array(space.domain_range(d)), size=per_domain, replace=False)
        for ax, item in zip(axes[d], sorted(ids)):
            loc = ds.image_location(int(item))
            if loc and "://" not in loc:
                ax.imshow(Image.open(loc).convert("RGB"), interpolation="nearest")
            else:
                ax.text(0.5, 0.5, "no image", ha="center", va="center", color="grey")
            title = ds.items["title"].iat[int(item)] or "(no title)"
            ax.set_title("\n".join(textwrap.wrap(title, 22)[:3]), fontsize=7)
            ax.set_xticks([]), ax.set_yticks([])
        axes[d][0].set_ylabel(name, fontsize=10)
    tag = "SYNTHETIC " if ds.card.get("synthetic") else ""
    fig.suptitle(f"{tag}{ds.pair.name}: sample items (image and title)", y=1.0)
    out = _save(fig, path)
    plt.close(fig)
    return out


def plot_learning_curves(history, path: str | Path, title: str = "") -> Path:
    """Validation score per epoch, one line per variant (mean over seeds, band = min..max), best epochs marked."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7.5, 4))
    for i, (label, rows) in enumerate(history.groupby("label", sort=False)):
        colour = plt.cm.tab10(i % 10)
        g = rows.groupby("epoch")["valid_score"]
        mean = g.mean()
        ax.plot(mean.index, mean.values, color=colour, label=label, linewidth=1.8)
        if rows["seed"].nunique() > 1:
            ax.fill_between(mean.index, g.min().values, g.max().values, color=colour, alpha=0.15)
        best = mean.idxmax()
        ax.plot([best], [mean[best]], "o", color=colour)
    ax.set_xlabel("epoch")
    ax.set_ylabel("validation NDCG@10 (sampled, mean of domains)")
    ax.set_title(f"Learning curves {title}".strip())
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="lower right")
    out = _save(fig, path)
    plt.close(fig)
    return out
