#!/usr/bin/env bash
# Side-by-side evaluation of the shipped models, the classical baseline and the random floor
# (issue 5), and of the refinements (issue 7), with raydiff-eval and raydiff-compare.
#
#   tools/evaluate_models.sh OUT_DIR [GROUP ...]
#
# GROUP: baselines (classical_sift, random; no model needed), diffusion and regression
# (ray_diffusion and ray_regression with the shipped models), refinements (guided and bundle
# after the diffusion model), tables (the markdown tables from whatever results exist).
# Default: all, in order.
# Datasets: the held-out synthetic test shards (build/synthetic/test, rendered with
#   raydiff-render --num-sets 140 --views-per-set 8 --image-size 160x120 --seed 2 \
#       --workers 2 --out build/synthetic/test)
# and the two real sets of ../shared/data (or $RAYDIFF_SHARED_DIR/data).
set -euo pipefail

OUT=${1:?usage: tools/evaluate_models.sh OUT_DIR [GROUP ...]}
shift || true
GROUPS_TO_RUN=${*:-baselines diffusion regression refinements tables}
BIN=${BIN:-.venv/bin}
SHARED=${RAYDIFF_SHARED_DIR:-../shared}
SYNTH=${SYNTH:-build/synthetic/test}
SYNTH_SETS=${SYNTH_SETS:-all}      # view sets per N on the synthetic test shards (all: 140)
REAL_SETS=${REAL_SETS:-20}         # view sets per N on each real scene
DIFFUSION=${DIFFUSION:-models/default}
REGRESSION=${REGRESSION:-models/default_regression}

SYNTH_OPTS=""
[[ $SYNTH_SETS == all ]] || SYNTH_OPTS="--sets-per-n $SYNTH_SETS"
declare -A DATASETS=(
  [synthetic]="$SYNTH $SYNTH_OPTS"
  [synthetic_rig]="$SYNTH $SYNTH_OPTS --scene-type rig"
  [temple_ring]="$SHARED/data/temple_ring/templeR_par.txt --sets-per-n $REAL_SETS"
  [nerf_lego]="$SHARED/data/nerf_lego/transforms.json --sets-per-n $REAL_SETS"
)

run() {  # run NAME DATASET ESTIMATOR [raydiff-eval options...]
  local name=$1 dataset=$2 estimator=$3
  shift 3
  local target="$OUT/$dataset/$name"
  if [[ -f "$target/results.json" ]]; then
    echo "keep $target"
    return
  fi
  echo "run  $target"
  # shellcheck disable=SC2086
  "$BIN/raydiff-eval" ${DATASETS[$dataset]} --estimator "$estimator" "$@" \
    --output "$target" > "$target.log" 2>&1 || { echo "FAILED: see $target.log"; return 1; }
}

write_table() {  # write_table DATASET TABLE_NAME RESULT_NAME... (the results that exist)
  local dataset=$1 table=$2
  shift 2
  local files=() labels=() name
  for name in "$@"; do
    [[ -f "$OUT/$dataset/$name/results.json" ]] || continue
    files+=("$OUT/$dataset/$name/results.json"); labels+=("$name")
  done
  if [[ ${#files[@]} -gt 0 ]]; then
    "$BIN/python" -m raydiff_ros.cli.compare "${files[@]}" --labels "${labels[@]}" \
      --out "$OUT/$dataset/$table.md" > /dev/null
  fi
}

mkdir -p "$OUT"/{synthetic,synthetic_rig,temple_ring,nerf_lego}
for group in $GROUPS_TO_RUN; do
  case $group in
    baselines)
      for dataset in synthetic temple_ring nerf_lego; do
        run classical "$dataset" classical_sift
        run random "$dataset" random
      done
      run classical synthetic_rig classical_sift
      for dataset in synthetic_rig temple_ring nerf_lego; do
        run classical_bundle "$dataset" classical_sift --refine bundle
      done
      ;;
    diffusion)
      for dataset in synthetic synthetic_rig temple_ring nerf_lego; do
        run diffusion "$dataset" ray_diffusion --model "$DIFFUSION"
      done
      ;;
    regression)
      for dataset in synthetic temple_ring nerf_lego; do
        run regression "$dataset" ray_regression --model "$REGRESSION"
      done
      ;;
    refinements)
      for dataset in synthetic_rig temple_ring nerf_lego; do
        run diffusion_guided "$dataset" ray_diffusion --model "$DIFFUSION" --refine guided
        run diffusion_bundle "$dataset" ray_diffusion --model "$DIFFUSION" --refine bundle
      done
      ;;
    tables)
      for dataset in synthetic temple_ring nerf_lego; do
        write_table "$dataset" models_table diffusion regression classical random
      done
      for dataset in synthetic_rig temple_ring nerf_lego; do
        write_table "$dataset" refinement_table diffusion diffusion_guided diffusion_bundle \
          classical classical_bundle
      done
      ;;
    *) echo "unknown group $group" >&2; exit 2 ;;
  esac
done
