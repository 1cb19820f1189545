"""Train LLM-EMF model version 2 under the fair-training protocol on the real Food-Kitchen data (issue 19's
accuracy check of version 3). Run by tools/model_version2/run.sh inside a worktree of the last commit that had
version 2 (610934d^), patched by fair_protocol.patch; imports that tree's package, not this clone's.

The protocol is notebook 04's tuned LLM-EMF row (results/04_train/food_kitchen_llmcdsr/variants.json): MiniLM over
the titles, dropout 0.2, 2,000 sampled training negatives, lr 1e-3, batch 128, at most 40 epochs, patience 5,
3 seeds, the model kept at its best validation epoch (sampled NDCG@10). pop is run too: it has no training, so
equal pop rows in both trees show that the test cases, candidates and both rankings are the same.
"""
import sys

from llmemf_lite.experiment import ExperimentConfig, RunSpec, run_experiment

if __name__ == "__main__":   # the worker processes (spawned) import this file
    workers = int(sys.argv[1]) if len(sys.argv) > 1 else 0
    cfg = ExperimentConfig(name="model_version2", source="llmcdsr", data_dir=sys.argv[2] if len(sys.argv) > 2 else
                           "../shared/data/food-kitchen", seeds=(0, 1, 2), epochs=40, patience=5, batch_size=128,
                           lr=1e-3, workers=workers)
    run_experiment(cfg, [RunSpec("pop", "pop"),
                         RunSpec("llmemf version 2", "llmemf", {"dropout": 0.2, "n_negatives": 2000},
                                 text_encoder="minilm", text_source="title")])
