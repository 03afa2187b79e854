#!/usr/bin/env bash
# The fused estimator against its inputs alone (issue 13): the ray prior, each matcher pipeline
# (verified matches chained and averaged, no prior, same second tries as fused) and fused (its
# defaults: XFeat + LighterGlue, ALIKED + LightGlue second tries), on both real scenes of ../shared/data with known intrinsics, 20 view sets per N, seed 0.
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

run() {  # run NAME ESTIMATOR [raydiff-eval options...]; results already there are kept
  local name=$1 estimator=$2
  shift 2
  for scene in temple_ring nerf_lego; do
    [[ -f $OUT/$scene/$name/results.json ]] && continue
    echo "== $scene: $name" >&2
    "$BIN/raydiff-eval" "$SHARED/data/$scene" --estimator "$estimator" --num-views "$NUM_VIEWS" \
      --sets-per-n "$SETS" --seed 0 --output "$OUT/$scene/$name" "$@" > "$OUT/$scene/$name.log"
  done
}

mkdir -p "$OUT/temple_ring" "$OUT/nerf_lego"
run prior ray_diffusion --samples 4
run matches_xfeat matches --option matcher=xfeat
run fused fused --samples 4
run matches_sift matches --option matcher=sift --option retry_matcher=none
run matches_aliked matches --option matcher=aliked --option retry_matcher=none
"$BIN/python" tools/fused_table.py "$OUT"
