"""Data: the canonical cross-domain dataset, its importers, and the cached `build_dataset` entry point."""
from .build import SOURCES, build_dataset, dataset_folder, save_card
from .dataset import CrossDomainDataset, ItemSpace, history_and_target
from .errors import DataFormatError
from .safe_pickle import load_plain_pickle
from .synthetic import SyntheticConfig, generate_synthetic

__all__ = ["SOURCES", "build_dataset", "dataset_folder", "save_card", "CrossDomainDataset", "ItemSpace", "history_and_target",
           "DataFormatError", "load_plain_pickle", "SyntheticConfig", "generate_synthetic"]
