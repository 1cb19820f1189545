# The two commands of the README: `make reproduce` (the main job) and `make test`. Both set up the environment
# first (tools/setup_env.py: built once per machine and dependency set, then reused in seconds).
PYTHON ?= python3
PY := .venv/bin/python
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1
export TOKENIZERS_PARALLELISM := false
export PYDEVD_DISABLE_FILE_VALIDATION := 1

SHARED_DATA ?= ../shared/data
# notebooks 01-06 on the real data, each model tuned (llmemf_lite.tuning): a GPU where there is one
# (`make reproduce-real REAL_DEVICE=cpu` forces the CPU)
REAL_DEVICE ?= auto
# the LLM's weights when notebook 02 enriches every real item: bfloat16 where the CPU has BF16 instructions (about
# twice as fast as float32 with AVX-512 BF16), float32 where it has none (there bfloat16 is 4-6.5x slower; both in
# docs/enrichment.md). The two dtypes' texts differ, and so do bfloat16's on two kinds of BF16 unit
REAL_ENRICH_DTYPE ?= $(shell grep -qswE 'avx512_bf16|amx_bf16' /proc/cpuinfo && echo bfloat16 || echo float32)

.PHONY: env reproduce reproduce-real test notebooks lab benchmarks

env:
	@$(PYTHON) tools/setup_env.py

## the main job: every notebook on the embedded (synthetic) default dataset -> runs/default, results/, figures/
reproduce: env
	$(PY) -m llmemf_lite.pipeline --out runs/default

## the same sequence on the two real Amazon pairs (LLMCDSR releases in ../shared/data), every model tuned
REAL_PARAMS = -p source llmcdsr -p device $(REAL_DEVICE) -p limit all -p dtype $(REAL_ENRICH_DTYPE) -p tuned True -p seeds 0,1,2 -p models pop,gru4rec,sasrec,bert4rec,c2dsr,llmemf_id,llmemf,ifcdsr,hafvt
reproduce-real: env
	$(PY) -m llmemf_lite.pipeline --out runs/food_kitchen_real --record results/reproduce_real.json -p domain_pair food_kitchen -p data_dir $(SHARED_DATA)/food-kitchen $(REAL_PARAMS)
	$(PY) -m llmemf_lite.pipeline --out runs/movie_book_real --record results/reproduce_real.json -p domain_pair movie_book -p data_dir $(SHARED_DATA)/movie-book $(REAL_PARAMS)

## unit tests + every committed notebook re-executed and compared with its committed outputs
test: env
	$(PY) -m pytest --nbval --nbval-sanitize-with notebooks/nbval_sanitize.cfg

## refresh the committed notebooks' outputs (run after changing a notebook or what it shows)
notebooks: env
	$(PY) -m llmemf_lite.pipeline --in-place
	$(PY) tools/nbbuild.py clean notebooks/*.ipynb

## JupyterLab rooted at the project (README, results/, figures/ in reach), opened on the notebooks folder
lab: env
	.venv/bin/jupyter-lab --ServerApp.root_dir="$(CURDIR)" --LabApp.default_url=/lab/tree/notebooks

benchmarks: env
	@for b in benchmarks/bench_*.py; do echo "== $$b"; $(PY) $$b || exit 1; done
