#!/bin/bash
# The multi-source evaluation (issue 10): one corpus of every source in ../shared/data, labels
# mapped by corpus/class-map.csv, then
#   (a) by-capture folds: 5 pooled models, each tested on the captures of its fold (all sources);
#   (b) leave-one-source-out: for every source, a model trained on all the others, tested on it;
#   (c) the in-distribution check: a model trained on everything but ODE-Flow's val split, on it;
# window- and flow-level accuracy and macro-F1, calibration (temperature and the 90 %-coverage
# threshold fitted on each model's held-back captures, never on its test), and a report
# (markdown + PNGs) written by corpus_report.py.
#
#   NO_TRAIN=fgnet CLASSES=VoIP,Video,File_Transfer,Chat,Browsing RECIPE=count20 \
#     scripts/experiments/10-corpus.sh                     # the shipped model's recipe
#   RECIPE=count20 scripts/experiments/10-corpus.sh        # 20-packet windows, six classes, every source
#   RECIPE=time15  scripts/experiments/10-corpus.sh        # 15-s time windows
#   REPORT=docs/accuracy-corpus.md scripts/experiments/10-corpus.sh
# Environment as common.sh (FLOWPIC, DATA, OUT, THREADS), plus RECIPE, FOLDS (5), JOBS (2: the
# trainings run two at a time), CAP (3000 windows per source and class), JOBS_MATCH (a regex of job
# names to run, e.g. 'loso-ndpi|loso-ode-flow': a quicker screen of a recipe), NO_TRAIN and
# AUGMENT (below), PEER (a model to test on every source beside the matrix).
source "$(dirname "$0")/common.sh"
RECIPE=${RECIPE:-count20}
FOLDS=${FOLDS:-5}
JOBS=${JOBS:-2}
CAP=${CAP:-3000}

# NO_TRAIN: sources never trained on (still tested: by fold and left out), e.g. NO_TRAIN=fgnet.
NO_TRAIN=${NO_TRAIN:-}
case "$RECIPE" in
  count20)     WINDOW=(--window count:20 --min-packets 20 --max-windows 100)
               PICTURE=("${ODE_PICTURE[@]}") ;;                     # log-time, tau 0.1 ms, horizon 10 s
  count20-1ms) WINDOW=(--window count:20 --min-packets 20 --max-windows 100)
               PICTURE=(--resolution 32 --time-axis log --tau 0.001 --horizon 10 --norm clip --clip 8) ;;
  time15)      WINDOW=(--window time:15 --min-packets 10 --max-windows 20)
               PICTURE=(--resolution 32 --time-axis span --norm clip --clip 8) ;;
  time60)      WINDOW=(--window time:60 --min-packets 10 --max-windows 10)
               PICTURE=(--resolution 32 --time-axis span --norm clip --clip 8) ;;
  # Both directions of a connection in one window (ODE-Flow and Learn-Live hold one direction
  # only and are left out): two channels (initiator, responder), or one channel of both (-bi1).
  count20-bi)  WINDOW=(--window count:20 --min-packets 20 --max-windows 100 --flows bi)
               PICTURE=("${ODE_PICTURE[@]}" --channels 2) ;;
  count20-bi1) WINDOW=(--window count:20 --min-packets 20 --max-windows 100 --flows bi)
               PICTURE=("${ODE_PICTURE[@]}" --channels 1) ;;
  # Two channels, with ODE-Flow's and Learn-Live's one-direction windows kept (responder plane empty).
  count20-bimix) WINDOW=(--window count:20 --min-packets 20 --max-windows 100 --flows bi --keep-one-way)
               PICTURE=("${ODE_PICTURE[@]}" --channels 2) ;;
  time15-bi)   WINDOW=(--window time:15 --min-packets 10 --max-windows 20 --flows bi)
               PICTURE=(--resolution 32 --time-axis span --norm clip --clip 8 --channels 2) ;;
  *) echo "10-corpus.sh: unknown RECIPE '$RECIPE' (count20, count20-1ms, time15, time60, count20-bi, count20-bi1, count20-bimix, time15-bi)" >&2; exit 2 ;;
esac
# MIN_IP_LEN=N: packets shorter than N bytes (IP length) enter no window (53: TCP's pure ACKs,
# which fgnet's flows do not have); names the run and the corpus -lenN.
MIN_IP_LEN=${MIN_IP_LEN:-0}
[ "$MIN_IP_LEN" -gt 0 ] && WINDOW+=(--min-ip-len "$MIN_IP_LEN")
CORPUS_NAME=${WINDOW[1]/:/}
[[ " ${WINDOW[*]} " == *" --flows bi "* ]] && CORPUS_NAME=$CORPUS_NAME-bi
[[ " ${WINDOW[*]} " == *" --keep-one-way "* ]] && CORPUS_NAME=$CORPUS_NAME-mix
[ "$MIN_IP_LEN" -gt 0 ] && CORPUS_NAME=$CORPUS_NAME-len$MIN_IP_LEN
TRAIN=(--cap "$CAP" --holdout-by capture --holdout 0.1 --epochs 30 --patience 5 --lr 0.001 --batch 64
       --threads "$THREADS" "${PICTURE[@]}")
for s in ${NO_TRAIN//,/ }; do TRAIN+=(--exclude-source "$s"); done
# AUGMENT=N: N augmented copies of every training window (flowpic train --augment).
AUGMENT=${AUGMENT:-0}
[ "$AUGMENT" -gt 0 ] && TRAIN+=(--augment "$AUGMENT")
# CLASSES=A,B,..: train these classes only (e.g. without "other").
[ -n "${CLASSES:-}" ] && TRAIN+=(--classes "$CLASSES")
# SEED: the training seed (weights, shuffling, the --cap subset); a seed other than 1 names the run -sN.
SEED=${SEED:-1}
TRAIN+=(--seed "$SEED" --cap-seed "$SEED")
O=$OUT/corpus-$RECIPE${NO_TRAIN:+-no-${NO_TRAIN//,/-}}${CLASSES:+-$(tr -cd ',' <<<"$CLASSES" | wc -c | awk '{print $1 + 1}')cls}
[ "$AUGMENT" -gt 0 ] && O=$O-aug$AUGMENT
[ "$MIN_IP_LEN" -gt 0 ] && O=$O-len$MIN_IP_LEN
[ "$SEED" != 1 ] && O=$O-s$SEED
mkdir -p "$O"
# The corpus depends on the window policy and the class map only: recipes with the same windows
# and map share it (the map's checksum is in the file name, so an edited map makes a new corpus).
CLASS_MAP=${CLASS_MAP:-$REPO/corpus/class-map.csv}
CORPUS=$OUT/corpus-$CORPUS_NAME-map$(sha256sum "$CLASS_MAP" | cut -c1-8).fpd

if [ ! -s "$CORPUS" ]; then
  echo "== corpus (${WINDOW[*]}) -> $CORPUS"
  fp dataset corpus --data "$DATA" --class-map "$CLASS_MAP" "${WINDOW[@]}" -o "$CORPUS" > "${CORPUS%.fpd}.txt" 2> "${CORPUS%.fpd}.log" ||
    { tail -20 "${CORPUS%.fpd}.log" >&2; exit 1; }
fi
cp "${CORPUS%.fpd}.txt" "$O/corpus.txt"
cat "$O/corpus.txt"
SOURCES=$(awk '/^source /{f=1; next} f && NF {print $1}' "$O/corpus.txt")

# One job: train NAME with extra selection args, then evaluate it; the eval's selection follows '--'.
job() {
  local name=$1; shift
  local train_args=() eval_args=()
  while [ $# -gt 0 ] && [ "$1" != -- ]; do train_args+=("$1"); shift; done
  [ $# -gt 0 ] && shift
  eval_args=("$@")
  if [ ! -s "$O/$name.fpm" ]; then
    fp train -d "$CORPUS" -o "$O/$name.fpm" --name "corpus-$RECIPE-$name" "${TRAIN[@]}" "${train_args[@]}" \
      > "$O/train-$name.log" 2>&1 || { echo "train $name failed:"; tail -5 "$O/train-$name.log"; return 1; }
  fi
  fp eval -m "$O/$name.fpm" -d "$CORPUS" --calibrated --json --png "$O/confusion-$name.png" \
    --reliability-png "$O/reliability-$name.png" "${eval_args[@]}" > "$O/eval-$name.json" 2> "$O/eval-$name.log" ||
    { echo "eval $name failed:"; tail -5 "$O/eval-$name.log"; return 1; }
  echo "done $name"
}
export -f job fp
export O RECIPE FLOWPIC CORPUS
# ODE-Flow's val split is kept out of (a) and (b) for (c), when the corpus has ODE-Flow at all.
VAL=""
grep -qx ode-flow <<<"$SOURCES" && VAL="--exclude-capture ode-flow/val"
{
  for k in $(seq 0 $((FOLDS - 1))); do
    echo "fold$k --fold $k/$FOLDS --side train $VAL -- --fold $k/$FOLDS --side test $VAL"
  done
  for s in $SOURCES; do
    echo "loso-$s --exclude-source $s $VAL -- --source $s"
  done
  if grep -qx ode-flow <<<"$SOURCES"; then
    echo "all-but-odeval --exclude-capture ode-flow/val -- --capture ode-flow/val"
  fi
} | sed 's/ *$//' | grep -E "^(${JOBS_MATCH:-.*}) " > "$O/jobs.txt"  # xargs -L joins a line ending in a blank to the next
# xargs runs JOBS trainings at once; each line is one job's words.
TRAIN_Q=$(printf '%q ' "${TRAIN[@]}")
xargs -P "$JOBS" -L 1 bash -c 'TRAIN=('"$TRAIN_Q"'); job "$@"' _ < "$O/jobs.txt"
# PEER=MODEL: the same per-source tests for a model trained elsewhere (e.g. the ODE-Flow-only
# model that was the default before the corpus, shipped as models/odeflow-lenet32.fpm).
if [ -n "${PEER:-}" ]; then
  for s in $SOURCES; do
    fp eval -m "$PEER" -d "$CORPUS" --source "$s" --json > "$O/peer-$s.json" 2> "$O/peer-$s.log" || rm -f "$O/peer-$s.json"
  done
fi
python3 "$(dirname "$0")/corpus_report.py" "$O" ${REPORT:+--report "$REPORT"} | tee "$O/summary.txt"
