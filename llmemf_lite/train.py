"""Training: one loop for every trainable model, on a CPU, one GPU, or several processes under torchrun (DDP).

What it does: AdamW (weight decay on matrix weights only), batches of similar length (less padding), early stopping
on the validation score (`select_on`, by default the paper's protocol, NDCG@10 averaged over the two domains), the
best weights saved as safetensors, and after every epoch a resumable checkpoint (weights, optimiser moments, RNG
state) from which an interrupted run continues exactly. A CPU run repeats bit for bit: every random draw comes from
generators seeded by (seed, epoch).
What it is not: the models (`models/`), the evaluation protocol (`evaluate.py`), or the experiment plan
(`experiment.py`).

Distributed: launched with `torchrun --nproc_per_node N`, each process takes every N-th row of each batch, DDP
averages the gradients (gloo on CPU, nccl on GPU), every process evaluates the (small) validation set identically,
and process 0 writes the files.
"""
from __future__ import annotations

import json
import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from .evaluate import EvalConfig, evaluate_ranking, summarize


@dataclass
class TrainConfig:
    epochs: int = 20
    batch_size: int = 64
    lr: float = 2e-3
    weight_decay: float = 0.01
    patience: int = 3              # epochs without a better validation score before stopping
    select_on: tuple = ("sampled", "NDCG@10")
    seed: int = 0
    device: str = "cpu"
    resume: bool = True
    progress: bool = True


@dataclass
class TrainResult:
    history: pd.DataFrame
    best_epoch: int
    best_score: float
    run_dir: Path
    seconds: float


def _dist():
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        return torch.distributed.get_rank(), torch.distributed.get_world_size()
    return 0, 1


def init_distributed_from_env() -> bool:
    """Start the process group when launched by torchrun (RANK/WORLD_SIZE set); True if distributed."""
    if "RANK" not in os.environ or torch.distributed.is_initialized():
        return torch.distributed.is_available() and torch.distributed.is_initialized()
    backend = "nccl" if torch.cuda.is_available() else "gloo"
    torch.distributed.init_process_group(backend)
    return True


def resolve_device(device: str) -> str:
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda") and "LOCAL_RANK" in os.environ:
        return f"cuda:{os.environ['LOCAL_RANK']}"
    return device


def length_bucketed_batches(lengths: np.ndarray, batch_size: int, rng: np.random.Generator,
                            min_size: int = 1) -> list[np.ndarray]:
    """Shuffle, then sort by length within chunks of 50 batches, then shuffle the batches: each batch holds
    sequences of similar length (little padding) while the epoch order stays random. A last batch smaller than
    `min_size` (under DDP: the number of processes, each of which needs a row) joins the one before it."""
    order = rng.permutation(len(lengths))
    chunk = batch_size * 50
    parts = [c[np.argsort(lengths[c], kind="stable")] for c in np.array_split(order, max(1, len(order) // chunk))]
    order = np.concatenate(parts)
    batches = [order[i:i + batch_size] for i in range(0, len(order), batch_size)]
    if len(batches) > 1 and len(batches[-1]) < min_size:
        batches[-2:] = [np.concatenate(batches[-2:])]
    return [batches[i] for i in rng.permutation(len(batches))]


def _param_groups(model, weight_decay: float):
    """Weight decay on the matrices of linear maps only: not on biases, norms, item tables or positions."""
    decay = [p for n, p in model.named_parameters() if p.requires_grad and p.dim() >= 2
             and "table" not in n and "pos" not in n]
    other = [p for n, p in model.named_parameters() if p.requires_grad and not any(p is q for q in decay)]
    return [{"params": decay, "weight_decay": weight_decay}, {"params": other, "weight_decay": 0.0}]


def _save_checkpoint(path: Path, model, optimizer, meta: dict) -> None:
    from safetensors.torch import save_file

    tensors = {f"model.{k}": v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    if optimizer is not None:
        for i, state in optimizer.state_dict()["state"].items():
            for k, v in state.items():
                tensors[f"optim.{i}.{k}"] = torch.as_tensor(v).detach().cpu().contiguous()
        tensors["rng.torch"] = torch.get_rng_state()
    tmp = path.with_suffix(".tmp")
    save_file(tensors, str(tmp), metadata={"meta": json.dumps(meta)})
    tmp.replace(path)  # atomic: a crash mid-write leaves the previous checkpoint intact


def _open_checkpoint(path: Path, read):
    """`read(safe_open handle)` on the checkpoint at `path`; a damaged file (truncated, overwritten, no record) is a
    DataFormatError that names it and says what deleting it does."""
    from safetensors import SafetensorError, safe_open

    from .data.errors import DataFormatError

    try:
        with safe_open(str(path), framework="pt") as f:
            return read(f)
    except (SafetensorError, OSError, KeyError, TypeError, json.JSONDecodeError) as e:
        raise DataFormatError(path, f"not a readable checkpoint ({type(e).__name__}: {e}); delete its folder "
                              f"{Path(path).parent} and the run trains afresh",
                              expected="a safetensors file written by train_model") from None


def read_meta(path: Path) -> dict:
    return _open_checkpoint(path, lambda f: json.loads(f.metadata()["meta"]))


def load_checkpoint(path: Path, model, optimizer=None) -> dict:
    meta, tensors = _open_checkpoint(path, lambda f: (json.loads(f.metadata()["meta"]),
                                                      {k: f.get_tensor(k) for k in f.keys()}))
    model.load_state_dict({k[6:]: v for k, v in tensors.items() if k.startswith("model.")})
    if optimizer is not None:
        sd = optimizer.state_dict()
        state: dict = {}
        for k, v in tensors.items():
            if k.startswith("optim."):
                _, i, name = k.split(".", 2)
                state.setdefault(int(i), {})[name] = v
        sd["state"] = state
        optimizer.load_state_dict(sd)
        torch.set_rng_state(tensors["rng.torch"])
    return meta


def model_signature(model) -> dict:
    """What a checkpoint must match to be resumed: the model's class, its config, every tensor's shape and the
    VERSION of any module that declares one."""
    from dataclasses import is_dataclass

    config = getattr(model, "config", None)
    signature = {"class": type(model).__name__, "config": asdict(config) if is_dataclass(config) else None,
                 "tensors": {k: list(v.shape) for k, v in model.state_dict().items()}}
    # a module whose computation changed under the same parameters says so with a VERSION (e.g. GRUEncoder)
    versions = {type(m).__name__: m.VERSION for m in model.modules() if hasattr(m, "VERSION")}
    if versions:
        signature["versions"] = versions
    return json.loads(json.dumps(signature, default=str))


def run_signature(model, config: TrainConfig) -> dict:
    """What a checkpoint must match to be resumed: the model (`model_signature`) and every training setting but the
    epoch budget and display flags, so that an interrupted run continues and a finished one given more epochs
    trains on from its last epoch. The device is where it runs ("auto" on a CPU machine resumes a "cpu" run)."""
    settings = {k: v for k, v in asdict(config).items() if k not in ("epochs", "progress", "resume")}
    settings["device"] = str(resolve_device(config.device)).split(":")[0]
    return {"config": json.loads(json.dumps(settings)), "model": model_signature(model)}


def budget_limited(best_epoch, epochs: int, patience: int):
    """Whether a run with this best validation epoch stopped on its epoch budget rather than by early stopping: its
    best epoch is later than `epochs - patience`, so the patience had not run out (scalars or arrays)."""
    return best_epoch > epochs - max(patience, 1)


def train_model(model, train_views, valid_views, valid_targets, valid_candidates, space, domain_names,
                config: TrainConfig, run_dir: str | Path, eval_config: EvalConfig = EvalConfig()) -> TrainResult:
    """Train `model` on `train_views`; select the epoch on the validation cases; keep the best weights in
    run_dir/best.safetensors (loaded into `model` before returning)."""
    from tqdm.auto import tqdm

    rank, world = _dist()
    device = resolve_device(config.device)
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    model.to(device)
    optimizer = torch.optim.AdamW(_param_groups(model, config.weight_decay), lr=config.lr)
    net = model
    if world > 1:
        net = torch.nn.parallel.DistributedDataParallel(model, find_unused_parameters=True)

    history, start_epoch, best, best_epoch, waited = [], 1, -1.0, 0, 0
    last = run_dir / "last.safetensors"
    signature = run_signature(model, config)
    if config.resume and last.is_file():
        meta = read_meta(last)
        if {k: meta.get(k) for k in signature} == signature:
            meta = load_checkpoint(last, model, optimizer)   # same model and configuration: continue
            history, start_epoch = meta["history"], meta["epoch"] + 1
            best, best_epoch, waited = meta["best"], meta["best_epoch"], meta["waited"]
        elif rank == 0:
            print(f"{last}: written by another model or training configuration; training from scratch")
    lengths = np.minimum((train_views.mixed != train_views.pad).sum(1), train_views.mixed.shape[1])
    started = time.perf_counter()
    for epoch in range(start_epoch, config.epochs + 1):
        if waited >= config.patience:
            break
        rng = np.random.default_rng([config.seed, epoch])
        gen = torch.Generator().manual_seed(config.seed * 100_003 + epoch)
        batches = length_bucketed_batches(lengths, config.batch_size, rng, min_size=world)
        model.train()
        losses, t0 = [], time.perf_counter()
        bar = tqdm(batches, desc=f"epoch {epoch}", disable=not config.progress or rank != 0, leave=False)
        for idx in bar:
            shard = idx[rank::world]
            loss = net(train_views.take(shard), device, gen)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            losses.append(float(loss.detach()))
            bar.set_postfix(loss=f"{losses[-1]:.3f}")
        train_seconds = time.perf_counter() - t0
        cases = evaluate_ranking(model, valid_views, valid_targets, space, valid_candidates, eval_config, device)
        summary = summarize(cases, domain_names)
        protocol, metric = config.select_on
        score = float(summary.loc[summary["protocol"] == protocol, metric].mean())
        row = {"epoch": epoch, "train_loss": float(np.mean(losses)), "valid_score": score,
               "seconds": round(train_seconds, 3), "sequences_per_s": round(len(lengths) / train_seconds, 1)}
        for _, r in summary.iterrows():
            row[f"valid_{r['protocol']}_{r['domain']}_NDCG@10"] = float(r["NDCG@10"])
        history.append(row)
        if score > best:
            best, best_epoch, waited = score, epoch, 0
            if rank == 0:
                _save_checkpoint(run_dir / "best.safetensors", model, None, {"epoch": epoch, "score": score})
        else:
            waited += 1
        if rank == 0:
            _save_checkpoint(last, model, optimizer, {"epoch": epoch, "history": history, "best": best,
                                                      "best_epoch": best_epoch, "waited": waited,
                                                      **signature})
    if world > 1:
        torch.distributed.barrier()
    load_checkpoint(run_dir / "best.safetensors", model)
    frame = pd.DataFrame(history)
    if rank == 0:
        frame.to_csv(run_dir / "history.csv", index=False)
    return TrainResult(frame, best_epoch, best, run_dir, time.perf_counter() - started)
