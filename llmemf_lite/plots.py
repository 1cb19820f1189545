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
            title = _title_or_none(ds.items["title"].iat[int(item)])
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
    ax.xaxis.set_major_locator(plt.MaxNLocator(integer=True))
    ax.set_xlabel("epoch")
    ax.set_ylabel("validation NDCG@10 (sampled, mean of domains)")
    ax.set_title(f"Learning curves {title}".strip())
    ax.plot([], [], "o", color="grey", label="best validation epoch")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0))   # beside the axes: it hides no point
    out = _save(fig, path)
    plt.close(fig)
    return out


def plot_ablation_bars(metrics, path: str | Path, metric: str = "NDCG@10", protocol: str = "sampled",
                       title: str = "") -> Path:
    """One panel per domain, one horizontal bar per variant (mean over seeds, std as error bar). The first variant
    is the reference (the full model): its bar is dark and a dashed line marks its mean, so each ablation reads as
    a bar that ends left or right of that line."""
    import matplotlib.pyplot as plt

    rows = metrics[metrics["protocol"] == protocol]
    labels = list(dict.fromkeys(rows["label"]))
    domains = list(dict.fromkeys(rows["domain"]))
    g = rows.groupby(["domain", "label"])[metric]
    mean, std = g.mean(), g.std(ddof=0).fillna(0.0)
    fig, axes = plt.subplots(1, len(domains), figsize=(5.2 * len(domains) + 2.2, 0.42 * len(labels) + 1.4),
                             sharey=True, squeeze=False)
    ys = np.arange(len(labels))[::-1]
    colours = ["#1f3b73"] + ["#8fb3de"] * (len(labels) - 1)
    for ax, d in zip(axes[0], domains):
        values = [mean.get((d, label), np.nan) for label in labels]
        ax.barh(ys, values, xerr=[std.get((d, label), 0.0) for label in labels], color=colours, capsize=3,
                height=0.7)
        ax.axvline(values[0], color="#1f3b73", linestyle="--", linewidth=1)
        ax.set_title(d)
        ax.set_xlabel(f"test {metric} ({protocol}), mean ± std over seeds")
        ax.grid(axis="x", alpha=0.3)
    axes[0][0].set_yticks(ys, labels)
    fig.suptitle(title or f"Ablations: {metric}")
    fig.tight_layout()
    out = _save(fig, path)
    plt.close(fig)
    return out


def _title_or_none(title) -> str:
    """An item's title, or "(no title)" for a missing one (None, or NaN as parquet gives it back, or blank)."""
    return title if isinstance(title, str) and title.strip() else "(no title)"


def _short(title: str | None, n: int = 28) -> str:
    title = _title_or_none(title)
    return title if len(title) <= n else title[: n - 1] + "…"


def plot_user_attention(ua, ds, path: str | Path, title: str = "") -> Path:
    """Three heatmaps for one user, each row a query item and where its attention goes (last block; each row sums
    to 1): the target domain's own sequence (single-domain self-attention), the merged sequence (self-attention
    over both domains), and the target domain's items over the merged history (cross-attention, the part that
    carries cross-domain preference). Item titles on the axes, coloured by domain; one colour scale for all three."""
    import matplotlib.pyplot as plt

    titles = ds.items["title"].to_numpy()
    names = ds.pair.domains
    colours = ("tab:blue", "tab:red")
    td = int(ds.space.domain_of([ua.target])[0])

    def labelled(items):
        doms = ds.space.domain_of(items) if len(items) else np.zeros(0, int)
        return [f"[{names[d][:1].upper()}] {_short(titles[i])}" for i, d in zip(items, doms)], doms

    mixed, mixed_dom = labelled(ua.mixed_items)
    own, own_dom = labelled(ua.domain_items[td])
    panels = [(ua.domain[td], own, own_dom, own, own_dom,
               f"single-domain: {names[td]} → {names[td]}\n(self-attention over the {names[td]} sequence)"),
              (ua.mixed, mixed, mixed_dom, mixed, mixed_dom,
               "merged sequence: both domains\n(self-attention over the merged sequence)"),
              (ua.cross[td], own, own_dom, mixed, mixed_dom,
               f"cross-domain: {names[td]} → merged history\n(cross-attention)")]
    n, k = len(mixed), max(len(own), 1)
    vmax = max([float(m.max()) for m, *_ in panels if m.size] + [1e-9])
    # 9-point labels, one row of cells per label: readable at the notebook's width without zooming
    fig, axes = plt.subplots(1, 3, figsize=(8 + 0.4 * (n + n + k), 5 + 0.4 * n), layout="constrained",
                             gridspec_kw={"width_ratios": [k, n, n]})
    for ax, (mat, rows, row_dom, cols, col_dom, heading) in zip(axes, panels):
        image = ax.imshow(mat if mat.size else np.zeros((1, 1)), cmap="viridis", vmin=0, vmax=vmax, aspect="auto")
        ax.set_xticks(range(len(cols)), cols, rotation=90, fontsize=9)
        ax.set_yticks(range(len(rows)), rows, fontsize=9)
        for ticks, doms in ((ax.get_xticklabels(), col_dom), (ax.get_yticklabels(), row_dom)):
            for tick, d in zip(ticks, doms):
                tick.set_color(colours[int(d)])
        ax.set_xlabel("attended item (key), oldest first")
        ax.set_title(heading, fontsize=11)
    axes[0].set_ylabel("query item, oldest at the top")
    fig.colorbar(image, ax=axes, shrink=0.7, label="attention weight (each row sums to 1)")
    legend = ", ".join(f"{c.split(':')[1]} = {name}" for c, name in zip(colours, names))
    fig.suptitle(f"{title}target: [{names[td]}] {_short(titles[ua.target], 60)}   (titles: {legend})", fontsize=12)
    out = _save(fig, path)
    plt.close(fig)
    return out


def plot_cross_domain_share(share, path: str | Path, title: str = "") -> Path:
    """Share of attention crossing domains by position from the end, against the share of other-domain items."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 3.6))
    ax.plot(share["distance"], share["attention_other_domain"], "o-", label="attention on the other domain")
    ax.plot(share["distance"], share["items_other_domain"], "s--", color="grey",
            label="other-domain share of visible items (uniform attention)")
    ax.xaxis.set_major_locator(plt.MaxNLocator(integer=True))
    ax.set_xlabel("query position, counted back from the latest item (0 = latest)")
    ax.set_ylabel("share")
    ax.set_ylim(0, 1)
    ax.set_title(title or "How much attention crosses domains")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    out = _save(fig, path)
    plt.close(fig)
    return out


def plot_other_domain_attention(heavy, path: str | Path, target: str, other: str, title: str = "") -> Path:
    """One dot per user whose target is in `target` after a history mostly of `other`: the `other` share of the
    history (x) against the share of the target-domain preference's cross-attention on `other` items at the last
    step (y). On the diagonal, attention follows the history's mix; below it the model looks at its own domain."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5.2, 4.6))
    x, y = heavy["history_other_domain"], heavy["attention_other_domain"]
    ax.plot([0, 1], [0, 1], "--", color="grey", linewidth=1, label="attention in proportion to the history")
    ax.scatter(x, y, s=22, alpha=0.75, color="tab:red", label=f"one test user ({len(heavy)})")
    ax.set_xlim(-0.02, 1.02), ax.set_ylim(-0.02, 1.02)
    ax.set_xlabel(f"{other} share of the history")
    ax.set_ylabel(f"{target} preference's attention on {other} items\n(cross-attention, last step)")
    ax.set_title(title or f"Predicting a {target} item from a {other}-heavy history", fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="upper left")   # the users sit to the right: heavy histories
    out = _save(fig, path)
    plt.close(fig)
    return out
