#!/usr/bin/env bash
# The fused estimator against its inputs alone (issue 13): the ray prior, each matcher pipeline
# (verified matches chained and averaged, no prior), and fused with XFeat (the default) and with
# ALIKED, on both real scenes of ../shared/data with known intrinsics, 20 view sets per N, seed 0.
#
#   tools/evaluate_fused.sh OUT_DIR [NUM_VIEWS]        (NUM_VIEWS default 2..8)
#
# Each run writes OUT_DIR/<scene>/<name>/results.{json,md}; the summary table is printed at the
# end (tools/fused_table.py). On the 2-core CPU the whole run takes about 90 minutes.
set -euo pipefail

OUT=${1:?usage: tools/evaluate_fused.sh OUT_DIR [NUM_VIEWS]}
NUM_VIEWS=${2:-2..8}
BIN=${BIN:-.venv/bin}
SHARED=${RAYDIFF_SHARED_DIR:-../shared}
SETS=${SETS:-20}

run() {  # run NAME ESTIMATOR [raydiff-eval options...]
  local name=$1 estimator=$2
  shift 2
  for scene in temple_ring nerf_lego; do
    echo "== $scene: $name" >&2
    "$BIN/raydiff-eval" "$SHARED/data/$scene" --estimator "$estimator" --num-views "$NUM_VIEWS" \
      --sets-per-n "$SETS" --seed 0 --output "$OUT/$scene/$name" "$@" > "$OUT/$scene/$name.log"
  done
}

mkdir -p "$OUT/temple_ring" "$OUT/nerf_lego"
run prior ray_diffusion --samples 4
run matches_xfeat matches --option matcher=xfeat
run fused_xfeat fused --samples 4
run matches_sift matches --option matcher=sift
run matches_aliked matches --option matcher=aliked
run fused_aliked fused --samples 4 --option matcher=aliked
"$BIN/python" tools/fused_table.py "$OUT"
