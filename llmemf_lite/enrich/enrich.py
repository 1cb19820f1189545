"""The enrichment driver: one enriched text per item of a canonical dataset, generated through the cache.

What this file is: `EnrichConfig` (every knob, with its default and why), `make_backend` / `generator_key` (the
backend a config names, and its name in the cache), `enrich_dataset` (select the items, look
them up in the cache, generate the missing ones in batches with a progress bar, guard each output, write each batch
atomically), `enriched_texts` (the one call downstream stages use) and `EnrichmentRun` (the texts plus what
happened: cache hits, generated, fallbacks and their reasons, tokens/s, and the tables notebook 02 shows).
What it is not: prompt wording (`prompts.py`), model code (`local.py`, `http.py`), output checks (`guards.py`),
storage (`cache.py`).

The enriched text of an item is "<title>. <generated text>": CLIP later embeds it, and keeping the title first means
the enriched text never knows less than the raw title did. An item whose generation fails a guard gets its original
title (a *fallback*, counted with its reason); an item with no title and no description gets None.
"""
from __future__ import annotations

import json
import math
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np
import pandas as pd

from ..paths import artifacts_dir, results_dir
from .backend import BackendError, GenerationBackend
from .cache import CachedEnrichment, EnrichmentCache, cache_key, source_sha
from .guards import GuardConfig, check_generation
from .prompts import get_template, messages_text


@dataclass
class EnrichConfig:
    # which model: "local" runs transformers here; "openai" calls an OpenAI-compatible server (vLLM, llama.cpp, ...)
    backend: str = "local"
    model: str | None = None        # local: a .gguf file, a model folder or a cached hub id; None = bundled SmolLM2
    gguf_file: str | None = None    # local: the .gguf file inside `model` when `model` is a folder
    template: str = "describe"      # prompts.TEMPLATES: describe | attributes | audience | describe_with_context
    # decoding. 16 new tokens: the model mostly restates the title first, so a text cut at the limit keeps about a
    # dozen words of its own, trimmed back to a whole sentence or word by the guards. 24 tokens wrote about 18 words
    # but cost 1.30x the time (side by side, batch 240, one thread): with 2,400 items it was a quarter of the main
    # command's time on a 2-core CPU
    max_new_tokens: int = 16
    do_sample: bool = False         # greedy by default: the same config gives the same texts (cache-friendly)
    temperature: float = 0.7
    top_p: float = 0.95
    repetition_penalty: float = 1.1  # mild: stops the loops small models fall into without bending word choice
    seed: int = 0
    # throughput. 240 prompts per batch (five per domain of the default world): one thread generates 1.12-1.23x the
    # items/s of 64 per batch here (side by side; 1.18x at 16 new tokens)
    batch_size: int = 240
    share_prefix: bool = True       # local: compute the prompt's common prefix once per batch (~1.3x faster here)
    device: str = "auto"            # "cpu", "cuda", or "auto" (cuda when available)
    # local: the weights' dtype; None = float32 on a CPU, bfloat16 on CUDA. "bfloat16" on a CPU with AVX-512 BF16
    # (or AMX) generated 1.87x the items/s of float32 on the real Food-Kitchen titles (480 items, one thread, side by
    # side; AMD EPYC family 25), the same text for about three items in four and 9.0% fallbacks against 8.1%; its
    # texts are cached apart from float32's (generator_key)
    dtype: str | None = None
    threads: int | None = None      # torch CPU threads when generating in this process; None = torch's default
    # local backend on a CPU: processes side by side, each with its own copy of the model (~1 GB) and one torch
    # thread (0: one per core, at most 8; 1: this process, `threads` threads). Two one-thread processes generate
    # 1.29x the items/s of one two-thread process on this 2-core CPU (benchmarks/bench_enrich.py --processes 2),
    # and a batch's texts then do not depend on the machine's core count
    workers: int = 0
    # which items and what goes into the prompt
    limit: int | None = None        # enrich only this many items (spread over the two domains); None = all
    use_description: bool = False   # put the item description into the prompt (template describe_with_context);
    # off by default: in the synthetic world the description states the hidden theme and style (the ground truth)
    # guards (guards.GuardConfig)
    guards: GuardConfig = field(default_factory=GuardConfig)
    # the HTTP backend
    base_url: str = "http://127.0.0.1:8000/v1"
    api_key_env: str = "OPENAI_API_KEY"  # the NAME of the variable holding the key; the key itself is never stored
    concurrency: int = 8            # requests in flight; raise it for a vLLM server or a fleet behind one URL
    timeout_s: float = 60.0
    max_retries: int = 5            # on 429 / 5xx / timeouts, with exponential backoff and jitter
    http_extra: dict = field(default_factory=dict)  # server-specific request fields, e.g. {"repetition_penalty": 1.1}
    cache_dir: str | None = None    # default: artifacts/enrich/<dataset folder name>/


@dataclass
class EnrichmentRun:
    """What `enrich_dataset` did. Per-item lists are indexed by global item id."""
    config: EnrichConfig
    generator: str
    prompt_hash: str
    cache_path: Path
    domains: list[str]                  # domain name per item
    titles: list[str | None]            # the original text per item
    texts: list[str | None]             # what downstream reads (see module docstring)
    generated_text: list[str | None]    # the LLM's part alone (None: fallback, not enriched, or no text)
    origin: list[str]                   # "cache" | "generated" | "missing" | "limit" | "no_text"
    reasons: list[str | None]           # fallback reason, None when the LLM text is used
    trimmed: list[bool]
    run_tokens: int = 0                 # new tokens generated in this run
    run_seconds: float = 0.0            # generation time of this run (model loading excluded)
    stored_tokens: int = 0              # tokens of every in-scope cached row, as measured when generated
    stored_seconds: float = 0.0
    load_seconds: float = 0.0

    # -- counts -------------------------------------------------------------------------------------------------
    def counts(self) -> pd.DataFrame:
        """Per domain and in total: items, in scope, cache hits, generated, enriched, fallbacks, trimmed, no text,
        not enriched (beyond `limit`, or missing from the cache)."""
        frame = pd.DataFrame({"domain": self.domains, "origin": self.origin,
                              "fallback": [r is not None for r in self.reasons], "trimmed": self.trimmed})
        done = frame["origin"].isin(["cache", "generated"])
        frame["enriched"] = done & ~frame["fallback"]
        frame["fallback"] &= done
        rows = {}
        for name, part in [*frame.groupby("domain", sort=False), ("total", frame)]:
            rows[name] = {"items": len(part), "cache hits": int((part["origin"] == "cache").sum()),
                          "generated": int((part["origin"] == "generated").sum()),
                          "enriched": int(part["enriched"].sum()), "fallbacks": int(part["fallback"].sum()),
                          "trimmed": int((part["trimmed"] & done[part.index]).sum()),
                          "no text": int((part["origin"] == "no_text").sum()),
                          "not enriched": int(part["origin"].isin(["limit", "missing"]).sum())}
        return pd.DataFrame(rows).T

    def tokens_per_second(self) -> float:
        """This run's generation rate; when nothing was generated now, the rate recorded with the cached rows."""
        if self.run_seconds > 0:
            return self.run_tokens / self.run_seconds
        return self.stored_tokens / self.stored_seconds if self.stored_seconds > 0 else float("nan")

    def items_per_second(self) -> float:
        n_generated = self.origin.count("generated")
        if self.run_seconds > 0 and n_generated:
            return n_generated / self.run_seconds
        n_cached = self.origin.count("cache")
        return n_cached / self.stored_seconds if self.stored_seconds > 0 else float("nan")

    def summary_table(self, run_columns: bool = True) -> pd.DataFrame:
        """The counts for display. The run-dependent columns (cache hits, generated: a cold and a warm run differ;
        tokens/s: a timing) are worded so that notebooks/nbval_sanitize.cfg masks them; `run_columns=False` leaves
        them out (a committed notebook shows only what must reproduce, and prints `run_line()` for the rest)."""
        table = self.counts()[["items", "cache hits", "generated", "enriched", "fallbacks", "trimmed", "no text",
                               "not enriched"]].astype(object)
        if not run_columns:
            return table.drop(columns=["cache hits", "generated"])
        table["cache hits"] = [f"{n:,} from cache" for n in table["cache hits"]]
        table["generated"] = [f"{n:,} generated now" for n in table["generated"]]
        rate = self.tokens_per_second()
        table["tokens/s"] = "" if math.isnan(rate) else f"{rate:.0f} tokens/s"
        table.loc[table.index != "total", "tokens/s"] = ""
        return table

    def run_line(self) -> str:
        """What this run did (cache hits, generations, rate): one line, masked by the nbval sanitiser."""
        total = self.counts().loc["total"]
        rate = self.tokens_per_second()
        rate = 0.0 if math.isnan(rate) else rate  # nothing generated (all from the cache)
        return f"this run: {total['cache hits']:,} from cache, {total['generated']:,} generated now, {rate:.0f} tokens/s"

    def fallback_reasons(self) -> pd.Series:
        done = [o in ("cache", "generated") for o in self.origin]
        reasons = pd.Series([r for r, d in zip(self.reasons, done) if d and r is not None], dtype=object)
        return reasons.value_counts().rename("fallbacks").rename_axis("reason")

    # -- tables ---------------------------------------------------------------------------------------------------
    def items_table(self) -> pd.DataFrame:
        """One row per item: original text, the LLM's part, the text downstream reads, and what happened."""
        return pd.DataFrame({"item_id": np.arange(len(self.texts)), "domain": self.domains, "title": self.titles,
                             "generated": self.generated_text, "enriched_text": self.texts, "origin": self.origin,
                             "fallback_reason": self.reasons, "trimmed": self.trimmed})

    def side_by_side(self, per_domain: int = 3, *, include_fallbacks: bool = True) -> pd.DataFrame:
        """A few items per domain: the original title next to what the LLM added (the lowest enriched ids, plus
        the first fallback of each domain so that a reader sees one)."""
        table = self.items_table()
        done = table[table["origin"].isin(["cache", "generated"])]
        parts = []
        for _, part in done.groupby("domain", sort=False):
            shown = part[part["fallback_reason"].isna()].head(per_domain)
            if include_fallbacks:
                shown = pd.concat([shown, part[part["fallback_reason"].notna()].head(1)])
            parts.append(shown)
        out = pd.concat(parts) if parts else table.head(0)
        out = out.assign(generated=out["generated"].fillna("(fallback: " + out["fallback_reason"].fillna("") + ")"))
        return out[["item_id", "domain", "title", "generated"]].set_index("item_id")

    def remaining_estimate(self) -> dict:
        """How many items are not enriched yet (beyond `limit`) and how long they would take at the measured rate."""
        remaining = sum(o in ("limit", "missing") for o in self.origin)
        rate = self.items_per_second()
        seconds = remaining / rate if remaining and rate > 0 and not math.isnan(rate) else 0.0
        return {"remaining_items": remaining, "items_per_second": rate, "seconds": seconds}

    def save_summary(self, path: str | Path | None = None, name: str = "") -> Path:
        """The counts, fallback reasons, settings and generation time as JSON (results/enrichment_<name>.json by
        default). The time is the cache's record of its rows of this generator and prompt (`generation_time`), so a
        re-run that reads them from the cache writes the time they took when they were generated."""
        path = Path(path) if path else results_dir() / f"enrichment_{name or 'summary'}.json"
        config = asdict(self.config)
        with EnrichmentCache(self.cache_path) as cache:
            time = cache.generation_time(self.generator, self.prompt_hash)
        data = {"generator": self.generator, "template": self.config.template, "prompt_hash": self.prompt_hash,
                "config": config, "counts": self.counts().to_dict(orient="index"),
                "fallback_reasons": {k: int(v) for k, v in self.fallback_reasons().items()}, "time": time}
        path.write_text(json.dumps(data, indent=2, default=str) + "\n")
        return path


def make_backend(config: EnrichConfig) -> GenerationBackend:
    """The backend `config.backend` names: "local" (transformers) or "openai" (an OpenAI-compatible HTTP server)."""
    if config.backend == "local":
        from .local import TransformersBackend
        return TransformersBackend.from_config(config, generator_key(config))
    if config.backend == "openai":
        from .http import OpenAICompatibleBackend
        return OpenAICompatibleBackend.from_config(config, generator_key(config))
    raise ValueError(f"unknown enrichment backend {config.backend!r}; choose 'local' or 'openai'")


def generator_key(config: EnrichConfig) -> str:
    """The model and decoding settings of `config` as one string, without loading anything (the backend's
    `generator_key`, part of the cache key)."""
    if config.backend == "local":
        from .local import model_identity
        model = model_identity(config.model, config.gguf_file)
    elif config.backend == "openai":
        model = f"openai:{config.model or 'default'}"
    else:
        raise ValueError(f"unknown enrichment backend {config.backend!r}; choose 'local' or 'openai'")
    decoding = (f"sample(t={config.temperature},p={config.top_p},seed={config.seed})" if config.do_sample
                else "greedy")
    if config.backend == "openai":  # the server applies only what is sent: the extra fields, not our penalty
        extra = json.dumps(config.http_extra or {}, sort_keys=True)
        return f"{model}|{decoding}|max_new={config.max_new_tokens}|extra={extra}"
    from .local import generation_dtype
    # float32, the CPU default, adds nothing, so that the texts cached before the dtype was named keep their key
    dtype = generation_dtype(config.dtype, config.device)
    return f"{model}|{decoding}|max_new={config.max_new_tokens}|rep={config.repetition_penalty}" + \
        ("" if dtype == "float32" else f"|dtype={dtype}")


def _blank(value) -> bool:
    return value is None or (isinstance(value, float) and np.isnan(value)) or not str(value).strip()


def dataset_cache_dir(ds, config: EnrichConfig | None = None) -> Path:
    """artifacts/enrich/<pair>-<source>/ (config.cache_dir overrides). Not keyed by the dataset folder: a rebuilt
    dataset whose sequences changed keeps its item texts, and the cache key (item id + full prompt) already tells
    a changed item apart."""
    if config is not None and config.cache_dir:
        return Path(config.cache_dir)
    return artifacts_dir() / "enrich" / f"{ds.pair.name}-{ds.card.get('source', 'unsaved')}"


def select_items(ds, limit: int | None) -> np.ndarray:
    """The item ids to enrich: all, or `limit` of them shared between the two domains in proportion to their sizes
    (lowest ids first, so a larger limit later extends an earlier run instead of replacing it)."""
    space = ds.space
    if limit is None or limit >= space.n_items:
        return np.arange(space.n_items)
    if limit < 0:
        raise ValueError(f"EnrichConfig.limit must be None or >= 0, got {limit}")
    n_x = min(space.n_x, round(limit * space.n_x / space.n_items))
    n_y = min(space.n_y, limit - n_x)
    return np.concatenate([np.arange(n_x), space.n_x + np.arange(n_y)])


def item_prompts(ds, config: EnrichConfig) -> tuple[list[str | None], list[str | None], list[list[dict] | None]]:
    """Per item: the original text (the title; the description when there is no title; None when neither), the
    source text the cache key is built from, and the template's chat messages (None when there is no text)."""
    template = get_template(config.template)
    originals, sources, prompts = [], [], []
    for title, domain, description in zip(ds.items["title"].tolist(), ds.items["domain"].tolist(),
                                          ds.items["description"].tolist()):
        description = "" if _blank(description) else str(description).strip()
        original = str(title).strip() if not _blank(title) else (description or None)
        context = description if config.use_description else ""
        messages = None if original is None else template.render(original, domain, context)
        originals.append(original)
        # the key's "source text" is everything the model is shown, so that any change to what goes into the
        # prompt (title, domain wording, description) misses the cache, not only a change of the template
        sources.append(None if messages is None else messages_text(messages))
        prompts.append(messages)
    return originals, sources, prompts


def compose(original: str, generated: str | None) -> str:
    """The text downstream reads: "<title>. <generated>", or the title alone on a fallback."""
    if not generated:
        return original
    return f"{original}{' ' if original[-1] in '.!?' else '. '}{generated}"


def enrich_dataset(ds, config: EnrichConfig | None = None, *, progress: bool = True, build_if_missing: bool = True,
                   backend: GenerationBackend | None = None) -> EnrichmentRun:
    """Enrich the items of `ds` (all, or `config.limit` of them) through the cache and say what happened.

    With build_if_missing=False nothing is generated and no model is loaded: every item is looked up (limit is
    ignored) and items missing from the cache get None. `backend` overrides the one `config` names (tests pass a
    tiny model); its `generator_key` is then the cache's generator."""
    config = config or EnrichConfig()
    template = get_template(config.template)
    generator = backend.generator_key if backend is not None else generator_key(config)
    n_items = ds.space.n_items
    originals, sources, prompts = item_prompts(ds, config)
    keys = [None if s is None else cache_key(i, s, generator, template.hash) for i, s in enumerate(sources)]
    in_scope = np.zeros(n_items, dtype=bool)
    in_scope[np.arange(n_items) if not build_if_missing else select_items(ds, config.limit)] = True

    cache = EnrichmentCache(dataset_cache_dir(ds, config) / "cache.sqlite")
    run = EnrichmentRun(config, generator, template.hash, cache.path, ds.items["domain"].tolist(), originals,
                        texts=[None] * n_items, generated_text=[None] * n_items, origin=["no_text"] * n_items,
                        reasons=[None] * n_items, trimmed=[False] * n_items)
    try:
        cached = cache.get_many([k for k, s in zip(keys, in_scope) if k and s], generator, template.hash)
        pending = []
        for i in range(n_items):
            if keys[i] is None:
                continue
            if not in_scope[i]:
                run.origin[i], run.texts[i] = "limit", originals[i]
            elif keys[i] in cached:
                _fill(run, i, cached[keys[i]], "cache")
                run.stored_tokens += cached[keys[i]].n_tokens
                run.stored_seconds += cached[keys[i]].seconds
            else:
                run.origin[i] = "missing"
                pending.append(i)
        if pending and build_if_missing:
            _generate(run, config, pending, prompts, sources, keys, cache, backend, progress)
    finally:
        cache.close()
    return run


def _fill(run: EnrichmentRun, i: int, entry: CachedEnrichment, origin: str) -> None:
    run.origin[i], run.texts[i], run.generated_text[i] = origin, entry.text, entry.generated
    run.reasons[i], run.trimmed[i] = entry.reason, entry.trimmed


def _generate(run: EnrichmentRun, config: EnrichConfig, pending: list[int], prompts, sources, keys,
              cache: EnrichmentCache, backend: GenerationBackend | None, progress: bool) -> None:
    from tqdm import tqdm  # not tqdm.auto: its import warns into notebook stderr without ipywidgets

    # one domain at a time, shortest prompts first: the rows of a batch then share the prompt up to the title (the
    # template names the domain before it), which is computed once per batch (`share_prefix`), and have similar
    # lengths, so little padding is computed
    order = sorted(pending, key=lambda i: (run.domains[i], len(messages_text(prompts[i])), i))
    batches = [order[start:start + config.batch_size] for start in range(0, len(order), config.batch_size)]
    workers = _workers(config, len(batches)) if backend is None else 1
    bar = tqdm(total=len(order), unit="item", desc="enriching" + (f" on {workers} processes" if workers > 1 else ""),
               disable=not progress, smoothing=0.1)
    began, done = time.perf_counter(), 0
    try:
        for batch, (outputs, seconds, load_seconds) in zip(batches, _batch_outputs(config, batches, prompts, backend,
                                                                                   workers, cache.path)):
            if len(outputs) != len(batch):
                raise BackendError(f"backend {run.generator} returned {len(outputs)} outputs for {len(batch)} prompts")
            run.load_seconds = max(run.load_seconds, load_seconds)
            entries = []
            for i, out in zip(batch, outputs):
                guard = check_generation(out.text, title=run.titles[i], instruction=prompts[i][-1]["content"],
                                         finished=out.finished, error=out.error, config=config.guards)
                entries.append(CachedEnrichment(
                    keys[i], i, run.generator, run.prompt_hash, source_sha(sources[i]), messages_text(prompts[i]),
                    out.text, guard.text, compose(run.titles[i], guard.text), "ok" if guard.text else "fallback",
                    guard.reason, guard.trimmed, out.n_tokens, seconds / len(batch)))
            cache.put_many(entries)  # one transaction: a kill here loses this batch only, never an earlier one
            for i, entry in zip(batch, entries):
                _fill(run, i, entry, "generated")
            done += len(batch)
            run.run_tokens += sum(o.n_tokens for o in outputs)
            # wall clock of the generation, model loading excluded (side by side, the batches' times overlap)
            run.run_seconds = time.perf_counter() - began - run.load_seconds
            bar.update(len(batch))
            bar.set_postfix_str(f"{run.run_tokens / max(run.run_seconds, 1e-9):.0f} tokens/s")
    except BackendError as e:
        raise BackendError(f"{e}\n{done + run.origin.count('cache')} items of this run are in the cache "
                           f"({cache.path}); run again to resume from there") from None
    finally:
        bar.close()


def _workers(config: EnrichConfig, n_batches: int) -> int:
    """How many processes generate side by side: `config.workers`, or one per core, at most 8 (0); 1 unless the
    local backend runs on a CPU."""
    from ..workers import process_count
    from .local import generation_device

    if config.backend != "local" or generation_device(config.device) != "cpu":
        return 1
    return process_count(config.workers, n_batches, cap=8)


def _batch_outputs(config: EnrichConfig, batches: list[list[int]], prompts, backend: GenerationBackend | None,
                   workers: int, cache_path: Path):
    """(outputs, seconds, model load seconds) per batch, in the order of `batches`: here, or from `workers`
    processes (their messages go to `workers.log` beside the cache)."""
    if workers == 1:
        load_seconds = 0.0
        if backend is None:
            backend = make_backend(config)
            load_seconds = getattr(backend, "load_seconds", 0.0)
        for batch in batches:
            began = time.perf_counter()
            outputs = backend.generate([prompts[i] for i in batch])
            yield outputs, time.perf_counter() - began, load_seconds
        return
    from ..workers import process_pool

    with process_pool(workers, _worker_start, (config, str(cache_path.parent / "workers.log"))) as pool:
        futures = [pool.submit(_worker_generate, call, [prompts[i] for i in batch])
                   for call, batch in enumerate(batches)]
        for future in futures:   # a caller that stops reading ends the pool (workers.process_pool)
            yield future.result()


_WORKER_BACKEND: GenerationBackend | None = None


def _worker_start(config: EnrichConfig, log: str) -> None:
    """A generating process: one torch thread, the model loaded once. Its stdout and stderr go to `log`."""
    global _WORKER_BACKEND
    from ..workers import send_output_to

    send_output_to(log)
    _WORKER_BACKEND = make_backend(replace(config, threads=1))


def _worker_generate(call: int, prompts: list) -> tuple[list, float, float]:
    began = time.perf_counter()
    outputs = _WORKER_BACKEND.generate(prompts, call=call)
    return outputs, time.perf_counter() - began, getattr(_WORKER_BACKEND, "load_seconds", 0.0)


def enriched_texts(ds, config: EnrichConfig | None = None, *, build_if_missing: bool = True,
                   progress: bool = True) -> list[str | None]:
    """One text per global item id (len == ds.space.n_items): the enriched text wherever the cache holds one, the
    original title elsewhere (a generation that fell back, or an item outside the enriched scope), None only where
    the item has no text.

    With build_if_missing=True the scope's missing items are generated first. The scope is `config.limit`, or,
    without a config, the source's default (`default_limit`: the whole synthetic world, REAL_DATA_LIMIT items of
    real data), the same items notebook 02 enriches by default, so a downstream stage never starts an hours-long
    run of its own. Items beyond the scope that an earlier, larger run enriched are read too.
    With build_if_missing=False: what the cache holds, None for the rest, and no model is loaded.
    Cheap when everything is cached (indexed reads of the cache, no model)."""
    if not build_if_missing:
        return enrich_dataset(ds, config, progress=progress, build_if_missing=False).texts
    scope = config or default_scope(ds)
    enrich_dataset(ds, scope, progress=progress)                              # generate what the scope lacks
    cached = enrich_dataset(ds, scope, progress=False, build_if_missing=False)  # every item the cache holds
    return [t if t is not None else title for t, title in zip(cached.texts, cached.titles)]


def default_scope(ds) -> EnrichConfig:
    """The enrichment a downstream stage reads when it passes no config (notebooks 03-05, text_source="enriched"):
    the default model and decoding, `default_limit(ds)` items, at the weights' dtype whose texts the cache holds
    for the most items of `ds`, the default dtype on a tie or an empty cache. So `notebook 02 -p dtype bfloat16
    -p limit all` is what a later stage reads, and not the 480 float32 texts of an earlier default run; the
    float32 and bfloat16 texts are never mixed (one generator key). Counting is an indexed cache read, no model."""
    from .local import DTYPES

    base, best, most, seen = EnrichConfig(limit=default_limit(ds)), None, 0, set()
    for dtype in (None, *DTYPES):
        candidate = replace(base, dtype=dtype)
        key = generator_key(candidate)
        if key in seen:
            continue
        seen.add(key)
        held = sum(t is not None for t in enrich_dataset(ds, candidate, progress=False, build_if_missing=False).texts)
        if held > most:
            best, most = candidate, held
    return best or base


REAL_DATA_LIMIT = 480   # items enriched by default on any source but the synthetic world: 36,298 real items take
                        # hours on a 2-core CPU (notebook 02 prints the estimate); `limit` asks for more


def default_limit(ds) -> int | None:
    """How many items are enriched when nobody says: all of the synthetic world (None), REAL_DATA_LIMIT of any other
    source."""
    return None if ds.card.get("source") == "synthetic" else REAL_DATA_LIMIT
