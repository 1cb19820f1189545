"""Embedding throughput next to the machine's own limit, measured side by side in one run.

    .venv/bin/python benchmarks/bench_embed.py [--images 96] [--texts 1024]

The limit is this machine's dense fp32 matmul rate (median GFLOP/s of 2048^2 products), measured right before and
right after each row and averaged for that row: on a shared machine the load drifts during a run, so each
throughput is compared with the limit of its own minutes. Each throughput is
turned into GFLOP/s with an analytic count of the forward pass (2 FLOPs per multiply-add, the same convention as the
matmul's 2n^3; a ViT-B/32 image at 224 px is 4.4 G multiply-adds = 8.8 GFLOP, the "4.4 GFLOPs" usually quoted counts
multiply-adds) and reported as the fraction of the limit reached. The loader figure is model time / wall time of the
real `item_embeddings` pipeline (DataLoader workers decode and resize while the model runs).

On CUDA (when torch sees one) the same runs use bf16 autocast and the limit is a bf16 matmul.
"""
from __future__ import annotations

import argparse
import dataclasses
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np  # noqa: E402
import torch  # noqa: E402


def matmul_gflops(device: str, dtype=torch.float32, repeats: int = 5) -> float:
    """Median rate of `repeats` 2048^2 products (after a warm-up): the median, not the best, because on a shared
    machine the best is a lucky moment that the model's average rate is then unfairly compared with."""
    n = 2048
    a, b = torch.randn(n, n, device=device, dtype=dtype), torch.randn(n, n, device=device, dtype=dtype)
    for _ in range(2):
        a @ b
    rates = []
    for _ in range(repeats):
        _sync(device)
        start = time.perf_counter()
        a @ b
        _sync(device)
        rates.append(2 * n ** 3 / (time.perf_counter() - start) / 1e9)
    return float(np.median(rates))


def _sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def transformer_macs_per_token(width: int, layers: int, seq: int, mlp_ratio: float = 4.0) -> float:
    # per layer: q, k, v and output projections (4 w^2), the MLP (2 * ratio * w^2), attention scores and mix (2 L w)
    return layers * ((4 + 2 * mlp_ratio) * width * width + 2 * seq * width)


def vit_image_gflop(model_name: str, image_size: int) -> float:
    import open_clip

    cfg = open_clip.get_model_config(model_name)
    v, embed_dim = cfg["vision_cfg"], cfg["embed_dim"]
    patches = (image_size // v["patch_size"]) ** 2
    seq = patches + 1
    macs = patches * 3 * v["patch_size"] ** 2 * v["width"]                      # patch embedding
    macs += seq * transformer_macs_per_token(v["width"], v["layers"], seq, v.get("mlp_ratio", 4.0))
    macs += v["width"] * embed_dim                                               # projection of the class token
    return 2 * macs / 1e9


def clip_text_gflop(model_name: str, padded_tokens: int, n_texts: int, mean_len: float) -> float:
    """GFLOP per text for `padded_tokens` computed tokens over `n_texts` texts (batches cut at their longest)."""
    import open_clip

    cfg = open_clip.get_model_config(model_name)
    t = cfg["text_cfg"]
    per_token = transformer_macs_per_token(t["width"], t["layers"], int(round(mean_len)), t.get("mlp_ratio", 4.0))
    return 2 * (padded_tokens * per_token + n_texts * t["width"] * cfg["embed_dim"]) / n_texts / 1e9


def minilm_text_gflop(mean_padded_len: float) -> float:
    return 2 * mean_padded_len * transformer_macs_per_token(384, 6, int(mean_padded_len), 1536 / 384) / 1e9


def subset(ds, per_domain: int):
    """The first `per_domain` items of each domain, renumbered (enough for a throughput measurement)."""
    n_x = ds.space.n_x
    items = ds.items.iloc[list(range(per_domain)) + list(range(n_x, n_x + per_domain))].reset_index(drop=True)
    return dataclasses.replace(ds, items=items.assign(item_id=np.arange(len(items))))


def run(args) -> dict:
    import llmemf_lite as L
    from llmemf_lite.embed.clip import load_clip, resolve_clip_weights, text_batches

    device = "cuda" if torch.cuda.is_available() and not args.cpu else "cpu"
    dtype = torch.bfloat16 if device == "cuda" else torch.float32
    ds = L.build_dataset("food_kitchen", "synthetic")
    os.environ["LLMEMF_ARTIFACTS"] = tempfile.mkdtemp(prefix="bench_embed_")  # a cold embedding cache
    out = {"device": device, "threads": torch.get_num_threads()}
    limits = [matmul_gflops(device, dtype)]  # limits[i] and limits[i + 1] bracket row i

    cfg = L.EmbedConfig(device=device, num_workers=args.workers)
    rows = []
    for size, n in ((224, args.images), (32, args.small_images)):
        part = subset(ds, n // 2)
        emb = L.item_embeddings(part, "image", dataclasses.replace(cfg, image_size=size, batch_size=args.batch),
                                progress=False)
        t = emb.manifest["timing"]
        rows.append((f"ViT-B-32 image, {size} px", n, n / t["wall_s"], vit_image_gflop("ViT-B-32", size),
                     t["model_s"] / t["wall_s"]))
        limits.append(matmul_gflops(device, dtype))

    part = subset(ds, args.texts // 2)
    titles = part.items["title"].tolist()
    emb = L.item_embeddings(part, "text", dataclasses.replace(cfg, text_source="title"), progress=False)
    t = emb.manifest["timing"]
    model, _, tok = load_clip("ViT-B-32", resolve_clip_weights("ViT-B-32", None), 224, device=device)
    tokens = tok(titles)
    padded = sum(len(rows_) * batch.shape[1] for rows_, batch in text_batches(tokens, cfg.batch_tokens, None))
    mean_len = float((tokens != 0).sum(1).float().mean())
    rows.append(("ViT-B-32 text, cut at EOT", len(titles), len(titles) / t["wall_s"],
                 clip_text_gflop("ViT-B-32", padded, len(titles), mean_len), t["model_s"] / t["wall_s"]))
    limits.append(matmul_gflops(device, dtype))
    # the same tower over the full 77-token window (what open_clip's encode_text computes): the saving of the cut
    few = tokens[: args.full_context_texts].to(device)
    with torch.inference_mode(), (torch.autocast("cuda", dtype=dtype) if device == "cuda" else _null()):
        model.encode_text(few[:8])
        _sync(device)
        start = time.perf_counter()
        model.encode_text(few)
        _sync(device)
        full_s = time.perf_counter() - start
    rows.append(("ViT-B-32 text, full 77 tokens", len(few), len(few) / full_s,
                 clip_text_gflop("ViT-B-32", 77 * len(few), len(few), 77), None))
    limits.append(matmul_gflops(device, dtype))

    emb = L.item_embeddings(part, "text", dataclasses.replace(cfg, encoder="minilm", text_source="title"),
                            progress=False)
    t = emb.manifest["timing"]
    from llmemf_lite.embed.minilm import load_minilm

    st = load_minilm(device)
    lengths = np.array([len(x) for x in st.tokenizer(titles)["input_ids"]])
    rows.append(("MiniLM-L6 text", len(titles), len(titles) / t["wall_s"], minilm_text_gflop(lengths.mean()),
                 t["model_s"] / t["wall_s"]))

    limits.append(matmul_gflops(device, dtype))
    out["limits"], out["rows"] = limits, rows
    return out


class _null:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--images", type=int, default=96, help="images at 224 px (even)")
    ap.add_argument("--small-images", type=int, default=2048, help="images at 32 px (even; two batches or more)")
    ap.add_argument("--texts", type=int, default=1024, help="titles (even)")
    ap.add_argument("--full-context-texts", type=int, default=64)
    ap.add_argument("--batch", type=int, default=None, help="image batch size (default: the config's token budget)")
    ap.add_argument("--workers", type=int, default=None, help="DataLoader workers (default: one per spare core)")
    ap.add_argument("--cpu", action="store_true", help="measure the CPU even where CUDA is available")
    args = ap.parse_args(argv)
    r = run(args)
    kind = "bf16" if r["device"] == "cuda" else "fp32"
    print(f"device {r['device']} ({r['threads']} threads); dense {kind} matmul limit (GFLOP/s) measured between rows: "
          + ", ".join(f"{x:.1f}" for x in r["limits"]) + f"; load average {os.getloadavg()[0]:.1f}")
    print(f"{'what':32s} {'n':>5s} {'items/s':>9s} {'GFLOP/item':>11s} {'GFLOP/s':>8s} {'limit':>6s} {'of limit':>9s} "
          f"{'model/wall':>11s}")
    for k, (name, n, rate, gflop, busy) in enumerate(r["rows"]):
        limit = (r["limits"][k] + r["limits"][k + 1]) / 2
        busy_text = f"{busy:11.2f}" if busy is not None else f"{'(no loader)':>11s}"
        print(f"{name:32s} {n:5d} {rate:9.1f} {gflop:11.3f} {rate * gflop:8.1f} {limit:6.1f} "
              f"{rate * gflop / limit:9.0%} {busy_text}")
    print("targets: >= 40% of the limit (ViT-B-32 at 224 px), model/wall >= 0.9")
    return 0


if __name__ == "__main__":
    sys.exit(main())
