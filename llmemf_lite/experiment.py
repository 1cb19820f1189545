"""Experiments: train and test a list of model variants over several seeds on one dataset, with one protocol, and
write everything a reader needs to check the numbers.

A variant (`RunSpec`) is a label, a model name from `models.MODELS`, config overrides, and which item features it
reads (text encoder and text source). Ablations are lists of variants of the one LLM-EMF class (`ablation_specs`).

Written to results/<experiment>/<pair>_<source>/:
  metrics.csv   one row per (variant, seed, protocol, domain): MRR, NDCG@5/10, HR@1/5/10 and the best epoch
  ranks.csv.gz  one row per (variant, seed, protocol, test case): target, domain, greater, ties, warm (the target
                occurs in a training sequence: `data.dataset.items_in_training`); every metric can be recomputed
                from these with `evaluate.expected_rank_metrics`, per warm and cold target too
  history.csv   per (variant, seed, epoch): training loss, validation scores
  timings.csv   per (variant, seed, epoch): training seconds and sequences/s (one torch thread per run where the
                runs go to worker processes); apart from history.csv, since they vary run to run
  summary.md    the table mean ± std over seeds
Checkpoints and candidates live in artifacts/ (git-ignored); re-running an experiment resumes finished and
half-finished runs instead of training them again.
"""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np
import pandas as pd

from .batching import evaluation_views, training_views
from .evaluate import METRICS, EvalConfig, evaluate_ranking, load_candidates, sample_candidates, summarize


@dataclass(frozen=True)
class RunSpec:
    label: str
    model: str
    overrides: dict = field(default_factory=dict)
    text_encoder: str = "minilm"      # "minilm" | "clip"
    text_source: str = "enriched"     # "enriched" | "title"
    train: dict = field(default_factory=dict)   # TrainConfig overrides of this variant (e.g. lr from tuning)

    @property
    def uses_features(self) -> bool:
        on = self.channel_overrides()
        return bool(on) and (on["use_text"] or on["use_image"])

    def channel_overrides(self) -> dict:
        """The variant's LLM-EMF channel switches, the preset's filled in (empty for other models)."""
        from .models import LLMEMF_PRESETS

        if self.model not in LLMEMF_PRESETS:
            return {}
        preset = LLMEMF_PRESETS[self.model]
        return {f"use_{m}": getattr(preset, f"use_{m}") for m in ("id", "image", "text")} | \
            {k: v for k, v in self.overrides.items() if k.startswith("use_")}


# a preset that reads a fixed text source whatever the experiment's (HAF-VT: raw titles, no LLM enrichment)
TEXT_SOURCE_OF = {"hafvt": "title"}


@dataclass
class ExperimentConfig:
    name: str = "04_train"
    domain_pair: str = "food_kitchen"
    source: str = "synthetic"
    data_dir: str | None = None
    seeds: tuple = (0, 1, 2)
    epochs: int = 20
    patience: int = 3
    batch_size: int = 64
    max_len: int = 50
    device: str = "cpu"
    candidates_file: str | None = None   # load test candidates from another codebase instead of sampling them
    n_negatives: int = 999               # sampled protocol: negatives per case (the paper: 999)
    synthetic: object = None             # a SyntheticConfig for source="synthetic" (None: the default world)
    progress: bool = True
    workers: int = 0                     # CPU runs side by side, one torch thread each (0: one per core)


def default_specs(models, text_encoder: str = "minilm", text_source: str = "enriched",
                  llmemf_overrides: dict | None = None) -> list[RunSpec]:
    """One variant per model name, at its defaults; `llmemf_overrides` (e.g. {"fusion": "representation"}) are
    applied to LLM-EMF only."""
    return [RunSpec(m, m, dict(llmemf_overrides or {}) if m == "llmemf" else {}, text_encoder,
                    TEXT_SOURCE_OF.get(m, text_source)) for m in models]


ABLATION_SETS = ("standard", "extended")


def _check_ablation_set(variants: str) -> None:
    if variants not in ABLATION_SETS:
        raise ValueError(f"variants must be one of {ABLATION_SETS}, got {variants!r}")


def ablation_specs(text_encoder: str = "minilm", text_source: str = "enriched",
                   variants: str = "standard") -> list[RunSpec]:
    """The ablation study, each variant a config switch of the one LLM-EMF class.

    "standard": the full model and the six ablations the study is about (without image, without text, raw titles
    instead of LLM-enriched text, without cross-domain attention, item IDs only, CLIP text instead of MiniLM text).
    "extended" adds four that answer our own questions rather than the paper's (text alone, image alone, and two
    other fusion levels: representation-level fusion, and one network over the fused item vector instead of one per
    channel, version 3's first default); they are left out of the main command to keep it inside its
    time on a 2-core CPU (README, "Time of the main command")."""
    _check_ablation_set(variants)
    te, ts = text_encoder, text_source
    standard = [RunSpec("LLM-EMF (full)", "llmemf", {}, te, ts),
                RunSpec("w/o image", "llmemf", {"use_image": False}, te, ts),
                RunSpec("w/o text", "llmemf", {"use_text": False}, te, ts),
                RunSpec("w/o LLM enrichment (titles)", "llmemf", {}, te, "title"),
                RunSpec("w/o cross-domain attention", "llmemf", {"cross_domain": False}, te, ts),
                RunSpec("ID only", "llmemf", {"use_image": False, "use_text": False}, te, ts),
                RunSpec("CLIP text instead of MiniLM", "llmemf", {}, "clip" if te == "minilm" else "minilm", ts)]
    if variants == "standard":
        return standard
    return standard + [RunSpec("text only", "llmemf", {"use_id": False, "use_image": False}, te, ts),
                       RunSpec("image only", "llmemf", {"use_id": False, "use_text": False}, te, ts),
                       RunSpec("representation-level fusion", "llmemf", {"fusion": "representation"}, te, ts),
                       RunSpec("one network over the fused item (score fusion)", "llmemf", {"fusion": "score"}, te,
                               ts)]


def ablation_experiment(variants: str = "standard") -> str:
    """The results folder name of an ablation set: results/05_ablations/ for the standard set,
    results/05_ablations_extended/ for the extended one (its claims are read from there, `claims.CLAIMS`)."""
    _check_ablation_set(variants)
    return "05_ablations" if variants == "standard" else "05_ablations_extended"


def load_item_features(ds, spec: RunSpec, progress: bool = True):
    """The frozen item features a variant reads: image (CLIP) and text (`spec.text_encoder` over
    `spec.text_source`). Returns (ItemFeatures, notes); a modality the dataset lacks entirely is left out and
    noted, and the variant then runs without it."""
    from .embed import EmbedConfig, item_embeddings
    from .models import ItemFeatures

    features, notes = ItemFeatures(), {}
    on = spec.channel_overrides()
    if on.get("use_image", True):
        img = item_embeddings(ds, "image", EmbedConfig(encoder="clip"), progress=progress)
        if img.mask.any():
            features.add("image", img.vectors, img.mask)
        notes["image"] = img.manifest.get("weights_note", img.manifest.get("weights", "")) if img.mask.any() \
            else "no item has an image: image channel off"
    if on.get("use_text", True):
        txt = item_embeddings(ds, "text", EmbedConfig(encoder=spec.text_encoder, text_source=spec.text_source),
                              progress=progress)
        features.add("text", txt.vectors, txt.mask)
        notes["text"] = f"{spec.text_encoder} over {spec.text_source}"
    return features, notes


def _model_overrides(spec: RunSpec, features, cfg: ExperimentConfig) -> dict:
    overrides = {"max_len": cfg.max_len, **spec.overrides}
    on = spec.channel_overrides()
    if on:
        for m in ("image", "text"):
            if on[f"use_{m}"] and (features is None or m not in features.vectors):
                overrides[f"use_{m}"] = False
    return overrides


def results_folder(cfg: ExperimentConfig) -> Path:
    from .paths import results_dir

    return results_dir() / cfg.name / f"{cfg.domain_pair}_{cfg.source}"


def _workers(cfg: ExperimentConfig, jobs: int) -> int:
    """How many processes train side by side: `cfg.workers`, or one per CPU core (0); always 1 on a GPU, under
    torchrun, or for a single job."""
    import os

    import torch

    from .train import resolve_device
    from .workers import process_count

    if resolve_device(cfg.device) != "cpu" or "RANK" in os.environ \
            or (torch.distributed.is_available() and torch.distributed.is_initialized()):
        return 1
    return process_count(cfg.workers, jobs)


class _Setting:
    """What every (variant, seed) run of an experiment shares: the dataset, its views and the fixed candidates.
    Built once per process (the parent, or each worker: from the artefact cache, in seconds)."""

    def __init__(self, cfg: ExperimentConfig):
        from .data.build import build_dataset, dataset_folder
        from .data.dataset import items_in_training
        from .paths import artifacts_dir

        self.cfg = cfg
        self.ds = ds = build_dataset(cfg.domain_pair, cfg.source, cfg.data_dir, cfg.synthetic)
        self.space, self.names = ds.space, ds.pair.domains
        self.train_seqs = list(ds.split("train")["items"])
        self.warm = items_in_training(self.train_seqs, self.space.n_items)
        self.train_views = training_views(self.train_seqs, self.space, cfg.max_len)
        self.valid_views, self.valid_targets = evaluation_views(list(ds.split("valid")["items"]), self.space,
                                                                cfg.max_len)
        self.test_views, self.test_targets = evaluation_views(list(ds.split("test")["items"]), self.space,
                                                              cfg.max_len)
        self.eval_cfg = EvalConfig(n_negatives=cfg.n_negatives)
        self.run_root = artifacts_dir() / "runs" / dataset_folder(cfg.domain_pair, cfg.source, cfg.data_dir,
                                                                  cfg.synthetic).name
        self.run_root.mkdir(parents=True, exist_ok=True)
        # the candidates are fixed by a seed and saved, so every model is scored on the very same ones
        self.valid_cands = _fixed_candidates(self.run_root / "valid_candidates.npy", self.valid_targets, self.space,
                                             self.eval_cfg, 0)
        self.test_cands = (load_candidates(cfg.candidates_file, self.test_targets, self.space,
                                           n_negatives=cfg.n_negatives)
                           if cfg.candidates_file else
                           _fixed_candidates(self.run_root / "test_candidates.npy", self.test_targets, self.space,
                                             self.eval_cfg, 1))
        self.features: dict = {}

    def item_features(self, spec: RunSpec):
        """(ItemFeatures, notes) of a variant, loaded once per (encoder, text source, channels)."""
        on = spec.channel_overrides()
        key = (spec.text_encoder, spec.text_source, on.get("use_image", True), on.get("use_text", True))
        if key not in self.features:
            self.features[key] = load_item_features(self.ds, spec, self.cfg.progress)
        return self.features[key]

    def run(self, spec: RunSpec, seed: int) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame | None]:
        """Train (or resume) and test one (variant, seed): (metrics, ranks, history or None for popularity)."""
        import torch

        from .models import build_model
        from .train import resolve_device, train_model

        cfg = self.cfg
        features = self.item_features(spec)[0] if spec.uses_features else None
        overrides = _model_overrides(spec, features, cfg)
        torch.manual_seed(seed)
        np.random.seed(seed)
        history = None
        if spec.model == "pop":
            model, best_epoch = build_model("pop", self.space).fit(self.train_seqs), 0
        else:
            model = build_model(spec.model, self.space, features, train_sequences=self.train_seqs, **overrides)
            tcfg = train_config(cfg, spec, seed)
            result = train_model(model, self.train_views, self.valid_views, self.valid_targets, self.valid_cands,
                                 self.space, self.names, tcfg, self.run_root / _slug(spec, model, tcfg) /
                                 f"seed{seed}", self.eval_cfg)
            best_epoch = result.best_epoch
            history = result.history.assign(label=spec.label, seed=seed)
        cases = evaluate_ranking(model, self.test_views, self.test_targets, self.space, self.test_cands,
                                 self.eval_cfg, resolve_device(cfg.device) if spec.model != "pop" else "cpu")
        ranks = cases[["protocol", "case", "target", "domain", "greater", "ties"]].assign(
            warm=self.warm[cases["target"].to_numpy()], label=spec.label, seed=seed)
        metrics = summarize(cases, self.names).assign(label=spec.label, seed=seed, best_epoch=best_epoch)
        return metrics, ranks, history


def _one_thread_on_cpu(cfg: ExperimentConfig, work):
    """Run `work()` with one torch thread on CPU, as in a worker process, so the numbers do not depend on whether
    the runs went to workers; the thread count is restored after."""
    import torch

    from .train import resolve_device

    if resolve_device(cfg.device) != "cpu":
        return work()
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return work()
    finally:
        torch.set_num_threads(threads)


_WORKER_SETTING: _Setting | None = None


def _worker_start(cfg: ExperimentConfig, log: str) -> None:
    """A worker process: one torch thread (so a run's numbers do not depend on how many run beside it, nor on the
    machine's core count), and the shared setting built once. Its stdout and stderr (warnings, library messages) go
    to `log`, not into the notebook, where lines from several processes would land in a different order each run;
    an error still reaches the caller, with its traceback."""
    global _WORKER_SETTING
    import torch

    from .workers import send_output_to

    send_output_to(log)
    torch.set_num_threads(1)
    _WORKER_SETTING = _Setting(replace(cfg, progress=False))


def _worker_run(spec: RunSpec, seed: int):
    return _WORKER_SETTING.run(spec, seed)


def run_experiment(cfg: ExperimentConfig, specs: list[RunSpec], not_run: dict | None = None) -> dict[str, pd.DataFrame]:
    """Train and test every (variant, seed); write results/; return the metrics, ranks and history frames.
    `not_run`: {variant: why} of variants the caller left out (the tuning's models none of whose grid points ran),
    recorded in skipped.json with those these data cannot run.

    On CPU every run uses one torch thread, so that its numbers are the same whatever the machine's core count and
    however many run at once (these small models gain little from a second thread: 617 vs. 644 ms per LLM-EMF step
    here), and the runs go to `cfg.workers` processes side by side (0: one per core; 1: one after another in this
    process). Results are collected in (variant, seed) order; the workers' messages go to
    artifacts/runs/<dataset>/workers.log. On a GPU or under torchrun the runs go one after another in this
    process, with torch's own thread settings."""
    setting = _Setting(cfg)
    notes = {s.label: setting.item_features(s)[1] for s in specs if s.uses_features}   # cache filled, said once
    specs, skipped = runnable_specs(specs, lambda s: setting.item_features(s)[0], cfg)
    skipped = {**skipped, **(not_run or {})}
    jobs = [(spec, seed) for spec in specs for seed in cfg.seeds]
    workers = _workers(cfg, sum(spec.model != "pop" for spec, _ in jobs))
    if workers == 1:
        done = _one_thread_on_cpu(cfg, lambda: [setting.run(spec, seed) for spec, seed in jobs])
    else:
        from tqdm.auto import tqdm

        from .workers import process_pool

        log = setting.run_root / "workers.log"
        with process_pool(workers, _worker_start, (cfg, str(log))) as pool:
            # the longest runs go first, so the pool does not end on one long run with the other cores idle
            futures = {i: pool.submit(_worker_run, *jobs[i]) for i in longest_first(jobs)}
            done = [futures[i].result() for i in tqdm(range(len(jobs)), desc=f"{cfg.name}: runs on {workers} "
                                                      f"processes", disable=not cfg.progress)]
    metrics, ranks, histories = zip(*done)
    histories = [h for h in histories if h is not None]
    out = {"metrics": pd.concat(metrics, ignore_index=True), "ranks": pd.concat(ranks, ignore_index=True),
           "history": pd.concat(histories, ignore_index=True) if histories else pd.DataFrame(), "skipped": skipped}
    _write(cfg, specs, out, notes)
    return out


# Seconds per training epoch relative to SASRec's, as measured on the real pairs (results/tuning_rung/, timings.csv:
# median over the grid's epochs, two one-thread runs side by side on a 2-core CPU; Food-Kitchen, Movie-Book):
# GRU4Rec 0.8, 1.7; BERT4Rec 1.0, 1.0; C2DSR at d = 64 5.1, 6.9 and at its paper's d = 256 (window 15) 31, 26;
# LLM-EMF ID-only 1.6, 3.0 and with IDs and text 3.5, 2.9.
EPOCH_COST = {"pop": 0.0, "gru4rec": 0.8, "sasrec": 1.0, "bert4rec": 1.0}
C2DSR_COST_AT_D64 = 5.1              # C2DSR: cost(d) = 5.1 (d / 64) ** 1.3, through the two widths measured
LLMEMF_COST = (1.6, 1.9)             # LLM-EMF: 1.6 with one channel, 1.9 more per further channel


def expected_cost(spec: RunSpec) -> float:
    """A run's training time per epoch in units of SASRec's, roughly (`EPOCH_COST` and the two models whose cost
    depends on their settings: C2DSR on its width, LLM-EMF on its channels). Used to hand the longest runs to the
    workers first, never reported; a model not listed counts as SASRec."""
    if spec.model == "c2dsr":
        from .models.c2dsr import C2DSRConfig

        return C2DSR_COST_AT_D64 * (spec.overrides.get("d", C2DSRConfig.d) / 64) ** 1.3
    on = spec.channel_overrides()
    if on:
        return LLMEMF_COST[0] + LLMEMF_COST[1] * (len(channels_on(on)) - 1)
    return EPOCH_COST.get(spec.model, 1.0)


def channels_on(overrides: dict) -> list[str]:
    """The LLM-EMF item channels an override dict leaves switched on (each is on unless set False)."""
    return [m for m in ("id", "image", "text") if overrides.get(f"use_{m}", True)]


def longest_first(jobs: list[tuple[RunSpec, int]]) -> list[int]:
    """Indices of (spec, seed) jobs, the most expensive first (stable: ties keep their order)."""
    return sorted(range(len(jobs)), key=lambda i: -expected_cost(jobs[i][0]))


def runnable_specs(specs: list[RunSpec], features_of, cfg: ExperimentConfig) -> tuple[list[RunSpec], dict[str, str]]:
    """The variants these data can run, and why each other one is not run. An LLM-EMF variant loses the channels
    the data lack entirely (`_model_overrides`; e.g. images on the real Food-Kitchen data): one left with no channel
    ("image only") cannot run, and one that becomes the same model as an earlier variant ("w/o image" = the full
    model when no item has an image) would repeat it and report a difference of zero as a finding.
    `features_of(spec)` gives the variant's ItemFeatures (or None)."""
    kept, skipped, seen = [], {}, {}
    for spec in specs:
        if not spec.channel_overrides():
            kept.append(spec)
            continue
        effective = spec.channel_overrides() | _model_overrides(spec, features_of(spec) if spec.uses_features
                                                                else None, cfg)
        channels = channels_on(effective)
        if not channels:
            skipped[spec.label] = "not run: every channel it uses is absent from these data"
            continue
        text = [spec.text_encoder, spec.text_source] if "text" in channels else None
        # the training settings are part of what makes two runs the same (a tuning grid's learning rates)
        same = json.dumps([{k: v for k, v in effective.items() if v is not True}, text, spec.train], sort_keys=True,
                          default=str)
        if same in seen:
            skipped[spec.label] = (f"not run: the same model as '{seen[same]}' on these data (the channel it "
                                   f"switches off is absent anyway)")
            continue
        seen[same] = spec.label
        kept.append(spec)
    return kept, skipped


def train_config(cfg: ExperimentConfig, spec: RunSpec, seed: int):
    """The training settings of one (variant, seed): the experiment's protocol, then the variant's own."""
    from .train import TrainConfig

    return TrainConfig(**{"epochs": cfg.epochs, "patience": cfg.patience, "batch_size": cfg.batch_size,
                          "seed": seed, "device": cfg.device, "progress": cfg.progress, **spec.train})


def _slug(spec: RunSpec, model, train) -> str:
    """A run's folder (its seeds below it): the model's name and a hash of what the run is, its checkpoint
    signature but the seed (the model's effective configuration, whatever overrides spelled it, and every training
    setting but the epoch budget: `train.run_signature`) and its text features. Two experiments of the same run
    share the folder (the second resumes the first's checkpoints); two different runs never do (named by the
    overrides as written, an experiment at batch 128 and one at batch 64 overwrote each other's checkpoints)."""
    import hashlib

    from .train import run_signature

    ident = json.dumps([run_signature(model, replace(train, seed=0))]
                       + ([spec.text_encoder, spec.text_source] if spec.uses_features else []), sort_keys=True)
    return f"{spec.model}-{hashlib.sha256(ident.encode()).hexdigest()[:10]}"


def _fixed_candidates(path: Path, targets, space, eval_cfg: EvalConfig, offset: int) -> np.ndarray:
    """The saved candidates of a split, sampled once (seed = candidate_seed + offset) and reused by every model.

    A saved file is reused only when its record (`<name>.json`: seed, number of negatives, SHA-256 of the targets)
    says it was drawn for these very cases with this seed, and it passes `load_candidates`' checks (each row in its
    target's domain, the target never a negative); otherwise it is drawn again (the same seed gives the same
    array) and overwritten."""
    import hashlib

    seed = eval_cfg.candidate_seed + offset
    record = {"seed": seed, "n_negatives": eval_cfg.n_negatives,
              "targets_sha256": hashlib.sha256(np.ascontiguousarray(targets, dtype=np.int64).tobytes()).hexdigest()}
    stamp = path.with_suffix(".json")
    if path.is_file() and stamp.is_file():
        try:
            if json.loads(stamp.read_text()) == record:
                cands = load_candidates(path, targets, space)
                if cands.shape[1] == eval_cfg.n_negatives:
                    return cands
        except ValueError:
            pass   # a damaged or foreign file: drawn again below
    cands = sample_candidates(targets, space, eval_cfg.n_negatives, seed)
    np.save(path, cands)
    stamp.write_text(json.dumps(record, indent=1))
    return cands


def mean_std_table(metrics: pd.DataFrame, protocol: str, columns=METRICS) -> pd.DataFrame:
    """Mean ± std over seeds per (variant, domain), as strings; the domains (X first, as the metrics list them, not
    alphabetically: movie before book) and the variants keep their given order."""
    rows = metrics[metrics["protocol"] == protocol]
    order = list(dict.fromkeys(rows["label"]))
    g = rows.groupby(["label", "domain"], sort=False)[list(columns)]
    mean, std = g.mean(), g.std(ddof=0).fillna(0.0)
    table = mean.map(lambda v: f"{v:.4f}") + " ± " + std.map(lambda v: f"{v:.4f}")
    table = table.reset_index()
    table["label"] = pd.Categorical(table["label"], order)
    table["domain"] = pd.Categorical(table["domain"], list(dict.fromkeys(rows["domain"])))
    return table.sort_values(["domain", "label"]).set_index(["domain", "label"])


def markdown_table(frame: pd.DataFrame) -> str:
    """A GitHub Markdown table (pandas' to_markdown needs the tabulate package, which we do not depend on)."""
    head = "| " + " | ".join(map(str, frame.columns)) + " |"
    rule = "|" + "|".join("---" for _ in frame.columns) + "|"
    body = ["| " + " | ".join(map(str, row)) + " |" for row in frame.itertuples(index=False)]
    return "\n".join([head, rule, *body])


def _merge(path: Path, new: pd.DataFrame, runs: set) -> pd.DataFrame:
    """Rows of an earlier run of the same experiment are kept unless this run redid their (variant, seed). A variant
    keeps its place among the earlier run's (a run of C2DSR that re-ran pop, which costs nothing, moved pop below
    every other row); variants new to the folder come after."""
    if not path.is_file() or new.empty:
        return new
    old = pd.read_csv(path)
    redone = [(label, seed) in runs for label, seed in zip(old["label"], old["seed"])]
    merged = pd.concat([old[~np.array(redone, dtype=bool)], new], ignore_index=True)
    order = {label: i for i, label in enumerate(dict.fromkeys([*old["label"], *new["label"]]))}
    return merged.sort_values("label", key=lambda labels: labels.map(order), kind="stable", ignore_index=True)


# what must be equal for rows of two runs to stand in one table: all but the seeds, the device (the real-data table
# holds GPU runs and a later CPU re-run of one model) and display settings
_SETTING_EXCLUDED = ("seeds", "device", "progress", "workers")


def _write(cfg: ExperimentConfig, specs, out: dict, notes: dict) -> None:
    folder = results_folder(cfg)
    folder.mkdir(parents=True, exist_ok=True)
    # rows of an earlier run are merged only where it ran the same setting (setting.json); rows without that record
    # are of an unknown setting and are replaced too (merged, they once put an 8-epoch row into a 40-epoch table)
    setting = json.loads(json.dumps({k: v for k, v in asdict(cfg).items() if k not in _SETTING_EXCLUDED},
                                    default=str))
    record = folder / "setting.json"
    unknown = not record.is_file() and (folder / "metrics.csv").is_file()
    if unknown or (record.is_file() and json.loads(record.read_text()) != setting):
        for name in ("metrics.csv", "ranks.csv.gz", "history.csv", "timings.csv", "variants.json", "skipped.json"):
            (folder / name).unlink(missing_ok=True)
        print(f"{folder}: earlier results were for another setting (e.g. epochs); they are replaced, not merged")
    record.write_text(json.dumps(setting, indent=1, sort_keys=True) + "\n")
    labels = {(s.label, seed) for s in specs for seed in cfg.seeds}
    cols = ["label", "seed", "protocol", "domain", "cases", *METRICS, "best_epoch"]
    metrics = _merge(folder / "metrics.csv", out["metrics"][cols], labels)
    metrics.to_csv(folder / "metrics.csv", index=False, float_format="%.6f")
    ranks = _merge(folder / "ranks.csv.gz", out["ranks"], labels)
    ranks.to_csv(folder / "ranks.csv.gz", index=False, compression={"method": "gzip", "mtime": 0})
    if len(out["history"]):
        timing = ["seconds", "sequences_per_s"]     # vary run to run: apart from the scores, in timings.csv
        hist = out["history"].drop(columns=timing)
        _merge(folder / "history.csv", hist, labels).to_csv(folder / "history.csv", index=False, float_format="%.6f")
        times = out["history"][["label", "seed", "epoch", *timing]]
        _merge(folder / "timings.csv", times, labels).to_csv(folder / "timings.csv", index=False)
    lines = [f"# {cfg.name}: {cfg.domain_pair} ({cfg.source})", "",
             "Mean ± std over seeds; test cases of held-out users; best epoch chosen on validation NDCG@10 "
             "(sampled protocol).", ""]
    for protocol, title in (("sampled", "1 target + 999 sampled negatives of its domain (the paper's protocol)"),
                            ("full", "full ranking over every item of the target's domain")):
        lines += [f"## {title}", "", markdown_table(mean_std_table(metrics, protocol).reset_index()), ""]
    # what each variant is, and which were not run and why: this run's entries over an earlier run's, so a run of a
    # subset of the variants (tuning's --models c2dsr) keeps the record of the others
    this_run = {s.label for s in specs} | set(out.get("skipped") or {})
    described = _merged_record(folder / "variants.json", {s.label: _describe(s, notes) for s in specs}, this_run)
    skipped = _merged_record(folder / "skipped.json", out.get("skipped") or {}, this_run)
    seeds = metrics.groupby("label", sort=False)["seed"].unique()
    lines += ["## Variants", ""] + [
        f"- **{label}**: {described.get(label, 'no record of its configuration (run before variants.json)')}"
        f", seeds {sorted(seeds[label].tolist())}" for label in seeds.index]
    (folder / "variants.json").write_text(json.dumps(described, indent=1) + "\n")
    if skipped:
        lines += ["", "## Variants not run on these data", ""] + [f"- **{k}**: {v}" for k, v in skipped.items()]
    lines += ["", f"Configuration of this run: `{json.dumps(asdict(cfg), default=str)}`", ""]
    (folder / "summary.md").write_text("\n".join(lines))
    # read by claims.paper_comparison to say why a claim is not measured; absent when every variant ran
    skipped_record = folder / "skipped.json"
    if skipped:
        skipped_record.write_text(json.dumps(skipped, indent=1))
    elif skipped_record.is_file():
        skipped_record.unlink()


def _describe(spec, notes: dict) -> str:
    return (f"model `{spec.model}`, overrides `{spec.overrides}`" + (f", training `{spec.train}`" if spec.train else "")
            + (f", features: {notes[spec.label]}" if spec.label in notes else ""))


def _merged_record(path: Path, new: dict, this_run: set) -> dict:
    """A label -> entry record of a results folder: this run's entries, and an earlier run's for labels this run
    neither ran nor skipped, each label in its earlier place."""
    old = json.loads(path.read_text()) if path.is_file() else {}
    kept = {k: v for k, v in old.items() if k not in this_run}
    # an entry keeps its earlier place; entries new to the record come after
    return {k: new.get(k, kept.get(k)) for k in [*old, *new] if k in kept or k in new}
