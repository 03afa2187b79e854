#!/usr/bin/env bash
# The fused estimator against its inputs alone (issue 13): the ray prior, each matcher pipeline
# (verified matches chained and averaged, no prior) and fused (its defaults: SIFT first,
# XFeat + LighterGlue on the pairs SIFT leaves, ALIKED + LightGlue second tries), on both real
# scenes of ../shared/data with known intrinsics, 20 view sets per N, seed 0. The pipelines:
# matches_sift_xfeat (fused's matching without the prior), matches_xfeat (XFeat alone with the
# same ALIKED second tries), matches_sift and matches_aliked (one pipeline, no second tries).
#
#   tools/evaluate_fused.sh OUT_DIR [NUM_VIEWS]        (NUM_VIEWS default 2..8)
#
# With PYCOLMAP=DIR (a folder where pycolmap is installed, e.g. `pip install --no-deps --target
# DIR pycolmap==4.2.1`; not a dependency of the package) COLMAP's incremental SfM on the same
# view sets is added as the `colmap` column (tools/colmap_baseline.py).
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
run fused fused --samples 4
run matches_sift_xfeat matches
run prior ray_diffusion --samples 4
run matches_xfeat matches --option matcher=xfeat --option first_matcher=none
run matches_sift matches --option matcher=sift --option retry_matcher=none
run matches_aliked matches --option matcher=aliked --option first_matcher=none \
  --option retry_matcher=none
if [[ -n ${PYCOLMAP:-} ]]; then
  (export PYTHONPATH="$PYCOLMAP:tools"; run colmap python:colmap_baseline:make_colmap)
fi
"$BIN/python" tools/fused_table.py "$OUT"
