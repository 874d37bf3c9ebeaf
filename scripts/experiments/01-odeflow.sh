#!/bin/bash
# ODE-Flow ISCX non-VPN, 5 classes, 20-packet count windows (docs/accuracy.md, item 1).
# Trains on train only (10% of train held back for early stopping), evaluates each final model once on val.
# Outputs in $OUT/ode: datasets, models, eval-*.txt|json, summary.txt.
source "$(dirname "$0")/common.sh"
O=$OUT/ode; mkdir -p "$O"
fp dataset ode-flow --data "$DATA/ode-flow" --split train -o "$O/train.fpd"
fp dataset ode-flow --data "$DATA/ode-flow" --split val -o "$O/val.fpd"

run() {  # NAME SEED PICTURE-ARGS...
  local name=$1 seed=$2; shift 2
  fp train -d "$O/train.fpd" -o "$O/$name-s$seed.fpm" --name "ode-$name" --seed "$seed" --threads "$THREADS" \
     "${ODE_TRAIN[@]}" "$@" > "$O/train-$name-s$seed.log" 2>&1
  fp eval -m "$O/$name-s$seed.fpm" -d "$O/val.fpd" --json > "$O/eval-$name-s$seed.json"
  fp eval -m "$O/$name-s$seed.fpm" -d "$O/val.fpd" > "$O/eval-$name-s$seed.txt"
}
# Two trainings at a time (one thread each) on the 2-core machine.
JOBS=${JOBS:-2}
pending=0
bg() { run "$@" & pending=$((pending + 1)); if [ $pending -ge "$JOBS" ]; then wait; pending=0; fi; }

# STAGES picks what to run (default all); e.g. STAGES=axes AXIS_SEEDS="2 3" adds seeds to the axis runs.
STAGES=${STAGES:-"chosen axes clip255"}
has() { [[ " $STAGES " == *" $1 "* ]]; }
# 1. The chosen picture, 3 seeds.
has chosen && for s in $SEEDS; do bg chosen "$s" "${ODE_PICTURE[@]}"; done
# 2. Time axes, everything else as chosen: span-scaled (original FlowPic), fixed 1 s horizon,
#    log-time with the default tau 1 ms / horizon 1 s (the chosen one is log, tau 0.1 ms, horizon 10 s).
has axes && for s in ${AXIS_SEEDS:-1 2 3}; do
  bg span "$s" --resolution 32 --time-axis span --clip 8
  bg fixed "$s" --resolution 32 --time-axis fixed --horizon 1 --clip 8
  bg log1ms "$s" --resolution 32 --time-axis log --tau 0.001 --horizon 1 --clip 8
done
# 3. The same chosen axis with the tools' default pixel scaling (clip 255: a 20-packet picture then
#    has pixel values <= 20/255), to show what the normalisation is worth.
has clip255 && bg clip255 1 --resolution 32 --time-axis log --tau 0.0001 --horizon 10 --clip 255
wait

has chosen || { python3 "$(dirname "$0")/summarize.py" "$O" | tee "$O/summary.txt"; exit 0; }
# Confusion matrix and per-class table of the seed-1 chosen model (the shipped models/default.fpm).
fp eval -m "$O/chosen-s1.fpm" -d "$O/val.fpd" --png "$O/confusion-ode.png" --csv "$O/confusion-ode.csv" \
   --thresholds 0,0.5,0.7,0.9,0.95,0.99 > "$O/eval-chosen-s1-thresholds.txt"
python3 "$(dirname "$0")/summarize.py" "$O" | tee "$O/summary.txt"
