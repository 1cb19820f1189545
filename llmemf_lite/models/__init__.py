"""The models: LLM-EMF and its baselines, built by name from one registry (`build_model`)."""
from __future__ import annotations

from dataclasses import fields, replace

from ..data.dataset import ItemSpace
from .bert4rec import BERT4Rec, BERT4RecConfig
from .c2dsr import C2DSR, C2DSRConfig
from .gru4rec import GRU4Rec
from .items import ItemFeatures
from .llmemf import LLMEMF, LLMEMFConfig
from .popularity import Popularity
from .sasrec import SASRec
from .sequential import SequentialConfig

# name -> (what it is, builder(space, features, overrides))
MODELS = {
    "pop": "popularity in the target's domain",
    "gru4rec": "GRU4Rec on the merged sequence",
    "gru4rec_domain": "GRU4Rec per domain",
    "sasrec": "SASRec on the merged sequence",
    "sasrec_domain": "SASRec per domain",
    "llmemf": "LLM-EMF (ID + image + text, cross-domain multiple attention)",
    "llmemf_id": "LLM-EMF with item IDs only (no image, no text)",
    "ifcdsr": "IFCDSR preset of the LLM-EMF class: ID + image, score-level fusion (no text)",
    "hafvt": "HAF-VT preset of the LLM-EMF class: ID + image + raw title text (no LLM enrichment)",
    "bert4rec": "BERT4Rec (cloze objective, bidirectional) on the merged sequence",
    "c2dsr": "C2DSR (graph-enhanced items, three sequence encoders, contrastive infomax)",
}


# The LLM-EMF class's named presets. The group's two earlier models, as their papers describe them, are switches of
# the same class (docs/model.md): IFCDSR fuses ID- and image-based similarities at score level; HAF-VT adds the
# item's title text (its text is the raw title: `experiment.TEXT_SOURCE_OF` gives it "title"), without an LLM.
LLMEMF_PRESETS = {
    "llmemf": LLMEMFConfig(),
    "llmemf_id": LLMEMFConfig(use_image=False, use_text=False),
    "ifcdsr": LLMEMFConfig(use_text=False),
    "hafvt": LLMEMFConfig(),
}


def _with(config, overrides: dict):
    names = {f.name for f in fields(config)}
    unknown = set(overrides) - names
    if unknown:
        raise ValueError(f"unknown settings {sorted(unknown)} for {type(config).__name__}; known: {sorted(names)}")
    return replace(config, **overrides)


def build_model(name: str, space: ItemSpace, features: ItemFeatures | None = None, *, train_sequences=None,
                **overrides):
    """`train_sequences` (the training split's item sequences) is read by models built from the training data
    itself (C2DSR's item graphs) and ignored by the others."""
    if name == "pop":
        return Popularity(space)
    if name in ("sasrec", "sasrec_domain", "gru4rec", "gru4rec_domain"):
        base = SequentialConfig(view="domain" if name.endswith("_domain") else "mixed",
                                n_blocks=1 if name.startswith("gru") else 2)
        config = _with(base, overrides)
        return (SASRec if name.startswith("sasrec") else GRU4Rec)(space, config)
    if name in LLMEMF_PRESETS:
        return LLMEMF(space, _with(LLMEMF_PRESETS[name], overrides), features)
    if name == "bert4rec":
        return BERT4Rec(space, _with(BERT4RecConfig(), overrides))
    if name == "c2dsr":
        return C2DSR(space, _with(C2DSRConfig(), overrides), train_sequences)
    raise ValueError(f"unknown model {name!r}; known: {sorted(MODELS)}")


__all__ = ["MODELS", "build_model", "ItemFeatures", "LLMEMF", "LLMEMFConfig", "SASRec", "GRU4Rec", "Popularity",
           "SequentialConfig", "BERT4Rec", "BERT4RecConfig", "C2DSR", "C2DSRConfig"]
