#!/usr/bin/env bash
# The learned ray prior alone (no matching, no refinement, one diffusion sample) against the
# classical SIFT pipeline and random poses, side by side: on both real scenes of ../shared/data
# (temple_ring, nerf_lego) and on a held-out synthetic test set (scene synthetic_test), with
# known intrinsics, 20 view sets per N, seed 0.
#
#   tools/evaluate_prior.sh OUT_DIR [NUM_VIEWS]        (NUM_VIEWS default 2..8)
#
# Names: prior_dinov2 (PRIOR_MODEL, default models/dinov2), prior_shipped_lite (OLD_MODEL,
# default models/default: the previously shipped model; point OLD_MODEL at it once
# models/default is replaced), classical_sift, random; with PD_MODEL set also
# pose_diffusion_unguided and pose_diffusion_guided, with CT_MODEL camera_ray_token, with FUSED=1
# fused (its defaults: prior ray_diffusion of models/default, 4 samples, XFeat + LighterGlue;
# about 25 minutes on the 2-core CPU). ray_regression (REG_MODEL, default
# models/default_regression: the shipped one-step regression model) always runs.
# SYNTH_TEST is the synthetic shard folder
# (default build/synthetic14/test); its 20 view sets per N are drawn with the seed; with
# NO_BOXES=1 its object sets give no object boxes (raydiff-eval --no-boxes: whole-image crops,
# as on the real scenes and on a robot).
# Each run writes OUT_DIR/<scene>/<name>/results.{json,md}; runs already there are kept. The
# tables are printed at the end (tools/prior_table.py).
set -euo pipefail

OUT=${1:?usage: tools/evaluate_prior.sh OUT_DIR [NUM_VIEWS]}
NUM_VIEWS=${2:-2..8}
BIN=${BIN:-.venv/bin}
SHARED=${RAYDIFF_SHARED_DIR:-../shared}
SETS=${SETS:-20}
PRIOR_MODEL=${PRIOR_MODEL:-models/dinov2}
OLD_MODEL=${OLD_MODEL:-models/default}
SYNTH_TEST=${SYNTH_TEST:-build/synthetic14/test}

run() {  # run NAME ESTIMATOR [raydiff-eval options...]; results already there are kept
  local name=$1 estimator=$2 scene data
  shift 2
  for scene in temple_ring nerf_lego synthetic_test; do
    [[ -f $OUT/$scene/$name/results.json ]] && continue
    local extra=()
    if [[ $scene == synthetic_test ]]; then
      data=$SYNTH_TEST
      extra=(--set-choice random)
      [[ ${NO_BOXES:-0} == 1 ]] && extra+=(--no-boxes)
    else
      data=$SHARED/data/$scene
    fi
    echo "== $scene: $name" >&2
    "$BIN/raydiff-eval" "$data" --estimator "$estimator" --num-views "$NUM_VIEWS" \
      --sets-per-n "$SETS" --seed 0 --output "$OUT/$scene/$name" "${extra[@]}" "$@" \
      > "$OUT/$scene/$name.log"
  done
}

mkdir -p "$OUT/temple_ring" "$OUT/nerf_lego" "$OUT/synthetic_test"
run prior_dinov2 ray_diffusion --model "$PRIOR_MODEL" --samples 1
run prior_shipped_lite ray_diffusion --model "$OLD_MODEL" --samples 1
run classical_sift classical_sift
run random random
run ray_regression ray_regression --model "${REG_MODEL:-models/default_regression}"
# The other estimators of the method family (issue 15), when their models are given:
if [[ -n ${PD_MODEL:-} ]]; then
  run pose_diffusion_unguided pose_diffusion --model "$PD_MODEL" --option guidance=false
  run pose_diffusion_guided pose_diffusion --model "$PD_MODEL"
fi
if [[ -n ${CT_MODEL:-} ]]; then
  run camera_ray_token camera_ray_token --model "$CT_MODEL"
fi
if [[ ${FUSED:-0} == 1 ]]; then
  run fused fused --samples 4
fi
"$BIN/python" tools/prior_table.py "$OUT"
