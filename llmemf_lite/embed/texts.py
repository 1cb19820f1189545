"""Which text each item is embedded from: its LLM-enriched text, else its title, else nothing (counted).

What this file is: picking one text per global item id for a `text_source`. What it is not: the enrichment itself
(`llmemf_lite.enrich`, imported only when `text_source="enriched"` is asked for, since it may run an LLM).
"""
from __future__ import annotations

import importlib
from dataclasses import dataclass, field

TEXT_SOURCES = ("enriched", "title")


def _clean(value) -> str | None:
    return value.strip() if isinstance(value, str) and value.strip() else None


@dataclass
class TextInputs:
    texts: list[str | None]                            # one per global item id; None: the item has no text
    origin: dict[str, int] = field(default_factory=dict)  # how many texts came from where ("enriched", "title", ...)


def text_inputs(ds, text_source: str, progress: bool = True) -> TextInputs:
    """One text per item. "title": the title. "enriched": the enrichment module's text, falling back to the title
    where an item has none; an item with neither has no text (zero vector, mask False downstream)."""
    if text_source not in TEXT_SOURCES:
        raise ValueError(f"unknown text_source {text_source!r}; expected one of {TEXT_SOURCES}")
    n = ds.space.n_items
    titles = [_clean(t) for t in ds.items["title"].tolist()]
    if text_source == "title":
        have = sum(t is not None for t in titles)
        return TextInputs(titles, {"title": have, "no_text": n - have})
    enrich = importlib.import_module("llmemf_lite.enrich")
    enriched = list(enrich.enriched_texts(ds, build_if_missing=True, progress=progress))
    if len(enriched) != n:
        raise ValueError(f"llmemf_lite.enrich.enriched_texts returned {len(enriched)} texts for {n} items; expected "
                         "one per global item id (None where an item has no enriched text)")
    texts, origin = [], {"enriched": 0, "title_fallback": 0, "no_text": 0}
    for e, t in zip(enriched, titles):
        e = _clean(e)
        texts.append(e or t)
        origin["enriched" if e else "title_fallback" if t else "no_text"] += 1
    return TextInputs(texts, origin)
