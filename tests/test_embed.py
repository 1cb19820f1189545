"""The embedding stage (llmemf_lite/embed): shapes, normalisation, masks, bad files, the cache (hit, miss,
invalidation, resume), determinism of the random-init path, weights resolution, the two text encoders.

Most tests use open_clip's small ViT-S-32-alt (same code path as ViT-B-32, a fraction of the build time) on a tiny
in-memory dataset; notebook 03 runs the default ViT-B-32 on the full synthetic set.
"""
from __future__ import annotations

import logging
import sys
import types

import numpy as np
import pandas as pd
import pytest

from llmemf_lite import CrossDomainDataset, get_pair
from llmemf_lite.embed import NO_WEIGHTS_NOTE, EmbedConfig, item_embeddings, resolve_clip_weights
from llmemf_lite.embed import embed as embed_mod

SMALL = "ViT-S-32-alt"  # embed_dim 256


def _png(path, colour, size=32):
    from PIL import Image

    Image.new("RGB", (size, size), colour).save(path)


def make_dataset(folder, n_good=6):
    """Items 0..n_good-1 have good pictures (domain food: first half); then a truncated PNG, a text file named
    .png, a missing file, no image, and a URL. Titles everywhere but one item."""
    images = folder / "images"
    images.mkdir(parents=True)
    colours = [(255, 0, 0), (250, 10, 5), (0, 0, 255), (5, 10, 250), (0, 200, 0), (10, 190, 10), (90, 90, 90)]
    rows = []
    for i in range(n_good):
        _png(images / f"{i}.png", colours[i % len(colours)])
        rows.append(f"images/{i}.png")
    _png(images / "trunc.png", (1, 2, 3))
    data = (images / "trunc.png").read_bytes()
    (images / "trunc.png").write_bytes(data[: len(data) // 2])
    (images / "text.png").write_text("this is not an image\n")
    rows += ["images/trunc.png", "images/text.png", "images/missing.png", None, "https://example.com/x.jpg"]
    n = len(rows)
    n_x = n // 2
    titles = [f"Organic coffee beans {i}" if i % 2 else f"Steel pizza stone {i}" for i in range(n)]
    titles[n - 2] = None  # the no-image item also has no title
    items = pd.DataFrame({"item_id": np.arange(n), "domain": ["food"] * n_x + ["kitchen"] * (n - n_x),
                          "source_id": [f"S{i}" for i in range(n)], "title": titles,
                          "description": [None] * n, "image": rows})
    seqs = pd.DataFrame({"user": pd.Series([], dtype=str), "split": pd.Series([], dtype=str),
                         "kind": pd.Series([], dtype=str), "items": pd.Series([], dtype=object),
                         "timestamps": pd.Series([], dtype=object)})
    return CrossDomainDataset(get_pair("food_kitchen"), items, seqs, {"synthetic": True}, folder)


@pytest.fixture(autouse=True)
def nothing_said_yet(monkeypatch):
    """Each test starts as a fresh process would: the weights note not yet said."""
    monkeypatch.setattr(embed_mod, "_SAID", set())


@pytest.fixture
def ds(tmp_path, artifacts):
    return make_dataset(tmp_path / "ds")


def cfg(**kw):
    base = dict(clip_model=SMALL, pretrained="openai", num_workers=0, device="cpu")
    return EmbedConfig(**{**base, **kw})


def test_image_shapes_norms_masks_and_bad_files_are_recorded_not_fatal(ds):
    emb = item_embeddings(ds, "image", cfg(num_workers=1), progress=False)  # decoding in a worker process
    n = ds.space.n_items
    assert emb.vectors.shape == (n, 256) and emb.vectors.dtype == np.float32
    assert emb.mask.tolist() == [True] * 6 + [False] * 5
    norms = np.linalg.norm(emb.vectors, axis=1)
    np.testing.assert_allclose(norms[emb.mask], 1.0, atol=1e-5)
    assert (emb.vectors[~emb.mask] == 0).all()
    m = emb.manifest
    assert m["coverage"]["missing"] == {"no_image": 1, "url_only": 1, "bad_file": 3}
    bad = {b["item_id"]: b["error"] for b in m["bad_files"]}
    assert set(bad) == {6, 7, 8}
    assert "truncated" in bad[6].lower() and "UnidentifiedImageError" in bad[7] and "FileNotFoundError" in bad[8]
    # honest about the weights: no open_clip weights can be had offline here
    assert m["pretrained"] is False and m["weights_note"] == NO_WEIGHTS_NOTE and emb.weights_note in emb.summary()
    assert "openai" in m["weights_reason"] and "not" in m["weights_reason"]
    assert m["image_size"] == 32 and "random weights" in m["image_size_rule"]
    # similar colours are nearer than different ones (random features still preserve pixel similarity)
    sims = emb.vectors[:6] @ emb.vectors[:6].T
    assert sims[0, 1] > sims[0, 2]


def test_cache_hit_loads_without_a_model_and_returns_the_same_vectors(ds, monkeypatch, capsys):
    first = item_embeddings(ds, "image", cfg(), progress=False)
    assert first.manifest["from_cache"] is False

    def no_model(*a, **k):
        raise AssertionError("a cache hit must not build a model")
    monkeypatch.setattr("llmemf_lite.embed.clip.load_clip", no_model)
    capsys.readouterr()
    embed_mod._SAID.clear()
    again = item_embeddings(ds, "image", cfg(), progress=False)
    assert again.manifest["from_cache"] is True
    assert NO_WEIGHTS_NOTE in capsys.readouterr().err  # said on a cache hit too, where not said before
    item_embeddings(ds, "image", cfg(), progress=False)
    assert NO_WEIGHTS_NOTE not in capsys.readouterr().err  # said once per process (a kernel: once per notebook)
    np.testing.assert_array_equal(again.vectors, first.vectors)
    np.testing.assert_array_equal(again.mask, first.mask)


def test_a_changed_key_recomputes(ds, artifacts):
    base = item_embeddings(ds, "image", cfg(), progress=False)
    other_seed = item_embeddings(ds, "image", cfg(seed=1), progress=False)
    assert other_seed.manifest["from_cache"] is False and other_seed.manifest["key"] != base.manifest["key"]
    assert not np.allclose(other_seed.vectors[base.mask], base.vectors[base.mask])
    # an edited picture changes the key too
    _png(ds.folder / "images" / "0.png", (255, 255, 0), size=30)
    edited = item_embeddings(ds, "image", cfg(), progress=False)
    assert edited.manifest["from_cache"] is False
    assert not np.allclose(edited.vectors[0], base.vectors[0])
    np.testing.assert_allclose(edited.vectors[1:6], base.vectors[1:6], atol=1e-5)
    folders = list((artifacts / "embeddings" / "ds").iterdir())
    assert len(folders) == 3 and all((f / "manifest.json").is_file() for f in folders)


def test_random_init_is_deterministic(tmp_path, monkeypatch):
    runs = []
    for k in range(2):  # two separate caches: both compute
        monkeypatch.setenv("LLMEMF_ARTIFACTS", str(tmp_path / f"cache{k}"))
        ds = make_dataset(tmp_path / f"ds{k}")
        emb = item_embeddings(ds, "image", cfg(), progress=False)
        assert emb.manifest["from_cache"] is False
        runs.append(emb.vectors)
    np.testing.assert_array_equal(runs[0], runs[1])


def test_an_interrupted_run_resumes_from_its_parts(ds, artifacts, monkeypatch):
    from llmemf_lite.embed import clip

    real, calls = clip.encode_image_batch, {"n": 0}

    def crash_on_third(*a, **k):
        calls["n"] += 1
        if calls["n"] == 3:
            raise KeyboardInterrupt("simulated interruption")
        return real(*a, **k)
    monkeypatch.setattr(clip, "encode_image_batch", crash_on_third)
    small = cfg(batch_size=2, chunk_size=2)
    with pytest.raises(KeyboardInterrupt):
        item_embeddings(ds, "image", small, progress=False)
    assert len(list(artifacts.rglob("part-*.npz"))) == 2 and not list(artifacts.rglob("manifest.json"))
    monkeypatch.setattr(clip, "encode_image_batch", real)
    resumed = item_embeddings(ds, "image", small, progress=False)
    # batches of 2 over items 0..8: [0,1] [2,3] saved; the third crashed; the rest computed now
    assert resumed.manifest["run"] == {"resumed_items": 4, "computed_items": 5}
    fresh_cfg = cfg(batch_size=2, chunk_size=2, seed=0)
    monkeypatch.setenv("LLMEMF_ARTIFACTS", str(ds.folder.parent / "fresh"))
    fresh = item_embeddings(ds, "image", fresh_cfg, progress=False)
    np.testing.assert_allclose(resumed.vectors, fresh.vectors, atol=1e-6)
    assert resumed.manifest["coverage"] == fresh.manifest["coverage"]
    assert not list(artifacts.rglob("part-*.npz"))  # parts are removed once the folder is complete


def test_every_image_failing_is_an_error_naming_the_first(tmp_path, artifacts):
    ds = make_dataset(tmp_path / "ds", n_good=0)
    with pytest.raises(RuntimeError, match="every one of the 3 item images failed"):
        item_embeddings(ds, "image", cfg(), progress=False)


def test_clip_text_cut_at_eot_equals_the_full_context():
    import torch

    from llmemf_lite.embed.clip import encode_text_tokens, load_clip, resolve_clip_weights, text_batches

    model, _, tok = load_clip(SMALL, resolve_clip_weights(SMALL, None), 224)
    texts = ["coffee", "a much longer title about a cast iron skillet for the grill", "pizza stone, 12 in"]
    tokens = tok(texts)
    full = encode_text_tokens(model, tokens, "cpu")  # 77 tokens: open_clip's own encode_text
    with torch.inference_mode():
        assert np.allclose(full, torch.nn.functional.normalize(model.encode_text(tokens), dim=-1).numpy(), atol=1e-6)
    cut = np.zeros_like(full)
    for rows, batch in text_batches(tokens, batch_tokens=20, batch_size=None):
        assert batch.shape[1] < 77
        cut[rows] = encode_text_tokens(model, batch, "cpu")
    np.testing.assert_allclose(cut, full, atol=1e-5)


def test_title_text_source_and_missing_titles(ds):
    emb = item_embeddings(ds, "text", cfg(text_source="title"), progress=False)
    n = ds.space.n_items
    assert emb.vectors.shape == (n, 256)
    assert emb.mask.sum() == n - 1 and not emb.mask[n - 2]
    assert emb.manifest["coverage"]["text_origin"] == {"title": n - 1, "no_text": 1}
    np.testing.assert_allclose(np.linalg.norm(emb.vectors[emb.mask], axis=1), 1.0, atol=1e-5)


def _fake_enrich(monkeypatch, texts):
    calls = []

    def enriched_texts(ds, build_if_missing=True, progress=True):
        calls.append(build_if_missing)
        return list(texts)
    monkeypatch.setitem(sys.modules, "llmemf_lite.enrich", types.SimpleNamespace(enriched_texts=enriched_texts))
    return calls


def test_enriched_text_falls_back_to_the_title(ds, monkeypatch):
    n = ds.space.n_items
    enriched = [f"enriched text {i}: key terms, summary" if i % 3 == 0 else None for i in range(n)]
    calls = _fake_enrich(monkeypatch, enriched)
    emb = item_embeddings(ds, "text", cfg(), progress=False)
    assert calls == [True]
    origin = emb.manifest["coverage"]["text_origin"]
    n_enriched = sum(e is not None for e in enriched)
    # item n-2 has neither text nor title (and 9 % 3 == 0: it has enriched text, so it is embedded from that)
    assert origin["enriched"] == n_enriched and origin["enriched"] + origin["title_fallback"] + origin["no_text"] == n
    titles = item_embeddings(ds, "text", cfg(text_source="title"), progress=False)
    fallback = [i for i in range(n) if enriched[i] is None and titles.mask[i]]
    np.testing.assert_allclose(emb.vectors[fallback], titles.vectors[fallback], atol=1e-5)
    assert not np.allclose(emb.vectors[0], titles.vectors[0])
    # a changed enriched text is a changed key
    enriched[0] = "another enrichment"
    _fake_enrich(monkeypatch, enriched)
    changed = item_embeddings(ds, "text", cfg(), progress=False)
    assert changed.manifest["from_cache"] is False and not np.allclose(changed.vectors[0], emb.vectors[0])


def test_enrichment_with_the_wrong_length_is_an_error(ds, monkeypatch):
    _fake_enrich(monkeypatch, ["only one"])
    with pytest.raises(ValueError, match="returned 1 texts for 11 items"):
        item_embeddings(ds, "text", cfg(), progress=False)


def test_minilm_is_pretrained_offline_and_carries_meaning(ds):
    emb = item_embeddings(ds, "text", EmbedConfig(encoder="minilm", text_source="title", device="cpu"),
                          progress=False)
    assert emb.vectors.shape == (ds.space.n_items, 384) and emb.manifest["pretrained"] is True
    assert "all-MiniLM-L6-v2" in emb.weights_note
    np.testing.assert_allclose(np.linalg.norm(emb.vectors[emb.mask], axis=1), 1.0, atol=1e-5)
    from llmemf_lite.embed.minilm import encode_minilm, load_minilm

    v = encode_minilm(load_minilm("cpu"), ["espresso beans", "coffee grinder", "cake pan"], 8, "cpu")
    assert v[0] @ v[1] > v[0] @ v[2] + 0.1


def test_config_errors_name_the_problem(ds):
    with pytest.raises(ValueError, match="MiniLM encoder has no image tower"):
        item_embeddings(ds, "image", EmbedConfig(encoder="minilm"), progress=False)
    with pytest.raises(ValueError, match="unknown modality 'audio'"):
        item_embeddings(ds, "audio", progress=False)
    with pytest.raises(ValueError, match="unknown text_source"):
        item_embeddings(ds, "text", EmbedConfig(text_source="summary"), progress=False)


def test_weights_resolution_never_downloads_and_says_why(tmp_path):
    none = resolve_clip_weights("ViT-B-32", None)
    assert not none.pretrained and none.note == NO_WEIGHTS_NOTE and none.identity == "random-init-seed0"
    assert not resolve_clip_weights("ViT-B-32", "laion2b_s34b_b79k").pretrained
    assert "not in the local Hugging Face cache" in resolve_clip_weights("ViT-B-32", "hf-hub:org/repo").reason
    assert "not a checkpoint file" in resolve_clip_weights("ViT-B-32", "no-such-tag").reason
    ckpt = tmp_path / "w.bin"
    ckpt.write_bytes(b"x")
    local = resolve_clip_weights("ViT-B-32", str(ckpt))
    assert local.pretrained and local.checkpoint == str(ckpt) and "w.bin" in local.note


@pytest.mark.slow
def test_a_local_checkpoint_is_loaded_and_a_broken_one_falls_back(ds, tmp_path, caplog, capsys):
    import torch

    from llmemf_lite.embed.clip import load_clip

    model, _, _ = load_clip(SMALL, resolve_clip_weights(SMALL, None, seed=7), 224, seed=7)
    ckpt = tmp_path / "seed7.pt"
    torch.save(model.state_dict(), ckpt)
    loaded = item_embeddings(ds, "image", cfg(pretrained=str(ckpt)), progress=False)
    assert loaded.manifest["pretrained"] is True and "seed7.pt" in loaded.weights_note
    assert loaded.manifest["image_size"] == 224  # pretrained weights: native size
    seeded = item_embeddings(ds, "image", cfg(pretrained=None, seed=7, image_size=224), progress=False)
    np.testing.assert_allclose(loaded.vectors, seeded.vectors, atol=1e-5)

    broken = tmp_path / "broken.pt"
    broken.write_bytes(b"not a checkpoint")
    with caplog.at_level(logging.WARNING, logger="llmemf_lite.embed"):
        fallback = item_embeddings(ds, "image", cfg(pretrained=str(broken)), progress=False)
    assert fallback.manifest["pretrained"] is False and fallback.weights_note == NO_WEIGHTS_NOTE
    assert "broken.pt failed to load" in fallback.manifest["weights_reason"]
    assert any("falling back to random init" in r.message for r in caplog.records)
    assert f"{NO_WEIGHTS_NOTE} ({SMALL}, image and text towers)" in capsys.readouterr().err


def test_choose_image_size():
    from llmemf_lite.embed.clip import choose_image_size

    rnd, ckpt = resolve_clip_weights("ViT-B-32", None), resolve_clip_weights("ViT-B-32", __file__)
    assert choose_image_size("ViT-B-32", rnd, [32, 20])[0] == 32
    assert choose_image_size("ViT-B-32", rnd, [33])[0] == 64
    assert choose_image_size("ViT-B-32", rnd, [1000])[0] == 224
    assert choose_image_size("ViT-B-32", rnd, [])[0] == 224
    assert choose_image_size("ViT-B-32", ckpt, [32])[0] == 224
    assert choose_image_size("RN50", rnd, [32])[0] == 224


def test_public_api():
    import llmemf_lite as L

    assert L.item_embeddings is item_embeddings and L.EmbedConfig is EmbedConfig
    assert L.ItemEmbeddings is embed_mod.ItemEmbeddings


def test_the_weights_note_is_a_rendered_note_in_a_kernel(monkeypatch):
    shown = []
    monkeypatch.setattr("IPython.get_ipython", lambda: types.SimpleNamespace(kernel=object()))
    monkeypatch.setattr("IPython.display.display", shown.append)
    assert embed_mod.announce_weights("ViT-B-32", NO_WEIGHTS_NOTE)
    assert not embed_mod.announce_weights("ViT-B-32", NO_WEIGHTS_NOTE)
    assert len(shown) == 1 and NO_WEIGHTS_NOTE in shown[0].data and shown[0].data.startswith("> **Note.**")
