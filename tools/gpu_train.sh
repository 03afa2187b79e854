#!/usr/bin/env bash
# Render synthetic data and train on a lent GPU machine; results go to "$OUT" (copied back).
#
#   OUT=/path/to/out tools/gpu_train.sh [CONFIG.yaml] [NUM_SETS]
#
#   CONFIG    training config (default config/train/dinov2_gpu.yaml); run from the repository
#             root, where its relative paths point. Its data.train[0] / data.val[0] folders are
#             rendered here unless they already hold shards (e.g. carried), and its output_dir
#             is resumed (--resume) when it already holds checkpoints.
#   NUM_SETS  training view sets to render (default 2000).
#
# Environment: OUT (required), PYTHON (default python: the carried venv's interpreter, which
# must already have every package: nothing is installed, there is no network), VAL_SETS (64),
# VIEWS (8 views per set), IMAGE_SIZE (320x240), TRAIN_SECONDS (wall-clock limit of the
# training, default 300; a run cut there keeps only the checkpoints saved before, so set the
# config's checkpoint_interval / iterations to fit). One GPU: plain `python -m
# raydiff_ros.cli.train`; more: torchrun, one process per GPU (batch_size is per GPU).
# Copied to $OUT: the newest checkpoint folder, train_config.yaml, metrics.jsonl, curves.png,
# render and training logs.
set -euo pipefail

config=${1:-config/train/dinov2_gpu.yaml}
num_sets=${2:-2000}
: "${OUT:?set OUT to the folder that is copied back}"
PYTHON=${PYTHON:-python}
root=$(cd "$(dirname "$0")/.." && pwd)
export PYTHONPATH="$root${PYTHONPATH:+:$PYTHONPATH}"
cd "$root"
[ -f "$config" ] || { echo "gpu_train.sh: no config $config" >&2; exit 2; }
mkdir -p "$OUT"

nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
gpus=$("$PYTHON" -c 'import torch; assert torch.cuda.is_available(), "no CUDA"; print(torch.cuda.device_count())')
echo "torch sees $gpus GPU(s); $(nproc) cores"

# The folders and output directory the config names (paths relative to the repository root).
read -r train_dir val_dir run_dir < <("$PYTHON" - "$config" <<'EOF'
import sys
from raydiff_ros.training.config import load_train_config
c = load_train_config(sys.argv[1])
print(c.data.train[0], c.data.val[0] if c.data.val else '-', c.output_dir)
EOF
)

render() {  # render SETS SEED DIR, unless DIR already holds shards
  if compgen -G "$3/*" >/dev/null; then echo "reusing $3"; return; fi
  "$PYTHON" -m raydiff_ros.cli.render --num-sets "$1" --seed "$2" --workers "$(nproc)" \
    --views-per-set "${VIEWS:-8}" --image-size "${IMAGE_SIZE:-320x240}" --out "$3" \
    2>&1 | tee -a "$OUT/render.log"
}
render "$num_sets" 0 "$train_dir"
[ "$val_dir" = - ] || render "${VAL_SETS:-64}" 1 "$val_dir"

resume=()
if compgen -G "$run_dir/checkpoints/step_*" >/dev/null; then resume=(--resume); fi
if [ "$gpus" -gt 1 ]; then
  train=("$PYTHON" -m torch.distributed.run --standalone --nproc_per_node "$gpus"
         -m raydiff_ros.cli.train)
else
  train=("$PYTHON" -m raydiff_ros.cli.train)
fi
status=0
timeout --signal=TERM --kill-after=30 "${TRAIN_SECONDS:-300}" \
  "${train[@]}" "$config" "${resume[@]}" 2>&1 | tee "$OUT/train.log" || status=${PIPESTATUS[0]}
echo "training exit status $status (124: stopped at TRAIN_SECONDS)"

for file in train_config.yaml metrics.jsonl curves.png; do
  [ ! -f "$run_dir/$file" ] || cp "$run_dir/$file" "$OUT/"
done
last=$(find "$run_dir/checkpoints" -maxdepth 1 -name 'step_*' -type d 2>/dev/null | sort | tail -n 1)
if [ -n "$last" ]; then cp -r "$last" "$OUT/"; echo "copied $last to $OUT"; else
  echo "no checkpoint was written" >&2; fi
exit "$status"
