# Shared settings of the experiment scripts (sourced). Override by environment:
#   FLOWPIC   the flowpic binary        (default: build/tools/flowpic, built with meson/ninja)
#   DATA      ../shared/data            (read-only inputs, see its PROVENANCE.md)
#   OUT       where datasets, models and reports go (default: /tmp/flowpic-exp)
#   THREADS   training threads: 1 on a shared 2-core box (an OpenMP team of 2 on a loaded
#             machine was 20x slower, see infer/network.hpp TrainOptions::threads)
set -euo pipefail
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
FLOWPIC=${FLOWPIC:-$REPO/build/tools/flowpic}
DATA=${DATA:-$REPO/../shared/data}
OUT=${OUT:-/tmp/flowpic-exp}
THREADS=${THREADS:-1}
SEEDS=${SEEDS:-"1 2 3"}
mkdir -p "$OUT"
fp() { "$FLOWPIC" --no-progress "$@"; }
# The chosen ODE-Flow picture (selected on the held-back 10% of train, see docs/accuracy.md).
ODE_PICTURE=(--resolution 32 --time-axis log --tau 0.0001 --horizon 10 --norm clip --clip 8)
ODE_TRAIN=(--epochs 30 --patience 5 --lr 0.001 --batch 64 --holdout 0.1)
# Time windows of nDPI captures (15 s, span axis as the paper), same pixel clip.
NDPI_PICTURE=(--resolution 32 --time-axis span --norm clip --clip 8)
NDPI_TRAIN=(--epochs 40 --patience 8 --lr 0.001 --batch 64 --holdout 0.1)
