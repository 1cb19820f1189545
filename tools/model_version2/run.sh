#!/usr/bin/env bash
# LLM-EMF model version 2 under the fair-training protocol (issue 19), for the version 2 / version 3 comparison in
# docs/diagnostics.md. Usage: bash tools/model_version2/run.sh [workers] [food-kitchen data dir, absolute]
# Makes a worktree of 610934d^ (the last commit with version 2: models/stacked.py) in ../llmemf-v2, applies
# fair_protocol.patch (positions at N(0, 0.02), lr through ExperimentConfig, full ranking without the user's
# history items: the three changes that landed with or after version 3 and that the protocol needs), runs run.py
# there with this clone's environment, and copies its results to results/diagnostics/model_version2/.
set -euo pipefail
here="$(cd "$(dirname "$0")/../.." && pwd)"
tree="${LLMEMF_V2_TREE:-$here/../llmemf-v2}"
data="${2:-$here/../shared/data/food-kitchen}"
if [ ! -d "$tree" ]; then
  git -C "$here" worktree add --detach "$tree" 610934d^
  git -C "$tree" apply "$here/tools/model_version2/fair_protocol.patch"
fi
cd "$tree"
PYTHONPATH="$tree" HF_HUB_OFFLINE=1 "$here/.venv/bin/python" -u "$here/tools/model_version2/run.py" "${1:-0}" "$data"
mkdir -p "$here/results/diagnostics/model_version2"
cp -r "$tree/results/model_version2/food_kitchen_llmcdsr" "$here/results/diagnostics/model_version2/"
