"""A small synthetic world and its views, shared by the model and training tests (built once per session)."""
from __future__ import annotations

import functools

import numpy as np

from llmemf_lite.batching import evaluation_views, training_views
from llmemf_lite.data.synthetic import SyntheticConfig, generate_synthetic
from llmemf_lite.evaluate import sample_candidates
from llmemf_lite.models import ItemFeatures

SMALL = SyntheticConfig(items_per_domain=150, n_train_users=400, n_valid_users=60, n_test_users=60, seed=3)


@functools.lru_cache(maxsize=1)
def small_world(max_len: int = 20):
    ds = generate_synthetic("food_kitchen", SMALL)
    space = ds.space
    train = training_views(list(ds.split("train")["items"]), space, max_len)
    valid, valid_targets = evaluation_views(list(ds.split("valid")["items"]), space, max_len)
    cands = sample_candidates(valid_targets, space, 99, seed=0)
    return ds, train, valid, valid_targets, cands


def ground_truth_features(ds, noise: float = 0.3, seed: int = 0) -> ItemFeatures:
    """Stand-ins for text and image embeddings that carry the synthetic world's theme and style."""
    rng = np.random.default_rng(seed)
    n = ds.space.n_items
    theme = np.eye(6)[ds.items["theme"].to_numpy()] + rng.normal(0, noise, (n, 6))
    style = np.eye(4)[ds.items["style"].to_numpy()] + rng.normal(0, noise, (n, 4))
    image_mask = rng.random(n) > 0.1
    return (ItemFeatures().add("text", theme.astype(np.float32), np.ones(n, bool))
            .add("image", style.astype(np.float32), image_mask))
