"""llmemf-lite: a reproducible companion to LLM-EMF (LLM-Enhanced Multimodal Fusion for Cross-Domain Sequential
Recommendation, Wu et al., 2025).

The public API is the list below. Names are imported on first use, so `import llmemf_lite` loads no torch, pandas
or matplotlib until something needs them.
"""
from __future__ import annotations

import importlib
import warnings

# tqdm.auto (imported by transformers and sentence-transformers) warns on stderr in every Jupyter kernel without
# ipywidgets; this package draws plain-text bars, so the warning says nothing and would only make notebook outputs
# differ between a cold run (a model is loaded) and a warm one (read from the cache).
warnings.filterwarnings("ignore", message="IProgress not found")

__version__ = "0.1.0"

# public name -> module that defines it
_API = {
    "DomainPair": "llmemf_lite.pairs",
    "get_pair": "llmemf_lite.pairs",
    "register_pair": "llmemf_lite.pairs",
    "registered_pairs": "llmemf_lite.pairs",
    "CrossDomainDataset": "llmemf_lite.data.dataset",
    "ItemSpace": "llmemf_lite.data.dataset",
    "history_and_target": "llmemf_lite.data.dataset",
    "card_table": "llmemf_lite.data.dataset",
    "DataFormatError": "llmemf_lite.data.errors",
    "load_plain_pickle": "llmemf_lite.data.safe_pickle",
    "build_dataset": "llmemf_lite.data.build",
    "save_card": "llmemf_lite.data.build",
    "import_llmcdsr": "llmemf_lite.data.llmcdsr",
    "SyntheticConfig": "llmemf_lite.data.synthetic",
    "AmazonConfig": "llmemf_lite.data.amazon",
    "import_amazon": "llmemf_lite.data.amazon",
    "SplitConfig": "llmemf_lite.data.splits",
    "split_sequences": "llmemf_lite.data.splits",
    "import_c2dsr": "llmemf_lite.data.c2dsr",
    "export_c2dsr": "llmemf_lite.data.c2dsr",
    "import_recbole": "llmemf_lite.data.recbole",
    "export_recbole": "llmemf_lite.data.recbole",
    "download": "llmemf_lite.data.download",
    "download_amazon": "llmemf_lite.data.download",
    "DownloadError": "llmemf_lite.data.download",
    "ImageFetchConfig": "llmemf_lite.data.images",
    "fetch_item_images": "llmemf_lite.data.images",
    "generate_synthetic": "llmemf_lite.data.synthetic",
    "item_embeddings": "llmemf_lite.embed",
    "EmbedConfig": "llmemf_lite.embed",
    "ItemEmbeddings": "llmemf_lite.embed",
    "plot_sequence_lengths": "llmemf_lite.plots",
    "plot_item_gallery": "llmemf_lite.plots",
    "plot_learning_curves": "llmemf_lite.plots",
    "plot_ablation_bars": "llmemf_lite.plots",
    "plot_user_attention": "llmemf_lite.plots",
    "plot_cross_domain_share": "llmemf_lite.plots",
    "plot_other_domain_attention": "llmemf_lite.plots",
    "run_pipeline": "llmemf_lite.pipeline",
    "project_root": "llmemf_lite.paths",
    "results_dir": "llmemf_lite.paths",
    "figures_dir": "llmemf_lite.paths",
    "EnrichConfig": "llmemf_lite.enrich",
    "EnrichmentRun": "llmemf_lite.enrich",
    "enrich_dataset": "llmemf_lite.enrich",
    "enriched_texts": "llmemf_lite.enrich",
    "get_template": "llmemf_lite.enrich",
    "locate_smollm2_gguf": "llmemf_lite.enrich",
}
__all__ = sorted(_API)


def __getattr__(name: str):
    if name in _API:
        value = getattr(importlib.import_module(_API[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'llmemf_lite' has no attribute {name!r}")


def __dir__():
    return sorted(list(globals()) + __all__)
