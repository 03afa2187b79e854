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
# none of our weight wheels; a call carries the working tree (40.6 MB, 38.5 MB of it the
# shipped models) plus the carried paths within 64 MiB, so about 26 MB of kit a call. So:
# (1) the DINOv2 backbone travels as a 44 MB float16 file made here with `tools/device_kit.py
# weights .devkit`, in two halves (.devkit/backbone_half0, _half1) since it exceeds one call's
# room: carry one a call while the machine stays warm (it keeps ignored files between calls),
# the last call running this script, which joins them and expands them to float32; (2) the renderer is
# pybullet's TinyRenderer, whose source travels cut to 15 MB (`tools/device_kit.py pybullet
# .devkit`) and is built there (into $KIT/site) when pybullet is missing (rendered shards
# already in the config's data folders are used as they are); (3) the newest checkpoint comes
# back as a float16 tar in
# parts of 15 MiB (`tools/device_kit.py pack`; at most 6 parts, so a model of at most about
# 45 M parameters), joined here with `tools/device_kit.py unpack PARTS DEST`.
#
# The calls, once `make devkit` has made .devkit here (each within 30 s of the last, so that
# the machine stays warm and keeps what the earlier calls carried):
#   device run 'true'                         carry [.devkit/backbone_half0]
#   device run 'true'                         carry [.devkit/backbone_half1]
#   device run 'tools/gpu_train.sh CONFIG N'  carry [.devkit/pybullet-3.2.7-cut.tar.gz],
#                                             timeout 600 (build about a minute, render, train)
# then, here: tools/device_kit.py unpack <the returned files> build/models/NAME.
# Checked here (Python 3.11, 2 cores): the cut sdist builds in 3 min into a 47 MB wheel whose
# renders are byte-identical to the full pybullet's (6 sets, seed 3). Not yet run there.
#
# Environment: OUT (required), PYTHON (default python3: it must already have every package
# but pybullet and the backbone weights; there is no network), KIT (default .devkit: the
# carried folder of `device_kit.py weights` / `pybullet`), VAL_SETS (64),
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
if ! "$PYTHON" -c 'import pybullet' 2>/dev/null && compgen -G "$KIT/pybullet-*-cut.tar.gz" >/dev/null
then
  "$PYTHON" -m pip install --quiet --no-deps --no-build-isolation --no-index \
    --target "$KIT/site" "$KIT"/pybullet-*-cut.tar.gz
  export PYTHONPATH="$KIT/site:$PYTHONPATH"
fi
if [ -d "$KIT/backbone_half0" ] || [ -d "$KIT/backbone_half1" ]; then
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
