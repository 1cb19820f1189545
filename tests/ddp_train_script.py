"""Launched by tests/test_train.py, once plainly and once under torchrun with 2 CPU processes (gloo): trains a
small SASRec and writes its validation metrics (process 0) to the JSON file named on the command line."""
import json
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from llmemf_lite.evaluate import evaluate_ranking, summarize  # noqa: E402
from llmemf_lite.models import build_model  # noqa: E402
from llmemf_lite.train import TrainConfig, init_distributed_from_env, train_model  # noqa: E402
from tests.helpers_small import small_world  # noqa: E402

init_distributed_from_env()
torch.set_num_threads(1)
ds, train, valid, targets, cands = small_world()
torch.manual_seed(0)
model = build_model("sasrec", ds.space, max_len=20, dropout=0.0, n_negatives=0)
result = train_model(model, train, valid, targets, cands, ds.space, ds.pair.domains,
                     TrainConfig(epochs=3, batch_size=64, lr=2e-3, progress=False, resume=False), sys.argv[2])
summary = summarize(evaluate_ranking(model, valid, targets, ds.space, cands), ds.pair.domains)
if not torch.distributed.is_initialized() or torch.distributed.get_rank() == 0:
    Path(sys.argv[1]).write_text(json.dumps({"ndcg10": summary["NDCG@10"].tolist(),
                                             "loss": result.history["train_loss"].tolist()}))
if torch.distributed.is_initialized():
    torch.distributed.destroy_process_group()
